# Ref: wiregate drop copy 1.0 (this module is the specification of the record)
"""The drop copy: one fixed-size record for everything the gate did, in the gate's order.

The gateway emits a record for every verdict on a client OUCH message, every exchange
message applied to the state tables, and every control event applied (commit, kill, release,
heartbeat, reference update, session sync change, and the undo of a void client frame). Each
carries a 64-bit sequence number, gap-free from 0 after reset, and the clock cycle and the
timebase microsecond at which it took effect. The microsecond is the model's ``t``: the
cycle alone would not give it (at 156.25 MHz a microsecond is not a whole number of
cycles). Replaying the records in sequence order through :class:`wiregate.sw.model.Gate`
repeats what the gateware did (its engine makes one record a cycle at most, in the order
it applied the events).

Layout
------
Declared once, below, as data (:data:`RECORD_FIELDS`), and checked when declared: fields
contiguous from byte 0, :data:`RECORD_SIZE` bytes in all, a multiple of 8 so a record is
whole W = 8 beats. Integers are big-endian unsigned. ``bits`` is the width the gateware
carries; the bytes above it are zero on the wire, and the codec refuses a value that needs
more (so nothing the host decodes can have been truncated by the gateware).
:mod:`wiregate.hw.control.dropcopy` builds its Amaranth layout from the same table.

Every record carries ``queued``: the records numbered below it that were still in the
gateway's queue, not yet read whole by the host, when it took effect. ``sequence - queued``
is thus the host's reading position at that moment, the model's
:class:`~wiregate.sw.model.HostRead` (rule 11, the BACKLOG check): the replay applies it
before the record's event, and the model decides BACKLOG from it. Records lost to a full
queue count as read (they left the queue).

What each kind fills (every other field is 0; ``primary`` is :data:`NO_PRIMARY`):

- VERDICT: ``session``; ``msg_type`` (0 for a message the parser could not decode, the
  model's :class:`~wiregate.sw.model.Malformed`); ``accept``, ``reasons``, ``primary``;
  ``retransmit``; the message's ``user_ref_num``, ``orig_user_ref_num`` (Replace), ``side``,
  ``quantity``, ``price``, ``symbol`` (Enter); ``symbol_index`` with ``symbol_known`` 1 when
  the verdict names a symbol (the model's ``Verdict.symbol_index`` is not None).
- EXCHANGE: ``session``, ``msg_type`` and the message's ``user_ref_num``,
  ``orig_user_ref_num``, ``side``, ``quantity``, ``price``, ``match_number``,
  ``order_state``; ``symbol_index`` / ``symbol_known`` of the order it touched, if known.
- CONTROL: ``control`` and, by code: COMMIT ``argument`` = the epoch it started; KILL and
  RELEASE ``argument`` = the scope's index in :data:`wiregate.sw.model.SCOPES` and the latch
  in ``session`` or ``symbol_index`` (``symbol_known`` 1); HEARTBEAT nothing;
  SET_REFERENCE ``symbol_index`` (``symbol_known`` 1), ``price`` = the reference and
  ``argument`` = its stamp (microseconds); SESSION_SYNC ``session`` and ``argument`` = 1 in
  sync, 0 out of sync; VOID_UNDO ``session`` and ``argument`` = how many of the latest
  verdict records of that session belong to the void frame and are undone; REVOKE
  ``session`` and ``user_ref_num`` of an order the void frame got accepted, withdrawn
  (model :class:`~wiregate.sw.model.Revoke`), with ``symbol_index`` as for EXCHANGE.

A gap in the sequence means records were lost, in the gateware (its queue was full, which
BACKLOG is there to prevent; the loss is counted, and the gateware keeps trading) or on the
way to the host. The host's replay is no longer exact after a gap.
"""

import struct
from dataclasses import dataclass, fields
from enum import IntEnum
from operator import attrgetter, le

from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.reasons import NO_PRIMARY, REASON_BITS

__all__ = [
    "KIND_FIELDS",
    "NO_PRIMARY",
    "RECORD_FIELDS",
    "RECORD_SIZE",
    "Control",
    "Field",
    "Kind",
    "Record",
    "SequenceGap",
    "check_fields",
    "decode_records",
    "empty_value",
    "read_records",
]


class Kind(IntEnum):
    """What a record reports. 0 is no kind: an all-zero record never decodes."""

    VERDICT = 1    # the gate's verdict on a client OUCH message
    EXCHANGE = 2   # an exchange OUCH message applied to the state tables
    CONTROL = 3    # a control event applied


