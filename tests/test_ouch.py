"""OUCH 5.0 codec: hand-written golden bytes, layout offsets against PROTOCOLS.md, round trips,
and every malformed-input class with its offset.

Golden vectors are written here by hand (byte literals or ``struct.pack`` with formats typed
from the spec tables), never derived from the codec's own layout table.
"""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wiregate.sw.limits import OUCH_MAX_PRICE
from wiregate.sw.proto import ouch
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.ouch import (
    CLIENT_LAYOUTS,
    SERVER_LAYOUTS,
    AccountQuery,
    CancelOrder,
    EnterOrder,
    Field,
    MessageLayout,
    ModifyOrder,
    OrderAccepted,
    OrderCanceled,
    OrderExecuted,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SystemEvent,
    TagValue,
    decode_appendage,
    decode_client,
    decode_server,
    encode_appendage,
    price_valid,
)

TS = 0x0000_1A2B_3C4D_5E6F  # a nanosecond timestamp

CLIENT_CLASSES = {cls.TYPE: cls for cls in (
    ouch.EnterOrder, ouch.ReplaceOrder, ouch.CancelOrder, ouch.ModifyOrder, ouch.AccountQuery,
    ouch.MassCancel, ouch.DisableOrderEntry, ouch.EnableOrderEntry)}
SERVER_CLASSES = {cls.TYPE: cls for cls in (
    ouch.SystemEvent, ouch.OrderAccepted, ouch.OrderReplaced, ouch.OrderCanceled,
    ouch.AiqCanceled, ouch.OrderExecuted, ouch.BrokenTrade, ouch.TradeCorrection,
    ouch.OrderRejected, ouch.CancelPending, ouch.CancelReject, ouch.PriorityUpdate,
    ouch.OrderModified, ouch.OrderRestated, ouch.AccountQueryResponse,
    ouch.MassCancelResponse, ouch.DisableOrderEntryResponse, ouch.EnableOrderEntryResponse)}

# --- golden vectors -----------------------------------------------------------------------

ENTER_BYTES = (
    b"O"
    + b"\x00\x00\x00\x2a"                   # UserRefNum 42
    + b"B"                                  # Side buy
    + b"\x00\x00\x01\x2c"                   # Quantity 300
    + b"AAPL    "                           # Symbol
    + b"\x00\x00\x00\x00\x00\x16\xe3\x60"   # Price 1,500,000 = $150.0000
    + b"0"                                  # TimeInForce day
    + b"Y"                                  # Display
    + b"A"                                  # Capacity agency
    + b"N"                                  # InterMarketSweep
    + b"N"                                  # CrossType
    + b"ORDER-0001    "                     # ClOrdID (14)
    + b"\x00\x00"                           # AppendageLength 0
)
ENTER = EnterOrder(user_ref_num=42, side="B", quantity=300, symbol="AAPL", price=1_500_000,
                   time_in_force="0", display="Y", capacity="A", intermarket_sweep="N",
                   cross_type="N", clordid="ORDER-0001")

# Firm "WGTE" (tag 2, 4 bytes) and MinQty 100 (tag 3, 4 bytes): each element is
# len (tag + value = 5) | tag | value.
APPENDAGE_BYTES = b"\x05\x02WGTE" + b"\x05\x03\x00\x00\x00\x64"
ENTER_APP_BYTES = ENTER_BYTES[:45] + b"\x00\x0c" + APPENDAGE_BYTES
ENTER_APP = EnterOrder(**{**ENTER.__dict__, "appendage": (
    TagValue(2, b"WGTE"), TagValue(3, b"\x00\x00\x00\x64"))})

REPLACE_BYTES = struct.pack(">cIIIQccc14sH", b"U", 42, 43, 200, 1_510_000, b"3", b"N", b"Y",
                            b"REPL-0001     ", 0)
REPLACE = ReplaceOrder(orig_user_ref_num=42, user_ref_num=43, quantity=200, price=1_510_000,
                       time_in_force="3", display="N", intermarket_sweep="Y",
                       clordid="REPL-0001")

CANCEL_BYTES = bytes.fromhex("58 0000002a 00000000")  # X, UserRefNum 42, Quantity 0
CANCEL = CancelOrder(user_ref_num=42, quantity=0)

