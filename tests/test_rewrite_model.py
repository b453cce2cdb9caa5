"""The reject-in-place reference (sw/rewrite.py) against scapy's TCP checksum and dissectors.

Frames are built two ways, with ``struct`` (sw/proto/frames.py) and with scapy, carry several
SoupBin packets, and get a random subset of their ``U`` packets rejected; scapy then re-parses
them and checks the TCP checksum both ways a receiver may (sum to zero, or recompute and
compare), the SoupBin framing, and that nothing else moved.
"""

import random
import socket
import struct

import pytest
from scapy.layers.inet import IP, TCP, IPOption_NOP, in4_chksum
from scapy.layers.l2 import Dot1Q, Ether

from wiregate.sw.proto.frames import build_frame, ones_complement_sum, parse_frame
from wiregate.sw.proto.scapy_layers import dissect_soupbin
from wiregate.sw.rewrite import compensate, reject_in_place

CLIENT = ("02:00:00:00:00:01", "10.1.0.1", 40001)
EXCHANGE = ("02:00:00:00:00:02", "10.2.0.1", 15000)


def soupbin_payload(rng):
    """Several SoupBin packets; returns the bytes and the payload offsets of the type bytes
    of ``U`` packets with two bytes after it (the ones the core may reject in place)."""
    payload, rejectable = bytearray(), []
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        if kind < 0.7:       # a U packet of 3 to 60 bytes: OUCH-like body, or the minimum
            body = bytes([rng.choice(b"OUXMQ")]) + rng.randbytes(rng.choice((1, 8, 39, 46)))
            sb_type = b"U"
        elif kind < 0.85:
            body, sb_type = b"", b"R"
        else:
            body, sb_type = rng.randbytes(rng.randint(0, 20)), b"+"
        if sb_type == b"U":
            rejectable.append(len(payload) + 2)
        payload += struct.pack(">H", 1 + len(body)) + sb_type + body
    if rng.random() < 0.3:   # the last type byte two bytes before the segment end
        rejectable.append(len(payload) + 2)
        payload += struct.pack(">H", 3) + b"U" + rng.randbytes(2)
    elif rng.random() < 0.3:  # a packet cut by the segment end: not rejectable
        payload += struct.pack(">H", 47) + b"UO"[:rng.randint(1, 2)]
    return bytes(payload), rejectable


def struct_frame(rng, payload):
    (smac, sip, sport), (dmac, dip, dport) = CLIENT, EXCHANGE
    return build_frame(payload, src_mac=smac, dst_mac=dmac, src_ip=sip, dst_ip=dip,
                       src_port=sport, dst_port=dport, seq=rng.getrandbits(32),
                       vlan=rng.choice((None, 7)),
                       tcp_options=b"\x01" * rng.choice((0, 1, 4, 12, 40)),
                       ip_options=b"\x01" * rng.choice((0, 4, 40)))


def scapy_frame(rng, payload):
    (smac, sip, sport), (dmac, dip, dport) = CLIENT, EXCHANGE
    eth = Ether(src=smac, dst=dmac)
    if rng.random() < 0.5:
        eth = eth / Dot1Q(vlan=7)
    ip = IP(src=sip, dst=dip, options=[IPOption_NOP()] * rng.choice((0, 3, 8)))
    options = rng.choice(([], [("Timestamp", (1, 2))], [("NOP", None), ("MSS", 1460)]))
    tcp = TCP(sport=sport, dport=dport, seq=rng.getrandbits(32), flags="PA", options=options)
    return bytes(eth / ip / tcp / payload)


def tcp_checks(frame):
    """(sum over the segment and pseudo-header is zero, recomputed checksum equals the field)."""
    pkt = Ether(frame)
    ip = pkt[IP]
    start = (18 if pkt.haslayer(Dot1Q) else 14) + ip.ihl * 4
    segment = frame[start:start - ip.ihl * 4 + ip.len]
    summed = in4_chksum(socket.IPPROTO_TCP, ip, segment) == 0
    stored = pkt[TCP].chksum
    del pkt[TCP].chksum
    return summed, Ether(bytes(pkt))[TCP].chksum == stored


@pytest.mark.parametrize("builder", [struct_frame, scapy_frame])
def test_rejects_keep_the_checksum_and_the_framing(builder):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    parities = set()
    for n in range(300):
        payload, rejectable = soupbin_payload(rng)
        frame = builder(rng, payload)
        start = parse_frame(frame).payload_offset
        assert frame[start:start + len(payload)] == payload
        chosen = [start + x for x in rejectable if rng.random() < 0.6]
        out = frame
        for x in chosen:
            out = reject_in_place(out, x)
            parities.add(x % 2)
        where = f"seed {seed}, frame {n}, rejects at {chosen}"
        assert tcp_checks(out) == (True, True), where
        assert parse_frame(out).tcp.checksum_ok, where
        touched = {x + k for x in chosen for k in range(3)}
        assert all(out[k] == frame[k] for k in range(len(frame)) if k not in touched), where
        before = dissect_soupbin(payload)
        after = dissect_soupbin(out[start:start + len(payload)])
        assert [p.length for p in after] == [p.length for p in before], where
        expected, at = [], start
        for p in before:      # each packet's type byte is two bytes past its start
            expected.append(b"+" if at + 2 in chosen else p.type)
            at += 2 + p.length
        assert [p.type for p in after] == expected, where
    assert parities == {0, 1}


@pytest.mark.parametrize("parity", [0, 1])
def test_every_pair_value_keeps_the_sum_exactly(parity):
    # Segment words around the type byte at either parity; a nonzero word stands for the
    # pseudo-header, so the folded sum must come out the same bit for bit, not just mod 0xFFFF.
    prefix = b"\x00\x06" + b"\x9a" * parity
    for pair in range(1 << 16):
        before = prefix + b"U" + pair.to_bytes(2, "big")
        after = prefix + b"+" + compensate(pair).to_bytes(2, "big")
        assert ones_complement_sum(after) == ones_complement_sum(before), hex(pair)
        assert compensate(pair) != 0


def test_end_around_carry_edges():
    # The carry folds back in; neither zero appears (see the module docstring).
    assert compensate(0xFFD5) == 0xFFFF
    assert compensate(0xFFD6) == 0x0001
    assert compensate(0xFFFF) == 0x002A
    assert compensate(0x0000) == 0x002A


@pytest.mark.parametrize(("frame", "offset", "message"), [
    (b"xxU\x00", 2, "type byte offset 2 needs two more bytes after it in a frame of 4 bytes"),
    (b"xxU\x00\x00", -1, "type byte offset -1 needs two more bytes after it in a frame of "
                         "5 bytes"),
    (b"xxR\x00\x00", 2, "byte 0x52 at offset 2 is not a SoupBin 'U' type byte"),
])
def test_bad_requests(frame, offset, message):
    with pytest.raises(ValueError) as info:
        reject_in_place(frame, offset)
    assert str(info.value) == message