class Control(IntEnum):
    """Control event of a CONTROL record (NONE in every other kind)."""

    NONE = 0
    COMMIT = 1
    KILL = 2
    RELEASE = 3
    HEARTBEAT = 4
    SET_REFERENCE = 5
    SESSION_SYNC = 6
    VOID_UNDO = 7
    REVOKE = 8




@dataclass(frozen=True)
class Field:
    """One field of the record.

    Attributes
    ----------
    name : str
    offset : int
        First byte, counted from the record's first byte.
    size : int
        Bytes on the wire.
    bits : int
        Width the gateware carries (0: reserved, always zero).
    raw : bool
        Raw bytes (the symbol, as it was on the wire) rather than an integer.
    """

    name: str
    offset: int
    size: int
    bits: int
    raw: bool = False

    @property
    def struct_code(self) -> str:
        if self.raw or self.bits == 0:
            return f"{self.size}s"
        return {1: "B", 2: "H", 4: "I", 8: "Q"}[self.size]


def check_fields(declared) -> int:
    """Check a record declaration; return its size in bytes.

    Raises ValueError unless the fields are contiguous from byte 0, each ``bits`` fits its
    bytes (raw fields use all of them), integer fields are 1, 2, 4 or 8 bytes, names are
    unique, and the total is a multiple of 8 bytes.
    """
    end = 0
    for f in declared:
        if f.offset != end:
            raise ValueError(f"drop copy field {f.name} starts at byte {f.offset}, expected "
                             f"{end} (fields must be contiguous)")
        if (f.raw and f.bits != 8 * f.size) or not 0 <= f.bits <= 8 * f.size:
            raise ValueError(f"drop copy field {f.name}: {f.bits} bits in {f.size} bytes")
        if not f.raw and f.bits and f.size not in (1, 2, 4, 8):
            raise ValueError(f"drop copy field {f.name}: an integer is 1, 2, 4 or 8 bytes, "
                             f"not {f.size}")
        end += f.size
    names = [f.name for f in declared]
    if len(set(names)) != len(names):
        raise ValueError(f"drop copy fields: duplicate names in {names}")
    if end % 8:
        raise ValueError(f"drop copy record is {end} bytes, not a multiple of 8")
    return end


RECORD_FIELDS = (
    Field("sequence", 0, 8, 64),        # gap-free from 0, given by the drop copy itself
    Field("cycle", 8, 8, 64),           # clock cycles since reset when it was judged
    Field("time_us", 16, 8, 64),        # timebase_us then: the model's t
    Field("kind", 24, 1, max(Kind).bit_length()),
    Field("control", 25, 1, max(Control).bit_length()),
    Field("msg_type", 26, 1, 8),        # OUCH type byte; 0: undecodable client message
    Field("side", 27, 1, 8),            # ASCII
    Field("order_state", 28, 1, 8),     # ASCII
    Field("primary", 29, 1, 8),         # Reason bit number, NO_PRIMARY for none
    Field("accept", 30, 1, 1),
    Field("retransmit", 31, 1, 1),
    Field("symbol_known", 32, 1, 1),    # symbol_index names a symbol
    Field("queued", 33, 2, 16),         # records ahead of it the host had not read (below)
    Field("reserved", 35, 1, 0),
    Field("session", 36, 2, 16),
    Field("symbol_index", 38, 2, 16),
    Field("reasons", 40, 4, REASON_BITS),
    Field("user_ref_num", 44, 4, 32),
    Field("orig_user_ref_num", 48, 4, 32),
    Field("quantity", 52, 4, 32),
    Field("price", 56, 8, 64),
    Field("match_number", 64, 8, 64),
    Field("argument", 72, 8, 64),
    Field("symbol", 80, 8, 64, raw=True),
)
RECORD_SIZE = check_fields(RECORD_FIELDS)
if RECORD_SIZE != 88:
    raise ValueError(f"drop copy 1.0 records are 88 bytes, the declaration gives {RECORD_SIZE}")

# The fields only one kind fills. In every record of another kind they are empty (0;
# ``primary`` NO_PRIMARY): the gateware's queue keeps them in one place, one kind's at a time.
KIND_FIELDS = {
    Kind.VERDICT: ("accept", "retransmit", "primary", "reasons", "symbol"),
    Kind.EXCHANGE: ("order_state", "match_number"),
    Kind.CONTROL: ("control", "argument"),
}
_owned = [name for names in KIND_FIELDS.values() for name in names]
if len(set(_owned)) != len(_owned) or not set(_owned) <= {f.name for f in RECORD_FIELDS}:
    raise ValueError(f"KIND_FIELDS: a field named twice or not in RECORD_FIELDS: {_owned}")