MODIFY_BYTES = b"M" + b"\x00\x00\x00\x2a" + b"T" + b"\x00\x00\x00\x64"
MODIFY = ModifyOrder(user_ref_num=42, side="T", quantity=100)

QUERY_BYTES = b"Q"

EVENT_BYTES = b"S" + b"\x00\x00\x1a\x2b\x3c\x4d\x5e\x6f" + b"S"
EVENT = SystemEvent(timestamp=TS, event_code="S")

ACCEPTED_BYTES = struct.pack(">cQIcI8sQccQcccc14sH", b"A", TS, 42, b"B", 300, b"AAPL    ",
                             1_500_000, b"0", b"Y", 0x1122_3344_5566_7788, b"A", b"N", b"N",
                             b"L", b"ORDER-0001    ", 0)
ACCEPTED = OrderAccepted(timestamp=TS, user_ref_num=42, side="B", quantity=300, symbol="AAPL",
                         price=1_500_000, time_in_force="0", display="Y",
                         order_reference_number=0x1122_3344_5566_7788, capacity="A",
                         intermarket_sweep="N", cross_type="N", order_state="L",
                         clordid="ORDER-0001")

REPLACED_BYTES = struct.pack(">cQIIcI8sQccQcccc14sH", b"U", TS, 42, 43, b"S", 200,
                             b"MSFT    ", 3_000_000, b"0", b"Y", 77, b"P", b"N", b"N", b"L",
                             b"REPL-0001     ", 0)
REPLACED = OrderReplaced(timestamp=TS, orig_user_ref_num=42, user_ref_num=43, side="S",
                         quantity=200, symbol="MSFT", price=3_000_000, time_in_force="0",
                         display="Y", order_reference_number=77, capacity="P",
                         intermarket_sweep="N", cross_type="N", order_state="L",
                         clordid="REPL-0001")

CANCELED_BYTES = struct.pack(">cQIIc", b"C", TS, 42, 100, b"U")
CANCELED = OrderCanceled(timestamp=TS, user_ref_num=42, quantity=100, reason="U")

# Executed with a Reference Price appendage element (tag 19, 8 bytes): len 9.
EXECUTED_BYTES = (struct.pack(">cQIIQcQH", b"E", TS, 42, 100, 1_500_000, b"A", 987_654_321,
                              10)
                  + b"\x09\x13" + (1_499_900).to_bytes(8, "big"))
EXECUTED = OrderExecuted(timestamp=TS, user_ref_num=42, quantity=100, price=1_500_000,
                         liquidity_flag="A", match_number=987_654_321,
                         appendage=(TagValue(19, (1_499_900).to_bytes(8, "big")),))

REJECTED_BYTES = struct.pack(">cQIH14s", b"J", TS, 42, 0x1D, b"ORDER-0001    ")
REJECTED = OrderRejected(timestamp=TS, user_ref_num=42, reason=0x1D, clordid="ORDER-0001")

BROKEN_BYTES = struct.pack(">cQIQc14s", b"B", TS, 42, 987_654_321, b"E", b"ORDER-0001    ")
BROKEN = ouch.BrokenTrade(timestamp=TS, user_ref_num=42, match_number=987_654_321, reason="E",
                          clordid="ORDER-0001")

CLIENT_GOLDEN = [
    (ENTER_BYTES, ENTER), (ENTER_APP_BYTES, ENTER_APP), (REPLACE_BYTES, REPLACE),
    (CANCEL_BYTES, CANCEL), (MODIFY_BYTES, MODIFY), (QUERY_BYTES, AccountQuery()),
]
SERVER_GOLDEN = [
    (EVENT_BYTES, EVENT), (ACCEPTED_BYTES, ACCEPTED), (REPLACED_BYTES, REPLACED),
    (CANCELED_BYTES, CANCELED), (EXECUTED_BYTES, EXECUTED), (REJECTED_BYTES, REJECTED),
    (BROKEN_BYTES, BROKEN),
]


def _id(case):
    return type(case[1]).__name__ if isinstance(case, tuple) else None


@pytest.mark.parametrize("case", CLIENT_GOLDEN, ids=_id)
def test_client_golden(case):
    wire, msg = case
    assert msg.encode() == wire
    assert decode_client(wire) == msg


