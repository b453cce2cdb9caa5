"""Holdback under the Amaranth simulator, cycle by cycle against the plain delay model."""

import gc
import random
import warnings

import pytest
from amaranth.hdl import ResetInserter, Signal, UnusedElaboratable
from amaranth.sim import Simulator

from wiregate.hw.egress.holdback import Holdback
from wiregate.sim.beats import (
    delay_cycles,
    frame_cycles,
    frames_from_cycles,
    pack_beat,
    random_frames,
    unpack_beat,
)


def step(ctx, dut, beat):
    """Present ``beat`` (None: idle) and return the output beat of this cycle."""
    valid, word = pack_beat(beat)
    ctx.set(dut.i.valid, valid)
    ctx.set(dut.i.payload.as_value(), word)
    return unpack_beat(ctx.get(dut.o.valid), ctx.get(dut.o.payload.as_value()), dut.width)


def check_holdback(width, delay, seed, n_frames=12, max_len=1600, idle=0.2):
    rng = random.Random(seed)
    frames = random_frames(rng, n_frames, max_len=max_len)
    cycles = frame_cycles(frames, width, rng, idle=idle)
    total = len(cycles) + delay // width + 2
    expected = delay_cycles(cycles, width, delay, total)
    dut = Holdback(width, delay)
    seen = []

    async def testbench(ctx):
        for c in range(total):
            out = step(ctx, dut, cycles[c] if c < len(cycles) else None)
            assert out == expected[c], f"seed {seed}: cycle {c}: {out} != {expected[c]}"
            seen.append(out)
            # H = 0 is a plain wire with no clock domain: step time instead of edges.
            await (ctx.tick() if delay else ctx.delay(8e-9))

    sim = Simulator(dut)
    sim.add_clock(8e-9, if_exists=True)
    sim.add_testbench(testbench)
    sim.run()
    # Independent of the delay model: every frame comes out whole, in order, flags intact.
    assert frames_from_cycles(seen) == frames


@pytest.mark.parametrize("width", [1, 8])
@pytest.mark.parametrize("delay", [0, 1, 7, 8, 27, 64])
def test_random_frames(width, delay):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_holdback(width, delay, seed, n_frames=6 if width == 1 else 20)


@pytest.mark.parametrize("width", [1, 8])
def test_back_to_back_without_idle(width):
    # Frames with no idle between them: at W=8 with H=27 a beat then holds the end of one
    # frame and the start of the next, which the per-lane flags must keep apart.
    check_holdback(width, 27, seed=7, n_frames=40, max_len=20, idle=0.0)


@pytest.mark.parametrize("width", [1, 8])
def test_one_byte_frames(width):
    check_holdback(width, 3, seed=11, n_frames=50, max_len=1, idle=0.3)


def test_continuous_input_is_delayed_exactly():
    # A continuous W=1 stream: output byte k equals input byte k - H, cycle for cycle.
    check_holdback(1, 5, seed=3, n_frames=3, max_len=64, idle=0.0)


@pytest.mark.parametrize(("width", "delay"), [(1, 90), (8, 175), (8, 27)])
def test_reset_forgets_the_line(width, delay):
    # Bytes in the line when reset comes never leave: after it the output is what the delay
    # model gives for the input since the reset alone (the line restarts empty).
    rng = random.Random(5)
    before = frame_cycles(random_frames(rng, 8, max_len=200), width, rng, idle=0.0)
    after = frame_cycles(random_frames(rng, 4, max_len=200), width, rng, idle=0.3)
    total = len(after) + delay // width + 2
    expected = delay_cycles(after, width, delay, total)
    dut = Holdback(width, delay)
    reset = Signal()

    async def testbench(ctx):
        for beat in before:
            step(ctx, dut, beat)
            await ctx.tick()
        ctx.set(reset, 1)
        ctx.set(dut.i.valid, 0)
        await ctx.tick()
        ctx.set(reset, 0)
        for c in range(total):
            out = step(ctx, dut, after[c] if c < len(after) else None)
            assert out == expected[c], f"cycle {c} after reset: {out} != {expected[c]}"
            await ctx.tick()

    sim = Simulator(ResetInserter(reset)(dut))
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize(("args", "error", "message"), [
    ((3, 1), ValueError, "Beat width must be one of (1, 8), not 3"),
    (("8", 1), TypeError, "Beat width must be an integer, not '8'"),
    ((8, -1), ValueError, "Delay must be zero or more bytes, not -1"),
    ((8, 1.5), TypeError, "Delay must be an integer number of bytes, not 1.5"),
])
def test_parameter_errors(args, error, message):
    with pytest.raises(error) as info:
        Holdback(*args)
    assert str(info.value) == message
    # The half-built component would warn "created but never used" whenever it is
    # collected, inside some later test; collect it here, where that is expected.
    del info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()
