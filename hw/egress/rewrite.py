"""Egress rewrite: rejects become SoupBin ``+`` in flight, dropped frames vanish, void ones are
stomped.

Toward the exchange every frame leaves the holdback into this stage and then goes to the
transmit MAC. The risk core tells it, by frame tag, what to do:

- ``frames``: one decision per frame, ``drop`` or pass. A dropped frame leaves no byte at all.
  A frame whose decision is missing when its first byte leaves is dropped (fail closed) and
  counted *late*.
- ``rejects``: the frame offset of a rejected ``U`` packet's type byte. The type byte becomes
  ``+`` and the two bytes after it are rewritten so the TCP checksum, which has already left,
  still holds (the arithmetic is :mod:`wiregate.sw.rewrite`'s, the reference this block is
  tested against).
- ``void``: the frame leaves with ``error`` on its last byte, so the transmit MAC sends a bad
  FCS. A frame that arrives with ``error`` (bad FCS at the ingress) keeps it.

Frame tags. Both sides count frames by ``first`` from reset, modulo ``2**tag_bits``: the first
frame is tag 0. This stage counts at its output, which sees the same frames in the same order
as its input. Decisions and void records are kept in one bit per tag; a record is taken only
for a frame not yet past (decisions: not yet started; void: not yet ended), so a late one can
never linger and hit the frame ``2**tag_bits`` later. "Not yet past" is judged on half the tag
space, so fewer than ``2**(tag_bits - 1)`` frames must lie between a record's push and its
frame's output (:func:`wiregate.hw.egress.holdback_size.tag_bits`); a record further ahead reads as
late.

Rejects are queued in order. At W = 8 one beat can hold two type bytes (two rejected packets
are at least 5 bytes apart: two length bytes, the type byte and the two rewritten bytes), so
the queue is ``ways`` FIFOs filled in turn, whose heads are the two oldest records. A record
whose type byte has already left is *late*: its frame, if it has not ended, is stomped. A record
that cannot be applied (the byte is not ``U``, or the two bytes after it are not in the same
frame and present: a gap inside a frame) stomps its frame too. A record that finds its FIFO full
voids its frame instead and counts as late; size ``reject_depth`` so this cannot happen.

Timing contract, with ``L`` this stage's latency: a reject, decision or void record must be
transferred at least one cycle before the byte it acts on (type byte, first byte, last byte)
leaves ``o``, that is no later than ``L - 1`` cycles after that byte's beat is on ``i``.
:mod:`wiregate.hw.egress.holdback_size` turns this into the holdback length.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from wiregate.sw.rewrite import DATA_TYPE, DEBUG_TYPE

from ..counters import count_amount
from ..ingress.ouch_extract import OFFSET_BITS
from ..stream import LANE_LAYOUT, beat_signature, check_width

__all__ = ["COUNTERS", "REJECT_SPACING", "Rewrite", "decision_layout", "latency", "reject_layout",
           "void_layout", "ways"]

COUNTERS = ("rewritten", "dropped", "stomped", "late")
REJECT_SPACING = 5     # bytes from one rejectable type byte to the next, at least
_COUNTER_BITS = 32


def ways(width: int) -> int:
    """Reject FIFOs: the most type bytes one beat can hold."""
    return -(-check_width(width) // REJECT_SPACING)


def latency(width: int) -> int:
    """Cycles this stage adds: enough lookahead to see the two bytes after a type byte."""
    return -(-2 // check_width(width))


def reject_layout(tag_bits: int) -> data.StructLayout:
    """A reject: the frame's tag and the frame offset of the ``U`` type byte."""
    return data.StructLayout({"frame": tag_bits, "offset": OFFSET_BITS})


def decision_layout(tag_bits: int) -> data.StructLayout:
    """A frame's decision: its tag and whether it must not leave at all."""
    return data.StructLayout({"frame": tag_bits, "drop": 1})


def void_layout(tag_bits: int) -> data.StructLayout:
    """A frame to stomp: its tag."""
    return data.StructLayout({"frame": tag_bits})


def _pick(options, index):
    """``options[index]`` for a signal ``index``."""
    result = options[0]
    for k, option in enumerate(options[1:], 1):
        result = Mux(index == k, option, result)
    return result


def _one_hot(index, size, enable):
    """Bit ``index`` of ``size`` bits when ``enable``, else zero."""
    return Mux(enable, Const(1, size) << index, 0)[:size]


