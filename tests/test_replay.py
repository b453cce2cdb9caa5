"""``wiregate replay --engine model`` on captures built here with scapy and ``struct``.

The captures are made without the project's frame or OUCH code: Ethernet, IPv4 and TCP are
scapy's, SoupBinTCP and OUCH bytes are packed with ``struct`` from PROTOCOLS.md's tables.
The verdicts are checked against the model driven directly with the messages the test
meant to send (not through the replay's ingress), and against reasons known by
construction; the output pcaps are read back with scapy, checksums recomputed by scapy.
"""

import io
import json
import random
import re
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import EDecimal, rdpcap, wrpcap

from wiregate.sim.capture import Progress
from wiregate.sw.cli import main
from wiregate.sw.limits import RATE_BURST_MAX, load_limits
from wiregate.sw.model import ClientMessage, Commit, ExchangeMessage, Gate, Heartbeat
from wiregate.sw.profiles import PROFILES
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import Reason

LIMITS = "limits/default.yaml"
CLIENT = ("02:00:00:00:01:01", "10.1.0.1", 40001)     # session 0 of limits/default.yaml
EXCHANGE = ("02:00:00:00:00:fe", "10.2.0.1", 15000)
ISN_C, ISN_E = 1_000, 5_000_000


def enter(ref, qty, symbol, price, side=b"B"):
    """An OUCH 5.0 Enter Order (47 bytes), packed from PROTOCOLS.md's layout."""
    return struct.pack(">cIcI8sQccccc14sH", b"O", ref, side, qty, symbol.ljust(8),
                       price, b"0", b"Y", b"A", b"N", b"N", f"C{ref}".encode().ljust(14), 0)


def accepted(ref, qty, symbol, price, side=b"B"):
    """An OUCH 5.0 Order Accepted (64 bytes)."""
    return struct.pack(">cQIcI8sQccQcccc14sH", b"A", 1, ref, side, qty, symbol.ljust(8),
                       price, b"0", b"Y", 77 + ref, b"A", b"N", b"N", b"L",
                       f"C{ref}".encode().ljust(14), 0)


def soup(kind, body):
    return struct.pack(">H", 1 + len(body)) + kind + body


class Capture:
    """One session's two directions as scapy packets with timestamps (``packets``: shared
    with another Capture's, to interleave sessions)."""

    def __init__(self, client=CLIENT, packets=None):
        self.client_end = client
        self.packets = [] if packets is None else packets
        self.seq = {"c": ISN_C, "e": ISN_E}
        self.t = 1_700_000_000.0 + 0.000001 * len(self.packets)

    def _send(self, side, flags, payload=b"", advance=True, checksum=None):
        client = self.client_end
        src, dst = (client, EXCHANGE) if side == "c" else (EXCHANGE, client)
        other = "e" if side == "c" else "c"
        pkt = (Ether(src=src[0], dst=dst[0]) / IP(src=src[1], dst=dst[1])
               / TCP(sport=src[2], dport=dst[2], seq=self.seq[side], ack=self.seq[other],
                     flags=flags, chksum=checksum))
        if payload:
            pkt = pkt / Raw(payload)
        # The packets are in time order: the last one's is the latest.
        self.t = max(self.t, self.packets[-1].time if self.packets else 0) + 0.00001
        pkt.time = self.t
        self.packets.append(pkt)
        if advance:
            self.seq[side] = (self.seq[side] + len(payload) + ("S" in flags)) % 2**32
        return len(self.packets) - 1

    def handshake(self):
        self.seq["c"] -= 1
        self.seq["e"] -= 1
        self._send("c", "S")
        self._send("e", "SA")
        self._send("c", "A")

    def client(self, *messages):
        return self._send("c", "PA", b"".join(soup(b"U", m) for m in messages))

    def exchange(self, *messages):
        return self._send("e", "PA", b"".join(soup(b"S", m) for m in messages))

    def damaged(self, *messages):
        """A client segment whose TCP checksum is wrong: the receiver drops it, the sender
        sends the bytes again (the stream does not move)."""
        good = Ether(bytes(self.packets[self._send("c", "PA", b"".join(
            soup(b"U", m) for m in messages), advance=False)]))
        self.packets[-1][TCP].chksum = good[TCP].chksum ^ 0x5A5A
        return len(self.packets) - 1

    def resend(self, k):
        """Packet ``k`` again (a TCP retransmission)."""
        pkt = self.packets[k].copy()
        self.t += 0.00001
        pkt.time = self.t
        self.packets.append(pkt)
        return len(self.packets) - 1

    def write(self, path):
        wrpcap(str(path), self.packets)
        return str(path)


