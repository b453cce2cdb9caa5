"""Frames, checksums, FCS, TcpFlow and pcap helpers, checked against scapy, zlib and
hand-written vectors."""

import random
import struct
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, IPOption
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Padding, Raw
from scapy.utils import rdpcap as scapy_rdpcap
from scapy.utils import wrpcap, wrpcapng

from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.frames import (
    Peer,
    TcpFlow,
    build_frame,
    fcs,
    fcs_ok,
    ip_checksum,
    ip_to_int,
    mac_to_int,
    ones_complement_sum,
    parse_frame,
    tcp_checksum,
    tcp_flags,
    tcp_timestamp_option,
    with_fcs,
)
from wiregate.sw.proto.pcap import PcapRecord, iter_pcap, read_pcap, write_pcap

CLIENT = Peer("02:00:00:00:00:01", "10.1.0.1", 40001)
EXCHANGE = Peer("02:00:00:00:00:02", "10.2.0.1", 15000)
ADDR = {"src_mac": CLIENT.mac, "dst_mac": EXCHANGE.mac, "src_ip": CLIENT.ip,
        "dst_ip": EXCHANGE.ip, "src_port": CLIENT.port, "dst_port": EXCHANGE.port}


def reference_sum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 one's-complement sum, one word at a time with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = initial
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


# --- ones_complement_sum and checksums ---------------------------------------------------

def test_ones_complement_sum_rfc1071_example():
    # RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
    assert ones_complement_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2


@pytest.mark.parametrize(("data", "expected"), [
    (b"", 0),
    (b"\x00\x00\x00", 0),
    (b"\x01", 0x0100),                    # an odd byte is the high byte of a padded word
    (b"\x12\x34\x56", 0x1234 + 0x5600),
    (b"\xff\xff", 0xFFFF),
    (b"\xff\xff" * 7, 0xFFFF),            # carries wrap around, never to 0
    (b"\xff\xff\x00\x01", 0x0001),        # 0xFFFF + 1 = 0x10000 -> end-around carry -> 1
    (b"\x80\x00\x80\x00", 0x0001),        # 0x8000 + 0x8000 carries out once
    (b"\xff\xfe\x00\x01", 0xFFFF),        # a multiple of 0xFFFF reads 0xFFFF, not 0
    (b"\xff", 0xFF00),
])
def test_ones_complement_sum_vectors(data, expected):
    assert ones_complement_sum(data) == expected


@settings(max_examples=300)
@given(data=st.binary(max_size=300), initial=st.integers(0, 0xFFFF))
def test_ones_complement_sum_matches_word_loop(data, initial):
    assert ones_complement_sum(data, initial) == reference_sum(data, initial)


@given(a=st.binary(max_size=64).filter(lambda b: len(b) % 2 == 0), b=st.binary(max_size=64))
def test_ones_complement_sum_chains(a, b):
    assert ones_complement_sum(b, ones_complement_sum(a)) == ones_complement_sum(a + b)


def test_ones_complement_sum_rejects_wide_initial():
    with pytest.raises(ValueError, match="16-bit"):
        ones_complement_sum(b"\x00\x01", 0x10000)


def test_ip_checksum_known_header():
    # The classic worked example: 4500 0073 0000 4000 4011 [0000] c0a8 0001 c0a8 00c7 -> b861
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert ip_checksum(header) == 0xB861
    filled = header[:10] + b"\xb8\x61" + header[12:]
    assert ip_checksum(filled) == 0


@given(payload=st.binary(max_size=100), seq=st.integers(0, 2**32 - 1))
def test_tcp_checksum_matches_scapy(payload, seq):
    pkt = IP(src="10.1.0.1", dst="10.2.0.1") / TCP(sport=1, dport=2, seq=seq) / Raw(payload)
    segment = bytes(pkt)[20:]
    zeroed = segment[:16] + b"\x00\x00" + segment[18:]
    assert tcp_checksum("10.1.0.1", "10.2.0.1", zeroed) == struct.unpack("!H", segment[16:18])[0]
    # In place, a valid checksum makes the whole segment check to 0.
    assert tcp_checksum(ip_to_int("10.1.0.1"), "10.2.0.1", segment) == 0


def test_tcp_flags_letters():
    assert tcp_flags("PA") == 0x18
    assert tcp_flags("S") == 0x02
    assert tcp_flags("FA") == 0x11
    assert tcp_flags(0x12) == 0x12
    with pytest.raises(ValueError, match="unknown TCP flag"):
        tcp_flags("PX")


