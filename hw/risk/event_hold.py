"""Event hold: exchange events wait for their frame's end, and only a good end releases them.

An exchange message changes the state tables, so it must count exactly once. A frame that
ends void (bad FCS, or one the ingress could not follow) is retransmitted by the exchange's
TCP and its messages arrive again; a good frame never is. So every event of a frame is
written into a FIFO as it is settled but stays invisible to the reader until the frame's last
beat: a good end makes it readable (the *committed* pointer moves up to the write pointer), a
void end takes it back (the write pointer returns to the committed one). Retransmitted
messages (bytes the stream tracker saw before) were held the first time and are not held
again.

The writer is the order path and can never wait. When the FIFO has no room for an event, the
event is lost, so the frame's remaining events cannot be applied in order either: the whole
frame is taken back at its end and ``overflow`` names the session, whose state the gate no
longer knows (the core puts it out of sync, failing closed).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..counters import count_amount, count_event
from ..ingress.ouch_extract import event_layout, message_beat_layout
from ..stream import check_width, frame_end

__all__ = ["EventHold"]


class EventHold(wiring.Component):
    """Hold the exchange ingress's events until their frame ends good.

    Parameters
    ----------
    width : int
        Bytes per beat of the ingress stream.
    regmap : RegisterMap
        Table sizes (the session field's width).
    depth : int
        Events the FIFO holds, a power of two; at least the events one frame can carry
        (a 1500-byte segment holds fewer than 128 exchange messages).

    Attributes
    ----------
    i : In(stream)
        The exchange :class:`~wiregate.hw.ingress.ingress.Ingress` output (always ready).
    o : Out(stream)
        Events of good frames, in arrival order, with backpressure.
    overflow : Out(1)
        High for one cycle at the end of a frame that lost an event for want of room.
    overflow_session : Out(range(n_sessions))
        That frame's session.
    count_held, count_discarded, count_overflow : Out(32)
        Events released by a good end; events of frames taken back (void, or overflowed:
        those that found no room included); frames that overflowed.

    Latency
    -------
    An event is readable on ``o`` two cycles after the beat holding its frame's last byte
    (the commit, then the block RAM read).
    """

    def __init__(self, width, regmap, *, depth=256):
        self._width = check_width(width)
        if not isinstance(depth, int) or depth < 2 or depth & (depth - 1):
            raise ValueError(f"Depth must be a power of two of at least 2, not {depth!r}")
        self._regmap = regmap
        self._depth = depth
        super().__init__({
            "i": In(stream.Signature(message_beat_layout(width, regmap), always_ready=True)),
            "o": Out(stream.Signature(event_layout(regmap))),
            "overflow": Out(1),
            "overflow_session": Out(range(regmap.n_sessions)),
            "count_held": Out(32),
            "count_discarded": Out(32),
            "count_overflow": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        bits = depth.bit_length()          # one more than the address: tells full from empty
        m.submodules.memory = memory = Memory(shape=event_layout(self._regmap), depth=depth,
                                              init=[])
        write = memory.write_port()
        read = memory.read_port()

        wr = Signal(bits)                  # next slot to write
        committed = Signal(bits)           # end of the last good frame: the reader's limit
        rd = Signal(bits)                  # next slot to read
        lost = Signal()                    # the current frame dropped an event

        beat = self.i.payload
        event = beat.event
        lanes = beat.beat.beat.beat.beat.lanes
        ends, _ = frame_end(lanes)
        ends = self.i.valid & ends
        wanted = self.i.valid & event.valid & ~event.from_client & ~event.retransmit
        full = (wr - rd)[:bits] == depth
        store = wanted & ~full & ~lost
        lost_now = lost | (wanted & full)
        wr_next = Signal(bits)
        m.d.comb += [
            write.addr.eq(wr),
            write.data.eq(event),
            write.en.eq(store),
            wr_next.eq(wr + store),
        ]
        m.d.sync += wr.eq(wr_next)
        with m.If(ends):
            with m.If(beat.void | lost_now):
                m.d.sync += wr.eq(committed)
            with m.Else():
                m.d.sync += committed.eq(wr_next)
            m.d.sync += lost.eq(0)
        with m.Elif(self.i.valid):
            m.d.sync += lost.eq(lost_now)

        # Show-ahead read: fetch when the output register is empty or being taken.
        fetch = (~self.o.valid | self.o.ready) & (rd != committed)
        m.d.comb += [
            read.addr.eq(rd),
            read.en.eq(fetch),
            self.o.payload.eq(read.data),
        ]
        with m.If(fetch):
            m.d.sync += [rd.eq(rd + 1), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        session = beat.beat.beat.beat.session
        m.d.comb += [
            self.overflow.eq(ends & lost_now),
            self.overflow_session.eq(session),
        ]
        count_event(m, self.count_overflow, self.overflow)
        # Events of the current frame, stored or lost, for the counters.
        frame_events = Signal(range(1 << 16))
        events_now = frame_events + wanted
        m.d.sync += frame_events.eq(Mux(ends, 0, events_now))
        discard = ends & (beat.void | lost_now)
        count_amount(m, self.count_held, Mux(ends & ~discard, events_now, 0))
        count_amount(m, self.count_discarded, Mux(discard, events_now, 0))
        return m
