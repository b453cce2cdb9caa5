"""The risk engine under the Amaranth simulator, event by event against the model.

The bench presents model events (:class:`wiregate.sim.trading.Item`) on the engine's ports
and replays the drop-copy records through :class:`wiregate.sw.model.Gate` as the records
come out: each VERDICT is the next client event presented, each EXCHANGE the next exchange
event taken, each COMMIT, KILL ... the next control event taken, VOID_UNDO a FrameVoid and
REVOKE a Revoke, all at the record's ``time_us``. Every verdict is compared with the model's,
the session read-back (credit, UserRefNums, unmatched, kill, sync, throttle) with the model's
after every record, and at the end every exposure word and order-table entry.

How the bench drives the ports (what the engine's contract lets it choose):

- time: ``now_us`` steps by one on a ``tick`` cycle, only once every item due so far has
  been taken (so an item at a later ``t`` executes after every earlier one), and never
  while a reference update is on its way (the model stamps a reference with its event's
  ``t``: the stamp the host sends must be the microsecond the engine executes it in);
- the client port: one message per cycle at most, a frame end alone in its cycle, at least
  a cycle after the frame's last message and before the next frame opens; at W = 1 (the
  bench's default width) messages two cycles apart at the least (a quiet one, one: see
  :func:`quiet`) and the next frame's first three cycles after a frame end; two
  messages naming the same order more than the engine's ``same_order`` cycles apart (its
  docstring),
  none naming an order while an exchange event naming it is taken but not yet executed
  (stricter than the docstring, which directed tests probe), and none while the revokes
  of a void frame have not all run (the docstring: the wire leaves them the time);
- the exchange and control ports: an item is not presented before the client items listed
  ahead of it (the exchange answers, and the host reacts to, what the gate has seen);
- the shadow bank: every entry of the compiled image written, then COMMIT, and nothing
  written again while ``commit_pending``; references of symbols the model holds written as
  the model holds them, of symbols it loads anew as ``REFERENCE_AT_COMMIT``.

- the drop-copy fill (``queued``): a simulated reader of the queue the records go to; each
  cycle it takes one record whole, if one is queued, when the bench's ``reader`` says so.
  Before each record the model learns the reader's position (``HostRead``, rule 11) and
  decides BACKLOG; the record must carry the fill it was judged with: every record before
  it less those the reader took before the cycle it is stamped with.

At half the byte clock (``half_rate``, :class:`~wiregate.hw.risk.half_rate.HalfRateEngine`)
the bench's cycles are the byte clock's: the client spacing is doubled, host writes come
three cycles apart and stay until the next, time steps at most every other cycle, and a
verdict may come a cycle early (the phase of the two clocks).

A mismatch names the cycle, the engine's and the model's values and the records before it.
``WIREGATE_SEED`` replays the trading day of a failed run.
"""

import os
import random
from collections import deque
from dataclasses import dataclass, field, replace
from itertools import pairwise

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from wiregate.hw.control.dropcopy import record_layout
from wiregate.hw.control.register_file import control_layout
from wiregate.hw.ingress.ouch_extract import event_layout
from wiregate.hw.risk.engine import EXEC, Engine, engine_latency
from wiregate.hw.risk.half_rate import ENGINE_DOMAIN, HalfRateEngine
from wiregate.sim import orders
from wiregate.sim.layouts import pack, unpack
from wiregate.sim.orders import (
    P100,
    Script,
    accepted,
    aiq_canceled,
    broken,
    cancel,
    canceled,
    corrected,
    enter,
    executed,
    modified,
    modify,
    rejected,
    replace_order,
    replaced,
    symbol,
)
from wiregate.sim.replay import control_fields, order_entry
from wiregate.sim.trading import Item, Port, Sizes, Trading
from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.extract import EVENT_FIELDS, MALFORMED, digest, field_value
from wiregate.sw.limits import (
    RateLimit,
)
from wiregate.sw.model import (
    SCOPES,
    ClientMessage,
    Commit,
    ExchangeMessage,
    FrameVoid,
    Heartbeat,
    HostRead,
    Kill,
    Malformed,
    Release,
    Revoke,
    SessionSync,
    SetReference,
    Tick,
)
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import NO_PRIMARY, Reason
from wiregate.sw.regmap import RegisterMap
from wiregate.sw.tables import compile_limits

# Verdict memories half as deep as the order table: a retransmission's slot is not its order's.
SIZES = Sizes(n_sessions=4, n_symbols=32, n_orders=16, n_executions=16, backlog_high=8,
              backlog_low=3, n_verdicts=8)
REGMAP = RegisterMap(n_sessions=SIZES.n_sessions, n_symbols=SIZES.n_symbols, symbol_slots=64,
                     n_orders=SIZES.n_orders, n_verdicts=SIZES.n_verdicts)
FRAME_BITS = 4
EVENT = event_layout(REGMAP)
CONTROL = control_layout(REGMAP)
RECORD = record_layout(REGMAP)
BANKED = ("session", "session_limits", "symbol_limits", "gateway_limits", "symbol_hash")
R = Reason


# --- Model events as port values ---------------------------------------------------------------


def wire_fields(msg) -> dict:
    """The extracted fields of an OUCH message, as the ingress gives them (sw/extract.py)."""
    layout = msg.LAYOUT
    fields = {}
    for f in layout.fields:
        if f.name not in EVENT_FIELDS or f.name == layout.appendage_length_field:
            continue
        fields[f.name] = field_value(f, getattr(msg, f.name))
    return fields


def event_value(session, msg, *, from_client, retransmit=False, type_offset=0) -> dict:
    """An :func:`~wiregate.hw.ingress.ouch_extract.event_layout` value for a model message."""
    value = {"valid": 1, "from_client": int(from_client), "session": session,
             "sb_type": ord("U" if from_client else "S"), "retransmit": int(retransmit),
             "room": 1, "type_offset": type_offset, "last_offset": type_offset}
    if isinstance(msg, Malformed):
        value["malformed"] = 1 << MALFORMED.index(msg.reason)
    else:
        value.update(msg_type=msg.TYPE[0], length=msg.LAYOUT.fixed_length,
                     last_offset=type_offset + msg.LAYOUT.fixed_length - 1,
                     fields=wire_fields(msg), digest=digest(msg.encode()) if from_client else 0)
    return value


def control_value(event) -> dict:
    """A :func:`~wiregate.hw.risk.engine.control_layout` value for a model control event."""
    match event:
        case Commit():
            return {"code": Control.COMMIT}
        case Kill() | Release():
            return {"code": Control.KILL if isinstance(event, Kill) else Control.RELEASE,
                    "scope": SCOPES.index(event.scope), "index": event.index}
        case Heartbeat():
            return {"code": Control.HEARTBEAT}
        case SetReference():
            return {"code": Control.SET_REFERENCE, "index": event.symbol_index,
                    "price": event.price}
        case SessionSync():
            return {"code": Control.SESSION_SYNC, "index": event.session,
                    "in_sync": int(event.in_sync)}
    raise TypeError(f"not a control event: {event!r}")


def at(event, t):
    """``event`` as the engine executed it, at ``t``."""
    return type(event)(t, *(getattr(event, name) for name in event.__dataclass_fields__
                            if name != "t"))


def named_refs(msg) -> set:
    """The UserRefNums a client message names (its own and a Replace's original)."""
    return {getattr(msg, name) for name in ("user_ref_num", "orig_user_ref_num")
            if getattr(msg, name, None)}


def quiet(event) -> bool:
    """A client message that writes nothing and names no order, not the first of its frame:
    at W = 1 the engine takes it a cycle behind any event (``hw/risk/engine.py``)."""
    return not event.opens_frame and isinstance(event.msg, (
        Malformed, ouch.AccountQuery, ouch.MassCancel, ouch.DisableOrderEntry,
        ouch.EnableOrderEntry))


