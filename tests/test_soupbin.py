"""SoupBinTCP 3.00 codec and stream reassembly.

Golden packets are hand-written bytes. The stream tests cut a run of packets at every byte
boundary (and at random) and check the reassembled packets and the bytes held in between.
"""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.soupbin import (
    DEFAULT_MAX_LENGTH,
    ClientHeartbeat,
    Debug,
    EndOfSession,
    LoginAccepted,
    LoginRejected,
    LoginRequest,
    LogoutRequest,
    PacketStream,
    SequencedData,
    ServerHeartbeat,
    StreamError,
    UnsequencedData,
    decode_packet,
)

# An OUCH Cancel Order (X, UserRefNum 42, Quantity 0), as carried in a U packet.
CANCEL = b"X\x00\x00\x00\x2a\x00\x00\x00\x00"

GOLDEN = [
    # length 47 = type + username(6) + password(10) + session(10) + sequence(20)
    (b"\x00\x2fL" + b"ALICE " + b"SECRET    " + b"    SESS01" + b" " * 19 + b"1",
     LoginRequest(username="ALICE", password="SECRET", session="SESS01", sequence=1)),
    # blank session = the current one; sequence 0 = most recent message
    (b"\x00\x2fL" + b"BOB   " + b"PW        " + b" " * 10 + b" " * 19 + b"0",
     LoginRequest(username="BOB", password="PW", session="", sequence=0)),
    (b"\x00\x1fA" + b"    SESS01" + b" " * 16 + b"1234",
     LoginAccepted(session="SESS01", sequence=1234)),
    (b"\x00\x02JA", LoginRejected(reason="A")),
    (b"\x00\x02JS", LoginRejected(reason="S")),
    (b"\x00\x04Sxyz", SequencedData(payload=b"xyz")),
    (b"\x00\x0aU" + CANCEL, UnsequencedData(payload=CANCEL)),
    (b"\x00\x01U", UnsequencedData(payload=b"")),
    (b"\x00\x06+hello", Debug(text=b"hello")),
    (b"\x00\x01R", ClientHeartbeat()),
    (b"\x00\x01H", ServerHeartbeat()),
    (b"\x00\x01O", LogoutRequest()),
    (b"\x00\x01Z", EndOfSession()),
]


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: type(c[1]).__name__)
def test_golden(case):
    wire, packet = case
    assert packet.encode() == wire
    assert decode_packet(wire) == (packet, len(wire))
    assert wire[2:3] == type(packet).TYPE


def test_decode_at_offset():
    run = GOLDEN[3][0] + GOLDEN[5][0] + GOLDEN[9][0]
    assert decode_packet(run, 0) == (LoginRejected("A"), 4)
    assert decode_packet(run, 4) == (SequencedData(b"xyz"), 6)
    assert decode_packet(run, 10) == (ClientHeartbeat(), 3)


def test_login_fields_justified():
    wire = LoginRequest("U", "P", "S1", 987).encode()
    assert wire[3:9] == b"U     "              # username left-justified
    assert wire[9:19] == b"P         "         # password left-justified
    assert wire[19:29] == b"        S1"        # session right-justified
    assert wire[29:49] == b" " * 17 + b"987"   # sequence right-justified
    assert LoginAccepted("S1", 10 ** 20 - 1).encode()[13:] == b"9" * 20


def test_left_justified_session_decodes():
    wire = b"\x00\x1fA" + b"SESS01    " + b"1".rjust(20)
    assert decode_packet(wire)[0] == LoginAccepted("SESS01", 1)


def test_sequence_with_leading_zeros():
    wire = b"\x00\x1fA" + b" " * 10 + b"00000000000000000042"
    assert decode_packet(wire)[0] == LoginAccepted("", 42)


@pytest.mark.parametrize("packet, error", [
    (LoginRequest("TOOLONG", "P", "", 1), ValueError),
    (LoginRequest("USER", "PASSWORD123", "", 1), ValueError),
    (LoginRequest("USER", "P", "SESSION0001", 1), ValueError),
    (LoginRequest("ÜSER", "P", "", 1), ValueError),
    (LoginRequest("USER", "P", "", -1), ValueError),
    (LoginRequest("USER", "P", "", 10 ** 20), ValueError),
    (LoginRequest("USER", "P", "", "1"), TypeError),
    (LoginAccepted("S", True), TypeError),
    (LoginRejected("AS"), ValueError),
    (LoginRejected(""), ValueError),
    (SequencedData(b"x" * 65535), ValueError),
    (Debug("text"), TypeError),
])
def test_encode_rejects(packet, error):
    with pytest.raises(error):
        packet.encode()


def test_largest_packet_encodes():
    wire = UnsequencedData(b"x" * 65534).encode()
    assert wire[:3] == b"\xff\xffU"
    assert decode_packet(wire, max_length=65535)[0] == UnsequencedData(b"x" * 65534)


