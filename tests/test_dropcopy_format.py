"""The drop copy record codec against a ``struct`` packing written here from the spec table.

The format below is typed out independently of ``RECORD_FIELDS`` (the layout the codec and
the gateware are built from), so a field moved, resized or reordered there fails here.
"""

import random
import struct

import pytest

from wiregate.sw.dropcopy import (
    NO_PRIMARY,
    RECORD_SIZE,
    Control,
    Field,
    Kind,
    Record,
    SequenceGap,
    check_fields,
    decode_records,
    read_records,
)
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.reasons import REASON_BITS

# wiregate drop copy 1.0: 88 bytes, big-endian.
WIRE = struct.Struct(">QQQ BBBBBBBBB H x HH IIII QQQ 8s")
# (name, largest value) in wire order; symbol is 8 raw bytes.
SPEC = (
    ("sequence", 2**64 - 1), ("cycle", 2**64 - 1), ("time_us", 2**64 - 1),
    ("kind", 3), ("control", 7), ("msg_type", 255), ("side", 255), ("order_state", 255),
    ("primary", 255), ("accept", 1), ("retransmit", 1), ("symbol_known", 1),
    ("queued", 2**16 - 1), ("session", 2**16 - 1), ("symbol_index", 2**16 - 1),
    ("reasons", 2**REASON_BITS - 1),
    ("user_ref_num", 2**32 - 1), ("orig_user_ref_num", 2**32 - 1), ("quantity", 2**32 - 1),
    ("price", 2**64 - 1), ("match_number", 2**64 - 1), ("argument", 2**64 - 1),
)
OFFSET = {"kind": 24, "control": 25, "accept": 30, "reserved": 35, "reasons": 40}


def struct_pack(values):
    return WIRE.pack(*(values[name] for name, _ in SPEC), values["symbol"])


def random_values(rng):
    """Every field random, often at 0 or its largest value; kind and control consistent."""
    values = {name: rng.choice((0, top, rng.randint(0, top))) for name, top in SPEC}
    values["kind"] = rng.choice(list(Kind))
    values["control"] = (rng.randint(1, max(Control)) if values["kind"] == Kind.CONTROL
                         else Control.NONE)
    values["symbol"] = rng.randbytes(8)
    return values


def wire_with(at):
    """A valid record's bytes with the bytes at some offsets changed: ``{offset: bytes}``."""
    raw = bytearray(Record(kind=Kind.VERDICT).encode())
    for offset, data in at.items():
        raw[offset:offset + len(data)] = data
    return bytes(raw)


def test_size():
    assert RECORD_SIZE == WIRE.size == 88
    assert RECORD_SIZE % 8 == 0


def test_round_trip_random():
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    for _ in range(5000):
        values = random_values(rng)
        record = Record(**values)
        wire = struct_pack(values)
        assert record.encode() == wire, f"seed {seed}: {values}"
        assert Record.decode(wire) == record, f"seed {seed}: {values}"


@pytest.mark.parametrize("kind", list(Kind))
def test_round_trip_extremes(kind):
    control = Control.COMMIT if kind == Kind.CONTROL else Control.NONE
    for pick in (lambda top: 0, lambda top: top, lambda top: top - 1, lambda top: 1):
        values = {name: pick(top) for name, top in SPEC}
        values.update(kind=kind, control=control, symbol=b"AAPL    ")
        record = Record(**values)
        assert record.encode() == struct_pack(values)
        assert Record.decode(struct_pack(values)) == record


def test_defaults():
    record = Record(kind=Kind.EXCHANGE)
    assert record.primary == NO_PRIMARY and record.control == Control.NONE
    assert record.symbol == bytes(8) and record.sequence == 0
    assert isinstance(Record.decode(record.encode()).kind, Kind)


@pytest.mark.parametrize("length", [0, 1, 87, 89, 176])
def test_decode_wrong_length(length):
    with pytest.raises(ProtocolError) as info:
        Record.decode(bytes(length))
    assert info.value.message == f"a drop copy record is 88 bytes, not {length}"
    assert info.value.offset == min(length, 88)


@pytest.mark.parametrize(("at", "message", "offset"), [
    ({24: b"\0"}, "unknown kind 0 (known: 1 VERDICT, 2 EXCHANGE, 3 CONTROL)", "kind"),
    ({24: b"\4"}, "kind = 4 does not fit in 2 bits", "kind"),
    ({25: b"\x10"}, "control = 16 does not fit in 4 bits", "control"),
    ({25: b"\2"}, "a VERDICT record with control KILL", "control"),
    ({24: b"\3"}, "a CONTROL record with control NONE", "control"),
    ({30: b"\2"}, "accept = 2 does not fit in 1 bits", "accept"),
    ({40: (1 << REASON_BITS).to_bytes(4, "big")},
     f"reasons = {1 << REASON_BITS} does not fit in {REASON_BITS} bits", "reasons"),
])
def test_decode_refuses(at, message, offset):
    with pytest.raises(ProtocolError) as info:
        Record.decode(wire_with(at))
    assert info.value.message == f"drop copy record: {message}"
    assert info.value.offset == OFFSET[offset]


