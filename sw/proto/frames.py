# Ref: IEEE 802.3-2022 (Ethernet II, FCS), IEEE 802.1Q-2022, RFC 791 (IPv4), RFC 9293 (TCP),
#      RFC 1071 (Internet checksum), RFC 7323 (TCP timestamps)
"""Ethernet II / 802.1Q / IPv4 / TCP frames built and parsed with plain ``struct``.

This is the fast path for traffic generation (order of 100k frames/s, against about 2k/s for
scapy) and the independent checker for the gateware's parser and its in-place rewrite.

Conventions
-----------
- A *frame* is the bytes from the destination MAC up to the end of the Ethernet payload,
  **without** the FCS (as pcap files with linktype Ethernet hold them). ``with_fcs`` appends
  the CRC-32 when a test needs wire bytes.
- Addresses are accepted as strings (``"10.1.0.1"``, ``"02:00:00:00:00:01"``) or as
  integers (the address read as a big-endian number, the form ``wiregate.sw.limits``
  uses). ``parse_frame`` reports them as strings, MACs in lower case;
  ``ip_to_int``/``mac_to_int`` convert.
- ``build_frame`` pads frames shorter than 60 bytes with zeros, as a transmitting MAC does;
  the padding is outside the IPv4 total length, so ``parse_frame`` ignores it.
- Option bytes (TCP and IPv4) are padded with zero bytes (End of Option List) up to a
  multiple of four, as the header length counts 32-bit words; at most 40 bytes each.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from wiregate.sw.proto.errors import ProtocolError

__all__ = [
    "ETHERTYPE_IPV4",
    "ETHERTYPE_VLAN",
    "IP_FLAG_DF",
    "IP_FLAG_MF",
    "IP_PROTO_TCP",
    "MIN_FRAME_LENGTH",
    "EthernetHeader",
    "Frame",
    "IPv4Header",
    "Peer",
    "TcpFlow",
    "TcpHeader",
    "TcpSender",
    "build_frame",
    "fcs",
    "fcs_ok",
    "ip_checksum",
    "ip_to_bytes",
    "ip_to_int",
    "mac_to_bytes",
    "mac_to_int",
    "ones_complement_sum",
    "parse_frame",
    "tcp_checksum",
    "tcp_flags",
    "tcp_timestamp_option",
    "with_fcs",
]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_VLAN = 0x8100
IP_PROTO_TCP = 6
MIN_FRAME_LENGTH = 60      # 64-byte minimum on the wire, less the 4-byte FCS
IP_FLAG_DF = 0b010         # in the 3-bit IPv4 flags field: reserved, DF, MF
IP_FLAG_MF = 0b001
_TS_BASE = 1_000_000       # TSval clock origin of a TcpFlow (its first segment sends +1)

# Bits of the TCP flags byte, named by the letters scapy uses so strings read the same.
_TCP_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08,
                  "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}

_ETH = struct.Struct("!6s6sH")
_ETH_VLAN = struct.Struct("!6s6sHHH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_IP_CHECKSUM_OFFSET = 10
_TCP_CHECKSUM_OFFSET = 16

Address = str | int


# --- addresses ---------------------------------------------------------------------------

def mac_to_bytes(mac: Address | bytes) -> bytes:
    """Return a MAC address as 6 bytes from ``"02:00:00:00:00:01"``, an int or 6 bytes."""
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"MAC address needs 6 bytes, got {len(mac)}")
        return mac
    if isinstance(mac, int):
        if not 0 <= mac < 1 << 48:
            raise ValueError(f"MAC address {mac:#x} does not fit 48 bits")
        return mac.to_bytes(6, "big")
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"MAC address {mac!r} is not six colon-separated hex pairs")
    return bytes.fromhex("".join(parts))


def mac_to_int(mac: Address | bytes) -> int:
    """Return a MAC address as a 48-bit integer."""
    return int.from_bytes(mac_to_bytes(mac), "big")


def _mac_str(raw: bytes) -> str:
    return raw.hex(":")


def ip_to_bytes(ip: Address | bytes) -> bytes:
    """Return an IPv4 address as 4 bytes from ``"10.1.0.1"``, an int or 4 bytes."""
    if isinstance(ip, bytes):
        if len(ip) != 4:
            raise ValueError(f"IPv4 address needs 4 bytes, got {len(ip)}")
        return ip
    return ipaddress.IPv4Address(ip).packed


def ip_to_int(ip: Address | bytes) -> int:
    """Return an IPv4 address as a 32-bit integer."""
    return int.from_bytes(ip_to_bytes(ip), "big")


def _ip_str(raw: bytes) -> str:
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


@lru_cache(maxsize=64)
def _flags_from_str(flags: str) -> int:
    value = 0
    for letter in flags:
        try:
            value |= _TCP_FLAG_BITS[letter]
        except KeyError:
            raise ValueError(f"unknown TCP flag {letter!r} in {flags!r} "
                             f"(letters: {''.join(_TCP_FLAG_BITS)})") from None
    return value


def tcp_flags(flags: str | int) -> int:
    """Return the TCP flags byte for scapy-style letters (``"PA"``, ``"S"``) or an int."""
    if isinstance(flags, int):
        if not 0 <= flags <= 0xFF:
            raise ValueError(f"TCP flags {flags:#x} do not fit 8 bits")
        return flags
    return _flags_from_str(flags)


def _flags_str(value: int) -> str:
    return "".join(letter for letter, bit in _TCP_FLAG_BITS.items() if value & bit)


# --- checksums ---------------------------------------------------------------------------

def ones_complement_sum(data: bytes, initial: int = 0) -> int:
    """Return the 16-bit one's-complement sum of ``data`` (RFC 1071), not complemented.

    ``data`` is read as big-endian 16-bit words; an odd final byte is padded with a zero
    byte. ``initial`` (0..0xFFFF) is added with end-around carry, so sums of pieces can be
    chained. The result is 0 only when every word (and ``initial``) is zero; otherwise a
    multiple of 0xFFFF reads as 0xFFFF, as sequential end-around-carry addition gives.

    Why the big-integer trick works: 2**16 is 1 modulo 0xFFFF, so the buffer read as one
    big number is congruent to the sum of its words; one ``%`` replaces a Python loop.
    """
    if not 0 <= initial <= 0xFFFF:
        raise ValueError(f"initial sum {initial:#x} is not a 16-bit value")
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    number = int.from_bytes(data, "big")
    if number:
        total = number % 0xFFFF or 0xFFFF
    else:
        total = 0
    total += initial
    return (total & 0xFFFF) + (total >> 16)


def ip_checksum(header: bytes) -> int:
    """Return the IPv4 header checksum for ``header``.

    Given a header whose checksum field is zero, this is the value to store; given a header
    with a valid checksum in place, it is 0.
    """
    return ~ones_complement_sum(header) & 0xFFFF


def _pseudo_header(src_ip: bytes, dst_ip: bytes, length: int) -> bytes:
    return src_ip + dst_ip + struct.pack("!BBH", 0, IP_PROTO_TCP, length)


def tcp_checksum(src_ip: Address | bytes, dst_ip: Address | bytes, segment: bytes) -> int:
    """Return the TCP checksum of ``segment`` (header and payload) under the IPv4 pseudo-header.

    Same convention as ``ip_checksum``: 0 for a segment whose checksum is valid in place.
    """
    pseudo = _pseudo_header(ip_to_bytes(src_ip), ip_to_bytes(dst_ip), len(segment))
    return ~ones_complement_sum(pseudo + segment) & 0xFFFF


def fcs(frame: bytes) -> bytes:
    """Return the Ethernet FCS of ``frame`` (no FCS on it): CRC-32, 4 bytes as on the wire.

    The CRC is transmitted least significant byte first, hence little-endian bytes.
    """
    return zlib.crc32(frame).to_bytes(4, "little")


def with_fcs(frame: bytes) -> bytes:
    """Return ``frame`` with its FCS appended."""
    return frame + fcs(frame)


def fcs_ok(frame_with_fcs: bytes) -> bool:
    """Return whether the last 4 bytes of ``frame_with_fcs`` are the FCS of the rest."""
    if len(frame_with_fcs) < 4:
        return False
    return fcs(frame_with_fcs[:-4]) == frame_with_fcs[-4:]


def tcp_timestamp_option(tsval: int, tsecr: int = 0) -> bytes:
    """Return the 12 option bytes Linux sends on every segment: NOP, NOP, Timestamps."""
    return struct.pack("!BBBBII", 1, 1, 8, 10, tsval & 0xFFFFFFFF, tsecr & 0xFFFFFFFF)


def _pad_options(options: bytes, what: str) -> bytes:
    padded = options + b"\x00" * (-len(options) % 4)
    if len(padded) > 40:
        raise ValueError(f"{what} options take {len(padded)} bytes; at most 40 fit")
    return padded


# --- building ----------------------------------------------------------------------------

def _build(payload: bytes, dst_mac: bytes, src_mac: bytes, src_ip: bytes, dst_ip: bytes,
           src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
           ip_id: int, ttl: int, vlan_tci: int | None, tcp_options: bytes, ip_options: bytes,
           tos: int, flags_fragment: int, urgent: int, pad: bool) -> bytes:
    """Build a frame from already converted fields; options are already padded."""
    tcp_header_length = 20 + len(tcp_options)
    tcp_length = tcp_header_length + len(payload)
    tcp_header = _TCP.pack(src_port, dst_port, seq, ack, (tcp_header_length // 4) << 4,
                           flags, window, 0, urgent) + tcp_options
    checksum = ~ones_complement_sum(
        _pseudo_header(src_ip, dst_ip, tcp_length) + tcp_header + payload) & 0xFFFF
    tcp_header = (tcp_header[:_TCP_CHECKSUM_OFFSET] + checksum.to_bytes(2, "big")
                  + tcp_header[_TCP_CHECKSUM_OFFSET + 2:])

    ihl = 5 + len(ip_options) // 4
    ip_header = _IPV4.pack(0x40 | ihl, tos, ihl * 4 + tcp_length, ip_id, flags_fragment, ttl,
                           IP_PROTO_TCP, 0, src_ip, dst_ip) + ip_options
    checksum = ip_checksum(ip_header)
    ip_header = (ip_header[:_IP_CHECKSUM_OFFSET] + checksum.to_bytes(2, "big")
                 + ip_header[_IP_CHECKSUM_OFFSET + 2:])

    if vlan_tci is None:
        eth = _ETH.pack(dst_mac, src_mac, ETHERTYPE_IPV4)
    else:
        eth = _ETH_VLAN.pack(dst_mac, src_mac, ETHERTYPE_VLAN, vlan_tci, ETHERTYPE_IPV4)
    frame = b"".join((eth, ip_header, tcp_header, payload))
    if pad and len(frame) < MIN_FRAME_LENGTH:
        frame += b"\x00" * (MIN_FRAME_LENGTH - len(frame))
    return frame


def _check_range(name: str, value: int, bits: int) -> None:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{name} {value} does not fit {bits} bits")


def build_frame(payload: bytes, *, src_mac: Address, dst_mac: Address, src_ip: Address,
                dst_ip: Address, src_port: int, dst_port: int, seq: int, ack: int = 0,
                flags: str | int = "PA", window: int = 65535, ip_id: int = 0, ttl: int = 64,
                vlan: int | None = None, vlan_pcp: int = 0, tcp_options: bytes = b"",
                ip_options: bytes = b"", tos: int = 0, ip_flags: int = IP_FLAG_DF,
                fragment_offset: int = 0, urgent: int = 0, pad: bool = True) -> bytes:
    """Build an Ethernet II / IPv4 / TCP frame carrying ``payload``, checksums filled in.

    Parameters
    ----------
    payload : bytes
        TCP payload.
    src_mac, dst_mac : str or int
        MAC addresses (``"02:00:00:00:00:01"`` or a 48-bit int).
    src_ip, dst_ip : str or int
        IPv4 addresses (``"10.1.0.1"`` or a 32-bit int).
    src_port, dst_port, seq, ack, window, urgent : int
        TCP header fields; ``seq`` and ``ack`` are taken modulo 2**32.
    flags : str or int
        TCP flags as scapy letters (``"PA"``, ``"S"``, ``"FA"``) or the flags byte.
    ip_id, ttl, tos : int
        IPv4 header fields.
    vlan : int or None
        802.1Q VLAN ID; ``None`` sends an untagged frame. ``vlan_pcp`` is the priority.
    tcp_options, ip_options : bytes
        Raw option bytes, zero-padded to a multiple of 4 (at most 40 bytes each). See
        ``tcp_timestamp_option`` for the Linux timestamps option.
    ip_flags : int
        The 3-bit IPv4 flags field (default DF, as Linux sets it); with ``fragment_offset``
        (in 8-byte units) it lets a test build fragments the gateway must refuse.
    pad : bool
        Pad to the 60-byte minimum as a transmitting MAC does (default).

    Returns
    -------
    bytes
        The frame without FCS (see ``with_fcs``).
    """
    for name, value, bits in (("src_port", src_port, 16), ("dst_port", dst_port, 16),
                              ("window", window, 16), ("urgent", urgent, 16),
                              ("ip_id", ip_id, 16), ("ttl", ttl, 8), ("tos", tos, 8),
                              ("ip_flags", ip_flags, 3), ("fragment_offset", fragment_offset, 13),
                              ("vlan_pcp", vlan_pcp, 3)):
        _check_range(name, value, bits)
    vlan_tci = None
    if vlan is not None:
        _check_range("vlan", vlan, 12)
        vlan_tci = (vlan_pcp << 13) | vlan
    return _build(payload, mac_to_bytes(dst_mac), mac_to_bytes(src_mac), ip_to_bytes(src_ip),
                  ip_to_bytes(dst_ip), src_port, dst_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                  tcp_flags(flags), window, ip_id, ttl, vlan_tci,
                  _pad_options(tcp_options, "TCP"), _pad_options(ip_options, "IPv4"), tos,
                  (ip_flags << 13) | fragment_offset, urgent, pad)


# --- parsing -----------------------------------------------------------------------------

@dataclass(frozen=True)
class EthernetHeader:
    """Ethernet II header, with the 802.1Q tag folded in when present.

    Attributes
    ----------
    dst, src : str
        MAC addresses, lower-case colon form.
    vlan : int or None
        VLAN ID of the 802.1Q tag, ``None`` if untagged; ``pcp`` its priority (0 if none).
    ethertype : int
        The EtherType after any tag (0x0800 for every frame ``parse_frame`` accepts).
    length : int
        Header length in bytes: 14, or 18 with a tag.
    """

    dst: str
    src: str
    vlan: int | None
    pcp: int
    ethertype: int
    length: int


@dataclass(frozen=True)
class IPv4Header:
    """IPv4 header fields as on the wire.

    Attributes
    ----------
    ihl : int
        Header length in 32-bit words (5 without options).
    flags : int
        The 3-bit flags field (0b010 is DF, 0b001 is MF).
    fragment_offset : int
        In 8-byte units.
    checksum_ok : bool
        Whether the header's one's-complement sum checks.
    options : bytes
        Option bytes (``ihl * 4 - 20`` of them).
    """

    ihl: int
    tos: int
    total_length: int
    id: int
    flags: int
    fragment_offset: int
    ttl: int
    proto: int
    checksum: int
    checksum_ok: bool
    src: str
    dst: str
    options: bytes


@dataclass(frozen=True)
class TcpHeader:
    """TCP header fields as on the wire.

    Attributes
    ----------
    data_offset : int
        Header length in 32-bit words (5 without options, 8 with Linux timestamps).
    flags : int
        The flags byte; ``flag_str`` gives scapy-style letters.
    checksum_ok : bool
        Whether the checksum over pseudo-header, header and payload checks.
    options : bytes
        Option bytes (``data_offset * 4 - 20`` of them).
    """

    src_port: int
    dst_port: int
    seq: int
    ack: int
    data_offset: int
    flags: int
    window: int
    checksum: int
    checksum_ok: bool
    urgent: int
    options: bytes

    @property
    def flag_str(self) -> str:
        """The flags as scapy letters in bit order, e.g. ``"PA"``."""
        return _flags_str(self.flags)


@dataclass(frozen=True)
class Frame:
    """A parsed Ethernet / IPv4 / TCP frame.

    Attributes
    ----------
    eth, ip, tcp
        The three headers.
    payload : bytes
        TCP payload, bounded by the IPv4 total length (Ethernet padding excluded).
    ip_offset, tcp_offset, payload_offset : int
        Frame offsets of the IPv4 header, the TCP header and the first payload byte.
    """

    eth: EthernetHeader
    ip: IPv4Header
    tcp: TcpHeader
    payload: bytes
    ip_offset: int
    tcp_offset: int
    payload_offset: int


def parse_frame(frame: bytes) -> Frame:
    """Parse an Ethernet II (optionally 802.1Q tagged) / IPv4 / TCP frame without FCS.

    Checksums are verified and reported, not enforced. Raises
    ``wiregate.sw.proto.errors.ProtocolError`` (with the frame offset of the problem) for a
    truncated frame, a non-IPv4 EtherType, a non-TCP protocol, an IPv4 fragment or an
    inconsistent header length.
    """
    length = len(frame)
    if length < 14:
        raise ProtocolError(f"frame of {length} bytes is shorter than an Ethernet header",
                            length)
    dst, src, ethertype = _ETH.unpack_from(frame, 0)
    vlan = None
    pcp = 0
    ip_offset = 14
    if ethertype == ETHERTYPE_VLAN:
        if length < 18:
            raise ProtocolError("frame truncated inside the 802.1Q tag", length)
        tci, ethertype = struct.unpack_from("!HH", frame, 14)
        vlan = tci & 0x0FFF
        pcp = tci >> 13
        ip_offset = 18
    if ethertype != ETHERTYPE_IPV4:
        raise ProtocolError(f"unsupported EtherType {ethertype:#06x} (only IPv4)",
                            ip_offset - 2)
    eth = EthernetHeader(_mac_str(dst), _mac_str(src), vlan, pcp, ethertype, ip_offset)

    if length < ip_offset + 20:
        raise ProtocolError("frame truncated inside the IPv4 header", length)
    (version_ihl, tos, total_length, ip_id, flags_fragment, ttl, proto, ip_sum, ip_src,
     ip_dst) = _IPV4.unpack_from(frame, ip_offset)
    if version_ihl >> 4 != 4:
        raise ProtocolError(f"IP version {version_ihl >> 4} is not 4", ip_offset)
    ihl = version_ihl & 0x0F
    if ihl < 5:
        raise ProtocolError(f"IPv4 IHL {ihl} is below the minimum of 5", ip_offset)
    tcp_offset = ip_offset + ihl * 4
    if length < tcp_offset:
        raise ProtocolError("frame truncated inside the IPv4 options", length)
    if total_length < ihl * 4:
        raise ProtocolError(f"IPv4 total length {total_length} is shorter than its header",
                            ip_offset + 2)
    ip_end = ip_offset + total_length
    if ip_end > length:
        raise ProtocolError(f"IPv4 total length {total_length} runs past the frame end",
                            length)
    ip_flags = flags_fragment >> 13
    fragment_offset = flags_fragment & 0x1FFF
    if ip_flags & IP_FLAG_MF or fragment_offset:
        raise ProtocolError("IPv4 fragments are not supported", ip_offset + 6)
    if proto != IP_PROTO_TCP:
        raise ProtocolError(f"unsupported IP protocol {proto} (only TCP)", ip_offset + 9)
    ip_header = frame[ip_offset:tcp_offset]
    ip = IPv4Header(ihl, tos, total_length, ip_id, ip_flags, fragment_offset, ttl, proto,
                    ip_sum, ones_complement_sum(ip_header) == 0xFFFF, _ip_str(ip_src),
                    _ip_str(ip_dst), bytes(ip_header[20:]))

    if ip_end < tcp_offset + 20:
        raise ProtocolError("segment truncated inside the TCP header", ip_end)
    (src_port, dst_port, seq, ack, offset_byte, flags, window, tcp_sum,
     urgent) = _TCP.unpack_from(frame, tcp_offset)
    data_offset = offset_byte >> 4
    if data_offset < 5:
        raise ProtocolError(f"TCP data offset {data_offset} is below the minimum of 5",
                            tcp_offset + 12)
    payload_offset = tcp_offset + data_offset * 4
    if payload_offset > ip_end:
        raise ProtocolError(f"TCP data offset {data_offset} runs past the IPv4 total length",
                            tcp_offset + 12)
    segment = frame[tcp_offset:ip_end]
    pseudo = _pseudo_header(ip_src, ip_dst, len(segment))
    tcp = TcpHeader(src_port, dst_port, seq, ack, data_offset, flags, window, tcp_sum,
                    ones_complement_sum(pseudo + segment) == 0xFFFF, urgent,
                    bytes(frame[tcp_offset + 20:payload_offset]))
    return Frame(eth, ip, tcp, bytes(frame[payload_offset:ip_end]), ip_offset, tcp_offset,
                 payload_offset)


# --- connection helper -------------------------------------------------------------------

@dataclass(frozen=True)
class Peer:
    """One end of a TCP connection: MAC, IPv4 address (str or int) and port."""

    mac: Address
    ip: Address
    port: int


class TcpSender:
    """The sending half of one direction of a ``TcpFlow``; reach it as ``flow.client``.

    Created by ``TcpFlow``, which passes the two ``Peer`` ends and the initial sequence number.

    It keeps every byte it sent, so any range can be sent again as a retransmission.
    Stream offsets count payload bytes from 0; offset ``n`` travels at sequence number
    ``isn + 1 + n`` (mod 2**32), the SYN having used ``isn``.

    Attributes
    ----------
    isn : int
        Initial sequence number.
    sent : bytes
        Every payload byte sent so far, in stream order.
    peer : TcpSender
        The opposite direction, whose progress supplies the acknowledgement numbers.
    """

    def __init__(self, local: Peer, remote: Peer, *, isn: int, flow: TcpFlow) -> None:
        self.isn = isn & 0xFFFFFFFF
        self._src_mac = mac_to_bytes(local.mac)
        self._dst_mac = mac_to_bytes(remote.mac)
        self._src_ip = ip_to_bytes(local.ip)
        self._dst_ip = ip_to_bytes(remote.ip)
        self._src_port = local.port
        self._dst_port = remote.port
        self._flow = flow
        self._stream = bytearray()
        self._fin_sent = False
        self._ip_id = 0
        self._tsval = 0
        self.peer: TcpSender

    @property
    def sent(self) -> bytes:
        """Every payload byte sent so far, in stream order."""
        return bytes(self._stream)

    def seq_of(self, offset: int) -> int:
        """Sequence number of stream byte ``offset``."""
        return (self.isn + 1 + offset) & 0xFFFFFFFF

    @property
    def next_seq(self) -> int:
        """The sequence number of the next byte (the peer's acknowledgement number)."""
        return self.seq_of(len(self._stream) + self._fin_sent)

    def _frame(self, payload: bytes, seq: int, flags: int, ack: bool = True) -> bytes:
        flow = self._flow
        options = b""
        if flow.timestamps:
            self._tsval += 1
            # TSecr echoes the peer's latest TSval; 0 until the peer has sent one (the SYN).
            options = tcp_timestamp_option(_TS_BASE + self._tsval,
                                           _TS_BASE + self.peer._tsval
                                           if self.peer._tsval else 0)
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        return _build(payload, self._dst_mac, self._src_mac, self._src_ip, self._dst_ip,
                      self._src_port, self._dst_port, seq,
                      self.peer.next_seq if ack else 0, flags, flow.window, self._ip_id,
                      flow.ttl, flow._vlan_tci, options, b"", 0, IP_FLAG_DF << 13, 0, True)

    def send(self, data: bytes, cuts: Iterable[int] = ()) -> list[bytes]:
        """Append ``data`` to the stream and return the segments carrying it.

        ``data`` is split at each offset in ``cuts`` (relative to ``data``), and any piece
        longer than the flow's ``mss`` is split further. Every segment carries PSH+ACK.
        """
        if self._fin_sent:
            raise ValueError("cannot send after FIN")
        bounds = sorted(set(cuts))
        if bounds and (bounds[0] <= 0 or bounds[-1] >= len(data)):
            raise ValueError(f"cuts {bounds} must lie strictly inside the {len(data)} bytes")
        mss = self._flow.mss
        frames = []
        start = 0
        for end in [*bounds, len(data)]:
            for piece_start in range(start, end, mss):
                piece = data[piece_start:min(end, piece_start + mss)]
                frames.append(self._frame(piece, self.seq_of(len(self._stream)), 0x18))
                self._stream += piece
            start = end
        return frames

    def retransmit(self, start: int, end: int) -> bytes:
        """Return one segment carrying stream bytes ``[start, end)`` again, unchanged."""
        if not 0 <= start < end <= len(self._stream):
            raise ValueError(f"range [{start}, {end}) is not inside the {len(self._stream)} "
                             "bytes sent")
        return self._frame(bytes(self._stream[start:end]), self.seq_of(start), 0x18)

    def ack(self) -> bytes:
        """Return a pure ACK acknowledging everything the peer sent."""
        return self._frame(b"", self.next_seq, 0x10)

    def fin(self) -> bytes:
        """Return a FIN+ACK ending this direction; the FIN takes one sequence number."""
        frame = self._frame(b"", self.next_seq, 0x11)
        self._fin_sent = True
        return frame


class TcpFlow:
    """Frames of one TCP connection between a client and an exchange, with seq/ack kept.

    Fast: plain ``struct``, with addresses converted once per flow.

    Parameters
    ----------
    client, exchange : Peer
        The two ends.
    client_isn, exchange_isn : int
        Initial sequence numbers (choose values near 2**32 to exercise wrap-around).
    vlan : int or None
        802.1Q VLAN ID for every frame, or ``None``.
    timestamps : bool
        Add the 12-byte Linux timestamps option to every segment (TCP data offset 8).
    mss : int
        Largest payload per segment when ``send`` splits a stream.
    window, ttl : int
        Header fields used on every frame.

    Attributes
    ----------
    client, exchange : TcpSender
        Client-to-exchange and exchange-to-client senders.

    Examples
    --------
    >>> flow = TcpFlow(Peer("02:00:00:00:00:01", "10.0.0.1", 40000),
    ...                Peer("02:00:00:00:00:02", "10.0.0.2", 15000))
    >>> frames = flow.handshake() + flow.client.send(b"hello world", cuts=[5])
    >>> len(frames)
    5
    """

    def __init__(self, client: Peer, exchange: Peer, *, client_isn: int = 0x10000000,
                 exchange_isn: int = 0x20000000, vlan: int | None = None,
                 timestamps: bool = False, mss: int = 1460, window: int = 65535,
                 ttl: int = 64) -> None:
        if mss < 1:
            raise ValueError(f"mss {mss} must be positive")
        _check_range("window", window, 16)
        _check_range("ttl", ttl, 8)
        if vlan is not None:
            _check_range("vlan", vlan, 12)
        self._vlan_tci = vlan
        self.timestamps = timestamps
        self.mss = mss
        self.window = window
        self.ttl = ttl
        self.client = TcpSender(client, exchange, isn=client_isn, flow=self)
        self.exchange = TcpSender(exchange, client, isn=exchange_isn, flow=self)
        self.client.peer = self.exchange
        self.exchange.peer = self.client

    def handshake(self) -> list[bytes]:
        """Return SYN, SYN+ACK and ACK; the stream offsets start at 0 afterwards."""
        return [self.client._frame(b"", self.client.isn, 0x02, ack=False),
                self.exchange._frame(b"", self.exchange.isn, 0x12),
                self.client.ack()]

    def close(self) -> list[bytes]:
        """Return the client's FIN, the exchange's FIN+ACK and the client's final ACK."""
        return [self.client.fin(), self.exchange.fin(), self.client.ack()]
