"""The ingress reference (sw/extract.py), one hand-worked frame sequence per rule, and the
traffic generator's coverage (sim/traffic.py).

Frames here are untagged with 20-byte IPv4 and TCP headers, so the TCP payload starts at frame
offset 54 and a segment's first SoupBin type byte is at 56. Expected events are written out
from struct-built bytes, never computed by the model."""

import collections
import random
import struct

import pytest

from wiregate.sim.traffic import generate
from wiregate.sw import model
from wiregate.sw.extract import (
    MALFORMED,
    Event,
    FrameResult,
    IngressModel,
    Segment,
    digest,
)
from wiregate.sw.limits import OUCH_MAX_PRICE
from wiregate.sw.proto import ouch
from wiregate.sw.proto.frames import build_frame, ip_to_int

P = 54                       # frame offset of the first payload byte
ISN = 5000                   # the SYN's sequence number; payload starts at ISN + 1
CLIENT = ("02:00:00:00:00:01", "10.1.0.1", 40001)
EXCHANGE = ("02:00:00:00:00:02", "10.2.0.1", 15000)
SESSIONS = {3: (ip_to_int("10.1.0.1"), 40001, ip_to_int("10.2.0.1"), 15000)}
U, S = ord("U"), ord("S")
AAPL = int.from_bytes(b"AAPL    ", "big")


def frame(payload, seq, *, client=True, flags="PA", src=None):
    (smac, sip, sport), (dmac, dip, dport) = (CLIENT, EXCHANGE) if client else (EXCHANGE, CLIENT)
    if src is not None:
        sip, sport = src
    return build_frame(payload, src_mac=smac, dst_mac=dmac, src_ip=sip, dst_ip=dip,
                       src_port=sport, dst_port=dport, seq=seq, flags=flags)


def ingress(client=True, width=1, isn=ISN):
    """A model whose session 3 has just seen its SYN: the next byte is ``isn + 1``."""
    m = IngressModel(SESSIONS, toward_exchange=client, width=width)
    r = m.frame(frame(b"", isn, client=client, flags="S"))
    assert (r.session, r.segment, r.events, r.void) == (3, Segment.NONE, [], False)
    return m


def packet(body, sb_type=b"U"):
    return struct.pack(">H", 1 + len(body)) + sb_type + body


def enter(ref=7, side=b"B", qty=100, price=1_500_000, appendage=b"", appendage_length=None):
    if appendage_length is None:
        appendage_length = len(appendage)
    return struct.pack(">cIcI8sQccccc14sH", b"O", ref, side, qty, b"AAPL    ", price, b"0",
                       b"Y", b"A", b"N", b"N", b"CL1".ljust(14), appendage_length) + appendage


def cancel(ref=9, qty=0):
    return struct.pack(">cII", b"X", ref, qty)


def modify(ref=9, side=b"S", qty=50):
    return struct.pack(">cIcI", b"M", ref, side, qty)


def executed(ref=7, qty=40, price=1_500_100, match=123456789):
    return struct.pack(">cQIIQcQH", b"E", 1_000_000_000, ref, qty, price, b"A", match, 0)


def system_event(code=b"S"):
    return struct.pack(">cQc", b"S", 42, code)


def ev(type_offset, last_offset, length, *, sb_type=U, msg_type=0, malformed=None, seq=ISN + 1,
       room=True, fields=None, retransmit=False, continued=False, client=True):
    """The expected event; ``seq`` is the sequence number of the segment's first byte."""
    return Event(session=3, from_client=client, sb_type=sb_type, msg_type=msg_type,
                 length=length, malformed=malformed, retransmit=retransmit, continued=continued,
                 type_offset=0 if continued else type_offset, last_offset=last_offset,
                 type_seq=0 if continued else (seq + type_offset - P) % 2**32, room=room,
                 fields=fields or {})


ENTER_FIELDS = dict(user_ref_num=7, side=ord("B"), quantity=100, symbol=AAPL, price=1_500_000,
                    time_in_force=ord("0"), appendage_length=0)
CANCEL_FIELDS = dict(user_ref_num=9, quantity=0)
MODIFY_FIELDS = dict(user_ref_num=9, side=ord("S"), quantity=50)


