"""scapy SoupBinTCP / OUCH 5.0 layers against the codec, struct vectors and whole frames.

The scapy layers were written from the spec tables, not from the codec's layout table, so
agreement here is two independent readings of the spec agreeing.
"""

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from wiregate.sw.proto import ouch, soupbin
from wiregate.sw.proto.frames import Peer, TcpFlow, build_frame, parse_frame
from wiregate.sw.proto.scapy_layers import (
    CLIENT_LAYERS,
    SERVER_LAYERS,
    OuchEnterOrder,
    OuchOrderExecuted,
    OuchOrderReplaced,
    OuchReplaceOrder,
    OuchTagValue,
    SoupBinSegment,
    SoupBinTCP,
    SoupDebug,
    SoupLoginAccepted,
    SoupLoginRejected,
    SoupLoginRequest,
    bind_ports,
    dissect_soupbin,
    unbind_ports,
)

CLIENT = Peer("02:00:00:00:00:01", "10.1.0.1", 40001)
EXCHANGE = Peer("02:00:00:00:00:02", "10.2.0.1", 15000)

_CLASSES = {**{(b"U", t): c for t, c in
               ((cls.TYPE, cls) for cls in ouch.ClientMessage.__args__)},
            **{(b"S", t): c for t, c in
               ((cls.TYPE, cls) for cls in ouch.ServerMessage.__args__)}}

ascii_char = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def _value(field: ouch.Field):
    if field.kind == "u":
        return st.integers(0, 2 ** (8 * field.size) - 1)
    if field.kind == "c":
        return ascii_char
    return st.text(ascii_char, max_size=field.size).map(lambda s: s.rstrip(" "))


tag_values = st.lists(st.builds(ouch.TagValue, tag=st.integers(0, 255),
                                value=st.binary(max_size=12)), max_size=4).map(tuple)


@st.composite
def messages(draw, direction: bytes, types):
    """A codec message of one of ``types``, with values drawn to fit each field's width."""
    msg_type = draw(st.sampled_from(sorted(types)))
    layouts = ouch.CLIENT_LAYOUTS if direction == b"U" else ouch.SERVER_LAYOUTS
    layout = layouts[msg_type]
    values = {f.name: draw(_value(f)) for f in layout.fields
              if f.name != layout.appendage_length_field}
    if layout.appendage_length_field is not None:
        values["appendage"] = draw(tag_values)
    return _CLASSES[direction, msg_type](**values)


def scapy_kwargs(message) -> dict:
    """The codec message's fields as scapy field values (text as bytes, TagValue as layers)."""
    kwargs = {}
    for field in dataclasses.fields(message):
        value = getattr(message, field.name)
        if isinstance(value, str):
            value = value.encode("ascii")
        elif field.name == "appendage":
            value = [OuchTagValue(tag=t.tag, value=t.value) for t in value]
        kwargs[field.name] = value
    return kwargs


def assert_fields(layer, message):
    for name, expected in scapy_kwargs(message).items():
        # getfieldval, since ``display`` is also the name of scapy's Packet.display() method.
        actual = layer.getfieldval(name)
        if name == "appendage":
            assert [(t.tag, t.value) for t in actual] == [(t.tag, t.value) for t in expected]
        else:
            assert actual == expected, name


def test_every_codec_message_has_a_layer():
    assert set(CLIENT_LAYERS) == set(ouch.CLIENT_LAYOUTS)
    assert set(SERVER_LAYERS) == set(ouch.SERVER_LAYOUTS)


def _check_against_codec(message, direction: bytes, layers, decode):
    layer_cls = layers[message.TYPE]
    built = layer_cls(**scapy_kwargs(message))
    assert bytes(built) == message.encode()
    # Inside SoupBin: scapy fills in length and type from the body layer.
    carrier = soupbin.UnsequencedData if direction == b"U" else soupbin.SequencedData
    wrapped = carrier(message.encode()).encode()
    assert bytes(SoupBinTCP() / built) == wrapped
    # scapy dissects the codec's bytes into the same fields, choosing the layer by type.
    dissected = SoupBinTCP(wrapped)
    assert dissected.type == direction
    assert dissected.length == len(wrapped) - 2
    assert type(dissected.payload) is layer_cls
    assert_fields(dissected.payload, message)
    # And the codec decodes scapy's bytes back to the message.
    assert decode(bytes(built)) == message