def replay(tmp_path, capture_path, *extra, out="out", limits=LIMITS):
    out = tmp_path / out
    status = main(["replay", capture_path, "--limits", limits, "--out", str(out), "--json",
                   *extra])
    return status, out


def verdicts(out):
    return [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]


def _checksums_ok(pkt) -> bool:
    fresh = Ether(bytes(pkt))
    del fresh[IP].chksum
    del fresh[TCP].chksum
    again = Ether(bytes(fresh))
    return again[IP].chksum == pkt[IP].chksum and again[TCP].chksum == pkt[TCP].chksum


def test_known_verdicts_and_output(tmp_path, capsys):
    cap = Capture()
    cap.handshake()
    ok = enter(1, 100, b"AAPL", 2_285_000)
    fat = enter(2, 60_000, b"AAPL", 2_285_000)          # above the session's 50,000
    unknown = enter(3, 100, b"ZZZZ", 1_000_000)
    far = enter(4, 100, b"MSFT", 5_000_000)             # $500 against $415.30 +- 3 %
    both = cap.client(ok, fat)
    single = [cap.client(m) for m in (unknown, far)]
    ack = cap.exchange(accepted(1, 100, b"AAPL", 2_285_000))
    status, out = replay(tmp_path, cap.write(tmp_path / "in.pcap"))
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    got = verdicts(out)
    assert [(v["frame_index"], v["user_ref_num"], v["verdict"]) for v in got] == [
        (both, 1, "accept"), (both, 2, "reject"), (single[0], 3, "reject"),
        (single[1], 4, "reject")]
    assert "QUANTITY" in got[1]["reasons"] and got[2]["reasons"] == ["UNKNOWN_SYMBOL"]
    assert got[3]["reasons"] == ["COLLAR"] and got[0]["reasons"] == []
    assert all(v["session"] == 0 and v["msg_type"] == "O" and not v["retransmit"]
               for v in got)
    assert summary["verdicts"] == {"accept": 1, "reject": 3}
    assert summary["reasons"]["COLLAR"] == 1 and summary["mismatches"] == []

    sent = rdpcap(str(tmp_path / "in.pcap"))
    to_exchange = rdpcap(str(out / "to_exchange.pcap"))
    to_client = rdpcap(str(out / "to_client.pcap"))
    client_frames = [k for k, p in enumerate(sent) if p[TCP].sport == CLIENT[2]]
    assert len(to_exchange) == len(client_frames)
    assert [bytes(p) for p in to_client] == [bytes(sent[k]) for k in range(len(sent))
                                             if sent[k][TCP].sport == EXCHANGE[2]]
    assert bytes(to_client[-1]) == bytes(sent[ack])
    for k, pkt in zip(client_frames, to_exchange, strict=True):
        assert _checksums_ok(pkt), f"frame {k}"
        original = bytes(sent[k][Raw].load) if Raw in sent[k] else b""
        payload = bytes(pkt[Raw].load) if Raw in pkt else b""
        assert len(payload) == len(original)
        if k == both:   # the first packet passes untouched, the second is + of its length
            n = len(soup(b"U", ok))
            assert payload[:n] == original[:n]
            assert payload[n + 2:n + 3] == b"+" and payload[n:n + 2] == original[n:n + 2]
            assert payload[n + 5:] == original[n + 5:]
        elif k in single:
            assert payload[2:3] == b"+" and payload[5:] == original[5:]
        else:
            assert bytes(pkt) == bytes(sent[k])


