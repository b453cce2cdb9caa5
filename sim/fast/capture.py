"""A capture through the core's Verilator model: ``wiregate replay --engine gateware``.

The frames of :func:`wiregate.sim.capture.timeline` go into the core under the compiled
harness by :class:`~wiregate.sim.fast.bench.FastBench`'s own means: each frame queued at
the cycle of its replay time (or later, when its port or the other port is still busy, as
the core bench schedules), the host's commit and heartbeats on the word bus, every
drop-copy record replayed through the model (:class:`~wiregate.sim.replay.Replay`), every
frame out compared with the model's (:class:`~wiregate.sim.core.scoreboard.Scoreboard`),
then the counters and the engine's final state (:meth:`FastBench.finish`). Any difference is
a mismatch.

The verdict log is the model's verdict of each VERDICT record (they agree, or there is a
mismatch), stamped with the record's time. The output pcaps hold the frames the core sent,
stamped with the capture timestamps of the frames they came from (as the model engine
stamps them). The drop-copy host reads every beat the core offers. The replay rate (``seconds`` of
the summary) is the processor time from the commit to the last frame's end, records and
frames checked batch by batch; the final checks of the counters and of every table entry
(:meth:`FastBench.finish`) come after it.
"""

import os
import sys
import time

from wiregate.sim.capture import (
    CaptureError,
    Outcome,
    Progress,
    VerdictEntry,
    session_states,
    timeline,
)
from wiregate.sim.replay import Mismatch
from wiregate.sw.dropcopy import Kind, SequenceGap
from wiregate.sw.limits import Limits
from wiregate.sw.model import Commit, Heartbeat
from wiregate.sw.proto import pcap
from wiregate.sw.timebase import US_PER_S

__all__ = ["latency_figures", "replay_gateware"]

BATCH_FRAMES = 512          # frames queued between two runs of the harness
FIRST_BYTE = ("first byte of a client frame into the core (client_rx) to the first byte of "
              "the same frame out toward the exchange (exchange_tx), in cycles of the "
              "width's clock")
COUNTERS = ("orders_accepted", "orders_rejected", "frames_exchange_tx", "frames_client_tx",
            "dropped_no_session", "fcs_errors", "malformed", "retransmissions",
            "dropcopy_records", "dropcopy_overflow")     # read from the core at the end
VERDICT = ("the cycle a client message's last needed byte (the one its event is emitted at) "
           "enters the core (client_rx) to the cycle its verdict takes effect in the engine "
           "(its drop-copy record's cycle)")
