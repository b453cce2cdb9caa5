# Ref: Nasdaq OUCH 5.0. Layouts from /work/shared/PROTOCOLS.md; the messages it only names from
# the Open Markets Initiative dissector (Open-Markets-Initiative/wireshark-lua,
# Nasdaq/Nasdaq_Equities_Orders_Ouch_v5_0_Dissector.lua); Mass Cancel / Disable / Enable Order
# Entry and their responses from j-stach/slouch (src/msg/request/*.rs, src/msg/response/*.rs).
"""OUCH 5.0 messages, client to exchange and exchange to client.

Every message layout is declared once, below, as data (:class:`MessageLayout` of
:class:`Field`), and exported in :data:`CLIENT_LAYOUTS` / :data:`SERVER_LAYOUTS` so the gateware
derives its byte offsets from the same table. One generic, ``struct``-based encoder and decoder
serve every message; the dataclasses only name the fields.

Wire rules (OUCH 5.0):

- Integers are big-endian unsigned (kind ``"u"``). Prices carry 4 implied decimals.
- Alpha fields (kind ``"a"``) are ASCII, left-justified, space-padded: encoding pads and rejects
  values too long or not ASCII; decoding strips the trailing spaces.
- One-character fields (kind ``"c"``) are a single ASCII byte, kept as a 1-character ``str``.
- Offsets count from the message-type byte (offset 0); ``fields`` start at offset 1.
- Messages with an ``appendage_length_field`` end in an optional appendage: a run of TagValue
  elements ``len(1) | tag(1) | value``, where ``len`` counts the tag byte and the value (so an
  element occupies ``1 + len`` bytes). AppendageLength must equal the bytes that follow the
  fixed part, and every element must end inside them.

A price above ``OUCH_MAX_PRICE`` decodes without error: the gate has to see such an order to
reject it. :func:`price_valid` says whether a price is one OUCH 5.0 can carry.
"""

import dataclasses
import struct
from typing import ClassVar

from wiregate.sw.limits import OUCH_MAX_PRICE
from wiregate.sw.proto.errors import ProtocolError

KINDS = ("u", "a", "c")
_UINT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
MAX_APPENDAGE_LENGTH = 0xFFFF  # AppendageLength is a u16
MAX_TAG_VALUE_LENGTH = 0xFF - 1  # the element's len byte also counts the tag


@dataclasses.dataclass(frozen=True)
class Field:
    """One fixed-position field of an OUCH message.

    Attributes
    ----------
    name : str
        Python attribute name on the message dataclass (snake_case).
    offset : int
        Byte offset from the message-type byte (offset 0).
    size : int
        Width in bytes.
    kind : str
        ``"u"`` big-endian unsigned integer (1, 2, 4 or 8 bytes), ``"a"`` ASCII alpha,
        space-padded, or ``"c"`` one ASCII character.
    """

    name: str
    offset: int
    size: int
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "u" and self.size not in _UINT_CODES:
            raise ValueError(f"field {self.name}: an unsigned field is 1, 2, 4 or 8 bytes, "
                             f"not {self.size}")
        if self.kind == "c" and self.size != 1:
            raise ValueError(f"field {self.name}: a character field is 1 byte, not {self.size}")
        if self.size < 1:
            raise ValueError(f"field {self.name}: size must be positive, not {self.size}")

    @property
    def end(self) -> int:
        """Offset of the first byte after this field."""
        return self.offset + self.size

    @property
    def struct_code(self) -> str:
        """This field's ``struct`` format code (big-endian context)."""
        if self.kind == "u":
            return _UINT_CODES[self.size]
        return f"{self.size}s"


