"""RxCrossing under the Amaranth simulator: frames cross clock domains intact, and an
overflow never turns into a good frame (seeded random stalls of the read side)."""

import random

import pytest
from amaranth.sim import Simulator

from wiregate.hw.board.rx_crossing import RxCrossing

WRITE_NS, READ_NS = 8.0, 7.0


def check_crossing(seed: int, frames: int, depth: int, read_ready: float):
    rng = random.Random(seed)
    sent = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            for _ in range(frames)]
    dut = RxCrossing("rx", depth)
    sim = Simulator(dut)
    sim.add_clock(READ_NS * 1e-9, domain="sync")
    sim.add_clock(WRITE_NS * 1e-9, domain="rx")
    out, done = [], []

    async def write(ctx):
        for data in sent:
            for i, byte in enumerate(data):
                ctx.set(dut.sink.valid, 1)
                ctx.set(dut.sink.payload, {"data": byte, "last": i == len(data) - 1,
                                           "error": 0})
                await ctx.tick("rx")
            ctx.set(dut.sink.valid, 0)
            await ctx.tick("rx").repeat(rng.randrange(1, 4))
        await ctx.tick("rx").repeat(4 * depth + 40)
        done.append(ctx.get(dut.overflows))

    async def read(ctx):
        frame, first_seen = bytearray(), True
        while not done:
            ready = rng.random() < read_ready
            ctx.set(dut.source.ready, ready)
            await ctx.delay(1e-12)
            if ready and ctx.get(dut.source.valid):
                lane = ctx.get(dut.source.payload)[0]
                assert lane["keep"] == 1
                assert lane["first"] == first_seen, "first flag out of step"
                frame.append(lane["data"])
                first_seen = bool(lane["last"])
                if lane["last"]:
                    out.append((bytes(frame), lane["error"]))
                    frame = bytearray()
            await ctx.tick()
        assert not frame, "a frame was left open"

    sim.add_testbench(write)
    sim.add_testbench(read)
    sim.run()

    # Scoreboard: good frames are exactly sent frames, in order; an errored frame is a
    # prefix of a sent frame plus the terminator byte; frames missing entirely were dropped
    # whole. Every overflow is one errored or one missing frame.
    def matches(data, error, original):
        if not error:
            return data == original
        # What was written before the overflow, then the terminator (a zero byte).
        return data[-1] == 0 and len(data) - 1 < len(original) and \
            original.startswith(data[:-1])

    overflows, errored = done[0], 0
    remaining = iter(sent)
    for data, error in out:
        errored += error
        assert any(matches(data, error, original) for original in remaining), \
            f"{'errored' if error else 'good'} frame {data.hex()} matches no frame sent"
    missing = frames - len(out)
    assert overflows == errored + missing, (overflows, errored, missing)
    return overflows, errored, missing


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_crossing_without_stalls(seed):
    assert check_crossing(seed, frames=30, depth=17, read_ready=1.0) == (0, 0, 0)


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_crossing_overflow_fails_closed(seed):
    overflows, errored, _missing = check_crossing(seed, frames=40, depth=9, read_ready=0.3)
    assert overflows > 0 and errored > 0


def test_depth_must_suit_the_fifo():
    with pytest.raises(ValueError, match="power of 2 plus 1"):
        RxCrossing("rx", 16)