# --- FCS ---------------------------------------------------------------------------------

def test_fcs_known_vector():
    # CRC-32 check value of "123456789" is 0xCBF43926, sent least significant byte first.
    assert fcs(b"123456789") == bytes.fromhex("2639f4cb")


@given(frame=st.binary(min_size=1, max_size=200))
def test_fcs_matches_zlib_and_leaves_the_crc_residue(frame):
    assert fcs(frame) == struct.pack("<I", zlib.crc32(frame))
    wire = with_fcs(frame)
    assert wire[:-4] == frame
    # A frame followed by its FCS has the fixed CRC-32 residue (IEEE 802.3 receiver check).
    assert zlib.crc32(wire) == 0x2144DF1C
    assert fcs_ok(wire)
    corrupted = bytearray(wire)
    corrupted[len(frame) // 2] ^= 0x01
    assert not fcs_ok(bytes(corrupted))


def test_fcs_ok_short_input():
    assert not fcs_ok(b"\x00\x01")


# --- build_frame against scapy -----------------------------------------------------------

macs = st.integers(0, 2**48 - 1).map(lambda m: m & ~(1 << 40))  # unicast, scapy-agnostic
ips = st.integers(0, 2**32 - 1)
ports = st.integers(0, 65535)
u32 = st.integers(0, 2**32 - 1)


def _mac_str(value: int) -> str:
    return value.to_bytes(6, "big").hex(":")


def _ip_str(value: int) -> str:
    return ".".join(str(b) for b in value.to_bytes(4, "big"))


@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=200), src_mac=macs, dst_mac=macs, src_ip=ips, dst_ip=ips,
       sport=ports, dport=ports, seq=u32, ack=u32, flags=st.sampled_from(["PA", "A", "S", "FA",
                                                                          "SA", "R", "PAU"]),
       window=ports, ip_id=ports, ttl=st.integers(1, 255), vlan=st.none() | st.integers(0, 4095),
       timestamps=st.none() | st.tuples(u32, u32),
       ip_options=st.sampled_from([b"", b"\x94\x04\x00\x00", b"\x01\x01\x01\x01" * 2]))
def test_build_frame_matches_scapy(payload, src_mac, dst_mac, src_ip, dst_ip, sport, dport,
                                   seq, ack, flags, window, ip_id, ttl, vlan, timestamps,
                                   ip_options):
    tcp_options = tcp_timestamp_option(*timestamps) if timestamps else b""
    frame = build_frame(payload, src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip,
                        dst_ip=dst_ip, src_port=sport, dst_port=dport, seq=seq, ack=ack,
                        flags=flags, window=window, ip_id=ip_id, ttl=ttl, vlan=vlan,
                        tcp_options=tcp_options, ip_options=ip_options, pad=False)
    eth = Ether(src=_mac_str(src_mac), dst=_mac_str(dst_mac))
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    ip = IP(src=_ip_str(src_ip), dst=_ip_str(dst_ip), id=ip_id, ttl=ttl, flags="DF")
    if ip_options:
        ip.options = [IPOption(ip_options)]
    tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=window)
    if timestamps:
        tcp.options = [("NOP", None), ("NOP", None), ("Timestamp", timestamps)]
    reference = bytes(eth / ip / tcp / Raw(payload))
    assert frame == reference

    # String and integer addresses give the same frame.
    assert frame == build_frame(payload, src_mac=_mac_str(src_mac), dst_mac=_mac_str(dst_mac),
                                src_ip=_ip_str(src_ip), dst_ip=_ip_str(dst_ip),
                                src_port=sport, dst_port=dport, seq=seq, ack=ack,
                                flags=tcp_flags(flags), window=window, ip_id=ip_id, ttl=ttl,
                                vlan=vlan, tcp_options=tcp_options, ip_options=ip_options,
                                pad=False)

    # scapy recomputes both checksums from scratch and gets the same bytes.
    rebuilt = Ether(frame)
    del rebuilt[IP].chksum
    del rebuilt[TCP].chksum
    assert bytes(rebuilt) == frame

    parsed = parse_frame(frame)
    assert parsed.ip.checksum_ok and parsed.tcp.checksum_ok
    assert parsed.payload == payload
    assert (parsed.tcp.seq, parsed.tcp.ack, parsed.tcp.window) == (seq, ack, window)
    assert (parsed.tcp.src_port, parsed.tcp.dst_port) == (sport, dport)
    assert parsed.tcp.flags == tcp_flags(flags)
    assert parsed.tcp.options == tcp_options
    assert parsed.ip.options == ip_options
    assert (parsed.ip.src, parsed.ip.dst) == (_ip_str(src_ip), _ip_str(dst_ip))
    assert (mac_to_int(parsed.eth.src), mac_to_int(parsed.eth.dst)) == (src_mac, dst_mac)
    assert parsed.eth.vlan == vlan
    assert (parsed.ip.id, parsed.ip.ttl, parsed.ip.flags) == (ip_id, ttl, 0b010)
    assert parsed.payload_offset == (14 + (4 if vlan is not None else 0) + 20
                                     + len(ip_options) + 20 + len(tcp_options))


