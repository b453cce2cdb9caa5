"""The event counters (hw/counters.py), narrow enough to saturate, against a Python count."""

import random

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from wiregate.hw.counters import count_event, count_one_of

BITS = 3
TOP = (1 << BITS) - 1


def test_counters_count_and_saturate():
    m = Module()
    event = Signal()
    alone = Signal(BITS)
    count_event(m, alone, event)
    index = Signal(range(5))
    one_of = [Signal(BITS, name=f"one_of{k}") for k in range(5)]
    count_one_of(m, one_of, index, event)
    rng = random.Random(1)
    expected_alone, expected_one_of = 0, [0] * 5
    owed = None        # count_one_of lands a cycle after count_event

    async def bench(ctx):
        nonlocal expected_alone, owed
        for _ in range(400):
            fires, at = rng.random() < 0.6, rng.randrange(5)
            ctx.set(event, fires)
            ctx.set(index, at)
            await ctx.tick()
            if fires:
                expected_alone = min(expected_alone + 1, TOP)
            if owed is not None:
                expected_one_of[owed] = min(expected_one_of[owed] + 1, TOP)
            owed = at if fires else None
            assert ctx.get(alone) == expected_alone
            assert [ctx.get(c) for c in one_of] == expected_one_of
        assert expected_alone == TOP and all(n == TOP for n in expected_one_of)

    sim = Simulator(m)
    sim.add_clock(8e-9)
    sim.add_testbench(bench)
    sim.run()