@settings(max_examples=200, deadline=None)
@given(message=messages(b"U", ouch.CLIENT_LAYOUTS))
def test_client_layers_match_codec(message):
    _check_against_codec(message, b"U", CLIENT_LAYERS, ouch.decode_client)


@settings(max_examples=300, deadline=None)
@given(message=messages(b"S", set(ouch.SERVER_LAYOUTS)))
def test_server_layers_match_codec(message):
    _check_against_codec(message, b"S", SERVER_LAYERS, ouch.decode_server)


def test_enter_order_against_struct_vector():
    # Offsets from PROTOCOLS.md, packed by hand.
    expected = (b"O" + struct.pack("!I", 7) + b"B" + struct.pack("!I", 300) + b"AAPL    "
                + struct.pack("!Q", 1_234_500) + b"0" + b"Y" + b"A" + b"N" + b"N"
                + b"ord-7         " + struct.pack("!H", 6) + b"\x05\x02FRMA")
    layer = OuchEnterOrder(user_ref_num=7, side=b"B", quantity=300, symbol=b"AAPL",
                           price=1_234_500, time_in_force=b"0", display=b"Y", capacity=b"A",
                           intermarket_sweep=b"N", cross_type=b"N", clordid=b"ord-7",
                           appendage=[OuchTagValue(tag=2, value=b"FRMA")])
    assert len(expected) == 47 + 6
    assert bytes(layer) == expected
    assert bytes(SoupBinTCP() / layer) == struct.pack("!H", 54) + b"U" + expected


def test_order_executed_against_struct_vector():
    expected = (b"E" + struct.pack("!QIIQ", 10**12, 7, 100, 1_500_000) + b"R"
                + struct.pack("!QH", 99, 0))
    layer = OuchOrderExecuted(timestamp=10**12, user_ref_num=7, quantity=100, price=1_500_000,
                              liquidity_flag=b"R", match_number=99)
    assert len(expected) == 36
    assert bytes(layer) == expected


# --- SoupBinTCP --------------------------------------------------------------------------

session_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=10)
alpha = st.text(ascii_char, max_size=6).map(lambda s: s.rstrip(" "))


@settings(max_examples=100, deadline=None)
@given(username=alpha, password=st.text(ascii_char, max_size=10).map(lambda s: s.rstrip(" ")),
       session=session_names, sequence=st.integers(0, 10**20 - 1))
def test_login_request_matches_codec(username, password, session, sequence):
    codec = soupbin.LoginRequest(username, password, session, sequence).encode()
    layer = SoupBinTCP() / SoupLoginRequest(username=username.encode(),
                                            password=password.encode(),
                                            session=session.encode(), sequence=sequence)
    assert bytes(layer) == codec
    dissected = SoupBinTCP(codec)
    assert dissected.type == b"L"
    body = dissected[SoupLoginRequest]
    assert (body.username, body.password, body.session, body.sequence) == (
        username.encode(), password.encode(), session.encode(), sequence)


def test_login_accepted_vector_and_codec():
    # Session right-justified (left padded with spaces), sequence ASCII right-justified.
    expected = b"\x00\x1fA" + b"   SESSION" + b" " * 19 + b"1"
    assert bytes(SoupBinTCP() / SoupLoginAccepted(session=b"SESSION", sequence=1)) == expected
    assert soupbin.LoginAccepted("SESSION", 1).encode() == expected
    body = SoupBinTCP(expected)[SoupLoginAccepted]
    assert (body.session, body.sequence) == (b"SESSION", 1)


@pytest.mark.parametrize(("codec", "layer"), [
    (soupbin.LoginRejected("S"), SoupBinTCP() / SoupLoginRejected(reason=b"S")),
    (soupbin.Debug(b"hello there"), SoupBinTCP() / SoupDebug(text=b"hello there")),
    (soupbin.ClientHeartbeat(), SoupBinTCP(type=b"R")),
    (soupbin.ServerHeartbeat(), SoupBinTCP(type=b"H")),
    (soupbin.LogoutRequest(), SoupBinTCP(type=b"O")),
    (soupbin.EndOfSession(), SoupBinTCP(type=b"Z")),
    (soupbin.UnsequencedData(b"Q"), SoupBinTCP(type=b"U") / Raw(b"Q")),
    (soupbin.SequencedData(b""), SoupBinTCP(type=b"S")),
])
def test_soupbin_packets_match_codec(codec, layer):
    assert bytes(layer) == codec.encode()
    assert SoupBinTCP(codec.encode()).type == codec.TYPE