def test_good_enter_order_and_its_record():
    m = ingress()
    r = m.frame(frame(packet(enter()), ISN + 1))
    # type byte at 56, last needed byte (pos 47) at 103
    assert r.events == [ev(56, 103, 48, msg_type=ord("O"), fields=ENTER_FIELDS)]
    assert (r.session, r.segment, r.void, r.crowded, r.unrewritable) == \
        (3, Segment.NEW, False, False, False)
    assert r.events[0].message() == ouch.EnterOrder(7, "B", 100, "AAPL", 1_500_000, "0", "Y",
                                                    "A", "N", "N", "CL1")
    assert m.counters == dict(events=1, unknown_type=0, bad_length=0, bad_field=0, split=0,
                              crowded=0, unrewritable=0, void=0)


def test_appendage_is_not_walked_and_left_out_of_the_record():
    m = ingress()
    tag = bytes((5, 2)) + b"FIRM"                      # len 5 counts the tag and 4 value bytes
    r = m.frame(frame(packet(enter(appendage=tag)), ISN + 1))
    assert r.events == [ev(56, 103, 54, msg_type=ord("O"),
                           fields={**ENTER_FIELDS, "appendage_length": 6})]
    assert r.events[0].message().appendage == ()


def replace_order(orig=7, ref=8, qty=100, price=1_500_000):
    return struct.pack(">cIIIQccc14sH", b"U", orig, ref, qty, price, b"0", b"Y", b"N",
                       b"CL2".ljust(14), 0)


@pytest.mark.parametrize(("body", "skip"), [(enter(), (45, 46)), (replace_order(), (38, 39)),
                                            (modify(), ())], ids=["enter", "replace", "modify"])
def test_digest_covers_every_fixed_byte_but_appendage_length(body, skip):
    base = digest(body)
    for at in range(1, len(body)):
        for bit in range(8):
            changed = bytearray(body)
            changed[at] ^= 1 << bit
            assert (digest(changed) == base) == (at in skip), (at, bit)
    assert digest(body + b"\x05\x02FIRM") == base          # nor does the appendage


def test_events_carry_the_digest_of_good_digested_client_messages():
    m = ingress()
    tag = bytes((5, 2)) + b"FIRM"
    payload = (packet(enter(appendage=tag)) + packet(replace_order()) + packet(modify())
               + packet(cancel()) + packet(enter(side=b"X")))
    r = m.frame(frame(payload, ISN + 1))
    assert [e.digest for e in r.events] == [digest(enter()), digest(replace_order()),
                                            digest(modify()), 0, 0]
    assert len({digest(enter()), digest(replace_order()), digest(modify())}) == 3
    x = ingress(client=False)
    e, = x.frame(frame(packet(executed(), b"S"), ISN + 1, client=False)).events
    assert e.malformed is None and e.digest == 0


def test_several_packets_per_segment():
    m = ingress()
    payload = (packet(b"", b"R") + packet(cancel()) + packet(modify()) + packet(b"hi", b"+")
               + packet(cancel(ref=10, qty=5)))
    r = m.frame(frame(payload, ISN + 1))
    # R: 54-56; X: length 57-58, type 59, pos 9 at 68; M: type 71, pos 10 at 81;
    # debug: 82-86; X: type 89, pos 9 at 98.
    assert r.events == [ev(59, 68, 10, msg_type=ord("X"), fields=CANCEL_FIELDS),
                        ev(71, 81, 11, msg_type=ord("M"), fields=MODIFY_FIELDS),
                        ev(89, 98, 10, msg_type=ord("X"), fields=dict(user_ref_num=10,
                                                                      quantity=5))]


def test_client_packet_split_inside_its_fixed_part():
    m = ingress()
    data = packet(enter()) + packet(cancel())
    first = m.frame(frame(data[:20], ISN + 1))
    # pos 1 (57) is followed by 16 bytes of its segment, the fixed part needs 46.
    assert first.events == [ev(56, 57, 48, msg_type=ord("O"), malformed="split")]
    assert not first.void                                    # room: 17 bytes after the type
    second = m.frame(frame(data[20:], ISN + 21))
    # the rest of the Enter (30 bytes) says nothing; the Cancel's type is at 54 + 30 + 2
    assert second.events == [ev(86, 95, 10, msg_type=ord("X"), seq=ISN + 21,
                                fields=CANCEL_FIELDS)]
    assert m.counters["split"] == 1 and m.counters["events"] == 2


