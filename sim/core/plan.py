"""What a core bench puts on the wire, whatever drives the ports: sessions as TCP streams,
trading items as frames and host jobs, and the pace of the links and of the drop-copy host.

:class:`Plan` is shared by the cocotb bench (:class:`wiregate.sim.core.bench.TB`) and the
compiled harness's driver (:class:`wiregate.sim.fast.bench.FastBench`). Each random choice
has a generator of its own, seeded from the bench's seed: the frames' contents are drawn in
the order the items are played, each link's idle time once per frame, and the drop-copy
host's pace is a function of the cycle (:func:`dropcopy_ready`). So two benches that play
the same items in the same order put the same frames on the wire in the same cycles, however
they schedule their work.

Racing. With ``racing`` set, a share of the host actions played (:data:`RACE_SHARE`, drawn
from a generator of their own) race the links: such an action goes a random number of cycles
after its time, while the frames queued before it are on the wire and their events in the
pipeline, and the frames after it do not wait for it (:meth:`Plan.races`). The drop copy
orders it among the events, and the model replays it there. A commit that changes the session
table never races: the scoreboard names each frame's session when the frame is queued, with
the table active then (the ingress latches it when the frame's headers end, which a racing
swap could straddle). Only the cocotb bench races; the compiled harness plays every action
on quiet links.
"""

import dataclasses
import random

from wiregate.hw.core import core_latencies
from wiregate.sim.replay import order_entry
from wiregate.sim.trading import Port
from wiregate.sw.extract import marked_for_drop
from wiregate.sw.limits import Endpoint, Limits
from wiregate.sw.model import Commit, FrameVoid, Malformed, SessionSync, Tick
from wiregate.sw.proto.frames import Peer
from wiregate.sw.reasons import Reason

from . import sizes_for
from .frames import (
    IFG_BYTES,
    Stream,
    client_packet,
    exchange_packet,
    malformed_packet,
    split_packet,
)
from .scoreboard import Scoreboard

__all__ = [
    "DROPCOPY_READY",
    "GAPS",
    "RACE_SHARE",
    "READBACK_BITS",
    "READBACK_FIELDS",
    "READBACK_WORDS",
    "STRETCH",
    "TIME_SCALE",
    "Plan",
    "dropcopy_ready",
    "ready_threshold",
]

EXCHANGE_PACK = (1, 1, 2, 3, 4)     # exchange messages of one session per segment
EXCHANGE_BAD_FCS = 0.03     # exchange frames sent first with a bad FCS, then again
GAPS = (0, 0, 1, 2, 5, 20)  # idle cycles after the inter-frame gap (a random one)
_MASK = (1 << 64) - 1
# Core microseconds per microsecond of the trading day. At W = 1 the day's own pace already
# fills most of the drop copy's byte stream (an 88-byte record per event, a byte a cycle);
# at W = 8 every stream is eight times wider and the day is played faster. A commit's
# times (heartbeat timeout, refill interval, reference age) are scaled alike.
TIME_SCALE = {1: 1.0, 8: 0.15}
# Chance the host takes a drop-copy beat in a cycle: at W = 1 the day needs most of the
# stream, and a slower host would overflow the queue (a gateway kill, a failure here).
DROPCOPY_READY = {1: 0.95, 8: 0.8}
# The jobs of the random day sent at line rate: where (a fraction of the day), how many. The
# drop copy's host keeps up with one port at line rate, not with both for long.
STRETCH = (0.45, 300)
# The engine's read-back ports the final check compares: per-session fields, one bit per
# session, plain words.
READBACK_FIELDS = ("credit_used", "last_user_ref_num", "unmatched", "tokens", "throttle_count")
READBACK_BITS = ("throttled", "kill_sessions", "in_sync")
READBACK_WORDS = ("gateway_credit_used", "kill_gateway")
# Racing mode: the share of host actions that race the links, and how late after its time one
# goes at the most, in byte times (a frame or two: it lands among the frames queued before it).
RACE_SHARE = 0.5
RACE_SPREAD_BYTES = 240


def _session_table(limits) -> dict:
    """A commit's session table as the scoreboard takes it: index -> 4-tuple."""
    return {s.index: (s.client.ip, s.client.port, s.exchange.ip, s.exchange.port)
            for s in limits.sessions}


