"""Drop copy: number the gate's records, queue them, and send them to the host as bytes.

The record format is :mod:`wiregate.sw.dropcopy`'s (``RECORD_FIELDS``); the layouts here
are built from that table, nothing is retyped. The engine hands over a record a cycle at
most (it orders every record itself) and cannot wait, the host drains them at its own
pace: a queue in block RAM sits
between the two, and when it is full a record is lost rather than the order path stalled.
The queue's fill goes back to the engine, which refuses new orders with BACKLOG well
before that (model rule 11).
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.dropcopy import RECORD_FIELDS, RECORD_SIZE
from wiregate.sw.regmap import RegisterMap

from ..counters import count_event
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


def _slot_layout(regmap: RegisterMap) -> data.StructLayout:
    """A queue row: a record and the sequence number it was given."""
    return data.StructLayout({"sequence": _SEQUENCE.bits, "record": record_layout(regmap)})


def _wire(slot):
    """The slot's :data:`RECORD_SIZE` wire bytes as one value, the first byte lowest."""
    wire_bytes = []
    for f in RECORD_FIELDS:
        if not f.bits:
            wire_bytes.append(Const(0, 8 * f.size))
            continue
        value = slot.sequence if f is _SEQUENCE else slot.record[f.name]
        wide = Cat(value, Const(0, 8 * f.size - len(value)))
        wire_bytes.extend(wide[8 * (f.size - 1 - k):8 * (f.size - k)] for k in range(f.size))
    return Cat(*wire_bytes)


class DropCopy(wiring.Component):
    """Give every record its sequence number, queue it, and stream it out as bytes.

    Sequence numbers count from 0 after reset, one per input record, in input order. A
    record gets its number even when it is lost. The 64-bit number does not wrap in
    practice (a record a cycle at 156.25 MHz would take 3,700 years).

    The queue is one memory, a row per record: its carried bits (:func:`record_layout` of
    ``regmap``) and its 64-bit sequence number: 605 bits with drop copy 1.0 and the
    ``colorlight-5a75b`` profile, ``ceil(605 / 36) = 17`` EBR on ECP5 for up to 512 rows
    (at the wire's widths 653 bits and 19 EBR; the two-input queue before it took twice
    that, one input tied off in the core). The record being sent is a copy in flip-flops,
    so that the bytes are picked far from the block RAM's slow output; the next one waits
    in the memory's read register.

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
        Gives the counter width (that of ``dropcopy_records``).
    depth : int
        Records the queue holds, a power of two.

    Attributes
    ----------
    i : In(stream)
        :func:`record_layout` records of ``regmap``. Always ready.
    o : Out(stream)
        The records' wire bytes, :data:`~wiregate.sw.dropcopy.RECORD_SIZE` / ``width``
        beats per record, every lane kept; ``first`` on lane 0 of a record's first beat,
        ``last`` on the final lane of its last beat, ``error`` never. Honours ``o.ready``.
    queued : Out(QUEUED_BITS)
        Records in the queue (see Fill).
    count_records : Out(counter)
        Records sent whole on ``o`` (saturating).
    count_overflow : Out(counter)
        Records lost (saturating).

    Latency
    -------
    A record entering an empty queue while ``o`` is idle is on ``o`` three cycles later
    (written, fetched, copied into ``current``).
    Records leave back to back, one every ``RECORD_SIZE / width`` cycles while ``o.ready``
    stays high.
    """

    def __init__(self, width, regmap, depth=512):
        self._width = check_width(width)
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise TypeError(f"Depth must be an integer number of rows, not {depth!r}")
        if depth < 1 or depth & (depth - 1):
            raise ValueError(f"Depth must be a power of two, not {depth}")
        if depth + 1 >= 1 << QUEUED_BITS:
            raise ValueError(f"Depth {depth}: its fill does not fit the record's queued field")
        self._depth = depth
        self._regmap = regmap
        counter = regmap.register("dropcopy_records").width
        super().__init__({
            "i": In(stream.Signature(record_layout(regmap), always_ready=True)),
            "o": Out(beat_signature(width, always_ready=False)),
            "queued": Out(QUEUED_BITS),
            "count_records": Out(counter),
            "count_overflow": Out(counter),
        })

    @property
    def width(self):
        return self._width

    @property
    def depth(self):
        return self._depth

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
        m.d.sync += held.eq(held + take - copy)
        m.d.sync += [sequence.eq(sequence + i.valid), write_row.eq(write_row + take)]
        m.d.comb += [
            write.en.eq(take),
            write.addr.eq(write_row[:address_bits]),
            write.data.sequence.eq(sequence),
            write.data.record.eq(i.payload),
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
        with m.If(copy):
            m.d.sync += [current.eq(read.data), loaded.eq(1), beat.eq(0),
                         last_beat.eq(beats == 1)]
        with m.Elif(sent):
            m.d.sync += loaded.eq(0)
        with m.Elif(moved):
            m.d.sync += [beat.eq(beat + 1), last_beat.eq(beat == beats - 2)]

        # Named signals, not one nested expression: each lane would otherwise rebuild the
        # whole record in simulation, and the netlist reads the same.
        wire = Signal(8 * RECORD_SIZE)
        lanes = Signal(8 * width)
        m.d.comb += [
            wire.eq(_wire(current)),
            lanes.eq(wire.word_select(beat, 8 * width)),
        ]
        m.d.comb += self.o.valid.eq(loaded)
        for lane in range(width):
            m.d.comb += [
                self.o.payload[lane].data.eq(lanes[8 * lane:8 * lane + 8]),
                self.o.payload[lane].keep.eq(1),
                self.o.payload[lane].first.eq((beat == 0) & (lane == 0)),
                self.o.payload[lane].last.eq(last_beat & (lane == width - 1)),
            ]

        m.d.sync += self.queued.eq(self.queued + take - sent)
        count_event(m, self.count_overflow, i.valid & ~take)
        count_event(m, self.count_records, sent)
        return m