@pytest.mark.parametrize("case", SERVER_GOLDEN, ids=_id)
def test_server_golden(case):
    wire, msg = case
    assert msg.encode() == wire
    assert decode_server(wire) == msg


def test_golden_lengths_match_spec():
    assert [len(w) for w, _ in CLIENT_GOLDEN] == [47, 59, 40, 9, 10, 1]
    assert [len(w) for w, _ in SERVER_GOLDEN] == [10, 64, 68, 18, 46, 29, 36]


def test_same_type_byte_decodes_by_direction():
    # U is Replace Order from the client and Order Replaced from the exchange.
    assert isinstance(decode_client(REPLACE_BYTES), ReplaceOrder)
    assert isinstance(decode_server(REPLACED_BYTES), OrderReplaced)


# --- layouts against PROTOCOLS.md (typed by hand from its tables) -------------------------

SPEC_OFFSETS = {
    ("client", b"O"): {"user_ref_num": (1, 4), "side": (5, 1), "quantity": (6, 4),
                       "symbol": (10, 8), "price": (18, 8), "time_in_force": (26, 1),
                       "display": (27, 1), "capacity": (28, 1), "intermarket_sweep": (29, 1),
                       "cross_type": (30, 1), "clordid": (31, 14),
                       "appendage_length": (45, 2)},
    ("client", b"U"): {"orig_user_ref_num": (1, 4), "user_ref_num": (5, 4),
                       "quantity": (9, 4), "price": (13, 8), "time_in_force": (21, 1),
                       "display": (22, 1), "intermarket_sweep": (23, 1), "clordid": (24, 14),
                       "appendage_length": (38, 2)},
    ("client", b"X"): {"user_ref_num": (1, 4), "quantity": (5, 4)},
    ("client", b"M"): {"user_ref_num": (1, 4), "side": (5, 1), "quantity": (6, 4)},
    ("client", b"Q"): {},
    ("server", b"S"): {"timestamp": (1, 8), "event_code": (9, 1)},
    ("server", b"A"): {"timestamp": (1, 8), "user_ref_num": (9, 4), "side": (13, 1),
                       "quantity": (14, 4), "symbol": (18, 8), "price": (26, 8),
                       "time_in_force": (34, 1), "display": (35, 1),
                       "order_reference_number": (36, 8), "capacity": (44, 1),
                       "intermarket_sweep": (45, 1), "cross_type": (46, 1),
                       "order_state": (47, 1), "clordid": (48, 14),
                       "appendage_length": (62, 2)},
    ("server", b"U"): {"timestamp": (1, 8), "orig_user_ref_num": (9, 4),
                       "user_ref_num": (13, 4), "side": (17, 1), "quantity": (18, 4),
                       "symbol": (22, 8), "price": (30, 8), "time_in_force": (38, 1),
                       "display": (39, 1), "order_reference_number": (40, 8),
                       "capacity": (48, 1), "intermarket_sweep": (49, 1),
                       "cross_type": (50, 1), "order_state": (51, 1), "clordid": (52, 14),
                       "appendage_length": (66, 2)},
    ("server", b"C"): {"timestamp": (1, 8), "user_ref_num": (9, 4), "quantity": (13, 4),
                       "reason": (17, 1)},
    ("server", b"E"): {"timestamp": (1, 8), "user_ref_num": (9, 4), "quantity": (13, 4),
                       "price": (17, 8), "liquidity_flag": (25, 1), "match_number": (26, 8),
                       "appendage_length": (34, 2)},
    ("server", b"J"): {"timestamp": (1, 8), "user_ref_num": (9, 4), "reason": (13, 2),
                       "clordid": (15, 14)},
}
SPEC_FIXED_LENGTH = {("client", b"O"): 47, ("client", b"U"): 40, ("client", b"X"): 9,
                     ("client", b"M"): 10, ("client", b"Q"): 1, ("server", b"S"): 10,
                     ("server", b"A"): 64, ("server", b"U"): 68, ("server", b"C"): 18,
                     ("server", b"E"): 36, ("server", b"J"): 29}


@pytest.mark.parametrize("key", sorted(SPEC_OFFSETS), ids=lambda k: f"{k[0]}-{k[1].decode()}")
def test_layout_offsets_match_protocols_md(key):
    direction, msg_type = key
    layout = (CLIENT_LAYOUTS if direction == "client" else SERVER_LAYOUTS)[msg_type]
    assert {f.name: (f.offset, f.size) for f in layout.fields} == SPEC_OFFSETS[key]
    assert layout.fixed_length == SPEC_FIXED_LENGTH[key]
    assert layout.verified


