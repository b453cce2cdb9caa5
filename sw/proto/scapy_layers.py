# Ref: Nasdaq SoupBinTCP 3.00; Nasdaq OUCH 5.0 (layouts as listed in /work/shared/PROTOCOLS.md)
"""scapy layers for SoupBinTCP 3.00 and every OUCH 5.0 message.

These are written straight from the specification tables, deliberately *not* from the
codec's layout table (``wiregate.sw.proto.ouch.CLIENT_LAYOUTS``), so that tests comparing
the two encoders check one reading of the spec against another.

Layering
--------
A TCP segment's payload is a ``SoupBinSegment``: a list of ``SoupBinTCP`` packets, since
SoupBin packets do not align with segments. Each ``SoupBinTCP`` holds the length and type;
its body is the next layer, chosen by type: ``U`` carries an OUCH client message and ``S``
an OUCH server message (the OUCH type letters overlap between directions, the SoupBin type
does not), ``L``/``A``/``J``/``+`` their SoupBin bodies.

Build a packet as ``SoupBinTCP()/OuchEnterOrder(...)``: the SoupBin type and length fill
themselves in. Field names follow the codec's (``user_ref_num``, ``quantity``...). Alpha
fields take and give bytes with the space padding stripped; one-character fields are bytes
of length one. The OUCH Display field is called ``display`` like the codec's, which shadows
scapy's ``Packet.display()`` method on attribute access: read it with
``pkt.getfieldval("display")`` (setting it by keyword works as usual). TCP ports are bound
only on request, with ``bind_ports``.
"""

from __future__ import annotations

from scapy.fields import (
    ByteField,
    FieldLenField,
    IntField,
    LenField,
    LongField,
    PacketListField,
    ShortField,
    StrField,
    StrFixedLenField,
    StrLenField,
)
from scapy.layers.inet import TCP
from scapy.packet import Packet, Raw, bind_bottom_up, bind_layers, split_bottom_up

__all__ = [
    "CLIENT_LAYERS",
    "SERVER_LAYERS",
    "SOUPBIN_LAYERS",
    "AlphaField",
    "AsciiNumberField",
    "CharField",
    "OuchAccountQuery",
    "OuchAccountQueryResponse",
    "OuchAiqCanceled",
    "OuchBrokenTrade",
    "OuchCancelOrder",
    "OuchCancelPending",
    "OuchCancelReject",
    "OuchDisableOrderEntry",
    "OuchDisableOrderEntryResponse",
    "OuchEnableOrderEntry",
    "OuchEnableOrderEntryResponse",
    "OuchEnterOrder",
    "OuchMassCancel",
    "OuchMassCancelResponse",
    "OuchModifyOrder",
    "OuchOrderAccepted",
    "OuchOrderCanceled",
    "OuchOrderExecuted",
    "OuchOrderModified",
    "OuchOrderReplaced",
    "OuchOrderRestated",
    "OuchPriorityUpdate",
    "OuchRejected",
    "OuchReplaceOrder",
    "OuchSystemEvent",
    "OuchTagValue",
    "OuchTradeCorrection",
    "RightAlphaField",
    "SoupBinSegment",
    "SoupBinTCP",
    "SoupDebug",
    "SoupLoginAccepted",
    "SoupLoginRejected",
    "SoupLoginRequest",
    "bind_ports",
    "dissect_soupbin",
    "unbind_ports",
]


# --- field types -------------------------------------------------------------------------

class AlphaField(StrFixedLenField):
    """ASCII alpha field: left-justified and space-padded on the wire, stripped when read."""

    def i2m(self, pkt, x):
        return super().i2m(pkt, x).ljust(self.length_from(pkt), b" ")

    def m2i(self, pkt, x):
        return super().m2i(pkt, x).rstrip(b" ")


class RightAlphaField(StrFixedLenField):
    """ASCII field right-justified and left-padded with spaces (SoupBin session names)."""

    def i2m(self, pkt, x):
        return super().i2m(pkt, x).rjust(self.length_from(pkt), b" ")

    def m2i(self, pkt, x):
        return super().m2i(pkt, x).strip(b" ")


class CharField(StrFixedLenField):
    """One ASCII character, kept as a 1-byte ``bytes`` value (a space is a valid value)."""

    def __init__(self, name: str, default: bytes) -> None:
        super().__init__(name, default, length=1)


class AsciiNumberField(StrFixedLenField):
    """SoupBinTCP numeric field: an integer in ASCII, right-justified, space-padded."""

    def i2m(self, pkt, x):
        return str(x if x is not None else 0).encode("ascii").rjust(self.length_from(pkt))

    def m2i(self, pkt, x):
        text = x.strip(b" ")
        return int(text) if text else 0

    def any2i(self, pkt, x):
        return int(x) if isinstance(x, str | bytes) else x

    def i2repr(self, pkt, x):
        return repr(x)