def test_random_orders_match_the_model(tmp_path, capsys):
    """Random Enter Orders, one frame each: the verdict log is the model's, messages
    given to it straight from what the test packed."""
    rng = random.Random(15)
    limits = load_limits(LIMITS)
    symbols = [s.symbol.encode() for s in limits.symbols] + [b"NOPE"]
    cap = Capture()
    cap.handshake()
    full = PROFILES["full"]
    gate = Gate(full.n_sessions, full.n_symbols, full.n_orders, full.n_executions)
    gate.apply(Commit(0, limits))
    gate.apply(Heartbeat(0))
    expected, ref = [], 0
    for _ in range(300):
        ref += rng.choice((1, 1, 1, 0))             # a repeat now and then: DUPLICATE_REF
        body = enter(ref, rng.choice((0, 100, 5_000, 60_000)), rng.choice(symbols),
                     rng.randint(1, 8_000_000), rng.choice((b"B", b"S")))
        index = cap.client(body)
        verdict = gate.apply(ClientMessage(0, 0, ouch.decode_client(body)))
        expected.append((index, ref, "accept" if verdict.accept else "reject",
                         [r.name for r in Reason if verdict.reasons >> r & 1]))
    status, out = replay(tmp_path, cap.write(tmp_path / "in.pcap"))
    assert status == 0
    got = [(v["frame_index"], v["user_ref_num"], v["verdict"], v["reasons"])
           for v in verdicts(out)]
    assert got == expected
    assert any(v == "accept" for _, _, v, _ in got) and any(v == "reject" for _, _, v, _ in got)
    sent = rdpcap(str(tmp_path / "in.pcap"))
    rejected = {index for index, _, v, _ in expected if v == "reject"}
    for pkt, k in zip(rdpcap(str(out / "to_exchange.pcap")),
                      [k for k, p in enumerate(sent) if p[TCP].sport == CLIENT[2]], strict=True):
        assert _checksums_ok(pkt)
        if k in rejected:
            assert len(pkt) == len(sent[k]) and bytes(pkt[Raw].load)[2:3] == b"+"
        else:
            assert bytes(pkt) == bytes(sent[k])
    capsys.readouterr()


def test_midstream_warns_and_assume_start(tmp_path, capsys):
    cap = Capture()         # no handshake: the capture starts in the middle
    cap.exchange(accepted(9, 1, b"AAPL", 2_285_000))
    cap.client(enter(10, 100, b"AAPL", 2_285_000))
    path = cap.write(tmp_path / "in.pcap")
    status, out = replay(tmp_path, path)
    captured = capsys.readouterr()
    assert status == 0
    assert "starts mid-stream at frame 0" in captured.err and "--assume-start" in captured.err
    assert verdicts(out) == []                      # the gateway voided every frame
    assert len(rdpcap(str(out / "to_exchange.pcap"))) == 0
    assert json.loads(captured.out)["gateway_counters"]["stomped"] == 2

    status, out = replay(tmp_path, path, "--assume-start")
    captured = capsys.readouterr()
    assert status == 0 and "replay convenience" in captured.err
    got = verdicts(out)
    assert [(v["frame_index"], v["verdict"]) for v in got] == [(1, "accept")]
    assert [bytes(p) for p in rdpcap(str(out / "to_exchange.pcap"))] == \
        [bytes(cap.packets[1])]        # the assumed SYNs are not output


def test_arp_passes_and_strangers_drop(tmp_path, capsys):
    cap = Capture()
    cap.handshake()
    arp = Ether(src=CLIENT[0], dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=CLIENT[1], pdst=EXCHANGE[1])
    stranger = (Ether(src=CLIENT[0], dst=EXCHANGE[0]) / IP(src="10.9.9.9", dst=EXCHANGE[1])
                / TCP(sport=1234, dport=EXCHANGE[2], flags="PA") / Raw(b"hello"))
    arp.time = stranger.time = cap.t + 1
    cap.packets += [arp, stranger]
    status, out = replay(tmp_path, cap.write(tmp_path / "in.pcap"))
    summary = json.loads(capsys.readouterr().out)
    assert status == 0
    assert summary["gateway_counters"]["dropped_no_session"] == 1
    left = [bytes(p) for p in rdpcap(str(out / "to_exchange.pcap"))]
    assert bytes(arp) in left and bytes(stranger) not in left


