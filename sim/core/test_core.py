"""cocotb bench: the whole gateway core under Verilator against the model.

Parameters arrive as environment variables set by :func:`wiregate.sim.runner.run_bench`:
``WG_WIDTH``, ``WG_PROFILE`` (the build profile whose sizes the core and the model take,
:func:`wiregate.sim.core.bench_profile`), ``WG_MESSAGES`` (client OUCH messages of the
random day), and optionally ``WG_SEED`` and ``WG_TIME_SCALE`` (core microseconds per
microsecond of the day; default :data:`TIME_SCALE`). What the bench does and checks:
:mod:`wiregate.sim.core.bench` and :mod:`wiregate.sim.core.scoreboard`.

A test leaves block RAM (order tables, exposures) as it was; a reset does not clear it. Run
one test per simulator process (``COCOTB_TEST_FILTER``), as the pytest runner does.
"""

import os
import random

import cocotb

from wiregate.sim.orders import P100, Script, enter, limits, session, symbol
from wiregate.sim.trading import Item, Port, Trading
from wiregate.sw.limits import (
    Endpoint,
    RateLimit,
)
from wiregate.sw.model import (
    Commit,
    Heartbeat,
    Kill,
    Malformed,
    Release,
)
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import Reason

from .bench import TB
from .frames import IFG_BYTES
from .plan import DROPCOPY_READY, STRETCH, TIME_SCALE

AAPL, MSFT, BANNED, NOREF, TINY = 3, 7, 12, 20, 31
LINE_RATE_LAG = 8           # frames between an Enter and its execution (line_rate)
LINE_RATE_EXECUTE = 4       # the exchange executes every fourth Enter (line_rate)
LINE_RATE_READY = 0.97      # the host's drop-copy pace in line_rate
# burst: Enter orders back to back on the client port, the first half of them executed back
# to back on the exchange port, while the host takes a drop-copy beat in one cycle of
# twenty: the records (one per order and per execution, the commit's before them) pass the
# high mark and stay below the queue's top, aiming halfway between the two
# (:func:`_burst_sizes`). Then the host catches up, and more orders follow.
BURST_LAG = 2               # client frames between an Enter and its execution
BURST_READY = 0.05
BURST_AFTER = 10            # orders once the host has caught up (on session 1: the burst's
                            # live orders hold session 0's open-order table)


def _burst_sizes(tb) -> tuple[int, int]:
    """(orders, executions) of the burst: records enough to fill the queue halfway between
    its high mark and its top, if the host read nothing meanwhile (it reads a few dozen)."""
    target = (tb.sizes.backlog_high + tb.regmap.dropcopy_depth) // 2
    orders = target * 2 // 3
    return orders, orders // 2


def _tb(dut, scale=None):
    width = int(os.environ["WG_WIDTH"])
    seed = int(os.environ.get("WG_SEED") or random.randrange(1 << 32))
    if scale is None:
        scale = float(os.environ.get("WG_TIME_SCALE") or TIME_SCALE[width])
    dut._log.info("core W=%d seed=%d time scale %g", width, seed, scale)
    return TB(dut, width, seed, scale=scale, dropcopy_ready=DROPCOPY_READY[width])


def _messages():
    return int(os.environ.get("WG_MESSAGES", "20000"))


