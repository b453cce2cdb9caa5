"""Whether a port's receive clock (RXC) runs at 125 MHz, seen from the core clock domain."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import Out

__all__ = ["ClockAlive"]

# Core cycles per measurement window, and the changes of the divided RXC a 1 Gb/s link
# must show in it: at 125 MHz the divided clock changes every 4 core cycles (16 a window),
# at 25 MHz (100 Mb/s) every 20 (3 or 4), stopped never.
WINDOW = 64
CHANGES_AT_1G = 8


class ClockAlive(wiring.Component):
    """RXC runs at 125 MHz only while the PHY has a 1 Gb/s link.

    Without a link the PHY's RGMII clock stops or runs at 2.5 MHz, at 100 Mb/s it runs at
    25 MHz; the gateway forwards only at 1 Gb/s. Bit 2 of a counter on RXC (changing every
    4 RXC cycles) is synchronised into ``sync`` and its changes are counted over a window
    of 64 core cycles: 8 or more is a 1 Gb/s clock.

    Parameters
    ----------
    domain : str
        The RXC domain.

    Attributes
    ----------
    alive : Out(1), ``sync``
        Updated at the end of every window.

    Latency
    -------
    One to two windows (64 to 128 core cycles) after the clock starts or stops.
    """

    alive: Out(1)

    def __init__(self, domain: str):
        self._domain = domain
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        divider = Signal(3)
        m.d[self._domain] += divider.eq(divider + 1)
        seen = Signal()
        m.submodules.sync = FFSynchronizer(divider[-1], seen)
        seen_d = Signal()
        window = Signal(range(WINDOW))
        changes = Signal(range(CHANGES_AT_1G + 1))
        m.d.sync += [seen_d.eq(seen), window.eq(window + 1)]
        with m.If(window == WINDOW - 1):
            m.d.sync += [self.alive.eq(changes == CHANGES_AT_1G), changes.eq(0)]
        with m.Elif((seen != seen_d) & (changes != CHANGES_AT_1G)):
            m.d.sync += changes.eq(changes + 1)
        return m