@dataclasses.dataclass(frozen=True)
class MessageLayout:
    """The fixed part of one OUCH message type, checked when declared.

    Construction checks that the fields start right after the type byte, are contiguous, have
    unique names, and that their sizes sum to ``fixed_length``; an appendage-length field must
    be the last field and a u16.

    Attributes
    ----------
    type : bytes
        The 1-byte message type.
    name : str
        The message's name in the spec.
    fixed_length : int
        Length including the type byte and excluding any appendage.
    fields : tuple of Field
        The fields after the type byte, in wire order.
    appendage_length_field : str or None
        Name of the AppendageLength field when the message carries an optional appendage.
    verified : bool
        False when the layout could not be confirmed against a second source (see the
        ``# unverified:`` comment at its declaration).
    """

    type: bytes
    name: str
    fixed_length: int
    fields: tuple[Field, ...]
    appendage_length_field: str | None = None
    verified: bool = True
    _struct: struct.Struct = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.type) != 1:
            raise ValueError(f"{self.name}: message type must be 1 byte, not {self.type!r}")
        end = 1
        for f in self.fields:
            if f.offset != end:
                raise ValueError(f"{self.name}: field {f.name} starts at {f.offset}, expected "
                                 f"{end} (fields must be contiguous from the type byte)")
            end = f.end
        if end != self.fixed_length:
            raise ValueError(f"{self.name}: fields end at {end}, spec length is "
                             f"{self.fixed_length}")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names in {names}")
        if self.appendage_length_field is not None:
            last = self.fields[-1] if self.fields else None
            if last is None or last.name != self.appendage_length_field or last.kind != "u" \
                    or last.size != 2:
                raise ValueError(f"{self.name}: {self.appendage_length_field} must be the last "
                                 "field, a 2-byte unsigned integer")
        fmt = ">c" + "".join(f.struct_code for f in self.fields)
        object.__setattr__(self, "_struct", struct.Struct(fmt))

    def field(self, name: str) -> Field:
        """Return the field called ``name`` (KeyError if there is none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


def _by_type(*layouts: MessageLayout) -> dict[bytes, MessageLayout]:
    table: dict[bytes, MessageLayout] = {}
    for layout in layouts:
        if layout.type in table:
            raise ValueError(f"message type {layout.type!r} declared twice")
        table[layout.type] = layout
    return table


_APPENDAGE = "appendage_length"

CLIENT_LAYOUTS: dict[bytes, MessageLayout] = _by_type(
    MessageLayout(b"O", "Enter Order", 47, (
        Field("user_ref_num", 1, 4, "u"),
        Field("side", 5, 1, "c"),
        Field("quantity", 6, 4, "u"),
        Field("symbol", 10, 8, "a"),
        Field("price", 18, 8, "u"),
        Field("time_in_force", 26, 1, "c"),
        Field("display", 27, 1, "c"),
        Field("capacity", 28, 1, "c"),
        Field("intermarket_sweep", 29, 1, "c"),
        Field("cross_type", 30, 1, "c"),
        Field("clordid", 31, 14, "a"),
        Field(_APPENDAGE, 45, 2, "u"),
    ), _APPENDAGE),
    MessageLayout(b"U", "Replace Order", 40, (
        Field("orig_user_ref_num", 1, 4, "u"),
        Field("user_ref_num", 5, 4, "u"),
        Field("quantity", 9, 4, "u"),
        Field("price", 13, 8, "u"),
        Field("time_in_force", 21, 1, "c"),
        Field("display", 22, 1, "c"),
        Field("intermarket_sweep", 23, 1, "c"),
        Field("clordid", 24, 14, "a"),
        Field(_APPENDAGE, 38, 2, "u"),
    ), _APPENDAGE),
    MessageLayout(b"X", "Cancel Order", 9, (
        Field("user_ref_num", 1, 4, "u"),
        Field("quantity", 5, 4, "u"),  # the new, reduced size; 0 cancels the rest
    )),
    MessageLayout(b"M", "Modify Order", 10, (
        Field("user_ref_num", 1, 4, "u"),
        Field("side", 5, 1, "c"),
        Field("quantity", 6, 4, "u"),
    )),
    MessageLayout(b"Q", "Account Query", 1, ()),
    # unverified: later 5.0 revisions only; field list from slouch (src/msg/request/cancel.rs),
    # which also gives these three an appendage. PROTOCOLS.md gives Cancel/Modify none, so
    # none here either.
    MessageLayout(b"C", "Mass Cancel", 17, (
        Field("user_ref_num", 1, 4, "u"),
        Field("firm", 5, 4, "a"),
        Field("symbol", 9, 8, "a"),
    ), verified=False),
    # unverified: slouch src/msg/request/permission.rs, as Mass Cancel.
    MessageLayout(b"D", "Disable Order Entry", 9, (
        Field("user_ref_num", 1, 4, "u"),
        Field("firm", 5, 4, "a"),
    ), verified=False),
    # unverified: slouch src/msg/request/permission.rs, as Mass Cancel.
    MessageLayout(b"E", "Enable Order Entry", 9, (
        Field("user_ref_num", 1, 4, "u"),
        Field("firm", 5, 4, "a"),
    ), verified=False),
)

SERVER_LAYOUTS: dict[bytes, MessageLayout] = _by_type(
    MessageLayout(b"S", "System Event", 10, (
        Field("timestamp", 1, 8, "u"),
        Field("event_code", 9, 1, "c"),
    )),
    MessageLayout(b"A", "Order Accepted", 64, (
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("side", 13, 1, "c"),
        Field("quantity", 14, 4, "u"),
        Field("symbol", 18, 8, "a"),
        Field("price", 26, 8, "u"),
        Field("time_in_force", 34, 1, "c"),
        Field("display", 35, 1, "c"),
        Field("order_reference_number", 36, 8, "u"),
        Field("capacity", 44, 1, "c"),
        Field("intermarket_sweep", 45, 1, "c"),
        Field("cross_type", 46, 1, "c"),
        Field("order_state", 47, 1, "c"),
        Field("clordid", 48, 14, "a"),
        Field(_APPENDAGE, 62, 2, "u"),
    ), _APPENDAGE),
    MessageLayout(b"U", "Order Replaced", 68, (
        Field("timestamp", 1, 8, "u"),
        Field("orig_user_ref_num", 9, 4, "u"),
        Field("user_ref_num", 13, 4, "u"),
        Field("side", 17, 1, "c"),
        Field("quantity", 18, 4, "u"),
        Field("symbol", 22, 8, "a"),
        Field("price", 30, 8, "u"),
        Field("time_in_force", 38, 1, "c"),
        Field("display", 39, 1, "c"),
        Field("order_reference_number", 40, 8, "u"),
        Field("capacity", 48, 1, "c"),
        Field("intermarket_sweep", 49, 1, "c"),
        Field("cross_type", 50, 1, "c"),
        Field("order_state", 51, 1, "c"),
        Field("clordid", 52, 14, "a"),
        Field(_APPENDAGE, 66, 2, "u"),
    ), _APPENDAGE),
    MessageLayout(b"C", "Order Canceled", 18, (
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("quantity", 13, 4, "u"),  # shares taken off the order (a decrement)
        Field("reason", 17, 1, "c"),
    )),
    # OMI lists D's fields up to LiquidityFlag (filed under type C by mistake; slouch and
    # PROTOCOLS.md say D). The OUCH 5.0 FIX Orchestra field list and slouch both end it with
    # a 1-byte AIQ Strategy, so it is 32 bytes; still marked unverified (no spec text seen).
    MessageLayout(b"D", "AIQ Canceled", 32, (
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("quantity", 13, 4, "u"),  # DecrementShares
        Field("reason", 17, 1, "c"),
        Field("quantity_prevented_from_trading", 18, 4, "u"),
        Field("execution_price", 22, 8, "u"),
        Field("liquidity_flag", 30, 1, "c"),
        Field("aiq_strategy", 31, 1, "c"),
    ), verified=False),
    MessageLayout(b"E", "Order Executed", 36, (
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("quantity", 13, 4, "u"),
        Field("price", 17, 8, "u"),
        Field("liquidity_flag", 25, 1, "c"),
        Field("match_number", 26, 8, "u"),
        Field(_APPENDAGE, 34, 2, "u"),
    ), _APPENDAGE),
    MessageLayout(b"B", "Broken Trade", 36, (  # OMI; matches slouch's field list
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("match_number", 13, 8, "u"),
        Field("reason", 21, 1, "c"),
        Field("clordid", 22, 14, "a"),
    )),
    MessageLayout(b"F", "Trade Correction", 49, (  # OMI
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("quantity", 13, 4, "u"),
        Field("price", 17, 8, "u"),
        Field("liquidity_flag", 25, 1, "c"),
        Field("match_number", 26, 8, "u"),
        Field("reason", 34, 1, "c"),
        Field("clordid", 35, 14, "a"),
    )),
    MessageLayout(b"J", "Order Rejected", 29, (
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("reason", 13, 2, "u"),
        Field("clordid", 15, 14, "a"),
    )),
    MessageLayout(b"P", "Cancel Pending", 13, (  # OMI; matches slouch
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
    )),
    MessageLayout(b"I", "Cancel Reject", 13, (  # OMI; matches slouch
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
    )),
    MessageLayout(b"T", "Order Priority Update", 30, (  # OMI
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("price", 13, 8, "u"),
        Field("display", 21, 1, "c"),
        Field("order_reference_number", 22, 8, "u"),
    )),
    MessageLayout(b"M", "Order Modified", 18, (  # OMI
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("side", 13, 1, "c"),
        Field("quantity", 14, 4, "u"),
    )),
    MessageLayout(b"R", "Order Restated", 16, (  # OMI
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("reason", 13, 1, "c"),
        Field(_APPENDAGE, 14, 2, "u"),
    ), _APPENDAGE),
    MessageLayout(b"Q", "Account Query Response", 13, (  # OMI
        Field("timestamp", 1, 8, "u"),
        Field("next_user_ref_num", 9, 4, "u"),
    )),
    # unverified: slouch src/msg/response/canceled.rs (echoes the Mass Cancel request); the
    # timestamp every server message carries is assumed, slouch leaves it commented out.
    MessageLayout(b"X", "Mass Cancel Response", 25, (
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("firm", 13, 4, "a"),
        Field("symbol", 17, 8, "a"),
    ), verified=False),
    # unverified: slouch src/msg/response/permission.rs, timestamp assumed as above.
    MessageLayout(b"G", "Disable Order Entry Response", 17, (
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("firm", 13, 4, "a"),
    ), verified=False),
    # unverified: slouch src/msg/response/permission.rs, timestamp assumed as above.
    MessageLayout(b"K", "Enable Order Entry Response", 17, (
        Field("timestamp", 1, 8, "u"),
        Field("user_ref_num", 9, 4, "u"),
        Field("firm", 13, 4, "a"),
    ), verified=False),
)


def price_valid(price: int) -> bool:
    """Return whether ``price`` (4 implied decimals) is one OUCH 5.0 can carry.

    The range is 0 to ``OUCH_MAX_PRICE`` ($199,999.9900) inclusive, so a valid price fits in
    31 bits. Whether zero is an acceptable limit price is the checks' policy, not the codec's.
    """
    return 0 <= price <= OUCH_MAX_PRICE


@dataclasses.dataclass(frozen=True)
class TagValue:
    """One optional-appendage element: wire form ``len(1) | tag(1) | value``.

    Parameters
    ----------
    tag : int
        Option tag, 0..255 (2 Firm, 3 MinQty, 4 CustomerType, 5 MaxFloor, ...).
    value : bytes
        The option's value as it appears on the wire, at most 254 bytes.
    """

    tag: int
    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.tag, int) or isinstance(self.tag, bool) \
                or not 0 <= self.tag <= 0xFF:
            raise ValueError(f"TagValue tag must be an int in 0..255, not {self.tag!r}")
        if not isinstance(self.value, bytes):
            raise TypeError(f"TagValue value must be bytes, not {type(self.value).__name__}")
        if len(self.value) > MAX_TAG_VALUE_LENGTH:
            raise ValueError(f"TagValue value is {len(self.value)} bytes, at most "
                             f"{MAX_TAG_VALUE_LENGTH} fit behind a 1-byte length")


def encode_appendage(elements: tuple[TagValue, ...]) -> bytes:
    """Encode TagValue elements; raise ValueError if they exceed AppendageLength's range."""
    out = bytearray()
    for element in elements:
        if not isinstance(element, TagValue):
            raise TypeError(f"appendage elements must be TagValue, not {type(element).__name__}")
        out += bytes((1 + len(element.value), element.tag)) + element.value
    if len(out) > MAX_APPENDAGE_LENGTH:
        raise ValueError(f"appendage is {len(out)} bytes, AppendageLength holds at most "
                         f"{MAX_APPENDAGE_LENGTH}")
    return bytes(out)


