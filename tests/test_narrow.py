"""The width adapter (hw/narrow.py) under the Amaranth simulator: random beats in, the host's
ready at random, every lane out in order with its flags, and no beat lost or repeated."""

import random

import pytest
from amaranth.sim import Simulator

from wiregate.hw.narrow import Narrow


@pytest.mark.parametrize("width", [1, 8])
def test_lanes_leave_in_order(width):
    dut = Narrow(width)
    rng = random.Random(width)
    beats = [[{"data": rng.randrange(256), "keep": 1, "first": rng.randrange(2),
               "last": rng.randrange(2), "error": rng.randrange(2)} for _ in range(width)]
             for _ in range(60)]
    expected = [lane for beat in beats for lane in beat]
    got = []

    async def source(ctx):
        for beat in beats:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, beat)
            while True:
                *_, ready = await ctx.tick().sample(dut.i.ready)
                if ready:
                    break
            ctx.set(dut.i.valid, 0)
            for _ in range(rng.choice((0, 0, 0, 3))):       # idle now and then
                await ctx.tick()

    async def sink(ctx):
        cycles = 0
        while len(got) < len(expected):
            cycles += 1
            assert cycles < 100 * len(expected), f"stalled after {len(got)} lanes"
            ctx.set(dut.o.ready, rng.random() < 0.7)
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload)
            if valid and ready:
                lane = payload[0]
                got.append({name: int(getattr(lane, name))
                            for name in ("data", "keep", "first", "last", "error")})

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    assert got == expected
