"""One beat of ``W`` lanes out as ``W`` beats of one lane: the drop copy onto a byte stream."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .stream import beat_layout, beat_signature, check_width

__all__ = ["Narrow"]


class Narrow(wiring.Component):
    """Send each beat of ``width`` lanes one lane a cycle, lane 0 first.

    Every lane of an input beat must be kept (the drop copy's beats are): the flags
    (``first``, ``last``, ``error``) travel with their lane.

    Parameters
    ----------
    width : int
        Lanes per input beat (1 or 8; at 1 the beat passes through a register).

    Attributes
    ----------
    i : In(beat stream of ``width`` lanes)
    o : Out(beat stream of one lane)
        Honours ``ready``.

    Latency
    -------
    One cycle from an input beat to its lane 0; then a lane a cycle while ``o.ready``. A
    new beat is taken in the cycle the last lane of the one before leaves, so a stream of
    beats leaves without a gap.
    """

    def __init__(self, width):
        self._width = check_width(width)
        super().__init__({
            "i": In(beat_signature(width, always_ready=False)),
            "o": Out(beat_signature(1, always_ready=False)),
        })

    def elaborate(self, platform):
        m = Module()
        width = self._width
        held = Signal(beat_layout(width))
        full = Signal()
        lane = Signal(range(width))
        done = self.o.ready & (lane == width - 1)   # the held beat's last lane leaves now
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload[0].eq(held[lane]),
            self.i.ready.eq(~full | done),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), full.eq(1), lane.eq(0)]
        with m.Elif(full & self.o.ready):
            m.d.sync += lane.eq(lane + 1)
            with m.If(done):
                m.d.sync += full.eq(0)
        return m