def _decode_elements(data: bytes, start: int, end: int) -> tuple[TagValue, ...]:
    elements = []
    pos = start
    while pos < end:
        length = data[pos]
        if length == 0:
            raise ProtocolError("appendage element with length 0 (the length counts its tag "
                                "byte, so it is at least 1)", pos)
        if pos + 1 + length > end:
            raise ProtocolError(f"appendage overrun: element needs {1 + length} bytes, only "
                                f"{end - pos} remain in the appendage", pos)
        elements.append(TagValue(data[pos + 1], data[pos + 2:pos + 1 + length]))
        pos += 1 + length
    return tuple(elements)


def decode_appendage(data: bytes) -> tuple[TagValue, ...]:
    """Decode a whole appendage (the bytes AppendageLength counts); offsets are into ``data``."""
    data = bytes(data)
    return _decode_elements(data, 0, len(data))


class _Message:
    """Base of every OUCH message dataclass: the generic layout-driven encoder."""

    TYPE: ClassVar[bytes]
    LAYOUT: ClassVar[MessageLayout]

    def encode(self) -> bytes:
        """Encode this message from its type byte on (no SoupBinTCP header).

        Raises
        ------
        ValueError
            A value does not fit its field (too long, not ASCII, out of range).
        TypeError
            A value has the wrong Python type.
        """
        layout = self.LAYOUT
        appendage = b""
        if layout.appendage_length_field is not None:
            appendage = encode_appendage(self.appendage)  # type: ignore[attr-defined]
        values: list[object] = [layout.type]
        for f in layout.fields:
            if f.name == layout.appendage_length_field:
                values.append(len(appendage))
            else:
                values.append(_to_wire(layout, f, getattr(self, f.name)))
        return layout._struct.pack(*values) + appendage


