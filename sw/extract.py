# Ref: Nasdaq SoupBinTCP 3.00, OUCH 5.0; RFC 9293 (TCP sequence space).
"""The ingress reference: SoupBinTCP framing and OUCH extraction of one port, frame by frame.

This module *is* the specification of the ingress (hw/ingress/soupbin.py,
hw/ingress/ouch_extract.py): the gateware must produce the same events, frame flags and
counters as :class:`IngressModel`.

Frames. A frame is what the receive MAC delivers (no FCS) with a flag ``fcs_error``. It is a
*session frame* when its Ethernet (optionally 802.1Q) / IPv4 / TCP headers are complete and well
formed and its 4-tuple is a configured session's: (source ip, port, destination ip, port) is
(client ip, client port, exchange ip, exchange port) toward the exchange, the reverse toward the
clients. A frame cut short inside its payload is still one (its bytes are parsed; the IPv4 total
length keeps bounding the segment). A frame is *clean* when it is complete, both checksums are
good and ``fcs_error`` is False. :class:`StreamTracker` (rules in hw/ingress/tcp_tracker.py)
calls each session frame's payload NONE, NEW, RETRANSMIT or LOST, and moves only on clean frames.

Framing, per session. A SoupBin packet is a u16 big-endian length L and L bytes, the first the
SoupBin type; ``pos`` counts from that type byte (the OUCH type is pos 1). A NEW segment
continues from the session's saved state, which may be inside a packet; a RETRANSMIT segment is
parsed fresh (a packet starts at its first byte) and saves nothing; LOST and NONE are not
parsed. At the end of a clean session frame the saved state becomes fresh if the frame has SYN,
else the state after its last byte if it is NEW, else stays. Parsing a NEW frame that is not
clean still emits events (the frame is void), but saves nothing.

Events, at most one per packet, at the first byte where one of these applies. D is the data type
(``U`` from clients, ``S`` from the exchange); N the types passed without an event (clients:
``L R O +``; exchange: ``A J H Z +``); F the fixed length of the OUCH type's layout
(CLIENT_LAYOUTS or SERVER_LAYOUTS); "after" counts payload bytes after this one in its segment.

1. The low length byte, L == 0: bad_length.
2. pos 0: type not in D or N: unknown_type; type D and L == 1: bad_length; from a client, type U
   with after == 0: split.
3. pos 1 of a D packet: an unknown OUCH type: unknown_type; L-1 < F, or L-1 != F without an
   appendage: bad_length; from a client, after < F-1: split (the gate must rewrite a packet in
   the segment that holds its type byte); else the good event if F == 1 (Account Query).
4. pos F: AppendageLength != L-1-F: bad_length; a ``side`` not B/S/T/E or a ``price`` above
   OUCH_MAX_PRICE: bad_field; else the good event.

Later bytes of a packet do nothing: TagValue elements are not walked (the verdict cannot wait for
an appendage of up to 65535 bytes). An event records the session, direction, SoupBin type (0 for
L == 0), OUCH type (0 before pos 1), L, its malformed reason, whether the segment is a
retransmission, whether the type byte was in an earlier frame (``continued``), the frame offsets
of the type byte (0 when continued; the low length byte when L == 0) and of the byte that
emitted it, the sequence number of the byte at that type offset (0 when continued), ``room``
(not continued, L != 0, and at least two bytes after the type byte inside both the packet and
the segment: room for the rewrite) and, for good events, the EVENT_FIELDS the layout has as
unsigned ints of their wire bytes (``symbol`` as 8 big-endian bytes, one-character fields as
their ASCII code) and, from a client, the :func:`digest` of the message (0 but for Enter,
Replace and Modify: the retransmission digest of model rule 9).

Frame level. At beat width W, byte ``offset`` is in beat ``offset // W``. An event that would
be the second of its beat is dropped (its packet gets no later one) and the frame is *crowded*.
From a client, an emitted malformed event without room makes the frame *unrewritable*. A session
frame is *void* when it is not clean, LOST, crowded or unrewritable. Counters (saturating at
32 bits): emitted events, emitted malformed events by reason, crowded, unrewritable and void
frames.
"""

import copy
import dataclasses
import zlib
from enum import StrEnum

from wiregate.sw import model
from wiregate.sw.limits import OUCH_MAX_PRICE
from wiregate.sw.proto import ouch
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.frames import Frame, ip_to_int, parse_frame