# Every packet type, with field values drawn to fill their widths. Alpha fields never end in
# a space (that is padding on the wire); the session is stripped on both sides (it is
# right-justified, and a left-justified one must decode too), so it has no outer spaces.
_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_GRAPHIC = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
_SEQUENCE = st.integers(0, 10**20 - 1)


def _alpha(size):
    return st.text(_PRINTABLE, max_size=size).map(lambda s: s.rstrip(" "))


def _session():
    return st.text(_PRINTABLE, max_size=10).map(lambda s: s.strip(" "))


ANY_PACKET = st.one_of(
    st.builds(LoginRequest, _alpha(6), _alpha(10), _session(), _SEQUENCE),
    st.builds(LoginAccepted, _session(), _SEQUENCE),
    st.builds(LoginRejected, _GRAPHIC),
    st.builds(SequencedData, st.binary(max_size=300)),
    st.builds(UnsequencedData, st.binary(max_size=300)),
    st.builds(Debug, st.binary(max_size=300)),
    st.just(ClientHeartbeat()), st.just(ServerHeartbeat()), st.just(LogoutRequest()),
    st.just(EndOfSession()),
)


@settings(max_examples=300, deadline=None)
@given(packet=ANY_PACKET)
def test_every_packet_round_trips(packet):
    wire = packet.encode()
    assert int.from_bytes(wire[:2], "big") == len(wire) - 2
    assert wire[2:3] == type(packet).TYPE
    assert decode_packet(wire) == (packet, len(wire))


@settings(max_examples=100, deadline=None)
@given(packets=st.lists(ANY_PACKET, max_size=12), data=st.data())
def test_stream_reassembles_any_packets_cut_anywhere(packets, data):
    run = b"".join(p.encode() for p in packets)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(run)), max_size=10))))
    stream = PacketStream()
    out = []
    for start, end in itertools.pairwise([0, *cuts, len(run)]):
        out += stream.feed(run[start:end])
    assert out == packets and stream.pending == 0


# --- malformed input ----------------------------------------------------------------------

def _raises(wire, at, words, **kwargs):
    with pytest.raises(ProtocolError) as info:
        decode_packet(wire, **kwargs)
    assert info.value.offset == at
    assert words in info.value.message
    assert f"offset {at}" in str(info.value)


def test_zero_length():
    _raises(b"\x00\x00", 0, "zero packet length")
    _raises(b"\x00\x01H" + b"\x00\x00S", 3, "zero packet length", offset=3)


def test_length_beyond_maximum():
    _raises(b"\x10\x01S" + bytes(0x1000), 0, "exceeds the maximum 4096")
    _raises(b"\x00\x65S" + bytes(0x64), 0, "exceeds the maximum 100", max_length=100)
    assert DEFAULT_MAX_LENGTH == 4096


def test_unknown_type():
    _raises(b"\x00\x01Q", 2, "unknown packet type b'Q'")
    _raises(b"\x00\x01x", 2, "unknown packet type")


def test_truncated():
    _raises(b"", 0, "truncated packet header")
    _raises(b"\x00", 1, "truncated packet header")
    _raises(b"\x00\x05", 2, "truncated packet header")
    _raises(b"\x00\x05Sab", 5, "truncated packet: length 5")
    _raises(GOLDEN[0][0][:40], 40, "truncated packet")


def test_fixed_size_packet_of_wrong_length():
    _raises(b"\x00\x02H!", 0, "ServerHeartbeat packet length must be 1")
    _raises(b"\x00\x03JAS", 0, "LoginRejected packet length must be 2")
    _raises(b"\x00\x01J", 0, "LoginRejected")
    _raises(GOLDEN[0][0][:2] + b"A" + GOLDEN[0][0][3:], 0, "LoginAccepted packet length")


def test_bad_sequence_number():
    wire = b"\x00\x2fL" + b"ALICE " + b"SECRET    " + b"    SESS01" + b" " * 18 + b"1a"
    _raises(wire, 29, "requested sequence number")
    wire = b"\x00\x2fL" + b"ALICE " + b"SECRET    " + b"    SESS01" + b" " * 20
    _raises(wire, 29, "not a space-padded decimal number")
    wire = b"\x00\x1fA" + b"    SESS01" + b" " * 15 + b"1 234"
    _raises(wire, 13, "sequence number")


def test_non_ascii_login_field():
    wire = bytearray(GOLDEN[0][0])
    wire[11] = 0xE9                               # third byte of the password (9..18)
    _raises(bytes(wire), 11, "non-ASCII byte 0xe9 in password")
    _raises(b"\x00\x02J\xff", 3, "reject reason")


def test_offset_outside_buffer():
    with pytest.raises(ValueError):
        decode_packet(b"\x00\x01H", 4)


# --- stream reassembly --------------------------------------------------------------------