def _to_wire(layout: MessageLayout, f: Field, value: object) -> int | bytes:
    where = f"{layout.name} {f.name}"
    if f.kind == "u":
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{where} must be an int, not {type(value).__name__}")
        if not 0 <= value < 1 << (8 * f.size):
            raise ValueError(f"{where} {value} does not fit {f.size} unsigned bytes")
        return value
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a str, not {type(value).__name__}")
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{where} {value!r} is not ASCII") from None
    if f.kind == "c":
        if len(raw) != 1:
            raise ValueError(f"{where} must be exactly one character, not {value!r}")
        return raw
    if len(raw) > f.size:
        raise ValueError(f"{where} {value!r} is longer than {f.size} characters")
    return raw.ljust(f.size, b" ")


def _from_wire(layout: MessageLayout, f: Field, raw: int | bytes) -> int | str:
    if isinstance(raw, int):
        return raw
    for i, byte in enumerate(raw):
        if byte >= 0x80:
            raise ProtocolError(f"{layout.name}: non-ASCII byte 0x{byte:02x} in {f.name}",
                                f.offset + i)
    text = raw.decode("ascii")
    return text.rstrip(" ") if f.kind == "a" else text


def _decode(buf: bytes, layouts: dict[bytes, MessageLayout],
            classes: dict[bytes, type[_Message]], direction: str) -> _Message:
    data = bytes(buf)
    if not data:
        raise ProtocolError(f"empty {direction} message", 0)
    layout = layouts.get(data[:1])
    if layout is None:
        raise ProtocolError(f"unknown {direction} message type {data[:1]!r}", 0)
    if len(data) < layout.fixed_length:
        raise ProtocolError(f"truncated {layout.name}: {len(data)} bytes, the fixed part is "
                            f"{layout.fixed_length}", len(data))
    raw = layout._struct.unpack_from(data)
    values: dict[str, object] = {}
    appendage_length = 0
    for f, r in zip(layout.fields, raw[1:], strict=True):
        if f.name == layout.appendage_length_field:
            appendage_length = r
        else:
            values[f.name] = _from_wire(layout, f, r)
    actual = len(data) - layout.fixed_length
    if layout.appendage_length_field is None:
        if actual:
            raise ProtocolError(f"{layout.name} too long: {len(data)} bytes, it is "
                                f"{layout.fixed_length}", layout.fixed_length)
    else:
        if appendage_length != actual:
            raise ProtocolError(f"appendage overrun: {layout.name} AppendageLength is "
                                f"{appendage_length} but {actual} bytes follow the fixed part",
                                layout.field(layout.appendage_length_field).offset)
        values["appendage"] = _decode_elements(data, layout.fixed_length, len(data))
    return classes[layout.type](**values)


