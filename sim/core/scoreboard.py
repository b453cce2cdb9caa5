"""The core scoreboard: what the gateway must do with the frames the bench sends, gateware aside.

Every frame sent goes through the ingress reference (:class:`wiregate.sw.extract.IngressModel`,
one per port, with the session table the gateway has active when the frame arrives): it
names the frame's session, its events and whether it ends void. The client events and the
void frames, and the exchange events of frames that end good (retransmitted bytes aside: the
event hold applied them the first time), go to the :class:`~wiregate.sim.replay.Replay`, which
checks every drop-copy record against the model.

At the end (:meth:`Scoreboard.check`):

- each client frame leaves toward the exchange unless it belongs to no session (ARP passes
  unchanged); it leaves with each ``U`` packet the model rejected rewritten by
  :func:`wiregate.sw.rewrite.reject_in_place`, and with ``error`` on its last byte when it
  came with a bad FCS or ends void; unless stomped so, its TCP checksum is still right
  (the host decoder checks), and no Enter or Replace the model did not accept leaves as a
  ``U`` packet;
- the frames toward the clients are the exchange's, unchanged, errors kept.
"""

from wiregate.sw.extract import IngressModel, Segment, is_arp
from wiregate.sw.proto.frames import parse_frame
from wiregate.sw.rewrite import DATA_TYPE, reject_in_place

from ..replay import Mismatch, Replay

__all__ = ["Scoreboard"]

_NEW_ORDERS = {ord("O"), ord("U")}


class Scoreboard:
    """Expectations of one bench run (see the module docstring).

    Parameters
    ----------
    width : int
        Bytes per beat.
    gate : Gate
        The model the records replay through.

    Attributes
    ----------
    replay : Replay
    sent : list
        Client frames in wire order: (bytes, error, FrameResult).
    exchange_sent, egress, client_tx : list
        Frames (bytes, error): sent to the exchange port, seen leaving toward the exchange,
        seen leaving toward the clients.
    """

    def __init__(self, width: int, gate):
        self.width = width
        self.replay = Replay(gate)
        self.sessions = {}
        self._models = {direction: IngressModel({}, toward_exchange=direction == "client",
                                                width=width)
                        for direction in ("client", "exchange")}
        self.sent = []
        self.exchange_sent = []
        self.egress = []
        self.client_tx = []

    def set_sessions(self, sessions: dict) -> None:
        """The session table the gateway has active from now on: index -> (client_ip,
        client_port, exchange_ip, exchange_port). The streams' state is kept."""
        self.sessions = dict(sessions)
        for direction, old in self._models.items():
            new = IngressModel(sessions, toward_exchange=direction == "client",
                               width=self.width)
            new.tracker, new.saved, new.counters = old.tracker, old.saved, old.counters
            self._models[direction] = new

    def counters(self, direction: str) -> dict:
        """The ingress reference's counters of ``direction`` (``client`` or ``exchange``):
        events, malformed ones by reason, crowded, unrewritable and void frames."""
        return dict(self._models[direction].counters)

    def in_sync(self, session: int) -> bool:
        """Both trackers of ``session`` follow their streams (the gateway's sync view)."""
        return all(isinstance(m.tracker.next.get(session), int) for m in self._models.values())

    def client_frame(self, frame: bytes, error: bool):
        """A client frame goes on the wire now; returns its FrameResult."""
        result = self._models["client"].frame(frame, error)
        for event in result.events:
            if event.malformed and not event.room:
                raise Mismatch(f"bench error: a malformed packet without room in {frame.hex()}")
        self.replay.client_frame(len(self.sent), result.events, result.void)
        self.sent.append((frame, error, result))
        return result

    def exchange_frame(self, frame: bytes, error: bool):
        """An exchange frame goes on the wire now; returns its FrameResult."""
        result = self._models["exchange"].frame(frame, error)
        if not result.void:
            for event in result.events:
                if not event.retransmit:
                    self.replay.exchange_event(event)
        self.exchange_sent.append((frame, error))
        return result

    @staticmethod
    def taken(result, error: bool) -> bool:
        """The gateway's tracker took the frame as new bytes of its stream."""
        return result.segment == Segment.NEW and not error

    def expected_egress(self):
        """(client frame index, bytes, error) of every frame that must leave toward the
        exchange, in order."""
        out = []
        for index, (frame, error, result) in enumerate(self.sent):
            if result.session is None:
                if is_arp(frame):
                    out.append((index, frame, error))
                continue
            data = frame
            for event, verdict in self.replay.verdicts.get(index, ()):
                if not verdict.accept:
                    data = reject_in_place(data, event.type_offset)
            out.append((index, data, error or result.void))
        return out

    def check(self) -> list[str]:
        """Every end-of-run comparison; returns the problems found (empty: all good)."""
        problems = []
        waiting = {k: v for k, v in self.replay.waiting.items() if v}
        if waiting:
            problems.append(f"sent but never in the drop copy: {waiting}")
        expected = self.expected_egress()
        if len(self.egress) != len(expected):
            problems.append(f"{len(self.egress)} frames left toward the exchange, "
                            f"{len(expected)} expected")
        differs = False
        for (index, data, error), (got, got_error) in zip(expected, self.egress, strict=False):
            if (got, got_error) != (data, error) and not differs:
                differs = True      # the first difference; later frames may all be shifted
                problems.append(f"client frame {index} left as ({got.hex()}, error={got_error})"
                                f", expected ({data.hex()}, error={error})")
            if is_arp(data):
                continue
            problems.extend(self._unchanged_orders(index, got))
            # A stomped frame is discarded whatever its checksum (it may have come bad).
            if not error and not parse_frame(got).tcp.checksum_ok:
                problems.append(f"client frame {index} left with a bad TCP checksum")
        if self.client_tx != self.exchange_sent:
            first = next((k for k, (a, b) in enumerate(zip(self.client_tx, self.exchange_sent,
                                                           strict=False)) if a != b),
                         min(len(self.client_tx), len(self.exchange_sent)))
            problems.append(f"toward the clients: {len(self.client_tx)} frames, "
                            f"{len(self.exchange_sent)} sent; first difference at {first}")
        return problems

    def _unchanged_orders(self, index, egress: bytes) -> list[str]:
        """An Enter or Replace left as a ``U`` packet: the model must have accepted it."""
        verdicts = {event.type_offset: verdict
                    for event, verdict in self.replay.verdicts.get(index, ())}
        problems = []
        for event in self.sent[index][2].events:
            if event.malformed or event.msg_type not in _NEW_ORDERS:
                continue
            if egress[event.type_offset] != DATA_TYPE:
                continue
            verdict = verdicts.get(event.type_offset)
            if verdict is None or not verdict.accept:
                problems.append(f"client frame {index}: the {chr(event.msg_type)} at offset "
                                f"{event.type_offset} left unchanged, model verdict {verdict}")
        return problems
