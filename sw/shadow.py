"""The shadow check: every drop-copy record replayed through the reference model, compared.

The host reads the gateway's drop copy (:mod:`wiregate.sw.dropcopy`) in sequence order and
gives each :class:`~wiregate.sw.dropcopy.Record` to :class:`ShadowCheck`, which rebuilds the
model event the record stands for, applies it to a :class:`~wiregate.sw.model.Gate` of the
gateway's sizes and compares what the model decides with what the record says. The first
disagreement is returned as a :class:`Mismatch` (sequence, field, gateway value, model value);
the check then stays failed (the model's state no longer follows the gateway's).

What a record stands for (the model's rules in brackets):

- every record: the host's reading position ``sequence - queued`` first
  (:class:`~wiregate.sw.model.HostRead`, rule 11); ``sequence`` must follow the previous one
  (a gap means lost records: the replay cannot be exact after it) and ``time_us`` must not
  go back.
- VERDICT: a :class:`~wiregate.sw.model.ClientMessage` rebuilt from the fields the record
  carries (``msg_type`` 0: :class:`~wiregate.sw.model.Malformed`); compared: ``accept``,
  ``reasons``, ``primary``, ``symbol_known``/``symbol_index`` and ``user_ref_num``.
- EXCHANGE: an :class:`~wiregate.sw.model.ExchangeMessage` rebuilt the same way.
- CONTROL: COMMIT the limits of the epoch in ``argument`` (given to the check in commit
  order); KILL / RELEASE of the scope ``SCOPES[argument]``; HEARTBEAT; SET_REFERENCE (with
  the host's stamp it carries, which the reference's age counts from); SESSION_SYNC;
  VOID_UNDO (rule 10) of the last ``argument`` verdicts, which must all be of the record's
  session, and then one REVOKE for each Enter or Replace of them the model accepted, in
  order.

What the drop copy does not carry, the check cannot decide:

- the fields of a client message the record leaves out (ClOrdID, display, ...) are blank in
  the rebuilt message, so a retransmission (rule 9) the model would give its remembered
  verdict may also be an OUT_OF_SYNC reject: the gateway compares a digest of the whole
  fixed part. Either is taken (a retransmission changes no state);
- the frame a client message opened is not in the record: every rebuilt message opens its
  own checkpoint and a VOID_UNDO merges the last ``argument`` of them into the frame's;
- the symbol index an EXCHANGE record reports is not compared (as in the benches' replay).
"""

from collections import deque
from dataclasses import dataclass, fields
from operator import attrgetter

from wiregate.sw.dropcopy import Control, Kind, Record
from wiregate.sw.model import (
    SCOPES,
    ClientMessage,
    Commit,
    ExchangeMessage,
    FrameVoid,
    Gate,
    Heartbeat,
    HostRead,
    Kill,
    Malformed,
    Release,
    Revoke,
    SessionSync,
    SetReference,
    _Frame,
    backlog_marks,
)
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import NO_PRIMARY, Reason

__all__ = ["Mismatch", "ShadowCheck", "control_fields", "verdict_fields"]

_OUT_OF_SYNC = 1 << Reason.OUT_OF_SYNC
_NEW_ORDERS = (b"O", b"U")      # Enter and Replace: what a void frame's undo revokes
_RULE9 = (b"O", b"U", b"M")     # the messages whose retransmission gets a remembered verdict
_CARRIED = {"user_ref_num", "orig_user_ref_num", "side", "quantity", "price", "symbol",
            "match_number", "order_state"}
_MALFORMED = Malformed("undecodable client message (drop copy msg_type 0)")
_VERDICT, _EXCHANGE = Kind.VERDICT, Kind.EXCHANGE    # a Record holds its kind as a Kind


_VERDICT_NAMES = ("accept", "reasons", "primary", "session", "msg_type", "retransmit",
                  "symbol_known", "symbol_index", "user_ref_num")
_verdict_of = attrgetter(*_VERDICT_NAMES)       # those fields of a record, as a tuple