def test_client_packet_split_between_its_length_bytes_and_after_its_fixed_part():
    m = ingress()
    tag = bytes((5, 2)) + b"FIRM"
    data = packet(enter(appendage=tag)) + packet(cancel())
    assert m.frame(frame(data[:1], ISN + 1)).events == []
    # low length byte at 54, type at 55, pos 47 at 102; segment ends after pos 49
    r = m.frame(frame(data[1:52], ISN + 2))
    assert r.events == [ev(55, 102, 54, msg_type=ord("O"), seq=ISN + 2,
                           fields={**ENTER_FIELDS, "appendage_length": 6})]
    r = m.frame(frame(data[52:], ISN + 53))   # 4 appendage bytes, then the Cancel
    assert r.events == [ev(60, 69, 10, msg_type=ord("X"), seq=ISN + 53, fields=CANCEL_FIELDS)]


def test_client_split_at_the_type_byte_makes_the_frame_unrewritable():
    m = ingress()
    data = packet(cancel()) + packet(cancel())
    r = m.frame(frame(data[:15], ISN + 1))    # the second packet's type byte ends the segment
    assert r.events == [ev(56, 65, 10, msg_type=ord("X"), fields=CANCEL_FIELDS),
                        ev(68, 68, 10, malformed="split", room=False)]
    assert r.unrewritable and r.void and not r.crowded
    assert m.frame(frame(data[15:], ISN + 16)).events == []


@pytest.mark.parametrize("after, room", [(2, True), (1, False)])
def test_room_needs_two_bytes_after_the_type_byte(after, room):
    m = ingress()
    r = m.frame(frame(packet(cancel())[:3 + after], ISN + 1))
    # pos 1 (57) is short of the fixed part either way; room counts the bytes after the type
    assert r.events == [ev(56, 57, 10, msg_type=ord("X"), malformed="split", room=room)]
    assert r.unrewritable is not room


def test_good_event_without_room_is_rewritable():
    m = ingress()
    r = m.frame(frame(packet(b"Q"), ISN + 1))    # Account Query: 1 byte after the type
    assert r.events == [ev(56, 57, 2, msg_type=ord("Q"), room=False)]
    assert not r.unrewritable and not r.void


@pytest.mark.parametrize("body, sb_type, expected", [
    # unknown SoupBin type: at pos 0
    (b"ab", b"Z", ev(56, 56, 3, sb_type=ord("Z"), malformed="unknown_type")),
    # unknown OUCH type: at pos 1
    (b"Zab", b"U", ev(56, 57, 4, msg_type=ord("Z"), malformed="unknown_type")),
    # L - 1 < F
    (cancel()[:5], b"U", ev(56, 57, 6, msg_type=ord("X"), malformed="bad_length")),
    # L - 1 > F, no appendage
    (cancel() + b"!", b"U", ev(56, 57, 11, msg_type=ord("X"), malformed="bad_length")),
    # AppendageLength says 3, nothing follows: at pos F
    (enter(appendage_length=3), b"U", ev(56, 103, 48, msg_type=ord("O"),
                                         malformed="bad_length")),
    # a side not in B/S/T/E
    (modify(side=b"X"), b"U", ev(56, 66, 11, msg_type=ord("M"), malformed="bad_field")),
    # a price above OUCH_MAX_PRICE
    (enter(price=OUCH_MAX_PRICE + 1), b"U", ev(56, 103, 48, msg_type=ord("O"),
                                              malformed="bad_field")),
])
def test_malformed_client_packets(body, sb_type, expected):
    m = ingress()
    r = m.frame(frame(packet(body, sb_type), ISN + 1))
    assert r.events == [expected]
    assert r.events[0].message() == model.Malformed(expected.malformed)
    assert m.counters[expected.malformed] == 1 and not r.void


def test_price_at_the_maximum_is_good():
    r = ingress().frame(frame(packet(enter(price=OUCH_MAX_PRICE)), ISN + 1))
    assert r.events == [ev(56, 103, 48, msg_type=ord("O"),
                           fields={**ENTER_FIELDS, "price": OUCH_MAX_PRICE})]


def test_zero_length():
    m = ingress()
    r = m.frame(frame(b"\x00\x00" + packet(cancel()), ISN + 1))
    # L == 0 at its low length byte (55), no type byte; the next packet's type is at 58
    assert r.events == [ev(55, 55, 0, sb_type=0, malformed="bad_length", room=False),
                        ev(58, 67, 10, msg_type=ord("X"), fields=CANCEL_FIELDS)]
    assert r.unrewritable and r.void


def test_length_one_data_packet_even_at_the_segment_end():
    m = ingress()
    r = m.frame(frame(packet(cancel()) + packet(b""), ISN + 1))
    # the U at 68 is the segment's last byte, but bad_length comes before split
    assert r.events == [ev(56, 65, 10, msg_type=ord("X"), fields=CANCEL_FIELDS),
                        ev(68, 68, 1, malformed="bad_length", room=False)]
    assert r.unrewritable and m.counters["split"] == 0


