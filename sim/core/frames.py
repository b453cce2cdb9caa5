"""Trading items as wire frames: each session a TCP connection, OUCH in SoupBin packets.

A session is the 4-tuple its :class:`~wiregate.sw.limits.SessionLimits` names. Each of its two
directions is a :class:`Stream`: the next sequence number the gateway's tracker expects and
the tail of a packet the last segment cut (a ``split`` message). A stream moves only when
the tracker would (:meth:`Stream.taken`): a segment with a bad FCS, or one of a session the
gateway does not have loaded, is sent again from the same sequence number, as a TCP sender
whose segment was lost does.

Client messages become SoupBin ``U`` packets, exchange messages ``S`` packets. A
:class:`~wiregate.sw.model.Malformed` record becomes bytes the ingress calls malformed for
that reason (:func:`malformed_packet`); always with room for the rewrite, so that a rejected
one can be turned into ``+`` in place like any other.

Frames carry no FCS; a bad one is the ``error`` flag on the last byte (:func:`frame_beats`).
"""

import struct

from wiregate.hw.stream import LANE_LAYOUT
from wiregate.sw.limits import OUCH_MAX_PRICE
from wiregate.sw.proto import ouch
from wiregate.sw.proto.frames import build_frame, tcp_timestamp_option

__all__ = ["IFG_BYTES", "Stream", "client_packet", "exchange_packet", "frame_beats",
           "malformed_packet", "split_packet"]

# Byte times between two frames on the MAC-side stream: the FCS the MAC strips, the
# inter-frame gap and the next preamble (802.3: 4 + 12 + 8).
IFG_BYTES = 24

_LANE = LANE_LAYOUT.size
_KEEP, _FIRST, _LAST, _ERROR = (1 << LANE_LAYOUT[name].offset
                                for name in ("keep", "first", "last", "error"))
_DATA = LANE_LAYOUT["data"].offset
_CLIENT_TYPES = {layout.type[0] for layout in ouch.CLIENT_LAYOUTS.values()}


def frame_beats(frame: bytes, error: bool, width: int) -> list[int]:
    """The packed beats of one frame as a receive MAC delivers it: lane 0 first, no gaps,
    ``error`` on the last byte."""
    beats = []
    last = len(frame) - 1
    for start in range(0, len(frame), width):
        word = 0
        for lane, byte in enumerate(frame[start:start + width]):
            flags = _KEEP | (_FIRST if start + lane == 0 else 0)
            if start + lane == last:
                flags |= _LAST | (_ERROR if error else 0)
            word |= (byte << _DATA | flags) << (lane * _LANE)
        beats.append(word)
    return beats


def _packet(sb_type: bytes, body: bytes) -> bytes:
    return struct.pack(">H", 1 + len(body)) + sb_type + body


def client_packet(msg) -> bytes:
    """A client OUCH message as a SoupBin ``U`` packet."""
    return _packet(b"U", msg.encode())


def exchange_packet(msg) -> bytes:
    """An exchange OUCH message as a SoupBin ``S`` packet."""
    return _packet(b"S", msg.encode())


def _enter(ref: int) -> ouch.EnterOrder:
    return ouch.EnterOrder(user_ref_num=ref, side="B", quantity=100, symbol="AAPL",
                           price=1_000_000, time_in_force="0", display="Y", capacity="A",
                           intermarket_sweep="N", cross_type="N", clordid=f"M{ref}")


