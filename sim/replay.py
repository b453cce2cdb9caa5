"""The model replayed from the drop copy: every record through :class:`~wiregate.sw.model.Gate`.

A bench tells :class:`Replay` what it put on the gateway's ports, in port order: the client
events the ingress will extract (:class:`wiregate.sw.extract.Event`, from
:class:`~wiregate.sw.extract.IngressModel`) and which of their frames end void, the exchange
events that will reach the engine, and the host's control events in the order their writes
were taken. Each record (:class:`wiregate.sw.dropcopy.Record`, in sequence order) then names
the next of one of those, and the replay applies it to the model at the record's
``time_us`` and compares the record with the model, field by field. Before each record the
model learns the host's reading position at that moment (:class:`~wiregate.sw.model.HostRead`,
rule 11: what BACKLOG is decided from): the one the bench observed, when it passes it, which
the record's ``sequence - queued`` must equal; else the record's own.


- VERDICT: the next client event; the model's verdict (accept, reasons, primary, symbol,
  UserRefNum) and the event's extracted fields;
- EXCHANGE: the next exchange event, its fields;
- CONTROL: COMMIT, KILL, RELEASE, HEARTBEAT, SET_REFERENCE the next host event (a KILL the
  host did not send is a failure here: the gateway never kills by itself);
  SESSION_SYNC is the gateway's own and drives the model as it comes; VOID_UNDO the next
  void frame (:class:`~wiregate.sw.model.FrameVoid`), whose accepted Enter and Replace
  orders then come back as REVOKE records (:class:`~wiregate.sw.model.Revoke`), in order.

The first difference raises :class:`Mismatch`, naming the record and the model's values,
with the records before it.
"""

from collections import Counter, deque
from dataclasses import dataclass, field, replace

from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.model import (
    ClientMessage,
    Commit,
    ExchangeMessage,
    FrameVoid,
    Heartbeat,
    HostRead,
    Kill,
    Release,
    Revoke,
    SessionSync,
    SetReference,
)
from wiregate.sw.reasons import Reason
from wiregate.sw.shadow import control_fields, verdict_fields
from wiregate.sw.tables import TableImage, compile_limits

__all__ = ["Mismatch", "Replay", "commit_image", "control_fields", "order_entry"]
# control_fields lives in wiregate.sw.shadow (the host's check uses it too); the benches
# import it from here.

_CODES = {Commit: Control.COMMIT, Kill: Control.KILL, Release: Control.RELEASE,
          Heartbeat: Control.HEARTBEAT, SetReference: Control.SET_REFERENCE}
_VERDICT_FIELDS = ("orig_user_ref_num", "side", "quantity", "price", "symbol")
_EXCHANGE_FIELDS = ("user_ref_num", "orig_user_ref_num", "side", "quantity", "price",
                    "match_number", "order_state")
_NEW_ORDERS = (b"O", b"U")      # Enter and Replace: what a void frame's undo revokes
_REASONS = tuple(Reason)        # iterating the enum itself is slow, once per record


def _names(reasons: int) -> list[str]:
    return [r.name for r in _REASONS if reasons >> r & 1]


class Mismatch(AssertionError):
    """The gateway and the model disagree (or the bench sent what the records do not show)."""


def order_entry(model) -> dict:
    """The engine's order-table read-back (``peek_order``) of a model order entry."""
    return {
        "valid": 1, "pending": int(model.pending),
        "user_ref_num": model.user_ref_num, "symbol_index": model.symbol_index,
        "is_buy": int(model.side == "B"), "quantity": model.quantity,
        "price": model.price, "charge_quantity": model.charge_quantity,
        "charge_notional": model.charge_notional}


def commit_image(gate, limits, regmap) -> TableImage:
    """The shadow-bank image of ``limits``: references of symbols the model already holds
    under the same name as the model holds them (a re-commit keeps them), the others
    :data:`~wiregate.sw.tables.REFERENCE_AT_COMMIT`."""
    image = compile_limits(limits, regmap)
    held = {y.index: y.symbol for y in gate.limits.symbols} if gate.loaded else {}
    entries = {name: [dict(e) for e in rows] for name, rows in image.entries.items()}
    for y in limits.symbols:
        if held.get(y.index) == y.symbol:
            price, stamp = gate.reference(y.index)
            entries["symbol_limits"][y.index].update(reference_price=price,
                                                     reference_stamp_us=stamp)
    return TableImage(regmap, entries)


