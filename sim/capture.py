"""A capture through the gateway's reference model: ``wiregate replay --engine model``.

A pcap may hold both directions of any number of sessions; the limit file names the
sessions. Every frame goes, in capture order, to the port it would arrive on
(:func:`port_of`) and through what the gateway does there, taken from the references the
benches score the gateware with: the ingress (:class:`~wiregate.sw.extract.IngressModel`,
one per port), the checks (:class:`~wiregate.sw.model.Gate`) and the reject rewrite
(:func:`~wiregate.sw.rewrite.reject_in_place`). What the benches' :class:`Scoreboard
<wiregate.sim.core.scoreboard.Scoreboard>` expects of a client frame is what leaves here.

The host around the gateway, as the replay plays it: it commits the limit file before the
first frame (time 0 is the first frame's timestamp), heartbeats whenever half the heartbeat
timeout of capture time has passed, reads the drop copy as fast as it comes (no BACKLOG)
and sends nothing else (no reference updates: a capture longer than the reference's
maximum age sees COLLAR rejects, as a gateway whose host stopped refreshing would).

The gateway's own control events are played as the core makes them: at reset every session
is out of sync (its TCP trackers are idle), and a session comes in sync when both of its
directions are SYNCED (:class:`~wiregate.sw.extract.StreamTracker`), out again when one is
lost; each change is a :class:`~wiregate.sw.model.SessionSync` after the frame that caused
it, lowest session first.

A capture that starts in the middle of a session has no SYN: the gateway voids every frame
of it until a new connection, as it must live. :func:`find_midstream` names such streams;
with ``assume_start`` the replay puts a SYN (never written to the output) before each one's
first segment, and one for the opposite direction from that segment's acknowledgement
number, so the capture is judged as if its first segment started the stream. That is a
replay convenience, never how the gateway behaves.
"""

import dataclasses
import logging
import sys
import time
from collections import Counter

from wiregate.sw.extract import TCP_SYN, IngressModel
from wiregate.sw.limits import Limits
from wiregate.sw.model import (
    ClientMessage,
    Commit,
    ExchangeMessage,
    FrameVoid,
    Gate,
    Heartbeat,
    Revoke,
    SessionSync,
)
from wiregate.sw.proto import pcap
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.frames import build_frame, ip_to_int, parse_frame
from wiregate.sw.reasons import Reason
from wiregate.sw.rewrite import reject_in_place

__all__ = ["CaptureError", "Midstream", "ModelGateway", "Outcome", "VerdictEntry",
           "find_midstream", "port_of", "read_capture", "replay_model"]

logger = logging.getLogger(__name__)

ETHERTYPE_ARP = 0x0806
_NEW_ORDERS = (b"O", b"U")     # Enter and Replace: what a void frame's undo revokes


class CaptureError(ValueError):
    """The capture cannot be replayed (unreadable, not Ethernet, traffic the gateway's
    references do not model); the message names the file and the frame."""


def read_capture(path) -> list[pcap.PcapRecord]:
    """Every frame of a pcap or pcapng file, or :class:`CaptureError` saying why not."""
    try:
        records = pcap.read_pcap(path)
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise CaptureError(f"{path}: not a readable pcap or pcapng file of Ethernet frames "
                           f"({exc})") from None
    except Exception as exc:     # scapy raises its own types for a damaged file
        raise CaptureError(f"{path}: damaged capture ({type(exc).__name__}: {exc})") from None
    return records


def _ethertype(data: bytes) -> int | None:
    if len(data) < 14:
        return None
    kind = int.from_bytes(data[12:14], "big")
    if kind == 0x8100 and len(data) >= 18:
        kind = int.from_bytes(data[16:18], "big")
    return kind


def _arp_sender(data: bytes) -> int | None:
    base = 18 if data[12:14] == b"\x81\x00" else 14
    if len(data) < base + 18:
        return None
    return int.from_bytes(data[base + 14:base + 18], "big")


def port_of(data: bytes, limits: Limits) -> str:
    """The gateway port a captured frame arrives on: ``"exchange"`` when it comes from an
    exchange endpoint of the limit file's sessions (IPv4/TCP: its source address and port;
    ARP: its sender address is an exchange's), else ``"client"``."""
    endpoints = {(s.exchange.ip, s.exchange.port) for s in limits.sessions}
    if _ethertype(data) == ETHERTYPE_ARP:
        sender = _arp_sender(data)
        return "exchange" if sender in {ip for ip, _ in endpoints} else "client"
    try:
        frame = parse_frame(data)
    except ProtocolError:
        return "client"
    return "exchange" if (ip_to_int(frame.ip.src), frame.tcp.src_port) in endpoints \
        else "client"