# --- client to exchange (inside SoupBinTCP U packets) -------------------------------------


@dataclasses.dataclass(frozen=True)
class EnterOrder(_Message):
    """Enter Order ``O``: a new order."""

    TYPE: ClassVar[bytes] = b"O"
    user_ref_num: int
    side: str
    quantity: int
    symbol: str
    price: int
    time_in_force: str
    display: str
    capacity: str
    intermarket_sweep: str
    cross_type: str
    clordid: str
    appendage: tuple[TagValue, ...] = ()


@dataclasses.dataclass(frozen=True)
class ReplaceOrder(_Message):
    """Replace Order ``U``: replace ``orig_user_ref_num`` by a new order ``user_ref_num``."""

    TYPE: ClassVar[bytes] = b"U"
    orig_user_ref_num: int
    user_ref_num: int
    quantity: int
    price: int
    time_in_force: str
    display: str
    intermarket_sweep: str
    clordid: str
    appendage: tuple[TagValue, ...] = ()


@dataclasses.dataclass(frozen=True)
class CancelOrder(_Message):
    """Cancel Order ``X``: reduce the order to ``quantity`` shares (0 cancels the rest)."""

    TYPE: ClassVar[bytes] = b"X"
    user_ref_num: int
    quantity: int


@dataclasses.dataclass(frozen=True)
class ModifyOrder(_Message):
    """Modify Order ``M``: change side (e.g. sell to sell short) and/or reduce quantity."""

    TYPE: ClassVar[bytes] = b"M"
    user_ref_num: int
    side: str
    quantity: int


