"""The daemon's service loop: keep the gateway alive and loaded, shadow every record, audit.

:class:`Daemon` runs these at once over one :class:`~wiregate.sw.driver.Driver`:

- the drop copy, read continuously: every record is written to the audit log, counted,
  replayed through the shadow check (:class:`~wiregate.sw.shadow.ShadowCheck`) and given to
  every configured check; a shadow mismatch kills at the configured scope at once, then
  alerts with both sides; a check's :class:`~wiregate.sw.daemon.actions.Action` is carried
  out here, the one place that executes, audits and counts actions;
- the heartbeat, every interval; the status block and counters (for the metrics and the
  fail-closed alerts), every status interval;
- the limit file, watched: a changed file is pushed only once it passes what ``limits
  check`` checks for this gateway (and compiles for its tables); a bad one changes nothing
  and raises an alert;
- the stop: on :meth:`Daemon.stop` the heartbeat and the watch end, the transport is
  half-closed and the drop copy read to its end, so a stop loses no record (over
  ``sim://``; docs/daemon.md).

A restart resumes from the audit log: every drop-copy entry holds its record's wire bytes,
and every push its limit file's text and the tightenings on top of it, so the shadow model
is rebuilt by replaying the log, and the next record read must be the one after the last one
logged; one already logged is skipped (never counted twice); one further on is a gap, which
the shadow check reports as a mismatch (the replay is no longer exact) and the daemon fails
closed on it. A gateway whose epoch is below the log's last commit was reset: the daemon
raises ``gateway_reset`` (an alert entry, where a later replay starts afresh too) and starts
a fresh model for the drop copy that begins again at 0.
"""

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import replace
from pathlib import Path

from wiregate.sw.audit import AuditWriter, entry_records, iter_entries, log_files, record_body
from wiregate.sw.driver import CommandRefused, Driver, GatewayTimeout, PushRefused, Transport
from wiregate.sw.dropcopy import Control, Kind, Record
from wiregate.sw.limits import Limits, LimitsError, parse_limits
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.shadow import Mismatch, ShadowCheck
from wiregate.sw.tables import Reference, SymbolTableFull, compile_limits

from .actions import Action
from .alerts import Alerts
from .config import DaemonConfig
from .metrics import Metrics
from .references import ReferenceFeed, open_source, write_reference

__all__ = ["Daemon", "configured_checks", "tightened"]

log = logging.getLogger("wiregate.daemon")

_CONTROL, _COMMIT = Kind.CONTROL, Control.COMMIT     # looked up once, not per record

_TIGHTEN = re.compile(r"^\s*(\w+)\s*=\s*(\d+)\b")
# The limits a tighten may lower, by where they live (the gateway's when the target is None).
_TIGHTENABLE = {
    "session": ("max_order_quantity", "max_order_notional", "credit"),
    "symbol": ("max_order_quantity", "max_order_notional", "max_long", "max_short", "collar"),
    "gateway": ("credit",),
}

# What a failed command raises; the daemon alerts and carries on (the gateway fails closed
# by itself if the host goes silent).
_COMMAND_ERRORS = (CommandRefused, GatewayTimeout, PushRefused, ProtocolError, ConnectionError)


def tightened(limits: Limits, changes) -> Limits:
    """``limits`` with each ``(target, field, value)`` of ``changes`` applied in order.

    ``target`` is a session's name, a symbol, or None for the gateway's own limits; a value
    is in the limit file's integer units (shares, 1/10,000 dollar). Raises ValueError for an
    unknown target or field, or a value that is not below the one in effect: a tighten
    never loosens.
    """
    for target, name, value in changes:
        if target is None:
            where, entries = "gateway", [limits.gateway]
        else:
            where = "session" if any(s.name == target for s in limits.sessions) else "symbol"
            entries = [e for e in (limits.sessions if where == "session" else limits.symbols)
                       if (e.name if where == "session" else e.symbol) == target]
        if not entries:
            raise ValueError(f"no session or symbol {target!r} in the limits in effect")
        if name not in _TIGHTENABLE[where]:
            raise ValueError(f"a {where}'s {name!r} cannot be tightened (one of "
                             f"{', '.join(_TIGHTENABLE[where])})")
        entry = entries[0]
        if value >= getattr(entry, name):
            raise ValueError(f"{target or 'gateway'} {name} = {value} is not below "
                             f"{getattr(entry, name)}: a tighten never loosens")
        new = replace(entry, **{name: value})
        if where == "gateway":
            limits = replace(limits, gateway=new)
        else:
            field = "sessions" if where == "session" else "symbols"
            rows = list(getattr(limits, field))
            rows[entry.index] = new
            limits = replace(limits, **{field: tuple(rows)})
    return limits