# --- Streams that start in the middle --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Midstream:
    """A session direction whose first payload segment (frame ``index``) came without a SYN
    before it; ``seq`` its sequence number, ``ack`` its acknowledgement (None without ACK)."""

    session: int
    direction: str      # "client" (toward the exchange) or "exchange"
    index: int
    seq: int
    ack: int | None


def _session_of(frame, limits: Limits) -> tuple[int, str] | None:
    src = (ip_to_int(frame.ip.src), frame.tcp.src_port)
    dst = (ip_to_int(frame.ip.dst), frame.tcp.dst_port)
    for s in limits.sessions:
        client, exchange = (s.client.ip, s.client.port), (s.exchange.ip, s.exchange.port)
        if (src, dst) == (client, exchange):
            return s.index, "client"
        if (src, dst) == (exchange, client):
            return s.index, "exchange"
    return None


def find_midstream(records, limits: Limits) -> list[Midstream]:
    """The session directions of ``records`` whose first segment with payload has no SYN
    before it in the capture, in capture order."""
    seen, found = set(), []
    for index, record in enumerate(records):
        try:
            frame = parse_frame(record.data)
        except ProtocolError:
            continue
        key = _session_of(frame, limits)
        if key is None or key in seen:
            continue
        if frame.tcp.flags & TCP_SYN:
            seen.add(key)
        elif frame.payload:
            seen.add(key)
            ack = frame.tcp.ack if frame.tcp.flags & 0x10 else None
            found.append(Midstream(*key, index, frame.tcp.seq, ack))
    return found


def _syn(data: bytes, seq: int, reverse: bool) -> bytes:
    """A SYN of the stream of captured frame ``data`` (``reverse``: of the opposite
    direction) whose next sequence number is ``seq``."""
    frame = parse_frame(data)
    eth, ip, tcp = frame.eth, frame.ip, frame.tcp
    ends = [(eth.src, ip.src, tcp.src_port), (eth.dst, ip.dst, tcp.dst_port)]
    (src_mac, src_ip, src_port), (dst_mac, dst_ip, dst_port) = ends[::-1] if reverse else ends
    return build_frame(b"", src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip, dst_ip=dst_ip,
                       src_port=src_port, dst_port=dst_port, seq=(seq - 1) % 2**32, ack=0,
                       flags="S", vlan=eth.vlan)


def assumed_starts(records, midstream: list[Midstream]) -> dict[int, list[tuple[str, bytes]]]:
    """The SYNs ``assume_start`` puts before captured frames: frame index -> [(port,
    frame)]. A direction that has no segment of its own before its opposite's first one
    gets its SYN there too, from that segment's acknowledgement number."""
    starts: dict[int, list] = {}
    primed = set()
    for m in midstream:
        data = records[m.index].data
        if (m.session, m.direction) not in primed:
            starts.setdefault(m.index, []).append((m.direction, _syn(data, m.seq, False)))
            primed.add((m.session, m.direction))
        other = "exchange" if m.direction == "client" else "client"
        if m.ack is not None and (m.session, other) not in primed:
            later = any(o.session == m.session and o.direction == other and o.index < m.index
                        for o in midstream)
            if not later:
                starts[m.index].append((other, _syn(data, m.ack, True)))
                primed.add((m.session, other))
    return starts


# --- The gateway, as its references say ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VerdictEntry:
    """One client OUCH message's verdict: a line of ``verdicts.jsonl`` (docs/replay.md)."""

    frame_index: int
    t_us: int
    session: int
    msg_type: str | None
    user_ref_num: int | None
    verdict: str
    reasons: tuple[str, ...]
    primary: str | None
    retransmit: bool
    malformed: str | None
    type_offset: int
    frame_void: bool

    def as_json(self) -> dict:
        return dataclasses.asdict(self) | {"reasons": list(self.reasons)}


