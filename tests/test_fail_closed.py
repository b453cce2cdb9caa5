"""FailClosed under the Amaranth simulator, cycle by cycle against a model ``Gate``.

The model sees the same commits, heartbeats and session sync changes at
``t = timebase_us(cycle)``, after the cycle's judgment (the order the component documents);
NOT_LOADED is the model's "session absent from the committed limits", HEARTBEAT its
``heartbeat_fires`` and OUT_OF_SYNC its session flag.
"""

import gc
import random
import warnings
from dataclasses import dataclass

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from wiregate.hw.risk.checks.fail_closed import FailClosed
from wiregate.sw.limits import Endpoint, GatewayLimits, Limits, RateLimit, SessionLimits
from wiregate.sw.model import Commit, Gate, Heartbeat, SessionSync, heartbeat_fires
from wiregate.sw.regmap import RegisterMap
from wiregate.sw.tables import compile_limits
from wiregate.sw.timebase import CLOCK_HZ, timebase_us

MAX32 = (1 << 32) - 1
N_SESSIONS = 4
REGMAP = RegisterMap(n_sessions=N_SESSIONS, n_symbols=8, symbol_slots=8)


def limits(timeout_us, sessions):
    return Limits(
        gateway=GatewayLimits(credit=1, heartbeat_timeout_us=timeout_us,
                              reference_max_age_us=7),
        sessions=tuple(SessionLimits(index=s, name=f"s{s}", client=Endpoint(1, 1 + s),
                                     exchange=Endpoint(2, 2), max_order_quantity=1,
                                     max_order_notional=1, credit=1,
                                     rate=RateLimit(burst=1, refill_us=1, trip_after=0))
                       for s in sessions),
        symbols=())


@dataclass
class Cycle:
    commit: Limits | None = None
    heartbeat: bool = False
    sync: tuple | None = None                 # (session, in_sync)
    # (session, session_loaded); None: what the core would present, the session's
    # presence in the committed limits.
    judge: tuple = (0, None)


def check_fail_closed(cycles, clock_hz, label):
    dut = FailClosed(REGMAP)
    gate = Gate(n_sessions=N_SESSIONS, n_symbols=8, n_orders=1, n_executions=1)
    outcomes = []

    async def testbench(ctx):
        for c, cycle in enumerate(cycles):
            t = timebase_us(c, clock_hz)
            where = f"{label}: cycle {c} (t={t})"
            ctx.set(dut.tick, c > 0 and t != timebase_us(c - 1, clock_hz))
            ctx.set(dut.commit.valid, cycle.commit is not None)
            if cycle.commit is not None:
                ctx.set(dut.commit.gateway,
                        compile_limits(cycle.commit, REGMAP).entries["gateway_limits"][0])
            ctx.set(dut.heartbeat, cycle.heartbeat)
            ctx.set(dut.in_sync, sum(st.in_sync << s for s, st in enumerate(gate.sessions)))
            session, session_loaded = cycle.judge
            present = gate.loaded and session in {x.index for x in gate.limits.sessions}
            ctx.set(dut.judge.session, session)
            ctx.set(dut.judge.session_loaded, present if session_loaded is None
                    else session_loaded)

            gateway = gate.limits.gateway if gate.loaded else None
            lost = heartbeat_fires(t, gate.last_heartbeat, gateway)
            expected = (not present, lost, not gate.sessions[session].in_sync)
            got = (ctx.get(dut.judge.not_loaded), ctx.get(dut.judge.heartbeat),
                   ctx.get(dut.judge.out_of_sync))
            assert got == expected, f"{where}: judgment {cycle.judge}"
            assert (ctx.get(dut.loaded), ctx.get(dut.heartbeat_lost)) == (gate.loaded, lost), \
                f"{where}: status"
            outcomes.append(got)

            if cycle.commit is not None:
                gate.apply(Commit(t, cycle.commit))
            if cycle.heartbeat:
                gate.apply(Heartbeat(t))
            if cycle.sync is not None:
                gate.apply(SessionSync(t, *cycle.sync))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return outcomes


