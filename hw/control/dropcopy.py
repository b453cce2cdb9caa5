"""Drop copy: number the gate's records, queue them, and send them to the host as bytes.

The record format is :mod:`wiregate.sw.dropcopy`'s (``RECORD_FIELDS``); the layouts here
are built from that table, nothing is retyped. The engine hands over a record a cycle at
most (it orders every record itself) and cannot wait, the host drains them at its own
pace: a queue in block RAM sits
between the two, and when it is full a record is lost rather than the order path stalled.
The queue's fill goes back to the engine, which refuses new orders with BACKLOG well
before that (model rule 11).
"""

from functools import reduce
from operator import or_

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.dropcopy import KIND_FIELDS, RECORD_FIELDS, RECORD_SIZE, empty_value
from wiregate.sw.regmap import RegisterMap

from ..counters import LIVE_BITS, live_event
from ..ingress.ouch_extract import PRICE_BITS
from ..stream import beat_signature, check_width

__all__ = ["QUEUED_BITS", "DropCopy", "record_layout"]

_SEQUENCE = next(f for f in RECORD_FIELDS if f.name == "sequence")   # filled in here
QUEUED_BITS = next(f for f in RECORD_FIELDS if f.name == "queued").bits


def record_layout(regmap: RegisterMap | None = None) -> data.StructLayout:
    """A record as the core hands it over: every field of the wire record but the sequence.

    Each field is as wide as its ``bits`` in :data:`wiregate.sw.dropcopy.RECORD_FIELDS`
    (``symbol`` holds its 8 wire bytes as one big-endian integer, as the extractor does),
    but for a gateway built with ``regmap``, the fields whose values come from narrower
    sources: ``session`` and ``symbol_index`` (a session or symbol index, or a control
    event's index), ``price`` (an OUCH price or a reference, :data:`PRICE_BITS`). The queue
    stores no more, and the wire bytes carry them zero-extended.
    """
    narrow = {}
    if regmap is not None:
        index_bits = (max(regmap.n_sessions, regmap.n_symbols) - 1).bit_length()
        narrow = {"session": index_bits, "symbol_index": index_bits, "price": PRICE_BITS}
    return data.StructLayout({f.name: narrow.get(f.name, f.bits) for f in RECORD_FIELDS
                              if f.bits and f is not _SEQUENCE})


_OWNER = {name: kind for kind, names in KIND_FIELDS.items() for name in names}
_WINDOW = 8     # bytes the output picks its beat from (see DropCopy.elaborate)
if (_SEQUENCE.offset, _SEQUENCE.size) != (0, _WINDOW):
    raise ValueError("the drop copy sends a record's first eight bytes, its sequence number, "
                     "from the row as it is; the record no longer starts so")


def _slot_layout(regmap: RegisterMap) -> data.StructLayout:
    """A queue row: the sequence number, the fields every kind may fill, and ``lane``, which
    holds the fields of :data:`~wiregate.sw.dropcopy.KIND_FIELDS` of the row's kind,
    concatenated in declaration order (each kind's from bit 0)."""
    record = record_layout(regmap)
    common = {name: shape for name, shape in record.members.items() if name not in _OWNER}
    lane = max(sum(record[name].width for name in names) for names in KIND_FIELDS.values())
    return data.StructLayout({"sequence": _SEQUENCE.bits, "common": data.StructLayout(common),
                              "lane": lane})


def _lane_of(record, kind):
    """The ``lane`` value of a record of ``kind``: its own fields, concatenated, each XOR its
    empty value, so that another kind's record gives 0 (the lanes are ORed together)."""
    return Cat(*(Value.cast(record[name]) ^ Const(empty_value(name), len(record[name]))
                 for name in KIND_FIELDS[kind]))