@cocotb.test()
async def random_day(dut):
    """A seeded trading day: every record replayed, every frame and the final state checked.
    With ``WG_RACE=1`` a share of the host actions race the links (:meth:`Plan.races`): some
    must then have taken effect while frames of each link were on their way to the engine."""
    tb = _tb(dut)
    tb.racing = os.environ.get("WG_RACE") == "1"
    await tb.start()
    trading = Trading(tb.seed, tb.sizes)
    items = trading.generate(_messages())
    await tb.run(tb.play(items, stretch=STRETCH))
    await tb.run(tb.finish("random_day"))
    raced = tb.races_seen()
    dut._log.info("random_day: racing host actions %s; client frames by the ingress "
                  "reference %s", raced, tb.board.counters("client"))
    if tb.racing:
        assert raced.get("client") and raced.get("exchange"), \
            f"seed {tb.seed}: no host action raced the frames of both links: {raced}"
    if os.environ.get("WG_DUMP"):       # for the compiled harness's agreement test
        tb.dump(os.environ["WG_DUMP"])
    lost = [s for s in tb.board.sessions if s in tb.connected and not tb.board.in_sync(s)]
    assert not lost, f"seed {tb.seed}: the bench lost the streams of sessions {lost}"
    replay = tb.board.replay
    missing = [r.name for r in Reason if not replay.reasons[r]]
    dut._log.info("random_day: %d client messages sent, reasons fired %s, never %s",
                  trading.messages, {r.name: replay.reasons[r] for r in Reason}, missing)


