"""Whether a port's receive clock (RXC) is running, seen from the core clock domain."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import Out

__all__ = ["ClockAlive"]


class ClockAlive(wiring.Component):
    """RXC runs while the PHY has a link (its RGMII clock stops or drops to 2.5/25 MHz).

    A bit toggled every 8 RXC cycles is synchronised into ``sync``; ``alive`` falls when it
    has not changed for ``timeout`` core cycles. At 125 MHz on both sides it changes every
    8 cycles; a 25 MHz (100 Mb/s) RXC changes it every 40, and the default timeout of 64
    counts that as down, since the gateway forwards only at 1 Gb/s.

    Parameters
    ----------
    domain : str
        The RXC domain.
    timeout : int
        Core cycles without a change before ``alive`` falls.

    Attributes
    ----------
    alive : Out(1), ``sync``
    """

    alive: Out(1)

    def __init__(self, domain: str, timeout: int = 64):
        self._domain = domain
        self._timeout = timeout
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        divider = Signal(3)
        m.d[self._domain] += divider.eq(divider + 1)
        seen = Signal()
        m.submodules.sync = FFSynchronizer(divider[-1], seen)
        seen_d = Signal()
        quiet = Signal(range(self._timeout + 1), init=self._timeout)
        m.d.sync += seen_d.eq(seen)
        with m.If(seen != seen_d):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != self._timeout):
            m.d.sync += quiet.eq(quiet + 1)
        m.d.comb += self.alive.eq(quiet != self._timeout)
        return m