def test_exchange_types():
    m = ingress(client=False)
    payload = (packet(b"", b"H") + packet(b"", b"U") + packet(b"A" + b" " * 29, b"L")
               + packet(b"", b"S"))
    r = m.frame(frame(payload, ISN + 1, client=False))
    # H passes; U and L are client types: unknown; S with L == 1: bad_length
    assert r.events == [ev(59, 59, 1, sb_type=U, malformed="unknown_type", room=False,
                           client=False),
                        ev(62, 62, 31, sb_type=ord("L"), malformed="unknown_type",
                           client=False),
                        ev(95, 95, 1, sb_type=S, malformed="bad_length", room=False,
                           client=False)]
    assert not r.unrewritable and not r.void          # the exchange side is never rewritten


def test_exchange_message_spanning_two_segments_is_continued():
    m = ingress(client=False)
    data = packet(executed(), b"S")                   # 39 bytes, pos 36 is the last
    first = m.frame(frame(data[:20], ISN + 1, client=False))
    assert first.events == [] and not first.void     # no split rule toward the clients
    second = m.frame(frame(data[20:], ISN + 21, client=False))
    assert second.events == [ev(0, 54 + 18, 37, sb_type=S, msg_type=ord("E"), continued=True,
                                room=False, client=False,
                                fields=dict(user_ref_num=7, quantity=40, price=1_500_100,
                                            match_number=123456789, appendage_length=0))]
    assert second.events[0].message() == ouch.OrderExecuted(1_000_000_000, 7, 40, 1_500_100,
                                                            "A", 123456789)


def test_retransmission_parsed_fresh_and_saves_nothing():
    m = ingress(client=False)
    data = packet(system_event(), b"S") + packet(executed(), b"S")     # 13 + 39 bytes
    assert m.frame(frame(data[:13], ISN + 1, client=False)).events == [
        ev(56, 66, 11, sb_type=S, msg_type=ord("S"), client=False)]
    assert m.frame(frame(data[13:33], ISN + 14, client=False)).events == []   # mid-Executed
    # A retransmission of the first segment is parsed from a packet boundary...
    r = m.frame(frame(data[:13], ISN + 1, client=False))
    assert r.segment == Segment.RETRANSMIT
    assert r.events == [ev(56, 66, 11, sb_type=S, msg_type=ord("S"), retransmit=True,
                           client=False)]
    # ...one starting mid-packet as if a packet started there: L = 0x2553, type "E"...
    r = m.frame(frame(data[14:33], ISN + 15, client=False))
    assert r.segment == Segment.RETRANSMIT
    assert r.events == [ev(56, 56, 0x2553, sb_type=ord("E"), malformed="unknown_type",
                           seq=ISN + 15, retransmit=True, client=False)]
    # ...and neither moved the saved state: the Executed finishes where it was.
    r = m.frame(frame(data[33:], ISN + 34, client=False))
    assert [(e.msg_type, e.continued, e.last_offset) for e in r.events] == \
        [(ord("E"), True, 54 + 18)]


@pytest.mark.parametrize("damage", ["tcp_checksum", "fcs", "truncated"])
def test_state_not_saved_on_a_bad_frame(damage):
    m = ingress(client=False)
    data = packet(executed(), b"S") + packet(system_event(), b"S")
    assert m.frame(frame(data[:20], ISN + 1, client=False)).events == []
    good = frame(data[20:], ISN + 21, client=False)
    bad, fcs_error = bytearray(good), damage == "fcs"
    if damage == "tcp_checksum":
        bad[14 + 20 + 16] ^= 0x01
    elif damage == "truncated":
        bad = bad[:P + 25]                # ends after the S packet's type byte (75)
    continued = ev(0, 72, 37, sb_type=S, msg_type=ord("E"), continued=True, room=False,
                   client=False, fields=dict(user_ref_num=7, quantity=40, price=1_500_100,
                                             match_number=123456789, appendage_length=0))
    system = ev(75, 85, 11, sb_type=S, msg_type=ord("S"), seq=ISN + 21, client=False)
    r = m.frame(bytes(bad), fcs_error)
    # parsed (events emitted, the frame is void), state not saved
    assert r.segment == Segment.NEW and r.void
    assert r.events == ([continued] if damage == "truncated" else [continued, system])
    r = m.frame(good)
    assert r.segment == Segment.NEW and not r.void and r.events == [continued, system]
    assert m.counters["void"] == 1