def test_bad_inputs(tmp_path, capsys):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all")
    status, _ = replay(tmp_path, str(junk))
    assert status == 2 and "junk.pcap" in capsys.readouterr().err
    status, _ = replay(tmp_path, str(tmp_path / "missing.pcap"))
    assert status == 2 and "no such file" in capsys.readouterr().err
    cap = Capture()
    cap.handshake()
    path = cap.write(tmp_path / "in.pcap")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway:\n  credit: lots\n")
    status = main(["replay", path, "--limits", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and "bad.yaml:2" in err and "problem" in err
    status = main(["replay", path, "--limits", LIMITS, "--out", str(tmp_path / "o"),
                   "--profile", "colorlight-5a75b", "--width", "8"])
    assert status == 2 and "W = 1" in capsys.readouterr().err


@pytest.mark.parametrize("width", [1, 8])
def test_widths_agree_on_simple_traffic(tmp_path, capsys, width):
    cap = Capture()
    cap.handshake()
    cap.client(enter(1, 100, b"AAPL", 2_285_000))
    status, out = replay(tmp_path, cap.write(tmp_path / "in.pcap"), "--width", str(width))
    capsys.readouterr()
    assert status == 0 and [v["verdict"] for v in verdicts(out)] == ["accept"]


def executed(ref, qty, price, match):
    """An OUCH 5.0 Order Executed (36 bytes)."""
    return struct.pack(">cQIIQcQH", b"E", 2, ref, qty, price, b"A", match, 0)


def cancel(ref, qty=0):
    return struct.pack(">cII", b"X", ref, qty)


def mixed_capture(path):
    """Three sessions, interleaved: accepts, rejects of several reasons, a retransmission,
    the exchange's answers, a cancel, a frame with a bad TCP checksum (then sent again), a
    session that starts mid-stream, and ARP. Returns the path, the bad frame's index and the
    index of the frame that sends its bytes again."""
    one = Capture()
    two = Capture(("02:00:00:00:01:02", "10.1.0.2", 40001), one.packets)
    one.handshake()
    two.handshake()
    first = one.client(enter(1, 100, b"AAPL", 2_285_000), enter(2, 60_000, b"AAPL", 2_285_000))
    two.client(enter(5, 200, b"NVDA", 1_354_000))
    one.exchange(accepted(1, 100, b"AAPL", 2_285_000))
    one.resend(first)
    two.client(enter(6, 10, b"ZZZZ", 1_000_000), enter(7, 10, b"MSFT", 9_000_000))
    one.exchange(executed(1, 40, 2_285_000, 901))
    one.client(cancel(1), enter(3, 5_000, b"TSLA", 2_456_000, b"S"))
    two.client(enter(7, 10, b"NVDA", 1_354_000))       # UserRefNum 7 again
    broken = two.damaged(enter(8, 10, b"NVDA", 1_354_000))
    again = two.client(enter(8, 10, b"NVDA", 1_354_000))
    three = Capture(("02:00:00:00:01:03", "10.1.0.3", 40001), one.packets)  # no handshake
    three.client(enter(1, 100, b"AAPL", 2_285_000))
    three.exchange(accepted(1, 100, b"AAPL", 2_285_000))
    arp = Ether(src=CLIENT[0], dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=CLIENT[1], pdst=EXCHANGE[1])
    arp.time = one.t + 0.00001
    one.packets.append(arp)
    return one.write(path), broken, again


def test_void_frame_is_undone(tmp_path, capsys):
    """A frame with a bad checksum is judged (its verdict is due before its end), then
    voided: stomped, and its accepted order withdrawn, so the same bytes sent again are
    accepted, not a DUPLICATE_REF."""
    path, broken, again = mixed_capture(tmp_path / "in.pcap")
    status, out = replay(tmp_path, path, "--assume-start")
    summary = json.loads(capsys.readouterr().out)
    assert status == 0
    # Its bad checksum marks it for drop (counted), though its message was judged.
    assert summary["gateway_counters"]["dropped_no_session"] == 1
    got = {v["frame_index"]: v for v in verdicts(out)}
    assert got[broken]["verdict"] == "accept" and got[broken]["frame_void"]
    assert got[again]["verdict"] == "accept" and not got[again]["frame_void"]
    assert got[again]["user_ref_num"] == got[broken]["user_ref_num"] == 8
    sent = rdpcap(path)
    left = [bytes(p) for p in rdpcap(str(out / "to_exchange.pcap"))]
    assert bytes(sent[broken]) not in left and bytes(sent[again]) in left


@pytest.mark.verilator
@pytest.mark.parametrize("width, profile", [(1, "colorlight-5a75b"), (8, "full")])
def test_gateware_agrees_with_model(tmp_path, capsys, width, profile):
    path, _, _ = mixed_capture(tmp_path / "in.pcap")
    options = ("--width", str(width), "--profile", profile, "--assume-start")
    status, model = replay(tmp_path, path, *options, out="model")
    assert status == 0
    capsys.readouterr()
    status, gateware = replay(tmp_path, path, *options, "--engine", "gateware", out="gw")
    summary = json.loads(capsys.readouterr().out)
    assert status == 0, summary["mismatches"]
    fields = ("frame_index", "session", "msg_type", "user_ref_num", "verdict", "reasons",
              "retransmit", "malformed", "frame_void")
    got = [{k: v[k] for k in fields} for v in verdicts(gateware)]
    assert got == [{k: v[k] for k in fields} for v in verdicts(model)]
    assert {v["verdict"] for v in got} == {"accept", "reject"}
    assert any(v["retransmit"] for v in got) and any(v["frame_void"] for v in got)
    assert any(v["session"] == 2 for v in got)
    for name in ("to_exchange.pcap", "to_client.pcap"):
        assert [(bytes(p), p.time) for p in rdpcap(str(gateware / name))] == \
            [(bytes(p), p.time) for p in rdpcap(str(model / name))]
    figures = json.loads((gateware / "latency.json").read_text())
    latency = figures["first_byte"]
    # Every captured client frame that left: those in the pcap and the stomped one; the
    # core's counter has the SYN --assume-start put before session 2's first segment too.
    assert latency["count"] == len(rdpcap(str(gateware / "to_exchange.pcap"))) + 1
    assert summary["gateway_counters"]["frames_exchange_tx"] == latency["count"] + 1
    assert latency["cycles"]["min"] <= latency["cycles"]["p50"] <= latency["cycles"]["max"]
    assert latency["ns"]["max"] == round(latency["cycles"]["max"] * 1e9 / latency["clock_hz"], 1)
    assert figures["verdict"]["count"] == len(got)
    # The holdback is sized so that every verdict exists before its type byte leaves.
    assert figures["verdict"]["cycles"]["max"] < latency["cycles"]["min"]
    assert (gateware / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    quiet, shown = io.StringIO(), _Terminal()
    for stream in (quiet, shown):
        bar = Progress(1000, stream)
        for done in (256, 512, 1000):
            bar.update(done)
    assert quiet.getvalue() == ""
    assert shown.getvalue().endswith("1000/1000 frames\n") and "\r" in shown.getvalue()


def replace(orig, ref, qty, price):
    """An OUCH 5.0 Replace Order (40 bytes)."""
    return struct.pack(">cIIIQccc14sH", b"U", orig, ref, qty, price, b"0", b"Y", b"N",
                       f"C{ref}".encode().ljust(14), 0)


def replaced(orig, ref, side, qty, symbol, price):
    """An OUCH 5.0 Order Replaced (68 bytes)."""
    return struct.pack(">cQIIcI8sQccQcccc14sH", b"U", 3, orig, ref, side, qty,
                       symbol.ljust(8), price, b"0", b"Y", 77 + ref, b"A", b"N", b"N", b"L",
                       f"C{ref}".encode().ljust(14), 0)


def canceled(ref, qty):
    """An OUCH 5.0 Order Canceled (18 bytes): ``qty`` shares taken off, user requested."""
    return struct.pack(">cQIIc", b"C", 4, ref, qty, b"U")


def price_units(dollars):
    return round(dollars * 10_000)


class TradingDay:
    """A trading day of the four sessions of limits/default.yaml, built with scapy and
    ``struct`` like every capture here.

    Clients send Enter Orders (small, priced inside the collar, on the loaded symbols),
    cancel and replace their resting orders; the exchange answers what reached it (what the
    model, driven straight with the packed messages, accepts): Order Accepted, then a full
    or a partial execution or none, Order Replaced, Order Canceled. Clients cancel when
    many orders rest, so the order tables stay far from full. Now and then an order aims at
    one reject reason (``aims``: reason name -> positions in the verdict log); once,
    three sessions pile up large resting orders until the session's or the gateway's credit
    stops them, then cancel them. ``moved``: positions of the sells of a name that
    cannot be shorted (max_short 0), possible only after an earlier buy of it executed.

    Frames are spaced by the drop copy's pace: ``us_per_record`` microseconds for each
    message in the frame (every message makes one record), at least 1 us.
    """

    SYMBOLS = [b"AAPL", b"MSFT", b"NVDA", b"AMZN", b"GOOGL", b"META", b"TSLA", b"AMD",
               b"INTC", b"NFLX", b"JPM", b"BAC", b"XOM", b"KO", b"SPY", b"QQQ", b"ON"]
    def __init__(self, limits, seed, us_per_record):
        self.rng = random.Random(seed)
        self.limits = load_limits(limits)
        self.reference = {s.symbol.encode(): s.reference_price for s in self.limits.symbols}
        full = PROFILES["full"]
        self.gate = Gate(full.n_sessions, full.n_symbols, full.n_orders, full.n_executions,
                         n_verdicts=full.n_verdicts)
        self.gate.apply(Commit(0, self.limits))
        self.gate.apply(Heartbeat(0))
        packets = []
        self.caps = [Capture(("02:00:00:00:01:%02x" % (k + 1), f"10.1.0.{k + 1}", 40001),
                             packets) for k in range(4)]
        self.packets = packets
        self.us_per_record = us_per_record
        self.clock_us = 0
        self.next_ref = [1] * 4
        self.book = [{} for _ in range(4)]     # what rests at the exchange: ref -> order
        self.expected = []                     # (frame, session, ref, verdict, reasons)
        self.aims = {}
        self.moved = []
        self.match = 0
        self.to_sell = [[] for _ in range(4)]  # sells due once their buy has filled
        for cap in self.caps:
            cap.handshake()
            for k in range(3):
                self._stamp(len(packets) - 3 + k, 10)

    def _stamp(self, index, gap_us):
        self.clock_us += gap_us
        self.packets[index].time = EDecimal(1_700_000_000) + EDecimal(self.clock_us) / 10**6

    def _gap(self, messages):
        return max(1, -(-len(messages) * int(self.us_per_record * 1000) // 1000))

    def client(self, s, messages):
        """Send ``messages`` (body, aim) in one frame of session ``s``; the exchange answers
        what the model accepts, five messages to a frame."""
        index = self.caps[s].client(*(body for body, _ in messages))
        self._stamp(index, self._gap(messages))
        answers = []
        for body, aim in messages:
            msg = ouch.decode_client(body)
            verdict = self.gate.apply(ClientMessage(self.clock_us, s, msg))
            if aim == "MOVED":
                self.moved.append(len(self.expected))
            elif aim not in (None, "FILL"):
                self.aims.setdefault(aim, []).append(len(self.expected))
            self.expected.append((index, s, msg.user_ref_num,
                                  "accept" if verdict.accept else "reject",
                                  [r.name for r in Reason if verdict.reasons >> r & 1]))
            if verdict.accept:
                answers += self._answer(s, msg, aim)
        for k in range(0, len(answers), 5):
            chunk = answers[k:k + 5]
            self._stamp(self.caps[s].exchange(*chunk), self._gap(chunk))
            for body in chunk:
                self.gate.apply(ExchangeMessage(self.clock_us, s, ouch.decode_server(body)))
        return verdict

    def _answer(self, s, msg, aim):
        book, rng = self.book[s], self.rng
        if isinstance(msg, ouch.CancelOrder):
            order = book.pop(msg.user_ref_num)
            return [canceled(msg.user_ref_num, order[2])]
        if isinstance(msg, ouch.ReplaceOrder):
            symbol, side, _, _ = book.pop(msg.orig_user_ref_num)
            book[msg.user_ref_num] = [symbol, side, msg.quantity, msg.price]
            return [replaced(msg.orig_user_ref_num, msg.user_ref_num, side, msg.quantity,
                             symbol, msg.price)]
        ref, qty, price = msg.user_ref_num, msg.quantity, msg.price
        symbol = msg.symbol.encode().rstrip()
        out = [accepted(ref, qty, symbol, price, msg.side.encode())]
        fate = rng.random() if aim is None else 0.0 if aim == "FILL" else 1.0
        if aim == "FILL":
            self.to_sell[s].append((symbol, qty))
        if fate < 0.55:                         # executed: whole, or part and the rest rests
            done = qty if fate < 0.35 or qty == 1 else rng.randint(1, qty - 1)
            self.match += 1
            out.append(executed(ref, done, price, self.match))
            qty -= done
        if qty:
            book[ref] = [symbol, msg.side.encode(), qty, price]
        return out

    def _ref(self, s):
        self.next_ref[s] += 1
        return self.next_ref[s] - 1

    def _price(self, symbol, away=0.01):
        return price_units(round(self.reference[symbol] / 10_000 *
                                 (1 + self.rng.uniform(-away, away)), 2))

    def good_enter(self, s):
        symbol = self.rng.choice(self.SYMBOLS)
        qty = self.rng.randint(1, 20 if s < 3 else 6)
        return enter(self._ref(s), qty, symbol, self._price(symbol),
                     self.rng.choice((b"B", b"S"))), None

    def aimed(self, s, reason):
        """An Enter Order that breaks one limit of every session (and maybe another)."""
        price = self._price
        return {
            "QUANTITY": lambda: enter(self._ref(s), 6_000, b"MSFT", price(b"MSFT")),
            "NOTIONAL": lambda: enter(self._ref(s), 7_000, b"AMD", price(b"AMD")),
            "COLLAR": lambda: enter(self._ref(s), 10, b"AAPL",
                                    price_units(228.50 * 1.08)),
            "UNKNOWN_SYMBOL": lambda: enter(self._ref(s), 10, b"ZZZZ", 1_000_000),
            "RESTRICTED": lambda: enter(self._ref(s), 10, b"SIRI", price(b"SIRI")),
            "POSITION": lambda: enter(self._ref(s), 50, b"AMC", price(b"AMC"), b"S"),
            "DUPLICATE_REF": lambda: enter(max(1, self.next_ref[s] - 3), 10, b"KO", price(b"KO")),
        }[reason](), reason

    def credit_squeeze(self):
        """Large resting buys of SPY in sessions 0, 1, 2 until credit stops each, then
        every one cancelled."""
        size = {0: 4_300, 1: 4_300, 2: 1_700}        # just under each session's notional
        for s in (0, 1, 2):
            for _ in range(40):
                body = enter(self._ref(s), size[s], b"SPY", self.reference[b"SPY"])
                if not self.client(s, [(body, "CREDIT")]).accept:
                    break
        for s in (0, 1, 2):
            big = [ref for ref, order in self.book[s].items() if order[0] == b"SPY"
                   and order[2] >= 1_000]
            for k in range(0, len(big), 5):
                self.client(s, [(cancel(ref), None) for ref in big[k:k + 5]])

    def day(self, orders):
        rng = self.rng
        squeeze_at, sent = orders // 3, 0
        while sent < orders:
            if squeeze_at is not None and sent >= squeeze_at:
                self.credit_squeeze()
                squeeze_at = None
                continue
            s = rng.randrange(4)
            book, messages, touched = self.book[s], [], set()
            for _ in range(rng.randint(1, 5)):
                live = [ref for ref in book if ref not in touched]
                r = rng.random()
                if r < 0.01:
                    messages.append(self.aimed(s, rng.choice(AIMED)))
                elif r < 0.02:      # a name that cannot be shorted: bought, filled, sold
                    messages.append((enter(self._ref(s), 10, b"GME", self._price(b"GME")),
                                     "FILL"))
                elif self.to_sell[s]:
                    symbol, qty = self.to_sell[s].pop()
                    messages.append((enter(self._ref(s), qty, symbol, self._price(symbol),
                                           b"S"), "MOVED"))
                elif live and r < (0.6 if len(live) > 24 else 0.09):
                    ref = rng.choice(live)
                    touched.add(ref)
                    messages.append((cancel(ref), None))
                elif live and r < 0.15:
                    ref = rng.choice(live)
                    touched.add(ref)
                    symbol, _, qty, _ = book[ref]
                    messages.append((replace(ref, self._ref(s), max(1, qty + rng.randint(
                        -2, 2)), self._price(symbol)), None))
                else:
                    messages.append(self.good_enter(s))
            self.client(s, messages)
            sent += len(messages)
        return self

    def write(self, path):
        wrpcap(str(path), self.packets)
        return str(path)


# Microseconds of capture time a message: the drop copy's pace (an 88-byte record a
# message, 88 cycles of 8 ns at W = 1, 11 of 6.4 ns at W = 8), so it keeps up and no more
# cycles are simulated than it needs (frames are at least 1 us apart).
US_PER_RECORD = {1: 0.75, 8: 0.1}
AIMED = ("QUANTITY", "NOTIONAL", "COLLAR", "UNKNOWN_SYMBOL", "RESTRICTED", "POSITION",
         "DUPLICATE_REF")


def no_rate_limit(tmp_path):
    """limits/default.yaml with every session's order rate unlimited in practice.

    The gateware engine's clock is the core's: its verdicts come a few microseconds after
    the capture's times (the commit before the first frame, the frame's wire time), so a
    verdict at the edge of the rate bucket can differ from the model engine's, which judges
    at the capture's times (the gateware engine checks every record against the model at
    the core's times). Without the rate check, nothing in the capture depends on time."""
    text, opened = re.subn(r"rate: \{[^}]*\}", f"rate: {{burst: {RATE_BURST_MAX}, refill: 1us, "
                           "trip_after: 0}", Path(LIMITS).read_text())
    assert opened == len(load_limits(LIMITS).sessions)
    path = tmp_path / "limits.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.verilator
@pytest.mark.parametrize("width, profile", [(1, "colorlight-5a75b"), (8, "full")])
def test_gateware_20k_orders(tmp_path, capsys, width, profile):
    """A trading day of 20,000 client orders through the core's Verilator model: no
    mismatch (the replay checks every drop-copy record against the model), the verdict log
    equal to the model engine's but for the times and to the model's driven straight with
    the packed messages, both output pcaps byte-identical to the model engine's; most
    orders accepted, and each order aimed at a reason rejected with it."""
    limits = no_rate_limit(tmp_path)
    day = TradingDay(limits, 1, US_PER_RECORD[width]).day(20_000)
    path = day.write(tmp_path / "in.pcap")
    options = ("--width", str(width), "--profile", profile)
    status, model = replay(tmp_path, path, *options, out="model", limits=limits)
    assert status == 0
    capsys.readouterr()
    status, gateware = replay(tmp_path, path, *options, "--engine", "gateware", out="gw",
                              limits=limits)
    summary = json.loads(capsys.readouterr().out)
    assert status == 0, summary["mismatches"]
    got, want = verdicts(gateware), verdicts(model)
    assert [(v["frame_index"], v["session"], v["user_ref_num"], v["verdict"], v["reasons"])
            for v in want] == day.expected
    # Every field but the time: the gateware engine stamps a verdict with its record's.
    assert [v | {"t_us": 0} for v in got] == [v | {"t_us": 0} for v in want]
    for name in ("to_exchange.pcap", "to_client.pcap"):
        assert [(bytes(p), p.time) for p in rdpcap(str(gateware / name))] == \
            [(bytes(p), p.time) for p in rdpcap(str(model / name))]
    accepts = sum(v["verdict"] == "accept" for v in got)
    assert summary["gateway_counters"]["orders_accepted"] == accepts
    # A trading day: most orders pass, and the table of open orders never fills.
    assert len(got) >= 20_000 and accepts > 0.95 * len(got)
    assert summary["reasons"].get("CAPACITY", 0) < 0.01 * len(got)
    for reason in AIMED:
        assert day.aims[reason], reason
        assert all(reason in got[k]["reasons"] for k in day.aims[reason]), reason
    squeezed = {r for k in day.aims["CREDIT"] for r in got[k]["reasons"]}
    assert {"CREDIT_SESSION", "CREDIT_GATEWAY"} <= squeezed
    # Positions moved: a sell of a name with max_short 0 passes only after a buy filled.
    assert day.moved and all(got[k]["verdict"] == "accept" for k in day.moved)
    assert {v["session"] for v in got} == {0, 1, 2, 3}
