"""A UART receiver, 8N1: the host's control stream in."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..counters import count_event

__all__ = ["UartRx"]


class UartRx(wiring.Component):
    """Finds each start bit, samples the eight data bits and the stop bit at their middles.

    The line is synchronised (two flip-flops) first: it comes from another chip's clock. A
    start bit must still be low half a bit after its falling edge (else it was a glitch and
    is ignored); a byte whose stop bit is low is a framing error: counted and dropped, never
    passed on as data. A UART cannot be stalled, so ``o`` is ``always_ready``: the bridge
    puts a FIFO behind it.

    Parameters
    ----------
    divisor : int
        Core clock cycles per bit (see :class:`~wiregate.hw.board.uart_tx.UartTx`).

    Attributes
    ----------
    rx : In(1)
        The line (idle high).
    o : Out(stream of 8 bits, always_ready)
        One byte a cycle per stop bit received.
    framing_errors : Out(16)
        Bytes dropped for a low stop bit, saturating.

    Latency
    -------
    A byte leaves 2 cycles (the synchroniser) plus 9.5 bit times after its start bit's
    falling edge, in the middle of its stop bit.
    """

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor must be at least 4, not {divisor!r}")
        self._divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8, always_ready=True)),
            "framing_errors": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self._divisor))
        bits = Signal(range(10))        # data bits and the stop bit still to sample
        data = Signal(8)
        framing_error = Signal()
        count_event(m, self.framing_errors, framing_error)
        m.d.comb += self.o.payload.eq(data)
        m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"), m.If(~line):
                m.d.sync += timer.eq(self._divisor // 2 - 1)
                m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"     # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self._divisor - 1), bits.eq(9)]
                    m.next = "BITS"
            with m.State("BITS"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(bits != 1):
                    m.d.sync += [data.eq(Cat(data[1:], line)), bits.eq(bits - 1),
                                 timer.eq(self._divisor - 1)]
                with m.Else():
                    # The stop bit's middle: a byte, or a framing error.
                    m.d.sync += self.o.valid.eq(line)
                    m.d.comb += framing_error.eq(~line)
                    m.next = "IDLE"
                    with m.If(~line):
                        m.next = "BREAK"
            # After a framing error, wait for the line to go idle before a new start bit.
            with m.State("BREAK"), m.If(line):
                m.next = "IDLE"
        return m