def _appendage_fields(length_name: str = "appendage_length") -> list:
    """AppendageLength (u16, byte count) then the TagValue list it measures."""
    return [
        FieldLenField(length_name, None, length_of="appendage", fmt="!H"),
        PacketListField("appendage", [], OuchTagValue,
                        length_from=lambda pkt: getattr(pkt, length_name)),
    ]


class OuchTagValue(Packet):
    """One OUCH 5.0 appendage element: length (tag + value bytes), tag, value."""

    name = "OUCH TagValue"
    fields_desc = [
        FieldLenField("length", None, length_of="value", fmt="B",
                      adjust=lambda pkt, x: x + 1),
        ByteField("tag", 0),
        StrLenField("value", b"", length_from=lambda pkt: pkt.length - 1),
    ]

    def extract_padding(self, s):
        # The following bytes are the next element, not this element's payload.
        return b"", s


# --- OUCH 5.0 client to exchange (inside SoupBin U) ---------------------------------------

class OuchEnterOrder(Packet):
    name = "OUCH Enter Order"
    fields_desc = [
        CharField("type", b"O"),
        IntField("user_ref_num", 0),
        CharField("side", b"B"),
        IntField("quantity", 0),
        AlphaField("symbol", b"", length=8),
        LongField("price", 0),
        CharField("time_in_force", b"0"),
        CharField("display", b"Y"),
        CharField("capacity", b"A"),
        CharField("intermarket_sweep", b"N"),
        CharField("cross_type", b"N"),
        AlphaField("clordid", b"", length=14),
        *_appendage_fields(),
    ]


class OuchReplaceOrder(Packet):
    name = "OUCH Replace Order"
    fields_desc = [
        CharField("type", b"U"),
        IntField("orig_user_ref_num", 0),
        IntField("user_ref_num", 0),
        IntField("quantity", 0),
        LongField("price", 0),
        CharField("time_in_force", b"0"),
        CharField("display", b"Y"),
        CharField("intermarket_sweep", b"N"),
        AlphaField("clordid", b"", length=14),
        *_appendage_fields(),
    ]


class OuchCancelOrder(Packet):
    name = "OUCH Cancel Order"
    fields_desc = [
        CharField("type", b"X"),
        IntField("user_ref_num", 0),
        IntField("quantity", 0),
    ]


class OuchModifyOrder(Packet):
    name = "OUCH Modify Order"
    fields_desc = [
        CharField("type", b"M"),
        IntField("user_ref_num", 0),
        CharField("side", b"B"),
        IntField("quantity", 0),
    ]


class OuchAccountQuery(Packet):
    name = "OUCH Account Query"
    fields_desc = [CharField("type", b"Q")]


class OuchMassCancel(Packet):
    # Layout unverified in PROTOCOLS.md: UserRefNum, Firm, Symbol as in later 5.0 revisions.
    name = "OUCH Mass Cancel Request"
    fields_desc = [
        CharField("type", b"C"),
        IntField("user_ref_num", 0),
        AlphaField("firm", b"", length=4),
        AlphaField("symbol", b"", length=8),
    ]


class OuchDisableOrderEntry(Packet):
    # Layout unverified in PROTOCOLS.md: UserRefNum, Firm.
    name = "OUCH Disable Order Entry Request"
    fields_desc = [
        CharField("type", b"D"),
        IntField("user_ref_num", 0),
        AlphaField("firm", b"", length=4),
    ]


class OuchEnableOrderEntry(Packet):
    # Layout unverified in PROTOCOLS.md: UserRefNum, Firm.
    name = "OUCH Enable Order Entry Request"
    fields_desc = [
        CharField("type", b"E"),
        IntField("user_ref_num", 0),
        AlphaField("firm", b"", length=4),
    ]


# --- OUCH 5.0 exchange to client (inside SoupBin S); Timestamp at offset 1 ----------------

class OuchSystemEvent(Packet):
    name = "OUCH System Event"
    fields_desc = [
        CharField("type", b"S"),
        LongField("timestamp", 0),
        CharField("event_code", b"S"),
    ]


