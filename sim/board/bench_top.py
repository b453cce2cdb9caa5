"""The board shell as a Verilator top, and the Verilog it needs beside Amaranth's."""

from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow, In

from wiregate.hw.board.liteeth_gen import generate
from wiregate.hw.board.shell import BoardShell

from ..export import BUILD_ROOT

__all__ = ["BoardBench", "bench_sources"]

ECP5_MODELS = Path(__file__).resolve().parent / "ecp5_models.v"


class BoardBench(wiring.Component):
    """:class:`BoardShell` with one more input: the clock the bench's RGMII sinks sample on.

    On the board the transmitted RGMII clock is delayed by a quarter period (``DELAYG``) so
    the PHY samples mid-bit; the simulation models of the delay are wires, so the bench
    drives ``sample_clk``, the core clock shifted by 2 ns, and gives it to the sinks.

    Parameters
    ----------
    fifo_depth : int or None
        Bytes of each receive FIFO; None: the bitstream's for ``core``.
    core : wiring.Component or None
        As :class:`BoardShell`'s (None: the pass-through).
    """

    def __init__(self, fifo_depth: int | None = None, core=None):
        self._shell = BoardShell(core, fifo_depth=fifo_depth)
        super().__init__({"sample_clk": In(1), **self._shell.signature.members})

    def elaborate(self, platform):
        m = Module()
        m.submodules.shell = shell = self._shell
        for name, member in shell.signature.members.items():
            mine, theirs = getattr(self, name), getattr(shell, name)
            if isinstance(theirs, wiring.PureInterface):
                wiring.connect(m, bench=wiring.flipped(mine), shell=theirs)
            elif member.flow == Flow.In:
                m.d.comb += theirs.eq(mine)
            else:
                m.d.comb += mine.eq(theirs)
        return m


def bench_sources() -> list[Path]:
    """The same LiteEth Verilog the bitstream builds from, and the ECP5 primitive models."""
    mac = generate(BUILD_ROOT / "liteeth", tx_delay=2e-9, rx_delay=2e-9)
    return [mac, ECP5_MODELS]