def empty_value(name: str) -> int:
    """What a field of :data:`KIND_FIELDS` holds in a record of another kind."""
    return NO_PRIMARY if name == "primary" else 0


_STRUCT = struct.Struct(">" + "".join(f.struct_code for f in RECORD_FIELDS))
_VALUES = tuple(f for f in RECORD_FIELDS if f.bits)   # the fields a Record holds
# Encoding in one call (the daemon logs every record's wire bytes): the reserved bytes as
# pad bytes, which struct writes as zero.
_PACK = struct.Struct(">" + "".join(f.struct_code if f.bits else f"{f.size}x"
                                    for f in RECORD_FIELDS))
_VALUES_OF = attrgetter(*(f.name for f in _VALUES))
_RESERVED = {f.name: bytes(f.size) for f in RECORD_FIELDS if not f.bits}
_ENUMS = {"kind": Kind, "control": Control}
_CONTROL_OFFSET = next(f.offset for f in RECORD_FIELDS if f.name == "control")


def _problem(f: Field, value) -> tuple[type[Exception], str] | None:
    """Why ``value`` cannot be field ``f``, or None when it can."""
    if f.raw:
        if not isinstance(value, bytes):
            return TypeError, f"{f.name} must be bytes, not {type(value).__name__}"
        if len(value) != f.size:
            return ValueError, f"{f.name} must be {f.size} bytes, not {len(value)}"
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return TypeError, f"{f.name} must be an int, not {type(value).__name__}"
    if not 0 <= value < 1 << f.bits:
        return ValueError, f"{f.name} = {value} does not fit in {f.bits} bits"
    enum = _ENUMS.get(f.name)
    if enum is not None and value not in enum._value2member_map_:
        known = ", ".join(f"{m.value} {m.name}" for m in enum)
        return ValueError, f"unknown {f.name} {value} (known: {known})"
    return None


def _mismatch(kind: int, control: int) -> str | None:
    """A control code outside a CONTROL record, or a CONTROL record without one."""
    if (kind == Kind.CONTROL) != (control != Control.NONE):
        return f"a {Kind(kind).name} record with control {Control(control).name}"
    return None


@dataclass(frozen=True, kw_only=True)
class Record:
    """One drop-copy record (see the module docstring for what each kind fills).

    Construction checks every field: a wrong type raises TypeError, a value that does not
    fit its ``bits``, an unknown kind or control code, or a control code that does not go
    with the kind raises ValueError.
    """

    sequence: int = 0
    cycle: int = 0
    time_us: int = 0
    kind: Kind
    control: Control = Control.NONE
    msg_type: int = 0
    side: int = 0
    order_state: int = 0
    primary: int = NO_PRIMARY
    accept: int = 0
    retransmit: int = 0
    symbol_known: int = 0
    queued: int = 0
    session: int = 0
    symbol_index: int = 0
    reasons: int = 0
    user_ref_num: int = 0
    orig_user_ref_num: int = 0
    quantity: int = 0
    price: int = 0
    match_number: int = 0
    argument: int = 0
    symbol: bytes = bytes(8)

    def __post_init__(self) -> None:
        for f in _VALUES:
            problem = _problem(f, getattr(self, f.name))
            if problem is not None:
                error, message = problem
                raise error(message)
        message = _mismatch(self.kind, self.control)
        if message is not None:
            raise ValueError(message)
        for name, enum in _ENUMS.items():
            object.__setattr__(self, name, enum(getattr(self, name)))

    def encode(self) -> bytes:
        """The record's :data:`RECORD_SIZE` wire bytes."""
        return _PACK.pack(*_VALUES_OF(self))

    @classmethod
    def decode(cls, buf: bytes) -> "Record":
        """Decode exactly one record.

        Raises
        ------
        ProtocolError
            ``buf`` is not :data:`RECORD_SIZE` bytes, a reserved byte is not zero, a value
            needs more than its field's ``bits``, the kind or the control code is unknown,
            or they do not go together. ``offset`` is the offending field's first byte.
        """
        buf = bytes(buf)
        if len(buf) != RECORD_SIZE:
            raise ProtocolError(f"a drop copy record is {RECORD_SIZE} bytes, not {len(buf)}",
                                min(len(buf), RECORD_SIZE))
        return _decode_at(buf, 0)


