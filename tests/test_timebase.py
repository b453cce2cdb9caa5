"""Timebase: sw.timebase against exact fractions, the gateware cycle by cycle against it."""

import gc
import math
import random
import warnings
from fractions import Fraction

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from wiregate.hw.timebase import Timebase
from wiregate.sw.timebase import CLOCK_HZ, timebase_us


@pytest.mark.parametrize("clock_hz", [*CLOCK_HZ.values(), 1_000_000, 2_500_000, 7_812_500])
def test_timebase_us_is_the_exact_floor(clock_hz):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    cycles = [0, 1, clock_hz - 1, clock_hz, 86_400 * clock_hz, (1 << 64) - 1]
    cycles += [rng.randrange(1 << 64) for _ in range(2000)]
    for c in cycles:
        assert timebase_us(c, clock_hz) == math.floor(Fraction(c, clock_hz) * 10**6), c


def test_timebase_us_landmarks():
    # 156.25 MHz: microseconds of 156 and 157 cycles, four of them in 625 cycles.
    hz = CLOCK_HZ[8]
    assert [timebase_us(c, hz) for c in (156, 157, 312, 313, 468, 469, 624, 625)] == [
        0, 1, 1, 2, 2, 3, 3, 4]
    assert timebase_us(125, CLOCK_HZ[1]) == 1 and timebase_us(124, CLOCK_HZ[1]) == 0


def check_timebase(clock_hz, n_cycles):
    dut = Timebase(clock_hz)

    async def testbench(ctx):
        for c in range(n_cycles):
            now = timebase_us(c, clock_hz)
            stepped = c > 0 and now != timebase_us(c - 1, clock_hz)
            got = (ctx.get(dut.cycle), ctx.get(dut.now_us), ctx.get(dut.tick))
            assert got == (c, now, stepped), f"clock {clock_hz}: cycle {c}: {got}"
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize(("clock_hz", "n_cycles"), [
    (CLOCK_HZ[1], 4000),        # 125 cycles per microsecond
    (CLOCK_HZ[8], 4000),        # 156.25: the pattern repeats every 625 cycles
    (1_000_000, 300),           # one microsecond per cycle: tick in every cycle but the first
    (3_000_000, 3000),          # small integer ratio, many microseconds
    (2_500_000, 3000),          # 2.5 cycles per microsecond
    (1_600_000, 3000),          # 1.6: num 5, den 8
    (7_812_500, 3000),          # 7.8125: num 16, den 125
])
def test_cycle_by_cycle(clock_hz, n_cycles):
    check_timebase(clock_hz, n_cycles)


@pytest.mark.parametrize(("clock_hz", "error", "message"), [
    (999_999, ValueError, "Clock frequency must be at least 1000000 Hz, not 999999"),
    (125e6, TypeError, "Clock frequency must be an integer number of Hz, not 125000000.0"),
    (True, TypeError, "Clock frequency must be an integer number of Hz, not True"),
])
def test_parameter_errors(clock_hz, error, message):
    with pytest.raises(error) as info:
        Timebase(clock_hz)
    assert str(info.value) == message
    del info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()
