"""ClockAlive under the Amaranth simulator: a 125 MHz RXC is a link, 25 MHz or none is not."""

import pytest
from amaranth.sim import Simulator

from wiregate.hw.board.clock_alive import ClockAlive

CORE_S = 8e-9


def alive_after(rxc_period_s: float | None, cycles: int = 400) -> int:
    dut = ClockAlive("rx")
    sim = Simulator(dut)
    sim.add_clock(CORE_S, domain="sync")
    if rxc_period_s is not None:
        sim.add_clock(rxc_period_s, domain="rx")
    result = []

    async def bench(ctx):
        await ctx.tick().repeat(cycles)
        result.append(ctx.get(dut.alive))

    sim.add_testbench(bench)
    sim.run()
    return result[0]


@pytest.mark.parametrize("ppm", [-100, 0, 100])
def test_gigabit_rxc_is_a_link(ppm):
    assert alive_after(CORE_S / (1 + ppm * 1e-6)) == 1


@pytest.mark.parametrize("period", [40e-9, 400e-9])     # 100 Mb/s, 10 Mb/s
def test_slower_rxc_is_not(period):
    assert alive_after(period) == 0


def test_stopped_rxc_is_not():
    assert alive_after(None) == 0