def _mix(x: int) -> int:
    """splitmix64's finaliser (the harness's ``mix`` is the same)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def ready_threshold(chance: float) -> int:
    """The hash threshold below which the host is ready (``chance`` of the cycles)."""
    return min(_MASK, int(chance * 2.0**64))


def dropcopy_ready(seed: int, cycle: int, threshold: int) -> bool:
    """Whether the drop-copy host takes a beat in ``cycle``: a hash of the cycle, so that
    any driver reproduces the pace without drawing in step with the simulation."""
    return _mix((seed ^ cycle) & _MASK) < threshold


class Plan:
    """The wire side of a core bench (see the module docstring).

    Parameters
    ----------
    width : int
    seed : int
    scale : float
        Core microseconds per microsecond of the items played.

    Attributes
    ----------
    board : Scoreboard
    gate : Gate
        The model the drop copy replays through.
    min_gap : int
        Cycles between two frames on one link at least.
    settle : int
        Cycles from a frame's last beat until a host action may follow it.
    handshakes : list
        Sessions a commit loaded that never had a connection.
    gap_extra : bool
        Whether frames queued now get random idle time after the inter-frame gap.
    racing : bool
        Whether a share of the host actions played race the links (:meth:`races`).
    """

    def __init__(self, width: int, seed: int, scale: float = 1.0):
        self.width = width
        self.seed = seed
        self.scale = scale
        self.rng = random.Random(seed)
        self._gap_rng = {port: random.Random(f"{seed}-{port}") for port in ("client",
                                                                           "exchange")}
        self.sizes = sizes_for(width)       # the build profile's (WG_PROFILE)
        self.board = Scoreboard(width, self.sizes.gate())
        self.gate = self.board.replay.gate
        self.min_gap = -(-IFG_BYTES // width)
        # Cycles from a frame's last beat until its last event is judged, plus the host
        # write's cycle and the register file's: a host action that follows a frame (a kill
        # after an order) must reach the engine after that frame's orders.
        self.settle = core_latencies(width)["verdict_latency"] + 2
        self.flows = {}             # session -> (client Stream, exchange Stream)
        self.endpoints = {}         # session -> (client Endpoint, exchange Endpoint)
        self.connected = set()
        self.handshakes = []
        self.gap_extra = True
        self.junk = 0               # varies the bytes of malformed packets
        self.racing = False
        self._race_rng = random.Random(f"{seed}-race")
        self._race_table = None     # the session table of the last commit played

    def gap_after(self, port: str) -> int:
        """Idle cycles after a frame queued now on ``port``: the inter-frame gap, and a
        random extra when ``gap_extra`` (drawn for every frame, so that each link's draws
        do not depend on the others')."""
        extra = self._gap_rng[port].choice(GAPS)
        return self.min_gap + (extra if self.gap_extra else 0)

    # --- sessions and frames --------------------------------------------------------------

    def learn_endpoints(self, items):
        """Every session's 4-tuple, from the commits among ``items`` (it never changes)."""
        for item in items:
            if isinstance(item.event, Commit):
                for s in item.event.limits.sessions:
                    pair = (s.client, s.exchange)
                    if self.endpoints.setdefault(s.index, pair) != pair:
                        raise ValueError(f"session {s.index} changes its 4-tuple")

    def flow(self, session):
        """The two streams of ``session`` (made on first use)."""
        if session not in self.flows:
            # A session no commit names gets a 4-tuple of its own: no session's, dropped.
            client, exchange = self.endpoints.get(
                session, (Endpoint(0x0A0F0001 + session, 40900 + session),
                          Endpoint(0x0A0F00FE, 15000)))
            client_peer = Peer(f"02:00:00:00:01:{session:02x}", client.ip, client.port)
            exchange_peer = Peer("02:00:00:00:00:fe", exchange.ip, exchange.port)
            rng = self.rng
            vlan = rng.randint(1, 4094) if rng.random() < 0.5 else None
            timestamps = rng.random() < 0.5
            isn = [rng.choice((rng.getrandbits(32), 2**32 - rng.randint(1, 3000)))
                   for _ in "ce"]
            up = Stream(client_peer, exchange_peer, isn[0], vlan=vlan, timestamps=timestamps)
            down = Stream(exchange_peer, client_peer, isn[1], vlan=vlan, timestamps=timestamps)
            up.peer, down.peer = down, up
            self.flows[session] = (up, down)
        return self.flows[session]

    def client_frame(self, session, msgs, retransmit=False, void=False, lead=b""):
        """A client frame: ``msgs`` as one segment (``lead``: packets before them), a
        retransmission of bytes below the next expected one, or a new segment; ``void``:
        with a bad FCS. Returns (frame, error, index in ``board.sent``)."""
        up, _ = self.flow(session)
        packets, carry = [lead], b""
        for k, msg in enumerate(msgs):
            if isinstance(msg, Malformed):
                self.junk += 1
                if msg.reason == "split" and k == len(msgs) - 1:
                    head, carry = split_packet(self.junk)
                    packets.append(head)
                else:       # only a segment's last packet can be cut
                    reason = "bad_length" if msg.reason == "split" else msg.reason
                    packets.append(malformed_packet(reason, self.junk))
            else:
                packets.append(client_packet(msg))
        data = b"".join(packets)
        if retransmit:
            back = self.rng.randint(0, max(0, min(up.sent - len(data), 64)))
            frame, payload = up.retransmission(data, back), None
        else:
            frame, payload = up.segment(data)
        result = self.board.client_frame(frame, void)
        if payload is not None and self.board.taken(result, void):
            up.taken(payload, carry)
        return frame, void, len(self.board.sent) - 1

    def exchange_frames(self, session, msgs):
        """Exchange messages of one session as one segment, sometimes first with a bad FCS
        (the exchange's TCP then sends it again): a list of (frame, error)."""
        _, down = self.flow(session)
        frame, payload = down.segment(b"".join(exchange_packet(m) for m in msgs))
        frames = []
        if self.rng.random() < EXCHANGE_BAD_FCS:
            self.board.exchange_frame(frame, True)
            frames.append((frame, True))
        if self.board.taken(self.board.exchange_frame(frame, False), False):
            down.taken(payload)
        frames.append((frame, False))
        return frames

    def handshake_frames(self, session):
        """SYN from the client, SYN+ACK from the exchange, the client's ACK: a list of
        (port, frame, index in ``board.sent`` or None)."""
        up, down = self.flow(session)
        self.connected.add(session)
        frames = []
        for port, frame in (("client", up.syn()), ("exchange", down.syn(ack=True)),
                            ("client", up.ack())):
            if port == "client":
                self.board.client_frame(frame, False)
                frames.append((port, frame, len(self.board.sent) - 1))
            else:
                self.board.exchange_frame(frame, False)
                frames.append((port, frame, None))
        return frames

    def set_sessions(self, limits):
        """A commit of ``limits`` is done: the scoreboard's session table, and the sessions
        to connect."""
        table = _session_table(limits)
        self.board.set_sessions(table)
        self.handshakes += [s for s in sorted(table) if s not in self.connected]

    # --- playing items --------------------------------------------------------------------

    def jobs_of(self, items):
        """``items`` as (port, t, work): client frames, exchange segments (consecutive
        messages of one session at one time, a few per segment), host control events.
        SessionSync items are left out: the core makes its own from its TCP trackers."""
        frame, pack = [], []

        def packed():
            if pack:
                yield ("exchange", pack[0].t, dict(session=pack[0].event.session,
                                                   msgs=[i.event.msg for i in pack]))
                pack.clear()

        size = self.rng.choice(EXCHANGE_PACK)
        for item in items:
            if item.port is Port.EXCHANGE:
                other = (item.t, item.event.session) != (pack[0].t, pack[0].event.session) \
                    if pack else False
                if other or len(pack) == size:
                    yield from packed()
                    size = self.rng.choice(EXCHANGE_PACK)
                pack.append(item)
                continue
            yield from packed()
            if item.port is Port.CLIENT:
                frame.append(item)
            elif item.port is Port.FRAME_END:
                yield ("client", item.t, dict(
                    session=item.session, msgs=[i.event.msg for i in frame],
                    retransmit=bool(frame) and frame[0].event.retransmit,
                    void=isinstance(item.event, FrameVoid)))
                frame = []
            elif not isinstance(item.event, SessionSync):
                yield ("control", item.t, dict(event=item.event))
        yield from packed()

    def races(self, event) -> int | None:
        """Whether host action ``event``, the next played, races the links: the cycles after
        its time it goes in, or None when it waits for quiet links (see the module
        docstring). Draws for every action, so the draws do not depend on the mode."""
        rng = self._race_rng
        race = rng.random() < RACE_SHARE
        delay = rng.randrange(-(-RACE_SPREAD_BYTES // self.width))
        if isinstance(event, Commit):
            table = _session_table(event.limits)
            same, self._race_table = table == self._race_table, table
            if not same:
                return None
        return delay if self.racing and race else None

    def scaled(self, event):
        """A commit's limits with their times scaled like the items' (``scale``)."""
        if not isinstance(event, Commit) or self.scale == 1:
            return event

        def us(value):
            return max(1, round(value * self.scale)) if value else 0

        limits = event.limits
        gateway = dataclasses.replace(
            limits.gateway, heartbeat_timeout_us=us(limits.gateway.heartbeat_timeout_us),
            reference_max_age_us=us(limits.gateway.reference_max_age_us))
        sessions = tuple(dataclasses.replace(s, rate=dataclasses.replace(
            s.rate, refill_us=us(s.rate.refill_us))) for s in limits.sessions)
        return dataclasses.replace(event, limits=Limits(gateway, sessions, limits.symbols))

    def outcome(self) -> dict:
        """What left the core, to compare two benches' runs: the frames toward the exchange
        and the clients, the drop-copy records, each frame's first-byte cycles (client in,
        exchange out) from the start of play."""
        base = self.play_start
        return {"egress": self.board.egress, "client_tx": self.board.client_tx,
                "records": self.record_log,
                "client_starts": {k: c - base for k, c in self.client_starts.items()},
                "egress_starts": [c - base for c in self.egress_starts]}

    # --- the end ----------------------------------------------------------------------------

    def check_readback(self, got: dict, us: int) -> None:
        """The engine's read-back (``READBACK_*`` by name) against the model at ``us``."""
        gate = self.gate
        gate.apply(Tick(max(gate.now, us)))
        st = gate.sessions
        n = self.sizes.n_sessions
        expected = {
            "credit_used": [x.credit_used for x in st],
            "last_user_ref_num": [x.last_user_ref_num for x in st],
            "unmatched": [x.unmatched for x in st],
            "tokens": [gate.tokens(s) for s in range(n)],
            "throttle_count": [x.throttle_count for x in st],
            "throttled": [int(x.throttled) for x in st],
            "kill_sessions": [int(k) for k in gate.kill_session],
            "in_sync": [int(x.in_sync) for x in st],
            "gateway_credit_used": gate.gateway_credit_used,
            "kill_gateway": int(gate.kill_gateway),
        }
        diff = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
        assert not diff, f"seed {self.seed}: final read-back (core, model): {diff}"
        streams = [int(self.board.in_sync(s)) for s in range(n)]
        assert streams == expected["in_sync"], (
            f"seed {self.seed}: in sync {expected['in_sync']}, the streams say {streams}")

    def check_exposure(self, s: int, y: int, word: dict) -> None:
        e = self.gate.exposure(s, y)
        assert word == {"position": e.position, "working_buy": e.working_buy,
                        "working_sell": e.working_sell}, \
            f"seed {self.seed}: exposure ({s}, {y}): core {word}, model {e}"

    def check_order(self, s: int, slot: int, entry: dict) -> None:
        model = self.gate.sessions[s].orders[slot]
        if model is None:
            assert not entry["valid"], \
                f"seed {self.seed}: order ({s}, slot {slot}): core {entry}, model free"
        else:
            assert entry == order_entry(model), \
                f"seed {self.seed}: order ({s}, slot {slot}): core {entry}, model {model}"

    def expected_counters(self, records: int) -> dict:
        """The register map's counters of what the bench can count itself."""
        replay, board = self.board.replay, self.board
        return {
            "orders_accepted": replay.accepted,
            "orders_rejected": replay.rejected,
            **{f"reject_{r.name.lower()}": replay.primaries[r] for r in Reason},
            "dropcopy_records": records,
            "dropcopy_overflow": 0,
            "frames_exchange_tx": len(board.egress),
            "frames_client_tx": len(board.client_tx),
            "dropped_no_session": sum(marked_for_drop(f, r.session) for f, _, r in board.sent),
            "fcs_errors": sum(error for _, error, _ in board.sent)
            + sum(error for _, error in board.exchange_sent),
        }

    def check_counters(self, got: dict, expected: dict) -> None:
        assert got == expected, f"seed {self.seed}: counters (core, bench): " + str(
            {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]})
