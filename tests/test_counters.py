"""The event counters (hw/counters.py) against a Python count: the saturating ones narrow
enough to saturate, the live ones narrow enough to wrap."""

import random

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from wiregate.hw.counters import count_event, live_event, live_one_of

BITS = 3
TOP = (1 << BITS) - 1


def test_counters_count_saturate_and_wrap():
    m = Module()
    event = Signal()
    saturating, live = Signal(BITS), Signal(BITS)
    count_event(m, saturating, event)
    live_event(m, live, event)
    index = Signal(range(5))
    one_of = [Signal(BITS, name=f"one_of{k}") for k in range(5)]
    live_one_of(m, one_of, index, event)
    rng = random.Random(1)
    events, events_one_of = 0, [0] * 5
    owed = None        # live_one_of lands a cycle after live_event

    async def bench(ctx):
        nonlocal events, owed
        for _ in range(400):
            fires, at = rng.random() < 0.6, rng.randrange(5)
            ctx.set(event, fires)
            ctx.set(index, at)
            await ctx.tick()
            events += fires
            if owed is not None:
                events_one_of[owed] += 1
            owed = at if fires else None
            assert ctx.get(saturating) == min(events, TOP)
            assert ctx.get(live) == events % (TOP + 1)
            assert [ctx.get(c) for c in one_of] == [n % (TOP + 1) for n in events_one_of]
        assert events > TOP and all(n > TOP for n in events_one_of)

    sim = Simulator(m)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.run()
