"""The control stream's transmitter: the CRC-32 appended and the frame SLIP-coded.

The line coding and the CRC are :mod:`wiregate.sw.control`'s: ``END`` before and after each
frame, ``END`` and ``ESC`` inside escaped, the CRC-32 of the frame least significant byte
first. Both are done a byte at a time as the frame passes, so no frame is buffered here.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import crc, stream, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.control import CRC_SIZE, END, ESC, ESC_END, ESC_ESC

from ..stream import beat_signature

__all__ = ["Framer"]


class Framer(wiring.Component):
    """Append the CRC-32 to each frame and SLIP-code it onto the line.

    Attributes
    ----------
    i : In(beat stream, W = 1)
        Frames without CRC (``first`` .. ``last``); only ``data`` and ``last`` are used.
    o : Out(stream of bytes)
        The line. Honours ``ready``.

    Latency
    -------
    A frame's opening ``END`` is offered the cycle after its first byte; then a line byte
    every cycle while ``o.ready`` stays high, except that each input byte takes two cycles
    at least.
    """

    i: In(beat_signature(1, always_ready=False))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = generator = crc.catalog.CRC32_ETHERNET(data_width=8).create()
        escaped = Signal()      # the ESC of the current byte has been sent
        fresh = Signal()        # the next frame byte is the first (restart the CRC)
        k = Signal(range(CRC_SIZE))
        # The input byte is held in a register, and ``i.ready`` is only "the register is
        # empty": o.ready then never reaches the stages before this one combinationally.
        # It costs a cycle a byte (62.5 MB/s at 125 MHz, against 0.3 MB/s of a 3 Mbaud UART).
        full = Signal()
        held = Signal(8)
        last = Signal()
        m.d.comb += self.i.ready.eq(~full)
        with m.If(self.i.valid & ~full):
            m.d.sync += [full.eq(1), held.eq(self.i.payload[0].data),
                         last.eq(self.i.payload[0].last)]

        def send(value, valid):
            """Offer ``value`` (escaped if it must be); True in the cycle it is sent whole."""
            special = (value == END) | (value == ESC)
            m.d.comb += [
                self.o.valid.eq(valid),
                self.o.payload.eq(Mux(special & ~escaped, ESC,
                                      Mux(~special, value,
                                          Mux(value == END, ESC_END, ESC_ESC)))),
            ]
            moved = valid & self.o.ready
            with m.If(moved & special):
                m.d.sync += escaped.eq(~escaped)
            return moved & (~special | escaped)

        with m.FSM():
            with m.State("OPEN"):
                m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(END)]
                with m.If(full & self.o.ready):
                    m.d.sync += fresh.eq(1)
                    m.next = "DATA"
            with m.State("DATA"):
                sent = send(held, full)
                m.d.comb += [generator.valid.eq(sent), generator.data.eq(held),
                             generator.start.eq(fresh)]
                with m.If(sent):
                    m.d.sync += [fresh.eq(0), full.eq(0)]
                    with m.If(last):
                        m.d.sync += k.eq(0)
                        m.next = "CRC"
            with m.State("CRC"), m.If(send(generator.crc.word_select(k, 8), 1)):
                m.d.sync += k.eq(k + 1)
                with m.If(k == CRC_SIZE - 1):
                    m.next = "CLOSE"
            with m.State("CLOSE"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(END)]
                with m.If(self.o.ready):
                    m.next = "OPEN"
        return m