def malformed_packet(reason: str, ref: int) -> bytes:
    """A ``U`` packet the extractor calls malformed for ``reason`` (``split`` aside: see
    :func:`split_packet`), with room after its type byte for the in-place rewrite.

    ``ref`` varies the bytes (a UserRefNum where the packet has one).
    """
    if reason == "unknown_type":
        unknown = next(c for c in b"ZYWVKJ" if c not in _CLIENT_TYPES)
        return _packet(b"U", bytes([unknown]) + f"JUNK{ref % 1000:03d}".encode())
    if reason == "bad_length":      # a Cancel Order with bytes missing (L - 1 < F)
        return _packet(b"U", ouch.CancelOrder(user_ref_num=ref, quantity=0).encode()[:5])
    if reason == "bad_field":
        body = bytearray(_enter(ref).encode())
        if ref % 2:
            side = ouch.EnterOrder.LAYOUT.field("side")
            body[side.offset] = ord("Z")
        else:
            price = ouch.EnterOrder.LAYOUT.field("price")
            body[price.offset:price.end] = (OUCH_MAX_PRICE + 1 + ref).to_bytes(
                price.end - price.offset, "big")
        return _packet(b"U", bytes(body))
    raise ValueError(f"no malformed packet for reason {reason!r}")


def split_packet(ref: int) -> tuple[bytes, bytes]:
    """An Enter Order ``U`` packet cut after its OUCH type byte and one more: the head ends a
    segment (the extractor: ``split``, with room), the tail leads the next one."""
    packet = client_packet(_enter(ref))
    return packet[:5], packet[5:]


class Stream:
    """One direction of a session's TCP connection.

    Parameters
    ----------
    src, dst : Peer
        Sender and receiver.
    isn : int
        Initial sequence number.
    vlan : int or None
        802.1Q VLAN ID on every frame.
    timestamps : bool
        The TCP timestamps option on every frame (data offset 8).

    Attributes
    ----------
    next_seq : int
        The sequence number the gateway's tracker expects next (after the SYN).
    carry : bytes
        The tail of a packet the last segment taken cut; it leads the next new segment.
    sent : int
        Payload bytes taken so far.
    peer : Stream
        The opposite direction (its ``next_seq`` is this one's acknowledgement number).
    """

    def __init__(self, src, dst, isn: int, *, vlan=None, timestamps=False):
        self.src, self.dst = src, dst
        self.isn = isn & 0xFFFFFFFF
        self.next_seq = (self.isn + 1) & 0xFFFFFFFF
        self.carry = b""
        self.sent = 0
        self.vlan = vlan
        self.timestamps = timestamps
        self.peer: Stream | None = None
        self._tsval = 0

    def _frame(self, payload: bytes, seq: int, flags: str) -> bytes:
        options = b""
        if self.timestamps:
            self._tsval += 1
            options = tcp_timestamp_option(1_000_000 + self._tsval)
        ack = self.peer.next_seq if self.peer is not None and "A" in flags else 0
        return build_frame(payload, src_mac=self.src.mac, dst_mac=self.dst.mac,
                           src_ip=self.src.ip, dst_ip=self.dst.ip, src_port=self.src.port,
                           dst_port=self.dst.port, seq=seq, ack=ack, flags=flags,
                           vlan=self.vlan, tcp_options=options)

    def syn(self, ack: bool = False) -> bytes:
        """The SYN (``ack``: SYN+ACK) that opens this direction."""
        return self._frame(b"", self.isn, "SA" if ack else "S")

    def ack(self) -> bytes:
        """A segment without payload."""
        return self._frame(b"", self.next_seq, "A")

    def segment(self, packets: bytes) -> tuple[bytes, bytes]:
        """A new segment: the carried tail, then ``packets``; returns (frame, payload)."""
        payload = self.carry + packets
        return self._frame(payload, self.next_seq, "PA"), payload

    def retransmission(self, payload: bytes, back: int) -> bytes:
        """``payload`` as a segment ending ``back`` bytes before the next expected one."""
        seq = (self.next_seq - len(payload) - back) & 0xFFFFFFFF
        return self._frame(payload, seq, "PA")

    def taken(self, payload: bytes, carry: bytes = b"") -> None:
        """The tracker took a new segment of ``payload``: move on; ``carry`` is the tail of
        its last packet, cut off, that leads the next segment."""
        self.next_seq = (self.next_seq + len(payload)) & 0xFFFFFFFF
        self.sent += len(payload)
        self.carry = carry