def configured_checks(section: dict) -> list:
    """The richer checks a configuration's ``checks:`` section declares (none if empty)."""
    if not section:
        return []
    # Imported only when configured: the checks are their own module.
    from wiregate.sw.daemon.checks import build_checks
    return build_checks(section)


class Daemon:
    """One gateway, kept alive, loaded, shadowed and audited (module docstring).

    Parameters
    ----------
    config : DaemonConfig
    checks : list or None
        Objects with ``name`` and ``observe(record) -> list[Action]``; None builds those of
        ``config.checks``.
    metrics : Metrics or None

    Attributes
    ----------
    shadow : ShadowCheck or None
        Set once the gateway identified itself.
    limits : Limits or None
        The limits in effect: those of the last COMMIT record read.
    mismatch : Mismatch or None
        The shadow check's first disagreement.
    feed : ReferenceFeed or None
        The reference feed, once configured and limits are committed.
    reference_source : object or None
        The reference source, once opened (a UDP source's ``address`` is where it listens).
    """

    def __init__(self, config: DaemonConfig, *, checks=None, metrics: Metrics | None = None):
        self.config = config
        self.checks = configured_checks(config.checks) if checks is None else list(checks)
        self.metrics = metrics or Metrics()
        self.shadow: ShadowCheck | None = None
        self.limits: Limits | None = None
        self.mismatch: Mismatch | None = None
        self.driver: Driver | None = None
        self._text: str | None = None       # the limit file's text last committed
        self._refused: str | None = None    # the text last refused (alerted once)
        self._pushed: dict[int, Limits] = {}    # epoch -> limits, until its COMMIT record
        self._changes: list[tuple] = []     # tightenings on top of the file's text
        self._pushing = asyncio.Lock()
        self._side: set[asyncio.Task] = set()   # tightens under way
        self._stopping = asyncio.Event()
        self._fail_closed: dict[str, int] = {}
        self._log_epoch = 0         # the last commit the audit log holds
        self.feed: ReferenceFeed | None = None
        self.reference_source = None
        self._feed_limits: Limits | None = None     # the limits self.feed was made for
        self._commit_us = 0         # the gateway's time of the last COMMIT record
        self._taken: list[Record] = []  # records taken, not yet counted in the metrics
        self._agreed = 0            # of them, those the shadow check found in agreement

    def stop(self) -> None:
        """End :meth:`run` after reading the drop copy to its end."""
        self._stopping.set()

    # -- start ------------------------------------------------------------------------------

    async def run(self, transport: Transport) -> None:
        """Serve the gateway behind ``transport`` until :meth:`stop`; closes the transport."""
        config = self.config
        key = None if config.audit_key_file is None else \
            Path(config.audit_key_file).read_bytes().strip()
        self._transport = transport
        self.driver = driver = Driver(transport, timeout=config.timeout)
        try:
            # The writer first: it verifies the log (nothing is sent on a broken one) and
            # keeps a line torn by a crash in an alert entry, so the replay reads whole
            # entries only.
            self.audit = AuditWriter(config.audit_path, key=key,
                                     max_bytes=config.audit_max_bytes, batch=config.audit_batch,
                                     symbols=self._symbol)
            self.audit.flush()
            self.alert = Alerts(self.audit, self.metrics)
            try:
                self.shadow = ShadowCheck.for_profile(await driver.identify())
                self._resume(key)
                await self._start()
                await self._serve()
            finally:
                self.audit.close()
        finally:
            await driver.close()

    def _resume(self, key: bytes | None) -> None:
        """Rebuild the shadow model and the committed limits from the audit log."""
        folder = Path(self.config.audit_path)
        if not folder.is_dir() or not log_files(folder):
            return
        pushes: dict[int, tuple[str, list]] = {}
        for entry in iter_entries(folder, key):
            body = entry.body
            if entry.kind == "command" and body.get("command") == "push":
                pushes[body["epoch"]] = body["text"], [tuple(c) for c in body["tighten"]]
            elif entry.kind == "alert" and body["alert"] == "gateway_reset":
                self._new_life()
            elif entry.kind == "dropcopy":
                for rec in entry_records(entry):
                    if rec.kind == Kind.CONTROL and rec.control == Control.COMMIT:
                        self._log_epoch = rec.argument
                        if rec.argument in pushes:      # else the shadow's mismatch says
                            self._text, self._changes = pushes[rec.argument]
                            self._committed(tightened(self._parse(self._text), self._changes))
                    self.mismatch = self.shadow.check(rec)
        log.info("resumed from the audit log: %d records replayed, next sequence %d",
                 self.shadow.checked, self.shadow.next_sequence)

    def _parse(self, text: str) -> Limits:
        regmap = self.driver.regmap
        return parse_limits(text, str(self.config.limits), max_sessions=regmap.n_sessions,
                            max_symbols=regmap.n_symbols)

    async def _start(self) -> None:
        state = await self.driver.status()
        counters = await self.driver.counters()
        if state["epoch"] < self._log_epoch:
            # Reset (or replaced) since the log's last commit: its drop copy starts again
            # from 0. The log goes on, with the reset in it; the model starts afresh.
            self.alert("gateway_reset", f"the gateway is at epoch {state['epoch']}, the audit "
                       f"log at {self._log_epoch}: it was reset, and its drop copy starts "
                       "again; the shadow model starts afresh", epoch=state["epoch"],
                       log_epoch=self._log_epoch)
            self._new_life()
        self.audit.append("command", {
            "command": "start", "epoch": state["epoch"], "limits_loaded": state["limits_loaded"],
            "next_sequence": self.shadow.next_sequence,
            "records_made": counters["dropcopy_records"] + counters["dropcopy_overflow"]})
        if self.mismatch is not None:
            self.alert("shadow_failed_before", "the audit log holds a shadow mismatch: this "
                       "daemon cannot vouch for the gateway until it is reset",
                       mismatch=str(self.mismatch))
        if not state["limits_loaded"]:
            self._text = None       # whatever the log says was committed, push it again
            # The push is under way: no alert for the state it ends (push_failed if not).
            self._fail_closed["limits_not_loaded"] = 1
        self.metrics.status(state, counters, self.shadow.next_sequence)

    def _read_limits(self) -> str | None:
        try:
            return Path(self.config.limits).read_text()
        except (OSError, UnicodeDecodeError) as error:
            if self._refused != "":
                self._refused = ""
                self.alert("limits_unreadable", f"{self.config.limits}: {error}")
            return None

    def _new_life(self) -> None:
        """The gateway was reset: a fresh model, nothing committed."""
        self.shadow = ShadowCheck.for_profile(self.driver.regmap)
        self.mismatch = self.limits = self._text = None
        self._changes, self._log_epoch = [], 0

    def _committed(self, limits: Limits) -> None:
        """The gateway's drop copy says ``limits`` took effect: names follow them now."""
        self.limits = limits
        self.shadow.commit(limits)
        self.metrics.name_sessions({s.index: s.name for s in limits.sessions})

    # -- the limit file ---------------------------------------------------------------------

    async def _consider(self, text: str | None) -> None:
        """Push ``text`` if it passes the check; a bad file changes nothing and alerts once."""
        if text is None or text == self._text or text == self._refused:
            return
        try:
            limits = self._parse(text)
            image = compile_limits(limits, self.driver.regmap)
        except LimitsError as error:
            self._refuse(text, [str(p) for p in error.problems])
            return
        except (SymbolTableFull, ValueError) as error:
            self._refuse(text, [str(error)])
            return
        await self._push(text, limits, image)

    def _refuse(self, text: str, problems: list[str]) -> None:
        self._refused = text
        self.alert("limits_rejected", f"{self.config.limits} fails the limits check; the "
                   "gateway keeps the limits it has", problems=problems,
                   sha256=hashlib.sha256(text.encode()).hexdigest())

    def _held(self) -> dict[int, Reference]:
        gate = self.shadow.gate
        return {y.index: Reference(y.symbol, *gate.reference(y.index))
                for y in gate.limits.symbols} if gate.loaded else {}

    async def _push(self, text: str, limits: Limits, image, changes=()) -> bool:
        """Push ``limits``: the file's ``text`` with the tightenings ``changes`` applied."""
        async with self._pushing:       # the watch and a tighten never interleave
            return await self._push_now(text, limits, image, list(changes))

    async def _push_now(self, text: str, limits: Limits, image, changes: list) -> bool:
        state = await self.driver.status()
        epoch = state["epoch"] + 1
        self._pushed[epoch] = limits
        self.audit.append("command", {
            "command": "push", "epoch": epoch, "file": str(self.config.limits),
            "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text,
            "tighten": changes, "verify": self.config.verify_push})
        try:
            got = await self.driver.push(image, held=self._held() if state["limits_loaded"]
                                         else None, verify=self.config.verify_push)
        except _COMMAND_ERRORS as error:
            self._pushed.pop(epoch, None)
            if not changes:
                self._refused = text
            self.alert("push_failed", f"{self.config.limits}: {error}", epoch=epoch)
            return False
        self._text, self._changes, self._refused = text, changes, None
        self.audit.append("command", {"command": "commit", "epoch": got})
        log.info("%s committed: epoch %d", self.config.limits, got)
        return True

    async def _tighten(self, action: Action) -> None:
        """Re-commit the limits in effect with one limit tightened (:func:`tightened`)."""
        match = _TIGHTEN.match(action.detail)
        async with self._pushing:       # on top of the tightenings before it
            try:
                if match is None:
                    raise ValueError(f"the detail {action.detail!r} does not start "
                                     "FIELD=VALUE")
                if self._text is None:
                    raise ValueError("no limits committed to tighten")
                target = action.target
                if target is not None and target.isdigit():     # a session by its index
                    names = [e.name for e in self.limits.sessions if str(e.index) == target]
                    if not names:
                        raise ValueError(f"no session {target!r} in the limits in effect")
                    target = names[0]
                changes = [*self._changes, (target, match[1], int(match[2]))]
                limits = tightened(self._parse(self._text), changes)
                image = compile_limits(limits, self.driver.regmap)
            except ValueError as error:
                self.alert("action_failed", f"tighten: {error}", check=action.check,
                           target=action.target)
                return
            await self._push_now(self._text, limits, image, changes)

    # -- running ----------------------------------------------------------------------------

    async def _serve(self) -> None:
        reader = asyncio.ensure_future(self._read())
        tasks = [self._heartbeat(), self._status(), self._watch()]
        if self.config.references is not None:
            tasks.append(self._references())
        keepers = [asyncio.ensure_future(task) for task in tasks]
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([reader, stopping, *keepers],
                               return_when=asyncio.FIRST_COMPLETED)
            # Each keeper ends between two commands (a push runs to its end): a command
            # left unanswered at the half-close would be answered to the next host.
            self._stopping.set()
            ended = await asyncio.gather(*keepers, *self._side, return_exceptions=True)
            if reader.done():
                reader.result()         # the drop copy ended: raise why
            else:
                await self._transport.finish()
                try:    # what the gateway sent before the half-close, to its end
                    await asyncio.wait_for(reader, 2 * self.config.timeout)
                except TimeoutError:
                    log.warning("the drop copy did not end within %.1f s of the stop",
                                2 * self.config.timeout)
            for result in ended:
                if isinstance(result, BaseException):
                    raise result
        finally:
            for task in (reader, stopping, *keepers):
                task.cancel()
            self.settle()

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; True at once if the daemon is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _read(self) -> None:
        """Every drop-copy record, until the stream ends."""
        try:
            async for rec in self.driver.records(on_gap=lambda gap: None):
                await self._record(rec)
        except ConnectionError:
            log.info("the drop copy ended at sequence %d", self.shadow.next_sequence)

    async def _record(self, rec: Record) -> None:
        mismatch = self.take(rec)
        if mismatch is not None:
            await self._disagree(rec, mismatch)
        for check in self.checks:
            for action in check.observe(rec):
                await self.execute(action)

    def take(self, rec: Record) -> Mismatch | None:
        """Log, count and shadow one record; return the shadow's first mismatch, once.

        A record already taken (its sequence below the next one) is skipped: a record is
        never logged or counted twice.
        """
        shadow = self.shadow
        if rec.sequence < shadow.next_sequence and self.mismatch is None:
            log.warning("drop copy record %d was read and logged already: skipped",
                        rec.sequence)
            return None
        if rec.kind == _CONTROL and rec.control == _COMMIT and rec.argument in self._pushed:
            self.settle()       # the records before it are named by the limits before it
            self._commit_us = rec.time_us
            self._committed(self._pushed.pop(rec.argument))
        self.audit.record(rec)      # its wire bytes, in the next entry: a restart replays them
        self._taken.append(rec)
        mismatch = None
        if self.mismatch is None:
            mismatch = shadow.check(rec)
            if mismatch is None:
                self._agreed += 1
            else:
                self.mismatch = mismatch
                self.metrics.mismatches.inc()
        if mismatch is not None or len(self._taken) >= self.config.audit_batch:
            self.settle()
        return mismatch

    def settle(self) -> None:
        """Count the records taken since the last settle (the metrics move once per batch of
        :attr:`DaemonConfig.audit_batch <wiregate.sw.daemon.config.DaemonConfig>` records,
        and at every heartbeat and status read) and write them to the audit log."""
        self.metrics.count(self._taken, self._agreed)
        self._taken, self._agreed = [], 0
        self.audit.flush()

    def _symbol(self, index: int) -> str | None:
        if self.limits is None or index >= len(self.limits.symbols):
            return None
        return self.limits.symbols[index].symbol

    async def _disagree(self, rec: Record, mismatch: Mismatch) -> None:
        """Kill at the configured scope first, then alert with both sides."""
        began = time.monotonic()
        scope = self.config.kill_scope
        if scope == "session" and rec.kind == Kind.CONTROL:
            scope = "gateway"       # a control record belongs to no session
        killed = None
        if scope != "alert":
            index = rec.session if scope == "session" else 0
            killed = await self._kill("shadow", scope, index)
        seconds = time.monotonic() - began
        self.alert("shadow_mismatch", str(mismatch), sequence=mismatch.sequence,
                   field=mismatch.field, gateway=mismatch.gateway, model=mismatch.model,
                   detail=mismatch.detail, record=record_body(rec, self._symbol),
                   kill=scope if killed else None, kill_seconds=round(seconds, 6))
        if seconds > self.config.kill_within:
            self.alert("kill_slow", f"the shadow kill took {seconds:.3f} s, above "
                       f"{self.config.kill_within} s", seconds=seconds)

    async def _kill(self, check: str, scope: str, index: int = 0) -> bool:
        self.audit.append("command", {"command": "kill", "scope": scope, "index": index,
                                      "by": check})
        try:
            await self.driver.kill(scope, index)
        except _COMMAND_ERRORS as error:
            self.alert("kill_failed", f"kill {scope} {index} for {check}: {error}")
            return False
        return True

    async def execute(self, action: Action) -> None:
        """Carry out one check's action through the driver; audit and count it."""
        self.metrics.actions.labels(action.check, action.kind).inc()
        self.alert(f"check_{action.kind}", action.detail, check=action.check,
                   target=action.target)
        if action.kind == "kill_gateway":
            await self._kill(action.check, "gateway")
        elif action.kind in ("kill_session", "kill_symbol"):
            scope = action.kind.removeprefix("kill_")
            index = self._index(scope, action.target)
            if index is None:
                self.alert("action_failed", f"{action.kind}: no {scope} {action.target!r} "
                           "in the committed limits", check=action.check)
            else:
                await self._kill(action.check, scope, index)
        elif action.kind == "tighten":
            # Beside the reader: a push is hundreds of commands, and the drop copy (and a
            # shadow kill) must not wait for it.
            task = asyncio.ensure_future(self._tighten(action))
            self._side.add(task)
            task.add_done_callback(self._side.discard)

    def _index(self, scope: str, name: str | None) -> int | None:
        """The index of a session (by name, or its index as text, as the checks give it) or
        of a symbol in the limits in effect."""
        entries = [] if self.limits is None else (
            self.limits.sessions if scope == "session" else self.limits.symbols)
        for entry in entries:
            if (entry.name if scope == "session" else entry.symbol) == name or (
                    scope == "session" and name == str(entry.index)):
                return entry.index
        return None

    async def _heartbeat(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.driver.heartbeat()
                self.metrics.heartbeat()
                self.settle()           # what was read is on disk within an interval
            except _COMMAND_ERRORS as error:
                self.alert("heartbeat_failed", str(error))
            if await self._pause(self.config.heartbeat_interval):
                return

    async def _status(self) -> None:
        # Its own task: a status read is several commands, and a heartbeat waits for at
        # most one command of each other task (the driver's lock serves them in turn).
        while not await self._pause(self.config.status_interval):
            try:
                state, counters = await self.driver.status(), await self.driver.counters()
            except _COMMAND_ERRORS as error:
                self.alert("status_failed", str(error))
                continue
            self.settle()
            self.metrics.status(state, counters, self.shadow.next_sequence)
            self._watch_fail_closed(state)

    def _watch_fail_closed(self, state: dict) -> None:
        """Alert when the gateway enters a fail-closed state (once per entry)."""
        now = {"heartbeat_lost": state["heartbeat_lost"], "kill_gateway": state["kill_gateway"],
               "limits_not_loaded": 1 - state["limits_loaded"]}
        for name, value in now.items():
            if value and not self._fail_closed.get(name):
                self.alert(f"fail_closed_{name}", f"the gateway is fail-closed: {name}",
                           epoch=state["epoch"])
        self._fail_closed = now

    # -- reference prices -------------------------------------------------------------------

    async def _references(self) -> None:
        """Write the source's reference prices, paced and coalesced by a
        :class:`~wiregate.sw.daemon.references.ReferenceFeed` of the committed limits, and
        alert on each symbol going stale, every ``references.interval``."""
        config = self.config.references
        try:
            self.reference_source = source = await open_source(config)
        except OSError as error:
            self.alert("reference_source_failed", f"{config.source}: {error}")
            return
        log.info("reference feed: %s %s", config.source,
                 getattr(source, "address", config.path))
        reading = None
        try:
            while not await self._pause(config.interval):
                if self.limits is None:
                    continue            # no symbols to feed before the first commit
                if self.limits is not self._feed_limits:
                    self._new_feed()
                if reading is None:     # the source is read once there is a feed to offer to
                    reading = asyncio.ensure_future(self._offer(source))
                await self._feed_step()
        finally:
            if reading is not None:
                reading.cancel()
            if hasattr(source, "close"):
                source.close()

    def _new_feed(self) -> None:
        """A feed of the limits in effect; the updates the last one held wait in it."""
        config, old = self.config.references, self.feed
        self.feed = ReferenceFeed(self.limits, config.max_rate, start_us=self._commit_us,
                                  burst=config.burst)
        self._feed_limits = self.limits
        for update in [] if old is None else old.queued():
            self.feed.offer(update)

    async def _offer(self, source) -> None:
        try:
            async for update in source:
                self.feed.offer(update)
        except (OSError, ValueError) as error:     # a bad file or capture: what came, stays
            self.alert("reference_source_failed", f"{self.config.references.source}: {error}")

    async def _feed_step(self) -> None:
        """Write the updates due now, stamped with the gateway's time; then alert on the
        symbols that went stale."""
        feed = self.feed
        try:
            now = (await self.driver.read_register("timebase_us"))["value"]
            for index, update in feed.take(now):
                await write_reference(self.driver, index, update.price, now)
                self.metrics.references.inc()
        except _COMMAND_ERRORS as error:
            self.alert("reference_failed", str(error))
            return
        for action in feed.stale(now):
            self.alert("reference_stale", action.detail, symbol=action.target, now_us=now)

    async def _watch(self) -> None:
        # The first push too runs beside the heartbeat: a push is hundreds of commands, and
        # the watchdog must not fire while the host is busy loading.
        while not self._stopping.is_set():
            await self._consider(self._read_limits())
            if await self._pause(self.config.watch_interval):
                return