__all__ = [
    "COUNTERS",
    "DATA_TYPES",
    "DIGESTED",
    "DIGEST_BITS",
    "DIGEST_EXTRA",
    "EVENT_FIELDS",
    "MALFORMED",
    "PASS_TYPES",
    "Event",
    "FrameResult",
    "IngressModel",
    "Segment",
    "StreamTracker",
    "digest",
    "digest_extra",
    "digest_length",
    "field_value",
    "is_arp",
    "marked_for_drop",
]

MALFORMED = ("unknown_type", "bad_length", "bad_field", "split")
EVENT_FIELDS = ("user_ref_num", "orig_user_ref_num", "side", "quantity", "symbol", "price",
                "time_in_force", "appendage_length", "match_number", "order_state")
COUNTERS = ("events", *MALFORMED, "crowded", "unrewritable", "void")
DATA_TYPES = {"client": "U", "exchange": "S"}          # SoupBin types that carry OUCH
PASS_TYPES = {"client": "LRO+", "exchange": "AJHZ+"}  # SoupBin types passed without an event
TCP_FIN, TCP_SYN, TCP_RST = 0x01, 0x02, 0x04
ETHERTYPE_ARP = 0x0806
_GOOD, _PASS = "good", "pass"   # the verdicts of rules 2-4 besides the malformed reasons


def field_value(field, value) -> int:
    """A decoded message field as the event carries it: the unsigned int of its wire bytes
    (one character as its ASCII code, text space padded, first byte most significant)."""
    if field.kind == "c":
        return ord(value)
    if field.kind == "a":
        return int.from_bytes(value.encode("ascii").ljust(field.size, b" "), "big")
    return value


def is_arp(frame: bytes) -> bool:
    """An ARP frame (802.1Q tagged or not): toward the exchange it passes unchanged, the one
    kind of frame besides a session's (and a host pass rule's) that does
    (hw/ingress/sessions.py)."""
    kind = frame[16:18] if frame[12:14] == b"\x81\x00" else frame[12:14]
    return int.from_bytes(kind, "big") == ETHERTYPE_ARP


def marked_for_drop(frame: bytes, session: int | None) -> bool:
    """Whether the gateway marks a frame toward the exchange for drop (and counts it in
    ``dropped_no_session``; hw/ingress/sessions.py): any frame but ARP and a session frame
    whose headers are clean (complete, both checksums good; the FCS does not count). A
    session frame marked so still has its messages judged: it ends void and is stomped."""
    if is_arp(frame):
        return False
    return session is None or not _parse(frame).clean


# --- The retransmission digest (model rule 9) ----------------------------------------------
#
# A retransmitted Enter, Replace or Modify gets the remembered verdict only if it is the
# message remembered, appendage aside; the gate compares a 32-bit digest of the fixed part:
# the CRC-32 of IEEE 802.3 (zlib's) of its bytes in wire order from the type byte, its
# AppendageLength left out with the appendage it counts. That field ends each layout that
# has one, so the digested bytes are a prefix of the message: at W = 1 the client extractor
# works the CRC out a byte at a time as they pass; at W = 8 it takes each type's CRC from its
# captured bytes (the event fields and ``digest_extra``) with XOR trees.

DIGEST_BITS = 32
DIGESTED = tuple(cls.TYPE for cls in (ouch.EnterOrder, ouch.ReplaceOrder, ouch.ModifyOrder))


def digest_length(layout) -> int:
    """How many bytes of a digested layout's messages, from the type byte, the digest takes:
    the fixed part up to its AppendageLength."""
    if layout.appendage_length_field is None:
        return layout.fixed_length
    field = next(f for f in layout.fields if f.name == layout.appendage_length_field)
    if field.end != layout.fixed_length:
        raise ValueError(f"type {layout.type}: its AppendageLength does not end the fixed part")
    return field.offset


def digest_extra(layout) -> tuple[int, ...]:
    """The offsets (type byte 0) of a digested layout's fixed bytes outside EVENT_FIELDS, in
    wire order: what the extractor captures for the digest beside the event's fields."""
    return tuple(f.offset + b for f in layout.fields if f.name not in EVENT_FIELDS
                 for b in range(f.size))


DIGEST_EXTRA = max(len(digest_extra(ouch.CLIENT_LAYOUTS[t])) for t in DIGESTED)