@dataclasses.dataclass(frozen=True)
class AccountQuery(_Message):
    """Account Query ``Q``: ask for the next expected UserRefNum."""

    TYPE: ClassVar[bytes] = b"Q"


@dataclasses.dataclass(frozen=True)
class MassCancel(_Message):
    """Mass Cancel ``C`` (later 5.0 revisions; layout unverified)."""

    TYPE: ClassVar[bytes] = b"C"
    user_ref_num: int
    firm: str
    symbol: str


@dataclasses.dataclass(frozen=True)
class DisableOrderEntry(_Message):
    """Disable Order Entry ``D`` (later 5.0 revisions; layout unverified)."""

    TYPE: ClassVar[bytes] = b"D"
    user_ref_num: int
    firm: str


@dataclasses.dataclass(frozen=True)
class EnableOrderEntry(_Message):
    """Enable Order Entry ``E`` (later 5.0 revisions; layout unverified)."""

    TYPE: ClassVar[bytes] = b"E"
    user_ref_num: int
    firm: str


# --- exchange to client (inside SoupBinTCP S packets) -------------------------------------


@dataclasses.dataclass(frozen=True)
class SystemEvent(_Message):
    """System Event ``S``: start (``S``) or end (``E``) of day."""

    TYPE: ClassVar[bytes] = b"S"
    timestamp: int
    event_code: str


@dataclasses.dataclass(frozen=True)
class OrderAccepted(_Message):
    """Order Accepted ``A``."""

    TYPE: ClassVar[bytes] = b"A"
    timestamp: int
    user_ref_num: int
    side: str
    quantity: int
    symbol: str
    price: int
    time_in_force: str
    display: str
    order_reference_number: int
    capacity: str
    intermarket_sweep: str
    cross_type: str
    order_state: str
    clordid: str
    appendage: tuple[TagValue, ...] = ()