def test_build_frame_pads_short_frames_like_a_mac():
    frame = build_frame(b"", flags="A", seq=1, **ADDR)
    assert len(frame) == 60
    assert frame[54:] == b"\x00" * 6
    reference = (Ether(src=CLIENT.mac, dst=EXCHANGE.mac)
                 / IP(src=CLIENT.ip, dst=EXCHANGE.ip, id=0, flags="DF")
                 / TCP(sport=CLIENT.port, dport=EXCHANGE.port, seq=1, flags="A", window=65535)
                 / Padding(b"\x00" * 6))
    assert frame == bytes(reference)
    parsed = parse_frame(frame)
    assert parsed.payload == b""
    assert parsed.ip.total_length == 40
    assert parsed.tcp.checksum_ok


def test_build_frame_vlan_priority_and_pcp():
    frame = build_frame(b"x" * 10, seq=0, vlan=100, vlan_pcp=5, **ADDR)
    assert frame[12:16] == bytes.fromhex("8100") + struct.pack("!H", (5 << 13) | 100)
    parsed = parse_frame(frame)
    assert (parsed.eth.vlan, parsed.eth.pcp, parsed.eth.length) == (100, 5, 18)


def test_build_frame_pads_options_to_words():
    frame = build_frame(b"abc", seq=0, tcp_options=b"\x02\x04\x05\xb4\x01", **ADDR)
    parsed = parse_frame(frame)
    assert parsed.tcp.data_offset == 7
    assert parsed.tcp.options == b"\x02\x04\x05\xb4\x01\x00\x00\x00"
    assert parsed.tcp.checksum_ok


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"src_port": 70000}, "src_port"),
    ({"ttl": 256}, "ttl"),
    ({"vlan": 4096}, "vlan"),
    ({"tcp_options": b"\x01" * 41}, "at most 40"),
    ({"ip_options": b"\x01" * 44}, "at most 40"),
    ({"src_mac": "02:00:00:00:01"}, "six"),
    ({"src_ip": "10.1.0"}, "4 octets"),
])
def test_build_frame_rejects_bad_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_frame(b"", seq=0, **{**ADDR, **kwargs})


def test_tcp_timestamp_option_matches_scapy():
    option = tcp_timestamp_option(0x01020304, 0xA0B0C0D0)
    reference = bytes(TCP(options=[("NOP", None), ("NOP", None),
                                   ("Timestamp", (0x01020304, 0xA0B0C0D0))]))[20:]
    assert option == reference
    assert len(option) == 12


# --- parse_frame -------------------------------------------------------------------------

def test_parse_frame_payload_offset_matches_protocols_md():
    # PROTOCOLS.md: with a 20-byte TCP header, OUCH byte 0 (after the 3-byte SoupBin header)
    # sits at frame offset 57; with Linux timestamps 12 bytes later.
    soupbin = b"\x00\x30U" + b"O" + b"\x00" * 46
    plain = parse_frame(build_frame(soupbin, seq=0, **ADDR))
    assert plain.payload_offset + 3 == 57
    assert (plain.ip_offset, plain.tcp_offset) == (14, 34)
    stamped = parse_frame(build_frame(soupbin, seq=0, tcp_options=tcp_timestamp_option(1),
                                      **ADDR))
    assert stamped.payload_offset + 3 == 69
    assert stamped.tcp.data_offset == 8


def test_parse_frame_bounds_payload_by_ip_total_length():
    frame = build_frame(b"hello", seq=7, **ADDR)
    parsed = parse_frame(frame + b"\xee" * 30)  # trailing bytes beyond the IPv4 datagram
    assert parsed.payload == b"hello"
    assert parsed.tcp.checksum_ok