def digest(message: bytes) -> int:
    """The retransmission digest of a client OUCH message given from its type byte on (what
    follows its fixed part, and its AppendageLength, do not count); 0 for a type not in
    DIGESTED."""
    layout = ouch.CLIENT_LAYOUTS.get(bytes(message[:1]))
    if layout is None or layout.type not in DIGESTED:
        return 0
    return zlib.crc32(bytes(message[:digest_length(layout)]))


class Segment(StrEnum):
    """What a session frame's payload is to its stream (the names of hw.tcp_tracker.Segment)."""

    NONE = "none"
    NEW = "new"
    RETRANSMIT = "retransmit"
    LOST = "lost"


@dataclasses.dataclass(frozen=True)
class _Parsed:
    frame: Frame       # headers; ``frame.payload`` is as long as the IPv4 total length says
    payload: bytes     # the payload bytes present (fewer when the frame was cut short)
    clean: bool


def _parse(data: bytes, fcs_error: bool = False) -> _Parsed | None:
    """The headers of a frame whose TCP header is complete and well formed, or None."""
    try:
        frame = parse_frame(data)
        return _Parsed(frame, frame.payload, frame.ip.checksum_ok and frame.tcp.checksum_ok
                       and not fcs_error)
    except ProtocolError:
        pass
    # Cut short? Parse it as if it were complete; the headers must all be present.
    ip = 18 if data[12:14] == b"\x81\x00" else 14
    if len(data) < ip + 20:
        return None
    end = ip + int.from_bytes(data[ip + 2:ip + 4], "big")
    if end <= len(data):
        return None
    try:
        frame = parse_frame(data + bytes(end - len(data)))
    except ProtocolError:
        return None
    if frame.payload_offset > len(data):
        return None
    return _Parsed(frame, data[frame.payload_offset:], False)


class StreamTracker:
    """Next expected sequence number per session: an int, None (idle) or "lost" (out of sync)."""

    def __init__(self):
        self.next = {}

    def segment(self, session, frame: bytes, fcs_error: bool = False) -> Segment:
        """Classify a session frame's payload; commit the new state if the frame is clean."""
        p = _parse(frame, fcs_error)
        return self.update(session, p.frame.tcp.seq, p.frame.tcp.flags, len(p.frame.payload),
                           p.clean)

    def update(self, session, seq: int, flags: int, n: int, clean: bool) -> Segment:
        """As :meth:`segment`, from the header: ``n`` is the payload length the IPv4 header says."""
        if flags & TCP_SYN or n == 0:
            kind = Segment.LOST if flags & TCP_SYN and n else Segment.NONE
        else:
            expected = self.next.get(session)
            if not isinstance(expected, int):
                kind = Segment.LOST
            elif seq == expected:
                kind = Segment.NEW
            elif (expected - (seq + n)) % 2**32 < 2**31:
                kind = Segment.RETRANSMIT
            else:
                kind = Segment.LOST
        if clean:
            if flags & TCP_RST:
                self.next[session] = None
            elif flags & TCP_SYN:
                self.next[session] = "lost" if n else (seq + n + 1) % 2**32
            elif kind == Segment.LOST:
                self.next[session] = "lost"
            elif kind == Segment.NEW:
                self.next[session] = (seq + n) % 2**32
            if flags & TCP_FIN and not flags & (TCP_SYN | TCP_RST) and kind != Segment.LOST:
                self.next[session] = None
        return kind


@dataclasses.dataclass(frozen=True)
class Event:
    """One event of the extractor (see the module docstring for each field)."""

    session: int
    from_client: bool
    sb_type: int
    msg_type: int
    length: int
    malformed: str | None
    retransmit: bool
    continued: bool
    type_offset: int
    last_offset: int
    type_seq: int
    room: bool
    fields: dict = dataclasses.field(default_factory=dict)
    # Good events: the fixed part with AppendageLength 0 (the gate never sees the appendage).
    fixed: bytes = dataclasses.field(default=b"", compare=False, repr=False)

    @property
    def digest(self) -> int:
        """The retransmission digest the event carries: :func:`digest` of a good client
        message's fixed part, else 0."""
        return digest(self.fixed) if self.from_client and self.malformed is None else 0

    def message(self):
        """The decoded OUCH record (appendage left out), or ``model.Malformed(reason)``."""
        if self.malformed is not None:
            return model.Malformed(self.malformed)
        return (ouch.decode_client if self.from_client else ouch.decode_server)(self.fixed)


