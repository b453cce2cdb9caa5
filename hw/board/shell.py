"""Two RGMII ports around a core: the board-independent part of a wiregate bitstream."""

from amaranth.hdl import ClockDomain, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import Out

from .clock_alive import ClockAlive
from .liteeth_gen import MODULE_NAME
from .pass_through import PassThrough
from .rgmii_mac import RgmiiMac, rgmii_signature
from .rx_crossing import RxCrossing

__all__ = ["BoardShell"]

# Port 0 faces the clients, port 1 the exchange.
PORTS = ("client", "exchange")


class BoardShell(wiring.Component):
    """MAC, receive crossing and link detection per port, and the core between the ports.

    The core for now is :class:`PassThrough`. The ``sync`` domain is the core clock (125 MHz
    from the board's PLL) and also clocks both transmitters; each port's receive side runs
    on its own RXC (domains ``rx0`` and ``rx1``, made here from the pins).

    Parameters
    ----------
    fifo_depth : int
        Bytes of each :class:`RxCrossing`.
    mac_module : str
        Name of the generated LiteEth Verilog module.

    Attributes
    ----------
    rgmii0, rgmii1 : rgmii_signature
        Port 0 (clients) and port 1 (exchange).
    link : Out(2)
        Per port: RXC is running at 1 Gb/s.
    overflowed : Out(2)
        Per port, sticky: a receive FIFO overflowed (a frame was failed closed).
    level0, level1 : ``sync``
        Fill of each receive FIFO (read for the benches; a register later).
    core_rx_valid, core_tx_valid : Out(2)
        Per port: a byte enters the core from the port's receive side / is offered to the
        port's transmitter (for activity LEDs and the latency bench).

    Latency
    -------
    See ``docs/boards.md`` (measured wire to wire in ``sim/board``).
    """

    def __init__(self, fifo_depth: int = 1025, mac_module: str = MODULE_NAME):
        self._fifo_depth = fifo_depth
        self._mac_module = mac_module
        super().__init__({
            "rgmii0": Out(rgmii_signature()),
            "rgmii1": Out(rgmii_signature()),
            "link": Out(2),
            "overflowed": Out(2),
            "level0": Out(range(fifo_depth + 1)),
            "level1": Out(range(fifo_depth + 1)),
            "core_rx_valid": Out(2),
            "core_tx_valid": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = PassThrough()
        for n, (name, pins) in enumerate(zip(PORTS, (self.rgmii0, self.rgmii1), strict=True)):
            rx = f"rx{n}"
            cd = ClockDomain(rx, local=True)
            m.domains += cd
            m.d.comb += cd.clk.eq(pins.rx_clk)
            m.submodules[f"{rx}_reset"] = ResetSynchronizer(ResetSignal("sync"), domain=rx)
            m.submodules[f"mac{n}"] = mac = RgmiiMac(rx, self._mac_module)
            m.submodules[f"crossing{n}"] = crossing = RxCrossing(rx, self._fifo_depth)
            m.submodules[f"alive{n}"] = alive = ClockAlive(rx)
            wiring.connect(m, pins=wiring.flipped(pins), mac=mac.rgmii)
            wiring.connect(m, mac=mac.rx, crossing=crossing.sink)
            wiring.connect(m, crossing=crossing.source, core=getattr(core, f"{name}_rx"))
            m.d.comb += [getattr(self, f"level{n}").eq(crossing.level),
                         self.core_rx_valid[n].eq(crossing.source.valid)]
            overflowed = Signal()
            with m.If(crossing.overflows != 0):
                m.d[rx] += overflowed.eq(1)
            m.submodules[f"overflowed{n}"] = FFSynchronizer(overflowed, self.overflowed[n])
            m.d.comb += self.link[n].eq(alive.alive)
        # Transmit: each port sends what the core produced for it.
        for n, name in enumerate(PORTS):
            out = getattr(core, f"{name}_tx")
            mac = m.submodules[f"mac{n}"]
            lane = out.payload[0]
            m.d.comb += [
                mac.tx.valid.eq(out.valid), out.ready.eq(mac.tx.ready),
                mac.tx.payload.data.eq(lane.data), mac.tx.payload.last.eq(lane.last),
                mac.tx.payload.error.eq(lane.error),
                self.core_tx_valid[n].eq(out.valid),
            ]
        return m
