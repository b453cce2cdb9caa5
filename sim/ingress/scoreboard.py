"""The ingress scoreboard: what the gateware emits against what the reference extracts.

Both simulators use it (Amaranth's for the unit tests, Verilator's through cocotb for the
bench): they hand it the frames they drive and the raw output words they see, and it compares,
frame by frame, every event field by field and every void flag with
:class:`wiregate.sw.extract.IngressModel`, and the counters with its own tally.
"""

import struct

from amaranth.hdl import Shape
from amaranth.lib import data

from wiregate.hw.ingress.ouch_extract import event_layout, message_beat_layout
from wiregate.hw.stream import LANE_LAYOUT
from wiregate.sim.layouts import unpack
from wiregate.sw.extract import EVENT_FIELDS, MALFORMED, IngressModel, Segment
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.frames import parse_frame

__all__ = ["IngressScoreboard", "parser_errors"]

ETHERTYPE_IPV4, ETHERTYPE_VLAN = 0x0800, 0x8100


def parser_errors(frame: bytes) -> set[str]:
    """The header parser's error flags for a frame of the benches' traffic.

    Knows the frames :mod:`wiregate.sim.traffic` makes (good and damaged TCP frames, frames cut
    short, garbage that is not IPv4); raises ``ValueError`` for anything else rather than guess.
    """
    if len(frame) < 14:
        return {"truncated"}
    ip = 14
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == ETHERTYPE_VLAN:
        if len(frame) < 18:
            return {"truncated"}
        (ethertype,) = struct.unpack_from("!H", frame, 16)
        ip = 18
    if ethertype != ETHERTYPE_IPV4:
        return set()
    if len(frame) < ip + 20:
        return {"truncated"}
    try:
        parsed = parse_frame(frame)
    except ProtocolError:
        (total,) = struct.unpack_from("!H", frame, ip + 2)
        if len(frame) < ip + total:
            return {"truncated"}
        raise ValueError(f"frame of unknown make: {frame[:64].hex()}") from None
    errors = set()
    if not parsed.ip.checksum_ok:
        errors.add("bad_ip_checksum")
    if not parsed.tcp.checksum_ok:
        errors.add("bad_tcp_checksum")
    return errors


def _offset(layout, *path):
    """Bit offset and width of the field at ``path`` inside ``layout``."""
    offset = 0
    shape = layout
    for key in path:
        field = data.Layout.cast(shape)[key]
        offset += field.offset
        shape = field.shape
    if isinstance(shape, data.Layout):
        return offset, shape.size
    return offset, Shape.cast(shape).width


class IngressScoreboard:
    """Expected and observed ingress output, frame by frame.

    Parameters
    ----------
    width : int
    regmap : RegisterMap
    sessions : dict
        Session table, as :func:`wiregate.sim.traffic.generate` returns it.
    toward_exchange : bool
    """

    def __init__(self, width, regmap, sessions, *, toward_exchange):
        self.width = width
        self.model = IngressModel(sessions, toward_exchange=toward_exchange, width=width)
        self.toward_exchange = toward_exchange
        layout = message_beat_layout(width, regmap)
        self._event_layout = event_layout(regmap)
        self._event_at, self._event_bits = _offset(layout, "event")
        self._valid_bit = self._event_at + _offset(self._event_layout, "valid")[0]
        self._void_bit = _offset(layout, "void")[0]
        lanes_at, lanes_bits = _offset(layout, "beat", "beat", "beat", "beat", "lanes")
        lane_bits = lanes_bits // width
        self._ends = [(lanes_at + k * lane_bits + LANE_LAYOUT["last"].offset,
                       lanes_at + k * lane_bits + LANE_LAYOUT["keep"].offset)
                      for k in range(width)]
        self.expected = []
        self.seen = []
        self._events = []
        self.tally = dict.fromkeys(("frames", "truncated", "bad_ip_checksum",
                                    "bad_tcp_checksum", "fragment", "unsupported",
                                    "dropped", "retransmits", "lost"), 0)
        self.messages = 0

    # --- expectation ---------------------------------------------------------------

    def expect(self, frames):
        """Run ``frames`` ``(bytes, fcs_error)`` through the reference, in wire order."""
        for frame, fcs_error in frames:
            result = self.model.frame(frame, fcs_error)
            self.expected.append(([self._model_key(e) for e in result.events],
                                  result.void))
            self.messages += sum(1 for e in result.events if e.malformed is None)
            errors = parser_errors(frame)
            self.tally["frames"] += 1
            for name in errors:
                self.tally[name] += 1
            if self.toward_exchange and (errors or result.session is None):
                self.tally["dropped"] += 1
            self.tally["retransmits"] += result.segment == Segment.RETRANSMIT
            self.tally["lost"] += result.segment == Segment.LOST

    @staticmethod
    def _model_key(e):
        return (e.session, e.from_client, e.sb_type, e.msg_type, e.length, e.malformed,
                e.retransmit, e.continued, e.type_offset, e.last_offset, e.type_seq, e.room,
                tuple(e.fields.get(name, 0) for name in EVENT_FIELDS), e.digest)

    # --- observation ---------------------------------------------------------------

    def observe(self, word: int):
        """One valid output beat of the ingress, as the integer of its payload.

        Returns the event the beat carries (as a dict of its fields), or None.
        """
        event = None
        if word >> self._valid_bit & 1:
            event_word = word >> self._event_at & ((1 << self._event_bits) - 1)
            event = unpack(self._event_layout, event_word)
            self._events.append(self._hw_key(event))
        if any(word >> last & 1 and word >> keep & 1 for last, keep in self._ends):
            self.seen.append((self._events, bool(word >> self._void_bit & 1)))
            self._events = []
        return event

    @staticmethod
    def _hw_key(e):
        bits = [name for k, name in enumerate(MALFORMED) if e["malformed"] >> k & 1]
        malformed = bits[0] if len(bits) == 1 else (tuple(bits) or None)
        return (e["session"], bool(e["from_client"]), e["sb_type"], e["msg_type"],
                e["length"], malformed, bool(e["retransmit"]), bool(e["continued"]),
                e["type_offset"], e["last_offset"], e["type_seq"], bool(e["room"]),
                tuple(e["fields"][name] for name in EVENT_FIELDS), e["digest"])

    # --- verdict -------------------------------------------------------------------

    def mismatches(self, limit=5):
        """Descriptions of the first ``limit`` frames where hardware and reference differ."""
        found = []
        if len(self.seen) != len(self.expected):
            found.append(f"{len(self.seen)} frames came out, {len(self.expected)} went in")
        for number, (seen, expected) in enumerate(zip(self.seen, self.expected,
                                                      strict=False)):
            if seen != expected:
                found.append(f"frame {number}: hardware {seen} != reference {expected}")
                if len(found) >= limit:
                    break
        return found

    def expected_counters(self):
        """Every counter of the ingress as the reference and the bench's own tally have it."""
        return {**self.tally, **self.model.counters}
