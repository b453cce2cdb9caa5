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

from wiregate.sw.extract import TCP_SYN, IngressModel, is_arp, marked_for_drop
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

__all__ = ["Arrival", "CaptureError", "Midstream", "ModelGateway", "Outcome", "Progress",
           "VerdictEntry", "assumed_starts", "find_midstream", "port_of", "read_capture",
           "replay_model", "session_states", "timeline"]

logger = logging.getLogger(__name__)

_NEW_ORDERS = (b"O", b"U")     # Enter and Replace: what a void frame's undo revokes
_REASONS = tuple(Reason)        # iterating the enum itself is slow, once per message


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
    if is_arp(data):
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


def _first_frames(records, limits: Limits) -> dict:
    """(session, direction) -> (index, parsed frame) of its first SYN or segment with
    payload in ``records``."""
    first = {}
    for index, record in enumerate(records):
        try:
            frame = parse_frame(record.data)
        except ProtocolError:
            continue
        key = _session_of(frame, limits)
        if key is not None and key not in first and (frame.tcp.flags & TCP_SYN
                                                     or frame.payload):
            first[key] = (index, frame)
    return first


def find_midstream(records, limits: Limits) -> list[Midstream]:
    """The session directions of ``records`` whose first segment with payload has no SYN
    before it in the capture, in capture order."""
    found = []
    for key, (index, frame) in _first_frames(records, limits).items():
        if not frame.tcp.flags & TCP_SYN:
            ack = frame.tcp.ack if frame.tcp.flags & 0x10 else None
            found.append(Midstream(*key, index, frame.tcp.seq, ack))
    return sorted(found, key=lambda m: m.index)


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


def assumed_starts(records, limits: Limits) -> dict[int, list[tuple[str, bytes]]]:
    """The SYNs ``assume_start`` puts before captured frames: frame index -> [(port,
    frame)]. Each direction that starts mid-stream gets one before its first segment; the
    opposite direction, when it has not started by then, gets one there too, from that
    segment's acknowledgement number (so the session is in sync from that segment on)."""
    first = _first_frames(records, limits)
    starts: dict[int, list] = {}
    for m in find_midstream(records, limits):
        data = records[m.index].data
        starts.setdefault(m.index, []).append((m.direction, _syn(data, m.seq, False)))
        other = "exchange" if m.direction == "client" else "client"
        begun = first.get((m.session, other))
        if m.ack is not None and (begun is None or begun[0] > m.index):
            starts[m.index].append((other, _syn(data, m.ack, True)))
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

    @classmethod
    def of(cls, index, t, event, verdict, void) -> "VerdictEntry":
        """The entry of extracted ``event`` judged ``verdict`` in frame ``index`` at ``t``."""
        v = verdict
        return cls(index, t, event.session, v.msg_type.decode() if v.msg_type else None,
                   v.user_ref_num, "accept" if v.accept else "reject",
                   tuple(r.name for r in _REASONS if v.reasons >> r & 1),
                   v.primary.name if v.primary is not None else None, event.retransmit,
                   event.malformed, event.type_offset, void)

    def as_json(self) -> dict:
        # Every field is a plain value: no need for dataclasses.asdict's deep copy, the
        # bulk of writing a long replay's log.
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {
            "reasons": list(self.reasons)}


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
    counters : Counter
        What the gateway's frame counters would read (``frames_exchange_tx``, ...), and
        ``stomped`` (session frames that ended void: they leave with a bad FCS).
    """

    def __init__(self, limits: Limits, sizes, width: int):
        self.limits = limits
        self.gate = Gate(sizes.n_sessions, sizes.n_symbols, sizes.n_orders, sizes.n_executions,
                         n_verdicts=sizes.n_verdicts)
        table = {s.index: (s.client.ip, s.client.port, s.exchange.ip, s.exchange.port)
                 for s in limits.sessions}
        self.ingress = {port: IngressModel(table, toward_exchange=port == "client",
                                           width=width) for port in ("client", "exchange")}
        self._reported = [True] * sizes.n_sessions      # the engine's view (core.py)
        self._interval = max(1, limits.gateway.heartbeat_timeout_us // 2)
        self._heartbeat = 0
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
            entries.append(VerdictEntry.of(index, t, event, v, result.void))
        if result.void and result.events:
            session = result.events[0].session
            gate.apply(FrameVoid(t, session))
            for ref in accepted:
                gate.apply(Revoke(t, session, ref))
        self.counters["dropped_no_session"] += marked_for_drop(data, result.session)
        if result.session is None and not is_arp(data):
            return None, entries
        self.counters["frames_exchange_tx"] += 1
        if result.session is None:
            return data, entries
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


def session_states(gate, limits: Limits) -> list[dict]:
    """Each session's state at the end of a replay, as the summary shows it."""
    return [{"index": s.index, "name": s.name, "in_sync": gate.sessions[s.index].in_sync,
             "killed": gate.kill_session[s.index],
             "last_user_ref_num": gate.sessions[s.index].last_user_ref_num,
             "credit_used": gate.sessions[s.index].credit_used} for s in limits.sessions]