@dataclasses.dataclass(frozen=True)
class OrderReplaced(_Message):
    """Order Replaced ``U``."""

    TYPE: ClassVar[bytes] = b"U"
    timestamp: int
    orig_user_ref_num: int
    user_ref_num: int
    side: str
    quantity: int
    symbol: str
    price: int
    time_in_force: str
    display: str
    order_reference_number: int
    capacity: str
    intermarket_sweep: str
    cross_type: str
    order_state: str
    clordid: str
    appendage: tuple[TagValue, ...] = ()


@dataclasses.dataclass(frozen=True)
class OrderCanceled(_Message):
    """Order Canceled ``C``: ``quantity`` shares came off the order, for ``reason``."""

    TYPE: ClassVar[bytes] = b"C"
    timestamp: int
    user_ref_num: int
    quantity: int
    reason: str


@dataclasses.dataclass(frozen=True)
class AiqCanceled(_Message):
    """AIQ Canceled ``D``: shares canceled by anti-internalization (layout unverified)."""

    TYPE: ClassVar[bytes] = b"D"
    timestamp: int
    user_ref_num: int
    quantity: int
    reason: str
    quantity_prevented_from_trading: int
    execution_price: int
    liquidity_flag: str
    aiq_strategy: str


@dataclasses.dataclass(frozen=True)
class OrderExecuted(_Message):
    """Order Executed ``E``: a fill of ``quantity`` at ``price``."""

    TYPE: ClassVar[bytes] = b"E"
    timestamp: int
    user_ref_num: int
    quantity: int
    price: int
    liquidity_flag: str
    match_number: int
    appendage: tuple[TagValue, ...] = ()


@dataclasses.dataclass(frozen=True)
class BrokenTrade(_Message):
    """Broken Trade ``B``: execution ``match_number`` was broken."""

    TYPE: ClassVar[bytes] = b"B"
    timestamp: int
    user_ref_num: int
    match_number: int
    reason: str
    clordid: str


@dataclasses.dataclass(frozen=True)
class TradeCorrection(_Message):
    """Trade Correction ``F``: execution ``match_number`` now has this quantity and price."""

    TYPE: ClassVar[bytes] = b"F"
    timestamp: int
    user_ref_num: int
    quantity: int
    price: int
    liquidity_flag: str
    match_number: int
    reason: str
    clordid: str


@dataclasses.dataclass(frozen=True)
class OrderRejected(_Message):
    """Order Rejected ``J``: ``reason`` is the exchange's u16 reject code."""

    TYPE: ClassVar[bytes] = b"J"
    timestamp: int
    user_ref_num: int
    reason: int
    clordid: str


@dataclasses.dataclass(frozen=True)
class CancelPending(_Message):
    """Cancel Pending ``P``."""

    TYPE: ClassVar[bytes] = b"P"
    timestamp: int
    user_ref_num: int


@dataclasses.dataclass(frozen=True)
class CancelReject(_Message):
    """Cancel Reject ``I``."""

    TYPE: ClassVar[bytes] = b"I"
    timestamp: int
    user_ref_num: int


@dataclasses.dataclass(frozen=True)
class PriorityUpdate(_Message):
    """Order Priority Update ``T``."""

    TYPE: ClassVar[bytes] = b"T"
    timestamp: int
    user_ref_num: int
    price: int
    display: str
    order_reference_number: int


@dataclasses.dataclass(frozen=True)
class OrderModified(_Message):
    """Order Modified ``M``."""

    TYPE: ClassVar[bytes] = b"M"
    timestamp: int
    user_ref_num: int
    side: str
    quantity: int


@dataclasses.dataclass(frozen=True)
class OrderRestated(_Message):
    """Order Restated ``R``: the update itself travels in the appendage."""

    TYPE: ClassVar[bytes] = b"R"
    timestamp: int
    user_ref_num: int
    reason: str
    appendage: tuple[TagValue, ...] = ()


@dataclasses.dataclass(frozen=True)
class AccountQueryResponse(_Message):
    """Account Query Response ``Q``."""

    TYPE: ClassVar[bytes] = b"Q"
    timestamp: int
    next_user_ref_num: int