def wire_beats(msg) -> int:
    """The fewest beats at W = 8 from the previous message's settling byte to this one's
    (its SoupBin header, 3 bytes, and fixed part, at the luckiest byte lane)."""
    if isinstance(msg, Malformed):
        return 1
    return max(1, (3 + msg.LAYOUT.fixed_length) // 8)


# --- The bench ---------------------------------------------------------------------------------


class Mismatch(AssertionError):
    """The engine and the model disagree; the message names the record and both values."""


@dataclass
class Outcome:
    """What a run produced: the model's verdicts in execution order, the records, the gate."""

    verdicts: list = field(default_factory=list)
    records: list = field(default_factory=list)
    gate: object = None
    cycles: int = 0


@dataclass
class _Presented:
    item: Item
    cycle: int
    type_offset: int = 0


def _members(port, flow=In) -> list:
    """The members of an engine port that flow ``flow`` (In: driven by the bench)."""
    return [name for name, member in port.signature.members.items() if member.flow == flow]


def _layout(port, flow=In) -> data.StructLayout:
    """Those members of a port as one layout."""
    return data.StructLayout({name: _shape(getattr(port, name))
                              for name in _members(port, flow)})


def _shape(value):
    return value.shape() if isinstance(value, data.View) else len(value)


# The host's read ports: the bench moves their addresses at random while events flow, so
# that a read which disturbed an event would show in the model's scoreboard.
PEEKS = ("peek_exposure", "peek_order", "peek_limits", "peek_symbol_hash", "peek_kill_symbols")


def harness(dut):
    """The engine with a cycle counter and the timebase, every input in one signal and the
    outputs the bench reads every cycle in another.

    Each ``ctx.set`` settles the whole design, which dominates the run time; one wide input
    signal makes that once a cycle.
    """
    inputs = data.StructLayout({
        "client": _layout(dut.client), "frame_end": _layout(dut.frame_end),
        "exchange": _layout(dut.exchange), "control": _layout(dut.control), "tick": 1,
        "queued": len(dut.queued),
        **{f"write_{t}": _layout(getattr(dut, f"write_{t}")) for t in BANKED},
        **{name: _layout(getattr(dut, name)) for name in PEEKS},
    })
    outputs = data.StructLayout({
        "record_valid": 1, "record": RECORD, "verdict": _layout(dut.verdict, Out),
        "exchange_ready": 1, "control_ready": 1, "commit_pending": 1,
    })
    m = Module()
    m.submodules.dut = dut
    drive, observe = Signal(inputs), Signal(outputs)
    cycle, now = Signal(64), Signal(64)
    m.d.sync += [cycle.eq(cycle + 1), now.eq(dut.now_us)]
    m.d.comb += [dut.cycle.eq(cycle), dut.now_us.eq(now + drive.tick), dut.queued.eq(drive.queued)]
    if "tick" in dut.signature.members:     # the half-rate engine makes its own
        m.d.comb += dut.tick.eq(drive.tick)
    for name in ("client", "frame_end", "exchange", "control", *(f"write_{t}" for t in BANKED)):
        port = getattr(dut, name)
        for member in _members(port):
            m.d.comb += getattr(port, member).eq(drive[name][member])
    for name in PEEKS:
        for member in _members(getattr(dut, name)):
            m.d.comb += getattr(getattr(dut, name), member).eq(drive[name][member])
    m.d.comb += [
        observe.record_valid.eq(dut.record.valid), observe.record.eq(dut.record.payload),
        observe.exchange_ready.eq(dut.exchange.ready), observe.control_ready.eq(dut.control.ready),
        observe.commit_pending.eq(dut.commit_pending),
    ]
    for member in _members(dut.verdict, Out):
        m.d.comb += observe.verdict[member].eq(getattr(dut.verdict, member))
    return m, drive, observe


class Bench:
    """Drive ``items`` into an :class:`~wiregate.hw.risk.engine.Engine` and replay its records.

    Parameters
    ----------
    items : list of Item
    rng : random.Random
        Idle cycles on each port and which client messages go at wire spacing.
    dense : float
        Chance that a client message follows the previous one as soon as it may rather than
        after its wire length (:func:`wire_beats`).
    contract : bool
        Keep the engine's spacing assumptions for client messages (``same_order`` cycles
        between two naming the same order, none behind an unexecuted exchange event naming
        it). False: wire spacing only, as the ingress would deliver at W = 8.
    same_order : int or None
        Cycles between two client messages naming one order; None: the least the engine's
        contract allows (its ``same_order``, and one).
    reader : callable
        ``reader(cycle)``: the drop copy's host takes a queued record whole in that cycle.
        The default reads at once, so the fill stays below the marks.
    width : int
        The engine's beat width: at 1 it takes an event every other cycle at most and reads
        a Replace's original in the cycle after it, at 8 through the order table's second
        copy in the Replace's own cycle.
    half_rate : bool
        At W = 1: the engine at half the bench's clock, every port crossed
        (:class:`~wiregate.hw.risk.half_rate.HalfRateEngine`); the bench's cycles are the
        byte clock's.
    """

    def __init__(self, items, rng, *, dense=0.5, contract=True, same_order=None,
                 sizes=SIZES, reader=lambda cycle: True, width=1, half_rate=False):
        self.items = deque(items)
        self.order = {id(item): k for k, item in enumerate(items)}
        self.rng = rng
        self.dense = dense
        self.contract = contract
        self.sizes = sizes
        regmap = REGMAP if width == 1 else RegisterMap(**{**REGMAP.parameters, "beat_bytes": width})
        engine = HalfRateEngine if half_rate else Engine
        self.dut = engine(regmap, n_executions=sizes.n_executions, frame_bits=FRAME_BITS,
                          backlog_high=sizes.backlog_high, backlog_low=sizes.backlog_low,
                          order_ways=sizes.order_ways)
        self.half_rate = half_rate
        # At W = 1 the engine takes a writing event every other cycle at most: client
        # messages come two cycles apart at the least (the wire: three, a SoupBin packet's
        # least bytes), a quiet one a cycle behind any (what the engine at half the byte
        # clock will be given: a 3-byte packet is a cycle and a half of it), and the next
        # frame's first message three after a frame end (the wire: dozens, the next frame's
        # headers).
        # At half rate, twice as many byte cycles (so whatever the phase of the two clocks,
        # as many engine cycles), a frame end's crossing a cycle more, and host writes three
        # cycles apart, each entry held until the next (the register file's).
        self.message_gap, self.quiet_gap, self.end_gap = (
            (4, 2, 8) if half_rate else (2, 1, 3) if width == 1 else (1, 1, 1))
        self.write_gap = 3 if half_rate else 1
        self.last_write = self.last_tick = -10
        self.written = {}                  # table -> the index and entry written last
        # Cycles from the ``cycle`` a record carries (its EXEC) to the bench seeing it.
        self.stamp_lag = (self.dut.stamp_lag if half_rate
                          else self.dut.apply_stage - EXEC)
        self.reader = reader
        self.queued = 0                    # the drop-copy fill driven this cycle
        self.read_through = []             # records the reader took in cycles up to each
        self.same_order = self.dut.same_order + 1 if same_order is None else same_order
        self.top, self.drive, self.observe = harness(self.dut)
        self.inputs = self.drive.shape()
        self.outputs = self.observe.shape()
        self.gate = sizes.gate()
        self.out = Outcome(gate=self.gate)
        self.cycle = 0
        self.now = 0
        # Items released to their ports, in order.
        self.client_q: deque = deque()
        self.exchange_q: deque = deque()
        self.control_q: deque = deque()
        # Presented or taken, awaiting their records.
        self.client_wait: deque = deque()
        self.exchange_wait: deque = deque()
        self.control_wait: deque = deque()
        self.frame_ends: deque = deque()   # void frame ends presented, awaiting VOID_UNDO
        self.revokes: deque = deque()      # (session, ref) the replayed void frame accepted
        self.frame = None                  # replay: the open frame's (session, count, refs)
        self.epoch = 0
        self.last_t = 0
        self.last_client = -10             # cycle of the last client event or frame end
        self.next_client = 0               # earliest cycle for the next client message
        self.named = {}                    # (session, ref) -> cycle last named by a client
        self.writing = None                # shadow-bank image being written, and progress
        self.x_holding = self.c_holding = False    # valid held until taken

    # --- Stimulus -------------------------------------------------------------------------

    def release(self, t):
        queues = {Port.CLIENT: self.client_q, Port.FRAME_END: self.client_q,
                  Port.EXCHANGE: self.exchange_q, Port.CONTROL: self.control_q}
        while self.items and self.items[0].t <= t:
            item = self.items.popleft()
            queues[item.port].append(item)

    def client_blocked(self, item):
        """Why the client message cannot go this cycle (None: it can)."""
        if self.cycle < self.next_client or self.cycle <= self.last_client:
            return "spacing"
        if not self.contract:
            return None
        s = item.session
        for ref in named_refs(item.event.msg):
            if self.cycle - self.named.get((s, ref), -100) < self.same_order:
                return "same order"
            if any(p.item.event.session == s and ref in named_refs(p.item.event.msg)
                   for p in self.exchange_wait):
                return "exchange in flight"
        if self.frame_ends or self.revokes:
            return "revokes of a void frame to run"
        return None

    def drive_client(self, inputs):
        """Present the next client message or frame end, if it may go now."""
        client = frame_end = None
        if self.client_q:
            item = self.client_q[0]
            if item.port is Port.FRAME_END:
                if self.cycle > self.last_client:
                    frame_end = self.client_q.popleft()
            elif self.client_blocked(item) is None:
                client = self.client_q.popleft()
        if frame_end is not None:
            void = frame_end.event is not None
            inputs["frame_end"] = {"valid": 1, "void": int(void)}
            if void:
                self.frame_ends.append(frame_end)
            self.last_client = self.cycle
            idle = self.rng.randint(1, 6) if self.rng.random() < 0.3 else 0
            self.next_client = self.cycle + self.end_gap + idle
        if client is not None:
            event = client.event
            offset = self.rng.randrange(54, 1 << 10)
            inputs["client"] = {"valid": 1, "payload": {
                "event": event_value(client.session, event.msg, from_client=True,
                                     retransmit=event.retransmit, type_offset=offset),
                "opens_frame": int(event.opens_frame),
                "frame": client.frame % (1 << FRAME_BITS)}}
            self.client_wait.append(_Presented(client, self.cycle, offset))
            for ref in named_refs(event.msg):
                self.named[(client.session, ref)] = self.cycle
            self.last_client = self.cycle
            gap = self.message_gap
            nxt = self.client_q[0] if self.client_q else None
            if nxt is not None and nxt.port is Port.CLIENT and quiet(nxt.event):
                gap = self.quiet_gap
            if nxt is not None and nxt.port is Port.CLIENT and self.rng.random() >= self.dense:
                gap = max(gap, wire_beats(nxt.event.msg))
            self.next_client = self.cycle + gap

    def behind_client(self, queue):
        """The head of ``queue`` comes after a client item not yet presented (the exchange
        never answers, and the host never reacts to, what the gate has not seen)."""
        return bool(self.client_q) and self.order[id(self.client_q[0])] < self.order[id(queue[0])]

    def drive_exchange(self, inputs):
        """Present the next exchange event (held until taken), sometimes after an idle cycle."""
        valid = bool(self.exchange_q) and (self.x_holding or (
            not self.behind_client(self.exchange_q) and self.rng.random() < 0.9))
        self.x_holding = valid
        if valid:
            item = self.exchange_q[0]
            inputs["exchange"] = {"valid": 1, "payload": event_value(
                item.event.session, item.event.msg, from_client=False)}
        return valid

    def image(self, limits):
        """The shadow-bank image of ``limits``, references as the model holds them."""
        image = compile_limits(limits, REGMAP)
        held = {y.index: y.symbol for y in self.gate.limits.symbols} if self.gate.loaded else {}
        for y in limits.symbols:
            if held.get(y.index) == y.symbol:
                price, stamp = self.gate.reference(y.index)
                image.entries["symbol_limits"][y.index].update(reference_price=price,
                                                               reference_stamp_us=stamp)
        return image

    def drive_control(self, inputs, commit_pending):
        """Write the shadow bank for a commit, or present the next control event."""
        valid = False
        for table, written in self.written.items():
            inputs[f"write_{table}"] = {"en": 0, **written}
        item = self.control_q[0] if self.control_q else None
        if item is not None and self.behind_client(self.control_q) and not self.c_holding:
            item = None
        if item is not None and isinstance(item.event, Commit):
            if self.writing is None and not self.control_wait and not commit_pending:
                self.writing = [self.image(item.event.limits), 0]
            if self.writing is not None and self.cycle - self.last_write >= self.write_gap:
                image, k = self.writing
                for table in BANKED:
                    rows = image.entries[table]
                    if k < len(rows):
                        self.written[table] = {"index": k, "entry": rows[k]}
                        inputs[f"write_{table}"] = {"en": 1, **self.written[table]}
                if any(k < len(rows) for rows in image.entries.values()):
                    self.writing[1] += 1
                    self.last_write = self.cycle
                else:
                    valid = True
        elif item is not None:
            valid = self.c_holding or self.rng.random() < 0.9
        self.c_holding = valid
        if valid:
            value = control_value(item.event)
            if isinstance(item.event, SetReference):
                value["stamp"] = self.now
            inputs["control"] = {"valid": 1, "payload": value}
        return valid

    def decide_tick(self):
        """Step the timebase once every item due has been taken and no reference update
        is on its way; at half rate not in two byte cycles running (the engine's clock
        would see one step of two: the timebase's are a microsecond apart)."""
        if self.client_q or self.exchange_q or self.control_q:
            return False
        if self.half_rate and self.cycle - self.last_tick < 2:
            return False
        if not self.items or self.items[0].t <= self.now:
            return False
        return not any(isinstance(p.item.event, SetReference) for p in self.control_wait)

    # --- Replay -------------------------------------------------------------------------

    def fail(self, what, record, expected):
        raise Mismatch(f"cycle {self.cycle}, {what}:\n  engine: {record}\n  model:  {expected}"
                       f"\n{self.history()}")

    def history(self):
        """The last records replayed, one line each, for a mismatch's context."""
        lines = ["records before (cycle, t, kind, session, type, ref, orig, accept, reasons):"]
        for rec in self.out.records[-int(os.environ.get("WIREGATE_HISTORY", "12")):]:
            kind = Kind(rec["kind"]).name
            if rec["kind"] == Kind.CONTROL:
                kind = Control(rec["control"]).name
            reasons = "|".join(r.name for r in R if rec["reasons"] >> r & 1)
            msg_type = chr(rec["msg_type"]) if rec["msg_type"] else "-"
            lines.append(f"  {rec['cycle']} {rec['time_us']} {kind} s{rec['session']} "
                         f"{msg_type} {rec['user_ref_num']} {rec['orig_user_ref_num']} "
                         f"{rec['accept']} {reasons}")
        return "\n".join(lines)

    def apply(self, event):
        if event.t < self.last_t:
            raise Mismatch(f"cycle {self.cycle}: record time {event.t} before {self.last_t}")
        self.last_t = event.t
        return self.gate.apply(event)

    def replay(self, rec, verdict_port):
        """Apply one record's event to the model and compare."""
        t = rec["time_us"]
        kind = rec["kind"]
        # The cycle the event was judged in, at EXEC, and the fill it was judged with
        # (BACKLOG): every record before it, less those the reader had taken before that
        # cycle (at W = 1 the record made at APPLY in the judging cycle counts, and at half
        # rate those on their way through the crossing).
        if rec["cycle"] != self.cycle - self.stamp_lag:
            self.fail("record cycle", rec["cycle"], self.cycle - self.stamp_lag)
        taken = self.read_through[rec["cycle"] - 1] if rec["cycle"] > 0 else 0
        judged = len(self.out.records) - 1 - taken
        if rec["queued"] != judged:
            self.fail("record queued", rec["queued"], judged)
        self.apply(HostRead(t, len(self.out.records) - 1 - judged))
        if kind == Kind.VERDICT:
            self.replay_verdict(rec, t, verdict_port)
            return
        if verdict_port["valid"]:
            self.fail("verdict without a VERDICT record", verdict_port, rec)
        if kind == Kind.EXCHANGE:
            if not self.exchange_wait:
                self.fail("EXCHANGE record with no exchange event taken", rec, None)
            item = self.exchange_wait.popleft().item
            msg = item.event.msg
            self.apply(ExchangeMessage(t, item.event.session, msg))
            fields = wire_fields(msg)
            expected = {"session": item.event.session, "msg_type": msg.TYPE[0],
                        **{name: fields.get(name, 0) for name in (
                            "user_ref_num", "orig_user_ref_num", "side", "quantity", "price",
                            "match_number", "order_state")}}
            self.compare(f"EXCHANGE record of {msg!r}", rec, expected)
            return
        if kind != Kind.CONTROL:
            self.fail("record kind", rec, "VERDICT, EXCHANGE or CONTROL")
        code = rec["control"]
        if code == Control.VOID_UNDO:
            if not self.frame_ends or self.frame is None:
                self.fail("VOID_UNDO with no void frame end presented", rec, None)
            item = self.frame_ends.popleft()
            session, count, refs = self.frame
            self.frame = None
            self.apply(FrameVoid(t, item.session))
            self.compare("VOID_UNDO record", rec, {"session": session, "argument": count})
            self.revokes.extend((session, ref) for ref in refs)
        elif code == Control.REVOKE:
            if not self.revokes:
                self.fail("REVOKE the replayed void frame did not accept", rec, None)
            session, ref = self.revokes.popleft()
            self.apply(Revoke(t, session, ref))
            self.compare("REVOKE record", rec, {"session": session, "user_ref_num": ref})
        else:
            if not self.control_wait:
                self.fail("CONTROL record with no control event taken", rec, None)
            event = self.control_wait.popleft().item.event
            if control_value(event)["code"] != code:
                self.fail("control code", rec, event)
            self.apply(at(event, t))
            self.compare(f"CONTROL record of {event!r}", rec, self.control_expected(event, t))

    def control_expected(self, event, t):
        if isinstance(event, Commit):
            self.epoch += 1
        return control_fields(event, t, self.epoch)

    def replay_verdict(self, rec, t, verdict_port):
        if not self.client_wait:
            self.fail("VERDICT record with no client event presented", rec, None)
        presented = self.client_wait.popleft()
        item = presented.item
        event = item.event
        if event.opens_frame:
            self.frame = (item.session, 0, [])
        verdict = self.apply(ClientMessage(t, item.session, event.msg, event.retransmit,
                                           event.opens_frame))
        self.out.verdicts.append(verdict)
        if self.frame is not None and self.frame[0] == item.session:
            session, count, refs = self.frame
            if verdict.accept and not event.retransmit and verdict.msg_type in (b"O", b"U"):
                refs.append(verdict.user_ref_num)
            self.frame = (session, count + 1, refs)
        msg = event.msg
        fields = {} if isinstance(msg, Malformed) else wire_fields(msg)
        expected = {
            "session": item.session, "msg_type": verdict.msg_type[0] if verdict.msg_type else 0,
            "accept": int(verdict.accept), "reasons": verdict.reasons,
            "primary": NO_PRIMARY if verdict.primary is None else int(verdict.primary),
            "retransmit": int(event.retransmit),
            "symbol_known": int(verdict.symbol_index is not None),
            "symbol_index": verdict.symbol_index or 0,
            "user_ref_num": verdict.user_ref_num or 0,
            **{name: fields.get(name, 0) for name in (
                "orig_user_ref_num", "side", "quantity", "price", "symbol")},
        }
        reasons = "|".join(r.name for r in R if verdict.reasons >> r & 1) or "accept"
        self.compare(f"VERDICT of {msg!r} (model: {reasons})", rec, expected)
        latency = self.cycle - presented.cycle
        least = self.dut.least_latency if self.half_rate else self.dut.latency
        if not least <= latency <= self.dut.latency:
            self.fail("verdict latency", latency, (least, self.dut.latency))
        port = {"valid": 1, "accept": int(verdict.accept), "type_offset": presented.type_offset,
                "frame": item.frame % (1 << FRAME_BITS)}
        if verdict_port != port:
            self.fail("verdict port", verdict_port, port)

    def compare(self, what, rec, expected):
        got = {name: rec[name] for name in expected}
        if got != expected:
            self.fail(what, got, expected)

    def readback(self, ctx):
        """The session read-back as the model keeps it."""
        dut = self.dut
        n = self.sizes.n_sessions

        def array(view):
            return unpack(view.shape(), ctx.get(view.as_value()))

        def bits(value):
            return [value >> s & 1 for s in range(n)]

        return {
            "credit_used": array(dut.credit_used),
            "gateway_credit_used": ctx.get(dut.gateway_credit_used),
            "last_user_ref_num": array(dut.last_user_ref_num),
            "unmatched": array(dut.unmatched),
            "throttled": bits(ctx.get(dut.throttled)),
            "throttle_count": array(dut.throttle_count),
            "kill_gateway": ctx.get(dut.kill_gateway),
            "kill_sessions": bits(ctx.get(dut.kill_sessions)),
            "in_sync": bits(ctx.get(dut.in_sync)),
        }

    def model_readback(self):
        gate = self.gate
        st = gate.sessions
        return {
            "credit_used": [x.credit_used for x in st],
            "gateway_credit_used": gate.gateway_credit_used,
            "last_user_ref_num": [x.last_user_ref_num for x in st],
            "unmatched": [x.unmatched for x in st],
            "throttled": [int(x.throttled) for x in st],
            "throttle_count": [x.throttle_count for x in st],
            "kill_gateway": int(gate.kill_gateway),
            "kill_sessions": [int(k) for k in gate.kill_session],
            "in_sync": [int(x.in_sync) for x in st],
        }

    def check_readback(self, ctx):
        """After a record: the read-back equals the model's, unless an event in flight has
        already moved it (a kill or release writes its latch a cycle before its record; at
        W = 1 a session sync at EXEC writes the sync flag while the event before it, one
        that writes nothing, makes its record)."""
        got, expected = self.readback(ctx), self.model_readback()
        moving = {Kill: ("kill_gateway", "kill_sessions"), Release: ("kill_gateway",
                  "kill_sessions"), SessionSync: ("in_sync",)}
        for name in {name for p in self.control_wait
                     for name in moving.get(type(p.item.event), ())}:
            del got[name], expected[name]
        if got != expected:
            diff = {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}
            raise Mismatch(f"cycle {self.cycle}, read-back after the last record: "
                           f"(engine, model) {diff}\n{self.history()}")

    # --- The run --------------------------------------------------------------------------

    def peeks(self):
        """Random addresses, within their ranges, on every host read port."""
        return {name: {member: self.rng.randrange(len(f.shape)) if isinstance(f.shape, range)
                       else self.rng.getrandbits(f.width)
                       for member, f in self.inputs[name].shape}
                for name in PEEKS}

    def busy(self):
        return any((self.items, self.client_q, self.exchange_q, self.control_q,
                    self.client_wait, self.exchange_wait, self.control_wait, self.frame_ends,
                    self.revokes))

    def run(self, max_cycles=400_000) -> Outcome:
        drive, observe = self.drive.as_value(), self.observe.as_value()

        async def testbench(ctx):
            idle = 0
            record = False
            driven = 0
            while idle <= 3 * self.dut.latency:
                before = unpack(self.outputs, ctx.get(observe))
                if record:
                    self.check_readback(ctx)
                tick = self.decide_tick()
                self.now += tick
                if tick:
                    self.last_tick = self.cycle
                self.release(self.now)
                inputs = {"tick": int(tick), "queued": self.queued, **self.peeks()}
                self.drive_client(inputs)
                x_valid = self.drive_exchange(inputs)
                c_valid = self.drive_control(inputs, before["commit_pending"])
                value = pack(self.inputs, inputs)
                if value != driven:
                    ctx.set(drive, value)
                    driven = value
                seen = unpack(self.outputs, ctx.get(observe))
                if x_valid and seen["exchange_ready"]:
                    self.exchange_wait.append(_Presented(self.exchange_q.popleft(), self.cycle))
                    self.x_holding = False
                if c_valid and seen["control_ready"]:
                    self.c_holding = False
                    item = self.control_q.popleft()
                    self.control_wait.append(_Presented(item, self.cycle))
                    if isinstance(item.event, Commit):
                        self.writing = None
                record = bool(seen["record_valid"])
                if record:
                    self.out.records.append(seen["record"])
                    self.replay(seen["record"], seen["verdict"])
                elif seen["verdict"]["valid"]:
                    self.fail("verdict without a record", seen["verdict"], None)
                # The host never sees a gap: pending from the cycle after the port took the
                # commit until its record.
                if not seen["commit_pending"] and any(
                        isinstance(p.item.event, Commit) and p.cycle < self.cycle
                        for p in self.control_wait):
                    self.fail("commit_pending", 0, 1)
                read = self.queued > 0 and self.reader(self.cycle)
                self.queued += record - read
                self.read_through.append(
                    int(read) + (self.read_through[-1] if self.read_through else 0))
                idle = 0 if record or self.busy() else idle + 1
                await ctx.tick()
                self.cycle += 1
                if self.cycle > max_cycles:
                    raise Mismatch(f"no progress after {max_cycles} cycles: client "
                                   f"{len(self.client_q)}, exchange {len(self.exchange_q)}, "
                                   f"control {len(self.control_q)} waiting")
            if driven:
                ctx.set(drive, 0)
            await self.final_state(ctx)

        sim = Simulator(self.top)
        sim.add_clock(8e-9)
        if self.half_rate:      # rising edges on every other byte clock's
            sim.add_clock(16e-9, phase=4e-9, domain=ENGINE_DOMAIN)
        sim.add_testbench(testbench)
        sim.run()
        self.out.cycles = self.cycle
        return self.out

    async def final_state(self, ctx):
        """Every read-back, exposure word and order entry against the model."""
        dut = self.dut
        gate = self.gate
        gate.apply(Tick(self.now))
        got, expected = self.readback(ctx), self.model_readback()
        got["tokens"] = unpack(dut.tokens.shape(), ctx.get(dut.tokens.as_value()))
        expected["tokens"] = [gate.tokens(s) for s in range(self.sizes.n_sessions)]
        assert got == expected, "final read-back (engine, model): " + str(
            {k: (got[k], expected[k]) for k in got if got[k] != expected[k]})
        drive = self.drive.as_value()
        exposure_layout = dut.peek_exposure.data.shape()
        order_layout = dut.peek_order.data.shape()

        async def peek(name, address):
            """Hold ``address`` on a read port until ``ok`` answers it."""
            ctx.set(drive, pack(self.inputs, {name: address}))
            await ctx.tick()
            while not ctx.get(getattr(dut, name).ok):
                await ctx.tick()

        for s in range(self.sizes.n_sessions):
            for y in range(self.sizes.n_symbols):
                await peek("peek_exposure", {"session": s, "symbol": y})
                word = unpack(exposure_layout, ctx.get(dut.peek_exposure.data.as_value()))
                e = gate.exposure(s, y)
                assert word == {"position": e.position, "working_buy": e.working_buy,
                                "working_sell": e.working_sell}, f"exposure ({s}, {y})"
            for slot in range(self.sizes.n_orders):
                await peek("peek_order", {"session": s, "slot": slot})
                entry = {"valid": ctx.get(dut.peek_order.valid),
                         **unpack(order_layout, ctx.get(dut.peek_order.data.as_value()))}
                model = gate.sessions[s].orders[slot]
                if model is None:
                    assert not entry["valid"], f"order ({s}, slot {slot}): {entry}"
                    continue
                assert entry == order_entry(model), f"order ({s}, slot {slot})"


def check_engine(items, *, seed=0, **options) -> Outcome:
    """Run ``items`` through the engine against the model; return what happened."""
    return Bench(items, random.Random(seed), **options).run()


def seeded():
    """A seed (from ``WIREGATE_SEED`` or fresh), printed so that a failure can be replayed."""
    seed = int(os.environ.get("WIREGATE_SEED", random.randrange(1 << 32)))
    print(f"seed={seed}")
    return seed


# --- Directed scenarios ------------------------------------------------------------------------

AAPL, MSFT, BANNED, NOREF, TINY = 3, 7, 12, 20, 31


def session(index, **options):
    """A session whose bucket refills every 10 us (the directed scenarios run for few)."""
    return orders.session(index, **{"rate": RateLimit(burst=100, refill_us=10, trip_after=0),
                                    **options})


def limits(*, sessions=None, symbols=None, heartbeat_timeout_us=10**6, **options):
    return orders.limits(symbols or (
        symbol(AAPL, "AAPL"),
        symbol(MSFT, "MSFT", reference_price=2 * P100, collar=100_000),
        symbol(BANNED, "BANNED", restricted=True),
        symbol(NOREF, "NOREF", reference_price=0),
        symbol(TINY, "TINY", max_order_quantity=50, max_order_notional=40 * P100,
               max_long=60, max_short=40),
    ), sessions=sessions or (session(0), session(1)),
        heartbeat_timeout_us=heartbeat_timeout_us, **options)


def fired(outcome, reason):
    """How many verdicts of the run had ``reason`` set."""
    return sum(v.reasons >> reason & 1 for v in outcome.verdicts)


# --- Directed tests: one rule area each --------------------------------------------------------


def test_not_loaded_then_commit_loads_and_heartbeat_times_out():
    script = Script()
    script.client(0, enter(1), cancel(1), ouch.AccountQuery())
    script.at(5).control(Commit, limits(heartbeat_timeout_us=40))
    script.at(6).client(0, enter(2)).client(2, enter(1))     # session 2 not in the limits
    script.at(60).client(0, enter(3))                        # 55 us silent: HEARTBEAT
    script.at(61).control(Heartbeat).at(62).client(0, enter(4))
    out = check_engine(script.items)
    assert fired(out, R.NOT_LOADED) == 2 and fired(out, R.HEARTBEAT) == 1
    assert sum(v.accept for v in out.verdicts) == 4


def test_out_of_sync_and_malformed_run_no_other_check():
    script = Script(limits())
    script.at(1).client(0, enter(1), *MALFORMED)
    script.at(2).control(SessionSync, 0, False)
    script.at(3).client(0, enter(2), cancel(1), "bad_length").client(1, enter(1))
    script.at(4).control(SessionSync, 0, True).at(5).client(0, enter(2))
    out = check_engine(script.items)
    assert fired(out, R.MALFORMED) == 5 and fired(out, R.OUT_OF_SYNC) == 3


def test_messages_that_add_no_risk_pass_every_kill():
    script = Script(limits())
    script.at(1).client(0, enter(1, "S")).at(2).control(Kill, "gateway")
    script.at(3).client(0, cancel(1, 40), cancel(99), ouch.AccountQuery(),
                        ouch.MassCancel(user_ref_num=5, firm="FIRM", symbol="AAPL"),
                        ouch.DisableOrderEntry(user_ref_num=6, firm="FIRM"),
                        ouch.EnableOrderEntry(user_ref_num=7, firm="FIRM"), enter(8))
    out = check_engine(script.items)
    assert [v.accept for v in out.verdicts] == [True] * 7 + [False]


def test_enter_checks_fire_one_by_one():
    script = Script(limits(sessions=(session(0), session(1, max_order_quantity=300,
                                                         max_order_notional=20_000 * 10_000)),
                           reference_max_age_us=50))
    script.at(1).client(0, enter(1, name="ZVZZT"), enter(2, name="BANNED"),
                        enter(3, quantity=0), enter(4, quantity=1_001),
                        enter(5, quantity=1_000_000), enter(6, name="TINY", quantity=50),
                        enter(7, price=P100 + 50_001), enter(8, price=0), enter(9, name="NOREF"))
    script.at(2).client(1, enter(1, quantity=301), enter(2, quantity=250))
    script.at(3).client(0, enter(10, "B", 1_000), enter(11, "B", 600), enter(12, "S", 1_000),
                        enter(13, "T", 1))
    script.at(80).client(0, enter(14))                                  # stale reference
    script.at(81).control(SetReference, AAPL, P100).at(82).client(0, enter(15))
    out = check_engine(script.items)
    for reason in (R.UNKNOWN_SYMBOL, R.RESTRICTED, R.QUANTITY, R.NOTIONAL, R.COLLAR,
                   R.POSITION):
        assert fired(out, reason), reason.name


def test_duplicate_ref_and_capacity():
    script = Script(limits())
    script.at(1).client(0, enter(5), enter(5), enter(3), enter(21), enter(37), enter(38))
    script.at(10).client(0, replace_order(5, 53, 100))                    # its own slot
    out = check_engine(script.items)
    assert fired(out, R.DUPLICATE_REF) == 2 and fired(out, R.CAPACITY) == 3


def test_orders_that_collide_in_the_direct_mapped_table():
    # Issue 17: resting orders at 1, 2 and 3 block every UserRefNum n_orders apart (model
    # rule 12 with one way) while they rest, and nothing else; the exchange frees them.
    n = SIZES.n_orders
    script = Script(limits())
    script.at(1).client(0, enter(1, quantity=10), enter(2, "S", 10), enter(3, quantity=10))
    for j in range(1, 5):
        script.at(10 * j).client(0, *(enter(k + j * n, quantity=1) for k in (1, 2, 3, 4)))
        script.at(10 * j + 5).exchange(0, canceled(4 + j * n, 1))
    script.at(60).client(0, replace_order(3, 3 + 5 * n, 5))              # its own slot
    # Unannounced Order Replaced onto the original's own slot: the original's context.
    script.at(70).exchange(0, replaced(2, 2 + 5 * n, 10, side="S"), replaced(3, 3 + 6 * n, 10))
    script.at(80).exchange(0, executed(1, 10, P100, 1))
    script.at(90).client(0, enter(1 + 7 * n, quantity=2), enter(4 + 7 * n, quantity=3))
    # Onto a slot another live order holds: unmatched, the original still leaves.
    script.at(100).exchange(0, replaced(4 + 7 * n, 2 + 8 * n, 3))
    out = check_engine(script.items)
    assert fired(out, R.CAPACITY) == 3 * 4 + 1
    assert [v.accept for v in out.verdicts] == \
        [True] * 3 + [False, False, False, True] * 4 + [False, True, True]


def test_associative_order_table():
    # Model rule 12's worked example at 4 ways (4 sets of 2-bit XOR-folded fields): strides
    # of n_orders rest at once, a full set refuses, a freed way is taken again, and inserts
    # into one set back to back each see the one before (forwarded per way).
    script = Script(limits())
    script.at(1).client(0, *(enter(ref, quantity=10) for ref in (1, 17, 33, 49, 50, 55, 56, 61)))
    script.at(10).exchange(0, executed(50, 10, P100, 1))                   # frees set 1 way 1
    script.at(20).client(0, enter(64, quantity=10), replace_order(1, 65, 20),   # 65: set 0
                         replace_order(55, 66, 5))                             # 66: set 3
    # 56 leaves set 1 and 69 (set 1, no pending entry) takes its lowest free way, 1's.
    script.at(30).exchange(0, replaced(1, 65, 20), replaced(55, 66, 5), replaced(56, 69, 10))
    script.at(40).client(0, enter(79, quantity=1), enter(81, quantity=1),     # set 1
                         enter(84, quantity=1), enter(86, quantity=1))         # set 1, set 3
    script.at(50).exchange(0, replaced(86, 84, 5))      # into full set 1: unmatched, 86 leaves
    out = check_engine(script.items, sizes=replace(SIZES, order_ways=4))
    assert [v.accept for v in out.verdicts] == \
        [True] * 7 + [False] + [True] * 3 + [True, True, False, True]
    assert fired(out, R.CAPACITY) == 2


def test_credit_session_and_gateway():
    script = Script(limits(sessions=(session(0, credit=250 * P100), session(1)),
                           credit=400 * P100))
    script.at(1).client(0, enter(1), enter(2), enter(3))
    script.client(1, enter(1), enter(2), enter(3))
    script.at(2).exchange(0, executed(1, 100, P100, 1)).at(3).client(0, cancel(2))
    script.at(4).exchange(0, canceled(2, 100)).at(5).client(0, enter(4), replace_order(1, 5, 50))
    out = check_engine(script.items)
    assert fired(out, R.CREDIT_SESSION) and fired(out, R.CREDIT_GATEWAY)


def test_rate_throttles_trips_and_refills():
    script = Script(limits(sessions=(session(0, rate=RateLimit(3, 20, 3)), session(1))))
    script.at(1).client(0, *(enter(ref) for ref in range(1, 8)))
    script.at(2).control(Release, "session", 0).at(30).client(0, enter(8), enter(9))
    script.at(31).control(Commit, limits(sessions=(session(0, rate=RateLimit(2, 7, 0)),)))
    script.at(60).client(0, enter(10), enter(11), enter(12))
    out = check_engine(script.items)
    assert fired(out, R.RATE) >= 4 and fired(out, R.KILL_SESSION) >= 1


def test_kill_and_release_at_every_scope():
    script = Script(limits())
    script.at(1).control(Kill, "gateway").at(2).client(0, enter(1))
    script.at(3).control(Release, "gateway").control(Kill, "session", 1)
    script.at(4).client(1, enter(1)).client(0, enter(2)).at(5).control(Kill, "symbol", MSFT)
    script.at(6).client(0, enter(3, name="MSFT", price=2 * P100), enter(4))
    script.at(7).control(Release, "session", 1).control(Release, "symbol", MSFT)
    script.at(8).client(1, enter(2)).client(0, enter(5, name="MSFT", price=2 * P100))
    out = check_engine(script.items)
    for reason in (R.KILL_GATEWAY, R.KILL_SESSION, R.KILL_SYMBOL):
        assert fired(out, reason) == 1, reason.name


def test_replace_reserves_and_the_exchange_settles():
    # Steps 10 us apart: a Replace right behind the message before it on the same order is
    # test_replace_five_cycles_after_the_enter_of_its_original's subject.
    script = Script(limits())
    script.at(10).client(0, enter(1, quantity=100), enter(2, "S", 80))
    script.at(20).client(0, replace_order(1, 3, 150), replace_order(2, 4, 40, P100 + 10))
    script.at(30).client(0, replace_order(77, 78, 10), replace_order(3, 79, 10))  # unknown, pending
    script.at(40).exchange(0, replaced(1, 3, 150), replaced(2, 4, 40, P100 + 10, side="S"))
    script.at(50).client(0, replace_order(3, 80, 300)).at(60).exchange(0, rejected(80))
    script.at(70).client(0, replace_order(4, 81, 90, P100 + 20))
    script.at(80).exchange(0, replaced(4, 81, 0, side="S", state="D"))
    script.exchange(0, replaced(60, 61, 5))                                 # unannounced
    out = check_engine(script.items)
    assert [v.accept for v in out.verdicts] == [True] * 4 + [False] * 2 + [True] * 2


@pytest.mark.parametrize("width", [1, 8])
def test_a_replace_of_a_pending_order_releases_nothing(width):
    """A client chaining Replaces without waiting: the second names the first's new order,
    pending until the exchange's Order Replaced. It is UNKNOWN_ORDER, and the credit checks
    count none of the pending order's charge as released (model rule 5): counted, the
    session's credit would not fire."""
    script = Script(limits(sessions=(session(0, credit=220 * P100), session(1))))
    script.at(1).client(0, enter(1, quantity=100)).at(10).client(0, replace_order(1, 2, 150))
    script.at(20).client(0, replace_order(2, 3, 100))
    out = check_engine(script.items, width=width)
    last = out.verdicts[-1]
    assert [v.accept for v in out.verdicts] == [True, True, False]
    assert last.reasons >> R.UNKNOWN_ORDER & 1 and last.reasons >> R.CREDIT_SESSION & 1

def test_modify_rules_and_order_modified():
    script = Script(limits())
    script.at(1).client(0, enter(1, "S", 100), enter(2, "B", 100))
    script.at(2).client(0, modify(1, "T", 80), modify(1, "S", 101), modify(2, "S", 10),
                        modify(9, "B", 1))
    script.at(3).exchange(0, modified(1, "T", 80), modified(2, "B", 150), modified(9, "B", 1))
    out = check_engine(script.items)
    assert [v.reasons for v in out.verdicts[2:]] == [
        0, 1 << R.QUANTITY, 1 << R.POSITION, 1 << R.UNKNOWN_ORDER]


def test_exchange_messages_and_the_execution_table():
    script = Script(limits())
    script.at(1).client(0, enter(1, quantity=300), enter(2, "S", 100), enter(3))
    # Matches 40 and 56 share an execution slot: the second evicts the first.
    script.at(2).exchange(0, accepted(1), accepted(3, "D"), executed(1, 100, P100 + 5, 40),
                          executed(1, 50, P100, 56), canceled(2, 30), aiq_canceled(2, 20),
                          executed(2, 50, P100, 41))
    script.at(3).exchange(0, broken(1, 40), corrected(1, 56, 20, P100 - 3), broken(1, 40),
                          broken(2, 57), executed(9, 1, P100, 3), rejected(2), accepted(2))
    script.exchange(0, ouch.SystemEvent(timestamp=1, event_code="S"),
                    ouch.CancelPending(timestamp=1, user_ref_num=1),
                    ouch.PriorityUpdate(timestamp=1, user_ref_num=1, price=P100,
                                        display="Y", order_reference_number=1))
    out = check_engine(script.items)
    assert out.gate.sessions[0].unmatched == 6


@pytest.mark.parametrize("width", [1, 8])
def test_exchange_events_wait_for_the_execution_the_one_ahead_writes(width):
    """A correction and a broken trade right behind the fill that made their execution: each
    reads the execution's quantity and price before ``EXEC`` (its notional), so it waits
    while the fill is in flight (a hazard). Taken at once, it would read the slot before the
    fill's write and take another notional off the credit than the model does."""
    script = Script(limits())
    script.at(1).client(0, enter(1, quantity=300), enter(2, quantity=300))
    script.at(2).exchange(0, accepted(1), accepted(2), executed(1, 100, P100 + 5, 40),
                          corrected(1, 40, 60, P100 - 3), executed(2, 100, P100 + 7, 41),
                          broken(2, 41))
    script.at(3).client(0, enter(3, quantity=10))
    for seed in range(4):       # the bench idles the exchange port in random cycles
        check_engine(script.items, seed=seed, width=width)


def test_retransmissions_repeat_the_remembered_verdict():
    script = Script(limits(sessions=(session(0, rate=RateLimit(2, 1000, 0)),)))
    script.at(1).client(0, enter(1), enter(2, quantity=0), modify(1, "B", 50), cancel(1))
    script.client(0, enter(1), enter(2, quantity=0), modify(1, "B", 50), cancel(7),
                  "split", ouch.AccountQuery(), retransmit=True)
    script.client(0, enter(1, quantity=101), enter(3), modify(1, "B", 51), retransmit=True)
    script.at(2).client(0, enter(1), enter(17))                # 17 overwrites 1's memory
    script.client(0, enter(1), retransmit=True)
    # Fields the extractor does not carry count (the digest), the appendage does not.
    tagged = replace(enter(17), appendage=(ouch.TagValue(2, b"FIRM"),))
    script.client(0, replace(enter(17), clordid="OTHER"), replace(enter(17), display="N"),
                  tagged, retransmit=True)
    out = check_engine(script.items)
    assert [v.reasons for v in out.verdicts[4:10]] == [
        0, 1 << R.QUANTITY, 0, 0, 1 << R.MALFORMED, 0]
    assert out.verdicts[-1] == out.verdicts[-5]
    assert fired(out, R.OUT_OF_SYNC) == 6


@pytest.mark.parametrize("width", [1, 8])
def test_void_frames_undo_and_revoke(width):
    # At W = 8 the revokes of a void frame may enter in consecutive cycles.
    script = Script(limits(sessions=(session(0, rate=RateLimit(3, 0, 0)), session(1))))
    script.at(1).client(0, enter(1))
    script.at(10).client(0, enter(2, quantity=200), replace_order(1, 3, 150), enter(4), enter(5),
                         void=True)
    script.client(1, enter(1), enter(2, quantity=0), void=True)
    script.at(20).client(0, enter(2, quantity=200), enter(3))    # the frame again, as new data
    script.client(0, "unknown_type", void=True)
    script.exchange(0, accepted(2))
    out = check_engine(script.items, width=width)
    assert [r["control"] for r in out.records if r["kind"] == Kind.CONTROL].count(
        Control.REVOKE) == 3


def test_void_frame_sent_again_after_its_revokes():
    """The client resends a void frame's bytes as soon as the engine's contract lets it
    (its revokes have run): the resent orders are live, the first copies withdrawn."""
    script = Script(limits())
    script.at(1).client(0, enter(1), enter(2), void=True)
    script.at(2).client(0, enter(1), enter(2))
    out = check_engine(script.items, dense=1.0)
    assert [v.accept for v in out.verdicts] == [True, True, True, True]


def test_commit_keeps_held_references_and_loads_new_ones():
    names = dict(symbols=(symbol(AAPL, "AAPL"), symbol(MSFT, "MSFT")))
    renamed = dict(symbols=(symbol(AAPL, "AAPL", reference_price=2 * P100),
                            symbol(MSFT, "IBM", reference_price=3 * P100, collar=10)))
    script = Script(limits(reference_max_age_us=30, **names))
    script.at(10).control(SetReference, AAPL, P100 + 40_000)
    script.at(20).control(Commit, limits(reference_max_age_us=30, **renamed))
    script.at(21).client(0, enter(1, price=P100 + 40_000), enter(2, name="IBM", price=3 * P100))
    script.at(45).client(0, enter(3, price=P100 + 40_000), enter(4, name="IBM", price=3 * P100))
    script.at(46).control(Commit, limits(reference_max_age_us=30, sessions=(session(0),),
                                         symbols=(symbol(AAPL, "AAPL"),)))
    script.at(47).client(0, enter(5, price=P100 + 40_000), enter(6, name="IBM")).client(
        1, enter(1))
    out = check_engine(script.items)
    assert [v.accept for v in out.verdicts] == [True, True, False, True, False, False, False]


def test_replace_five_cycles_after_the_enter_of_its_original():
    """At W = 8 a Replace (43 bytes with its SoupBin header) can settle five beats after
    the Enter before it; the contract asks for more than EXEC - KEY."""
    script = Script(limits())
    script.at(1).client(0, enter(1), replace_order(1, 2, 150))
    check_engine(script.items, dense=0.0)


def test_replace_of_an_order_the_exchange_replaced_three_cycles_before():
    """A client chaining Replaces without waiting for the acks: its second Replace names the
    order an Order Replaced makes live, a few cycles after that event."""
    script = Script(limits())
    script.at(1).client(0, enter(1)).at(20).client(0, replace_order(1, 2, 150))
    # The Enter holds the client port while the exchange event waits; the Replace follows
    # at its wire distance, five beats later.
    script.at(40).exchange(0, replaced(1, 2, 150)).client(0, enter(3), replace_order(2, 4, 100))
    check_engine(script.items, dense=0.0, contract=False)


def test_the_background_goes_between_messages_that_write_nothing():
    """At W = 1 an exchange, control or revoke event may enter right before or right after a
    client message that writes nothing (Account Query, Mass Cancel, Disable, Enable, a
    malformed message), so a flood of them at the engine's least spacing (two cycles) leaves
    the background every other cycle. Here the exchange's answers to a session's orders, its
    sync flag cleared and set again, and another session's kill land between the session's
    own flood, each judged as the model says; the flood names the orders' sets (not the
    orders), its Mass Cancels the orders' symbol, and a host reading the drop copy slowly
    moves the backlog flag across it."""
    script = Script(limits())
    script.at(1).client(0, *(enter(ref) for ref in range(1, 7)))
    flood = [msg for ref in range(17, 23) for msg in (
        ouch.AccountQuery(), "unknown_type",
        ouch.MassCancel(user_ref_num=ref, firm="FIRM", symbol="AAPL"),
        ouch.DisableOrderEntry(user_ref_num=ref, firm="FIRM"), "bad_field",
        ouch.EnableOrderEntry(user_ref_num=ref, firm="FIRM"))]
    script.at(30).exchange(0, *(accepted(ref) for ref in range(1, 7)),
                           executed(1, 40, P100, 11), canceled(2, 100))
    script.control(SessionSync, 0, False).control(Kill, "session", 1)
    script.control(SessionSync, 0, True)
    script.client(0, *flood)
    script.at(60).client(0, enter(7)).client(1, enter(1))
    out = check_engine(script.items, dense=1.0, reader=lambda cycle: cycle % 3 == 0)
    flooded = [k for k, rec in enumerate(out.records)
               if rec["kind"] == Kind.VERDICT and rec["msg_type"] in b"QCDE\0"]
    assert len(flooded) == len(flood)
    between = [rec["kind"] for rec in out.records[flooded[0]:flooded[-1]]
               if rec["kind"] != Kind.VERDICT]
    assert len(between) == 11, between        # 8 exchange events, the two syncs, the kill
    assert fired(out, R.OUT_OF_SYNC) > 0 and fired(out, R.MALFORMED) > 0
    # Both Enters after it are refused for the backlog; the first is in sync again, the
    # second's session killed.
    assert [v.reasons >> r & 1 for v in out.verdicts[-2:]
            for r in (R.BACKLOG, R.OUT_OF_SYNC, R.KILL_SESSION)] == [1, 0, 0, 1, 0, 1]


def test_the_backlog_flag_an_event_at_apply_leaves_for_the_one_at_exec():
    """Rule 11's flag at W = 1 when a quiet event and a writing one are judged a cycle
    apart: the second must see the flag as the first left it, a cycle before the first's
    write lands. The host drains the drop copy so that the flood's second message finds the
    fill under the low mark (clearing the flag set by a burst of Enters) and the exchange
    event right behind it finds it at the mark: with the flag the second takes from before
    that message, it would set it again, the events after it would keep it while the fill
    stays at the mark or above, and the Enter behind them would be refused BACKLOG where
    the model accepts it (the seed makes it so: checked below, with the pair)."""
    high, low = SIZES.backlog_high, SIZES.backlog_low
    script = Script(limits())
    script.at(1).client(0, *(enter(ref, quantity=1) for ref in range(1, 11)))
    script.at(30).exchange(0, *(accepted(ref, quantity=1) for ref in range(1, 11)))
    # Mass Cancels (a 20-byte packet) come a cycle or two apart; Account Queries would
    # come every cycle and leave the exchange events no slot.
    script.client(0, *(ouch.MassCancel(user_ref_num=100 + k, firm="FIRM", symbol="AAPL")
                       for k in range(2)), enter(48, quantity=1),
                  *(ouch.MassCancel(user_ref_num=102 + k, firm="FIRM", symbol="AAPL")
                    for k in range(20)))
    script.at(31).client(1, *(enter(ref, quantity=1) for ref in range(1, 6)))
    bench = Bench(script.items, random.Random(34), dense=0.5)
    to_exec = engine_latency(1) - (bench.dut.apply_stage - EXEC)   # arrival to EXEC
    judged = []         # the cycle the flood's first message is judged in

    def reader(cycle):
        if not judged:
            judged.extend(p.cycle + to_exec for p in bench.client_wait
                          if isinstance(p.item.event.msg, ouch.MassCancel))
        if cycle < 95:
            return False            # the Enters' records pile up: the flag is set
        if judged and cycle in (judged[0], judged[0] + 1):
            return True             # ... then two records taken in a row
        return not (judged and cycle == judged[0] + 2) and bench.queued > low

    bench.reader = reader
    out = bench.run()
    flag, pairs = 0, []
    for before, rec in pairwise(out.records):
        flag_before = flag
        flag = int(before["queued"] >= high or (flag and before["queued"] >= low))
        if (flag_before and before["queued"] == low - 1 and rec["queued"] == low
                and rec["cycle"] == before["cycle"] + 1 and rec["kind"] == Kind.EXCHANGE):
            pairs.append(rec["cycle"])
    assert pairs, "no record pair clears the flag and reaches the low mark a cycle apart"
    # The Enter comes after the pair with no record under the low mark between, and passes.
    entered = next(k for k, rec in enumerate(out.records) if rec["user_ref_num"] == 48)
    between = [rec["queued"] for rec in out.records[:entered] if rec["cycle"] >= pairs[0]]
    assert out.records[entered]["accept"] and min(between) >= low, between


def test_wire_spacing_without_the_engine_assumptions():
    """Orders named again as soon as the ingress can deliver them at W = 8: a Cancel or a
    Modify a beat or two after its Enter, a Replace five."""
    script = Script(limits())
    script.at(1).client(0, enter(1), cancel(1, 50), modify(1, "B", 60), replace_order(1, 2, 80),
                        cancel(2), enter(3, "S"), replace_order(3, 4, 120))
    check_engine(script.items, dense=0.0, contract=False)


def test_backlog_rejects_new_orders_until_the_host_reads():
    """A host that takes a record every fifth cycle behind a burst of Enter orders: BACKLOG
    from the high mark (8) until the fill is below the low mark (3), the cancel passes, and
    the spaced orders after it are accepted; no latch. The run covers both marks: an Enter
    that sees exactly 8, and one that sees exactly 3 while backlogged (if the engine's
    timing changes, the spacing here may need tuning to keep that coverage)."""
    script = Script(limits())
    script.at(1).client(0, *(enter(ref, quantity=1) for ref in range(1, 14)), cancel(1))
    for k in range(14):
        script.at(20 + 18 * k).client(1, enter(k + 1, quantity=1))
    out = check_engine(script.items, dense=1.0, reader=lambda cycle: cycle % 5 == 0)
    seen = [(rec["session"], rec["queued"], rec["reasons"] >> R.BACKLOG & 1)
            for rec in out.records if rec["kind"] == Kind.VERDICT and rec["msg_type"] == ord("O")]
    assert (0, 8, 1) in seen and (1, 3, 1) in seen, seen
    assert fired(out, R.BACKLOG) == 4, seen
    assert all(v.accept for v in out.verdicts if v.msg_type == b"X"), seen
    assert all(v.accept for v in out.verdicts[-12:]), seen
    assert not out.gate.kill_gateway and not any(out.gate.kill_session)


# --- The trading day ---------------------------------------------------------------------------


def test_trading_day():
    seed = seeded()
    trading = Trading(seed, SIZES)
    items = trading.generate(2_500)
    pace = random.Random(seed)
    # The host reads at once but in one stretch of 500 cycles out of four, when it is slow.
    out = check_engine(items, seed=seed,
                       reader=lambda cycle: cycle // 500 % 4 != 0 or pace.random() < 0.1)
    print(f"{len(items)} items, {len(out.records)} records, {out.cycles} cycles, "
          f"{fired(out, R.BACKLOG)} BACKLOG")
    assert len(out.verdicts) == trading.messages
    assert fired(out, R.BACKLOG) > 0


def test_trading_day_at_eight_bytes_a_beat():
    # At W = 8 a Replace's original is read through the order table's second copy, in the
    # Replace's own cycle, and a Replace may follow the message before it a beat later.
    seed = seeded()
    trading = Trading(seed, SIZES)
    items = trading.generate(1_500)
    out = check_engine(items, seed=seed, width=8, dense=0.8)
    assert len(out.verdicts) == trading.messages
    assert sum(v.msg_type == b"U" for v in out.verdicts) > 0


def test_trading_day_at_four_ways():
    # The random day's stride runs and resting orders through a 4-way order table.
    seed = seeded()
    sizes = replace(SIZES, order_ways=4)
    trading = Trading(seed, sizes)
    items = trading.generate(1_500)
    out = check_engine(items, seed=seed, sizes=sizes)
    assert len(out.verdicts) == trading.messages
    assert fired(out, R.CAPACITY) > 0


def test_trading_day_at_half_the_byte_clock():
    # The engine in its own clock, every port crossed: the bench's cycles are the byte
    # clock's, twice as many between client messages; host writes every other cycle.
    seed = seeded()
    trading = Trading(seed, SIZES)
    items = trading.generate(1_500)
    pace = random.Random(seed)
    out = check_engine(items, seed=seed, half_rate=True,
                       reader=lambda cycle: cycle // 900 % 4 != 0 or pace.random() < 0.05)
    print(f"{len(items)} items, {len(out.records)} records, {out.cycles} cycles, "
          f"{fired(out, R.BACKLOG)} BACKLOG")
    assert len(out.verdicts) == trading.messages
    assert fired(out, R.BACKLOG) > 0


def test_a_host_read_of_the_symbol_limits_in_the_cycle_of_a_write_is_not_ok():
    # The symbol limits' block RAM does not define a read that meets a write at its address
    # (no_rw_check): the host's read of the shadow bank in the cycle the host writes it is
    # answered not ok, and the read of the next cycle returns the entry written.
    dut = Engine(REGMAP, n_executions=SIZES.n_executions, frame_bits=FRAME_BITS,
                 backlog_high=SIZES.backlog_high, backlog_low=SIZES.backlog_low,
                 order_ways=SIZES.order_ways)
    entry = dut.write_symbol_limits.entry.shape()
    written = random.Random(5).getrandbits(entry.size)

    async def testbench(ctx):
        await ctx.tick().repeat(3)
        assert ctx.get(dut.peek_limits.ok)
        ctx.set(dut.peek_limits.symbol, 5)
        ctx.set(dut.write_symbol_limits.index, 5)
        ctx.set(dut.write_symbol_limits.entry.as_value(), written)
        ctx.set(dut.write_symbol_limits.en, 1)
        await ctx.tick()
        ctx.set(dut.write_symbol_limits.en, 0)
        assert not ctx.get(dut.peek_limits.ok)
        await ctx.tick()
        assert ctx.get(dut.peek_limits.ok)
        assert ctx.get(dut.peek_limits.symbol_limits.as_value()) == written

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("half_rate", [False, True])
def test_the_host_reads_back_the_shadow_bank_it_wrote(half_rate):
    # Every entry of a compiled image written as the register file writes (three cycles
    # apart, each held until the next), then read back as it reads: the address held from
    # the third cycle on until ``ok``. At half rate the answer crosses back and ``ok`` waits
    # for the engine's slowest read (the symbol hash table's, registered twice).
    engine = HalfRateEngine if half_rate else Engine
    dut = engine(REGMAP, n_executions=SIZES.n_executions, frame_bits=FRAME_BITS,
                 backlog_high=SIZES.backlog_high, backlog_low=SIZES.backlog_low)
    image = compile_limits(limits(), REGMAP)

    async def testbench(ctx):
        await ctx.tick().repeat(4)
        for table in BANKED:
            port = getattr(dut, f"write_{table}")
            for k, row in enumerate(image.entries[table]):
                ctx.set(port.index, k)
                ctx.set(port.entry.as_value(), pack(port.entry.shape(), row))
                ctx.set(port.en, 1)
                await ctx.tick()
                ctx.set(port.en, 0)
                await ctx.tick().repeat(2)
        await ctx.tick().repeat(4)

        async def read(name, **address):
            port = getattr(dut, name)
            for member, value in address.items():
                ctx.set(getattr(port, member), value)
            await ctx.tick().repeat(3)
            while not ctx.get(port.ok):
                await ctx.tick()
            return port

        def value(view):
            return unpack(view.shape(), ctx.get(view.as_value()))

        rows = image.entries
        for slot, row in enumerate(rows["symbol_hash"]):
            port = await read("peek_symbol_hash", slot=slot)
            assert value(port.data) == row, f"symbol hash slot {slot}"
        for s in range(REGMAP.n_sessions):
            for y in range(REGMAP.n_symbols):
                port = await read("peek_limits", session=s, symbol=y)
                got = {name: value(getattr(port, name)) for name in (
                    "session_entry", "session_limits", "gateway_limits", "symbol_limits")}
                assert got == {"session_entry": rows["session"][s],
                               "session_limits": rows["session_limits"][s],
                               "gateway_limits": rows["gateway_limits"][0],
                               "symbol_limits": rows["symbol_limits"][y]}, (s, y)

    m = Module()
    m.submodules.dut = dut
    sim = Simulator(m)
    sim.add_clock(8e-9)
    if half_rate:
        sim.add_clock(16e-9, phase=4e-9, domain=ENGINE_DOMAIN)
    sim.add_testbench(testbench)
    sim.run()