@settings(max_examples=100)
@given(payload=st.binary(min_size=1, max_size=60), data=st.data())
def test_corrupted_byte_fails_the_right_checksum(payload, data):
    frame = build_frame(payload, seq=99, ack=5, ip_options=b"\x01\x01\x01\x01", **ADDR)
    parsed = parse_frame(frame)
    mask = data.draw(st.integers(1, 255))
    # Any byte of the TCP segment, header or payload.
    # (The data offset byte is left alone: changing it makes the frame unparseable instead.)
    at = data.draw(st.integers(parsed.tcp_offset, parsed.payload_offset + len(payload) - 1)
                   .filter(lambda i: i != parsed.tcp_offset + 12))
    broken = bytearray(frame)
    broken[at] ^= mask
    result = parse_frame(bytes(broken))
    assert result.ip.checksum_ok
    assert not result.tcp.checksum_ok
    # TTL and IP option bytes belong to the IPv4 header only.
    at = data.draw(st.sampled_from([22, 34, 35, 36]))
    broken = bytearray(frame)
    broken[at] ^= mask
    result = parse_frame(bytes(broken))
    assert not result.ip.checksum_ok
    assert result.tcp.checksum_ok


def test_flag_str():
    parsed = parse_frame(build_frame(b"", seq=0, flags="FA", **ADDR))
    assert parsed.tcp.flag_str == "FA"


def test_parse_frame_truncated_everywhere():
    frame = build_frame(b"payload!", seq=0, vlan=7, tcp_options=tcp_timestamp_option(1),
                        pad=False, **ADDR)
    header_end = parse_frame(frame).payload_offset
    for cut in range(header_end):
        with pytest.raises(ProtocolError) as info:
            parse_frame(frame[:cut])
        assert 0 <= info.value.offset <= cut


def _patched(frame: bytes, offset: int, raw: bytes) -> bytes:
    return frame[:offset] + raw + frame[offset + len(raw):]


@pytest.mark.parametrize(("offset", "raw", "message", "error_offset"), [
    (12, b"\x08\x06", "EtherType 0x0806", 12),         # ARP
    (12, b"\x86\xdd", "EtherType 0x86dd", 12),         # IPv6
    (14, b"\x65", "version 6", 14),
    (14, b"\x44", "IHL 4", 14),
    (16, b"\x00\x10", "shorter than its header", 16),
    (16, b"\x05\xdc", "past the frame end", None),
    (20, b"\x20\x00", "fragment", 20),                 # MF set
    (20, b"\x00\x10", "fragment", 20),                 # offset 16 (x 8 bytes)
    (23, b"\x11", "protocol 17", 23),                  # UDP
    (46, b"\x40", "data offset 4", 46),
    (46, b"\xf0", "past the IPv4 total length", 46),
])
def test_parse_frame_rejects_unsupported(offset, raw, message, error_offset):
    frame = build_frame(b"0123456789", seq=0, **ADDR)
    with pytest.raises(ProtocolError, match=message) as info:
        parse_frame(_patched(frame, offset, raw))
    assert info.value.offset == (error_offset if error_offset is not None else len(frame))


def test_build_frame_can_make_fragments_the_parser_refuses():
    fragment = build_frame(b"x" * 16, seq=0, ip_flags=0b001, **ADDR)
    with pytest.raises(ProtocolError, match="fragment"):
        parse_frame(fragment)
    assert Ether(fragment)[IP].flags == "MF"


# --- TcpFlow -----------------------------------------------------------------------------

def _reassemble(frames, isn):
    """Rebuild a byte stream from segments in any order, by sequence number (mod 2**32)."""
    stream = {}
    for raw in frames:
        parsed = parse_frame(raw)
        base = (parsed.tcp.seq - isn - 1) % 2**32
        for i, byte in enumerate(parsed.payload):
            stream.setdefault(base + i, byte)
            assert stream[base + i] == byte
    return bytes(stream[i] for i in range(len(stream)))


