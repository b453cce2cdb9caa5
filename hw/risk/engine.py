"""The risk engine: every event through one pipeline, every state change at one execute stage.

The design is ``docs/risk-core.md``'s; the rules are :mod:`wiregate.sw.model`'s, and every
record this engine emits replays through :class:`wiregate.sw.model.Gate` to the same verdict
and the same state. One event enters per cycle at most (stage ``READ``; at W = 1 a writing
one every other cycle) and is judged ``EXEC`` cycles later; it writes every table it
changes at ``APPLY``, which is ``EXEC`` itself at W = 8 and the stage after it at W = 1:

=========  ==================================================================================
stage      what happens
=========  ==================================================================================
READ (0)   choose the event (client first, see below); read the order table at the set of
           its UserRefNum (and of its original UserRefNum: below), the verdict memory, the
           execution table;
           probe the symbol hash table; start the message's ``quantity x price`` (the
           notional check's multiplier)
PRICE (1)  the order table answers: start the message's quantity at the named order's price
KEY (2)    the symbol index (the hash table's answer, or the order or execution it names,
           forwarded to this cycle); read the exposure of (session, symbol), the symbol's
           limits and its live reference
LIMITS (3) the limits arrive; the event's time ``t`` is this cycle's ``now_us``; the
           stateless checks compare (registered); the kill latches are read
EXEC (4)   forwarded table values, the stateful checks (position, credit, capacity,
           duplicate, rate, kill, fail closed), the reason word; what every event but a
           client order changes (the new entry, the deltas, the execution)
APPLY      the verdict, and the order it places; every table and register write, the
           verdict out, the record
=========  ==================================================================================

Which event enters. A client message enters in the cycle it arrives (at W = 1 the next, see
below), always: its verdict has a deadline (the holdback). So does the end of a client frame
(the undo of a void one). The other events wait for a cycle with no client event: revokes of
a void frame's orders first, then control events, then exchange events.
A revoke or an exchange event waits too while an event in flight touches the same order set
or execution slot of its session (a *hazard*), so the entry it reads in ``READ`` is the one it
changes at ``APPLY``: that lets it start ``quantity x price`` of the entry before ``EXEC``.

A Replace and an Order Replaced name two orders, the new UserRefNum and the original. At
W = 8 the order table has a second copy (``orders_b``, ``vacated_b``), written with the
first, read at the original in the same cycle. At W = 1 the table is read once a cycle, the
original in the cycle after its event entered (below), and its entry comes a tap earlier at
each stage than the event's own: at ``KEY`` the tap at ``KEY - 1``, at ``EXEC`` the tap at
``EXEC - 1``, every write before that cycle applied as to the event's own.

At W = 1 (every source byte-serial). The event is chosen in the cycle before ``READ`` and
registered into ``READ``'s token, so that each table's read address starts from a register,
not from the choice's hazard compares and priority. An event enters at most every other
cycle, and the execute takes two stages: ``EXEC`` judges (every check's reason bit, the
rate's fire and the kill trip) and its results are registered into ``APPLY``
(``EXEC + 1``), which encodes the verdict (accept, primary reason), takes the rate's token
and writes every table and register the event changes. While an event is at ``APPLY``
none is at ``EXEC``, so what it writes is in place before the next event reads it there,
and the loop from one event's state to the next one's judgment has two cycles, not one.
Both halves of that loop are kept short: what every event but a client Enter or Replace
changes (the entry it writes, the exposure and credit deltas, the execution) is worked
out at ``EXEC`` and registered, so ``APPLY`` only joins the verdict's order to it; and the
tests ``EXEC`` makes of what it reads (an entry's tag, whether its way holds an order and
whether it is pending, the execution an event names, a retransmission's digest, the last
UserRefNum, the message type, the quantity compares) are made a cycle early and
registered, on the table's tap and on the write of that cycle, chosen by where the write
lands (``early``, :class:`~.rmw_table.RmwTable` ``lands``). The choice's hazards are
tested a cycle early too, against the events that will be behind ``READ``. A
client event and a frame end are chosen a cycle after they arrive, so a client event never
waits: its verdict comes a constant :func:`engine_latency` cycles after it arrives. That
asks of the wire what it gives, in the core at half the byte clock
(:mod:`~wiregate.hw.risk.half_rate`): a writing client event (below) at least two cycles
behind any client event (its SoupBin packet is at least 12 bytes, six engine cycles), a
quiet one at least one (a SoupBin packet is at least 2 bytes), the next frame's first event
at least three after a frame end (its headers are dozens). A frame end right behind the last
event of its frame waits a cycle more (it has no deadline of its own).

Two classes of event at W = 1. A client message that writes nothing and names no order
(an Account Query, Mass Cancel, Disable or Enable, or a malformed message; model rules 1
and 3), not the first of its frame, is *quiet*: its verdict is its own flags and the
session's in-sync flag (written at ``EXEC`` by a session sync, so in place a cycle later),
and at ``APPLY`` it writes back no exposure or credit word. Every other event *writes*. A
writing event enters only in a cycle after none or a quiet one, and a background event
(always writing) is chosen in a client event's arrival cycle only when that one is quiet.
So a quiet event and a writing one may be at ``EXEC`` and ``APPLY`` together, in either
order, and share only what every record moves: the drop-copy fill, which counts the record
made at ``APPLY`` in the judging cycle, and rule 11's backlog flag, taken from ``APPLY``
when it makes a record there. Under a flood of the smallest client messages at the least
spacing, the background keeps every other cycle; the order table's one read port, taken
by an Order Replaced's original in the cycle after it, is a quiet event's to lose (it
reads nothing there), and a quiet event is no hazard to the background.

The open-order table has ``order_ways`` ways (model rule 12): each way is its own table, read
at the set of the UserRefNum (``order_set``) and forwarded on its own, so an insert still in
flight into a way is seen by the way choice of every later event at EXEC. There the ways
holding the UserRefNum give the entry, and the *place* an entry is written is that way, else
the lowest free way of the set; with none, CAPACITY. One way is the direct-mapped table.

Order Replaced changes two entries in one pass (the original leaves, the new order takes its
place), but a way's block RAM takes one write per cycle. So whether an entry holds an order
is the XOR of two bits in two tables, each with its own write port: ``held`` in the entry,
written with the entry at its place, and the entry's bit in ``vacated``, written only by an
Order Replaced at its original's way when the original is in another set, to the entry's
``held`` so that the XOR becomes 0 (an original in the same set leaves through its way's own
entry write). Both are read with the entries and forwarded like them,
so the XOR is exact at KEY and EXEC. Both orders' charges
move in the one exposure word read at KEY: they are one order's history, of one symbol. An
exchange whose Order Replaced names another original than the client's Replace did, of
another symbol, would have that symbol's exposure left uncorrected (the model's
``_replaced`` would move it); the exchange side of a real session never does that.

Retransmissions (model rule 9). The verdict memory keeps, per slot (the UserRefNum mod the
register map's ``n_verdicts``), the verdict and the message's digest; a retransmitted
Enter, Replace or Modify gets the verdict back only if the digests match. The digest comes
with the event: the client extractor computes it (:func:`wiregate.sw.extract.digest`, a
CRC-32) over every byte of the message's fixed part but AppendageLength, so a copy
differing anywhere there, ClOrdID and display included, fails closed (OUT_OF_SYNC) as the
model says. The UserRefNum is among those bytes, at the type's fixed offset: two messages
of one slot and type that differ only there differ in at most 32 adjacent bits, a burst
the CRC-32 always tells apart, so the entry keeps no
UserRefNum of its own. The appendage (and the
AppendageLength that counts it) is not compared, by the gate nor by the model: it arrives
after the verdict is due.

What a client message may assume (the gate's position in the wire makes it so): it does not
name an order an exchange event created fewer than ``same_order`` (``APPLY - KEY``) cycles
before it entered (the client cannot have seen the exchange's message yet), two client
messages naming the same order are more than ``same_order`` cycles apart (a Replace after
the Enter of its original: an Enter Order is 47 bytes, five beats at W = 8 at the least,
and fifty cycles at W = 1), and the revokes of
a void frame run before the session's next message enters (they have priority over every
other background event, and the next frame's first message settles at least its headers
and a fixed part after the void frame's end: more cycles than a frame can hold orders).

Time. A control event acts at a stage chosen so that events ahead of it do not see it and
events behind it do: a commit swaps the banks at ``READ`` (every event carries the bank it
saw there) and reaches the rate and fail-closed state at ``EXEC``; a reference update writes
at ``KEY``; a kill or release writes the latches at ``EXEC - 1`` (the latch read has one
cycle of latency). The rate buckets and the heartbeat watchdog see the timebase
``EXEC - LIMITS`` cycles late, so that every part of an event's judgment sees the same
microsecond, the one at ``LIMITS``.
"""

import operator
from functools import partial, reduce

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.extract import DIGEST_BITS
from wiregate.sw.model import BUY, DEAD
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import NO_PRIMARY, REASON_BITS, Reason
from wiregate.sw.regmap import WORD_BITS, RegisterMap
from wiregate.sw.tables import REFERENCE_AT_COMMIT

from ..carry_save import carry_save_sum
from ..control.dropcopy import QUEUED_BITS, record_layout
from ..control.register_file import control_layout
from ..ingress.ouch_extract import OFFSET_BITS, PRICE_BITS, event_layout
from ..multiply import Multiplier
from ..tables import entry_layout, write_signature
from ..timebase import TIME_BITS
from .checks.collar import CollarCheck
from .checks.credit import CreditCheck
from .checks.fail_closed import FailClosed
from .checks.kill import Kill
from .checks.notional import NOTIONAL_BITS, NotionalCheck
from .checks.position import POSITION_BITS, PositionCheck
from .checks.quantity import QUANTITY_BITS, QuantityCheck
from .checks.rate import Rate
from .rmw_table import RmwTable
from .symbol_lookup import SymbolLookup
from .verdict import Verdict

__all__ = ["EXEC", "KEY", "LIMITS", "Engine", "engine_latency"]

KEY = 2                     # the symbol hash table's answer
LIMITS = KEY + 1            # block RAM: the limits read at KEY
EXEC = LIMITS + 1           # the stateless checks' registered compares
PRICE = 1                   # the order table answers: an order's price for the products
REF_BITS = 32
MATCH_BITS = 64
REVOKE_DEPTH = 64           # Enter/Replace accepted from one frame that a void can withdraw
NOTIONAL = NOTIONAL_BITS + 2    # sums of charges: room for a day of executions, never wraps


def engine_latency(width):
    """Cycles from a client event to its verdict at ``width`` bytes a beat: ``EXEC``, and three
    more at W = 1, where the event is held a cycle after it arrives, chosen in a cycle of its
    own before ``READ``, and executes in two stages (the module docstring, "At W = 1")."""
    return EXEC + 3 * (width == 1)


class _Kind(enum.Enum, shape=3):
    NONE = 0
    CLIENT = 1
    EXCHANGE = 2
    CONTROL = 3
    FRAME_END = 4
    REVOKE = 5




def _type(cls) -> int:
    return cls.TYPE[0]