PERCENTILES = (("min", 0.0), ("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9), ("max", 100.0))


def latency_figures(cycles: list[int], clock_hz: int) -> dict:
    """min, p50, p99, p99.9 and max (nearest rank) of ``cycles``, in cycles and ns."""
    ordered = sorted(cycles)
    figures = {"count": len(ordered), "clock_hz": clock_hz, "cycles": {}, "ns": {}}
    for name, p in PERCENTILES:
        if not ordered:
            continue
        rank = max(1, -(-len(ordered) * p // 100))     # nearest rank, 1-based
        value = ordered[int(min(rank, len(ordered))) - 1]
        figures["cycles"][name] = value
        figures["ns"][name] = round(value * 1e9 / clock_hz, 1)
    return figures


def _bench(width: int, profile_name: str):
    """A FastBench of the profile's core, built (or found in the cache) with the build's
    output on stderr, so that ``--json`` keeps stdout to itself."""
    from .bench import FastBench

    # The core bench's profile comes from WG_PROFILE (wiregate.sim.core.bench_profile).
    was = os.environ.get("WG_PROFILE")
    os.environ["WG_PROFILE"] = profile_name
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        bench = FastBench(width, seed=0, dropcopy_ready=1.0)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        if was is None:
            del os.environ["WG_PROFILE"]
        else:
            os.environ["WG_PROFILE"] = was
    bench.gap_extra = False
    return bench


def replay_gateware(records, limits: Limits, profile, width: int, *,
                    assume_start: bool = False, max_gap_us: int | None = 1000,
                    progress: bool = True) -> tuple[Outcome, dict]:
    """Replay ``records`` through the core's Verilator model; returns the outcome and the
    latency: the figures (:func:`latency_figures`) of ``first_byte`` (frames toward the
    exchange) and ``verdict`` (client messages), their ``definition`` and every one of their
    ``samples`` in cycles."""
    arrivals, midstream, notes = timeline(records, limits, assume_start=assume_start,
                                          max_gap_us=max_gap_us)
    bench = _bench(width, profile.name)
    board = bench.board
    begin, started = time.process_time(), time.perf_counter()
    bench.start()
    bench.control(Commit(0, limits))
    interval = max(1, limits.gateway.heartbeat_timeout_us // 2)
    start = bench.play_start = bench.play_t
    per_us = bench.clock_hz / US_PER_S
    heartbeat = bench.now_us(bench.t)
    # board.sent index -> the arrival; each exchange frame's arrival, in order
    client_arrival, exchange_arrivals = {}, []
    bar = Progress(len(arrivals)) if progress else None
    mismatches, gap = [], False
    try:
        for k, arrival in enumerate(arrivals):
            bench.play_t = max(bench.play_t, start + int(arrival.t_us * per_us))
            if bench.now_us(bench.play_t) - heartbeat >= interval:
                bench.control(Heartbeat(0))
                heartbeat = bench.now_us(bench.t)
            if arrival.port == "client":
                try:
                    board.client_frame(arrival.data, False)
                except AssertionError as exc:     # includes the scoreboard's Mismatch
                    raise CaptureError(f"frame {arrival.index}: the gateware engine cannot "
                                       f"score it: {str(exc).splitlines()[0]}") from None
                index = len(board.sent) - 1
                client_arrival[index] = arrival
                bench.release("client", arrival.data, False, index)
            else:
                try:
                    board.exchange_frame(arrival.data, False)
                except AssertionError as exc:
                    raise CaptureError(f"frame {arrival.index}: {exc}") from None
                exchange_arrivals.append(arrival)
                bench.release("exchange", arrival.data, False)
            if k % BATCH_FRAMES == BATCH_FRAMES - 1:
                bench.until(bench.play_t)
                if bar is not None:
                    bar.update(k + 1)
        ends = [end for end in bench.last_end.values() if end is not None]
        bench.until(max([bench.play_t, *ends]))
        if bar is not None:
            bar.update(len(arrivals))
        seconds = time.process_time() - begin
        wall = time.perf_counter() - started
        bench.finish()
    except (Mismatch, AssertionError) as exc:
        mismatches.append(str(exc))
        seconds = time.process_time() - begin
        wall = time.perf_counter() - started
    except SequenceGap as exc:
        gap = True
        # The gateway's documented behaviour when the host falls behind: it keeps trading
        # and loses records. The records after the gap cannot be checked against the model.
        mismatches.append(f"the drop copy lost records ({exc}): the capture outruns the "
                          f"drop copy at W = {width}; a larger --max-gap-us spaces it out")
        seconds = time.process_time() - begin
        wall = time.perf_counter() - started

    entries, verdict_cycles = _entries(bench, client_arrival)
    expected = board.expected_egress()
    to_exchange, cycles = [], []
    for (index, _, _), (frame, error), out in zip(expected, board.egress, bench.egress_starts,
                                                   strict=False):
        if client_arrival[index].index is None:
            continue        # an assumed SYN
        cycles.append(out - bench.client_starts[index])
        if not error:
            to_exchange.append(pcap.PcapRecord(client_arrival[index].timestamp_ns, frame))
    to_client = [pcap.PcapRecord(arrival.timestamp_ns, frame) for (frame, error), arrival
                 in zip(board.client_tx, exchange_arrivals, strict=False)
                 if arrival.index is not None and not error]
    counters = {}
    if not gap:     # past a gap, every later run of the harness would raise it again
        bench.write(bench.regmap.encode_write("counter_control", snapshot=1))
        counters = {name: bench.read(name)["value"] for name in COUNTERS}
    gate = bench.gate
    state = {"ingress_counters": {}, "sessions": session_states(gate, limits),
             "kill_gateway": gate.kill_gateway}
    outcome = Outcome(entries, to_exchange, to_client, midstream, notes, len(records),
                      seconds, counters, state, mismatches)
    latency = {"first_byte": latency_figures(cycles, bench.clock_hz),
               "verdict": latency_figures(verdict_cycles, bench.clock_hz),
               "definition": {"first_byte": FIRST_BYTE, "verdict": VERDICT},
               "samples": {"first_byte": cycles, "verdict": verdict_cycles},
               "run": {"cycles": bench.sim.cycle, "harness_s": bench.timing["harness"],
                       "wall_s": wall}}
    return outcome, latency


def _entries(bench, client_arrival) -> tuple[list, list]:
    """The verdict log from the replay's verdicts, each at its VERDICT record's time, and
    each verdict's cycle from its message's last needed byte (:data:`VERDICT`)."""
    records = iter(r for r in bench.record_log if r.kind == Kind.VERDICT)
    entries, cycles = [], []
    for index in sorted(bench.board.replay.verdicts):
        result = bench.board.sent[index][2]
        for event, verdict in bench.board.replay.verdicts[index]:
            record = next(records)
            entries.append(VerdictEntry.of(client_arrival[index].index, record.time_us, event,
                                           verdict, result.void))
            # The record's cycle counts from the core's reset; bench.offset maps the
            # harness's cycles onto it (FastBench.start).
            arrived = bench.client_starts[index] + event.last_offset // bench.width
            cycles.append(record.cycle - bench.offset - arrived)
    return entries, cycles
