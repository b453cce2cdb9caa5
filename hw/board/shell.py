"""Two RGMII ports around a core: the board-independent part of a wiregate bitstream."""

from amaranth.hdl import ClockDomain, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import In, Out

from .clock_alive import ClockAlive
from .frame_pacer import FramePacer
from .liteeth_gen import MODULE_NAME
from .pass_through import PassThrough
from .rgmii_mac import RgmiiMac, rgmii_signature
from .rx_crossing import RxCrossing
from .uart_bridge import UartBridge, uart_divisor

__all__ = ["RX_FIFO_DEPTH", "BoardShell"]

# Port 0 faces the clients, port 1 the exchange.
PORTS = ("client", "exchange")
CORE_HZ = 125e6
# Bytes of each receive FIFO (RxCrossing's rule: a power of 2 plus 1; docs/boards.md, "Clock
# crossing and the ±100 ppm budget"). The pass-through's is a block RAM: 40 ms of saturated
# line rate at the worst 200 ppm. The gateway's tables need every block RAM of the Versa's
# part, so its FIFOs are LUT RAM (a 64-deep memory is, 128 is not): 54 bytes of slack carry
# 2.2 ms of saturated line rate at the worst 200 ppm.
RX_FIFO_DEPTH = {"pass-through": 1025, "gateway": 65}
# The FIFO between a core that cannot stall and the transmit MAC: the preamble stall (8
# bytes) and a margin; a power of 2 plus 1 (RxCrossing's rule).
TX_FIFO_DEPTH = 33


class BoardShell(wiring.Component):
    """MAC, receive crossing and link detection per port, the core between the ports, and
    the UART control bridge.

    The core is :class:`PassThrough` or the board profile's
    :class:`~wiregate.hw.gateway.Gateway` (W = 1). The ``sync`` domain is the core clock
    (125 MHz from the board's PLL) and also clocks both transmitters; each port's receive
    side runs on its own RXC (domains ``rx0`` and ``rx1``, made here from the pins).

    The pass-through's streams carry ``ready``: the transmitter's stalls reach back into the
    receive FIFO. The gateway's do not (its order path cannot stall): a
    :class:`FramePacer` feeds it frames no faster than the transmitter sends them, and a
    small fail-closed FIFO (an :class:`RxCrossing` with both sides on the core clock) takes
    the transmitter's preamble stall behind it. The gateway's control stream goes through
    the :class:`UartBridge`; with the pass-through the UART line idles.

    Parameters
    ----------
    core : wiring.Component or None
        A :class:`~wiregate.hw.gateway.Gateway` at W = 1, or None for :class:`PassThrough`.
    fifo_depth : int or None
        Bytes of each :class:`RxCrossing`; None: :data:`RX_FIFO_DEPTH` for the core.
    mac_module : str
        Name of the generated LiteEth Verilog module.

    Attributes
    ----------
    rgmii0, rgmii1 : rgmii_signature
        Port 0 (clients) and port 1 (exchange).
    link : Out(2)
        Per port: RXC is running at 1 Gb/s.
    overflowed : Out(2)
        Per port, sticky: a receive FIFO (or, with the gateway, the FIFO before the
        transmitter) overflowed (a frame was failed closed).
    uart_rx, uart_tx : In(1), Out(1)
        The control UART's lines (3 Mbaud, 8N1), host to gateway and back.
    kill : Out(1)
        The gateway's kill latch (0 with the pass-through).
    fail_closed : Out(1)
        A FIFO overflowed and a frame was failed closed (sticky until reset).
    level0, level1 : ``sync``
        Fill of each receive FIFO (read for the benches; a register later).
    core_rx_valid, core_tx_valid : Out(2)
        Per port: a byte enters the core from the port's receive side / is offered to the
        port's transmitter (for activity LEDs and the latency bench).

    Latency
    -------
    See ``docs/boards.md`` (measured wire to wire in ``sim/board``).
    """

    def __init__(self, core=None, fifo_depth: int | None = None,
                 mac_module: str = MODULE_NAME):
        self._core = PassThrough() if core is None else core
        if fifo_depth is None:
            fifo_depth = RX_FIFO_DEPTH["pass-through" if core is None else "gateway"]
        self._fifo_depth = fifo_depth
        self._mac_module = mac_module
        super().__init__({
            "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1),
            "kill": Out(1),
            "fail_closed": Out(1),
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
        m.submodules.core = core = self._core
        gateway = hasattr(core, "control_in")
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
            if gateway:
                m.submodules[f"pacer{n}"] = pacer = FramePacer()
                wiring.connect(m, crossing=crossing.source, pacer=pacer.i)
                wiring.connect(m, pacer=pacer.o, core=getattr(core, f"{name}_rx"))
            else:
                wiring.connect(m, crossing=crossing.source, core=getattr(core, f"{name}_rx"))
            m.d.comb += [getattr(self, f"level{n}").eq(crossing.level),
                         self.core_rx_valid[n].eq(crossing.source.valid)]
            overflowed = Signal()
            with m.If(crossing.overflows != 0):
                m.d[rx] += overflowed.eq(1)
            rx_overflowed = Signal()
            m.submodules[f"overflowed{n}"] = FFSynchronizer(overflowed, rx_overflowed)
            m.d.comb += self.link[n].eq(alive.alive)
            # Transmit: each port sends what the core produced for the other.
            tx_overflowed = self._transmit(m, n, getattr(core, f"{PORTS[n]}_tx"), gateway)
            m.d.comb += self.overflowed[n].eq(rx_overflowed | tx_overflowed)
        if gateway:
            m.submodules.uart = uart = UartBridge(uart_divisor(CORE_HZ))
            m.d.comb += [uart.rx.eq(self.uart_rx), self.uart_tx.eq(uart.tx),
                         self.kill.eq(core.kill_gateway)]
            wiring.connect(m, uart=uart.host_in, core=core.control_in)
            wiring.connect(m, core=core.control_out, uart=uart.host_out)
        m.d.comb += self.fail_closed.eq(self.overflowed.any())
        return m

    def _transmit(self, m, n, out, gateway):
        """Port ``n``'s transmit MAC fed from the core's stream ``out``; the overflow flag of
        the FIFO between them (constant 0 where the core stalls on ``ready`` instead)."""
        mac = m.submodules[f"mac{n}"]
        m.d.comb += self.core_tx_valid[n].eq(out.valid)
        if gateway:
            m.submodules[f"tx_fifo{n}"] = fifo = RxCrossing("sync", TX_FIFO_DEPTH)
            source = fifo.source
            lane = out.payload[0]
            m.d.comb += [fifo.sink.valid.eq(out.valid), fifo.sink.payload.data.eq(lane.data),
                         fifo.sink.payload.last.eq(lane.last),
                         fifo.sink.payload.error.eq(lane.error)]
            overflowed = Signal()
            with m.If(fifo.overflows != 0):
                m.d.sync += overflowed.eq(1)
        else:
            source, overflowed = out, 0
        lane = source.payload[0]
        m.d.comb += [
            mac.tx.valid.eq(source.valid), source.ready.eq(mac.tx.ready),
            mac.tx.payload.data.eq(lane.data), mac.tx.payload.last.eq(lane.last),
            mac.tx.payload.error.eq(lane.error),
        ]
        return overflowed