def _union(masks):
    result = masks[0]
    for mask in masks[1:]:
        result = result | mask
    return result


def _after(m, prefix, values):
    """Signals holding ``values`` (name: (width, value)), in order."""
    signals = []
    for name, (width, value) in values.items():
        signal = Signal(width, name=f"{prefix}_{name}")
        m.d.comb += signal.eq(value)
        signals.append(signal)
    return signals


class Rewrite(wiring.Component):
    """The egress toward the exchange: rewrite rejects in place, drop and stomp frames.

    Parameters
    ----------
    width : int
        Bytes per beat (1 or 8).
    tag_bits : int
        Width of the frame tags (see the module docstring for the bound it sets;
        :func:`wiregate.hw.egress.holdback_size.tag_bits` computes it).
    reject_depth : int
        Reject records held, a multiple of ``ways(width)`` (1 at W = 1, 2 at W = 8);
        :func:`wiregate.hw.egress.holdback_size.reject_depth` gives one that cannot overflow.

    Attributes
    ----------
    i : In(stream)
        Beats from the holdback (:mod:`.stream` layout; a beat may end one frame and start
        the next).
    o : Out(stream)
        Beats to the transmit MAC, ``latency(width)`` cycles later, lane for lane.
    rejects : In(stream)
        :func:`reject_layout` records, in frame and offset order.
    frames : In(stream)
        :func:`decision_layout` records, one per frame.
    void : In(stream)
        :func:`void_layout` records.
    count_rewritten, count_dropped, count_stomped, count_late : Out(32)
        ``U`` packets rewritten in frames that left; frames dropped; frames this stage ended
        with ``error`` (void, or a reject it could not apply); records that came too late or
        found the reject queue full (saturating).

    Latency
    -------
    ``latency(width)`` cycles: 2 at W = 1, 1 at W = 8. The rewritten bytes of a type byte in
    the output beat must be known when it leaves, and they depend on both bytes after it, so
    the lanes after a type byte near the end of the output beat depend combinationally on
    ``i`` (the holdback's registers). Frames keep their byte timing (a pure delay plus
    masking); frames may not exceed 65535 bytes, the reach of a record's offset.
    """

    def __init__(self, width, *, tag_bits=4, reject_depth=16):
        self._width = check_width(width)
        if not isinstance(tag_bits, int) or isinstance(tag_bits, bool):
            raise TypeError(f"Tag width must be an integer, not {tag_bits!r}")
        if tag_bits < 2:
            raise ValueError(f"Tag width must be at least 2 bits, not {tag_bits}")
        self._ways = ways(self._width)
        if not isinstance(reject_depth, int) or isinstance(reject_depth, bool):
            raise TypeError(f"Reject depth must be an integer, not {reject_depth!r}")
        if reject_depth < self._ways or reject_depth % self._ways:
            raise ValueError(f"Reject depth must be a positive multiple of {self._ways} at "
                             f"width {width}, not {reject_depth}")
        self._tag_bits = tag_bits
        self._reject_depth = reject_depth
        members = {
            "i": In(beat_signature(width)),
            "o": Out(beat_signature(width)),
            "rejects": In(stream.Signature(reject_layout(tag_bits), always_ready=True)),
            "frames": In(stream.Signature(decision_layout(tag_bits), always_ready=True)),
            "void": In(stream.Signature(void_layout(tag_bits), always_ready=True)),
        }
        for name in COUNTERS:
            members[f"count_{name}"] = Out(_COUNTER_BITS)
        super().__init__(members)

    @property
    def width(self):
        return self._width

    @property
    def latency(self):
        return latency(self._width)

    def elaborate(self, platform):
        m = Module()
        width, n = self._width, self._tag_bits
        tags = 1 << n
        late_events = []

        # The window: the beats held (oldest first, the first ``width`` slots leave now) and
        # the beat arriving, slot by slot. Empty lanes carry no flags, as in the holdback.
        held = [Signal(LANE_LAYOUT, name=f"held{q}") for q in range(self.latency * width)]
        arriving = []
        for lane in range(width):
            slot = Signal(LANE_LAYOUT, name=f"arriving{lane}")
            present = self.i.valid & self.i.payload[lane].keep
            m.d.comb += [
                slot.data.eq(self.i.payload[lane].data),
                slot.keep.eq(present),
                slot.first.eq(present & self.i.payload[lane].first),
                slot.last.eq(present & self.i.payload[lane].last),
                slot.error.eq(present & self.i.payload[lane].error),
            ]
            arriving.append(slot)
        window = held + arriving
        leaving = window[:width]

        # Where each leaving byte is: its frame's tag and offset. ``next_tag`` is the tag the
        # next frame to start gets; ``inside``: a frame has started and not ended.
        next_tag = Signal(n)
        inside = Signal()
        offset = Signal(OFFSET_BITS)
        lane_tag, lane_offset, lane_first = [], [], []
        nxt, ins, off = next_tag, inside, offset
        for q, slot in enumerate(leaving):
            first = slot.keep & slot.first
            tag = Signal(n, name=f"tag{q}")
            at = Signal(OFFSET_BITS, name=f"offset{q}")
            m.d.comb += [tag.eq(Mux(first, nxt, nxt - 1)), at.eq(Mux(first, 0, off))]
            lane_tag.append(tag)
            lane_offset.append(at)
            lane_first.append(first)
            # Signals, not expressions: each is used twice by the next lane.
            nxt, ins, off = _after(m, f"after{q}", {
                "tag": (n, Mux(first, nxt + 1, nxt)),
                "inside": (1, Mux(slot.keep, ~slot.last, ins)),
                "offset": (OFFSET_BITS, Mux(slot.keep, at + 1, off)),
            })
        next_tag_after = Signal(n)
        m.d.comb += next_tag_after.eq(nxt)
        m.d.sync += [next_tag.eq(next_tag_after), inside.eq(ins), offset.eq(off)]
        # The next byte to leave is (cursor_tag, cursor_offset); anything before it has left.
        cursor_tag = Mux(inside, next_tag - 1, next_tag)[:n]
        cursor_offset = Mux(inside, offset, 0)

        # --- rejects: ``ways`` FIFOs filled in turn; way j's ``head`` is the j-th oldest record.
        ways, layout = self._ways, reject_layout(n)
        fifos = []
        for k in range(ways):
            fifo = SyncFIFO(width=layout.size, depth=self._reject_depth // ways)
            m.submodules[f"rejects{k}"] = fifo
            fifos.append(fifo)
        write_way = Signal(range(ways))
        read_way = Signal(range(ways))
        for k, fifo in enumerate(fifos):
            m.d.comb += [fifo.w_data.eq(self.rejects.payload),
                         fifo.w_en.eq(self.rejects.valid & (write_way == k))]
        stored = self.rejects.valid & _pick([f.w_rdy for f in fifos], write_way)
        overflow = self.rejects.valid & ~stored
        # ``ways`` is 1 or 2, so the way numbers wrap by truncation.
        with m.If(stored):
            m.d.sync += write_way.eq(write_way + 1)

        pops, hit, late_open = [], [Const(0)] * width, []
        for j in range(ways):
            order = [fifos[(r + j) % ways] for r in range(ways)]
            valid = _pick([f.r_rdy for f in order], read_way)
            head = data.View(layout, _pick([f.r_data for f in order], read_way))
            matches = [valid & leaving[q].keep & (lane_tag[q] == head.frame)
                       & (lane_offset[q] == head.offset) for q in range(width)]
            behind = (head.frame - cursor_tag)[n - 1] | \
                ((head.frame == cursor_tag) & (head.offset < cursor_offset))
            late = valid & behind
            pop = Signal(name=f"pop{j}")
            m.d.comb += pop.eq((Cat(*matches).any() | late) & (pops[-1] if pops else 1))
            pops.append(pop)
            hit = [h | (pop & match) for h, match in zip(hit, matches, strict=True)]
            late_events.append(pop & late)
            late_open.append(pop & late & inside & (head.frame == cursor_tag))
        for k, fifo in enumerate(fifos):
            m.d.comb += fifo.r_en.eq(Cat(
                (read_way == r) & pops[j] for r in range(ways) for j in range(ways)
                if (r + j) % ways == k).any())
        m.d.sync += read_way.eq(read_way + sum(pops))

        # Apply each hit: ``+`` for the type byte, the compensated pair after it (which may lie
        # in the beats arriving later, so it is written back into the held slots).
        datas = [slot.data for slot in window]
        rewrites, bad = [], []
        for q in range(width):
            type_byte, a, b = window[q:q + 3]
            pair_ok = a.keep & ~a.first & ~type_byte.last & b.keep & ~b.first & ~a.last
            ok = (type_byte.data == DATA_TYPE) & pair_ok
            rewrite = Signal(name=f"rewrite{q}")
            m.d.comb += rewrite.eq(hit[q] & ok)
            rewrites.append(rewrite)
            bad.append(hit[q] & ~ok)
            total = Cat(b.data, a.data) + (DATA_TYPE - DEBUG_TYPE)
            pair = Signal(16, name=f"pair{q}")
            m.d.comb += pair.eq(total[:16] + total[16])    # the end-around carry
            datas[q] = Mux(rewrite, DEBUG_TYPE, datas[q])
            datas[q + 1] = Mux(rewrite, pair[8:], datas[q + 1])
            datas[q + 2] = Mux(rewrite, pair[:8], datas[q + 2])
        for q, slot in enumerate(held):
            source = window[q + width]
            m.d.sync += [slot.eq(source), slot.data.eq(datas[q + width])]

        # --- frame decisions and void records: one bit per tag.
        known, drops, voids = Signal(tags), Signal(tags), Signal(tags)
        horizon = (next_tag_after - ins)[:n]     # after this beat, the oldest frame not ended
        decision = self.frames.payload
        take_decision = self.frames.valid & ~(decision.frame - next_tag_after)[n - 1]
        take_void = self.void.valid & ~(self.void.payload.frame - horizon)[n - 1]
        take_overflow = overflow & ~(self.rejects.payload.frame - horizon)[n - 1]
        late_events += [self.void.valid & ~take_void, overflow]

        # Per leaving lane: dropped frames vanish, stomped ones end with ``error``.
        # A frame is stomped from a reject that came late while it is leaving (the frame open
        # before this beat), or that cannot be applied (from its type byte on: the frame ends
        # there at the earliest).
        dropping, stomp = Signal(), Signal()
        drop_run, stomp_run = dropping, stomp | Cat(*late_open).any()
        started, ended, kept_lanes = [], [], []
        dropped_events, stomped_events, rewritten_events = [], [], []
        for q, slot in enumerate(leaving):
            first, tag = lane_first[q], lane_tag[q]
            missing = first & ~known.bit_select(tag, 1)
            drop, stomped = _after(m, f"lane{q}", {
                "drop": (1, Mux(first, missing | drops.bit_select(tag, 1), drop_run)),
                "stomp": (1, Mux(first, 0, stomp_run) | bad[q]),
            })
            drop_run, stomp_run = _after(m, f"after{q}", {
                "drop": (1, Mux(slot.keep, drop, drop_run)),
                "stomp": (1, Mux(slot.keep, stomped, stomp_run)),
            })
            kept = slot.keep & ~drop
            end = slot.keep & slot.last
            error = slot.error | stomped | voids.bit_select(tag, 1)
            out = self.o.payload[q]
            m.d.comb += [
                out.data.eq(Mux(kept, datas[q], 0)),
                out.keep.eq(kept),
                out.first.eq(kept & first),
                out.last.eq(kept & end),
                out.error.eq(kept & end & error),
            ]
            kept_lanes.append(kept)
            started.append(_one_hot(tag, tags, first))
            ended.append(_one_hot(tag, tags, end))
            late_events.append(missing)
            dropped_events.append(first & drop)
            stomped_events.append(kept & end & (stomped | voids.bit_select(tag, 1)))
            rewritten_events.append(rewrites[q] & ~drop)
        m.d.comb += self.o.valid.eq(Cat(*kept_lanes).any())
        m.d.sync += [dropping.eq(drop_run), stomp.eq(stomp_run)]

        cleared, void_cleared = _union(started), _union(ended)
        m.d.sync += [
            known.eq(known & ~cleared | _one_hot(decision.frame, tags, take_decision)),
            drops.eq(drops & ~cleared
                     | _one_hot(decision.frame, tags, take_decision & decision.drop)),
            voids.eq(voids & ~void_cleared
                     | _one_hot(self.void.payload.frame, tags, take_void)
                     | _one_hot(self.rejects.payload.frame, tags, take_overflow)),
        ]

        count_amount(m, self.count_rewritten, sum(rewritten_events))
        count_amount(m, self.count_dropped, sum(dropped_events))
        count_amount(m, self.count_stomped, sum(stomped_events))
        count_amount(m, self.count_late, sum(late_events))
        return m