def test_every_message_type_present():
    assert set(CLIENT_LAYOUTS) == {bytes([c]) for c in b"OUXMQCDE"}
    assert set(SERVER_LAYOUTS) == {bytes([c]) for c in b"SAUCDEBFJPITMRQXGK"}
    unverified = {(k, v.type) for k, t in (("c", CLIENT_LAYOUTS), ("s", SERVER_LAYOUTS))
                  for v in t.values() if not v.verified}
    assert unverified == {("c", b"C"), ("c", b"D"), ("c", b"E"), ("s", b"D"), ("s", b"X"),
                          ("s", b"G"), ("s", b"K")}


def test_appendage_field_names():
    with_appendage = {t for t, v in CLIENT_LAYOUTS.items() if v.appendage_length_field}
    assert with_appendage == {b"O", b"U"}
    with_appendage = {t for t, v in SERVER_LAYOUTS.items() if v.appendage_length_field}
    assert with_appendage == {b"A", b"U", b"E", b"R"}


def test_layout_field_lookup():
    assert CLIENT_LAYOUTS[b"O"].field("price") == Field("price", 18, 8, "u")
    with pytest.raises(KeyError):
        CLIENT_LAYOUTS[b"O"].field("no_such_field")


@pytest.mark.parametrize("fields, fixed, message", [
    ((Field("a", 1, 4, "u"), Field("b", 6, 4, "u")), 10, "contiguous"),
    ((Field("a", 2, 4, "u"),), 6, "contiguous"),
    ((Field("a", 1, 4, "u"),), 6, "spec length"),
    ((Field("a", 1, 4, "u"), Field("a", 5, 4, "u")), 9, "duplicate"),
])
def test_bad_layout_rejected(fields, fixed, message):
    with pytest.raises(ValueError, match=message):
        MessageLayout(b"Z", "Bad", fixed, fields)


def test_bad_appendage_field_rejected():
    with pytest.raises(ValueError, match="last field"):
        MessageLayout(b"Z", "Bad", 8, (Field("appendage_length", 1, 2, "u"),
                                       Field("a", 3, 5, "a")), "appendage_length")
    with pytest.raises(ValueError, match="last field"):
        MessageLayout(b"Z", "Bad", 5, (Field("appendage_length", 1, 4, "u"),),
                      "appendage_length")


@pytest.mark.parametrize("args", [("x", 1, 3, "u"), ("x", 1, 2, "c"), ("x", 1, 2, "z"),
                                  ("x", 1, 0, "a")])
def test_bad_field_rejected(args):
    with pytest.raises(ValueError):
        Field(*args)


# --- hypothesis round trips for every message ---------------------------------------------

ASCII_CHAR = st.characters(max_codepoint=0x7F)
TAG_VALUES = st.lists(st.builds(TagValue, st.integers(0, 255), st.binary(max_size=24)),
                      max_size=5).map(tuple)


def _value(f):
    if f.kind == "u":
        return st.integers(0, (1 << (8 * f.size)) - 1)
    if f.kind == "c":
        return ASCII_CHAR
    # Trailing spaces are padding on the wire, so a value never ends in one.
    return st.text(ASCII_CHAR, max_size=f.size).map(lambda s: s.rstrip(" "))


def _message(cls, layout, data):
    kwargs = {f.name: data.draw(_value(f), label=f.name) for f in layout.fields
              if f.name != layout.appendage_length_field}
    if layout.appendage_length_field is not None:
        kwargs["appendage"] = data.draw(TAG_VALUES, label="appendage")
    return cls(**kwargs)