@dataclasses.dataclass
class FrameResult:
    """One frame through the ingress: its session (None: not a session frame), the segment
    kind, the events emitted in frame order, and the frame flags."""

    session: int | None
    segment: Segment
    events: list
    void: bool
    crowded: bool
    unrewritable: bool


@dataclasses.dataclass
class _Framing:
    """Where a session's stream is: the length bytes seen and the packet so far."""

    head: int = 0             # length bytes seen (2: inside the packet)
    length: int = 0           # L
    packet: bytearray = dataclasses.field(default_factory=bytearray)  # from the type byte
    decided: bool = False     # the packet had its event, or needs none
    good: bool = False        # ... and it was good (its appendage is checked at the end)


class IngressModel:
    """The ingress of one port. ``sessions``: index -> (client_ip, client_port, exchange_ip,
    exchange_port), IPs as ints; ``width``: bytes per beat (1 or 8)."""

    def __init__(self, sessions, *, toward_exchange: bool, width: int):
        self.from_client = bool(toward_exchange)
        self.width = width
        self._lookup = {}
        for index, (client_ip, client_port, exchange_ip, exchange_port) in sessions.items():
            client, exchange = (client_ip, client_port), (exchange_ip, exchange_port)
            key = client + exchange if self.from_client else exchange + client
            self._lookup.setdefault(key, index)
        self.tracker = StreamTracker()
        self.saved = {}
        self.counters = dict.fromkeys(COUNTERS, 0)
        direction = "client" if self.from_client else "exchange"
        self._data = ord(DATA_TYPES[direction])
        self._passed = {ord(t) for t in PASS_TYPES[direction]}
        table = ouch.CLIENT_LAYOUTS if self.from_client else ouch.SERVER_LAYOUTS
        self._layouts = {t[0]: layout for t, layout in table.items()}
        self._decode = ouch.decode_client if self.from_client else ouch.decode_server
        self._checked = {}     # OUCH type -> its side and price fields (or None)
        for t, layout in self._layouts.items():
            named = {f.name: f for f in layout.fields}
            self._checked[t] = (named.get("side"), named.get("price"))

    def _count(self, name, n=1):
        self.counters[name] = min(self.counters[name] + n, 2**32 - 1)   # saturating, 32 bits

    def frame(self, data: bytes, fcs_error: bool = False) -> FrameResult:
        """Run one frame through the ingress; return its session, segment, events and flags."""
        p = _parse(bytes(data), fcs_error)
        session = None
        if p is not None:
            ip, tcp = p.frame.ip, p.frame.tcp
            session = self._lookup.get((ip_to_int(ip.src), tcp.src_port, ip_to_int(ip.dst),
                                        tcp.dst_port))
        if session is None:
            return FrameResult(None, Segment.NONE, [], False, False, False)
        tcp = p.frame.tcp
        segment = self.tracker.update(session, tcp.seq, tcp.flags, len(p.frame.payload), p.clean)
        events, crowded = [], False
        if segment in (Segment.NEW, Segment.RETRANSMIT):
            state = _Framing()
            if segment == Segment.NEW:
                state = copy.deepcopy(self.saved.get(session, state))
            state, events, crowded = self._walk(session, state, p, segment)
        if p.clean:
            if tcp.flags & TCP_SYN:
                self.saved[session] = _Framing()
            elif segment == Segment.NEW:
                self.saved[session] = state
        unrewritable = self.from_client and any(e.malformed and not e.room for e in events)
        void = not p.clean or segment == Segment.LOST or crowded or unrewritable
        self._count("events", len(events))
        for e in events:
            if e.malformed:
                self._count(e.malformed)
        for name, flag in (("crowded", crowded), ("unrewritable", unrewritable), ("void", void)):
            self._count(name, flag)
        return FrameResult(session, segment, events, void, crowded, unrewritable)

    def _walk(self, session, st, p, segment):
        """Frame one segment's bytes from state ``st``; return the state after, the events and
        whether the frame is crowded."""
        start = p.frame.payload_offset
        seg_end = start + len(p.frame.payload)      # the segment as the IPv4 header bounds it
        data = p.payload
        events, crowded, last_beat = [], False, None
        type_offset = None      # frame offset of the current packet's type byte, if this frame

        def emit(reason, offset, type_at):
            nonlocal crowded, last_beat
            if offset // self.width == last_beat:
                crowded = True
                return
            last_beat = offset // self.width
            continued = type_at is None
            fields, fixed = {}, b""
            if reason == _GOOD:
                fields, fixed = self._fields(st)
            room = st.length != 0 and not continued and \
                min(st.length - 1, seg_end - type_at - 1) >= 2
            events.append(Event(
                session=session, from_client=self.from_client,
                sb_type=st.packet[0] if st.packet else 0,
                msg_type=st.packet[1] if len(st.packet) > 1 else 0, length=st.length,
                malformed=None if reason == _GOOD else reason,
                retransmit=segment == Segment.RETRANSMIT, continued=continued,
                type_offset=0 if continued else type_at, last_offset=offset,
                type_seq=0 if continued else (p.frame.tcp.seq + type_at - start) % 2**32,
                room=room, fields=fields, fixed=fixed))

        i = 0
        while i < len(data):
            offset = start + i
            if st.head < 2:                                     # a length byte
                st.length = (st.length << 8 | data[i]) if st.head else data[i]
                st.head += 1
                i += 1
                if st.head == 2 and st.length == 0:             # rule 1
                    emit("bad_length", offset, offset)
                    st = _Framing()
                continue
            if st.decided:                                      # the rest of the packet
                take = min(st.length - len(st.packet), len(data) - i)
                st.packet += data[i:i + take]
                i += take
            else:
                pos = len(st.packet)
                st.packet.append(data[i])
                if pos == 0:
                    type_offset = offset
                verdict = self._judge(st, pos, seg_end - offset - 1)
                if verdict is not None:
                    st.decided, st.good = True, verdict == _GOOD
                    if verdict != _PASS:
                        emit(verdict, offset, type_offset)
                i += 1
            if len(st.packet) == st.length:                     # the packet ends
                if st.good:
                    self._check_appendage(st)
                st = _Framing()
        return st, events, crowded

    def _judge(self, st, pos, after):
        """Rules 2-4 at byte ``pos`` of the packet: a reason, _GOOD, _PASS or None (not yet)."""
        n = st.length
        if pos == 0:
            sb_type = st.packet[0]
            if sb_type != self._data and sb_type not in self._passed:
                return "unknown_type"
            if sb_type != self._data:
                return _PASS
            if n == 1:
                return "bad_length"
            if self.from_client and after == 0:
                return "split"
            return None
        layout = self._layouts.get(st.packet[1])
        if pos == 1:
            if layout is None:
                return "unknown_type"
            f = layout.fixed_length
            if n - 1 < f or (layout.appendage_length_field is None and n - 1 != f):
                return "bad_length"
            if self.from_client and after < f - 1:
                return "split"
            return _GOOD if f == 1 else None
        f = layout.fixed_length
        if pos < f:
            return None
        message = st.packet[1:]
        if layout.appendage_length_field is not None and \
                int.from_bytes(message[f - 2:f], "big") != n - 1 - f:
            return "bad_length"
        side, price = self._checked[st.packet[1]]
        if side is not None and chr(message[side.offset]) not in model.SIDES:
            return "bad_field"
        if price is not None and \
                int.from_bytes(message[price.offset:price.end], "big") > OUCH_MAX_PRICE:
            return "bad_field"
        return _GOOD

    def _fields(self, st):
        """A good event's fields, from the host decoder, and the bytes it decoded."""
        layout = self._layouts[st.packet[1]]
        f = layout.fixed_length
        fixed = bytes(st.packet[1:1 + f])
        if layout.appendage_length_field is not None:
            fixed = fixed[:-2] + b"\x00\x00"
        try:
            msg = self._decode(fixed)
        except ProtocolError as exc:
            raise AssertionError(f"{layout.name} decodes with an error ({exc}); the gateware "
                                 "does not check text fields: traffic must be ASCII") from None
        fields = {}
        for field in layout.fields:
            if field.name not in EVENT_FIELDS:
                continue
            if field.name == layout.appendage_length_field:
                fields[field.name] = st.length - 1 - f     # rule 4 made them equal
                continue
            fields[field.name] = field_value(field, getattr(msg, field.name))
        return fields, fixed

    def _check_appendage(self, st):
        layout = self._layouts[st.packet[1]]
        if layout.appendage_length_field is None:
            return
        try:
            ouch.decode_appendage(bytes(st.packet[1 + layout.fixed_length:]))
        except ProtocolError as exc:
            raise AssertionError(f"{layout.name} with a bad TagValue appendage ({exc}): the "
                                 "gateware does not walk TagValues, traffic must not carry "
                                 "bad ones") from None
