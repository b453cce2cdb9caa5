# Ref: wiregate reject notice 1.0 (this module is the specification; docs/notices.md explains it)
"""Reject notices: tell a client's own systems that the gateway stopped one of its orders.

A rejected order leaves toward the exchange as a SoupBinTCP Debug packet, so the exchange
never answers it and the client's order manager would wait for an answer that never comes.
The host therefore publishes a notice for every rejected client message, read from the drop
copy, as one UDP datagram: a JSON object in UTF-8 ending in a newline (so a receiver that
appends datagrams to a file gets JSON lines).

Each session's notices go to that session's own destinations (a client never sees another
client's rejects); a desk destination, such as the risk desk's, may take every session's.
UDP may lose or reorder datagrams: ``notice`` counts the datagrams sent to that destination
from 0 with no gap, so a receiver knows when it missed one, and ``sequence`` is the drop-copy
record's, so the broker can find the record (and the audit entry) behind any notice.
"""

import json
import logging
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wiregate.sw.dropcopy import Kind, Record
from wiregate.sw.reasons import OUCH_EQUIVALENT, Reason, describe, primary

__all__ = ["VERSION", "Destination", "NoticePublisher", "notice"]

VERSION = 1
log = logging.getLogger(__name__)


def _letter(code: int) -> str:
    return chr(code) if 0x20 < code < 0x7F else ""


def notice(record: Record, *, gateway: str, session_name: str | None = None) -> dict | None:
    """The notice of ``record`` (without its per-destination ``notice`` count).

    None unless ``record`` is the verdict of a rejected client message. ``msg_type`` is ""
    for a message the gateway could not decode; ``ouch_reason`` is the OUCH 5.0 Rejected
    reason code closest to the primary reason (0 when there is none).
    """
    if record.kind != Kind.VERDICT or record.accept:
        return None
    first = primary(record.reasons)
    return {
        "v": VERSION,
        "gateway": gateway,
        "sequence": record.sequence,
        "time_us": record.time_us,
        "session": record.session,
        "session_name": session_name,
        "msg_type": _letter(record.msg_type),
        "user_ref_num": record.user_ref_num,
        "orig_user_ref_num": record.orig_user_ref_num,
        "side": _letter(record.side),
        "quantity": record.quantity,
        "price": record.price,
        "symbol": record.symbol.decode("ascii", "replace").rstrip(" \0"),
        "reasons": describe(record.reasons),
        "primary": Reason(first).name if first is not None else None,
        "ouch_reason": OUCH_EQUIVALENT.get(first, 0),
        "retransmit": bool(record.retransmit),
    }


@dataclass
class Destination:
    """Where notices go: an address, and how many notices it was sent (its next ``notice``)."""

    host: str
    port: int
    sent: int = 0
    failed: int = 0


class NoticePublisher:
    """Publish a notice for each rejected client message, to its session's destinations.

    Parameters
    ----------
    sessions : Mapping[int, Iterable[tuple[str, int]]]
        Session index to the (host, port) pairs of that client's systems.
    desk : Iterable[tuple[str, int]]
        Destinations that take every session's notices.
    gateway : str
        The gateway's name, carried in every notice.
    session_names : Mapping[int, str]
        Names from the limit file, carried beside the index.

    The socket never blocks the drop-copy reader: a datagram the operating system refuses
    is counted in its destination's ``failed`` and logged, and its ``notice`` number is
    still used, so the receiver sees the gap.
    """

    def __init__(self, sessions: Mapping[int, Iterable[tuple[str, int]]], *,
                 desk: Iterable[tuple[str, int]] = (), gateway: str = "wiregate",
                 session_names: Mapping[int, str] | None = None) -> None:
        self._sessions = {index: [Destination(h, p) for h, p in pairs]
                          for index, pairs in sessions.items()}
        self._desk = [Destination(h, p) for h, p in desk]
        self._gateway = gateway
        self._names = dict(session_names or {})
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    @property
    def destinations(self) -> list[Destination]:
        return [d for pairs in self._sessions.values() for d in pairs] + self._desk

    def publish(self, record: Record) -> int:
        """Send ``record``'s notice, if it has one; returns how many datagrams were sent."""
        body = notice(record, gateway=self._gateway,
                      session_name=self._names.get(record.session))
        if body is None:
            return 0
        sent = 0
        for target in self._sessions.get(record.session, []) + self._desk:
            body["notice"] = target.sent
            target.sent += 1
            data = (json.dumps(body, separators=(",", ":")) + "\n").encode()
            try:
                self._socket.sendto(data, (target.host, target.port))
                sent += 1
            except OSError as exc:
                target.failed += 1
                log.warning("reject notice %d to %s:%d not sent: %s", body["notice"],
                            target.host, target.port, exc)
        return sent

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "NoticePublisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
