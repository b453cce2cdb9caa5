"""The control stream over a UART: the host's bytes in, the gateway's bytes out."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..counters import count_event
from .uart_rx import UartRx
from .uart_tx import UartTx

__all__ = ["UartBridge", "uart_divisor"]

BAUD = 3_000_000
# One command frame of buffer (docs/control.md): the longest frame, 240 words and its header
# and CRC, SLIP-coded with every byte escaped, is under 2,048 bytes; one block RAM.
RX_FIFO_DEPTH = 2048


def uart_divisor(clock_hz: float, baud: int = BAUD) -> int:
    """Core clock cycles per bit, nearest: 42 at 125 MHz for 3 Mbaud (2.976 Mbaud)."""
    divisor = round(clock_hz / baud)
    if abs(clock_hz / divisor / baud - 1) > 0.02:
        raise ValueError(f"{clock_hz / 1e6:g} MHz cannot make {baud} baud within 2 %")
    return divisor


class UartBridge(wiring.Component):
    """:class:`UartRx` into a FIFO, and :class:`UartTx`, between two pins and the byte streams
    of :class:`~wiregate.hw.gateway.Gateway`'s control port.

    The control port is not ready while a command executes and its response leaves; the host
    keeps one command outstanding, so one frame of FIFO holds whatever arrives meanwhile. A
    byte that finds the FIFO full is dropped and counted: the frame it belonged to fails its
    CRC and is refused, so the host sees it.

    Parameters
    ----------
    divisor : int
        Core clock cycles per bit (:func:`uart_divisor`).
    fifo_depth : int
        Bytes of the receive FIFO.

    Attributes
    ----------
    rx : In(1)
        The host's line to the gateway.
    tx : Out(1)
        The gateway's line to the host.
    host_in : Out(stream of bytes)
        The bytes received (to ``Gateway.control_in``).
    host_out : In(stream of bytes)
        The bytes to send (from ``Gateway.control_out``).
    framing_errors, overflows : Out(16)
        Bytes dropped for a low stop bit, and for a full FIFO; saturating.

    Latency
    -------
    :class:`UartRx`'s, then the FIFO's 2 cycles; :class:`UartTx`'s.
    """

    def __init__(self, divisor: int, fifo_depth: int = RX_FIFO_DEPTH):
        self._divisor = divisor
        self._fifo_depth = fifo_depth
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "host_in": Out(stream.Signature(8)),
            "host_out": In(stream.Signature(8)),
            "framing_errors": Out(16),
            "overflows": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self._divisor)
        m.submodules.tx = tx = UartTx(self._divisor)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=self._fifo_depth)
        overflow = Signal()
        m.d.comb += [
            rx.rx.eq(self.rx), self.tx.eq(tx.tx),
            self.framing_errors.eq(rx.framing_errors),
            fifo.w_data.eq(rx.o.payload), fifo.w_en.eq(rx.o.valid),
            overflow.eq(rx.o.valid & ~fifo.w_rdy),
            self.host_in.payload.eq(fifo.r_data), self.host_in.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.host_in.ready),
        ]
        count_event(m, self.overflows, overflow)
        wiring.connect(m, host=wiring.flipped(self.host_out), tx=tx.i)
        return m