def _verdict_values(verdict, retransmit: bool) -> tuple:
    """The values of :data:`_VERDICT_NAMES` a VERDICT record of ``verdict`` carries."""
    return (int(verdict.accept), verdict.reasons,
            NO_PRIMARY if verdict.primary is None else int(verdict.primary), verdict.session,
            verdict.msg_type[0] if verdict.msg_type else 0, int(retransmit),
            int(verdict.symbol_index is not None), verdict.symbol_index or 0,
            verdict.user_ref_num or 0)


def verdict_fields(verdict, retransmit: bool) -> dict:
    """The fields a VERDICT record of ``verdict`` carries that the model decides, in the
    order a disagreement is reported (the verdict first)."""
    return dict(zip(_VERDICT_NAMES, _verdict_values(verdict, retransmit), strict=True))


def control_fields(event, t, epoch) -> dict:
    """The fields a CONTROL record of ``event`` carries, taking effect at ``t``; ``epoch``:
    the commits so far, this one included."""
    match event:
        case Commit():
            return {"argument": epoch}
        case Kill() | Release():
            expected = {"argument": SCOPES.index(event.scope)}
            if event.scope == "session":
                expected["session"] = event.index
            elif event.scope == "symbol":
                expected.update(symbol_index=event.index, symbol_known=1)
            return expected
        case SetReference():
            # The record carries the host's stamp, which the model's age counts from; with
            # none, the model stamps the reference with ``t``, when it takes effect.
            stamp = t if event.stamp_us is None else event.stamp_us
            return {"symbol_index": event.symbol_index, "symbol_known": 1,
                    "price": event.price, "argument": stamp}
        case SessionSync():
            return {"session": event.session, "argument": int(event.in_sync)}
    return {}


def _builders(classes) -> dict:
    """Per OUCH type byte: a function of a record that makes the OUCH message it describes,
    its carried fields from the record and the others blank.

    The message's ``__dict__`` is made at once, by a dict display compiled for the type
    (the fields a record carries read from it, the others constants): the frozen
    dataclass's ``__init__`` would cost a quarter of the check, and it checks nothing (the
    Record checked every value); filling the dict field by field costs twice this.
    """
    out = {}
    for type_byte, cls in classes.items():
        kinds = {f.name: f.kind for f in cls.LAYOUT.fields}
        items = []
        for f in fields(cls):
            name, kind = f.name, kinds.get(f.name)
            if name not in _CARRIED:
                value = _BLANK[kind] if kind is not None else ()
            elif name == "symbol":
                value = "rec.symbol.decode('latin-1').rstrip(' ')"
            elif kind == "c":
                value = f"chr(rec.{name})"
            else:
                value = f"rec.{name}"
            items.append(f"{name!r}: {value if name in _CARRIED else repr(value)}")
        namespace = {"_new": object.__new__, "_set": object.__setattr__, "_cls": cls}
        exec(f"def build(rec):\n    msg = _new(_cls)\n"
             f"    _set(msg, '__dict__', {{{', '.join(items)}}})\n    return msg\n", namespace)
        out[type_byte[0]] = namespace["build"]
    return out


_BLANK = {"u": 0, "a": "", "c": " "}
_CLIENT = _builders(ouch._CLIENT_CLASSES)
_SERVER = _builders(ouch._SERVER_CLASSES)


@dataclass(frozen=True)
class Mismatch:
    """The first disagreement between the gateway's drop copy and the model.

    Attributes
    ----------
    sequence : int
        The record's sequence number.
    field : str
        The record field that disagrees (``sequence`` for a gap).
    gateway : object
        What the record says.
    model : object
        What the model says it should be.
    detail : str
        What the record stood for, for the log.
    """

    sequence: int
    field: str
    gateway: object
    model: object
    detail: str = ""

    def __str__(self) -> str:
        return (f"drop copy record {self.sequence}: {self.field} is {self.gateway!r}, the "
                f"model says {self.model!r} ({self.detail})")


class _Failed(Exception):
    def __init__(self, mismatch: Mismatch):
        super().__init__(str(mismatch))
        self.mismatch = mismatch