def test_handshake_and_close_numbers():
    flow = TcpFlow(CLIENT, EXCHANGE, client_isn=1000, exchange_isn=9000)
    syn, syn_ack, ack = (parse_frame(f).tcp for f in flow.handshake())
    assert (syn.flag_str, syn.seq, syn.ack) == ("S", 1000, 0)
    assert (syn_ack.flag_str, syn_ack.seq, syn_ack.ack) == ("SA", 9000, 1001)
    assert (ack.flag_str, ack.seq, ack.ack) == ("A", 1001, 9001)
    flow.client.send(b"abcd")
    fin, fin_ack, last = (parse_frame(f).tcp for f in flow.close())
    assert (fin.flag_str, fin.seq, fin.ack) == ("FA", 1005, 9001)
    assert (fin_ack.flag_str, fin_ack.seq, fin_ack.ack) == ("FA", 9001, 1006)
    assert (last.flag_str, last.seq, last.ack) == ("A", 1006, 9002)
    with pytest.raises(ValueError, match="after FIN"):
        flow.client.send(b"late")


def test_flow_directions_and_acks():
    flow = TcpFlow(CLIENT, EXCHANGE, client_isn=10, exchange_isn=500)
    (request,) = flow.client.send(b"login")
    (reply,) = flow.exchange.send(b"accepted!")
    (next_request,) = flow.client.send(b"order")
    r, a, n = parse_frame(request), parse_frame(reply), parse_frame(next_request)
    assert (r.ip.src, r.ip.dst, r.tcp.src_port, r.tcp.dst_port) == (
        CLIENT.ip, EXCHANGE.ip, CLIENT.port, EXCHANGE.port)
    assert (a.ip.src, a.ip.dst, a.eth.src, a.tcp.src_port) == (
        EXCHANGE.ip, CLIENT.ip, EXCHANGE.mac, EXCHANGE.port)
    assert (r.tcp.seq, r.tcp.ack) == (11, 501)
    assert (a.tcp.seq, a.tcp.ack) == (501, 16)
    assert (n.tcp.seq, n.tcp.ack) == (16, 510)
    assert r.ip.id != n.ip.id
    assert flow.client.sent == b"loginorder"
    assert flow.client.next_seq == 21


@settings(max_examples=100, deadline=None)
@given(stream=st.binary(min_size=2, max_size=3000), data=st.data(),
       isn=st.integers(0, 2**32 - 1), mss=st.integers(1, 1460))
def test_send_splits_and_reassembles(stream, data, isn, mss):
    cuts = data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=8))
    flow = TcpFlow(CLIENT, EXCHANGE, client_isn=isn, mss=mss)
    frames = flow.client.send(stream, cuts=cuts)
    boundaries = set()
    position = 0
    for raw in frames:
        parsed = parse_frame(raw)
        assert parsed.tcp.checksum_ok and parsed.ip.checksum_ok
        assert 0 < len(parsed.payload) <= mss
        assert parsed.tcp.flag_str == "PA"
        position += len(parsed.payload)
        boundaries.add(position)
    assert set(cuts) <= boundaries  # every requested cut is a segment boundary
    random.Random(isn).shuffle(frames)
    assert _reassemble(frames, isn) == stream


def test_sequence_numbers_wrap():
    flow = TcpFlow(CLIENT, EXCHANGE, client_isn=2**32 - 3)
    frames = flow.client.send(b"0123456789", cuts=[1, 2, 3])
    seqs = [parse_frame(f).tcp.seq for f in frames]
    assert seqs == [2**32 - 2, 2**32 - 1, 0, 1]
    assert _reassemble(frames, 2**32 - 3) == b"0123456789"


def test_retransmission_repeats_bytes_and_sequence():
    flow = TcpFlow(CLIENT, EXCHANGE, client_isn=5000, timestamps=True)
    first = flow.client.send(b"AAAABBBBCCCC", cuts=[4, 8])
    again = parse_frame(flow.client.retransmit(2, 10))
    assert again.payload == b"AABBBBCC"
    assert again.tcp.seq == parse_frame(first[0]).tcp.seq + 2
    assert again.tcp.checksum_ok
    # A retransmission covering exactly one earlier segment matches it but for TS and IP ID.
    same = parse_frame(flow.client.retransmit(4, 8))
    original = parse_frame(first[1])
    assert (same.tcp.seq, same.payload) == (original.tcp.seq, original.payload)
    assert _reassemble([*first, flow.client.retransmit(0, 12)], 5000) == b"AAAABBBBCCCC"
    with pytest.raises(ValueError, match="not inside"):
        flow.client.retransmit(10, 13)


