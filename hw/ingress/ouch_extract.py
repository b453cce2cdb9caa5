"""OUCH 5.0 extraction: one typed event per SoupBin data packet, as early as it can be judged.

The rules are :mod:`wiregate.sw.extract`'s (the reference this block is tested against):
an event is emitted on the byte that settles it, which is the last byte of the message's
fixed part (its *last needed byte*), or earlier when the packet is already known to be
malformed (unknown type, impossible length, or, from a client, a message whose fixed part
does not fit in the segment that holds its type byte). Byte offsets of every field come from
the host codec's layout table (:data:`wiregate.sw.proto.ouch.CLIENT_LAYOUTS` /
:data:`~wiregate.sw.proto.ouch.SERVER_LAYOUTS`); nothing is retyped here.

From a client, the event also carries the retransmission digest of the message's fixed part
(:func:`wiregate.sw.extract.digest`, a CRC-32). At W = 1 the CRC is worked out a byte at a
time as the message passes, in the lane's state like a captured field. At W = 8 a beat holds
eight of its bytes at any alignment, so the fixed bytes that are no event field are captured
as the event fields are, and each type's CRC, a linear function of those captures, is taken
with XOR trees on the registered event, after the lane-to-lane chain.

At W = 8 one beat can settle more than one packet (two Account Queries are four bytes
apart). The event stream carries one event per beat, so a frame where that happens is
*crowded*: its later events in that beat are not emitted and the frame is void (fail
closed: the risk core commits nothing from it and stomps it toward the exchange).
"""

import zlib

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.extract import (
    COUNTERS,
    DATA_TYPES,
    DIGEST_BITS,
    DIGEST_EXTRA,
    DIGESTED,
    EVENT_FIELDS,
    MALFORMED,
    PASS_TYPES,
    digest_extra,
    digest_length,
)
from wiregate.sw.limits import OUCH_MAX_PRICE
from wiregate.sw.model import SIDES
from wiregate.sw.proto.ouch import CLIENT_LAYOUTS, SERVER_LAYOUTS
from wiregate.sw.regmap import RegisterMap

from ..counters import count_event
from ..stream import check_width, frame_end
from .soupbin import Chain, Role, Save, framed_beat_layout
from .tcp_tracker import Segment

__all__ = ["OuchExtractor", "event_layout", "message_beat_layout"]

OFFSET_BITS = 16
PRICE_BITS = 32      # a valid OUCH price fits in 31 bits; a larger one is malformed


def _field_sizes():
    """Bytes of each event field, the same in every layout that has it."""
    sizes = {}
    for layout in (*CLIENT_LAYOUTS.values(), *SERVER_LAYOUTS.values()):
        for f in layout.fields:
            if f.name in EVENT_FIELDS and sizes.setdefault(f.name, f.size) != f.size:
                raise ValueError(f"field {f.name} has two sizes in the OUCH layouts")
    return {name: sizes[name] for name in EVENT_FIELDS}


FIELD_SIZES = _field_sizes()
CRC_POLY = 0xEDB88320    # CRC-32 (IEEE 802.3, zlib), bits reflected


def _crc_terms():
    """Per bit of the register after a byte: the register's bits and the byte's bits it is
    the XOR of (the step is linear in both)."""
    bits = [{("crc", i)} for i in range(DIGEST_BITS)]
    for j in range(8):
        feedback = bits[0] ^ {("byte", j)}
        bits = [*bits[1:], set()]
        bits = [b ^ feedback if CRC_POLY >> i & 1 else b for i, b in enumerate(bits)]
    return bits


def _crc_step(held, byte):
    """The complement of the CRC-32 register after ``byte``, from ``held``, the complement
    before it. Holding the complement makes a cleared field the CRC's start (all ones) and
    the held value, at the end, zlib's CRC (the register's complement)."""
    # complement(step(complement(h))) = step(h) ^ complement(step(all ones, zero byte)):
    # a bit of the constant is 1 when its register terms are even in number.
    parts = {"crc": held, "byte": byte}
    return Cat(Cat(parts[name][i] for name, i in sorted(terms)).xor()
               ^ (sum(name == "crc" for name, _ in terms) % 2 == 0)
               for terms in _crc_terms())