class ModelGateway:
    """The gateway's references wired as the core wires the gateware.

    Parameters
    ----------
    limits : Limits
        Committed at :meth:`start`; its sessions are the session table.
    sizes : Profile
        The build profile whose table sizes the model takes.
    width : int
        Bytes per beat (the ingress's crowding rule depends on it).

    Attributes
    ----------
    gate : Gate
    ingress : dict
        ``"client"``, ``"exchange"``: the IngressModel of each port.
    reasons : Counter
        Reason name -> rejected messages with that bit set.
    verdicts : Counter
        ``"accept"``, ``"reject"`` -> messages.
    counters : Counter
        What the gateway's frame counters would read (``frames_exchange_tx``, ...), and
        ``stomped`` (session frames that ended void: they leave with a bad FCS).
    """

    def __init__(self, limits: Limits, sizes, width: int):
        self.limits = limits
        self.gate = Gate(sizes.n_sessions, sizes.n_symbols, sizes.n_orders, sizes.n_executions,
                         n_verdicts=sizes.n_orders)
        table = {s.index: (s.client.ip, s.client.port, s.exchange.ip, s.exchange.port)
                 for s in limits.sessions}
        self.ingress = {port: IngressModel(table, toward_exchange=port == "client",
                                           width=width) for port in ("client", "exchange")}
        self._reported = [True] * sizes.n_sessions      # the engine's view (core.py)
        self._interval = max(1, limits.gateway.heartbeat_timeout_us // 2)
        self._heartbeat = 0
        self.reasons = Counter()
        self.verdicts = Counter()
        self.counters = Counter()

    def start(self) -> None:
        """Reset (every session out of sync), then the host's commit at time 0."""
        self._sync(0)
        self.gate.apply(Commit(0, self.limits))

    def _sync(self, t: int) -> None:
        for s, reported in enumerate(self._reported):
            now = all(isinstance(m.tracker.next.get(s), int) for m in self.ingress.values())
            if now != reported:
                self.gate.apply(SessionSync(t, s, now))
                self._reported[s] = now

    def _host(self, t: int) -> None:
        if t - self._heartbeat >= self._interval:
            self.gate.apply(Heartbeat(t))
            self._heartbeat = t

    def frame(self, port: str, data: bytes, t: int, index: int | None = None):
        """One frame arrives on ``port`` at ``t`` microseconds; returns (what leaves the
        other port or None, the VerdictEntry list of its client messages)."""
        self._host(t)
        try:
            result = self.ingress[port].frame(data)
        except AssertionError as exc:   # traffic the gateway's references leave undefined
            raise CaptureError(f"frame {index}: {exc}") from None
        if port == "client":
            out, entries = self._client(result, data, t, index)
        else:
            out, entries = self._exchange(result, data, t), []
        self._sync(t)
        return out, entries

    def _client(self, result, data, t, index):
        gate, entries, judged, accepted = self.gate, [], [], []
        for k, event in enumerate(result.events):
            v = gate.apply(ClientMessage(t, event.session, event.message(), event.retransmit,
                                         k == 0))
            judged.append((event, v))
            if v.accept and not event.retransmit and v.msg_type in _NEW_ORDERS:
                accepted.append(v.user_ref_num)
            names = tuple(r.name for r in Reason if v.reasons >> r & 1)
            self.verdicts["accept" if v.accept else "reject"] += 1
            self.reasons.update(names)
            entries.append(VerdictEntry(
                index, t, event.session, v.msg_type.decode() if v.msg_type else None,
                v.user_ref_num, "accept" if v.accept else "reject", names,
                v.primary.name if v.primary is not None else None, event.retransmit,
                event.malformed, event.type_offset, result.void))
        if result.void and result.events:
            session = result.events[0].session
            gate.apply(FrameVoid(t, session))
            for ref in accepted:
                gate.apply(Revoke(t, session, ref))
        if result.session is None:
            if _ethertype(data) == ETHERTYPE_ARP:
                self.counters["frames_exchange_tx"] += 1
                return data, entries
            self.counters["dropped_no_session"] += 1
            return None, entries
        self.counters["frames_exchange_tx"] += 1
        if result.void:
            self.counters["stomped"] += 1
            return None, entries
        for event, v in judged:
            if not v.accept:
                data = reject_in_place(data, event.type_offset)
        return data, entries

    def _exchange(self, result, data, t):
        if not result.void:
            for event in result.events:
                if not event.retransmit and event.malformed is None:
                    self.gate.apply(ExchangeMessage(t, event.session, event.message()))
        self.counters["frames_client_tx"] += 1
        if result.void:
            self.counters["stomped"] += 1
            return None
        return data


# --- A whole capture -------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What a replay made: the verdict log, each port's output (pcap records), the
    warnings, the model's state and figures."""

    entries: list
    to_exchange: list
    to_client: list
    midstream: list
    warnings: list
    gateway: ModelGateway
    frames: int
    seconds: float

    def summary(self) -> dict:
        """The counts ``summary.txt`` and ``--json`` show (docs/replay.md)."""
        gw = self.gateway
        gate = gw.gate
        return {
            "frames": self.frames,
            "client_messages": len(self.entries),
            "verdicts": {"accept": gw.verdicts["accept"], "reject": gw.verdicts["reject"]},
            "reasons": dict(sorted(gw.reasons.items(), key=lambda kv: Reason[kv[0]])),
            "frames_out": {"to_exchange": len(self.to_exchange),
                           "to_client": len(self.to_client)},
            "gateway_counters": {
                "orders_accepted": gw.verdicts["accept"],
                "orders_rejected": gw.verdicts["reject"],
                "frames_exchange_tx": gw.counters["frames_exchange_tx"],
                "frames_client_tx": gw.counters["frames_client_tx"],
                "dropped_no_session": gw.counters["dropped_no_session"],
                "stomped": gw.counters["stomped"],
            },
            "ingress_counters": {port: dict(m.counters) for port, m in gw.ingress.items()},
            "sessions": [{"index": s.index, "name": s.name,
                          "in_sync": gate.sessions[s.index].in_sync,
                          "killed": gate.kill_session[s.index],
                          "last_user_ref_num": gate.sessions[s.index].last_user_ref_num,
                          "credit_used": gate.sessions[s.index].credit_used}
                         for s in gw.limits.sessions],
            "kill_gateway": gate.kill_gateway,
            "midstream": [dataclasses.asdict(m) for m in self.midstream],
            "warnings": list(self.warnings),
            "mismatches": [],
            "seconds": round(self.seconds, 3),
            "orders_per_s": round(len(self.entries) / self.seconds) if self.seconds else None,
        }


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.total = total
        self.on = self.stream.isatty() and total > 0
        self._shown = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.on or (now - self._shown < 0.2 and done != self.total):
            return
        self._shown = now
        filled = 30 * done // self.total
        self.stream.write(f"\rreplay [{'#' * filled}{'.' * (30 - filled)}] "
                          f"{done}/{self.total} frames")
        if done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def replay_model(records, limits: Limits, sizes, width: int, *,
                 assume_start: bool = False, progress: bool = True) -> Outcome:
    """Replay captured ``records`` through the model gateway (see the module docstring)."""
    begin = time.process_time()
    midstream = find_midstream(records, limits)
    warnings = []
    for m in midstream:
        arrow = "client -> exchange" if m.direction == "client" else "exchange -> client"
        warnings.append(
            f"session {m.session} ({arrow}) starts mid-stream at frame {m.index} (no SYN "
            f"before it): " + ("its first segment is taken as the stream's start "
                               "(--assume-start, a replay convenience)" if assume_start else
                               "the gateway voids its frames until a new connection; "
                               "--assume-start takes its first segment as the start"))
    starts = assumed_starts(records, midstream) if assume_start else {}
    gateway = ModelGateway(limits, sizes, width)
    gateway.start()
    entries, out = [], {"client": [], "exchange": []}
    t0 = records[0].timestamp_ns if records else 0
    t = 0
    bar = _Progress(len(records)) if progress else None
    for index, record in enumerate(records):
        t_frame = max(0, (record.timestamp_ns - t0) // 1000)
        if t_frame < t:
            warnings.append(f"frame {index}: timestamp before the previous frame's; taken "
                            "at the previous frame's time")
        t = max(t, t_frame)
        for port, syn in starts.get(index, ()):
            gateway.frame(port, syn, t)
        port = port_of(record.data, limits)
        left, judged = gateway.frame(port, record.data, t, index)
        entries.extend(judged)
        if left is not None:
            # Out on the other port: toward the exchange for a client frame.
            side = "exchange" if port == "client" else "client"
            out[side].append(pcap.PcapRecord(record.timestamp_ns, left))
        if bar is not None and index % 256 == 255:
            bar.update(index + 1)
    if bar is not None:
        bar.update(len(records))
    return Outcome(entries, out["exchange"], out["client"], midstream, warnings, gateway,
                   len(records), time.process_time() - begin)
