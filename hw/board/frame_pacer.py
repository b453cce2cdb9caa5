"""Received frames into a core that cannot stall, no faster than the transmitter sends them."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.stream import Signature
from amaranth.lib.wiring import In, Out

from ..stream import beat_layout, beat_signature

__all__ = ["FramePacer"]

MIN_FRAME = 60          # bytes the transmit MAC pads a frame to (FCS excluded)
# Wire bytes of a frame besides its data: preamble and SFD (8), FCS (4), inter-frame gap (12).
OVERHEAD = 8 + 4 + 12
# Cycles the receive FIFO must have offered a byte before a frame starts: the transmitter's
# preamble time, so that a far end up to 200 ppm slower cannot run the FIFO dry mid-frame
# (it loses 0.3 of a byte over 1518), and a frame shorter than this is whole by then.
HOLD = 8


class FramePacer(wiring.Component):
    """Reads a receive FIFO a frame at a time, at one byte a cycle, with a gap after each.

    The core's streams are ``always_ready`` (its order path cannot stall) while the
    transmit MAC stalls for each frame's preamble, FCS and gap. Spacing the frames into the
    core as the transmitter spends them on the wire (the frame padded to 60 bytes plus 24
    bytes of overhead) keeps the core's output, which keeps its input's timing, within
    what the transmitter takes; the small FIFO behind the core absorbs the preamble stall.

    Attributes
    ----------
    i : In(stream of beat_layout(1))
        From :class:`~wiregate.hw.board.rx_crossing.RxCrossing`.
    o : Out(stream of beat_layout(1), always_ready)
        To the core.

    Latency
    -------
    0 cycles within a frame; a frame's first byte waits :data:`HOLD` cycles after the FIFO
    first offers it when the line was idle (overlapping the previous frame's gap otherwise).
    """

    i: In(Signature(beat_layout(1)))
    o: Out(beat_signature(1))

    def elaborate(self, platform):
        m = Module()
        in_frame = Signal()
        gap = Signal(range(OVERHEAD + MIN_FRAME + 1))   # cycles before the next frame may start
        held = Signal(range(HOLD + 1))                  # cycles a waiting byte has been offered
        length = Signal(range(MIN_FRAME + 1))           # bytes of this frame, up to 60
        start = ~in_frame & (gap == 0) & (held == HOLD)
        moving = (in_frame | start) & self.i.valid
        m.d.comb += [self.i.ready.eq(in_frame | start), self.o.valid.eq(moving),
                     self.o.payload.eq(self.i.payload)]
        with m.If(gap != 0):
            m.d.sync += gap.eq(gap - 1)
        with m.If(in_frame | ~self.i.valid):
            m.d.sync += held.eq(0)
        with m.Elif(held != HOLD):
            m.d.sync += held.eq(held + 1)
        with m.If(start):
            m.d.sync += in_frame.eq(1)
        with m.If(moving):
            counted = Mux(start, 1, Mux(length == MIN_FRAME, MIN_FRAME, length + 1))
            m.d.sync += length.eq(counted)
            with m.If(self.i.payload[0].last):
                m.d.sync += [in_frame.eq(0), gap.eq(OVERHEAD + MIN_FRAME - counted)]
        return m