def _digest_sources(layout, fields, extra):
    """Per digested byte of a layout past the type byte: its captured byte (an event field's,
    or ``extra``'s, big-endian), or None where it is known to be zero (a good price's high
    bytes, which the 32-bit price field does not hold)."""
    sources = []
    for at in range(1, digest_length(layout)):
        fl = next(fl for fl in layout.fields if fl.offset <= at < fl.end)
        if fl.name in EVENT_FIELDS:
            value, lsb = fields[fl.name], 8 * (fl.end - 1 - at)
        else:
            value, lsb = extra, 8 * (DIGEST_EXTRA - 1 - digest_extra(layout).index(at))
        sources.append(value[lsb:lsb + 8] if lsb < len(value) else None)
    return sources


def _digest_of_captures(m, msg_type, fields, extra):
    """The digest of a good message of type ``msg_type`` (a DIGESTED type's), from its
    captured bytes: per type, each CRC bit is a constant (the CRC of the type byte and zeros)
    XOR the parity of the captured bits whose flip flips it."""
    digest = Signal(DIGEST_BITS, name="digest_of_captures")
    with m.Switch(msg_type):
        for t in DIGESTED:
            layout = CLIENT_LAYOUTS[t]
            sources = _digest_sources(layout, fields, extra)
            zeros = bytearray(t + bytes(len(sources)))
            base = zlib.crc32(zeros)
            terms = [[] for _ in range(DIGEST_BITS)]
            for at, byte in enumerate(sources, start=1):
                for j in range(8 if byte is not None else 0):
                    zeros[at] ^= 1 << j
                    flips = zlib.crc32(zeros) ^ base
                    zeros[at] ^= 1 << j
                    for i in range(DIGEST_BITS):
                        if flips >> i & 1:
                            terms[i].append(byte[j])
            with m.Case(t[0]):
                m.d.comb += digest.eq(Cat(Cat(bits).xor() ^ (base >> i & 1)
                                          for i, bits in enumerate(terms)))
    return digest


def _below(value, bound):
    """``value < bound`` for a constant ``bound``: the high bits all zero and a compare of
    the low ones, not a carry chain as long as ``value`` (the stage-1 length compares were
    the ingress's longest path)."""
    low = max(bound.bit_length(), 1)
    if low >= len(value):
        return value < bound
    return (value[low:] == 0) & (value[:low] < bound)


def _of_type(msg_type, types):
    return Cat(msg_type == t[0] for t in types).any()


def event_layout(regmap: RegisterMap) -> data.StructLayout:
    """One extracted message (see :class:`wiregate.sw.extract.Event` for each field)."""
    fields = {name: 8 * size for name, size in FIELD_SIZES.items()}
    fields["price"] = PRICE_BITS
    return data.StructLayout({
        "valid": 1,
        "from_client": 1,
        "session": range(regmap.n_sessions),
        "sb_type": 8,
        "msg_type": 8,
        "length": 16,
        "malformed": len(MALFORMED),   # one bit set at most, in MALFORMED order
        "retransmit": 1,
        "continued": 1,
        "room": 1,
        "type_offset": OFFSET_BITS,
        "last_offset": OFFSET_BITS,
        "type_seq": 32,
        "fields": data.StructLayout(fields),   # zero unless the message is good and has them
        "digest": DIGEST_BITS,     # zero unless a good client message of a DIGESTED type
    })


def message_beat_layout(width: int, regmap: RegisterMap) -> data.StructLayout:
    """A framed beat with the event it settles, and whether its frame is void."""
    return data.StructLayout({
        "beat": framed_beat_layout(width, regmap),
        "event": event_layout(regmap),
        "void": 1,        # on the beat holding the frame's last byte
    })


