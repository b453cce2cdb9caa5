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

The FIFO stores what an exchange event means to the risk core, not the whole event: its
session, OUCH type, malformed reason and fields. What every held event carries the same is
rebuilt as a constant (valid; not from a client; not a retransmission; no digest, which only
client messages have), and the framing a client rewrite needs (SoupBin type, length,
offsets, sequence number, room, continued) comes out zero: nothing reads it of an exchange
event. Fields that no exchange message type carries together share storage (the symbol and
the match number, for one), and the OUCH type tells which one a slot holds, since an event's
fields are zero unless its type's layout has them.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.proto.ouch import SERVER_LAYOUTS

from ..counters import count_amount, count_event
from ..ingress.ouch_extract import event_layout, message_beat_layout
from ..stream import check_width, frame_end

__all__ = ["EventHold"]

# The event members an exchange event is stored by; the others are rebuilt (module docstring).
STORED = ("session", "msg_type", "malformed")


def _field_slots(widths: dict[str, int]) -> list[list[str]]:
    """The event fields (name to bits) grouped into storage slots: no exchange message type
    has two fields of one slot (first fit, widest field first)."""
    carried = [{f.name for f in layout.fields} for layout in SERVER_LAYOUTS.values()]
    slots = []
    for name in sorted(widths, key=lambda name: -widths[name]):
        for slot in slots:
            if not any(name in fields and fields & set(slot) for fields in carried):
                slot.append(name)
                break
        else:
            slots.append([name])
    return slots


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
        layout = event_layout(self._regmap)
        widths = {name: Shape.cast(shape).width
                  for name, shape in layout.members["fields"].members.items()}
        slots = _field_slots(widths)
        stored = data.StructLayout({
            **{name: layout.members[name] for name in STORED},
            **{f"slot{k}": max(widths[name] for name in slot) for k, slot in enumerate(slots)}})
        # The reader only reads committed slots and the writer never writes a full FIFO, so
        # a read and a write never meet at one slot: no_rw_check spares Yosys from building
        # the block RAM's read-old-data behaviour in flip-flops (two per stored bit).
        m.submodules.memory = memory = Memory(shape=stored, depth=depth, init=[],
                                              attrs={"no_rw_check": 1})
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
            *(write.data[name].eq(event[name]) for name in STORED),
            # At most one field of a slot is not zero: the OR is the one the type has.
            *(write.data[f"slot{k}"].eq(reduce(operator.or_, (event.fields[n] for n in slot)))
              for k, slot in enumerate(slots)),
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
            self.o.payload.valid.eq(1),
            *(self.o.payload[name].eq(read.data[name]) for name in STORED),
        ]
        msg_type = read.data.msg_type
        for k, slot in enumerate(slots):
            for name in slot:
                value = read.data[f"slot{k}"][:widths[name]]
                if len(slot) > 1:
                    types = [t[0] for t, fmt in SERVER_LAYOUTS.items()
                             if name in {f.name for f in fmt.fields}]
                    value = Mux(Cat(msg_type == t for t in types).any(), value, 0)
                m.d.comb += self.o.payload.fields[name].eq(value)
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