@dataclass
class _Frame:
    """The client frame the replay has open: its key, session, verdicts and the orders it
    got accepted (withdrawn if it ends void)."""

    key: object
    session: int
    verdicts: int = 0
    accepted: list = field(default_factory=list)


class Replay:
    """Replay drop-copy records through ``gate`` against what the bench sent.

    Parameters
    ----------
    gate : Gate
        The model, fresh.

    Attributes
    ----------
    verdicts : dict
        Frame key -> list of (event, Verdict) in frame order, for every frame with a VERDICT.
    reasons : Counter
        Reason -> verdicts that had its bit set.
    primaries : Counter
        Reason -> rejects whose primary reason it was.
    kinds : Counter
        Records replayed, by kind name (control records by code name).
    accepted, rejected : int
        VERDICT records that accepted, rejected.
    """

    def __init__(self, gate):
        self.gate = gate
        self.verdicts = {}
        self.reasons = Counter()
        self.primaries = Counter()
        self.kinds = Counter()
        self.accepted = self.rejected = 0
        self._client = deque()      # ("event", key, Event, opens) or ("void", key)
        self._exchange = deque()
        self._control = deque()
        self._revokes = deque()     # (session, UserRefNum) a void frame's undo withdraws
        self._frame = None
        self._epoch = 0
        self._history = deque(maxlen=12)

    # --- What the bench sent ------------------------------------------------------------

    def client_frame(self, key, events, void: bool) -> None:
        """A client frame's events, in frame order, and whether the frame ends void."""
        for k, event in enumerate(events):
            self._client.append(("event", key, event, k == 0))
        if void and events:
            self._client.append(("void", key))

    def exchange_event(self, event) -> None:
        """An exchange event that will reach the engine (of a frame that ended good)."""
        self._exchange.append(event)

    def control(self, event) -> None:
        """A host control event whose write the register file took."""
        self._control.append(event)

    @property
    def waiting(self) -> dict:
        """What the bench sent that no record has shown yet, by port."""
        return {"client": len(self._client), "exchange": len(self._exchange),
                "control": len(self._control), "revoke": len(self._revokes)}

    @property
    def controls_waiting(self) -> int:
        """Host control events taken whose records have not come yet."""
        return len(self._control)

    # --- Records ------------------------------------------------------------------------

    def apply(self, rec, read: int | None = None) -> None:
        """Apply one record to the model and compare (raises :class:`Mismatch`).

        ``read``: how many records the host had read whole when ``rec`` took effect, as the
        caller observed it (a bench is the reader); None takes the record's word for it
        (``sequence - queued``), which is all a host behind a transport can know.
        """
        self._history.append(rec)
        position = rec.sequence - rec.queued
        if read is not None and read != position:
            self._fail(f"queued {rec.queued}: the host had read {read} records, the record "
                       f"says {position}", rec, {"queued": rec.sequence - read})
        self._apply(rec, HostRead(rec.time_us, position))
        if rec.kind == Kind.VERDICT:
            self.kinds["VERDICT"] += 1
            self._verdict(rec)
        elif rec.kind == Kind.EXCHANGE:
            self.kinds["EXCHANGE"] += 1
            self._exchange_record(rec)
        else:
            self.kinds[Control(rec.control).name] += 1
            self._control_record(rec)

    def _apply(self, rec, event):
        try:
            return self.gate.apply(event)
        except ValueError as error:
            self._fail(f"the model refuses {event!r}: {error}", rec, None)

    def _verdict(self, rec):
        if not self._client or self._client[0][0] != "event":
            head = self._client[0] if self._client else None
            self._fail("VERDICT record where the bench expects", rec, head)
        _, key, event, opens = self._client.popleft()
        if opens:
            self._frame = _Frame(key, event.session)
        message = event.message()
        verdict = self._apply(rec, ClientMessage(rec.time_us, event.session, message,
                                                 event.retransmit, opens))
        frame = self._frame
        if frame is not None and frame.key == key:
            frame.verdicts += 1
            if verdict.accept and not event.retransmit and verdict.msg_type in _NEW_ORDERS:
                frame.accepted.append(verdict.user_ref_num)
        self.verdicts.setdefault(key, []).append((event, verdict))
        self.accepted += verdict.accept
        self.rejected += not verdict.accept
        self.reasons.update(r for r in _REASONS if verdict.reasons >> r & 1)
        if not verdict.accept:
            self.primaries[verdict.primary] += 1
        fields = {} if event.malformed else event.fields
        expected = {**verdict_fields(verdict, event.retransmit),
                    **{name: fields.get(name, 0) for name in _VERDICT_FIELDS}}
        # The description is made only for a mismatch: a replay compares every record.
        self._compare(lambda: f"VERDICT of {message!r} (model: "
                              f"{'|'.join(_names(verdict.reasons)) or 'accept'})",
                      rec, expected)

    def _exchange_record(self, rec):
        if not self._exchange:
            self._fail("EXCHANGE record with no exchange event sent", rec, None)
        event = self._exchange.popleft()
        message = event.message()
        self._apply(rec, ExchangeMessage(rec.time_us, event.session, message))
        expected = {"session": event.session, "msg_type": event.msg_type,
                    **{name: event.fields.get(name, 0) for name in _EXCHANGE_FIELDS}}
        self._compare(lambda: f"EXCHANGE record of {message!r}", rec, expected)

    def _control_record(self, rec):
        t, code = rec.time_us, rec.control
        if code == Control.SESSION_SYNC:
            self._apply(rec, SessionSync(t, rec.session, bool(rec.argument)))
        elif code == Control.VOID_UNDO:
            if not self._client or self._client[0][0] != "void":
                head = self._client[0] if self._client else None
                self._fail("VOID_UNDO record where the bench expects", rec, head)
            _, key = self._client.popleft()
            frame, self._frame = self._frame, None
            if frame is None or frame.key != key:
                self._fail("VOID_UNDO of a frame the replay has not open", rec, frame)
            self._apply(rec, FrameVoid(t, frame.session))
            self._compare("VOID_UNDO record", rec, {"session": frame.session,
                                                    "argument": frame.verdicts})
            self._revokes.extend((frame.session, ref) for ref in frame.accepted)
        elif code == Control.REVOKE:
            if not self._revokes:
                self._fail("REVOKE of an order no void frame had accepted", rec, None)
            session, ref = self._revokes.popleft()
            self._apply(rec, Revoke(t, session, ref))
            self._compare("REVOKE record", rec, {"session": session, "user_ref_num": ref})
        else:
            if not self._control or _CODES[type(self._control[0])] != code:
                self._fail("a control record the host did not cause", rec,
                           self._control[0] if self._control else None)
            event = self._control.popleft()
            self._apply(rec, replace(event, t=t))
            self._compare(lambda: f"CONTROL record of {event!r}", rec,
                          self._control_fields(event, t))

    def _control_fields(self, event, t) -> dict:
        if isinstance(event, Commit):
            self._epoch += 1
        return control_fields(event, t, self._epoch)

    def _compare(self, what, rec, expected):
        """Compare ``rec`` with ``expected``; ``what`` names the record (a string, or a
        function that makes it)."""
        got = {}
        for name in expected:
            value = getattr(rec, name)
            got[name] = int.from_bytes(value, "big") if isinstance(value, bytes) else int(value)
        if got != expected:
            diff = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
            self._fail(f"{what() if callable(what) else what}: (gateway, model) {diff}", rec,
                       expected)

    def _fail(self, what, rec, expected):
        raise Mismatch(f"record {rec.sequence} (cycle {rec.cycle}, t {rec.time_us} us), "
                       f"{what}:\n  record: {rec}\n  expected: {expected}\n{self.history()}")

    def history(self) -> str:
        """The last records replayed, one line each."""
        lines = ["records up to it (sequence, cycle, t, kind, session, type, ref, orig, "
                 "accept, reasons):"]
        for rec in self._history:
            kind = Kind(rec.kind).name if rec.kind != Kind.CONTROL else rec.control.name
            reasons = "|".join(_names(rec.reasons))
            msg_type = chr(rec.msg_type) if rec.msg_type else "-"
            lines.append(f"  {rec.sequence} {rec.cycle} {rec.time_us} {kind} s{rec.session} "
                         f"{msg_type} {rec.user_ref_num} {rec.orig_user_ref_num} "
                         f"{rec.accept} {reasons}")
        return "\n".join(lines)
