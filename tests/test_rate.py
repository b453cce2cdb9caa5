"""Rate under the Amaranth simulator, cycle by cycle against the model's bucket functions.

The scoreboard keeps one model ``SessionState`` per session and applies ``rate_commit``,
``rate_take`` and ``rate_give_back`` at ``t = timebase_us(cycle)``, in the order the
component documents for events in one cycle (the checkpoint before the judgment; a
judgment, a restore and a commit never share a cycle); the
hardware's limits come from the host compiler (``compile_limits``), not from the test.
With ``take_latency`` 1 the model still takes at the judgment's ``t``; the hardware takes in
the next cycle, which the sequences leave free of events, and its read-back must already
show the take there.
"""

import gc
import itertools
import random
import warnings
from dataclasses import dataclass

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from wiregate.hw.risk.checks.rate import Rate
from wiregate.sw.limits import (
    RATE_BURST_MAX,
    RATE_REFILL_MAX,
    RATE_TRIP_MAX,
    Endpoint,
    GatewayLimits,
    Limits,
    RateLimit,
    SessionLimits,
)
from wiregate.sw.model import SessionState, rate_commit, rate_give_back, rate_take, tokens_at
from wiregate.sw.regmap import RegisterMap
from wiregate.sw.tables import compile_limits
from wiregate.sw.timebase import CLOCK_HZ, timebase_us

GATEWAY = GatewayLimits(credit=0, heartbeat_timeout_us=0, reference_max_age_us=0)


def regmap(n_sessions):
    return RegisterMap(n_sessions=n_sessions, n_symbols=8, symbol_slots=8)


def session(index, burst, refill_us, trip_after, rng=None):
    """A session's limits; the fields Rate must ignore get random values when ``rng``."""
    other = (lambda bits: rng.getrandbits(bits)) if rng else (lambda bits: 0)
    return SessionLimits(index=index, name=f"s{index}",
                         client=Endpoint(0x0A000001 + index, 40000 + index),
                         exchange=Endpoint(0x0A0000FE, 15000),
                         max_order_quantity=other(32), max_order_notional=other(64),
                         credit=other(64),
                         rate=RateLimit(burst=burst, refill_us=refill_us, trip_after=trip_after))


@dataclass
class Cycle:
    """What the core presents in one cycle."""

    commit: tuple | None = None       # per session: SessionLimits or None (not loaded)
    judge: tuple | None = None        # (session, others_fired)
    checkpoint: int | None = None     # session
    restore: bool = False


@dataclass
class Frame:
    """The checkpoint as the model's rule 10 keeps it."""

    session: int
    throttle_count: int
    throttled: bool
    taken: int = 0


def check_rate(cycles, n_sessions, clock_hz, label, take_latency=0):
    """Run ``cycles`` and compare every judgment and the read-back of every cycle.

    Returns the (fire, trip) of each judgment, for tests that also check them by hand.
    """
    if take_latency:
        for before, cycle in itertools.pairwise(cycles):
            assert before.judge is None or cycle == Cycle(), \
                f"{label}: the cycle after a judgment must be free at take_latency 1"
    rmap = regmap(n_sessions)
    dut = Rate(rmap, take_latency=take_latency)
    states = [SessionState(orders=[], executions=[], order_verdicts=[], modify_verdicts=[])
              for _ in range(n_sessions)]
    active = [None] * n_sessions
    # The bank entries of sessions not loaded hold noise: an entry the host left behind
    # must not matter.
    noise = random.Random(label)
    images = {}
    for cycle in cycles:
        if cycle.commit is not None and cycle.commit not in images:
            limits = Limits(GATEWAY, tuple(x for x in cycle.commit if x is not None), ())
            entries = compile_limits(limits, rmap).entries["session_limits"]
            images[cycle.commit] = [
                entry if cycle.commit[s] else {
                    name: noise.getrandbits(rmap.table("session_limits").field(name).width)
                    for name in entry}
                for s, entry in enumerate(entries)]
    outcomes = []

    async def testbench(ctx):
        nonlocal active
        frame = None
        for c, cycle in enumerate([*cycles, Cycle()]):
            t = timebase_us(c, clock_hz)
            where = f"{label}: cycle {c} (t={t})"
            ctx.set(dut.tick, c > 0 and t != timebase_us(c - 1, clock_hz))
            ctx.set(dut.commit.valid, cycle.commit is not None)
            if cycle.commit is not None:
                ctx.set(dut.commit.limits, list(images[cycle.commit]))
                ctx.set(dut.commit.loaded, sum(1 << s for s, x in enumerate(cycle.commit)
                                               if x is not None))
            ctx.set(dut.judge.valid, cycle.judge is not None)
            if cycle.judge is not None:
                ctx.set(dut.judge.session, cycle.judge[0])
                ctx.set(dut.judge.others_fired, cycle.judge[1])
            ctx.set(dut.checkpoint.valid, cycle.checkpoint is not None)
            ctx.set(dut.checkpoint.session, cycle.checkpoint or 0)
            ctx.set(dut.restore, cycle.restore)

            for s, st in enumerate(states):
                tokens = (tokens_at(st.tokens, st.refill_mark, active[s].rate, t)[0]
                          if active[s] else 0)
                got = (ctx.get(dut.tokens[s]), ctx.get(dut.throttled[s]),
                       ctx.get(dut.throttle_count[s]))
                assert got == (tokens, st.throttled, st.throttle_count), \
                    f"{where}: session {s} read-back"

            if cycle.checkpoint is not None:
                st = states[cycle.checkpoint]
                frame = Frame(cycle.checkpoint, st.throttle_count, st.throttled)
            if cycle.judge is not None:
                s, others = cycle.judge
                expected = (False, False)
                if active[s] is not None:
                    expected = rate_take(states[s], active[s].rate, t, others)
                    if not expected[0] and not others and frame and frame.session == s:
                        frame.taken += 1
                got = (ctx.get(dut.judge.fire), ctx.get(dut.judge.trip))
                assert got == expected, f"{where}: judgment {cycle.judge}"
                outcomes.append(got)
            if cycle.restore and frame is not None:
                st = states[frame.session]
                st.throttle_count, st.throttled = frame.throttle_count, frame.throttled
                if active[frame.session] is not None:
                    rate_give_back(st, active[frame.session].rate, t, frame.taken)
                frame = None
            if cycle.commit is not None:
                for s, st in enumerate(states):
                    rate_commit(st, active[s], cycle.commit[s], t)
                active = list(cycle.commit)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return outcomes