def _wire(slot, record):
    """The slot's wire bytes: a list of :data:`RECORD_SIZE` 8-bit values in wire order, and
    per byte the kind whose ``lane`` it comes from (None: every kind's) and the byte's empty
    value (0 but in ``primary``). A lane byte is the wire byte XOR its empty value (see
    :func:`_lane_of`). ``record`` is the slot's :func:`record_layout`."""
    in_lane = {}
    for names in KIND_FIELDS.values():
        at = 0
        for name in names:
            in_lane[name] = slot.lane[at:at + record[name].width]
            at += record[name].width
    wire_bytes, owners, empties = [], [], []
    for f in RECORD_FIELDS:
        if not f.bits:
            value = Const(0, 0)
        elif f is _SEQUENCE:
            value = slot.sequence
        else:
            value = in_lane[f.name] if f.name in _OWNER else slot.common[f.name]
        wide = Cat(value, Const(0, 8 * f.size - len(value)))
        empty = empty_value(f.name) if f.name in _OWNER else 0
        for k in range(f.size):
            shift = 8 * (f.size - 1 - k)
            wire_bytes.append(wide[shift:shift + 8])
            owners.append(_OWNER.get(f.name))
            empties.append((empty >> shift) & 0xFF)
    return wire_bytes, owners, empties