@pytest.mark.parametrize("byte", [35])
def test_decode_refuses_reserved(byte):
    with pytest.raises(ProtocolError) as info:
        Record.decode(wire_with({byte: b"\x80"}))
    assert info.value.offset == OFFSET["reserved"]
    assert "reserved bytes are" in info.value.message


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"kind": 0}, ValueError, "unknown kind 0 (known: 1 VERDICT, 2 EXCHANGE, 3 CONTROL)"),
    ({"kind": "VERDICT"}, TypeError, "kind must be an int, not str"),
    ({"control": Control.KILL}, ValueError, "a VERDICT record with control KILL"),
    ({"session": 1 << 16}, ValueError, "session = 65536 does not fit in 16 bits"),
    ({"session": -1}, ValueError, "session = -1 does not fit in 16 bits"),
    ({"accept": True}, TypeError, "accept must be an int, not bool"),
    ({"price": 1.5}, TypeError, "price must be an int, not float"),
    ({"reasons": 1 << REASON_BITS}, ValueError,
     f"reasons = {1 << REASON_BITS} does not fit in {REASON_BITS} bits"),
    ({"symbol": b"AAPL"}, ValueError, "symbol must be 8 bytes, not 4"),
    ({"symbol": "AAPL    "}, TypeError, "symbol must be bytes, not str"),
])
def test_construction_refuses(changes, error, message):
    with pytest.raises(error) as info:
        Record(**{"kind": Kind.VERDICT, **changes})
    assert str(info.value) == message


def test_control_record_needs_a_code():
    with pytest.raises(ValueError, match="a CONTROL record with control NONE"):
        Record(kind=Kind.CONTROL)


def numbered(rng, sequences):
    return [Record(**{**random_values(rng), "sequence": s}) for s in sequences]


def test_read_records_gap_free():
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    start = rng.choice((0, rng.randrange(1 << 63)))
    records = numbered(rng, range(start, start + 200))
    stream = b"".join(r.encode() for r in records)
    assert read_records(stream) == records
    assert read_records(stream, next_sequence=start) == records
    assert decode_records(stream) == records
    assert read_records(b"") == []


@pytest.mark.parametrize(("sequences", "next_sequence", "expected", "got", "index"), [
    ([0, 1, 2, 5, 6], None, 3, 5, 3),        # three lost
    ([7, 8, 9, 10, 12], 7, 11, 12, 4),       # one lost, at the end
    ([4, 5, 6], 3, 3, 4, 0),                 # the first record is not the one expected
    ([0, 1, 2, 2, 3], None, 3, 2, 3),        # a repeat
    ([10, 11, 9], None, 12, 9, 2),           # backwards
])
def test_read_records_gap(sequences, next_sequence, expected, got, index):
    rng = random.Random(index)
    stream = b"".join(r.encode() for r in numbered(rng, sequences))
    with pytest.raises(SequenceGap) as info:
        read_records(stream, next_sequence=next_sequence)
    assert (info.value.expected, info.value.got, info.value.index) == (expected, got, index)
    assert info.value.offset == index * RECORD_SIZE
    what = f"{got - expected} records lost" if got > expected else "sequence went backwards"
    assert info.value.message == (f"drop copy sequence gap at record {index}: expected "
                                  f"{expected}, got {got} ({what})")
    assert decode_records(stream)   # the gap is read_records' business only


def test_stream_partial_record():
    stream = b"".join(r.encode() for r in numbered(random.Random(1), range(3)))
    with pytest.raises(ProtocolError) as info:
        read_records(stream[:-5])
    assert info.value.offset == 2 * RECORD_SIZE
    assert info.value.message == ("drop copy stream of 259 bytes ends in a partial record "
                                  "of 83 bytes")


def test_stream_error_offset_counts_from_stream_start():
    records = numbered(random.Random(2), range(3))
    raw = bytearray(b"".join(r.encode() for r in records))
    raw[2 * RECORD_SIZE + OFFSET["kind"]] = 0
    with pytest.raises(ProtocolError) as info:
        decode_records(bytes(raw))
    assert info.value.offset == 2 * RECORD_SIZE + OFFSET["kind"]


@pytest.mark.parametrize(("fields", "message"), [
    ((Field("a", 0, 8, 64), Field("b", 9, 8, 64)),
     "drop copy field b starts at byte 9, expected 8 (fields must be contiguous)"),
    ((Field("a", 0, 4, 33), Field("b", 4, 4, 32)), "drop copy field a: 33 bits in 4 bytes"),
    ((Field("a", 0, 8, 32, raw=True),), "drop copy field a: 32 bits in 8 bytes"),
    ((Field("a", 0, 3, 24), Field("b", 3, 5, 0)),
     "drop copy field a: an integer is 1, 2, 4 or 8 bytes, not 3"),
    ((Field("a", 0, 4, 32), Field("a", 4, 4, 32)),
     "drop copy fields: duplicate names in ['a', 'a']"),
    ((Field("a", 0, 4, 32), Field("b", 4, 2, 16)),
     "drop copy record is 6 bytes, not a multiple of 8"),
])
def test_check_fields(fields, message):
    with pytest.raises(ValueError) as info:
        check_fields(fields)
    assert str(info.value) == message