def test_send_rejects_cuts_outside():
    flow = TcpFlow(CLIENT, EXCHANGE)
    with pytest.raises(ValueError, match="strictly inside"):
        flow.client.send(b"abc", cuts=[3])
    with pytest.raises(ValueError, match="strictly inside"):
        flow.client.send(b"abc", cuts=[0])


def test_flow_timestamps_and_vlan():
    flow = TcpFlow(CLIENT, EXCHANGE, vlan=42, timestamps=True)
    frames = [*flow.handshake(), *flow.client.send(b"x"), *flow.exchange.send(b"y")]
    parsed = [parse_frame(f) for f in frames]
    assert all(p.eth.vlan == 42 for p in parsed)
    assert all(p.tcp.data_offset == 8 for p in parsed)
    tsval = [struct.unpack("!II", p.tcp.options[4:])[0] for p in parsed]
    tsecr = [struct.unpack("!II", p.tcp.options[4:])[1] for p in parsed]
    assert tsecr[0] == 0                   # the SYN has nothing to echo
    assert tsecr[1] == tsval[0]            # SYN+ACK echoes the SYN
    assert tsecr[4] == tsval[3]            # the exchange echoes the client's latest
    assert tsval[3] > tsval[2] > tsval[0]  # the client's clock moves forward


def test_flow_is_fast():
    flow = TcpFlow(CLIENT, EXCHANGE, timestamps=True)
    payload = b"\x00\x30U" + b"O" * 47
    count = 20_000
    start = time.perf_counter()
    for _ in range(count):
        flow.client.send(payload)
    rate = count / (time.perf_counter() - start)
    # About 150k frames/s on a laptop core; the bound leaves a wide margin for slow CI.
    assert rate > 20_000, f"{rate:.0f} frames/s"


# --- pcap --------------------------------------------------------------------------------

def test_pcap_round_trip(tmp_path):
    flow = TcpFlow(CLIENT, EXCHANGE)
    frames = [*flow.handshake(), *flow.client.send(b"z" * 3000), *flow.exchange.send(b"ok")]
    records = [PcapRecord(1_700_000_000_123_456_789 + i * 6_400, f) for i, f in
               enumerate(frames)]
    path = tmp_path / "flow.pcap"
    assert write_pcap(path, records) == len(records)
    assert read_pcap(path) == records
    # The file header says nanosecond pcap (magic a1b23c4d, native order) and Ethernet.
    header = path.read_bytes()[:24]
    magic = struct.unpack("=I", header[:4])[0]
    assert magic == 0xA1B23C4D
    assert struct.unpack("=I", header[20:24])[0] == 1
    # scapy's ordinary reader agrees on every frame.
    packets = scapy_rdpcap(str(path))
    assert [bytes(p) for p in packets] == frames
    assert packets[3][TCP].seq == parse_frame(frames[3]).tcp.seq


def test_pcap_bare_frames_get_regular_timestamps(tmp_path):
    path = tmp_path / "bare.pcap"
    write_pcap(path, [b"\x01" * 60, PcapRecord(5_000, b"\x02" * 60), b"\x03" * 60],
               start_ns=100, interval_ns=10)
    assert [r.timestamp_ns for r in iter_pcap(path)] == [100, 5_000, 5_010]


def test_pcap_empty(tmp_path):
    path = tmp_path / "empty.pcap"
    assert write_pcap(path, []) == 0
    assert read_pcap(path) == []
    assert len(path.read_bytes()) == 24


def test_pcap_reads_microsecond_and_pcapng_files(tmp_path):
    frame = build_frame(b"hello", seq=0, **ADDR)
    packet = Ether(frame)
    packet.time = 1_234.5
    wrpcap(str(tmp_path / "micro.pcap"), [packet])
    wrpcapng(str(tmp_path / "ng.pcapng"), [packet])
    expected = [PcapRecord(1_234_500_000_000, frame)]
    assert read_pcap(tmp_path / "micro.pcap") == expected
    assert read_pcap(tmp_path / "ng.pcapng") == expected


def test_pcap_refuses_other_link_types(tmp_path):
    path = tmp_path / "raw_ip.pcap"
    wrpcap(str(path), [IP() / TCP()], linktype=101)
    with pytest.raises(ValueError, match="not Ethernet"):
        read_pcap(path)


def test_pcap_rejects_negative_timestamps(tmp_path):
    with pytest.raises(ValueError, match="negative"):
        write_pcap(tmp_path / "bad.pcap", [PcapRecord(-1, b"\x00" * 60)])