class Engine(wiring.Component):
    """The risk engine (see the module docstring).

    Parameters
    ----------
    regmap : RegisterMap
        Table sizes and layouts; ``n_orders`` must be a power of two.
    n_executions : int
        Remembered executions per session (power of two), for Broken Trade and Correction.
    frame_bits : int
        Width of the client frame tag carried to ``verdict`` (the rewrite's).
    backlog_high, backlog_low : int or None
        The drop-copy marks of model rule 11, in records; None (both): BACKLOG never fires.
    order_ways : int
        Ways per set of the open-order table (model rule 12), a power of two below
        ``n_orders``; 1 (the default) is direct-mapped.

    Attributes
    ----------
    client : In(stream)
        ``{event, opens_frame, frame}``: a client OUCH event from the ingress. Never waits.
    frame_end : In(valid, void)
        The client frame opened last ended; ``void``: undo it (model rule 10). Not in the
        cycle of a client event.
    exchange : In(stream)
        Exchange OUCH events (released at their frame's good end). Taken when it can; at
        W = 1 not in the cycle it is first presented (its hazards are tested in that one).
    control : In(stream)
        :func:`control_layout` events. Taken when it can.
    write_* : In(write port)
        Host writes into the shadow bank of the session, limit and symbol hash tables.
    tick, now_us, cycle : In
        The timebase (``tick``: ``now_us`` stepped this cycle) and the cycle counter.
    queued : In(QUEUED_BITS)
        The drop-copy queue's fill (:class:`~wiregate.hw.control.dropcopy.DropCopy`), with
        every record this engine emitted before this cycle counted: what BACKLOG is decided
        from for the event at EXEC this cycle (model rule 11), and stamped on its record with
        this cycle's ``cycle``.
    verdict : Out(valid, accept, type_offset, frame)
        The verdict of the client event that arrived ``latency`` cycles earlier.
    record : Out(stream)
        One drop-copy record per executed event, in execution order.
    commit_pending : Out(1)
        A commit is in the pipeline: do not write the shadow bank.
    loaded, active_bank, epoch, heartbeat_lost : Out
        Status.
    credit_used, gateway_credit_used, last_user_ref_num, unmatched, in_sync,
    kill_gateway, kill_sessions, tokens, throttled, throttle_count : Out
        Read-back of the state the model keeps, for the host and the tests.
    peek_exposure, peek_order, peek_limits, peek_symbol_hash : In(address; data, ok)
        The host's reads (the register file's table reads): one exposure word, one
        order-table entry, the shadow bank's entries of one session and one symbol
        (``session_entry``, ``session_limits``, ``gateway_limits``, ``symbol_limits``), one
        symbol hash slot of the shadow bank. Each borrows the read port (or the gateway
        limits' multiplexer) of its table in a cycle when no event is at the table's
        reading stage: ``data`` answers the address held since the previous cycle in the
        cycles with ``ok``, and no event ever waits.
    peek_kill_symbols : In(index; bits, ok)
        The symbol kill latches' word ``index`` (the kill block's own read port), one cycle
        later; ``ok`` always (no event takes that port), as the other reads have it.

    Latency
    -------
    :func:`engine_latency` cycles from a client event to its verdict and record
    (``latency``).
    """

    def __init__(self, regmap, *, n_executions=256, frame_bits=4, backlog_high=None,
                 backlog_low=None, order_ways=1):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        if (backlog_high is None) != (backlog_low is None):
            raise ValueError("give both backlog marks or neither")
        if backlog_high is not None and not 0 < backlog_low <= backlog_high < 1 << QUEUED_BITS:
            raise ValueError(f"backlog marks must be 0 < low <= high < {1 << QUEUED_BITS}, "
                             f"not high {backlog_high}, low {backlog_low}")
        self._backlog = (backlog_high, backlog_low)
        for name, value in (("n_orders", regmap.n_orders), ("n_executions", n_executions),
                            ("n_verdicts", regmap.n_verdicts)):
            if value < 2 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two, at least 2, not {value}")
        if order_ways < 1 or order_ways & (order_ways - 1) or order_ways >= regmap.n_orders:
            raise ValueError(f"order_ways must be a power of two below n_orders "
                             f"{regmap.n_orders}, not {order_ways}")
        self._regmap = regmap
        self._spaced = regmap.beat_bytes == 1
        self.latency = engine_latency(regmap.beat_bytes)
        self.apply_stage = EXEC + self._spaced
        # A client message names no order written fewer cycles before (module docstring).
        self.same_order = self.apply_stage - KEY
        self._n_executions = n_executions
        self._order_ways = order_ways
        ns, ny = regmap.n_sessions, regmap.n_symbols
        symbol = range(ny)
        self._order = data.StructLayout({
            "pending": 1, "user_ref_num": REF_BITS, "symbol_index": symbol,
            "is_buy": 1, "quantity": QUANTITY_BITS, "price": PRICE_BITS,
            "charge_quantity": QUANTITY_BITS, "charge_notional": NOTIONAL_BITS,
        })
        self._execution = data.StructLayout({
            "valid": 1, "match_number": MATCH_BITS, "user_ref_num": REF_BITS,
            "symbol_index": symbol, "is_buy": 1, "quantity": QUANTITY_BITS,
            "price": PRICE_BITS,
        })
        self._exposure = data.StructLayout({
            "position": signed(POSITION_BITS), "working_buy": QUANTITY_BITS,
            "working_sell": QUANTITY_BITS,
        })
        self._remembered = data.StructLayout({
            # No UserRefNum: the digest covers it (module docstring, Retransmissions).
            "valid": 1, "digest": DIGEST_BITS,
            "reasons": REASON_BITS, "symbol_known": 1, "symbol_index": symbol,
        })
        event = event_layout(regmap)
        state = entry_layout(regmap, "session_state")
        super().__init__({
            "client": In(stream.Signature(data.StructLayout({
                "event": event, "opens_frame": 1, "frame": frame_bits}), always_ready=True)),
            "frame_end": In(wiring.Signature({"valid": Out(1), "void": Out(1)})),
            "exchange": In(stream.Signature(event)),
            "control": In(stream.Signature(control_layout(regmap))),
            **{f"write_{t}": In(write_signature(regmap, t)) for t in (
                "session", "session_limits", "symbol_limits", "gateway_limits",
                "symbol_hash")},
            "tick": In(1),
            "now_us": In(TIME_BITS),
            "cycle": In(64),
            "queued": In(QUEUED_BITS),
            "verdict": Out(wiring.Signature({
                "valid": Out(1), "accept": Out(1), "type_offset": Out(OFFSET_BITS),
                "frame": Out(frame_bits)})),
            "record": Out(stream.Signature(record_layout(regmap), always_ready=True)),
            "commit_pending": Out(1),
            "loaded": Out(1),
            "active_bank": Out(1),
            "epoch": Out(32),
            "heartbeat_lost": Out(1),
            "credit_used": Out(data.ArrayLayout(NOTIONAL, ns)),
            "gateway_credit_used": Out(NOTIONAL),
            "last_user_ref_num": Out(data.ArrayLayout(REF_BITS, ns)),
            "unmatched": Out(data.ArrayLayout(32, ns)),
            "in_sync": Out(ns, init=(1 << ns) - 1),
            "kill_gateway": Out(1),
            "kill_sessions": Out(ns),
            "tokens": Out(data.ArrayLayout(state["tokens"].shape, ns)),
            "throttled": Out(ns),
            "throttle_count": Out(data.ArrayLayout(state["throttle_count"].shape, ns)),
            "peek_exposure": In(wiring.Signature({
                "session": Out(range(ns)), "symbol": Out(symbol),
                "data": In(self._exposure), "ok": In(1)})),
            "peek_order": In(wiring.Signature({
                "session": Out(range(ns)), "slot": Out(range(regmap.n_orders)),
                "valid": In(1), "data": In(self._order), "ok": In(1)})),
            "peek_limits": In(wiring.Signature({
                "session": Out(range(ns)), "symbol": Out(symbol),
                "session_entry": In(entry_layout(regmap, "session")),
                **{t: In(entry_layout(regmap, t)) for t in (
                    "session_limits", "gateway_limits", "symbol_limits")},
                "ok": In(1)})),
            "peek_symbol_hash": In(wiring.Signature({
                "slot": Out(range(regmap.symbol_slots)),
                "data": In(entry_layout(regmap, "symbol_hash")), "ok": In(1)})),
            "peek_kill_symbols": In(wiring.Signature({
                "index": Out(range(regmap.table("kill_symbol_set").depth)),
                "bits": In(WORD_BITS), "ok": In(1)})),
        })

    @property
    def regmap(self):
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        regmap = self._regmap
        ns, ny, no, ne = regmap.n_sessions, regmap.n_symbols, regmap.n_orders, self._n_executions
        order_bits, exec_bits = (no - 1).bit_length(), (ne - 1).bit_length()
        # Tables addressed by Cat(index, session): as deep as the address is wide.
        session_bits = max(1, (ns - 1).bit_length())
        symbol_bits = max(1, (ny - 1).bit_length())
        per_session = 1 << session_bits
        event = event_layout(regmap)
        # A control event's price and stamp travel in the event's fields (see READ).
        carried_control = data.StructLayout({
            name: shape for name, shape in control_layout(regmap).members.items()
            if name not in ("price", "stamp")})
        token = data.StructLayout({
            "valid": 1, "kind": _Kind, "event": event, "opens_frame": 1,
            "frame": len(self.client.payload.frame), "void": 1, "quiet": 1,
            "control": carried_control, "bank": 1, "epoch": 32,
        })

        def late(value, stages, name):
            """``value`` as it was ``stages`` cycles ago."""
            for k in range(stages):
                reg = Signal.like(value, name=f"{name}_{k + 1}")
                m.d.sync += reg.eq(value)
                value = reg
            return value

        # --- READ: choose the event -----------------------------------------------------
        spaced = self._spaced
        apply = self.apply_stage    # the stage that writes (at W = 1 the one after EXEC)
        tokens = [Signal(token, name="s0")]
        for k in range(1, apply + 1):
            tokens.append(Signal(token, name=f"s{k}"))
            m.d.sync += tokens[k].eq(tokens[k - 1])
        s0, sx = tokens[0], tokens[EXEC]
        f0 = s0.event.fields
        # The event chosen this cycle. At W = 1 it is registered into READ's token (the
        # choice in a cycle of its own), so no table's read address follows the choice's
        # hazard compares and priority; at W = 8 it is READ's token itself.
        entering = Signal(token, name="entering") if spaced else s0
        if spaced:
            m.d.sync += s0.eq(entering)
        # The events in flight: at W = 1 READ's too (chosen a cycle before it reads).
        in_flight = tokens if spaced else tokens[1:]

        bank = Signal()             # the active limit bank for events entering now
        epoch = Signal(32)
        # ``epoch + 1`` kept beside it: a commit's token takes it through a multiplexer,
        # not through a carry chain behind the choice (that was the choice's longest path).
        next_epoch = Signal(32, init=1)
        revokes = memory.Memory(shape=data.StructLayout({"session": range(ns), "ref": REF_BITS}),
                                depth=REVOKE_DEPTH, init=[])
        m.submodules.revokes = revokes
        revoke_write = revokes.write_port()
        # The head entry is read a cycle ahead (at the head it will be), so that the choice of
        # the entering event starts from a register, not through the memory's read.
        revoke_read = revokes.read_port(transparent_for=(revoke_write,))
        ptr = range(2 * REVOKE_DEPTH)   # one more bit than the address: full and empty differ
        revoke_head, revoke_mark, revoke_tail = (Signal(ptr, name=n) for n in (
            "revoke_head", "revoke_mark", "revoke_tail"))

        ways = self._order_ways
        way_bits = (ways - 1).bit_length()
        set_bits = order_bits - way_bits

        def slot(ref):
            return ref[:order_bits]

        def order_set(ref):
            """Model ``order_set``: the slot with one way, else the UserRefNum XOR-folded."""
            if ways == 1:
                return slot(ref)
            folded = ref[:set_bits]
            for low in range(set_bits, REF_BITS, set_bits):
                folded = folded ^ ref[low:low + set_bits]
            return folded

        def has_orig(msg_type):
            # Replace Order and Order Replaced share the type byte U: only they name two.
            return msg_type == _type(ouch.ReplaceOrder)

        def writes_nothing(client):
            """A client message that changes no state and names no order (model rules 1 and
            3): an Account Query, Mass Cancel, Disable or Enable, or a malformed message,
            not opening a frame (its checkpoint is the rate's). At W = 1 it may enter right
            before or after a writing event (the module docstring, "At W = 1")."""
            if not spaced:
                return Const(0)
            return ~client.opens_frame & (client.event.malformed.any() | Cat(
                client.event.msg_type == _type(c) for c in (
                    ouch.AccountQuery, ouch.MassCancel, ouch.DisableOrderEntry,
                    ouch.EnableOrderEntry)).any())

        def uses_execution(msg_type):
            return Cat(msg_type == _type(c) for c in (
                ouch.OrderExecuted, ouch.BrokenTrade, ouch.TradeCorrection)).any()

        # The head entry's session and order set again, in LUT RAM read as the queue is: the
        # revoke's hazard compares start a nanosecond after the clock, not 5.6 ns after it at
        # the block RAM's output.
        revoke_keys = memory.Memory(
            shape=data.StructLayout({"session": range(ns), "set": set_bits}),
            depth=REVOKE_DEPTH, init=[], attrs={"ram_style": "distributed"})
        m.submodules.revoke_keys = revoke_keys
        key_write = revoke_keys.write_port()

        def hazard(session, mine, match, names_match, behind=tokens[1:]):
            """An event in flight touches an order set or execution slot this one reads: the
            sets ``mine`` (pairs of a set and whether it is named) or the execution slot of
            ``match`` (when ``names_match``). The events in flight are those behind READ
            (``behind``). At W = 1 READ's own needs no compare: a background event is chosen
            only when READ is empty or quiet (``free`` below), and a quiet event is none."""
            hits = []
            for t in behind:
                f = t.event.fields
                busy = t.valid & ~t.quiet & (t.kind != _Kind.CONTROL) \
                    & (t.kind != _Kind.FRAME_END) & (t.event.session == session)
                theirs_orig = has_orig(t.event.msg_type) & (t.kind != _Kind.REVOKE)
                theirs = [(order_set(f.user_ref_num), 1),
                          (order_set(f.orig_user_ref_num), theirs_orig)]
                orders = Cat(a_on & b_on & (a_slot == b_slot)
                             for a_slot, a_on in mine for b_slot, b_on in theirs).any()
                execs = names_match & uses_execution(t.event.msg_type) \
                    & (t.kind == _Kind.EXCHANGE) \
                    & (f.match_number[:exec_bits] == match[:exec_bits])
                hits.append(busy & (orders | execs))
            return Cat(hits).any()

        xp = self.exchange.payload
        x_type = xp.msg_type
        x_hazard = partial(
            hazard, xp.session, [(order_set(xp.fields.user_ref_num), 1),
                                 (order_set(xp.fields.orig_user_ref_num), has_orig(x_type))],
            xp.fields.match_number, uses_execution(x_type))
        x_waiting = self.exchange.valid
        if spaced:
            # The hazards a cycle early, against the events that will be behind READ then,
            # and registered: the compares and their OR were the choice's longest path. They
            # hold for the next cycle's candidates unless a writing one is taken now, and then
            # no background one can be taken in the next (it writes too). The exchange
            # event is the same one if it waits now (a stream's payload holds until taken),
            # so a new one waits a cycle before it can enter. The revoke queue's head entry
            # is never written while it can be taken (writes go to the tail, past the mark),
            # so the memory's value now is its value then.
            x_blocked, x_seen = Signal(), Signal()
            m.d.sync += [x_blocked.eq(x_hazard(behind=tokens[:-1])),
                         x_seen.eq(self.exchange.valid & ~self.exchange.ready)]
            x_waiting = x_waiting & x_seen
            key_read = revoke_keys.read_port(domain="comb")
            r_blocked = Signal()
            m.d.comb += key_read.addr.eq(revoke_head)
            m.d.sync += r_blocked.eq(hazard(key_read.data.session, [(key_read.data.set, 1)],
                                            Const(0, REF_BITS), 0, behind=tokens[:-1]))
        else:
            x_blocked = x_hazard()
            key_read = revoke_keys.read_port(transparent_for=(key_write,))
            r_blocked = hazard(key_read.data.session, [(key_read.data.set, 1)],
                               Const(0, REF_BITS), 0)

        # Which event enters (one of them at most), then the token as an AND-OR of the
        # sources: a multiplexer chain in priority order cost a LUT a bit per source.
        takes = {kind: Signal(name=f"takes_{kind.name.lower()}") for kind in (
            _Kind.FRAME_END, _Kind.CLIENT, _Kind.REVOKE, _Kind.CONTROL, _Kind.EXCHANGE)}

        # The client port and the frame end. At W = 1 they enter a cycle after they arrive,
        # and a writing event enters only in a cycle after none or a quiet one (the module
        # docstring): a frame end right behind a message of its frame waits a cycle more, and
        # no background event enters in a cycle where a frame end or a writing client event
        # arrives.
        client = Signal.like(self.client.payload, name="client")
        client_valid, frame_end_valid, frame_end_void = Signal(), Signal(), Signal()
        client_quiet, arriving_quiet = Signal(), Signal()
        if spaced:
            m.d.comb += arriving_quiet.eq(writes_nothing(self.client.payload))
            m.d.sync += [client.eq(self.client.payload), client_valid.eq(self.client.valid),
                         client_quiet.eq(arriving_quiet)]
            with m.If(self.frame_end.valid):
                m.d.sync += [frame_end_valid.eq(1), frame_end_void.eq(self.frame_end.void)]
            with m.Elif(takes[_Kind.FRAME_END]):
                m.d.sync += frame_end_valid.eq(0)
        else:
            m.d.comb += [client.eq(self.client.payload), client_valid.eq(self.client.valid),
                         frame_end_valid.eq(self.frame_end.valid),
                         frame_end_void.eq(self.frame_end.void)]
        asks = {_Kind.FRAME_END: frame_end_valid, _Kind.CLIENT: client_valid,
                _Kind.REVOKE: (revoke_head != revoke_mark) & ~r_blocked,
                _Kind.CONTROL: self.control.valid,
                _Kind.EXCHANGE: x_waiting & ~x_blocked}
        order_addr = Cat(order_set(f0.user_ref_num), s0.event.session)
        orig_read = Const(0)        # this cycle reads the order table at an original
        if spaced:
            # A writing event enters only in a cycle after one that wrote nothing (a quiet
            # client message, or none): the event before it is at APPLY while it is at EXEC.
            free = ~s0.valid        # no event chosen in the cycle before
            arriving = (self.client.valid & ~arriving_quiet) | self.frame_end.valid
            asks[_Kind.FRAME_END] = asks[_Kind.FRAME_END] & free
            for kind in (_Kind.REVOKE, _Kind.CONTROL, _Kind.EXCHANGE):
                asks[kind] = asks[kind] & (free | s0.quiet) & ~arriving
            # A Replace's or an Order Replaced's original is read in the cycle after it
            # entered, which only a quiet event enters (it reads nothing it uses there).
            t1 = tokens[1]
            orig_read = t1.valid & has_orig(t1.event.msg_type)
            order_addr = Mux(orig_read, Cat(order_set(t1.event.fields.orig_user_ref_num),
                                            t1.event.session), order_addr)
        before = Const(0)
        for kind, take in takes.items():
            m.d.comb += take.eq(asks[kind] & ~before)
            before = before | asks[kind]

        def gated(value, kind):
            value = Value.cast(value)
            return value & takes[kind].replicate(len(value))

        # A control event's reference price and stamp ride in bits only a client event
        # fills, the digest and the symbol (the engine reads neither of an exchange event,
        # so they are not taken from one): 96 bits fewer in every stage, and no bit of the
        # token has more than two sources.
        control = self.control.payload
        overlaid = Signal(event)
        assert len(control.price) <= len(overlaid.digest), "the price must fit the digest"
        assert len(control.stamp) <= len(overlaid.fields.symbol), "the stamp must fit the symbol"
        m.d.comb += [overlaid.digest.eq(control.price), overlaid.fields.symbol.eq(control.stamp)]
        exchanged = Signal(event)
        m.d.comb += [exchanged.eq(self.exchange.payload), exchanged.digest.eq(0),
                     exchanged.fields.symbol.eq(0)]
        carried = Signal(carried_control)
        m.d.comb += [carried[name].eq(control[name]) for name in carried_control.members]
        revoked = Signal(event)
        m.d.comb += [revoked.session.eq(revoke_read.data.session),
                     revoked.fields.user_ref_num.eq(revoke_read.data.ref)]
        commits = takes[_Kind.CONTROL] & (control.code == Control.COMMIT)
        m.d.comb += [
            entering.valid.eq(Cat(takes.values()).any()),
            entering.kind.as_value().eq(reduce(operator.or_, (
                gated(Const(kind.value, _Kind.as_shape()), kind) for kind in takes))),
            entering.event.eq(gated(client.event, _Kind.CLIENT)
                              | gated(exchanged, _Kind.EXCHANGE)
                              | gated(revoked, _Kind.REVOKE) | gated(overlaid, _Kind.CONTROL)),
            entering.opens_frame.eq(gated(client.opens_frame, _Kind.CLIENT)),
            entering.frame.eq(gated(client.frame, _Kind.CLIENT)),
            entering.void.eq(gated(frame_end_void, _Kind.FRAME_END)),
            entering.quiet.eq(gated(client_quiet, _Kind.CLIENT)),
            entering.control.eq(gated(carried, _Kind.CONTROL)),
            entering.bank.eq(bank ^ commits), entering.epoch.eq(Mux(commits, next_epoch, epoch)),
            self.control.ready.eq(takes[_Kind.CONTROL]),
            self.exchange.ready.eq(takes[_Kind.EXCHANGE]),
        ]
        with m.If(commits):
            m.d.sync += [bank.eq(~bank), epoch.eq(next_epoch), next_epoch.eq(next_epoch + 1)]
        # The head after this one kept beside it: the read address after a take is a
        # multiplexer behind the choice, not an adder.
        after_head = Signal(ptr, init=1)
        m.d.comb += revoke_read.addr.eq(Mux(takes[_Kind.REVOKE], after_head, revoke_head))
        if not spaced:
            m.d.comb += key_read.addr.eq(revoke_read.addr)
        with m.If(takes[_Kind.REVOKE]):
            m.d.sync += [revoke_head.eq(after_head), after_head.eq(after_head + 1)]

        commits_in_flight = Cat(t.valid & (t.kind == _Kind.CONTROL)
                                & (t.control.code == Control.COMMIT) for t in in_flight)
        m.d.comb += [self.commit_pending.eq(commits_in_flight.any()),
                     self.active_bank.eq(bank), self.epoch.eq(epoch)]

        # READ: the tables, read at the slots the event names.
        # Which slots hold an order: the entry's ``held`` XOR the slot's ``vacated`` bit (see
        # the module docstring), each read here and forwarded to KEY and EXEC.
        # The entry keeps only the UserRefNum's tag, the bits above its set: the set (the
        # address) gives the rest, ``set ^ fold(tag)`` (``order_set`` is linear), so two
        # numbers of one set with the same tag are one number.
        tag_bits = REF_BITS - set_bits
        kept = data.StructLayout({
            **{name: shape for name, shape in self._order.members.items()
               if name != "user_ref_num"}, "ref_tag": tag_bits, "held": 1})

        # A Replace's original (``orders_b``) is used only while it is live: no pending
        # charge (a live entry's charge quantity is its quantity) and no price (the
        # products take the message's, or ``orders_a``'s at PRICE).
        kept_b = data.StructLayout({name: shape for name, shape in kept.members.items()
                                    if name not in ("price", "charge_quantity")})

        def tag(ref):
            return ref[set_bits:]

        def order_table(name, shape, address, taps=(PRICE, KEY), lands=(), peek=False):
            """One table per way, each read at ``address``, a set and a session."""
            tables = []
            for way in range(ways):
                table = RmwTable(shape, per_session << set_bits, EXEC, taps=taps, lands=lands,
                                 peek=peek)
                m.submodules[name if ways == 1 else f"{name}{way}"] = table
                m.d.comb += table.read_addr.eq(address)
                tables.append(table)
            return tables

        def find(name, entries, vacated, ref, matches=None, flags=None):
            """The ways of a set that hold an order, those holding ``ref``, whether one holds
            it live (not pending), and its entry.

            At most one way holds ``ref``; with none, the entry is way 0's. ``matches``: the
            ways whose tag is ``ref``'s, when registered by :func:`matched`; ``flags``: the
            ways that hold an order and those pending, when registered by :func:`held`.
            """
            if flags is None:
                flags = (Cat(e.held ^ v for e, v in zip(entries, vacated, strict=True)),
                         Cat(e.pending for e in entries))
            holds, pending = flags
            if matches is None:
                matches = Cat(e.ref_tag == tag(ref) for e in entries)
            hits = holds & matches
            entry = Signal(entries[0].shape(), name=name)
            m.d.comb += entry.eq(entries[0])
            for way in range(1, ways):
                with m.If(hits[way]):
                    m.d.comb += entry.eq(entries[way])
            return holds, hits, (hits & ~pending).any(), entry

        def stage(tables, at):
            return [getattr(t, at) for t in tables]

        def early(table, d, test, name):
            """At W = 1: ``test`` of the entry at distance ``d`` made a cycle early and
            registered, on this cycle's write and on the tap a stage earlier, chosen by
            where the write lands (:class:`RmwTable` ``lands``). A register, not a compare,
            where the entry is used; the write's data, late in its cycle, goes through the
            test and one multiplexer."""
            bits = Signal(len(Value.cast(test(table.write_data))), name=name)
            m.d.sync += bits.eq(Mux(getattr(table, f"lands{d}"), test(table.write_data),
                                    test(getattr(table, f"tap{d - 1}"))))
            return bits

        def held(d, name):
            """At W = 1 (else ``None``): the ways whose entry at distance ``d`` holds an
            order (``held`` XOR ``vacated``) and those pending, tested :func:`early`."""
            if not spaced:
                return None
            flags = [early(t, d, lambda e: Cat(e.held, e.pending), f"{name}_flags{w}")
                     for w, t in enumerate(orders_a)]
            return (Cat(f[0] ^ early(v, d, lambda e: e, f"{name}_vacated{w}")
                        for w, (f, v) in enumerate(zip(flags, vacated_a, strict=True))),
                    Cat(f[1] for f in flags))

        def matched(tables, d, ref, name):
            """The ways whose entry at distance ``d`` holds ``ref``'s tag (``ref`` from the
            token a stage earlier), tested :func:`early` at W = 1; at W = 8 (``None``) the
            entry is compared where it is used."""
            if not spaced:
                return None
            return Cat(early(t, d, lambda e: e.ref_tag == tag(ref), f"{name}{w}")
                       for w, t in enumerate(tables))

        # The message's entry; at W = 1 also its original's, read a cycle later: a tap
        # earlier at each stage.
        taps = (PRICE, KEY, LIMITS) if spaced else (PRICE, KEY)
        orders_a = order_table("orders_a", kept, order_addr, taps,
                               lands=(KEY, EXEC - 1, EXEC) if spaced else (), peek=True)
        vacated_a = order_table("vacated_a", 1, order_addr, taps,
                                lands=(KEY, EXEC - 1, EXEC) if spaced else (), peek=True)
        if spaced:
            orders_b, vacated_b = [], []
            b_key_entries = stage(orders_a, f"tap{KEY - 1}"), stage(vacated_a, f"tap{KEY - 1}")
            b_entries = stage(orders_a, f"tap{EXEC - 1}"), stage(vacated_a, f"tap{EXEC - 1}")
        else:
            # A Replace's original, read in the same cycle as the message's entry.
            orig_addr = Cat(order_set(f0.orig_user_ref_num), s0.event.session)
            orders_b = order_table("orders_b", kept_b, orig_addr)
            vacated_b = order_table("vacated_b", 1, orig_addr)
            b_key_entries = stage(orders_b, f"tap{KEY}"), stage(vacated_b, f"tap{KEY}")
            b_entries = stage(orders_b, "value"), stage(vacated_b, "value")
        m.submodules.executions = executions = RmwTable(
            self._execution, ne * per_session, EXEC,
            taps=(PRICE, KEY, EXEC - 1) if spaced else (PRICE, KEY),
            lands=(KEY, EXEC) if spaced else ())
        m.d.comb += executions.read_addr.eq(Cat(f0.match_number[:exec_bits], s0.event.session))
        is_modify0 = s0.event.msg_type == _type(ouch.ModifyOrder)
        # The verdict memories (model rule 9): UserRefNum mod n_verdicts.
        verdict_bits = (regmap.n_verdicts - 1).bit_length()
        m.submodules.remembered = remembered = RmwTable(
            self._remembered, 2 * regmap.n_verdicts * per_session, EXEC,
            taps=(EXEC - 1,) if spaced else (), lands=(EXEC,) if spaced else ())
        m.d.comb += remembered.read_addr.eq(Cat(f0.user_ref_num[:verdict_bits], s0.event.session,
                                                is_modify0))

        # At W = 1 the lookup probes the client message held in the cycle of its choice (only
        # a client Enter uses the answer, and a held client message always enters), a
        # cycle before READ, so that its compares have a register of their own.
        m.submodules.lookup = lookup = SymbolLookup(regmap, latency=KEY + spaced)
        wiring.connect(m, wiring.flipped(self.write_symbol_hash), lookup.write)
        wiring.connect(m, wiring.flipped(self.peek_symbol_hash), lookup.peek)
        m.d.comb += lookup.write_bank.eq(~bank)
        if spaced:
            m.d.comb += [lookup.i.valid.eq(client_valid), lookup.i.bank.eq(bank),
                         lookup.i.symbol.eq(client.event.fields.symbol)]
        else:
            m.d.comb += [lookup.i.valid.eq(s0.valid), lookup.i.bank.eq(s0.bank),
                         lookup.i.symbol.eq(f0.symbol)]

        # The products, started as early as their operands exist. The message's own
        # quantity x price (an order's notional, an execution's, a confirmed Replace's) in
        # the notional check, whose limits come at LIMITS; the message's quantity at the price
        # of the order it names (what an exchange cancel or fill takes off the order's
        # charge) from the order table's first tap: no event in flight changes that price
        # (background hazards; a live order's price never changes).
        m.submodules.notional = notional = NotionalCheck(regmap, EXEC, limits_late=True)
        m.d.comb += [notional.quantity.eq(f0.quantity), notional.price.eq(f0.price)]
        m.submodules.order_product = order_product = Multiplier(
            QUANTITY_BITS, PRICE_BITS, EXEC - PRICE)
        _, _, _, a_price = find("a_price", stage(orders_a, f"tap{PRICE}"),
                                stage(vacated_a, f"tap{PRICE}"),
                                tokens[PRICE].event.fields.user_ref_num)
        m.d.comb += [order_product.a.eq(tokens[PRICE].event.fields.quantity),
                     order_product.b.eq(a_price.price)]
        # The notional a Broken Trade or Trade Correction reverses, from the execution's
        # quantity and price, rather than 64 bits more in every entry: no event in flight
        # writes the execution an exchange event reads (background hazards), so the entry
        # at PRICE is the one at EXEC.
        x_price = getattr(executions, f"tap{PRICE}")
        m.submodules.execution_product = execution_product = Multiplier(
            QUANTITY_BITS, PRICE_BITS, EXEC - PRICE)
        m.d.comb += [execution_product.a.eq(x_price.quantity),
                     execution_product.b.eq(x_price.price)]
        xe_notional = execution_product.product

        # --- KEY: the symbol, and the reads keyed by it -----------------------------------
        sk = tokens[KEY]
        k_type, kf = sk.event.msg_type, sk.event.fields
        found = late(lookup.o.found, KEY - 2, "found")
        found_index = late(lookup.o.index, KEY - 2, "found_index")
        x_key = getattr(executions, f"tap{KEY}")
        _, a_key_hits, _, a_key = find(
            "a_key", stage(orders_a, f"tap{KEY}"), stage(vacated_a, f"tap{KEY}"),
            kf.user_ref_num,
            matched(orders_a, KEY, tokens[KEY - 1].event.fields.user_ref_num, "a_key_matches"),
            held(KEY, "a_key"))
        _, b_key_hits, b_live, b_key = find("b_key", *b_key_entries, kf.orig_user_ref_num)

        key_symbol = Signal(range(ny))
        key_known = Signal()
        is_enter_k = (sk.kind == _Kind.CLIENT) & (k_type == _type(ouch.EnterOrder))
        a_named = a_key_hits.any()

        def names_execution(entry, fields):
            return entry.valid & (entry.match_number == fields.match_number) \
                & (entry.user_ref_num == fields.user_ref_num)

        x_named = names_execution(x_key, kf)
        if spaced:
            # At W = 1 compared a cycle early: the symbol's index is a read address at KEY.
            x_named = early(executions, KEY,
                            lambda e: names_execution(e, tokens[KEY - 1].event.fields),
                            "x_named")
        with m.If(is_enter_k):
            m.d.comb += [key_known.eq(found), key_symbol.eq(found_index)]
        with m.Elif(sk.kind == _Kind.CONTROL):
            m.d.comb += [key_known.eq(1), key_symbol.eq(sk.control.index)]
        with m.Elif((k_type == _type(ouch.BrokenTrade)) | (k_type == _type(ouch.TradeCorrection))):
            m.d.comb += [key_known.eq(x_named), key_symbol.eq(x_key.symbol_index)]
        with m.Elif((sk.kind == _Kind.CLIENT) & (k_type == _type(ouch.ReplaceOrder))):
            # Pending or live: a pending original has its symbol already, and an Order
            # Replaced still in flight may make it live by EXEC (a client chaining Replaces).
            m.d.comb += [key_known.eq(b_key_hits.any()), key_symbol.eq(b_key.symbol_index)]
        with m.Elif((sk.kind == _Kind.EXCHANGE) & (k_type == _type(ouch.OrderReplaced))):
            # The new order's pending entry, else the original's symbol (model _replaced).
            m.d.comb += [key_known.eq(a_named | b_live),
                         key_symbol.eq(Mux(a_named, a_key.symbol_index, b_key.symbol_index))]
        with m.Else():
            m.d.comb += [key_known.eq(a_named), key_symbol.eq(a_key.symbol_index)]

        m.submodules.exposure = exposure = RmwTable(self._exposure, per_session << symbol_bits,
                                                      EXEC - KEY, peek=True)
        m.d.comb += exposure.read_addr.eq(Cat(key_symbol, sk.event.session))

        symbol_entry = entry_layout(regmap, "symbol_limits")
        # No read that is used meets a write at its address: the host writes the shadow bank,
        # which no event in flight reads but while a commit is in flight (the register file
        # takes no write while ``commit_pending``), and a host read of the shadow bank in the
        # cycle of a write is not ``ok`` (the register file reads again). no_rw_check spares
        # Yosys the read-old-data logic, two flip-flops a bit beside the block RAM.
        m.submodules.symbol_limits = symbol_limits = memory.Memory(
            shape=symbol_entry, depth=2 << symbol_bits, init=[], attrs={"no_rw_check": 1})
        sl_write = symbol_limits.write_port()
        sl_read = symbol_limits.read_port()
        host = self.write_symbol_limits
        wrote_limits = Signal()     # in the cycle of the read that is answered now
        m.d.sync += wrote_limits.eq(host.en)
        m.d.comb += [sl_write.en.eq(host.en), sl_write.addr.eq(Cat(host.index, ~bank)),
                     sl_write.data.eq(host.entry),
                     # The host's read of the shadow bank, in a cycle with no event at KEY.
                     sl_read.addr.eq(Mux(sk.valid, Cat(key_symbol, sk.bank),
                                         Cat(self.peek_limits.symbol, ~bank)))]
        # The live reference: a reference update after the bank's commit overrides the bank.
        live_ref = data.StructLayout({"price": PRICE_BITS, "stamp": TIME_BITS, "epoch": 32,
                                      "valid": 1})
        # A reference update reads its own address as it writes it, and reads nothing it uses:
        # no other read meets a write (no_rw_check, as for the symbol limits).
        m.submodules.references = references = memory.Memory(shape=live_ref, depth=ny, init=[],
                                                              attrs={"no_rw_check": 1})
        ref_write = references.write_port()
        ref_read = references.read_port()
        set_reference = (sk.valid & (sk.kind == _Kind.CONTROL)
                         & (sk.control.code == Control.SET_REFERENCE))
        m.d.comb += [
            ref_write.en.eq(set_reference), ref_write.addr.eq(sk.control.index),
            ref_write.data.price.eq(sk.event.digest), ref_write.data.stamp.eq(kf.symbol),
            ref_write.data.epoch.eq(sk.epoch), ref_write.data.valid.eq(1),
            ref_read.addr.eq(key_symbol),
        ]

        # Session-level tables, both banks in a small memory (distributed RAM) read at LIMITS.
        # The rate judges every session at once and takes every session's rate fields at a
        # commit, so those fields (and each session's ``valid``) are kept in registers too.
        def session_address(index, b):
            padded = Cat(Value.cast(index).as_unsigned(), Const(0, session_bits))
            return Cat(padded[:session_bits], b)

        def banked(table, depth, kept):
            entry = entry_layout(regmap, table)
            host = getattr(self, f"write_{table}")
            rows = memory.Memory(shape=entry, depth=2 * per_session, init=[])
            m.submodules[table] = rows
            write = rows.write_port()
            m.d.comb += [write.en.eq(host.en), write.addr.eq(session_address(host.index, ~bank)),
                         write.data.eq(host.entry)]
            fields = data.StructLayout({name: entry[name].shape for name in kept})
            banks = [[Signal(fields, name=f"{table}{b}_{i}") for i in range(depth)]
                     for b in range(2)]
            for b in range(2):
                for i in range(depth):
                    with m.If(host.en & (host.index == i) & (bank != b)):
                        m.d.sync += [banks[b][i][name].eq(host.entry[name]) for name in kept]
            return rows.read_port(domain="comb"), banks

        session_read, sessions = banked("session", ns, ("valid",))
        session_limits_read, session_limits = banked(
            "session_limits", ns, ("rate_burst", "rate_refill_us", "rate_trip_after"))
        gateway_limits = [Signal(entry_layout(regmap, "gateway_limits"), name=f"gateway_limits{b}")
                          for b in range(2)]
        host = self.write_gateway_limits
        for b in range(2):
            with m.If(host.en & (bank != b)):
                m.d.sync += gateway_limits[b].eq(host.entry)
        commit_time = [Signal(TIME_BITS, name=f"commit_time{b}") for b in range(2)]

        # --- LIMITS: the limits arrive, the stateless checks start ------------------------
        sl = tokens[LIMITS]
        lf = sl.event.fields
        now = self.now_us           # the event's t
        symbol = Signal(symbol_entry)
        m.d.comb += symbol.eq(sl_read.data)
        symbol_known = late(key_known, 1, "symbol_known") & symbol.valid
        symbol_index = late(key_symbol, 1, "symbol_index")
        sess = Signal(entry_layout(regmap, "session_limits"))
        session_loaded = Signal()
        gateway = Signal(entry_layout(regmap, "gateway_limits"))

        # In a cycle with no event here, the multiplexers serve the host's read of the
        # shadow bank (an empty stage's checks and registers are never used).
        read_bank = Mux(sl.valid, sl.bank, ~bank)
        read_session = Mux(sl.valid, sl.event.session, self.peek_limits.session)
        address = session_address(read_session, read_bank)
        m.d.comb += [
            session_read.addr.eq(address), session_limits_read.addr.eq(address),
            sess.eq(session_limits_read.data),
            session_loaded.eq(session_read.data.valid),
            gateway.eq(Mux(read_bank, gateway_limits[1], gateway_limits[0])),
            self.peek_limits.session_entry.eq(session_read.data),
            self.peek_limits.session_limits.eq(sess),
            self.peek_limits.gateway_limits.eq(gateway),
            self.peek_limits.symbol_limits.eq(symbol),
            self.peek_limits.ok.eq(~sl.valid & ~wrote_limits),
        ]
        live = ref_read.data
        override = live.valid & (live.epoch == sl.epoch)
        at_commit = symbol.reference_stamp_us == REFERENCE_AT_COMMIT
        commit_at_limits = sl.valid & (sl.kind == _Kind.CONTROL) \
            & (sl.control.code == Control.COMMIT)
        with m.If(commit_at_limits):
            m.d.sync += Array(commit_time)[sl.bank].eq(now)

        m.submodules.quantity = quantity = QuantityCheck(regmap)
        m.submodules.collar = collar = CollarCheck(latency=0)
        for check in (quantity, notional):
            m.d.comb += [check.symbol.eq(symbol), check.symbol_known.eq(symbol_known),
                         check.session.eq(sess), check.session_loaded.eq(session_loaded)]
        m.d.comb += quantity.quantity.eq(lf.quantity)

        def to_exec(value, name):
            return late(value, EXEC - LIMITS, name)

        x_symbol = to_exec(symbol, "x_symbol")
        x_symbol_known = to_exec(symbol_known, "x_symbol_known")
        x_symbol_index = to_exec(symbol_index, "x_symbol_index")
        x_sess = to_exec(sess, "x_session_limits")
        x_session_loaded = to_exec(session_loaded, "x_session_loaded")
        x_gateway = to_exec(gateway, "x_gateway")
        x_time = to_exec(now, "x_time")
        # The collar judges at EXEC from registers: which reference holds (the live one's
        # epoch compare, the committed stamp's sentinel) is decided here, after the block
        # RAMs' outputs, and the sums and their carry chains come after the register.
        x_override, x_live, x_at_commit, x_commit_stamp = (
            to_exec(value, name) for value, name in (
                (override, "x_override"), (live, "x_live"), (at_commit, "x_at_commit"),
                (Array(commit_time)[sl.bank], "x_commit_stamp")))
        m.d.comb += [
            collar.price.eq(tokens[EXEC].event.fields.price),
            collar.reference.eq(Mux(x_override, x_live.price,
                                    x_symbol.reference_price)),
            collar.collar.eq(x_symbol.collar),
            collar.reference_stamp.eq(Mux(x_override, x_live.stamp, Mux(
                x_at_commit, x_commit_stamp, x_symbol.reference_stamp_us))),
            collar.now.eq(x_time),
            collar.max_age.eq(x_gateway.reference_max_age_us),
        ]

        x_quantity_fire = late(quantity.fire, EXEC - LIMITS - quantity.latency, "q_fire")
        x_quantity_base = late(quantity.fire_without_symbol, EXEC - LIMITS - quantity.latency,
                               "q_base")
        x_collar_fire = collar.fire
        x_loaded_any = Signal()

        # --- EXEC - 1: the kill latches ---------------------------------------------------
        m.submodules.kill = kill = Kill(regmap)
        sj = tokens[EXEC - 1]
        m.d.comb += [kill.judge.session.eq(sj.event.session),
                     kill.judge.symbol.eq(late(symbol_index, EXEC - 1 - LIMITS, "j_symbol")),
                     kill.judge.symbol_valid.eq(1)]
        latch = sj.valid & (sj.kind == _Kind.CONTROL) & (
            (sj.control.code == Control.KILL) | (sj.control.code == Control.RELEASE))
        release = sj.control.code == Control.RELEASE
        word_bits = (WORD_BITS - 1).bit_length()
        for port, scope in ((kill.session_write, 1), (kill.symbol_write, 2)):
            m.d.comb += [port.en.eq(latch & (sj.control.scope == scope)),
                         port.release.eq(release),
                         port.index.eq(sj.control.index[word_bits:]),
                         port.bits.eq(1 << sj.control.index[:word_bits])]
        m.d.comb += [kill.gateway_write.en.eq(latch & (sj.control.scope == 0)),
                     kill.gateway_write.release.eq(release),
                     self.kill_gateway.eq(kill.gateway), self.kill_sessions.eq(kill.sessions)]
        m.d.comb += [kill.symbol_read.index.eq(self.peek_kill_symbols.index),
                     self.peek_kill_symbols.bits.eq(kill.symbol_read.bits),
                     self.peek_kill_symbols.ok.eq(1)]

        # --- EXEC ------------------------------------------------------------------------
        def decoded(t):
            """A token's event, fields, session, type, kind flags and control code."""
            kind = [t.valid & (t.kind == k) for k in (_Kind.CLIENT, _Kind.EXCHANGE, _Kind.CONTROL)]
            return (t.event, t.event.fields, t.event.session, t.event.msg_type, *kind,
                    t.control.code)

        ev, xf_, s, t_, is_client, is_exchange, is_control, code = decoded(sx)
        typing = EXEC        # the stage whose message type of_type() tests
        flags = {}

        def of_type(*classes):
            """The message at ``typing`` is one of ``classes``: at W = 1 decoded a stage
            earlier and registered, not two levels of LUTs after the token's register."""
            if not spaced:
                return Cat(tokens[typing].event.msg_type == _type(c) for c in classes).any()
            if (typing, classes) not in flags:
                flag = Signal(name=f"s{typing}_is_" + "_".join(c.__name__ for c in classes))
                m.d.sync += flag.eq(Cat(tokens[typing - 1].event.msg_type == _type(c)
                                        for c in classes).any())
                flags[typing, classes] = flag
            return flags[typing, classes]

        xe = executions.value
        before_exec = tokens[EXEC - 1].event.fields
        a_holds, a_hits, a_live, a = find(
            "a", stage(orders_a, "value"), stage(vacated_a, "value"), xf_.user_ref_num,
            matched(orders_a, EXEC, before_exec.user_ref_num, "a_matches"), held(EXEC, "a"))
        _, b_hits, b_live_x, b = find(
            "b", *b_entries, xf_.orig_user_ref_num,
            matched(orders_a, EXEC - 1, before_exec.orig_user_ref_num, "b_matches"),
            held(EXEC - 1, "b"))
        if spaced:
            # Compared a stage early: the original's set selects the ways the deltas take,
            # and the execution's match (97 bits) leads a trade's deltas.
            same_set = Signal(name="same_set")
            m.d.sync += same_set.eq(order_set(before_exec.orig_user_ref_num)
                                    == order_set(before_exec.user_ref_num))
            x_match = early(executions, EXEC, lambda e: names_execution(e, before_exec),
                            "x_match")
        else:
            same_set = order_set(xf_.orig_user_ref_num) == order_set(xf_.user_ref_num)
            x_match = names_execution(xe, xf_)
        a_named_x = a_hits.any()
        is_buy_msg = xf_.side == ord(BUY)

        # State the model keeps per session: a row per session in a small memory (LUT RAM),
        # read a stage before EXEC at the session of the event there, with the write of that
        # cycle forwarded (the one event that may write the session before EXEC, at APPLY),
        # registered into EXEC, carried to APPLY (no other event writes that session in
        # between) and written there; and a flip-flop copy per session, written with the
        # row, that only the read-back reads. Read from flip-flops, every stage that reads
        # would be an n-way multiplexer per bit: 228 bits of them, at EXEC and APPLY.
        def per_session(name, shape, read_back):
            rows = memory.Memory(shape=shape, depth=ns, init=[])
            m.submodules[name] = rows
            write, read = rows.write_port(), rows.read_port(domain="comb")
            session = tokens[EXEC - 1].event.session
            lands = write.en & (write.addr == session)
            value = Signal(shape, name=f"x_{name}")
            m.d.comb += read.addr.eq(session)
            m.d.sync += value.eq(Mux(lands, write.data, read.data))
            for i in range(ns):
                with m.If(write.en & (write.addr == i)):
                    m.d.sync += read_back[i].eq(write.data)
            return value, write, lands, read.data

        x_last_ref, last_ref_write, last_ref_lands, last_ref_read = per_session(
            "last_ref", REF_BITS, self.last_user_ref_num)
        x_credit, credit_write, *_ = per_session("credit_used", NOTIONAL, self.credit_used)
        x_unmatched, unmatched_write, *_ = per_session("unmatched", 32, self.unmatched)
        # DUPLICATE_REF, compared as the last UserRefNum is registered, with the write (as
        # :func:`early`).
        duplicate = Signal()
        m.d.sync += duplicate.eq(Mux(last_ref_lands,
                                     before_exec.user_ref_num <= last_ref_write.data,
                                     before_exec.user_ref_num <= last_ref_read))
        gateway_credit = Signal(NOTIONAL)
        in_sync = self.in_sync
        m.d.comb += self.gateway_credit_used.eq(gateway_credit)

        # Time-aligned timebase for the stateful checks (see the module docstring).
        tick = late(self.tick, EXEC - LIMITS, "tick_exec")
        m.submodules.rate = rate = Rate(regmap, take_latency=apply - EXEC)
        m.submodules.fail_closed = fail_closed = FailClosed(regmap)
        commit_x = is_control & (code == Control.COMMIT)
        for i in range(ns):
            m.d.comb += [*(rate.commit.limits[i][name].eq(
                               Mux(sx.bank, session_limits[1][i][name], session_limits[0][i][name]))
                           for name in ("rate_burst", "rate_refill_us", "rate_trip_after")),
                         rate.commit.loaded[i].eq(Mux(sx.bank, sessions[1][i].valid,
                                                      sessions[0][i].valid))]
        m.d.comb += [
            rate.tick.eq(tick), rate.commit.valid.eq(commit_x),
            fail_closed.tick.eq(tick), fail_closed.commit.valid.eq(commit_x),
            fail_closed.commit.gateway.eq(x_gateway),
            fail_closed.heartbeat.eq(is_control & (code == Control.HEARTBEAT)),
            fail_closed.in_sync.eq(in_sync),
            fail_closed.judge.session.eq(s),
            fail_closed.judge.session_loaded.eq(x_session_loaded),
            self.loaded.eq(fail_closed.loaded),
            self.heartbeat_lost.eq(fail_closed.heartbeat_lost),
            x_loaded_any.eq(fail_closed.loaded),
        ]
        for i in range(ns):
            m.d.comb += [self.tokens[i].eq(rate.tokens[i]),
                         self.throttle_count[i].eq(rate.throttle_count[i])]
        m.d.comb += self.throttled.eq(rate.throttled)
        with m.If(is_control & (code == Control.SESSION_SYNC)):
            m.d.sync += in_sync.bit_select(sx.control.index[:max(1, (ns - 1).bit_length())],
                                           1).eq(sx.control.in_sync)

        # Client rules 1 to 3 and 9.
        fires = Signal(REASON_BITS)
        verdict_symbol_known = Signal()
        verdict_symbol = Signal(range(ny))
        malformed = ev.malformed.any()
        out_of_sync = ~in_sync.bit_select(s, 1)
        no_risk = of_type(ouch.CancelOrder, ouch.AccountQuery, ouch.MassCancel,
                          ouch.DisableOrderEntry, ouch.EnableOrderEntry)
        is_enter, is_replace, is_modify = (of_type(c) for c in (
            ouch.EnterOrder, ouch.ReplaceOrder, ouch.ModifyOrder))
        stored = remembered.value
        # A retransmission's verdict is given back when the digests match: at W = 1
        # compared a cycle early, on what the entry's register takes.
        if spaced:
            repeats = early(remembered, EXEC, lambda e: e.valid & (
                e.digest == tokens[EXEC - 1].event.digest), "repeats")
        else:
            repeats = stored.valid & (stored.digest == ev.digest)
        judged = Signal()           # an Enter/Replace/Modify judged anew (not retransmitted)
        orders_risk = Signal()      # an Enter/Replace judged by rule 5

        def bit(reason):
            return 1 << reason

        # The symbol a verdict reports (model _symbol_of).
        symbol_of_msg = Signal()
        symbol_of_idx = Signal(range(ny))
        found_x = to_exec(late(found, 1, "found_l"), "found_x")
        names_order = of_type(ouch.CancelOrder, ouch.ModifyOrder)
        with m.If(is_enter):
            m.d.comb += [symbol_of_msg.eq(found_x), symbol_of_idx.eq(x_symbol_index)]
        with m.Elif(is_replace):
            m.d.comb += [symbol_of_msg.eq(b_live_x), symbol_of_idx.eq(b.symbol_index)]
        with m.Elif(names_order):
            m.d.comb += [symbol_of_msg.eq(a_named_x), symbol_of_idx.eq(a.symbol_index)]

        # Rule 5 and 6 (model _judge) for an Enter or a Replace.
        orig_q = Mux(b_live_x, b.quantity, 0)
        orig_charge = Mux(b_live_x, b.charge_notional, 0)
        own_product = notional.notional
        add_q = Signal(QUANTITY_BITS)
        add_n = Signal(NOTIONAL_BITS)
        m.d.comb += [
            add_q.eq(Mux(is_enter, xf_.quantity,
                         Mux(xf_.quantity > orig_q, xf_.quantity - orig_q, 0))),
            add_n.eq(Mux(is_enter, own_product,
                         Mux(own_product > orig_charge, own_product - orig_charge, 0))),
        ]
        known = Mux(is_enter, symbol_of_msg, b_live_x)    # the symbol is known at EXEC
        yl_known = known & x_symbol_known                 # ...and in the committed limits
        side_buy = Mux(is_enter, is_buy_msg, b.is_buy)
        expo = exposure.value
        m.submodules.position = position = PositionCheck(latency=0)
        m.submodules.credit_session = credit_session = CreditCheck(latency=0)
        m.submodules.credit_gateway = credit_gateway = CreditCheck(latency=0)
        m.d.comb += [
            # The checks take what the order brings and what its original releases (0 for an
            # Enter), not the increase: that would be a carry chain before theirs.
            position.is_buy.eq(side_buy), position.add_quantity.eq(xf_.quantity),
            position.released.eq(Mux(is_enter, 0, orig_q)),
            position.position.eq(expo.position), position.working_buy.eq(expo.working_buy),
            position.working_sell.eq(expo.working_sell),
            position.max_long.eq(x_symbol.max_long), position.max_short.eq(x_symbol.max_short),
            credit_session.add_notional.eq(own_product),
            credit_session.released.eq(Mux(is_enter, 0, orig_charge)),
            credit_session.used.eq(x_credit),
            credit_session.limit.eq(x_sess.credit),
            credit_session.limit_loaded.eq(x_session_loaded),
            credit_gateway.add_notional.eq(own_product),
            credit_gateway.released.eq(Mux(is_enter, 0, orig_charge)),
            credit_gateway.used.eq(gateway_credit),
            credit_gateway.limit.eq(x_gateway.credit), credit_gateway.limit_loaded.eq(x_loaded_any),
        ]
        # Rule 11: the backlog flag as this event updates it (every event with a record does).
        backlogged = Signal()
        backlog = Signal()
        high, low = self._backlog
        left = Signal()             # ... as the event before left it (forwarded below)
        # The drop-copy fill counts every record made before this event's, the one made at
        # APPLY in this cycle too (at W = 1 a quiet event and a writing one may be at EXEC
        # and APPLY together): compared against the marks less one rather than through a sum.
        recording = Signal()
        fill_seen = Signal(QUEUED_BITS)
        m.d.comb += fill_seen.eq(self.queued + recording)
        if high is not None:
            def reaches(mark):
                return Mux(recording, self.queued >= mark - 1, self.queued >= mark)
            m.d.comb += backlog.eq(reaches(high) | (left & reaches(low)))
        rule5 = Signal(REASON_BITS)
        unknown_symbol = Mux(is_enter, x_loaded_any & ~symbol_of_msg,
                             b_live_x & x_loaded_any & ~x_symbol_known)
        m.d.comb += rule5.eq(
            (fail_closed.judge.not_loaded << Reason.NOT_LOADED)
            | (fail_closed.judge.heartbeat << Reason.HEARTBEAT)
            | (kill.judge.kill_gateway << Reason.KILL_GATEWAY)
            | (kill.judge.kill_session << Reason.KILL_SESSION)
            | ((known & kill.judge.kill_symbol) << Reason.KILL_SYMBOL)
            | (unknown_symbol << Reason.UNKNOWN_SYMBOL)
            | ((yl_known & x_symbol.restricted) << Reason.RESTRICTED)
            | ((is_replace & ~b_live_x) << Reason.UNKNOWN_ORDER)
            | (duplicate << Reason.DUPLICATE_REF)
            | ((~a_named_x & a_holds.all()) << Reason.CAPACITY)
            | (Mux(yl_known, x_quantity_fire, x_quantity_base) << Reason.QUANTITY)
            | (Mux(yl_known, notional.fire, notional.fire_without_symbol) << Reason.NOTIONAL)
            | ((yl_known & x_collar_fire) << Reason.COLLAR)
            | ((yl_known & position.fire) << Reason.POSITION)
            | (credit_session.fire << Reason.CREDIT_SESSION)
            | (credit_gateway.fire << Reason.CREDIT_GATEWAY)
            | (backlog << Reason.BACKLOG))
        m.d.comb += [rate.judge.valid.eq(orders_risk), rate.judge.session.eq(s),
                     rate.judge.others_fired.eq(rule5 != 0),
                     kill.trip.valid.eq(rate.judge.trip), kill.trip.session.eq(s)]

        # Modify (rule 4).
        modify_word = Signal(REASON_BITS)
        m.d.comb += modify_word.eq(
            ((~a_live) << Reason.UNKNOWN_ORDER)
            | ((a_live & (xf_.quantity > a.quantity)) << Reason.QUANTITY)
            | ((a_live & (is_buy_msg != a.is_buy)) << Reason.POSITION))

        with m.If(is_client):
            with m.If(malformed | out_of_sync):
                m.d.comb += [fires.eq((malformed << Reason.MALFORMED)
                                      | (out_of_sync << Reason.OUT_OF_SYNC)),
                             verdict_symbol_known.eq(~malformed & symbol_of_msg),
                             verdict_symbol.eq(symbol_of_idx)]
            with m.Elif(no_risk):
                m.d.comb += [verdict_symbol_known.eq(symbol_of_msg),
                             verdict_symbol.eq(symbol_of_idx)]
            with m.Elif(ev.retransmit):
                with m.If(repeats):
                    m.d.comb += [fires.eq(stored.reasons),
                                 verdict_symbol_known.eq(stored.symbol_known),
                                 verdict_symbol.eq(stored.symbol_index)]
                with m.Else():
                    m.d.comb += fires.eq(bit(Reason.OUT_OF_SYNC))
            with m.Elif(is_modify):
                m.d.comb += [judged.eq(1), fires.eq(modify_word),
                             verdict_symbol_known.eq(a_live),
                             verdict_symbol.eq(a.symbol_index)]
            with m.Else():
                m.d.comb += [judged.eq(1), orders_risk.eq(1),
                             fires.eq(rule5 | (rate.judge.fire << Reason.RATE)),
                             verdict_symbol_known.eq(known),
                             verdict_symbol.eq(Mux(is_enter, symbol_of_idx, b.symbol_index))]

        newer = ~duplicate
        # The rate keeps the frame's checkpoint from before its first message is judged.
        m.d.comb += [rate.checkpoint.valid.eq(is_client & sx.opens_frame),
                     rate.checkpoint.session.eq(s)]

        # --- Exchange events, revokes: the new entry and the charges it moves ------------
        # Worked out at EXEC and registered into APPLY (at W = 1), where only the verdict of
        # a client Enter or Replace joins them: ``fill`` and the deltas here are those of
        # every other event, and a client event's are 0 but for the order it places.
        msg_product, part_product = notional.notional, order_product.product
        # The order-table entry written at the message's slot, the slots filled and emptied,
        # and the deltas to exposure and credit.
        # Which case the event is (each of these ends the event's order-table business).
        def exchange_of(*classes):
            return is_exchange & of_type(*classes)

        revoke = sx.valid & (sx.kind == _Kind.REVOKE)
        x_accepted = exchange_of(ouch.OrderAccepted)
        x_replaced = exchange_of(ouch.OrderReplaced)
        x_reduced = exchange_of(ouch.OrderCanceled, ouch.AiqCanceled, ouch.OrderExecuted)
        x_executed = exchange_of(ouch.OrderExecuted) & a_live
        x_modified = exchange_of(ouch.OrderModified)
        x_rejected = exchange_of(ouch.OrderRejected)
        x_trade = exchange_of(ouch.BrokenTrade, ouch.TradeCorrection)
        x_traded = x_trade & x_match
        x_corrected = x_traded & of_type(ouch.TradeCorrection)
        new_entry = Signal(kept)
        fill = Signal()             # ref's place holds an order from now
        empty = Signal()            # ref's place holds none from now
        empty_orig = Signal()       # orig_ref's way holds none from now (Order Replaced)
        # The entry's place (model rule 12): the way of ref's set that holds ref, else the
        # lowest free way; an Order Replaced's original leaves first when it is in that set.
        leaving = Signal(ways)
        after = Signal(ways)        # the ways that hold an order once the original left
        place = Signal(ways)        # one-hot; way 0 when the set is full (then nothing writes)
        m.d.comb += [
            leaving.eq(Mux(x_replaced & b_live_x & same_set, b_hits, 0)),
            after.eq(a_holds & ~leaving),
            place.eq(1),
        ]
        for way in reversed(range(ways)):
            with m.If(~after[way]):
                m.d.comb += place.eq(1 << way)
        with m.If((a_hits & after).any()):
            m.d.comb += place.eq(a_hits & after)
        count_unmatched = Signal()
        write_execution = Signal()
        new_execution = Signal(self._execution)
        record_symbol_known = Signal()
        record_symbol = Signal(range(ny))

        dead = xf_.order_state == ord(DEAD)
        # A cancel or fill leaves some; a modify shrinks (``less``), and what stays is not 0.
        # At W = 1 the compares are made a cycle early on each way's entry and registered:
        # the quantity's compare led every delta's select, then the sums' carry chains.
        if spaced:
            ahead = tokens[EXEC - 1].event.fields.quantity
            tests = [early(t, EXEC, lambda e: Cat(ahead < e.quantity, e.quantity.any()),
                           f"a_quantity{w}") for w, t in enumerate(orders_a)]
            picked = tests[0]           # the way find() gives ``a`` from
            for way in range(1, ways):
                picked = Mux(a_hits[way], tests[way], picked)
            x_some = Signal()
            m.d.sync += x_some.eq(ahead.any())
            less = picked[0]
            stays = Mux(less, x_some, picked[1])
        else:
            less = xf_.quantity < a.quantity
            stays = Mux(less, xf_.quantity, a.quantity).any()
        reduced = x_reduced & a_live
        modified = x_modified & a_live
        modified_stays = modified & stays
        # Model _replaced in one pass: the original leaves, then the new order takes its place,
        # from its pending entry (``named``) or else the original. Both charges move in the one
        # exposure word read at KEY: the original and the new order are one order's history,
        # of one symbol (an exchange that names another original than the Replace did is
        # outside this; see the module docstring).
        named = (a_hits & after).any()
        r_unmatched = ~named & (after.all() | ~b_live_x)
        r_gone = dead | (xf_.quantity == 0)
        frees = ((revoke | x_rejected) & a_named_x) | (x_accepted & a_live & dead)
        m.d.comb += [
            fill.eq((reduced & less) | modified_stays
                    | (x_replaced & ~r_unmatched & ~r_gone)),
            empty.eq(frees | (reduced & ~less) | (modified & ~modified_stays)
                     | (x_replaced & ~r_unmatched & r_gone)),
            empty_orig.eq(x_replaced & b_live_x),
            count_unmatched.eq(((revoke | x_rejected) & ~a_named_x)
                               | ((x_accepted | x_reduced | x_modified) & ~a_live)
                               | (x_replaced & r_unmatched) | (x_trade & ~x_match)),
        ]

        # The entry written at ref's place, field by field (read only where it holds an order,
        # so each field is what the cases that fill the place write): an Enter or Replace
        # placed; the named order reduced or modified; the new order of an Order Replaced.
        from_b = x_replaced & ~named
        exchange_symbol = Mux(from_b, b.symbol_index, a.symbol_index)
        m.d.comb += [
            new_entry.pending.eq(is_client & is_replace),
            new_entry.ref_tag.eq(tag(xf_.user_ref_num)),
            new_entry.symbol_index.eq(Mux(is_client, verdict_symbol, exchange_symbol)),
            new_entry.is_buy.eq(Mux(is_client, side_buy, Mux(
                x_modified, is_buy_msg, Mux(from_b, b.is_buy, a.is_buy)))),
            new_entry.quantity.eq(Mux(x_reduced, a.quantity - xf_.quantity,
                                      Mux(x_modified & ~less, a.quantity, xf_.quantity))),
            new_entry.price.eq(Mux(x_reduced | x_modified, a.price, xf_.price)),
            new_entry.charge_quantity.eq(Mux(is_client, add_q, new_entry.quantity)),
            new_entry.charge_notional.eq(Mux(is_client, add_n, Mux(
                x_reduced, a.charge_notional - part_product,
                Mux(x_modified, Mux(less, part_product, a.charge_notional), msg_product)))),
        ]

        # The deltas' operands: the new entry's charge arrives, the named order's and (Order
        # Replaced) the original's leave; a fill, a broken trade or a correction moves the
        # position and the credit by the executed notional. Each is 0 outside its cases.
        # They are summed where they are written (APPLY), each sum one carry chain
        # (:func:`carry_save_sum`): at W = 1 EXEC ends at the operands' selects, and the
        # chains start from registers.
        leaves_a = frees | reduced | modified | (x_replaced & named)
        leaves_b = x_replaced & b_live_x

        def side(entry, on, shares, buy):
            return Mux(on & (entry.is_buy == buy), shares, 0)

        def leaving_both(width, from_a, from_b, name):
            both = Signal(data.ArrayLayout(width, 2), name=name)
            m.d.comb += [both[0].eq(from_a), both[1].eq(from_b)]
            return both

        buy_in, sell_in = (side(new_entry, fill, new_entry.charge_quantity, buy)
                           for buy in (1, 0))
        buy_out, sell_out = (leaving_both(QUANTITY_BITS, side(a, leaves_a, a.charge_quantity, buy),
                                          side(b, leaves_b, b.quantity, buy), f"{name}_out")
                             for buy, name in ((1, "buy"), (0, "sell")))
        # Credit: a Modify that keeps its quantity moves nothing; a cancel or fill that
        # leaves some takes off the quantity at the order's price; an order that leaves
        # takes off its whole charge.
        credit_in = Mux(x_executed | x_corrected | (fill & x_replaced),
                        msg_product, Mux(modified_stays & less, part_product, 0))
        credit_out = leaving_both(
            NOTIONAL,
            Mux((frees | (reduced & ~less) | (modified & ~(modified_stays & ~less))
                 | (x_replaced & named)), a.charge_notional,
                Mux(reduced, part_product, Mux(x_traded, xe_notional, 0))),
            Mux(leaves_b, b.charge_notional, 0), "credit_out")
        # Position: a fill adds its quantity on the order's side; a broken trade takes the
        # execution's back, a correction replaces it by the message's.
        to_buy = Mux(x_executed, a.is_buy, xe.is_buy)
        gained = Mux(x_executed | x_corrected, xf_.quantity, 0)
        lost = Mux(x_traded, xe.quantity, 0)
        position_in, position_out = Mux(to_buy, gained, lost), Mux(to_buy, lost, gained)

        # The execution written: a fill's, a correction's (the execution with the message's
        # quantity and price), or a broken trade's (no longer valid).
        m.d.comb += [
            write_execution.eq(x_executed | x_traded),
            new_execution.valid.eq(~of_type(ouch.BrokenTrade)),
            new_execution.match_number.eq(xf_.match_number),
            new_execution.user_ref_num.eq(xf_.user_ref_num),
            new_execution.symbol_index.eq(Mux(x_executed, a.symbol_index, xe.symbol_index)),
            new_execution.is_buy.eq(Mux(x_executed, a.is_buy, xe.is_buy)),
            new_execution.quantity.eq(xf_.quantity),
            new_execution.price.eq(xf_.price),
            record_symbol_known.eq(Mux(x_trade, x_match,
                                       Mux(x_replaced, named | b_live_x, a_named_x))),
            record_symbol.eq(Mux(x_trade, xe.symbol_index, exchange_symbol)),
        ]

        # --- APPLY: the writes -------------------------------------------------------------
        # At W = 1 the judgment above is registered here and the event writes a stage later:
        # events enter at most every other cycle, so while one is here none is at EXEC, and
        # every write lands before the next event's EXEC reads. At W = 8 this is EXEC.
        def applied(value, name):
            return late(value, apply - EXEC, f"{name}_applied")

        (expo, b_hits, same_set, fires, judged, orders_risk, newer, verdict_symbol,
         verdict_symbol_known, side_buy, add_q, add_n, x_time, queued, judged_cycle, backlog,
         a_last_ref, a_credit, a_unmatched, fill_others, empty, empty_orig, count_unmatched,
         new_entry, place, write_execution, new_execution, position_in, position_out,
         buy_in_others, sell_in_others, credit_in_others, buy_out, sell_out, credit_out,
         record_symbol_known, record_symbol) = (applied(value, name) for name, value in (
            ("expo", expo), ("b_hits", b_hits), ("same_set", same_set), ("fires", fires),
            ("judged", judged), ("orders_risk", orders_risk), ("newer", newer),
            ("verdict_symbol", verdict_symbol), ("verdict_symbol_known", verdict_symbol_known),
            ("side_buy", side_buy), ("add_q", add_q), ("add_n", add_n), ("time", x_time),
            ("queued", fill_seen), ("cycle", self.cycle), ("backlog", backlog),
            ("last_ref", x_last_ref), ("credit", x_credit), ("unmatched", x_unmatched),
            ("fill", fill), ("empty", empty), ("empty_orig", empty_orig),
            ("count_unmatched", count_unmatched), ("new_entry", new_entry), ("place", place),
            ("write_execution", write_execution), ("new_execution", new_execution),
            ("position_in", position_in), ("position_out", position_out),
            ("buy_in", buy_in), ("sell_in", sell_in), ("credit_in", credit_in),
            ("buy_out", buy_out), ("sell_out", sell_out), ("credit_out", credit_out),
            ("record_symbol_known", record_symbol_known),
            ("record_symbol", record_symbol)))
        vacated_here = [applied(t.value, f"vacated{w}") for w, t in enumerate(vacated_a)]
        orig_held = [applied(e.held, f"orig_held{w}") for w, e in enumerate(b_entries[0])]
        sa = tokens[apply]
        ev, xf_, s, t_, is_client, is_exchange, is_control, code = decoded(sa)
        typing = apply
        is_modify = of_type(ouch.ModifyOrder)
        malformed = ev.malformed.any()
        m.submodules.verdict = verdict = Verdict()
        m.d.comb += verdict.fires.eq(fires)
        accept, reasons, primary = verdict.accept, verdict.reasons, verdict.primary
        with m.If(judged):
            m.d.comb += [
                remembered.write_en.eq(1),
                remembered.write_addr.eq(Cat(xf_.user_ref_num[:verdict_bits], s, is_modify)),
                remembered.write_data.valid.eq(1),
                remembered.write_data.digest.eq(ev.digest),
                remembered.write_data.reasons.eq(fires),
                remembered.write_data.symbol_known.eq(verdict_symbol_known),
                remembered.write_data.symbol_index.eq(verdict_symbol),
            ]
        accepted = is_client & accept
        places = accepted & orders_risk       # an Enter or Replace enters the order table
        # The client's order placed joins what EXEC worked out for every other event (0 for
        # a client event): one OR into the operands the charges arrive in.
        fill = fill_others | places
        buy_in = buy_in_others | Mux(places & side_buy, add_q, 0)
        sell_in = sell_in_others | Mux(places & ~side_buy, add_q, 0)
        credit_in = credit_in_others | Mux(places, add_n, 0)

        def moved(width, value, arrives, leaves):
            return carry_save_sum(width, [value, arrives], [leaves[0], leaves[1]])

        # The writes.
        # The entry's write at its place decides that way's occupancy (an emptied way's other
        # fields are never read); an original leaving a way of the same set is emptied by
        # that way's own entry write, one in another set is vacated.
        for way in range(ways):
            orig_here = empty_orig & b_hits[way]
            for table in (orders_a + orders_b)[way::ways]:
                m.d.comb += [
                    table.write_en.eq(((fill | empty) & place[way]) | (orig_here & same_set)),
                    table.write_addr.eq(Cat(order_set(xf_.user_ref_num), s)),
                    *(table.write_data[name].eq(new_entry[name])
                      for name in table.write_data.shape().members),
                    table.write_data.held.eq((fill & place[way]) ^ vacated_here[way])]
            for table in (vacated_a + vacated_b)[way::ways]:
                m.d.comb += [table.write_en.eq(orig_here & ~same_set),
                             table.write_addr.eq(Cat(order_set(xf_.orig_user_ref_num), s)),
                             table.write_data.eq(orig_held[way])]
        m.d.comb += [
            executions.write_en.eq(write_execution),
            executions.write_addr.eq(Cat(xf_.match_number[:exec_bits], s)),
            executions.write_data.eq(new_execution),
            # Every event writes back the word it read, changed or not: a write of an
            # unchanged word changes nothing, and the test would cost a LUT a bit.
            exposure.write_en.eq(sa.valid & ~sa.quiet),
            exposure.write_addr.eq(Cat(late(key_symbol, apply - KEY, "e_symbol"), s)),
            exposure.write_data.position.eq(carry_save_sum(
                POSITION_BITS, [expo.position, position_in], [position_out])),
            exposure.write_data.working_buy.eq(
                moved(QUANTITY_BITS, expo.working_buy, buy_in, buy_out)),
            exposure.write_data.working_sell.eq(
                moved(QUANTITY_BITS, expo.working_sell, sell_in, sell_out)),
        ]
        m.d.comb += [credit_write.en.eq(sa.valid & ~sa.quiet), credit_write.addr.eq(s),
                     credit_write.data.eq(moved(NOTIONAL, a_credit, credit_in, credit_out)),
                     unmatched_write.en.eq(count_unmatched), unmatched_write.addr.eq(s),
                     unmatched_write.data.eq(a_unmatched + 1)]
        m.d.sync += gateway_credit.eq(moved(NOTIONAL, gateway_credit, credit_in, credit_out))

        # --- Frames (rule 10) -------------------------------------------------------------
        checkpoint = Signal(data.StructLayout({"armed": 1, "session": range(ns),
                                               "last_ref": REF_BITS, "verdicts": 16}))
        opens = is_client & sa.opens_frame
        frame_session = Mux(opens, s, checkpoint.session)
        with m.If(opens):
            m.d.sync += [checkpoint.armed.eq(1), checkpoint.session.eq(s),
                         checkpoint.last_ref.eq(a_last_ref), checkpoint.verdicts.eq(1)]
        with m.Elif(is_client & (s == checkpoint.session)):
            m.d.sync += checkpoint.verdicts.eq(checkpoint.verdicts + 1)
        with m.If(opens):
            m.d.sync += revoke_tail.eq(revoke_mark)     # a new frame: nothing to withdraw yet
        keeps = places & (s == frame_session) & (checkpoint.armed | opens)
        tail = Mux(opens, revoke_mark, revoke_tail)
        room = (tail - revoke_head)[:len(revoke_tail)] < REVOKE_DEPTH
        m.d.comb += [revoke_write.addr.eq(tail),
                     revoke_write.data.session.eq(s),
                     revoke_write.data.ref.eq(xf_.user_ref_num),
                     revoke_write.en.eq(keeps & room),
                     key_write.addr.eq(tail), key_write.data.session.eq(s),
                     key_write.data.set.eq(order_set(xf_.user_ref_num)),
                     key_write.en.eq(keeps & room)]
        with m.If(keeps & room):
            m.d.sync += revoke_tail.eq(tail + 1)
        frame_end = sa.valid & (sa.kind == _Kind.FRAME_END)
        void = frame_end & sa.void & checkpoint.armed
        m.d.comb += rate.restore.eq(void)
        # The UserRefNum an Enter or Replace takes; a void frame puts its session's back.
        m.d.comb += [last_ref_write.en.eq((orders_risk & newer) | void),
                     last_ref_write.addr.eq(Mux(void, checkpoint.session, s)),
                     last_ref_write.data.eq(Mux(void, checkpoint.last_ref, xf_.user_ref_num))]
        with m.If(frame_end):
            m.d.sync += checkpoint.armed.eq(0)
            with m.If(void):
                m.d.sync += revoke_mark.eq(revoke_tail)
            with m.Else():
                m.d.sync += revoke_tail.eq(revoke_mark)

        # --- Outputs: the verdict and the record ------------------------------------------
        m.d.comb += [
            self.verdict.valid.eq(is_client), self.verdict.accept.eq(accept),
            self.verdict.type_offset.eq(ev.type_offset), self.verdict.frame.eq(sa.frame),
        ]
        rec = self.record.payload
        emits = sa.valid & (~frame_end | void)
        with m.If(emits):
            m.d.sync += backlogged.eq(backlog)
        # At W = 1 a quiet event and a writing one may be at EXEC and APPLY together.
        if spaced:
            m.d.comb += [left.eq(Mux(emits, backlog, backlogged)), recording.eq(emits)]
        else:
            m.d.comb += left.eq(backlogged)
        m.d.comb += [
            self.record.valid.eq(emits),
            rec.cycle.eq(judged_cycle), rec.time_us.eq(x_time), rec.queued.eq(queued),
            rec.primary.eq(NO_PRIMARY),
            rec.session.eq(s),
        ]
        with m.If(is_client):
            m.d.comb += [
                rec.kind.eq(Kind.VERDICT), rec.msg_type.eq(Mux(malformed, 0, t_)),
                rec.accept.eq(accept), rec.reasons.eq(reasons),
                rec.primary.eq(primary), rec.retransmit.eq(ev.retransmit),
                rec.symbol_known.eq(verdict_symbol_known),
                rec.symbol_index.eq(Mux(verdict_symbol_known, verdict_symbol, 0)),
            ]
        with m.If(is_client | is_exchange):
            m.d.comb += [
                rec.user_ref_num.eq(xf_.user_ref_num),
                rec.orig_user_ref_num.eq(xf_.orig_user_ref_num),
                rec.side.eq(xf_.side), rec.quantity.eq(xf_.quantity), rec.price.eq(xf_.price),
            ]
        with m.If(is_client):
            m.d.comb += rec.symbol.eq(xf_.symbol)
        with m.If(is_exchange):
            m.d.comb += [
                rec.kind.eq(Kind.EXCHANGE), rec.msg_type.eq(t_),
                rec.match_number.eq(xf_.match_number), rec.order_state.eq(xf_.order_state),
                rec.symbol_known.eq(record_symbol_known),
                rec.symbol_index.eq(Mux(record_symbol_known, record_symbol, 0)),
            ]
        with m.If(sa.valid & (sa.kind == _Kind.REVOKE)):
            m.d.comb += [
                rec.kind.eq(Kind.CONTROL), rec.control.eq(Control.REVOKE),
                rec.user_ref_num.eq(xf_.user_ref_num),
                rec.symbol_known.eq(record_symbol_known),
                rec.symbol_index.eq(Mux(record_symbol_known, record_symbol, 0)),
            ]
        with m.If(void):
            m.d.comb += [rec.kind.eq(Kind.CONTROL), rec.control.eq(Control.VOID_UNDO),
                         rec.session.eq(checkpoint.session),
                         rec.argument.eq(checkpoint.verdicts)]
        with m.If(is_control):
            m.d.comb += [rec.kind.eq(Kind.CONTROL), rec.control.eq(code), rec.session.eq(0)]
            with m.Switch(code):
                with m.Case(Control.COMMIT):
                    m.d.comb += rec.argument.eq(sa.epoch)
                with m.Case(Control.KILL, Control.RELEASE):
                    m.d.comb += rec.argument.eq(sa.control.scope)
                    with m.If(sa.control.scope == 1):
                        m.d.comb += rec.session.eq(sa.control.index)
                    with m.If(sa.control.scope == 2):
                        m.d.comb += [rec.symbol_index.eq(sa.control.index),
                                     rec.symbol_known.eq(1)]
                with m.Case(Control.SET_REFERENCE):
                    m.d.comb += [rec.symbol_index.eq(sa.control.index), rec.symbol_known.eq(1),
                                 rec.price.eq(ev.digest),
                                 rec.argument.eq(xf_.symbol)]
                with m.Case(Control.SESSION_SYNC):
                    m.d.comb += [rec.session.eq(sa.control.index),
                                 rec.argument.eq(sa.control.in_sync)]

        # --- Read-back --------------------------------------------------------------------
        m.d.comb += [
            exposure.read_en.eq(sk.valid),
            exposure.peek_addr.eq(Cat(self.peek_exposure.symbol, self.peek_exposure.session)),
            self.peek_exposure.data.eq(exposure.peek_data),
            self.peek_exposure.ok.eq(~sl.valid),     # no event read at KEY a cycle ago
            # none read at READ a cycle ago, an event's or (at W = 1) an original's
            self.peek_order.ok.eq(~tokens[1].valid & ~late(orig_read, 1, "orig_read")),
        ]
        # An order entry is (set, way): the slot's low bits name the way.
        # The UserRefNum is the set read and the entry's tag.
        peek_slot = Signal.like(self.peek_order.slot)
        m.d.sync += peek_slot.eq(self.peek_order.slot)
        peek_way, peek_set = peek_slot[:way_bits], peek_slot[way_bits:]
        peeked = Array(t.peek_data for t in orders_a)[peek_way]
        peek_holds = Array(t.peek_data.held ^ v.peek_data
                           for t, v in zip(orders_a, vacated_a, strict=True))
        low = peek_set
        if ways > 1:
            high = Cat(Const(0, set_bits), peeked.ref_tag)
            for at in range(set_bits, REF_BITS, set_bits):
                low = low ^ high[at:at + set_bits]
        m.d.comb += [
            *(self.peek_order.data[name].eq(peeked[name])
              for name in self._order.members if name != "user_ref_num"),
            self.peek_order.data.user_ref_num.eq(Cat(low, peeked.ref_tag)),
            self.peek_order.valid.eq(peek_holds[peek_way]),
        ]
        for table in (*orders_a, *vacated_a):
            m.d.comb += [table.read_en.eq(s0.valid | orig_read),
                         table.peek_addr.eq(Cat(self.peek_order.slot[way_bits:],
                                                self.peek_order.session))]
        return m