def test_bad_frame_starting_a_packet_is_not_saved():
    m = ingress()
    bad = bytearray(frame(packet(cancel())[:6], ISN + 1))
    bad[14 + 10] ^= 0x80                              # IPv4 checksum
    r = m.frame(bytes(bad))
    assert r.void and r.events == [ev(56, 57, 10, msg_type=ord("X"), malformed="split")]
    r = m.frame(frame(packet(cancel()), ISN + 1))    # parsed from the boundary again
    assert r.events == [ev(56, 65, 10, msg_type=ord("X"), fields=CANCEL_FIELDS)]


def test_syn_resets_framing():
    m = ingress(client=False)
    assert m.frame(frame(packet(executed(), b"S")[:20], ISN + 1, client=False)).events == []
    assert m.frame(frame(b"", 90_000, client=False, flags="SA")).segment == Segment.NONE
    r = m.frame(frame(packet(system_event(), b"S"), 90_001, client=False))
    assert r.events == [ev(56, 66, 11, sb_type=S, msg_type=ord("S"), seq=90_001,
                           client=False)]


def test_lost_segments_are_void_and_not_parsed():
    m = ingress()
    r = m.frame(frame(packet(cancel()), ISN + 13))     # 12 bytes missing
    assert (r.segment, r.events, r.void) == (Segment.LOST, [], True)
    r = m.frame(frame(packet(cancel()), ISN + 1))      # lost until a SYN
    assert (r.segment, r.events, r.void) == (Segment.LOST, [], True)
    assert m.counters["void"] == 2 and m.counters["events"] == 0


@pytest.mark.parametrize("fcs_error", [False, True])
def test_frames_of_no_session_are_never_void(fcs_error):
    m = ingress()
    other_port = frame(packet(cancel()), ISN + 1, src=("10.1.0.1", 40002))
    cut_in_headers = frame(packet(cancel()), ISN + 1)[:P - 1]
    for data in (other_port, cut_in_headers, bytes(60), b"\x01" * 10):
        assert m.frame(data, fcs_error) == FrameResult(None, Segment.NONE, [], False, False,
                                                       False)
    assert m.counters == dict.fromkeys(m.counters, 0)
    assert m.frame(frame(packet(cancel()), ISN + 1)).events    # the stream did not move


@pytest.mark.parametrize("width, expected", [
    (1, [57, 61, 65]),
    (8, [57, 65]),       # 57 and 61 are both in beat 7
])
def test_crowding(width, expected):
    m = ingress(width=width)
    r = m.frame(frame(packet(b"Q") * 3, ISN + 1))
    assert [e.last_offset for e in r.events] == expected
    assert r.crowded is (width == 8) and r.void is (width == 8)
    assert m.counters["crowded"] == (width == 8) and m.counters["events"] == len(expected)


def test_type_seq_wraps():
    m = ingress(isn=2**32 - 2)                             # payload starts at 2**32 - 1
    data = packet(cancel()) + packet(cancel())
    r = m.frame(frame(data, 2**32 - 1))
    assert [e.type_seq for e in r.events] == [1, 13]


def test_traffic_covers_every_event_and_reason():
    seen = {}
    for client in (True, False):
        frames, table = generate(random.Random(7), toward_exchange=client, n_messages=6000)
        assert generate(random.Random(7), toward_exchange=client, n_messages=6000) == \
            (frames, table)
        m = IngressModel(table, toward_exchange=client, width=8)
        kinds = collections.Counter()
        for data, fcs_error in frames:
            r = m.frame(data, fcs_error)
            kinds.update(e.malformed or bytes([e.msg_type]) for e in r.events)
            kinds[r.segment] += 1
            kinds["continued"] += any(e.continued for e in r.events)
        seen[client] = (kinds, m.counters)
    layouts = {True: ouch.CLIENT_LAYOUTS, False: ouch.SERVER_LAYOUTS}
    for client, (kinds, counters) in seen.items():
        assert set(layouts[client]) <= set(kinds), client
        reasons = MALFORMED if client else MALFORMED[:3]
        assert all(kinds[r] for r in reasons), (client, kinds)
        assert kinds[Segment.RETRANSMIT] and kinds[Segment.LOST], client
        good = sum(kinds[t] for t in layouts[client])
        assert good > 0.85 * counters["events"], (client, kinds)
        assert counters["void"] and counters["crowded"], (client, counters)
    assert seen[True][1]["unrewritable"] and seen[False][0]["continued"]
    assert seen[False][1]["split"] == 0 and seen[False][1]["unrewritable"] == 0
