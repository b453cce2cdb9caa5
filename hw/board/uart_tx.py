"""A UART transmitter, 8N1: the control stream's bytes out to the host."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartTx"]


class UartTx(wiring.Component):
    """Sends each byte as a start bit (0), eight data bits least significant first, a stop
    bit (1); the line idles high.

    Written here rather than taken from a library: it is a 10-bit shift register and a
    bit-time counter, and the project's benches test it against a bit-level expectation
    (``tests/test_uart.py``) rather than trusting a dependency's.

    Parameters
    ----------
    divisor : int
        Core clock cycles per bit: 42 for 3 Mbaud from 125 MHz (2.976 Mbaud, 0.8 % slow,
        well inside the receiver's margin of about 4 %).

    Attributes
    ----------
    i : In(stream of 8 bits)
        Bytes to send; ``ready`` while the line idles and in a stop bit's last cycle.
    tx : Out(1)
        The line (idle high).

    Latency
    -------
    The start bit begins the cycle after the byte is taken; a byte takes ``10 * divisor``
    cycles and the next may follow at once.
    """

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"divisor must be at least 2, not {divisor!r}")
        self._divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10, init=1)      # the bits still to send, next in bit 0
        bits = Signal(range(11))        # bits still to send
        timer = Signal(range(self._divisor))
        # Ready in the stop bit's last cycle too, so that back-to-back bytes have no idle.
        m.d.comb += [self.tx.eq(shift[0]),
                     self.i.ready.eq((bits == 0) | ((bits == 1) & (timer == 0)))]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(Cat(0, self.i.payload, 1)), bits.eq(10),
                         timer.eq(self._divisor - 1)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], 1)), bits.eq(bits - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