class ShadowCheck:
    """Replay drop-copy records through the model and compare (see the module docstring).

    Parameters
    ----------
    gate : Gate
        A fresh model of the gateway's sizes (:meth:`for_profile` makes one).
    commits : sequence of Limits
        The limits of the commits the host made, in order (epoch 1 first); more can be
        added with :meth:`commit` as the host commits.

    Attributes
    ----------
    gate : Gate
    next_sequence : int
        The sequence number the next record must carry.
    checked : int
        Records checked and found in agreement.
    mismatch : Mismatch or None
        The first disagreement; once set, every later record is refused with it.
    """

    def __init__(self, gate: Gate, commits=()):
        self.gate = gate
        self.next_sequence = 0
        self.checked = 0
        self.mismatch: Mismatch | None = None
        self._commits = list(commits)
        self._epoch = 0
        self._verdicts = deque(maxlen=64)   # (session, checkpoint, verdict, retransmit)
        self._revokes = deque()             # (session, UserRefNum) a void frame withdraws

    @classmethod
    def for_profile(cls, profile, commits=()) -> "ShadowCheck":
        """A check with a model of a build profile's sizes and drop-copy marks
        (:mod:`wiregate.sw.profiles`)."""
        high, low = backlog_marks(profile.dropcopy_depth)
        return cls(Gate(profile.n_sessions, profile.n_symbols, profile.n_orders,
                        profile.n_executions, n_verdicts=profile.n_verdicts,
                        backlog_high=high, backlog_low=low), commits)

    def commit(self, limits) -> None:
        """The host committed ``limits``: the next epoch's."""
        self._commits.append(limits)

    def run(self, records) -> Mismatch | None:
        """Check records in order; return the first mismatch (None: all agree)."""
        for rec in records:
            mismatch = self.check(rec)
            if mismatch is not None:
                return mismatch
        return None

    def check(self, rec: Record) -> Mismatch | None:
        """Apply one record to the model and compare; return the mismatch, if any."""
        if self.mismatch is not None:
            return self.mismatch
        # One record (the hot path of the daemon: written out, not split into calls).
        try:
            sequence, gate = rec.sequence, self.gate
            if sequence != self.next_sequence:
                self._fail(rec, "sequence", sequence, self.next_sequence,
                           "a gap: records were lost" if sequence > self.next_sequence
                           else "the sequence went back")
            if rec.time_us < gate.now:
                self._fail(rec, "time_us", rec.time_us, gate.now, "time went back")
            position = sequence - rec.queued
            if position != gate.host_read:  # the same position again would change nothing
                self._apply(rec, HostRead(rec.time_us, position), "queued")
            kind = rec.kind
            if kind is _VERDICT:
                self._verdict(rec)
            elif kind is _EXCHANGE:
                builder = _SERVER.get(rec.msg_type)
                if builder is None:
                    self._fail(rec, "msg_type", rec.msg_type, None,
                               "not an exchange message type")
                self._apply(rec, ExchangeMessage(rec.time_us, rec.session,
                                                 builder(rec)), "session")
            else:
                self._control(rec)
        except _Failed as failed:
            self.mismatch = failed.mismatch
            return self.mismatch
        self.next_sequence += 1
        self.checked += 1
        return None

    # --- One record ---------------------------------------------------------------------

    def _verdict(self, rec: Record) -> None:
        gate = self.gate
        msg_type = rec.msg_type
        if msg_type == 0:
            msg = _MALFORMED
        else:
            builder = _CLIENT.get(msg_type)
            if builder is None:
                self._fail(rec, "msg_type", msg_type, None, "not a client message type")
            msg = builder(rec)
        retransmit = rec.retransmit == 1
        t, session = rec.time_us, rec.session
        try:    # the model's ClientMessage(t, session, msg, retransmit, True), not made
            verdict = gate._take_client(t, session, msg, retransmit, True)
        except ValueError as error:
            event = ClientMessage(t, session, msg, retransmit, True)
            self._fail(rec, "session", session, None, f"the model refuses {event!r}: {error}")
        self._verdicts.append((session, gate._frame, verdict, retransmit))
        # The usual case, compared as one tuple (_verdict_values written out).
        primary, symbol_index = verdict.primary, verdict.symbol_index
        if _verdict_of(rec) == (
                verdict.accept, verdict.reasons,
                NO_PRIMARY if primary is None else primary, verdict.session,
                verdict.msg_type[0] if verdict.msg_type else 0, retransmit,
                symbol_index is not None, symbol_index or 0, verdict.user_ref_num or 0):
            return
        expected = verdict_fields(verdict, retransmit)
        if (retransmit and rec.reasons == _OUT_OF_SYNC and verdict.msg_type in _RULE9
                and rec.reasons != verdict.reasons):
            # The digest of the fields the record leaves out may differ (module docstring).
            expected = verdict_fields(gate._verdict(_OUT_OF_SYNC, rec.session,
                                                    verdict.user_ref_num, None,
                                                    verdict.msg_type), retransmit)
        self._compare(rec, expected, msg)

    def _control(self, rec: Record) -> None:
        t, code = rec.time_us, rec.control
        if code == Control.COMMIT:
            if rec.argument != self._epoch + 1 or rec.argument > len(self._commits):
                self._fail(rec, "argument", rec.argument, self._epoch + 1,
                           f"commit epoch ({len(self._commits)} limit sets given)")
            self._epoch += 1
            event = Commit(t, self._commits[self._epoch - 1])
        elif code in (Control.KILL, Control.RELEASE):
            if rec.argument >= len(SCOPES):
                self._fail(rec, "argument", rec.argument, None, "not a kill scope")
            scope = SCOPES[rec.argument]
            index = {"gateway": 0, "session": rec.session, "symbol": rec.symbol_index}[scope]
            event = (Kill if code == Control.KILL else Release)(t, scope, index)
        elif code == Control.HEARTBEAT:
            event = Heartbeat(t)
        elif code == Control.SET_REFERENCE:
            event = SetReference(t, rec.symbol_index, rec.price, stamp_us=rec.argument)
        elif code == Control.SESSION_SYNC:
            event = SessionSync(t, rec.session, bool(rec.argument))
        elif code == Control.VOID_UNDO:
            self._void(rec)
            return
        else:   # REVOKE
            if not self._revokes:
                self._fail(rec, "control", "REVOKE", None, "no void frame accepted an order")
            session, ref = self._revokes.popleft()
            self._apply(rec, Revoke(t, session, ref), "session")
            self._compare(rec, {"session": session, "user_ref_num": ref}, "REVOKE")
            return
        self._apply(rec, event, "argument")
        self._compare(rec, control_fields(event, t, self._epoch), event)

    def _void(self, rec: Record) -> None:
        """VOID_UNDO: the last ``argument`` verdicts were one frame; undo it (rule 10)."""
        n, session = rec.argument, rec.session
        frame = list(self._verdicts)[-n:] if n else []
        if not frame or len(frame) != n or any(v[0] != session for v in frame):
            self._fail(rec, "argument", n, None, f"VOID_UNDO of session {session}: not the "
                       f"last verdicts of that session ({len(self._verdicts)} remembered)")
        first = frame[0][1]
        self.gate._frame = _Frame(session, first.last_user_ref_num, first.throttle_count,
                                  first.throttled, sum(v[1].taken for v in frame))
        self._apply(rec, FrameVoid(rec.time_us, session), "session")
        for _ in range(n):
            self._verdicts.pop()
        self._revokes.extend((session, v[2].user_ref_num) for v in frame
                             if v[2].accept and not v[3] and v[2].msg_type in _NEW_ORDERS)

    def _apply(self, rec: Record, event, field: str):
        try:
            return self.gate.apply(event)
        except ValueError as error:
            self._fail(rec, field, getattr(rec, field), None, f"the model refuses {event!r}: "
                       f"{error}")

    def _compare(self, rec: Record, expected: dict, what) -> None:
        for name, value in expected.items():
            got = getattr(rec, name)
            if got != value:
                self._fail(rec, name, int(got), value, f"{Kind(rec.kind).name} of {what!r}")

    @staticmethod
    def _fail(rec: Record, field: str, gateway, model, detail: str):
        raise _Failed(Mismatch(rec.sequence, field, gateway, model, detail))
