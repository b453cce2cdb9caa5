"""The control stream's outbound mux: responses and drop-copy records, whole frames each.

Both sources are frames of bytes (``first`` .. ``last``); the mux switches only between
frames, and alternates when both wait, so neither starves the other. A drop-copy record
gets the constant header of a ``DROP_COPY`` frame (:mod:`wiregate.sw.control`) in front.
"""

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.control import HEADER_SIZE, Kind, header
from wiregate.sw.dropcopy import RECORD_SIZE

from ..stream import beat_signature

__all__ = ["Outbound"]


class Outbound(wiring.Component):
    """Interleave responses and drop-copy records as whole frames (W = 1).

    Attributes
    ----------
    response : In(beat stream)
        Response frames (without CRC) from the executor.
    dropcopy : In(beat stream)
        Drop-copy records (:class:`wiregate.hw.control.dropcopy.DropCopy`'s ``o``).
    o : Out(beat stream)
        Frames without CRC: ``first`` on a frame's first byte, ``last`` on its last.

    Latency
    -------
    None for a response (the mux is combinational once a frame is chosen); the choice of
    the next frame takes one cycle after the last byte of the previous one.
    """

    response: In(beat_signature(1, always_ready=False))
    dropcopy: In(beat_signature(1, always_ready=False))
    o: Out(beat_signature(1, always_ready=False))

    def elaborate(self, platform):
        m = Module()
        fixed = Const(int.from_bytes(header(Kind.DROP_COPY, 0, length=RECORD_SIZE), "little"),
                      8 * HEADER_SIZE)
        h = Signal(range(HEADER_SIZE))
        prefer_dropcopy = Signal()
        lane = self.o.payload[0]
        done = self.o.valid & self.o.ready & lane.last

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.dropcopy.valid & (prefer_dropcopy | ~self.response.valid)):
                    m.d.sync += h.eq(0)
                    m.next = "DROPCOPY_HEADER"
                with m.Elif(self.response.valid):
                    m.next = "RESPONSE"
            with m.State("RESPONSE"):
                m.d.comb += [self.o.valid.eq(self.response.valid),
                             self.o.payload.eq(self.response.payload),
                             self.response.ready.eq(self.o.ready)]
                with m.If(done):
                    m.d.sync += prefer_dropcopy.eq(1)
                    m.next = "IDLE"
            with m.State("DROPCOPY_HEADER"):
                m.d.comb += [self.o.valid.eq(1), lane.keep.eq(1), lane.first.eq(h == 0),
                             lane.data.eq(fixed.word_select(h, 8))]
                with m.If(self.o.ready):
                    m.d.sync += h.eq(h + 1)
                    with m.If(h == HEADER_SIZE - 1):
                        m.next = "DROPCOPY"
            with m.State("DROPCOPY"):
                m.d.comb += [self.o.valid.eq(self.dropcopy.valid),
                             self.dropcopy.ready.eq(self.o.ready),
                             lane.eq(self.dropcopy.payload[0]), lane.first.eq(0)]
                with m.If(done):
                    m.d.sync += prefer_dropcopy.eq(0)
                    m.next = "IDLE"
        return m