@pytest.mark.parametrize("layout", list(CLIENT_LAYOUTS.values()), ids=lambda v: v.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_client_round_trip(layout, data):
    msg = _message(CLIENT_CLASSES[layout.type], layout, data)
    wire = msg.encode()
    assert wire[:1] == layout.type
    assert len(wire) == layout.fixed_length + sum(2 + len(e.value)
                                                  for e in getattr(msg, "appendage", ()))
    assert decode_client(wire) == msg


@pytest.mark.parametrize("layout", list(SERVER_LAYOUTS.values()), ids=lambda v: v.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_server_round_trip(layout, data):
    msg = _message(SERVER_CLASSES[layout.type], layout, data)
    wire = msg.encode()
    assert wire[:1] == layout.type
    assert decode_server(wire) == msg


def _minimal(layout):
    """The all-zero / all-space message of a layout: a valid encoding with no appendage."""
    body = bytearray(layout.type + bytes(layout.fixed_length - 1))
    for f in layout.fields:
        if f.kind != "u":
            body[f.offset:f.end] = b" " * f.size
    return bytes(body)


@pytest.mark.parametrize("direction", ["client", "server"])
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_decode_is_all_or_nothing(direction, data):
    """Any bytes either raise ProtocolError or decode to a message that re-encodes to them."""
    layouts, decode = ((CLIENT_LAYOUTS, decode_client) if direction == "client"
                       else (SERVER_LAYOUTS, decode_server))
    layout = data.draw(st.sampled_from(list(layouts.values())))
    valid = bytearray(_minimal(layout))
    if layout.appendage_length_field is not None:
        app = encode_appendage(data.draw(TAG_VALUES))
        valid[-2:] = len(app).to_bytes(2, "big")
        valid += app
    # Mutate a valid message: overwrite a few bytes, then maybe cut or extend it.
    for _ in range(data.draw(st.integers(0, 3))):
        pos = data.draw(st.integers(0, len(valid) - 1))
        valid[pos] = data.draw(st.integers(0, 255))
    wire = bytes(valid[:data.draw(st.integers(0, len(valid)))]) + data.draw(
        st.binary(max_size=4))
    try:
        msg = decode(wire)
    except ProtocolError as exc:
        assert 0 <= exc.offset <= len(wire)
        assert str(exc.offset) in str(exc)
    else:
        assert msg.encode() == wire


# --- malformed input: each class, its offset ----------------------------------------------

def _raises(decode, wire, offset, words):
    with pytest.raises(ProtocolError) as info:
        decode(wire)
    assert info.value.offset == offset
    assert words in info.value.message
    return info.value


def test_empty():
    _raises(decode_client, b"", 0, "empty")
    _raises(decode_server, b"", 0, "empty")


def test_unknown_type():
    _raises(decode_client, b"Z" + ENTER_BYTES[1:], 0, "unknown client message type")
    _raises(decode_client, EVENT_BYTES, 0, "unknown")   # S is exchange-side only
    _raises(decode_server, ENTER_BYTES, 0, "unknown server message type")


@pytest.mark.parametrize("cut", [1, 5, 30, 44, 46])
def test_truncated_fixed_part(cut):
    _raises(decode_client, ENTER_BYTES[:cut], cut, "truncated Enter Order")


def test_truncated_server():
    _raises(decode_server, ACCEPTED_BYTES[:63], 63, "truncated Order Accepted")
    _raises(decode_server, REJECTED_BYTES[:20], 20, "truncated")


def test_too_long():
    _raises(decode_client, CANCEL_BYTES + b"\x00", 9, "too long")
    _raises(decode_client, QUERY_BYTES + b"Q", 1, "too long")
    _raises(decode_server, CANCELED_BYTES + b"  ", 18, "too long")


def test_appendage_length_says_more_than_present():
    _raises(decode_client, ENTER_APP_BYTES[:-2], 45, "appendage overrun")


def test_appendage_length_says_less_than_present():
    _raises(decode_client, ENTER_BYTES + b"\x01\x07", 45, "appendage overrun")
    _raises(decode_server, EXECUTED_BYTES + b"\x00", 34, "appendage overrun")


def test_appendage_element_runs_past_end():
    wire = ENTER_BYTES[:45] + b"\x00\x03" + b"\x05\x02W"
    _raises(decode_client, wire, 47, "appendage overrun")
    # Second element (starting at 47 + 6 = 53) claims 4 bytes after its len, 2 remain.
    wire = ENTER_BYTES[:45] + b"\x00\x09" + b"\x05\x02WGTE" + b"\x04\x03\x00"
    _raises(decode_client, wire, 53, "appendage overrun")


def test_appendage_element_zero_length():
    _raises(decode_client, ENTER_BYTES[:45] + b"\x00\x01\x00", 47, "length 0")


def test_non_ascii_alpha_and_char():
    wire = bytearray(ENTER_BYTES)
    wire[12] = 0xC3                        # inside Symbol (10..17)
    _raises(decode_client, bytes(wire), 12, "non-ASCII byte 0xc3 in symbol")
    wire = bytearray(ENTER_BYTES)
    wire[5] = 0x80                         # Side
    _raises(decode_client, bytes(wire), 5, "side")


def test_decode_accepts_bytearray_and_memoryview():
    assert decode_client(bytearray(CANCEL_BYTES)) == CANCEL
    assert decode_server(memoryview(CANCELED_BYTES)) == CANCELED


def test_alpha_decode_strips_trailing_spaces_only():
    wire = ENTER_BYTES[:10] + b" AB C   " + ENTER_BYTES[18:]
    assert decode_client(wire).symbol == " AB C"


# --- appendage helpers --------------------------------------------------------------------

def test_appendage_helpers():
    elements = (TagValue(2, b"WGTE"), TagValue(3, b"\x00\x00\x00\x64"))
    assert encode_appendage(elements) == APPENDAGE_BYTES
    assert decode_appendage(APPENDAGE_BYTES) == elements
    assert encode_appendage(()) == b""
    assert decode_appendage(b"") == ()
    assert decode_appendage(b"\x01\x07") == (TagValue(7, b""),)
    with pytest.raises(ProtocolError) as info:
        decode_appendage(APPENDAGE_BYTES + b"\x02\x04")
    assert info.value.offset == 12


def test_appendage_too_long_to_encode():
    elements = tuple(TagValue(9, bytes(254)) for _ in range(259))  # 259 * 256 > 65535
    with pytest.raises(ValueError, match="AppendageLength"):
        encode_appendage(elements)


@pytest.mark.parametrize("tag, value, error", [
    (256, b"", ValueError), (-1, b"", ValueError), (True, b"", ValueError),
    (1, bytes(255), ValueError), (1, "text", TypeError),
])
def test_bad_tag_value(tag, value, error):
    with pytest.raises(error):
        TagValue(tag, value)


def test_appendage_must_hold_tag_values():
    with pytest.raises(TypeError):
        EnterOrder(**{**ENTER.__dict__, "appendage": ((2, b"WGTE"),)}).encode()


# --- encode validation --------------------------------------------------------------------

@pytest.mark.parametrize("change, error", [
    ({"symbol": "TOOLONGSYM"}, ValueError),
    ({"symbol": "ÄPPL"}, ValueError),
    ({"clordid": "X" * 15}, ValueError),
    ({"side": "BS"}, ValueError),
    ({"side": ""}, ValueError),
    ({"side": "é"}, ValueError),
    ({"quantity": -1}, ValueError),
    ({"quantity": 1 << 32}, ValueError),
    ({"price": 1 << 64}, ValueError),
    ({"quantity": "300"}, TypeError),
    ({"quantity": True}, TypeError),
    ({"symbol": b"AAPL"}, TypeError),
])
def test_encode_rejects_bad_values(change, error):
    with pytest.raises(error):
        EnterOrder(**{**ENTER.__dict__, **change}).encode()


def test_encode_pads_alpha_with_spaces():
    wire = EnterOrder(**{**ENTER.__dict__, "symbol": "A", "clordid": ""}).encode()
    assert wire[10:18] == b"A       "
    assert wire[31:45] == b" " * 14


# --- prices -------------------------------------------------------------------------------

def test_price_valid():
    assert price_valid(OUCH_MAX_PRICE)
    assert OUCH_MAX_PRICE == 0x7735939C
    assert not price_valid(OUCH_MAX_PRICE + 1)
    assert price_valid(0)
    assert not price_valid(-1)


def test_price_above_max_is_not_a_decode_error():
    wire = ENTER_BYTES[:18] + (OUCH_MAX_PRICE + 1).to_bytes(8, "big") + ENTER_BYTES[26:]
    order = decode_client(wire)
    assert order.price == 1_999_999_901
    assert not price_valid(order.price)
    wire = ENTER_BYTES[:18] + b"\xff" * 8 + ENTER_BYTES[26:]
    assert decode_client(wire).price == (1 << 64) - 1