RUN = b"".join(wire for wire, _ in GOLDEN)
EXPECTED = [packet for _, packet in GOLDEN]
ENDS = list(itertools.accumulate(len(wire) for wire, _ in GOLDEN))  # packet boundaries


def _held_after(prefix_length):
    """Bytes a stream must hold after seeing RUN[:prefix_length]: the incomplete tail."""
    complete = max([0] + [end for end in ENDS if end <= prefix_length])
    return prefix_length - complete


def test_stream_whole_run():
    stream = PacketStream()
    assert stream.feed(RUN) == EXPECTED
    assert stream.pending == 0
    assert stream.feed(b"") == []


def test_stream_split_at_every_byte():
    for cut in range(len(RUN) + 1):
        stream = PacketStream()
        first = stream.feed(RUN[:cut])
        assert first == EXPECTED[:len(first)]
        assert stream.pending == _held_after(cut), cut
        assert first + stream.feed(RUN[cut:]) == EXPECTED, cut
        assert stream.pending == 0


def test_stream_split_at_every_pair_of_bytes():
    for i in range(len(RUN) + 1):
        for j in range(i, len(RUN) + 1):
            stream = PacketStream()
            out = stream.feed(RUN[:i]) + stream.feed(RUN[i:j])
            assert stream.pending == _held_after(j)
            assert out + stream.feed(RUN[j:]) == EXPECTED, (i, j)


def test_stream_one_byte_at_a_time():
    stream = PacketStream()
    out = []
    for n in range(len(RUN)):
        out += stream.feed(RUN[n:n + 1])
        assert stream.pending == _held_after(n + 1)
    assert out == EXPECTED


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, len(RUN) * 3), max_size=40), repeat=st.integers(1, 3))
def test_stream_random_chunks(cuts, repeat):
    data = RUN * repeat
    points = sorted({c for c in cuts if c <= len(data)} | {0, len(data)})
    stream = PacketStream()
    out = []
    for start, end in itertools.pairwise(points):
        out += stream.feed(data[start:end])
    assert out == EXPECTED * repeat
    assert stream.pending == 0


def test_stream_accepts_bytearray_and_memoryview():
    stream = PacketStream()
    assert stream.feed(bytearray(RUN[:10])) + stream.feed(memoryview(RUN[10:])) == EXPECTED


def _stream_raises(stream, chunk, offset, words):
    with pytest.raises(StreamError) as info:
        stream.feed(chunk)
    assert isinstance(info.value, ProtocolError)
    assert info.value.offset == offset
    assert words in info.value.message
    return info.value


def test_stream_error_offset_counts_from_stream_start():
    stream = PacketStream()
    assert stream.feed(RUN) == EXPECTED
    error = _stream_raises(stream, b"\x00\x01H\x00\x00", len(RUN) + 3, "zero packet length")
    assert error.packets == [ServerHeartbeat()]


def test_stream_error_keeps_packets_before_it():
    stream = PacketStream()
    error = _stream_raises(stream, RUN + b"\x00\x01Q", len(RUN) + 2, "unknown packet type")
    assert error.packets == EXPECTED


def test_stream_fails_closed():
    stream = PacketStream()
    first = _stream_raises(stream, b"\x00\x00", 0, "zero")
    with pytest.raises(StreamError) as again:
        stream.feed(b"\x00\x01H")
    assert again.value is first
    with pytest.raises(StreamError):
        stream.feed(b"")


def test_stream_checks_header_before_payload_arrives():
    stream = PacketStream()
    assert stream.feed(RUN[:ENDS[2]]) == EXPECTED[:3]
    # Unknown type: raised on the type byte, though 4 payload bytes are still owed.
    _stream_raises(stream, b"\x00\x05Q", ENDS[2] + 2, "unknown packet type")
    # Length beyond the maximum: raised as soon as the two length bytes are in.
    stream = PacketStream(max_length=64)
    _stream_raises(stream, b"\x00\x41", 0, "exceeds the maximum 64")
    # A heartbeat must have length 1: raised at the header, payload never awaited.
    stream = PacketStream()
    stream.feed(b"\x00")
    _stream_raises(stream, b"\x02H", 0, "ServerHeartbeat packet length must be 1")


def test_stream_bad_login_field_offset():
    bad = b"\x00\x1fA" + b"    SESS01" + b" " * 19 + b"x"
    stream = PacketStream()
    stream.feed(RUN)
    _stream_raises(stream, bad, len(RUN) + 13, "sequence number")


def test_stream_max_length_parameter():
    with pytest.raises(ValueError):
        PacketStream(max_length=0)
    with pytest.raises(ValueError):
        PacketStream(max_length=65536)
    stream = PacketStream(max_length=65535)
    wire = Debug(b"d" * 5000).encode()
    assert stream.feed(wire) == [Debug(b"d" * 5000)]
