"""Received frames from a port's RXC domain into the core clock domain, failing closed."""

from amaranth.hdl import DomainRenamer, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import AsyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..counters import count_event
from ..stream import beat_layout
from .rgmii_mac import MAC_BYTE_LAYOUT

__all__ = ["RxCrossing"]


class RxCrossing(wiring.Component):
    """An asynchronous FIFO from RXC to the core clock; an overflow never makes a good frame.

    ``AsyncFIFOBuffered`` (``AsyncFIFO`` plus an output register): the block RAM's read port
    has no output register on the ECP5 and its 5.8 ns clock-to-out alone would leave too
    little of the 8 ns cycle for the transmit MAC's logic behind it.

    The far end's clock and ours differ by up to ±100 ppm each. The FIFO is read whenever the
    transmit side takes a byte, so during a long saturated burst from a faster far end it
    fills by up to one byte per 5,000; ``depth`` bytes of slack carry a burst of about
    ``depth * 5,000`` bytes (1025: 5 MB, 40 ms at line rate). Between bursts it drains.

    When a byte arrives and the FIFO is full, the byte is dropped and ``overflows`` counts
    the frame; the rest of that frame is dropped too, and as soon as there is room a terminating
    byte with ``last`` and ``error`` closes what was already written, so the frame reaches
    the core errored (and is stomped), never truncated into a frame that looks good. A frame
    of which nothing was written yet is dropped whole.

    Parameters
    ----------
    w_domain : str
        The RXC domain of ``sink``.
    depth : int
        FIFO depth in bytes: a power of 2 (the Gray counters) plus 1 (the output register).

    Attributes
    ----------
    sink : stream, ``w_domain``
        Bytes from the MAC, ``always_ready``.
    source : stream of :func:`beat_layout` (1), ``sync``
        The same bytes with ``first`` and ``keep`` added; a frame's bytes arrive back to
        back unless the FIFO runs empty.
    overflows : 16 bits, ``w_domain``
        Frames cut or dropped for lack of room, saturating.
    level : ``sync``
        FIFO fill seen from the read side (for the benches and a future register).

    Latency
    -------
    One RXC cycle, then the FIFO's write-to-read latency (measured in ``sim/board``).
    """

    def __init__(self, w_domain: str, depth: int = 1025):
        if not isinstance(depth, int) or depth < 5 or (depth - 1) & (depth - 2):
            raise ValueError(f"FIFO depth must be a power of 2 plus 1, at least 5, not {depth!r}")
        self._w_domain = w_domain
        self._depth = depth
        super().__init__({
            "sink": In(stream.Signature(MAC_BYTE_LAYOUT, always_ready=True)),
            "source": Out(stream.Signature(beat_layout(1))),
            "overflows": Out(16),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        w = m.d[self._w_domain]
        m.submodules.fifo = fifo = AsyncFIFOBuffered(
            width=len(self.sink.payload.as_value()), depth=self._depth, r_domain="sync",
            w_domain=self._w_domain, exact_depth=True)

        # The MAC's FCS verdict comes straight out of its CRC XOR tree: registered here, so
        # that path does not run on into the block RAM's write port in the same cycle.
        arrives = Signal()
        byte = Signal.like(self.sink.payload)
        w += [arrives.eq(self.sink.valid), byte.eq(self.sink.payload)]

        # Write side: the MAC's byte, or the terminator owed after an overflow.
        dropping = Signal()     # the rest of the current frame goes nowhere
        owed = Signal()         # a byte with last and error must still be written
        in_frame = Signal()     # a byte of the current frame is in the FIFO
        ends = arrives & byte.last
        overflow = Signal()
        terminator = MAC_BYTE_LAYOUT.const({"data": 0, "last": 1, "error": 1})
        with m.If(owed):
            m.d.comb += [fifo.w_data.eq(terminator), fifo.w_en.eq(1)]
            with m.If(fifo.w_rdy):
                w += owed.eq(0)
            # A frame starting while the terminator waits is dropped whole.
            m.d.comb += overflow.eq(arrives & ~dropping)
            with m.If(arrives & ~dropping & ~byte.last):
                w += dropping.eq(1)
        with m.Elif(arrives & ~dropping):
            m.d.comb += [fifo.w_data.eq(byte), fifo.w_en.eq(1)]
            with m.If(fifo.w_rdy):
                w += in_frame.eq(~byte.last)
            with m.Else():
                m.d.comb += overflow.eq(1)
                w += [owed.eq(in_frame), in_frame.eq(0), dropping.eq(~byte.last)]
        with m.If(ends & dropping):
            w += dropping.eq(0)

        counter = Module()
        count_event(counter, self.overflows, overflow)
        m.submodules.overflow_count = DomainRenamer({"sync": self._w_domain})(counter)

        # Read side, in the core clock domain.
        read = MAC_BYTE_LAYOUT(fifo.r_data)
        first = Signal(init=1)
        lane = self.source.payload[0]
        m.d.comb += [
            self.source.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.source.ready),
            lane.data.eq(read.data), lane.keep.eq(1), lane.first.eq(first),
            lane.last.eq(read.last), lane.error.eq(read.error),
            self.level.eq(fifo.r_level),
        ]
        with m.If(self.source.valid & self.source.ready):
            m.d.sync += first.eq(read.last)
        return m
