"""Random OUCH traffic as frames for the ingress benches: one direction, several sessions.

:func:`generate` builds a seeded, interleaved stream of frames ``(bytes, fcs_error)`` with
plain ``struct`` builders (:class:`~wiregate.sw.proto.frames.TcpFlow`), mostly valid order flow
plus every kind of trouble the ingress must judge. Each kind of trouble has a rate in
:data:`RATES` (a probability per generator step unless said otherwise):

- ``appendage``: an Enter/Replace (or an exchange message with an appendage) carries TagValues;
- ``soupbin``: a SoupBin packet without OUCH (login, heartbeat, logout, debug, end of session);
- ``pack``: one more SoupBin packet in the same segment (geometric);
- ``split``: the segment ends inside its last packet, cut uniformly over the packet's bytes;
- ``malformed``: an unknown SoupBin or OUCH type, a bad length (L=0, L=1, too short, too long,
  AppendageLength off), a bad side or a price above OUCH_MAX_PRICE;
- ``queries``: (client) a run of 2 to 4 Account Queries back to back;
- ``retransmit``: stream bytes sent again, from a packet start;
- ``gap``: a segment never delivered (the session goes LOST), ``reconnect``: per step of a
  lost session, a new connection (SYN) on the same 4-tuple;
- ``bad_checksum``, ``fcs_error``, ``truncated``: a damaged copy of a segment, then the
  intact one; ``ack``: a segment without payload;
- ``garbage``: random bytes; ``stray``: a valid OUCH segment of no session;
- ``vlan``, ``timestamps``: per connection, an 802.1Q tag and the TCP timestamps option.

The traffic never carries bad TagValue elements or non-ASCII text in a valid message's fixed
part (the gateware checks neither; :class:`wiregate.sw.extract.IngressModel` asserts so).
"""

import random
import string
import struct
import typing

from wiregate.sw.limits import OUCH_MAX_PRICE
from wiregate.sw.proto import ouch, soupbin
from wiregate.sw.proto.frames import Peer, TcpFlow, ip_to_int

__all__ = ["EXCHANGE", "RATES", "clients", "generate"]

EXCHANGE = Peer("02:00:00:00:00:02", "10.2.0.1", 15000)
RATES = dict(appendage=0.2, soupbin=0.08, pack=0.4, split=0.15, malformed=0.04, queries=0.01,
             retransmit=0.04, gap=0.004, reconnect=0.25, bad_checksum=0.01, fcs_error=0.01,
             truncated=0.01, ack=0.02, garbage=0.01, stray=0.01, vlan=0.5, timestamps=0.5)
SYMBOLS = ("AAPL", "MSFT", "A", "BRK A", "ZVZZT", "QQQ", "SPY", "GOOGL")
_CHARS = {"side": "BSTE", "time_in_force": "0356E", "order_state": "LD", "display": "YNA",
          "capacity": "APR", "intermarket_sweep": "YN", "cross_type": "NOCH"}
_CLIENT = {cls.TYPE: cls for cls in typing.get_args(ouch.ClientMessage)}
_SERVER = {cls.TYPE: cls for cls in typing.get_args(ouch.ServerMessage)}
_CLIENT_WEIGHTS = {b"O": 40, b"U": 15, b"X": 15, b"M": 10, b"Q": 2, b"C": 5, b"D": 5, b"E": 5}
_ALNUM = string.ascii_uppercase + string.digits
_MAX_PAYLOAD = 1000        # below the flows' MSS, so a segment is one frame


def clients(n: int) -> list[Peer]:
    """The client ends of ``n`` sessions (two sessions share each client IP)."""
    return [Peer(f"02:00:00:00:01:{k:02x}", f"10.1.0.{k // 2 + 1}", 40001 + k) for k in range(n)]


class _Session:
    def __init__(self, peer: Peer):
        self.peer = peer
        self.flow = None
        self.carry = b""          # the tail of a packet cut at the end of the last segment
        self.starts = []          # stream offsets where packets start (retransmissions)
        self.lost = False
        self.repair = None        # the intact copy of a damaged segment, sent next
        self.ref = 0              # last UserRefNum