# --- Seeded random sequences ------------------------------------------------------------------


def random_rate(rng):
    return (rng.choice([0, 1, 2, 3, rng.randint(0, 6), rng.randint(0, 6), RATE_BURST_MAX]),
            rng.choice([0, 1, 2, rng.randint(1, 8), rng.randint(1, 8), rng.randint(1, 40),
                        RATE_REFILL_MAX]),
            rng.choice([0, 1, 2, 3, rng.randint(0, 8), RATE_TRIP_MAX]))


def random_commit(rng, n_sessions):
    sessions = []
    for s in range(n_sessions):
        if rng.random() < 0.2:
            sessions.append(None)
            continue
        burst, refill_us, trip_after = random_rate(rng)
        sessions.append(session(s, burst, refill_us, trip_after, rng))
    return tuple(sessions)


def random_cycles(rng, n_sessions, n_cycles):
    """Commits of random limits (sessions dropping out and coming back), judgments with
    random ``others_fired``, and frames: a checkpoint, judgments mostly of its session,
    sometimes a restore. A commit or a restore has its cycle to itself (one event a cycle,
    as the engine gives them); a checkpoint comes alone or with its frame's judgment."""
    cycles = []
    frame_session = 0
    for c in range(n_cycles):
        cycle = Cycle()
        roll = rng.random()
        if c == 0 or roll < 0.02:
            cycle.commit = random_commit(rng, n_sessions)
        elif roll < 0.06:
            cycle.restore = True
        else:
            if rng.random() < 0.05:
                cycle.checkpoint = frame_session = rng.randrange(n_sessions)
            if rng.random() < 0.6:
                s = frame_session if rng.random() < 0.6 else rng.randrange(n_sessions)
                cycle.judge = (s, rng.random() < 0.3)
        cycles.append(cycle)
    return cycles


def spaced(cycles, take_latency):
    """At take_latency 1, a free cycle after each judgment (as the engine at W = 1 gives)."""
    if not take_latency:
        return cycles
    return [x for cycle in cycles for x in ([cycle, Cycle()] if cycle.judge else [cycle])]


@pytest.mark.parametrize("take_latency", [0, 1])
@pytest.mark.parametrize("clock_hz", [1_000_000, 2_500_000, CLOCK_HZ[8]])
def test_random_sequences(clock_hz, take_latency):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    n_cycles = 6000
    cycles = spaced(random_cycles(random.Random(seed), 4, n_cycles), take_latency)
    outcomes = check_rate(cycles, 4, clock_hz, f"seed {seed}", take_latency)
    assert len(outcomes) > 0.3 * len(cycles)
    assert any(fire for fire, _ in outcomes) and any(trip for _, trip in outcomes)


@pytest.mark.parametrize("take_latency", [0, 1])
def test_one_session(take_latency):
    # One session: the session index is zero bits wide.
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_rate(spaced(random_cycles(random.Random(seed), 1, 1500), take_latency), 1,
               2_500_000, f"seed {seed}", take_latency)


def test_recommit_changing_refill():
    # A fixed seed, so that the sequence surely changes refill_us under loaded sessions (the
    # random runs do too, at random).
    check_rate(random_cycles(random.Random(1), 4, 3000), 4, 2_500_000,
               "seed 1")


# --- Hand-picked cases (1 MHz: cycle c is microsecond c) --------------------------------------