# --- Seeded random sequences ------------------------------------------------------------------


def random_cycles(rng, n_cycles):
    """Heartbeats at random gaps around random timeouts, commits of random session sets
    (the first one late, after heartbeats that must not count), sync flips, and a judgment
    every cycle whose ``session_loaded`` is what the core would say, except noise before
    the first commit."""
    cycles = []
    first_commit = rng.randrange(n_cycles // 10)
    for c in range(n_cycles):
        cycle = Cycle(heartbeat=rng.random() < 0.012)
        if c == first_commit or (c > first_commit and rng.random() < 0.005):
            timeout = rng.choice([0, 1, 2, rng.randint(3, 60), rng.randint(3, 60), MAX32])
            sessions = [s for s in range(N_SESSIONS) if rng.random() < 0.7]
            cycle.commit = limits(timeout, sessions)
        if rng.random() < 0.01:
            cycle.sync = (rng.randrange(N_SESSIONS), rng.random() < 0.6)
        cycle.judge = (rng.randrange(N_SESSIONS),
                       rng.random() < 0.5 if c <= first_commit else None)
        cycles.append(cycle)
    return cycles


@pytest.mark.parametrize("clock_hz", [1_000_000, 2_500_000, CLOCK_HZ[1]])
def test_random_sequences(clock_hz):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    outcomes = check_fail_closed(random_cycles(random.Random(seed), 6000), clock_hz,
                                 f"seed {seed}")
    assert {o[0] for o in outcomes} == {True, False}


# --- Hand-picked cases (1 MHz: cycle c is microsecond c) --------------------------------------


def test_heartbeat_timeout_boundary():
    # Timeout 3, committed at t=1 (the first commit is a heartbeat): silence 3 passes at
    # t=4, silence 4 fires at t=5; the heartbeat at t=5 is after that judgment, so t=6 passes.
    cycles = [Cycle(), Cycle(commit=limits(3, [0])), Cycle(), Cycle(), Cycle(),
              Cycle(heartbeat=True), Cycle()]
    assert [o[1] for o in check_fail_closed(cycles, 1_000_000, "boundary")] == [
        False, False, False, False, False, True, False]


def test_timeout_zero_fires_from_the_next_microsecond():
    cycles = [Cycle(commit=limits(0, [0]), heartbeat=True), Cycle(), Cycle(heartbeat=True),
              Cycle()]
    assert [o[1] for o in check_fail_closed(cycles, 1_000_000, "zero")] == [
        False, True, True, True]


def test_only_the_first_commit_is_a_heartbeat():
    # Timeout 1 from the commit at t=1: silence 2 fires at t=3, and the re-commit then
    # (even with a longer timeout, from the next judgment on) restarts nothing.
    cycles = [Cycle(), Cycle(commit=limits(1, [0])), Cycle(), Cycle(commit=limits(2, [0])),
              Cycle(), Cycle(heartbeat=True), Cycle()]
    assert [o[1] for o in check_fail_closed(cycles, 1_000_000, "first")] == [
        False, False, False, True, True, True, False]


def test_not_loaded_ignores_the_core_before_a_commit():
    cycles = [Cycle(judge=(1, True)), Cycle(judge=(1, True), commit=limits(9, [0])),
              Cycle(judge=(1, False)), Cycle(judge=(0, True))]
    assert [o[0] for o in check_fail_closed(cycles, 1_000_000, "loaded")] == [
        True, True, True, False]


def test_out_of_sync():
    cycles = [Cycle(sync=(2, False)), Cycle(judge=(2, False), sync=(2, True)),
              Cycle(judge=(2, False))]
    assert [o[2] for o in check_fail_closed(cycles, 1_000_000, "sync")] == [
        False, True, False]


def test_parameter_errors():
    with pytest.raises(TypeError) as info:
        FailClosed(8)
    assert str(info.value) == "regmap must be a RegisterMap, not 8"
    del info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()