class _Generator:
    def __init__(self, rng, toward_exchange, n_sessions, rates):
        self.rng = rng
        self.client = toward_exchange
        self.rates = rates
        self.sessions = [_Session(peer) for peer in clients(n_sessions)]
        self.frames = []
        self.messages = 0
        self.data = b"U" if toward_exchange else b"S"
        self.classes = _CLIENT if toward_exchange else _SERVER
        strays = [Peer("02:00:00:00:01:ff", "10.1.0.200", 40001),
                  Peer("02:00:00:00:01:fe", "10.1.0.1", 39999)]
        self.strays = [TcpFlow(p, EXCHANGE) for p in strays]
        self.strays.append(TcpFlow(clients(1)[0], Peer(EXCHANGE.mac, EXCHANGE.ip, 15001)))

    def sender(self, flow):
        return flow.client if self.client else flow.exchange

    # --- messages and packets ---------------------------------------------------------------

    def value(self, s, field):
        rng, name = self.rng, field.name
        if name == "user_ref_num":
            s.ref = (s.ref + rng.randint(1, 3)) % 2**32
            return s.ref
        if name == "orig_user_ref_num":
            return rng.randint(0, s.ref)
        if name == "price":
            return rng.choice((rng.randint(1, 3_000_000), rng.randint(0, OUCH_MAX_PRICE),
                               OUCH_MAX_PRICE))
        if name == "quantity":
            return rng.choice((rng.randint(0, 1000), rng.randint(0, 2**32 - 1)))
        if name == "symbol":
            return rng.choice(SYMBOLS)
        if field.kind == "u":
            return rng.getrandbits(8 * field.size)
        if field.kind == "c":
            return rng.choice(_CHARS.get(name, string.ascii_uppercase))
        return "".join(rng.choices(_ALNUM, k=rng.randint(0, field.size)))

    def appendage(self):
        rng = self.rng
        if rng.random() >= self.rates["appendage"]:
            return ()
        sizes = {2: 4, 3: 4, 4: 1, 5: 4}
        tags = rng.sample(sorted(sizes), rng.randint(1, 3))
        return tuple(ouch.TagValue(t, rng.randbytes(sizes[t])) for t in tags)

    def message(self, s, msg_type):
        """A valid OUCH message of ``msg_type`` (bytes from the OUCH type byte)."""
        cls = self.classes[msg_type]
        layout = cls.LAYOUT
        values = {f.name: self.value(s, f) for f in layout.fields
                  if f.name != layout.appendage_length_field}
        if layout.appendage_length_field is not None:
            values["appendage"] = self.appendage()
        return cls(**values).encode()

    def random_type(self):
        if self.client:
            return self.rng.choices(list(_CLIENT_WEIGHTS), list(_CLIENT_WEIGHTS.values()))[0]
        return self.rng.choice(list(_SERVER))

    def packet(self, body, sb_type=None):
        return struct.pack(">H", 1 + len(body)) + (sb_type or self.data) + body

    def text(self, lo, hi):
        return "".join(self.rng.choices(_ALNUM + " ", k=self.rng.randint(lo, hi))).encode()

    def plain_packet(self):
        """A SoupBin packet without OUCH."""
        rng = self.rng
        if self.client:
            kinds = [soupbin.LoginRequest("USER", "PASS", "", rng.randint(0, 10**6)),
                     soupbin.ClientHeartbeat(), soupbin.LogoutRequest()]
        else:
            kinds = [soupbin.LoginAccepted("SESSION", rng.randint(1, 10**6)),
                     soupbin.LoginRejected(rng.choice("AS")), soupbin.ServerHeartbeat(),
                     soupbin.EndOfSession()]
        kinds.append(soupbin.Debug(self.text(0, 40)))
        return rng.choice(kinds).encode()

    def malformed(self, s):
        """A packet the extractor must call malformed (split aside): (packet, counts as OUCH)."""
        rng, layouts = self.rng, {t: c.LAYOUT for t, c in self.classes.items()}
        kind = rng.choice(("sb_type", "ouch_type", "short", "long", "l0", "l1", "appendage",
                           "side", "price"))
        if kind == "sb_type":
            taken = (b"U" + b"LRO+") if self.client else (b"S" + b"AJHZ+")
            sb_type = rng.choice([c for c in _ALNUM.encode() if c not in taken])
            return self.packet(self.text(0, 20), bytes([sb_type])), False
        if kind == "ouch_type":
            msg_type = rng.choice([c for c in _ALNUM.encode() if bytes([c]) not in layouts])
            return self.packet(bytes([msg_type]) + self.text(0, 30)), True
        if kind == "l0":
            return b"\x00\x00", False
        if kind == "l1":
            return self.packet(b""), True
        wanted = {"short": lambda lay: lay.fixed_length > 1, "long": lambda lay: True,
                  "appendage": lambda lay: lay.appendage_length_field is not None,
                  "side": lambda lay: "side" in {f.name for f in lay.fields},
                  "price": lambda lay: "price" in {f.name for f in lay.fields}}[kind]
        layout = rng.choice([lay for lay in layouts.values() if wanted(lay)])
        msg = bytearray(self.message(s, layout.type))
        if kind == "short":
            msg = msg[:rng.randint(1, layout.fixed_length - 1)]
        elif kind == "long":
            if layout.appendage_length_field is not None:     # more bytes than it announces
                msg[layout.fixed_length - 2:layout.fixed_length] = b"\x00\x00"
            msg += self.text(1, 6)
        elif kind == "appendage":
            actual = len(msg) - layout.fixed_length
            wrong = rng.choice([v for v in (actual + 1, actual - 1, rng.getrandbits(16))
                                if 0 <= v < 2**16 and v != actual])
            msg[layout.fixed_length - 2:layout.fixed_length] = wrong.to_bytes(2, "big")
        elif kind == "side":
            msg[layout.field("side").offset] = rng.choice(b"ACDFGXYZ0 ")
        else:
            price = layout.field("price")
            value = rng.choice((OUCH_MAX_PRICE + 1, rng.randint(OUCH_MAX_PRICE + 1, 2**64 - 1)))
            msg[price.offset:price.end] = value.to_bytes(8, "big")
        return self.packet(bytes(msg)), True

    def packets(self, s):
        """The next packets of a session's stream and how many OUCH messages they hold."""
        rng, rates = self.rng, self.rates
        if rng.random() < rates["soupbin"]:
            return [self.plain_packet()], 0
        if rng.random() < rates["malformed"]:
            packet, counted = self.malformed(s)
            return [packet], int(counted)
        if self.client and rng.random() < rates["queries"]:
            n = rng.randint(2, 4)
            return [self.packet(b"Q")] * n, n
        return [self.packet(self.message(s, self.random_type()))], 1

    def payload(self, s):
        """A segment's payload: the carried tail, whole packets, maybe the head of one more."""
        rng = self.rng
        payload, starts, messages = s.carry, [], 0
        s.carry = b""
        while True:
            packets, n = self.packets(s)
            for packet in packets:
                starts.append(len(payload))
                payload += packet
            messages += n
            if len(payload) > _MAX_PAYLOAD or rng.random() >= self.rates["pack"]:
                break
        last = len(payload) - starts[-1]
        if last > 1 and rng.random() < self.rates["split"]:
            cut = starts[-1] + rng.randint(1, last - 1)
            payload, s.carry = payload[:cut], payload[cut:]
        return payload, starts, messages

    # --- frames -------------------------------------------------------------------------------

    def connect(self, s):
        rng, rates = self.rng, self.rates
        isn = [rng.choice((rng.getrandbits(32), 2**32 - rng.randint(1, 3000))) for _ in "ce"]
        vlan = rng.randint(1, 4094) if rng.random() < rates["vlan"] else None
        s.flow = TcpFlow(s.peer, EXCHANGE, client_isn=isn[0], exchange_isn=isn[1], vlan=vlan,
                         timestamps=rng.random() < rates["timestamps"])
        frames = s.flow.handshake()
        self.frames += [(f, False) for f in (frames[0::2] if self.client else frames[1:2])]
        s.carry, s.starts, s.lost, s.repair = b"", [], False, None

    def send(self, s, deliver=True):
        """Put a new segment on the session's stream; return its frame."""
        sender = self.sender(s.flow)
        base = len(sender.sent)
        payload, starts, messages = self.payload(s)
        (frame,) = sender.send(payload)
        s.starts += [base + x for x in starts]
        if deliver:
            self.messages += messages
        return frame

    def step(self):
        rng, rates = self.rng, self.rates
        r = rng.random()
        if r < rates["garbage"]:
            garbage = bytearray(rng.randbytes(rng.randint(1, 120)))
            if garbage[12:14] in (b"\x08\x00", b"\x81\x00"):     # never IPv4, tagged or not
                garbage[12] ^= 0x40
            self.frames.append((bytes(garbage), rng.random() < 0.5))
            return
        if r < rates["garbage"] + rates["stray"]:
            flow = rng.choice(self.strays)
            payload = b"".join(self.packet(self.message(_Session(None), self.random_type()))
                               for _ in range(rng.randint(1, 3)))
            self.frames.append((self.sender(flow).send(payload)[0], False))
            return
        s = rng.choice(self.sessions)
        if s.repair is not None:
            self.frames.append((s.repair, False))
            s.repair = None
            return
        if s.flow is None or (s.lost and rng.random() < rates["reconnect"]):
            self.connect(s)
            return
        sender = self.sender(s.flow)
        action = rng.random()
        for name in ("retransmit", "gap", "bad_checksum", "fcs_error", "truncated", "ack"):
            if action < rates[name]:
                break
            action -= rates[name]
        else:
            name = "send"
        if name == "retransmit" and s.starts:
            start = rng.choice(s.starts[-20:])
            end = rng.randint(start + 1, min(len(sender.sent), start + 600))
            self.frames.append((sender.retransmit(start, end), False))
        elif name == "gap":
            self.send(s, deliver=False)
            s.lost = True
        elif name == "ack":
            self.frames.append((sender.ack(), False))
        elif name in ("bad_checksum", "fcs_error", "truncated"):
            start = len(sender.sent)
            frame = self.send(s)
            s.repair = sender.retransmit(start, len(sender.sent))
            fcs_error = name == "fcs_error"
            if name == "bad_checksum":
                frame = bytearray(frame)
                ip = 18 if frame[12:14] == b"\x81\x00" else 14
                at = rng.choice((ip + 10, ip + 4 * (frame[ip] & 0x0F) + 16))   # IP or TCP
                frame[at + rng.randrange(2)] ^= 1 << rng.randrange(8)
            elif name == "truncated":
                ip = 18 if frame[12:14] == b"\x81\x00" else 14
                end = ip + int.from_bytes(frame[ip + 2:ip + 4], "big")
                frame = frame[:rng.randint(1, end - 1)]
                fcs_error = rng.random() < 0.5
            self.frames.append((bytes(frame), fcs_error))
        else:
            self.frames.append((self.send(s), False))

    def finish(self):
        """Deliver pending repairs and the tails of cut packets, so every stream ends whole."""
        for s in self.sessions:
            if s.repair is not None:
                self.frames.append((s.repair, False))
                s.repair = None
            if s.flow is not None and s.carry:
                payload, s.carry = s.carry, b""
                self.frames.append((self.sender(s.flow).send(payload)[0], False))


def generate(rng: random.Random, *, toward_exchange: bool, n_messages: int, sessions: int = 4,
             **rates) -> tuple[list[tuple[bytes, bool]], dict[int, tuple[int, int, int, int]]]:
    """Frames of one direction of ``sessions`` sessions carrying ``n_messages`` OUCH messages.

    ``n_messages`` counts the OUCH messages (SoupBin ``U``/``S`` packets, malformed ones
    included) first put on a session's wire; retransmitted copies, undelivered segments and
    frames of no session carry more. ``rates`` override :data:`RATES`.

    Returns the frames ``(bytes, fcs_error)`` in wire order and the session table:
    index -> (client_ip, client_port, exchange_ip, exchange_port), IPs as ints.
    """
    unknown = set(rates) - set(RATES)
    if unknown:
        raise TypeError(f"unknown rates {sorted(unknown)}; known: {sorted(RATES)}")
    gen = _Generator(rng, toward_exchange, sessions, {**RATES, **rates})
    while gen.messages < n_messages:
        gen.step()
    gen.finish()
    table = {k: (ip_to_int(s.peer.ip), s.peer.port, ip_to_int(EXCHANGE.ip), EXCHANGE.port)
             for k, s in enumerate(gen.sessions)}
    return gen.frames, table