def test_soupbin_type_picks_the_direction():
    # U is Replace Order from a client, Order Replaced from the exchange.
    assert type(SoupBinTCP(b"\x00\x29U" + b"U" + bytes(39)).payload) is OuchReplaceOrder
    assert type(SoupBinTCP(b"\x00\x45S" + b"U" + bytes(67)).payload) is OuchOrderReplaced


# --- whole frames ------------------------------------------------------------------------

ENTER = ouch.EnterOrder(user_ref_num=1, side="B", quantity=100, symbol="MSFT",
                        price=4_200_000, time_in_force="0", display="Y", capacity="A",
                        intermarket_sweep="N", cross_type="N", clordid="c1",
                        appendage=(ouch.TagValue(3, struct.pack("!I", 100)),))
CANCEL = ouch.CancelOrder(user_ref_num=1, quantity=0)
ACCEPTED = ouch.OrderAccepted(timestamp=5, user_ref_num=1, side="B", quantity=100,
                              symbol="MSFT", price=4_200_000, time_in_force="0", display="Y",
                              order_reference_number=77, capacity="A", intermarket_sweep="N",
                              cross_type="N", order_state="L", clordid="c1")


@pytest.fixture
def soupbin_port():
    port = 15123
    bind_ports(port)
    yield port
    unbind_ports(port)


def test_frame_with_several_soupbin_packets_dissects(soupbin_port):
    stream = b"".join((soupbin.LoginRequest("user", "pw", "", 1).encode(),
                       soupbin.UnsequencedData(ENTER.encode()).encode(),
                       soupbin.ClientHeartbeat().encode(),
                       soupbin.UnsequencedData(CANCEL.encode()).encode()))
    frame = build_frame(stream, src_mac=CLIENT.mac, dst_mac=EXCHANGE.mac, src_ip=CLIENT.ip,
                        dst_ip=EXCHANGE.ip, src_port=CLIENT.port, dst_port=soupbin_port,
                        seq=1)
    packet = Ether(frame)
    segment = packet[TCP].payload
    assert isinstance(segment, SoupBinSegment)
    assert [p.type for p in segment.packets] == [b"L", b"U", b"R", b"U"]
    assert packet[SoupLoginRequest].username == b"user"
    assert_fields(packet[OuchEnterOrder], ENTER)
    assert packet.getlayer(SoupBinTCP, 4)[CLIENT_LAYERS[b"X"]].quantity == 0
    assert parse_frame(frame).payload == bytes(segment)


def test_exchange_frame_dissects_server_messages(soupbin_port):
    flow = TcpFlow(CLIENT, Peer(EXCHANGE.mac, EXCHANGE.ip, soupbin_port))
    stream = (soupbin.LoginAccepted("S1", 1).encode()
              + soupbin.SequencedData(ACCEPTED.encode()).encode())
    (frame,) = flow.exchange.send(stream)
    packet = Ether(frame)
    assert packet[SoupLoginAccepted].session == b"S1"
    assert_fields(packet[SERVER_LAYERS[b"A"]], ACCEPTED)


def test_packet_split_across_segments(soupbin_port):
    flow = TcpFlow(Peer(CLIENT.mac, CLIENT.ip, soupbin_port), EXCHANGE)
    stream = (soupbin.UnsequencedData(ENTER.encode()).encode()
              + soupbin.UnsequencedData(CANCEL.encode()).encode())
    first, second = flow.client.send(stream, cuts=[20])
    head = Ether(first)[SoupBinSegment].packets
    assert len(head) == 1 and head[0].length == 1 + len(ENTER.encode())
    assert not head[0].haslayer(OuchEnterOrder)  # only 17 of its bytes are here
    joined = dissect_soupbin(parse_frame(first).payload + parse_frame(second).payload)
    assert [type(p.payload) for p in joined] == [OuchEnterOrder, CLIENT_LAYERS[b"X"]]


def test_unbound_port_stays_raw():
    frame = build_frame(soupbin.ClientHeartbeat().encode(), src_mac=CLIENT.mac,
                        dst_mac=EXCHANGE.mac, src_ip=CLIENT.ip, dst_ip=EXCHANGE.ip,
                        src_port=40999, dst_port=15999, seq=1)
    bind_ports(15999)
    assert Ether(frame).haslayer(SoupBinTCP)
    unbind_ports(15999)
    assert not Ether(frame).haslayer(SoupBinTCP)
    assert Ether(frame)[Raw].load == b"\x00\x01R"
