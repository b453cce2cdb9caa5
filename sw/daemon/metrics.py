"""The daemon's Prometheus metrics (``prometheus-client``), on their own registry.

Per session (label ``session``, the limit file's name) from the drop copy, which the daemon
reads whole: orders by verdict, rejects by primary reason. Gateway-wide from the gateway's
own counters (``wiregate_gateway_counter{counter=...}``, read every status interval) and
state: fail-closed states, kill latches, epoch. The daemon's own: drop-copy records and lag,
shadow checks and mismatches, heartbeat age, alerts and actions.
"""

import time
from collections import Counter as Tally
from operator import attrgetter

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from wiregate.sw.dropcopy import Control, Kind, Record
from wiregate.sw.model import SCOPES
from wiregate.sw.reasons import NO_PRIMARY, Reason

__all__ = ["FAIL_CLOSED", "Metrics"]

# What a batch is tallied by (in C, not a Python loop): the kind, and a verdict's key.
_TALLIED = attrgetter("kind", "session", "accept", "primary")

# The gateway's fail-closed states the status block shows, as ``state`` labels.
FAIL_CLOSED = ("limits_not_loaded", "heartbeat_lost", "kill_gateway")


class Metrics:
    """Every metric, on ``registry``; :meth:`serve` opens the endpoint.

    Parameters
    ----------
    clock : callable
        Host seconds (monotonic), for the heartbeat's age.
    """

    def __init__(self, clock=time.monotonic):
        self.registry = r = CollectorRegistry()
        self._clock = clock
        self._sessions: dict[int, str] = {}
        self._verdicts: dict[tuple, tuple] = {}     # (session, accept, primary) -> children
        self.orders = Counter("wiregate_orders", "client messages judged, by verdict "
                              "(drop copy)", ["session", "verdict"], registry=r)
        self.rejects = Counter("wiregate_rejects", "rejected client messages by primary "
                               "reason (drop copy)", ["session", "reason"], registry=r)
        self.kills = Counter("wiregate_kills", "kill latches set, by scope (drop copy)",
                             ["scope"], registry=r)
        self.records = Counter("wiregate_dropcopy_records", "drop-copy records read, checked "
                               "and audited", registry=r)
        self.lag = Gauge("wiregate_dropcopy_lag_records", "records the gateway had queued "
                         "ahead of the last one read (its queued field)", registry=r)
        self.sequence = Gauge("wiregate_dropcopy_next_sequence", "sequence number the next "
                              "record must carry", registry=r)
        self.behind = Gauge("wiregate_dropcopy_behind_records", "records the gateway had sent "
                            "at the last counter read that were not read yet", registry=r)
        self.lag_us = Gauge("wiregate_dropcopy_lag_us", "gateway microseconds the drop copy "
                            "read is behind, at the last status read: the gateway's timebase "
                            "minus the time of the last record read, while records the "
                            "gateway made were still unread (0 when caught up)", registry=r)
        self.last_time_us: int | None = None    # time_us of the last record counted
        self.checked = Counter("wiregate_shadow_checked", "records the shadow check found in "
                               "agreement with the model", registry=r)
        self.mismatches = Counter("wiregate_shadow_mismatches", "records the shadow check "
                                  "found in disagreement", registry=r)
        self.fail_closed = Gauge("wiregate_fail_closed", "1 while the gateway is in this "
                                 "fail-closed state", ["state"], registry=r)
        self.session_killed = Gauge("wiregate_session_killed", "1 while the session's kill "
                                    "latch is set", ["session"], registry=r)
        self.session_in_sync = Gauge("wiregate_session_in_sync", "1 while the session's TCP "
                                     "streams are in sync (0 fails it closed)", ["session"],
                                     registry=r)
        self.epoch = Gauge("wiregate_epoch", "commits since the gateway's reset", registry=r)
        self.gateway = Gauge("wiregate_gateway_counter", "the gateway's own counters, "
                             "gateway-wide, at the last read", ["counter"], registry=r)
        self.heartbeats = Counter("wiregate_heartbeats", "heartbeats the gateway answered",
                                  registry=r)
        self._last_heartbeat: float | None = None
        Gauge("wiregate_heartbeat_age_seconds", "host seconds since the last heartbeat the "
              "gateway answered", registry=r).set_function(self._heartbeat_age)
        self.alerts = Counter("wiregate_alerts", "alerts raised, by name", ["alert"],
                              registry=r)
        self.references = Counter("wiregate_references_written", "reference prices written "
                                  "from the reference feed", registry=r)
        self.actions = Counter("wiregate_actions", "actions carried out, by check and kind",
                               ["check", "kind"], registry=r)

    def serve(self, host: str, port: int) -> int:
        """Open the endpoint; return its port (``port`` 0 picks a free one)."""
        server, _ = start_http_server(port, host, registry=self.registry)
        self._server = server
        return server.server_port

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()

    def name_sessions(self, names: dict[int, str]) -> None:
        self._sessions = dict(names)
        self._verdicts.clear()

    def _verdict_children(self, session: int, accept: int, primary: int) -> tuple:
        name = self.session(session)
        if accept:
            return (self.orders.labels(name, "accept"),)
        reason = "NONE" if primary == NO_PRIMARY else Reason(primary).name
        return self.orders.labels(name, "reject"), self.rejects.labels(name, reason)

    def session(self, index: int) -> str:
        return self._sessions.get(index, str(index))

    def heartbeat(self) -> None:
        self.heartbeats.inc()
        self._last_heartbeat = self._clock()

    def _heartbeat_age(self) -> float:
        if self._last_heartbeat is None:
            return float("nan")
        return self._clock() - self._last_heartbeat

    def count(self, records: list[Record], agreed: int = 0) -> None:
        """Count drop-copy records read, in order, ``agreed`` of them in agreement with the
        shadow check: each counter moves once per batch (by how many), not per record."""
        if not records:
            return
        self.records.inc(len(records))
        if agreed:
            self.checked.inc(agreed)
        last = records[-1]
        self.lag.set(last.queued)
        self.sequence.set(last.sequence + 1)
        self.last_time_us = last.time_us
        verdict, kill = Kind.VERDICT, Control.KILL
        for (kind, *key), times in Tally(map(_TALLIED, records)).items():
            if kind != verdict:
                continue
            key = tuple(key)
            children = self._verdicts.get(key)
            if children is None:    # labels() costs more than the count: once per key
                children = self._verdicts[key] = self._verdict_children(*key)
            for child in children:
                child.inc(times)
        for rec in [r for r in records if r.control == kill]:
            if rec.argument < len(SCOPES):
                self.kills.labels(SCOPES[rec.argument]).inc()

    def status(self, state: dict, counters: dict, next_sequence: int) -> None:
        """The status block (:meth:`~wiregate.sw.driver.Driver.status`) and the counters."""
        self.fail_closed.labels("limits_not_loaded").set(1 - state["limits_loaded"])
        self.fail_closed.labels("heartbeat_lost").set(state["heartbeat_lost"])
        self.fail_closed.labels("kill_gateway").set(state["kill_gateway"])
        self.epoch.set(state["epoch"])
        for index, name in self._sessions.items():
            self.session_killed.labels(name).set(state["kill_sessions"] >> index & 1)
            self.session_in_sync.labels(name).set(state["in_sync"] >> index & 1)
        for name, value in counters.items():
            self.gateway.labels(name).set(value)
        made = counters["dropcopy_records"] + counters["dropcopy_overflow"]
        behind = max(0, made - next_sequence)
        self.behind.set(behind)
        # Status first, counters after: a record made before the timebase read is counted.
        last = self.last_time_us
        self.lag_us.set(0 if not behind else
                        state["timebase_us"] - (0 if last is None else last))