@dataclasses.dataclass(frozen=True)
class MassCancelResponse(_Message):
    """Mass Cancel Response ``X`` (layout unverified)."""

    TYPE: ClassVar[bytes] = b"X"
    timestamp: int
    user_ref_num: int
    firm: str
    symbol: str


@dataclasses.dataclass(frozen=True)
class DisableOrderEntryResponse(_Message):
    """Disable Order Entry Response ``G`` (layout unverified)."""

    TYPE: ClassVar[bytes] = b"G"
    timestamp: int
    user_ref_num: int
    firm: str


@dataclasses.dataclass(frozen=True)
class EnableOrderEntryResponse(_Message):
    """Enable Order Entry Response ``K`` (layout unverified)."""

    TYPE: ClassVar[bytes] = b"K"
    timestamp: int
    user_ref_num: int
    firm: str


ClientMessage = (EnterOrder | ReplaceOrder | CancelOrder | ModifyOrder | AccountQuery
                 | MassCancel | DisableOrderEntry | EnableOrderEntry)
ServerMessage = (SystemEvent | OrderAccepted | OrderReplaced | OrderCanceled | AiqCanceled
                 | OrderExecuted | BrokenTrade | TradeCorrection | OrderRejected | CancelPending
                 | CancelReject | PriorityUpdate | OrderModified | OrderRestated
                 | AccountQueryResponse | MassCancelResponse | DisableOrderEntryResponse
                 | EnableOrderEntryResponse)


def _bind(layouts: dict[bytes, MessageLayout],
          classes: tuple[type[_Message], ...]) -> dict[bytes, type[_Message]]:
    """Attach each class to its layout, checking that both name the same fields in order."""
    table = {cls.TYPE: cls for cls in classes}
    if set(table) != set(layouts) or len(table) != len(classes):
        raise ValueError(f"message classes {sorted(table)} do not match layouts "
                         f"{sorted(layouts)}")
    for msg_type, cls in table.items():
        layout = layouts[msg_type]
        expected = [f.name for f in layout.fields if f.name != layout.appendage_length_field]
        if layout.appendage_length_field is not None:
            expected.append("appendage")
        declared = [f.name for f in dataclasses.fields(cls)]
        if declared != expected:
            raise ValueError(f"{cls.__name__} fields {declared} do not match the "
                             f"{layout.name} layout {expected}")
        cls.LAYOUT = layout
    return table


_CLIENT_CLASSES = _bind(CLIENT_LAYOUTS, (
    EnterOrder, ReplaceOrder, CancelOrder, ModifyOrder, AccountQuery, MassCancel,
    DisableOrderEntry, EnableOrderEntry))
_SERVER_CLASSES = _bind(SERVER_LAYOUTS, (
    SystemEvent, OrderAccepted, OrderReplaced, OrderCanceled, AiqCanceled, OrderExecuted,
    BrokenTrade, TradeCorrection, OrderRejected, CancelPending, CancelReject, PriorityUpdate,
    OrderModified, OrderRestated, AccountQueryResponse, MassCancelResponse,
    DisableOrderEntryResponse, EnableOrderEntryResponse))


def decode_client(buf: bytes) -> ClientMessage:
    """Decode one client-to-exchange message (the payload of a SoupBinTCP ``U`` packet).

    Raises
    ------
    ProtocolError
        Empty buffer, unknown type, fixed part truncated or too long, non-ASCII text,
        AppendageLength disagreeing with the bytes present, or an appendage element running
        past the end. ``offset`` is into ``buf``.
    """
    return _decode(buf, CLIENT_LAYOUTS, _CLIENT_CLASSES, "client")  # type: ignore[return-value]


def decode_server(buf: bytes) -> ServerMessage:
    """Decode one exchange-to-client message (the payload of a SoupBinTCP ``S`` packet).

    Raises
    ------
    ProtocolError
        As :func:`decode_client`.
    """
    return _decode(buf, SERVER_LAYOUTS, _SERVER_CLASSES, "server")  # type: ignore[return-value]