class OuchOrderAccepted(Packet):
    name = "OUCH Order Accepted"
    fields_desc = [
        CharField("type", b"A"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        CharField("side", b"B"),
        IntField("quantity", 0),
        AlphaField("symbol", b"", length=8),
        LongField("price", 0),
        CharField("time_in_force", b"0"),
        CharField("display", b"Y"),
        LongField("order_reference_number", 0),
        CharField("capacity", b"A"),
        CharField("intermarket_sweep", b"N"),
        CharField("cross_type", b"N"),
        CharField("order_state", b"L"),
        AlphaField("clordid", b"", length=14),
        *_appendage_fields(),
    ]


class OuchOrderReplaced(Packet):
    name = "OUCH Order Replaced"
    fields_desc = [
        CharField("type", b"U"),
        LongField("timestamp", 0),
        IntField("orig_user_ref_num", 0),
        IntField("user_ref_num", 0),
        CharField("side", b"B"),
        IntField("quantity", 0),
        AlphaField("symbol", b"", length=8),
        LongField("price", 0),
        CharField("time_in_force", b"0"),
        CharField("display", b"Y"),
        LongField("order_reference_number", 0),
        CharField("capacity", b"A"),
        CharField("intermarket_sweep", b"N"),
        CharField("cross_type", b"N"),
        CharField("order_state", b"L"),
        AlphaField("clordid", b"", length=14),
        *_appendage_fields(),
    ]


class OuchOrderCanceled(Packet):
    name = "OUCH Order Canceled"
    fields_desc = [
        CharField("type", b"C"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        IntField("quantity", 0),
        CharField("reason", b"U"),
    ]


class OuchAiqCanceled(Packet):
    # AIQ Strategy (offset 31) is in the OUCH 5.0 FIX Orchestra field list ("AIQ strategy
    # used on the cancelled order"); the Open Markets Initiative dissector omits it.
    name = "OUCH AIQ Canceled"
    fields_desc = [
        CharField("type", b"D"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        IntField("quantity", 0),  # DecrementShares
        CharField("reason", b"Q"),
        IntField("quantity_prevented_from_trading", 0),
        LongField("execution_price", 0),
        CharField("liquidity_flag", b"A"),
        CharField("aiq_strategy", b"O"),
    ]


class OuchOrderExecuted(Packet):
    name = "OUCH Order Executed"
    fields_desc = [
        CharField("type", b"E"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        IntField("quantity", 0),
        LongField("price", 0),
        CharField("liquidity_flag", b"A"),
        LongField("match_number", 0),
        *_appendage_fields(),
    ]


class OuchBrokenTrade(Packet):
    name = "OUCH Broken Trade"
    fields_desc = [
        CharField("type", b"B"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        LongField("match_number", 0),
        CharField("reason", b"E"),
        AlphaField("clordid", b"", length=14),
    ]


class OuchTradeCorrection(Packet):
    # Layout unverified in PROTOCOLS.md: an execution restated with its correction reason.
    name = "OUCH Trade Correction"
    fields_desc = [
        CharField("type", b"F"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        IntField("quantity", 0),
        LongField("price", 0),
        CharField("liquidity_flag", b"A"),
        LongField("match_number", 0),
        CharField("reason", b"E"),
        AlphaField("clordid", b"", length=14),
    ]


class OuchRejected(Packet):
    name = "OUCH Rejected"
    fields_desc = [
        CharField("type", b"J"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        ShortField("reason", 0),
        AlphaField("clordid", b"", length=14),
    ]


class OuchCancelPending(Packet):
    name = "OUCH Cancel Pending"
    fields_desc = [
        CharField("type", b"P"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
    ]


class OuchCancelReject(Packet):
    name = "OUCH Cancel Reject"
    fields_desc = [
        CharField("type", b"I"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
    ]


class OuchPriorityUpdate(Packet):
    name = "OUCH Order Priority Update"
    fields_desc = [
        CharField("type", b"T"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        LongField("price", 0),
        CharField("display", b"Y"),
        LongField("order_reference_number", 0),
    ]


class OuchOrderModified(Packet):
    name = "OUCH Order Modified"
    fields_desc = [
        CharField("type", b"M"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        CharField("side", b"B"),
        IntField("quantity", 0),
    ]


class OuchOrderRestated(Packet):
    name = "OUCH Order Restated"
    fields_desc = [
        CharField("type", b"R"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        CharField("reason", b"R"),
        *_appendage_fields(),
    ]


class OuchAccountQueryResponse(Packet):
    name = "OUCH Account Query Response"
    fields_desc = [
        CharField("type", b"Q"),
        LongField("timestamp", 0),
        IntField("next_user_ref_num", 0),
    ]


class OuchMassCancelResponse(Packet):
    # Layout unverified in PROTOCOLS.md: echoes the request's UserRefNum, Firm, Symbol.
    name = "OUCH Mass Cancel Response"
    fields_desc = [
        CharField("type", b"X"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        AlphaField("firm", b"", length=4),
        AlphaField("symbol", b"", length=8),
    ]


class OuchDisableOrderEntryResponse(Packet):
    # Layout unverified in PROTOCOLS.md.
    name = "OUCH Disable Order Entry Response"
    fields_desc = [
        CharField("type", b"G"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        AlphaField("firm", b"", length=4),
    ]


class OuchEnableOrderEntryResponse(Packet):
    # Layout unverified in PROTOCOLS.md.
    name = "OUCH Enable Order Entry Response"
    fields_desc = [
        CharField("type", b"K"),
        LongField("timestamp", 0),
        IntField("user_ref_num", 0),
        AlphaField("firm", b"", length=4),
    ]


CLIENT_LAYERS: dict[bytes, type[Packet]] = {
    cls().type: cls for cls in (
        OuchEnterOrder, OuchReplaceOrder, OuchCancelOrder, OuchModifyOrder, OuchAccountQuery,
        OuchMassCancel, OuchDisableOrderEntry, OuchEnableOrderEntry)
}
"""OUCH client message layers by type byte."""

SERVER_LAYERS: dict[bytes, type[Packet]] = {
    cls().type: cls for cls in (
        OuchSystemEvent, OuchOrderAccepted, OuchOrderReplaced, OuchOrderCanceled,
        OuchAiqCanceled, OuchOrderExecuted, OuchBrokenTrade, OuchTradeCorrection,
        OuchRejected, OuchCancelPending, OuchCancelReject, OuchPriorityUpdate,
        OuchOrderModified, OuchOrderRestated, OuchAccountQueryResponse,
        OuchMassCancelResponse, OuchDisableOrderEntryResponse, OuchEnableOrderEntryResponse)
}
"""OUCH server message layers by type byte."""


# --- SoupBinTCP 3.00 ---------------------------------------------------------------------

class SoupLoginRequest(Packet):
    name = "SoupBinTCP Login Request"
    fields_desc = [
        AlphaField("username", b"", length=6),
        AlphaField("password", b"", length=10),
        RightAlphaField("session", b"", length=10),
        AsciiNumberField("sequence", 0, length=20),
    ]


class SoupLoginAccepted(Packet):
    name = "SoupBinTCP Login Accepted"
    fields_desc = [
        RightAlphaField("session", b"", length=10),
        AsciiNumberField("sequence", 0, length=20),
    ]


class SoupLoginRejected(Packet):
    name = "SoupBinTCP Login Rejected"
    fields_desc = [CharField("reason", b"A")]


class SoupDebug(Packet):
    name = "SoupBinTCP Debug"
    fields_desc = [StrField("text", b"")]


SOUPBIN_LAYERS: dict[bytes, type[Packet]] = {
    b"L": SoupLoginRequest,
    b"A": SoupLoginAccepted,
    b"J": SoupLoginRejected,
    b"+": SoupDebug,
}
"""SoupBin body layers by packet type (``U`` and ``S`` carry OUCH; the rest have no body)."""


class SoupBinTCP(Packet):
    """One SoupBinTCP logical packet: u16 length (type byte plus body), type, body."""

    name = "SoupBinTCP"
    fields_desc = [
        LenField("length", None, fmt="!H", adjust=lambda body: body + 1),
        CharField("type", b"U"),
    ]

    def extract_padding(self, s):
        # What lies past ``length`` is the next SoupBin packet of the same segment.
        body = max(self.length - 1, 0)
        return s[:body], s[body:]

    def guess_payload_class(self, payload):
        if self.type == b"U":
            return CLIENT_LAYERS.get(payload[:1], Raw)
        if self.type == b"S":
            return SERVER_LAYERS.get(payload[:1], Raw)
        return SOUPBIN_LAYERS.get(self.type, Raw)


class SoupBinSegment(Packet):
    """A TCP payload seen as consecutive SoupBinTCP packets (the last may be cut short)."""

    name = "SoupBinTCP segment"
    fields_desc = [PacketListField("packets", [], SoupBinTCP)]


# Building ``SoupBinTCP()/OuchEnterOrder()`` sets the SoupBin type from the body layer.
for _cls in CLIENT_LAYERS.values():
    bind_layers(SoupBinTCP, _cls, type=b"U")
for _cls in SERVER_LAYERS.values():
    bind_layers(SoupBinTCP, _cls, type=b"S")
for _type, _cls in SOUPBIN_LAYERS.items():
    bind_layers(SoupBinTCP, _cls, type=_type)
del _cls, _type


def bind_ports(*ports: int) -> None:
    """Dissect TCP payloads to or from any of ``ports`` as SoupBinTCP.

    Only the dissection direction is bound, so building ``TCP()/SoupBinSegment()`` does not
    change the TCP ports.
    """
    for port in ports:
        bind_bottom_up(TCP, SoupBinSegment, sport=port)
        bind_bottom_up(TCP, SoupBinSegment, dport=port)


def unbind_ports(*ports: int) -> None:
    """Undo ``bind_ports`` for ``ports``."""
    for port in ports:
        split_bottom_up(TCP, SoupBinSegment, sport=port)
        split_bottom_up(TCP, SoupBinSegment, dport=port)


def dissect_soupbin(data: bytes) -> list[Packet]:
    """Dissect a byte run holding consecutive SoupBinTCP packets into a list of them."""
    return list(SoupBinSegment(data).packets)