@dataclasses.dataclass
class Outcome:
    """What a replay made (either engine): the verdict log, each port's output (pcap
    records), the warnings and the figures.

    Attributes
    ----------
    counters : dict
        The gateway's frame and order counters (the model's count, or the gateware's).
    state : dict
        ``ingress_counters`` (the ingress references'), ``sessions``
        (:func:`session_states`), ``kill_gateway``.
    mismatches : list of str
        Where the gateware and the model disagree (empty for the model engine).
    """

    entries: list
    to_exchange: list
    to_client: list
    midstream: list
    warnings: list
    frames: int
    seconds: float
    counters: dict
    state: dict
    mismatches: list = dataclasses.field(default_factory=list)

    def summary(self) -> dict:
        """The counts ``summary.txt`` and ``--json`` show (docs/replay.md)."""
        verdicts = Counter(e.verdict for e in self.entries)
        reasons = Counter(name for e in self.entries for name in e.reasons)
        return {
            "frames": self.frames,
            "client_messages": len(self.entries),
            "verdicts": {"accept": verdicts["accept"], "reject": verdicts["reject"]},
            "reasons": {r.name: reasons[r.name] for r in Reason if reasons[r.name]},
            "frames_out": {"to_exchange": len(self.to_exchange),
                           "to_client": len(self.to_client)},
            "gateway_counters": dict(self.counters),
            **self.state,
            "midstream": [dataclasses.asdict(m) for m in self.midstream],
            "warnings": list(self.warnings),
            "mismatches": list(self.mismatches),
            "seconds": round(self.seconds, 3),
            "orders_per_s": round(len(self.entries) / self.seconds) if self.seconds else None,
        }


class Progress:
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


@dataclasses.dataclass(frozen=True)
class Arrival:
    """One frame on a gateway port: ``index`` its position in the capture (None: a SYN
    ``assume_start`` put there), ``t_us`` the replay's time, ``timestamp_ns`` the capture's."""

    index: int | None
    port: str
    data: bytes
    t_us: int
    timestamp_ns: int


def timeline(records, limits: Limits, *, assume_start: bool = False,
             max_gap_us: int | None = None) -> tuple[list, list, list]:
    """The arrivals both engines play, the mid-stream streams and the warnings.

    Time 0 is the first frame's timestamp; a timestamp before the previous frame's is taken
    at the previous frame's time; ``max_gap_us`` shortens longer idle gaps to itself (the
    gateware engine's cycles cost real time).
    """
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
    starts = assumed_starts(records, limits) if assume_start else {}
    arrivals, t, previous, backwards, shortened = [], 0, None, 0, 0
    for index, record in enumerate(records):
        if previous is not None:
            gap = (record.timestamp_ns - previous) // 1000
            backwards += gap < 0
            if max_gap_us is not None and gap > max_gap_us:
                gap, shortened = max_gap_us, shortened + 1
            t += max(0, gap)
        previous = record.timestamp_ns
        for port, syn in starts.get(index, ()):
            arrivals.append(Arrival(None, port, syn, t, record.timestamp_ns))
        arrivals.append(Arrival(index, port_of(record.data, limits), record.data, t,
                                record.timestamp_ns))
    if backwards:
        warnings.append(f"{backwards} frames have a timestamp before the previous frame's; "
                        "each is taken at the previous frame's time")
    if shortened:
        warnings.append(f"{shortened} idle gaps longer than {max_gap_us} us were shortened "
                        "to that")
    return arrivals, midstream, warnings


def replay_model(records, limits: Limits, sizes, width: int, *, assume_start: bool = False,
                 max_gap_us: int | None = None, progress: bool = True) -> Outcome:
    """Replay captured ``records`` through the model gateway (see the module docstring)."""
    begin = time.process_time()
    arrivals, midstream, warnings = timeline(records, limits, assume_start=assume_start,
                                             max_gap_us=max_gap_us)
    gateway = ModelGateway(limits, sizes, width)
    gateway.start()
    entries, out = [], {"client": [], "exchange": []}
    bar = Progress(len(arrivals)) if progress else None
    for k, arrival in enumerate(arrivals):
        left, judged = gateway.frame(arrival.port, arrival.data, arrival.t_us, arrival.index)
        entries.extend(judged)
        if left is not None and arrival.index is not None:
            # Out on the other port: toward the exchange for a client frame.
            side = "exchange" if arrival.port == "client" else "client"
            out[side].append(pcap.PcapRecord(arrival.timestamp_ns, left))
        if bar is not None and k % 256 == 255:
            bar.update(k + 1)
    if bar is not None:
        bar.update(len(arrivals))
    verdicts = Counter(e.verdict for e in entries)
    counters = {"orders_accepted": verdicts["accept"], "orders_rejected": verdicts["reject"],
                **{name: gateway.counters[name] for name in (
                    "frames_exchange_tx", "frames_client_tx", "dropped_no_session", "stomped")}}
    state = {"ingress_counters": {p: dict(m.counters) for p, m in gateway.ingress.items()},
             "sessions": session_states(gateway.gate, limits),
             "kill_gateway": gateway.gate.kill_gateway}
    return Outcome(entries, out["exchange"], out["client"], midstream, warnings, len(records),
                   time.process_time() - begin, counters, state)