if [f.name for f in fields(Record)] != [f.name for f in _VALUES]:
    raise ValueError("Record's fields do not match RECORD_FIELDS")


# The quick way of _decode_at, for a record that is good: one unpack of the values a Record
# holds, every one compared with its largest value at once, the reserved bytes and the
# (kind, control) pair looked up, and the Record filled in without checking each field again
# (its __post_init__ costs four fifths of a decode). Anything else takes the way below, which
# names the first bad field.
_NAMES = tuple(f.name for f in _VALUES)
_MAXIMA = tuple(b"\xff" * f.size if f.raw else (1 << f.bits) - 1 for f in _VALUES)
_ZEROS = tuple((f.offset, bytes(f.size)) for f in RECORD_FIELDS if not f.bits)
_KIND_AT, _CONTROL_AT = _NAMES.index("kind"), _NAMES.index("control")
_PAIRS = {(k.value, c.value): (k, c) for k in Kind for c in Control if _mismatch(k, c) is None}
_new_record = object.__new__
_fill = object.__setattr__


def _decode_at(buf: bytes, start: int) -> Record:
    """Decode the record at ``start``; error offsets count from the start of ``buf``."""
    values = _PACK.unpack_from(buf, start)
    pair = _PAIRS.get((values[_KIND_AT], values[_CONTROL_AT]))
    if (pair is not None and all(map(le, values, _MAXIMA))
            and all(buf[start + at:start + at + len(zero)] == zero for at, zero in _ZEROS)):
        fields_ = dict(zip(_NAMES, values, strict=True))
        fields_["kind"], fields_["control"] = pair
        rec = _new_record(Record)
        _fill(rec, "__dict__", fields_)
        return rec
    return _decode_checked(buf, start)


def _decode_checked(buf: bytes, start: int) -> Record:
    """_decode_at field by field: the first bad one raises, with its offset."""
    values = {}
    for f, value in zip(RECORD_FIELDS, _STRUCT.unpack_from(buf, start), strict=True):
        if not f.bits:
            if value != _RESERVED[f.name]:
                raise ProtocolError(f"drop copy {f.name} bytes are {value.hex()}, not zero",
                                    start + f.offset)
            continue
        problem = _problem(f, value)
        if problem is not None:
            raise ProtocolError(f"drop copy record: {problem[1]}", start + f.offset)
        values[f.name] = value
    message = _mismatch(values["kind"], values["control"])
    if message is not None:
        raise ProtocolError(f"drop copy record: {message}", start + _CONTROL_OFFSET)
    return Record(**values)


class SequenceGap(ProtocolError):
    """Records are missing (or out of order) in a drop-copy stream.

    Attributes
    ----------
    expected : int
        The sequence number that should have come next.
    got : int
        The one that came.
    index : int
        Position of that record in the stream (0 is the first).
    """

    def __init__(self, expected: int, got: int, index: int) -> None:
        if got > expected:
            what = f"{got - expected} records lost"
        else:
            what = "sequence went backwards"
        super().__init__(f"drop copy sequence gap at record {index}: expected {expected}, "
                         f"got {got} ({what})", index * RECORD_SIZE)
        self.expected = expected
        self.got = got
        self.index = index


def decode_records(stream: bytes) -> list[Record]:
    """Split a byte stream into records and decode each; the sequence is not checked.

    Raises
    ------
    ProtocolError
        The stream is not a whole number of records (``offset``: the start of the partial
        one), or a record does not decode (``offset`` into the stream).
    """
    stream = bytes(stream)
    whole = len(stream) - len(stream) % RECORD_SIZE
    if whole != len(stream):
        raise ProtocolError(f"drop copy stream of {len(stream)} bytes ends in a partial "
                            f"record of {len(stream) - whole} bytes", whole)
    return [_decode_at(stream, start) for start in range(0, whole, RECORD_SIZE)]


def read_records(stream: bytes, next_sequence: int | None = None) -> list[Record]:
    """Decode a byte stream of records and check that the sequence is gap-free.

    Parameters
    ----------
    stream : bytes
        Whole records, back to back.
    next_sequence : int or None
        The sequence number the first record must carry (the one after the last record
        read before); None accepts any first number.

    Raises
    ------
    SequenceGap
        At the first record whose sequence number is not one more than the previous one.
    ProtocolError
        As :func:`decode_records`.
    """
    records = decode_records(stream)
    for index, record in enumerate(records):
        if next_sequence is not None and record.sequence != next_sequence:
            raise SequenceGap(next_sequence, record.sequence, index)
        next_sequence = record.sequence + 1
    return records