@cocotb.test()
async def line_rate(dut):
    """Enter orders on one session and symbol in back-to-back frames at the inter-frame gap,
    the exchange executing every fourth a few frames later: no verdict lost, each the
    model's. (The drop copy carries a record of 88 bytes per event, as many bytes a cycle as
    one port: it cannot follow both ports at line rate, so the exchange side is lighter.)"""
    tb = _tb(dut, scale=1.0)
    tb.dropcopy_ready = LINE_RATE_READY
    await tb.start()
    n = max(_messages() // 10, 500)
    limits = _limits(sessions=(_session(0, credit=10**16, rate=RateLimit(10**6, 1, 0)),),
                     symbols=(symbol(AAPL, "AAPL", max_long=10**6, max_short=10**6),))
    await tb.run(tb.play([Item(Port.CONTROL, 0, Commit(0, limits))]))
    await tb.run(tb.connect_waiting())
    await tb.run(tb.all_done())
    tb.gap_extra = False
    jobs = []
    for ref in range(1, n + 1):
        jobs.append(tb.client_job(0, [enter(ref, "BS"[ref // LINE_RATE_EXECUTE % 2])]))
        await tb.release(jobs[-1], after_others=False)

    async def executions():
        for ref in range(LINE_RATE_EXECUTE, n + 1, LINE_RATE_EXECUTE):
            await jobs[min(ref - 1 + LINE_RATE_LAG, n - 1)].done.wait()
            execution = ouch.OrderExecuted(timestamp=ref, user_ref_num=ref, quantity=100,
                                           price=P100, liquidity_flag="A", match_number=ref)
            for job in tb.exchange_jobs(0, [execution]):
                await tb.release(job, after_others=False)

    await tb.run(executions())
    await tb.run(tb.finish("line_rate"))
    replay = tb.board.replay
    assert replay.kinds["VERDICT"] == n, \
        f"seed {tb.seed}: {replay.kinds['VERDICT']} verdicts for {n} Enter orders"
    gap = -(-IFG_BYTES // tb.width)
    starts = [tb.client_starts[job.work["index"]] for job in jobs]
    beats = [len(job.work["beats"]) for job in jobs]
    assert all(b - a == k + gap for a, b, k in zip(starts, starts[1:], beats, strict=False)), \
        f"seed {tb.seed}: the Enter frames were not back to back"
    dut._log.info("line_rate: %d Enter orders, %d accepted, %d rejected", n, replay.accepted,
                  replay.rejected)


@cocotb.test()
async def every_reason_fires(dut):
    """A short directed day in which every reject reason fires at least once; NOT_LOADED by a
    commit that drops a session while one of its frames is between headers and orders."""
    tb = _tb(dut, scale=1.0)
    await tb.start()
    script = Script()
    first = _limits(
        sessions=(_session(0), _session(1, credit=150 * P100, rate=RateLimit(2, 10**6, 0)),
                  _session(2)),
        credit=250 * P100, heartbeat_timeout_us=60)
    script.at(0).control(Commit, first).at(2).control(Heartbeat)
    script.at(3).client(0, Malformed("unknown_type"), enter(1, name="ZVZZT"),
                        enter(2, name="BANNED"), enter(3, quantity=0))
    script.at(4).client(0, enter(4, quantity=600))                       # NOTIONAL
    script.at(5).client(0, enter(5, price=0), enter(6, name="NOREF"))   # COLLAR twice
    script.at(6).client(0, enter(10)).client(0, enter(8))               # DUPLICATE_REF
    script.at(7).client(0, ouch.ReplaceOrder(
        orig_user_ref_num=99, user_ref_num=11, quantity=10, price=P100, time_in_force="0",
        display="Y", intermarket_sweep="N", clordid="C11"))             # UNKNOWN_ORDER
    # UserRefNum 10's slot: CAPACITY; the session's later orders number on from there.
    n = tb.sizes.n_orders
    script.at(8).client(0, enter(n + 10))
    script.at(9).client(0, enter(n + 20, name="TINY", quantity=50, price=10 * 10_000),
                        enter(n + 21, name="TINY", quantity=50, price=10 * 10_000))  # POSITION
    script.at(10).client(1, enter(1), enter(2), enter(3, quantity=10),
                         enter(4, quantity=10))    # CREDIT_SESSION, then RATE
    script.at(11).client(2, enter(1))              # CREDIT_GATEWAY
    script.at(12).control(Kill, "gateway").at(13).client(2, enter(2, quantity=1))
    script.at(14).control(Release, "gateway").control(Kill, "session", 2)
    script.at(16).client(2, enter(3, quantity=1)).at(17).control(Release, "session", 2)
    script.at(18).control(Kill, "symbol", MSFT)
    script.at(19).client(2, enter(4, name="MSFT", quantity=1, price=2 * P100))
    script.at(20).control(Release, "symbol", MSFT)
    script.at(21).client(0, enter(10, quantity=101), retransmit=True)   # OUT_OF_SYNC
    script.at(22).exchange(0, ouch.OrderExecuted(timestamp=1, user_ref_num=10, quantity=100,
                                                 price=P100, liquidity_flag="A",
                                                 match_number=5))
    # HEARTBEAT: the host silent past the 60 us timeout. The Heartbeat at 2 waits for the
    # first image to be written, a word a cycle or slower (17,508 words at the full sizes).
    script.at(500).client(0, enter(n + 30)).at(501).control(Heartbeat)
    await tb.run(tb.play(script.items))
    await tb.run(_not_loaded(tb))
    await tb.run(tb.finish("every_reason_fires"))
    fired = tb.board.replay.reasons
    # BACKLOG needs the host to fall behind: the burst test does that on purpose.
    missing = [r.name for r in Reason if not fired[r] and r is not Reason.BACKLOG]
    assert not missing, f"seed {tb.seed}: reasons that never fired: {missing}"


@cocotb.test()
async def burst(dut):
    """Line rate on both ports while the drop copy's host is slow: the queue passes its high
    mark, new orders are refused with BACKLOG exactly where the model says (the replay
    decides it from the reading position the bench observed, and the records must say the
    same), no record is lost (a gap-free sequence, no overflow counted), no latch is set,
    and once the host has caught up the next orders are accepted."""
    tb = _tb(dut, scale=1.0)
    await tb.start()
    limits = _limits(sessions=(_session(0, credit=10**16, rate=RateLimit(10**6, 1, 0)),
                               _session(1)),
                     symbols=(symbol(AAPL, "AAPL", max_long=10**6, max_short=10**6),))
    await tb.run(tb.play([Item(Port.CONTROL, 0, Commit(0, limits))]))
    await tb.run(tb.connect_waiting())
    await tb.run(tb.all_done())
    tb.gap_extra = False
    tb.dropcopy_ready = BURST_READY
    orders, executed = _burst_sizes(tb)
    jobs = []
    for ref in range(1, orders + 1):
        jobs.append(tb.client_job(0, [enter(ref)]))
        await tb.release(jobs[-1], after_others=False)

    async def executions():
        for ref in range(1, executed + 1):
            await jobs[ref - 1 + BURST_LAG].done.wait()
            execution = ouch.OrderExecuted(timestamp=ref, user_ref_num=ref, quantity=100,
                                           price=P100, liquidity_flag="A", match_number=ref)
            for job in tb.exchange_jobs(0, [execution]):
                await tb.release(job, after_others=False)

    await tb.run(executions())
    await tb.run(tb.all_done())
    replay = tb.board.replay
    assert not replay.reasons[Reason.BACKLOG], \
        f"seed {tb.seed}: the host read the BACKLOG verdicts before the burst ended"
    tb.dropcopy_ready = 1.0
    await tb.run(tb.drain())
    backlog = replay.reasons[Reason.BACKLOG]
    first = replay.accepted
    for ref in range(1, BURST_AFTER + 1):
        await tb.release(tb.client_job(1, [enter(ref)]), after_others=False)
    await tb.run(tb.finish("burst"))
    high, low, depth = tb.sizes.backlog_high, tb.sizes.backlog_low, tb.regmap.dropcopy_depth
    assert tb.most_queued >= high, \
        f"seed {tb.seed}: the queue held {tb.most_queued} records at most"
    assert tb.most_queued < depth
    assert backlog > 0 and replay.reasons[Reason.BACKLOG] == backlog, \
        f"seed {tb.seed}: BACKLOG {backlog} in the burst, {replay.reasons[Reason.BACKLOG]} all"
    assert replay.accepted - first == BURST_AFTER, \
        f"seed {tb.seed}: {replay.accepted - first} of {BURST_AFTER} accepted after the burst"
    assert not tb.gate.kill_gateway and not any(tb.gate.kill_session)
    dut._log.info("burst: %d records, at most %d queued (marks %d and %d, depth %d), "
                  "%d BACKLOG rejects, %d accepted", tb.records, tb.most_queued,
                  high, low, depth, backlog,
                  replay.accepted)


async def _not_loaded(tb):
    """Commit limits without session 2 while a frame of it is on the wire: its headers have
    passed (the ingress admits it), its orders reach the engine after the swap."""
    second = _limits(sessions=(_session(0), _session(1)), credit=10**14)
    await tb.write_image(Commit(0, second))
    debug = b"+" + b"D" * 200                       # a SoupBin Debug packet: no event
    job = tb.client_job(2, [enter(5, quantity=1), enter(6, quantity=1)],
                        lead=len(debug).to_bytes(2, "big") + debug)
    await tb.release(job)
    index = job.work["index"]
    while index not in tb.client_starts:
        await tb.until(tb.now() + 1)
    # The longest headers are behind the session lookup by then; the first order is more
    # than 200 bytes further.
    await tb.until(tb.client_starts[index] + 160 // tb.width + 8)
    await tb.swap(Commit(0, second))
    await tb.all_done()


def _session(index, *, credit=10**13, rate=None):
    return session(index, credit=credit,
                   rate=rate or RateLimit(burst=100, refill_us=10, trip_after=0),
                   client=Endpoint(0x0A030001 + index, 41000 + index),
                   exchange=Endpoint(0x0A0300FE, 15000))


def _limits(*, sessions, symbols=None, credit=10**14, heartbeat_timeout_us=10**6):
    return limits(symbols or (
        symbol(AAPL, "AAPL"),
        symbol(MSFT, "MSFT", reference_price=2 * P100, collar=100_000),
        symbol(BANNED, "BANNED", restricted=True),
        symbol(NOREF, "NOREF", reference_price=0),
        symbol(TINY, "TINY", reference_price=10 * 10_000, collar=10_000,
               max_order_quantity=50, max_order_notional=40 * P100, max_long=60,
               max_short=40),
    ), sessions=sessions, credit=credit, heartbeat_timeout_us=heartbeat_timeout_us)