class OuchExtractor(wiring.Component):
    """Extract OUCH 5.0 messages of one direction into events.

    Parameters
    ----------
    width : int
        Bytes per beat.
    regmap : RegisterMap
        Gives the number of sessions.
    toward_exchange : bool
        Client messages (in SoupBin ``U`` packets, the segment rule applies) or exchange
        messages (in ``S`` packets, which may span segments: their captured fields are
        kept per session).

    Attributes
    ----------
    i : In(stream)
        :func:`wiregate.hw.ingress.soupbin.framed_beat_layout` beats.
    o : Out(stream)
        :func:`message_beat_layout` beats, :attr:`latency` cycles later.
    count_<name> : Out(32)
        ``events``, one per reason in :data:`~wiregate.sw.extract.MALFORMED`, and the frames
        ``crowded``, ``unrewritable`` and ``void`` (saturating).

    Latency
    -------
    :attr:`latency` (three) cycles: the input beat is registered with what each of its bytes
    tells on its own (stage 1), the lane chain settles the event and checks its fixed part
    as it passes (stage 2), then the checks become reasons, the fields are gated, the
    digest is taken and the frame's verdicts (stage 3). The
    event rides on the output beat that holds its last needed byte; the counters follow a
    cycle later.
    """

    latency = 3

    def __init__(self, width, regmap, *, toward_exchange):
        self._width = check_width(width)
        self._regmap = regmap
        self._client = bool(toward_exchange)
        members = {
            "i": In(stream.Signature(framed_beat_layout(width, regmap), always_ready=True)),
            "o": Out(stream.Signature(message_beat_layout(width, regmap), always_ready=True)),
        }
        for name in COUNTERS:
            members[f"count_{name}"] = Out(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        width = self._width
        client = self._client
        n = self._regmap.n_sessions

        layouts = CLIENT_LAYOUTS if client else SERVER_LAYOUTS
        types = list(layouts)
        # The lanes settle events without the digest, added after the output register (a
        # field left undriven would be a constant in a combinational process, which
        # Verilator never evaluates). It is the last field: the register zero-extends.
        full_event = event_layout(self._regmap)
        lane_event = data.StructLayout({name: fl.shape for name, fl in full_event
                                        if name != "digest"})
        assert full_event["digest"].offset == lane_event.size
        direction = "client" if client else "exchange"
        data_type = ord(DATA_TYPES[direction])
        pass_types = [ord(t) for t in PASS_TYPES[direction]]

        # The packet state carried from byte to byte (and, for the exchange direction,
        # from segment to segment: its message may span them). From a client, the digest:
        # at W = 1 its CRC so far (``crc``), at W = 8 the fixed bytes it needs beyond the
        # event fields, captured as they are (``extra``).
        # ``kind`` is the message type one-hot (zero until a data packet's type byte, and for
        # an unknown type). Beside the captured fields, the checks of the fixed part as its
        # bytes pass (``checks``): the appendage length is not the one the packet length
        # gives, the side is not a side, the price so far is above the largest valid one
        # (``price_gt``) or equal to it (``price_eq``).
        serial = client and width == 1      # the digest worked out a byte at a time
        sizes = {**FIELD_SIZES, **({"extra": DIGEST_EXTRA} if client and not serial else {})}
        capture = {name: 8 * size for name, size in sizes.items()}
        if serial:
            capture["crc"] = DIGEST_BITS
        capture["checks"] = data.StructLayout({"app_bad": 1, "side_bad": 1, "price_gt": 1,
                                               "price_eq": 1})
        carried = {"sb_type": 8, "msg_type": 8, "done": 1, "data": 1, "kind": len(types)}
        if not client:
            carried.update(capture)
        carried_layout = data.StructLayout(carried)
        local_layout = data.StructLayout({
            "carried": carried_layout,
            "here": 1,            # the type byte was in this frame
            "type_offset": OFFSET_BITS,
            "type_seq": 32,
            "type_room": 1,       # two payload bytes or more after the type byte's segment
            **({"fields": data.StructLayout(capture)} if client else {}),
        })

        # Stage 2's event: the fields as captured, gated in stage 3, with the checks of its
        # fixed part (``app_bad``: the appendage length; ``field_bad``: the side or price).
        lane2_event = data.StructLayout({**{name: fl.shape for name, fl in lane_event},
                                         "check": 1, "app_bad": 1,
                                         "field_bad": 1,
                                         **({"crc": DIGEST_BITS} if serial else
                                            {"extra": 8 * DIGEST_EXTRA} if client else {})})

        # Stage 1: the input beat registered, with what each lane's byte tells on its own
        # (its type decoded, its packet length compared with every layout's), and the
        # session's saved state picked, so that stage 2's lane chain only selects.
        fixed = [layouts[t].fixed_length for t in types]
        app_types = [t for t in types if layouts[t].appendage_length_field is not None]
        # ``start``: the byte starts a packet; ``early``: it settles the packet on its own
        # (a zero length, or the SoupBin type byte), for the reasons ``early_reason``;
        # ``p1_*``: as the message type byte, what it settles (``p1_pending``: nothing yet).
        # Per message type, as a byte of that type's fixed part: ``app_bad``, an appendage
        # length byte other than the packet length gives; ``side_bad``, a side byte that is no
        # side; ``price``, a price byte (``price_first``: its first), compared with the
        # largest valid price's byte (``price_gt``, ``price_eq``).
        reason_layout = data.StructLayout({name: 1 for name in MALFORMED})
        per_type = ("at_fixed", "app_bad", "side_bad", "price", "price_first", "price_gt",
                    "price_eq")
        # The body positions a field or digest byte is captured at (``at_pos``: the lane's
        # byte is the body's byte there), decoded here so that stage 2's capture enables
        # take one bit, not a compare of the position, per byte.
        captured = sorted({fl.offset + 1 + b for layout in layouts.values()
                           for fl in layout.fields if fl.name in EVENT_FIELDS
                           for b in range(fl.size)} |
                          ({at + 1 for t in DIGESTED for at in digest_extra(layouts[t])}
                           if client and not serial else set()))
        fact_layout = data.StructLayout({
            "offset": OFFSET_BITS, "type_seq": 32, "left_ge2": 1, "len_ge3": 1,
            "at_pos": len(captured),
            "start": 1, "pos0": 1, "pos1": 1, "sb_data": 1, "kind": len(types),
            "early": 1, "early_reason": reason_layout,
            "p1_pending": 1, "p1_reason": reason_layout,
            **{name: len(types) for name in per_type},
            # For the CRC: the type byte is a DIGESTED type's; per type, a digested byte
            # past it.
            **({"digest_type": 1, "digested": len(types)} if serial else {}),
        })
        max_price = OUCH_MAX_PRICE.to_bytes(FIELD_SIZES["price"], "big")
        side_bytes = [ord(side) for side in sorted(SIDES)]

        def field_at(t, name):
            """The SoupBin position of field ``name``'s first byte in type ``t``, or None."""
            return next((fl.offset + 1 for fl in layouts[t].fields if fl.name == name), None)
        framed_in = self.i.payload
        beat_in = framed_in.beat.beat.beat
        hdr_in = beat_in.header
        payload_end = hdr_in.payload_start + hdr_in.payload_len
        left_ahead = Signal(OFFSET_BITS)
        seq_ahead = Signal(32)
        facts = []
        for k, lane in enumerate(beat_in.lanes):
            f = framed_in.framing[k]
            byte = lane.data
            offset = Signal(OFFSET_BITS, name=f"lane{k}_offset")
            left = Signal(OFFSET_BITS, name=f"lane{k}_left")   # payload bytes after this one
            seq = Signal(32, name=f"lane{k}_seq")    # the byte's TCP sequence number
            m.d.comb += offset.eq(beat_in.offset + k)
            if width == 1:
                # Worked out a beat ahead, for the next byte, off the byte's path: at W = 1
                # the beat before a payload byte is in its frame and has the header record
                # (the last TCP header byte has it, from ``header.done``; see the framer).
                m.d.comb += [left.eq(left_ahead), seq.eq(seq_ahead)]
                with m.If(self.i.valid):
                    m.d.sync += [left_ahead.eq(payload_end - offset - 2),
                                 seq_ahead.eq(hdr_in.seq + offset + 1 - hdr_in.payload_start)]
            else:
                m.d.comb += [left.eq(payload_end - offset - 1),
                             seq.eq(hdr_in.seq + offset - hdr_in.payload_start)]
            length = f.length
            body = f.role == Role.BODY
            kind = [byte == ord(t) for t in types]
            # Each type's fixed-part checks, as far as this byte is one of its checked fields.
            checks = {name: [Const(0)] * len(types) for name in per_type[1:]}
            side_ok = Cat(byte == side for side in side_bytes).any()
            for j, t in enumerate(types):
                if t in app_types:
                    at = field_at(t, layouts[t].appendage_length_field)
                    expect = Signal(16, name=f"lane{k}_expect_{t.decode()}")
                    m.d.comb += expect.eq(length - (1 + layouts[t].fixed_length))
                    checks["app_bad"][j] = body & (((f.pos == at) & (byte != expect[8:])) |
                                                   ((f.pos == at + 1) & (byte != expect[:8])))
                at = field_at(t, "side")
                if at is not None:
                    checks["side_bad"][j] = body & (f.pos == at) & ~side_ok
                at = field_at(t, "price")
                if at is not None:
                    on = [body & (f.pos == at + b) for b in range(len(max_price))]
                    checks["price"][j] = Cat(on).any()
                    checks["price_first"][j] = on[0]
                    checks["price_gt"][j] = Cat(on[b] & (byte > v)
                                                for b, v in enumerate(max_price)).any()
                    checks["price_eq"][j] = Cat(on[b] & (byte == v)
                                                for b, v in enumerate(max_price)).any()
            # As the type byte (pos 1), what the settle rules of stage 2 need of its layout.
            # Against constants, without ``length - 1``: the message is ``length - 1`` bytes.
            bad_length = [_below(length, size + 1) if t in app_types else length != size + 1
                          for t, size in zip(types, fixed, strict=True)]
            split = [_below(left, size - 1) if client else Const(0) for size in fixed]
            pos0 = body & (f.pos == 0)
            sb_data = byte == data_type
            sb_known = sb_data | Cat(byte == t for t in pass_types).any()
            len_lo = f.role == Role.LEN_LO
            # The settle rules of stage 2 as far as this byte decides them, in their order.
            early = {"bad_length": (len_lo & (length == 0)) |
                     (pos0 & sb_data & (length == 1)),
                     "unknown_type": pos0 & ~sb_known,
                     "split": pos0 & sb_data & (length != 1) & (left == 0)
                     if client else Const(0)}
            # As the type byte, each reason (and ``p1_pending``: a good type byte whose
            # message settles later) is an OR over the types of what the type's one-hot
            # ``kind`` bit selects, not one reason gated by the one before it (that chain
            # was the whole ingress's longest path, seed 1).
            good = [kind[j] & ~bad_length[j] & ~split[j] for j in range(len(types))]
            p1 = {"unknown_type": Cat(kind) == 0,
                  "bad_length": Cat(kind[j] & bad_length[j] for j in range(len(types))).any(),
                  "split": Cat(kind[j] & ~bad_length[j] & split[j]
                               for j in range(len(types))).any()}
            p1_pending = Cat(good[j] for j, size in enumerate(fixed) if size != 1).any()
            fact = Signal(fact_layout, name=f"lane{k}_facts")
            m.d.sync += [
                fact.offset.eq(offset),
                fact.type_seq.eq(seq),
                fact.left_ge2.eq(~_below(left, 2)),
                fact.len_ge3.eq(~_below(length, 3)),
                fact.start.eq(len_lo | pos0),
                fact.pos0.eq(pos0),
                fact.pos1.eq(body & (f.pos == 1)),
                fact.sb_data.eq(sb_data),
                fact.kind.eq(Cat(kind)),
                fact.early.eq(Cat(early.values()).any()),
                *(fact.early_reason[name].eq(early.get(name, 0)) for name in MALFORMED),
                fact.p1_pending.eq(p1_pending),
                *(fact.p1_reason[name].eq(p1.get(name, 0)) for name in MALFORMED),
                *(fact[name].eq(Cat(bits)) for name, bits in checks.items()),
                fact.at_fixed.eq(Cat(body & (f.pos == size) if size >= 2 else Const(0)
                                     for size in fixed)),
                fact.at_pos.eq(Cat(body & (f.pos == at) for at in captured)),
            ]
            if serial:
                m.d.sync += [
                    fact.digest_type.eq(Cat(kind[types.index(t)] for t in DIGESTED).any()),
                    fact.digested.eq(Cat(
                        body & ~pos0 & (f.pos != 1) & _below(f.pos, digest_length(layouts[t]) + 1)
                        if t in DIGESTED else Const(0) for t in types)),
                ]
            facts.append(fact)
        framed = Signal.like(framed_in)
        valid = Signal()
        # Each session's saved state is a row of LUT RAM, not flip-flops: toward the
        # clients it holds every field captured so far (a message may span segments), and
        # the RAM's read port is the session select.
        m.submodules.saved = saved = Memory(shape=carried_layout, depth=n, init=[],
                                            attrs={"ram_style": "distributed"})
        saved_read = saved.read_port(domain="comb")
        saved_pick = Signal(carried_layout)
        m.d.comb += saved_read.addr.eq(framed_in.beat.beat.session)
        m.d.sync += [
            framed.eq(framed_in),
            valid.eq(self.i.valid),
            saved_pick.eq(saved_read.data),
        ]

        # Stage 2: the lane chain, on the registered beat.
        tracked = framed.beat
        beat = tracked.beat.beat
        lanes = beat.lanes
        current = Signal(local_layout)
        state = Signal(local_layout)
        m.d.comb += state.eq(current)
        with m.Switch(framed.chain):
            with m.Case(Chain.SAVED):
                # Picked in stage 1: the session's next frame loads its state no sooner than
                # 54 bytes (7 beats) after the write below.
                m.d.comb += [state.eq(0), state.carried.eq(saved_pick)]
            with m.Case(Chain.FRESH):
                m.d.comb += state.eq(0)

        def fields_of(st):
            return st.carried if not client else st.fields

        emits, events = [], []
        for k, lane in enumerate(lanes):
            f = framed.framing[k]
            fact = facts[k]
            byte = lane.data
            body = f.role == Role.BODY
            pos0, pos1 = fact.pos0, fact.pos1

            nxt = Signal(local_layout, name=f"lane{k}_state")
            m.d.comb += nxt.eq(state)
            packet_start = fact.start
            with m.If(packet_start):
                m.d.comb += [
                    nxt.carried.sb_type.eq(Mux(pos0, byte, 0)),
                    nxt.carried.msg_type.eq(0),
                    nxt.carried.done.eq(0),
                    nxt.carried.data.eq(pos0 & fact.sb_data),
                    nxt.carried.kind.eq(0),
                    nxt.here.eq(1),
                    nxt.type_offset.eq(fact.offset),
                    nxt.type_seq.eq(fact.type_seq),
                    nxt.type_room.eq(fact.left_ge2),
                ]
            with m.If(pos1):
                m.d.comb += nxt.carried.msg_type.eq(byte)
                with m.If(state.carried.data):
                    m.d.comb += nxt.carried.kind.eq(fact.kind)
            kind = nxt.carried.kind
            # Past the type byte (a field's byte, the fixed part's last), the kind is the
            # state's: read there so, no select of the type byte sits in those paths.
            kind_before = state.carried.kind

            # The message's fields, captured by the layout its kind names.
            writes = {}
            for t, layout in layouts.items():
                is_t = kind_before[types.index(t)]
                for fl in layout.fields:
                    if fl.name in EVENT_FIELDS:
                        for b in range(fl.size):
                            hit = is_t & fact.at_pos[captured.index(fl.offset + 1 + b)]
                            writes.setdefault((fl.name, b), []).append(hit)
                if client and not serial and t in DIGESTED:
                    for b, at in enumerate(digest_extra(layout)):
                        writes.setdefault(("extra", b), []).append(
                            is_t & fact.at_pos[captured.index(at + 1)])
            for (name, b), hits in writes.items():
                lsb = 8 * (sizes[name] - 1 - b)      # big-endian on the wire
                byte_k = fields_of(nxt)[name][lsb:lsb + 8]
                with m.If(Cat(hits).any()):
                    m.d.comb += byte_k.eq(byte)
            got = fields_of(nxt)

            # The fixed part's checks, as its bytes pass (by the state's kind: past the type).
            hit = {name: (kind_before & fact[name]).any() for name in per_type[1:]}
            if serial:
                # From the type byte to the last digested one (the CRC starts cleared: see
                # _crc_step).
                with m.If((pos1 & state.carried.data & fact.digest_type) |
                          (kind_before & fact.digested).any()):
                    m.d.comb += got.crc.eq(_crc_step(fields_of(state).crc, byte))
            # A packet's captures start cleared: a field (or extra byte) its layout has not
            # is zero, without a select by its type.
            with m.If(packet_start):
                m.d.comb += [got[name].eq(0) for name in capture]
            with m.If(hit["app_bad"]):
                m.d.comb += got.checks.app_bad.eq(1)
            with m.If(hit["side_bad"]):
                m.d.comb += got.checks.side_bad.eq(1)
            with m.If(hit["price"] & (hit["price_first"] | fields_of(state).checks.price_eq)):
                m.d.comb += [got.checks.price_gt.eq(hit["price_gt"]),
                             got.checks.price_eq.eq(hit["price_eq"])]

            # Where this packet is settled, and how.
            reason = {name: Signal(name=f"lane{k}_{name}") for name in MALFORMED}
            settle = Signal(name=f"lane{k}_settle")
            check = Signal(name=f"lane{k}_check")
            settled_before = state.carried.done & ~packet_start
            with m.If(~settled_before):
                with m.If(fact.early):
                    m.d.comb += settle.eq(1)
                    m.d.comb += [reason[name].eq(fact.early_reason[name]) for name in MALFORMED]
                with m.Elif(pos1 & state.carried.data):
                    # The type byte of a data packet (its kind is ``fact.kind``).
                    m.d.comb += settle.eq(~fact.p1_pending)
                    m.d.comb += [reason[name].eq(fact.p1_reason[name]) for name in MALFORMED]
                with m.Elif((kind_before & fact.at_fixed) != 0):
                    # At the last byte of the fixed part: its fields are checked in stage 3.
                    m.d.comb += [settle.eq(1), check.eq(1)]
            with m.If(settle):
                m.d.comb += nxt.carried.done.eq(1)

            event = Signal(lane2_event, name=f"lane{k}_event")
            malformed = Cat(reason[name] for name in MALFORMED)
            room = nxt.here & body & fact.len_ge3 & nxt.type_room
            m.d.comb += [
                event.valid.eq(settle),
                event.session.eq(tracked.beat.session),
                event.sb_type.eq(nxt.carried.sb_type),
                event.msg_type.eq(nxt.carried.msg_type),
                event.length.eq(f.length),
                event.malformed.eq(malformed),
                event.retransmit.eq(tracked.segment == Segment.RETRANSMIT),
                event.continued.eq(~nxt.here),
                event.room.eq(room),
                event.type_offset.eq(Mux(nxt.here, nxt.type_offset, 0)),
                event.last_offset.eq(fact.offset),
                event.type_seq.eq(Mux(nxt.here, nxt.type_seq, 0)),
                *(event.fields[name].eq(got[name]) for name in EVENT_FIELDS),
                event.check.eq(check),
                event.app_bad.eq(got.checks.app_bad),
                event.field_bad.eq(got.checks.side_bad | got.checks.price_gt),
                *([event.crc.eq(got.crc)] if serial else
                  [event.extra.eq(got.extra)] if client else []),
            ]
            emits.append(settle)
            events.append(event)
            state = nxt

        with m.If(valid):
            m.d.sync += current.eq(state)
        # Written a cycle later, from registers: the session's next frame loads it no sooner
        # than its first payload byte, at least 54 bytes (7 beats) after this frame's end.
        # The state to save is ``current``'s then: the frame's last beat, which has
        # ``save``, is a valid beat, so ``current`` took the state after it.
        save_1 = Signal(Save)
        session_1 = Signal.like(tracked.beat.session)
        m.d.sync += [save_1.eq(framed.save), session_1.eq(tracked.beat.session)]
        saved_write = saved.write_port()
        m.d.comb += [
            saved_write.addr.eq(session_1),
            saved_write.data.eq(Mux(save_1 == Save.CHAIN, current.carried.as_value(), 0)),
            saved_write.en.eq((save_1 == Save.CHAIN) | (save_1 == Save.FRESH)),
        ]

        # One event per beat: the first; any other makes the frame crowded. Registered whole
        # whether or not a lane settles (lane 0's then, not valid), so that the settle logic
        # reaches only the register's ``valid``; the event is cleared after stage 3.
        event_2 = Signal(lane2_event)
        m.d.comb += event_2.eq(events[0])
        for k in reversed(range(width)):
            with m.If(emits[k]):
                m.d.comb += event_2.eq(events[k])
        if client:
            # Driven here, not per lane: a constant bit in a combinational process is never
            # evaluated by Verilator (an ``always @*`` with nothing to be sensitive to).
            m.d.comb += event_2.from_client.eq(Cat(emits).any())
        framed_3 = Signal.like(framed)
        valid_3 = Signal()
        settled_3 = Signal(lane2_event)
        crowded_3 = Signal()
        m.d.sync += [
            framed_3.eq(framed),
            valid_3.eq(valid),
            settled_3.eq(event_2),
            settled_3.valid.eq(valid & event_2.valid),
            crowded_3.eq(sum(emits) > 1 if width > 1 else Const(0)),
        ]

        # Stage 3: the fixed part's checks made reasons, the event's fields gated, the frame's
        # verdicts, on stage 2's registered event.
        tracked = framed_3.beat
        beat = tracked.beat.beat
        lanes = beat.lanes
        fields = settled_3.fields
        late = {name: Signal(name=f"late_{name}") for name in ("bad_length", "bad_field")}
        with m.If(settled_3.check):
            with m.If(settled_3.app_bad):
                m.d.comb += late["bad_length"].eq(1)
            with m.Elif(settled_3.field_bad):
                m.d.comb += late["bad_field"].eq(1)
        event = Signal(lane_event)
        m.d.comb += event.eq(settled_3.as_value()[:lane_event.size])
        for name in late:
            bit = MALFORMED.index(name)
            m.d.comb += event.malformed[bit].eq(settled_3.malformed[bit] | late[name])
        good = event.valid & (event.malformed == 0)
        with m.If(~good):
            m.d.comb += event.fields.eq(0)

        last, bad_fcs = frame_end(lanes)
        crowded_now = crowded_3
        unrewritable_now = Const(0)
        if client:
            unrewritable_now = event.valid & (event.malformed != 0) & ~event.room

        # Frame-level verdicts, sticky from the frame's first beat to its last.
        frame_start = lanes[0].keep & lanes[0].first
        crowded = Signal()
        unrewritable = Signal()
        crowded_frame = crowded_now | (crowded & ~frame_start)
        unrewritable_frame = unrewritable_now | (unrewritable & ~frame_start)
        with m.If(valid_3):
            m.d.sync += [crowded.eq(crowded_frame), unrewritable.eq(unrewritable_frame)]
        ends = valid_3 & last
        void = ends & tracked.beat.hit & (
            (beat.errors != 0) | bad_fcs | (tracked.segment == Segment.LOST) |
            crowded_frame | unrewritable_frame)

        o = self.o.payload
        settled = Signal(full_event)
        crowded_end = Signal()
        unrewritable_end = Signal()
        hit_end = ends & tracked.beat.hit
        m.d.sync += [
            self.o.valid.eq(valid_3),
            o.beat.eq(framed_3),
            settled.eq(Mux(event.valid, event.as_value(), 0)),
            o.void.eq(void),
            crowded_end.eq(hit_end & crowded_frame),
            unrewritable_end.eq(hit_end & unrewritable_frame),
        ]
        m.d.comb += o.event.eq(settled)
        if client:
            digest = Signal(DIGEST_BITS, name="digest_out")
            digested = good & _of_type(settled_3.msg_type, DIGESTED)
            if serial:
                m.d.sync += digest.eq(Mux(digested, settled_3.crc, 0))
            else:
                # Beside the event's register, from stage 2's fields (the event's own are
                # also cleared unless it is good, which only the digest's zero depends on),
                # so that the late reasons do not lead into the XOR trees.
                m.d.sync += digest.eq(Mux(digested, _digest_of_captures(
                    m, settled_3.msg_type, fields, settled_3.extra), 0))
            m.d.comb += o.event.digest.eq(digest)

        # Counted from the output registers, a cycle after the verdicts.
        count_event(m, self.count_events, settled.valid)
        for bit, name in enumerate(MALFORMED):
            count_event(m, getattr(self, f"count_{name}"), settled.malformed[bit])
        count_event(m, self.count_crowded, crowded_end)
        count_event(m, self.count_unrewritable, unrewritable_end)
        count_event(m, self.count_void, o.void)
        return m