def only(burst, refill_us, trip_after):
    return (session(0, burst, refill_us, trip_after),)


def judge_each(n, others_fired=False):
    return [Cycle(judge=(0, others_fired)) for _ in range(n)]


def test_refill_in_the_judgment_cycle():
    # burst 1, refill 2 from t=0: the token taken at t=1 is back at t=2, in time for the
    # judgment of that very microsecond; t=3 finds it empty again.
    cycles = [Cycle(commit=only(1, 2, 0)), *judge_each(3)]
    assert check_rate(cycles, 1, 1_000_000, "refill") == [
        (False, False), (False, False), (True, False)]


def test_refill_while_a_take_is_pending():
    # take_latency 1, burst 1, refill 2 from t=0: the full bucket's token is judged taken at
    # t=1 and leaves at t=2, the refill instant, which must still credit (the model has
    # taken it at t=1), so t=3 finds the token back.
    cycles = [Cycle(commit=only(1, 2, 0)), Cycle(judge=(0, False)), Cycle(),
              Cycle(judge=(0, False)), Cycle()]
    assert check_rate(cycles, 1, 1_000_000, "pending refill", take_latency=1) == [
        (False, False), (False, False)]


def test_empty_bucket_trips_at_trip_after():
    # burst 0: every order is throttled; trip_after 3 trips from the third on.
    cycles = [Cycle(commit=only(0, 0, 3)), *judge_each(5)]
    assert check_rate(cycles, 1, 1_000_000, "trip") == [
        (True, False), (True, False), (True, True), (True, True), (True, True)]


@pytest.mark.parametrize("trip_after", [0, RATE_TRIP_MAX])
def test_never_trips(trip_after):
    cycles = [Cycle(commit=only(0, 0, trip_after)), *judge_each(4)]
    assert check_rate(cycles, 1, 1_000_000, "no trip") == [(True, False)] * 4


def test_others_fired_takes_no_token():
    # With another check firing the order takes nothing; the last token stays for later.
    cycles = [Cycle(commit=only(1, 0, 0)), *judge_each(3, True), *judge_each(2)]
    assert check_rate(cycles, 1, 1_000_000, "others") == [(False, False)] * 4 + [(True, False)]


def test_acceptance_clears_the_throttle():
    # refill 4, trip_after 3: throttled at t=2 and t=3, the refill at t=4 accepts and
    # clears the count, so only the third throttle after it (t=7) trips.
    cycles = [Cycle(commit=only(1, 4, 3)), *judge_each(7)]
    assert check_rate(cycles, 1, 1_000_000, "clear") == [
        (False, False), (True, False), (True, False), (False, False), (True, False),
        (True, False), (True, True)]


def test_commits_between_judgments():
    # A re-commit caps the bucket and never refills it: the token taken before it stays
    # taken, and the next order trips at trip_after 1. A session out of the limits is not
    # judged; loaded again, it starts with a full bucket.
    cycles = [Cycle(commit=only(1, 0, 1)), Cycle(judge=(0, False)), Cycle(commit=only(5, 0, 1)),
              Cycle(judge=(0, False)), Cycle(commit=(None,)), *judge_each(2),
              Cycle(commit=only(2, 0, 0)), *judge_each(3)]
    assert check_rate(cycles, 1, 1_000_000, "commit") == [
        (False, False), (True, True), (False, False), (False, False), (False, False),
        (False, False), (True, False)]


def test_recommit_caps_and_keeps_refill_instants():
    # Tokens above a smaller burst are cut; the refill instants of refill 4 carry on.
    cycles = [Cycle(commit=only(8, 4, 0)), *judge_each(2), Cycle(commit=only(3, 4, 0)),
              *judge_each(6)]
    check_rate(cycles, 1, 1_000_000, "recommit")


def test_restore_gives_back_and_caps():
    # Session 0's frame takes three tokens (one refilled at t=3) and is throttled at t=5;
    # the restore at t=6 (where a token is refilled too) gives back three, capped at burst
    # 2, and clears the throttle. Session 1's take at t=2 is not the frame's. A second
    # restore does nothing.
    cycles = [Cycle(commit=(session(0, 2, 3, 0), session(1, 1, 0, 0))),
              Cycle(checkpoint=0, judge=(0, False)), Cycle(judge=(1, False)),
              *judge_each(3), Cycle(restore=True), *judge_each(1), Cycle(restore=True),
              *judge_each(3)]
    assert check_rate(cycles, 2, 1_000_000, "restore") == [
        (False, False), (False, False), (False, False), (False, False), (True, False),
        (False, False), (False, False), (False, False), (True, False)]


def test_parameter_errors():
    with pytest.raises(TypeError) as info:
        Rate("8 sessions")
    assert str(info.value) == "regmap must be a RegisterMap, not '8 sessions'"
    with pytest.raises(ValueError) as info:
        Rate(regmap(1), take_latency=2)
    assert str(info.value) == "take_latency must be 0 or 1, not 2"
    del info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()