class DropCopy(wiring.Component):
    """Give every record its sequence number, queue it, and stream it out as bytes.

    Sequence numbers count from 0 after reset, one per input record, in input order. A
    record gets its number even when it is lost. The 64-bit number does not wrap in
    practice (a record a cycle at 156.25 MHz would take 3,700 years).

    The queue is one memory, a row per record: its 64-bit sequence number, the fields every
    kind may fill (at their :func:`record_layout` widths) and one lane that the fields only
    one kind fills (:data:`~wiregate.sw.dropcopy.KIND_FIELDS`) share, as wide as the widest
    kind's: 465 bits with drop copy 1.0 and the ``colorlight-5a75b`` profile,
    ``ceil(465 / 36) = 13`` EBR on ECP5 for up to 512 rows (605 bits and 17 EBR with a
    place for every field; at the wire's widths 653 bits and 19 EBR). The record being
    sent is a copy of its row in flip-flops, so that the bytes are picked far from the
    block RAM's slow output; the next one waits in the memory's read register. The bytes
    go out of an eight-byte window filled from the copy a beat ahead (the first eight, the
    sequence number, straight from the copy), and a byte of another kind's lane field is
    replaced by that field's empty byte as the window is filled.

    Fill. ``queued`` is the number of records in the queue, the one being sent included:
    records taken in earlier cycles less those whose last beat left in earlier cycles. The
    engine stamps it on the next record (the record's ``queued``) and decides BACKLOG from
    it (model rule 11).

    Overflow. The queue holds ``depth`` records besides the one being sent. A record that
    finds it full is lost: its number is skipped, so the host
    sees the gap, and ``count_overflow`` counts them. Nothing else happens: the gate keeps
    trading (BACKLOG, set well below the top, is what keeps the queue from filling), and
    the host, which sees the gap, decides.

    Parameters
    ----------
    width : int
        Bytes per output beat (1 or 8).
    regmap : RegisterMap
        Gives the record layout's sizes.
    depth : int
        Records the queue holds, a power of two.
    count_bits : int
        The counters' width (:data:`wiregate.hw.counters.LIVE_BITS`; a test makes them
        narrow enough to wrap soon).

    Attributes
    ----------
    i : In(stream)
        :func:`record_layout` records of ``regmap``, with the fields of
        :data:`~wiregate.sw.dropcopy.KIND_FIELDS` that are not their kind's empty (the
        lane ORs the kinds' fields). Always ready.
    o : Out(stream)
        The records' wire bytes, :data:`~wiregate.sw.dropcopy.RECORD_SIZE` / ``width``
        beats per record, every lane kept; ``first`` on lane 0 of a record's first beat,
        ``last`` on the final lane of its last beat, ``error`` never. Honours ``o.ready``.
    queued : Out(QUEUED_BITS)
        Records in the queue (see Fill).
    count_records : Out(count_bits)
        Records sent whole on ``o`` (a live counter: it wraps).
    count_overflow : Out(count_bits)
        Records lost (a live counter).

    Latency
    -------
    A record entering an empty queue while ``o`` is idle is on ``o`` three cycles later
    (written, fetched, copied into ``current``).
    Records leave back to back, one every ``RECORD_SIZE / width`` cycles while ``o.ready``
    stays high.
    """

    def __init__(self, width, regmap, depth=512, count_bits=LIVE_BITS):
        self._width = check_width(width)
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise TypeError(f"Depth must be an integer number of rows, not {depth!r}")
        if depth < 1 or depth & (depth - 1):
            raise ValueError(f"Depth must be a power of two, not {depth}")
        if depth + 1 >= 1 << QUEUED_BITS:
            raise ValueError(f"Depth {depth}: its fill does not fit the record's queued field")
        self._depth = depth
        self._regmap = regmap
        super().__init__({
            "i": In(stream.Signature(record_layout(regmap), always_ready=True)),
            "o": Out(beat_signature(width, always_ready=False)),
            "queued": Out(QUEUED_BITS),
            "count_records": Out(count_bits),
            "count_overflow": Out(count_bits),
        })

    @property
    def width(self):
        return self._width

    @property
    def depth(self):
        return self._depth

    def _window(self, m, slot, record, index):
        """The ``_WINDOW`` wire bytes from byte ``_WINDOW * index`` on of ``slot``'s record,
        each byte of another kind's lane field its empty byte."""
        wire_bytes, owners, empties = _wire(slot, record)
        kind = slot.common.kind
        wire = Signal(8 * RECORD_SIZE, name="wire")
        picked = Signal(8 * _WINDOW, name="picked")
        window = Signal(8 * _WINDOW, name="next_window")
        m.d.comb += [wire.eq(Cat(*wire_bytes)), picked.eq(wire.word_select(index, 8 * _WINDOW))]
        for j in range(_WINDOW):
            at = range(j, RECORD_SIZE, _WINDOW)
            owner = Array(Const(owners[k] or 0, len(kind)) for k in at)[index]
            empty = Array(Const(empties[k], 8) for k in at)[index]
            ours = (owner == 0) | (owner == kind)
            m.d.comb += window[8 * j:8 * j + 8].eq(Mux(ours, picked[8 * j:8 * j + 8], 0) ^ empty)
        return window

    def elaborate(self, platform):
        m = Module()
        width, depth = self._width, self._depth
        beats = RECORD_SIZE // width

        # Rows count modulo 2 * depth, so that full and empty differ.
        address_bits = (depth - 1).bit_length()
        write_row = Signal(address_bits + 1)
        read_row = Signal(address_bits + 1)

        i = self.i
        sequence = Signal(_SEQUENCE.bits)

        # The block RAM's read port has no output register on the ECP5 and its 5.8 ns
        # clock-to-out leaves no room for the byte mux behind it: the record being sent is
        # copied into ``current`` (flip-flops) and the bytes are picked from there. The next
        # record is fetched as soon as the read register is free and waits there
        # (``ahead``), so it is copied on the last beat of this one and records leave
        # without a gap.
        loaded = Signal()
        ahead = Signal()
        beat = Signal(range(beats))
        last_beat = Signal()        # beat == beats - 1, a flip-flop: it gates the fill count
        moved = self.o.valid & self.o.ready
        sent = moved & last_beat
        fetch = Signal()
        copy = Signal()

        slot = _slot_layout(self._regmap)
        m.submodules.memory = memory = Memory(shape=slot, depth=depth, init=[])
        write, read = memory.write_port(), memory.read_port()
        current = Signal(slot)
        # The queue holds ``depth`` records besides the one being sent: those in the memory
        # and the one in the read register, ``held`` of them. It is full when ``held`` has
        # reached ``depth``, a power of two: its top bit, not a subtraction and a compare.
        held = Signal(address_bits + 1)
        take = i.valid & ~held[address_bits]
        # Both sums are worked out from flip-flops and ``copy``, which comes late (from the
        # output's handshake), picks one: it is not fed through a carry chain.
        m.d.sync += held.eq(Mux(copy, held + take - 1, held + take))
        m.d.sync += [sequence.eq(sequence + i.valid), write_row.eq(write_row + take)]
        m.d.comb += [
            write.en.eq(take),
            write.addr.eq(write_row[:address_bits]),
            write.data.sequence.eq(sequence),
            *(write.data.common[name].eq(i.payload[name])
              for name, _ in write.data.common.shape()),
            # A record leaves the other kinds' fields empty (KIND_FIELDS): OR, not a mux.
            write.data.lane.eq(reduce(or_, (_lane_of(i.payload, k) for k in KIND_FIELDS))),
            copy.eq(ahead & (~loaded | sent)),
            # A row written in this cycle is never the one fetched (the queue would be
            # full), but Yosys cannot see that from ``held`` and would wrap the block RAM
            # in read-first emulation (a flip-flop per data bit each side); the last term
            # says it.
            fetch.eq((write_row != read_row) & (~ahead | copy)
                     & ~(take & (write.addr == read.addr))),
            read.en.eq(fetch),
            read.addr.eq(read_row[:address_bits]),
        ]
        with m.If(fetch):
            m.d.sync += [read_row.eq(read_row + 1), ahead.eq(1)]
        with m.Elif(copy):
            m.d.sync += ahead.eq(0)
        # The bytes go out eight at a time: the record's first eight (its sequence number)
        # straight from ``current``, each next eight from ``window``, filled from
        # ``current`` a beat before they are due, picked by ``following`` (flip-flops to
        # flip-flops: nothing is picked from the block RAM's slow output). The beat's lanes
        # are then a pick within eight bytes. A byte of another kind's lane field is taken
        # as that field's empty byte as the window is filled: each byte's owner and empty
        # value are constants, picked like the byte.
        record = record_layout(self._regmap)
        group_beats = _WINDOW // width
        groups = RECORD_SIZE // _WINDOW
        window = Signal(8 * _WINDOW)
        in_window = Signal(range(group_beats))
        following = Signal(range(groups + 1))
        opening = Signal()          # the beat on ``o`` is in the first eight bytes
        refill = moved & (in_window == group_beats - 1)
        with m.If(copy):
            m.d.sync += [current.eq(read.data), loaded.eq(1), beat.eq(0),
                         last_beat.eq(beats == 1), in_window.eq(0), following.eq(1),
                         opening.eq(1)]
        with m.Elif(sent):
            m.d.sync += loaded.eq(0)
        with m.Elif(moved):
            m.d.sync += [beat.eq(beat + 1), last_beat.eq(beat == beats - 2),
                         in_window.eq(in_window + 1)]
            with m.If(refill):
                m.d.sync += [in_window.eq(0), following.eq(following + 1), opening.eq(0),
                             window.eq(self._window(m, current, record, following))]

        first_eight = Cat(*_wire(current, record)[0][:_WINDOW])
        lanes = Signal(8 * width)
        m.d.comb += [lanes.eq(Mux(opening, first_eight, window).word_select(in_window,
                                                                            8 * width)),
                     self.o.valid.eq(loaded)]
        for lane in range(width):
            m.d.comb += [
                self.o.payload[lane].data.eq(lanes[8 * lane:8 * lane + 8]),
                self.o.payload[lane].keep.eq(1),
                self.o.payload[lane].first.eq((beat == 0) & (lane == 0)),
                self.o.payload[lane].last.eq(last_beat & (lane == width - 1)),
            ]

        m.d.sync += self.queued.eq(self.queued + take - sent)
        live_event(m, self.count_overflow, i.valid & ~take)
        live_event(m, self.count_records, sent)
        return m
