# Ref: Nasdaq OUCH 5.0 order-entry semantics; wiregate ARCHITECTURE.md "Checks and state".
"""The reference model: the exact semantics of every check the gate makes.

This module *is* the specification. The gateware must match it verdict for verdict, reason
bit for reason bit and state word for state word, and the host daemon replays the drop copy
through it as a shadow check. It is written to be read against a risk policy: one rule per
paragraph below, one function per kind of event, integer arithmetic only.

Everything the model remembers lives in tables of fixed size given to :class:`Gate`
(sessions, symbols, open orders per session, executions per session, remembered verdicts per
session), indexed the way the hardware indexes its block RAM. Nothing grows with traffic.

Units
-----
Money is in price units (1/10,000 dollar, OUCH's 4 implied decimals); the notional of ``q``
shares at price ``p`` is ``q * p``. Time ``t`` is integer microseconds, the gateway's
timebase. Events must arrive in time order (``t`` never decreases).

Events
------
:class:`ClientMessage` (client to exchange, gets a :class:`Verdict`), :class:`ExchangeMessage`
(exchange to client, updates state, no verdict), and the control events :class:`Commit`,
:class:`Kill`, :class:`Release`, :class:`Heartbeat`, :class:`SetReference`,
:class:`SessionSync` and :class:`Tick`, the undo of a void client frame
(:class:`FrameVoid`, :class:`Revoke`, rule 10), and the host's progress through the drop
copy (:class:`HostRead`, rule 11).

Rules for client messages
-------------------------
1. *Malformed.* A :class:`Malformed` record, an Enter/Modify with a side other than
   ``B``/``S``/``T``/``E``, or an Enter/Replace whose price exceeds ``OUCH_MAX_PRICE`` is
   rejected with MALFORMED only (plus OUT_OF_SYNC when the session is out of sync). No other
   check runs and nothing changes.
2. *Out of sync.* While the session's in-sync flag is clear (set by :class:`SessionSync`),
   every client message is rejected with OUT_OF_SYNC (plus MALFORMED when rule 1 applies).
   No other check runs and nothing changes, not even the last UserRefNum. Sessions start in
   sync.
3. *Messages that add no risk.* Cancel ``X``, Account Query ``Q``, Mass Cancel ``C``,
   Disable Order Entry ``D`` and Enable Order Entry ``E`` are accepted unless rule 1 or 2
   applies (Enable only lifts the exchange's own block; every order after it is still
   judged here). A Cancel changes nothing until the exchange's Canceled arrives; a Cancel of
   a UserRefNum the gate does not know passes (the exchange ignores it).
4. *Modify ``M``.* Accepted, like a cancel (no kill, heartbeat, loaded or limit check), when
   the named order is live in the open-order table, the new quantity is at most its open
   quantity, and the side stays buy, or changes only among the sell sides ``S``/``T``/``E``.
   Otherwise: UNKNOWN_ORDER when the order is not live (a Replace still awaiting its Order
   Replaced is not live), QUANTITY when the quantity grows, POSITION when the side would
   cross between buy and sell (that would move exposure from one side to the other
   unchecked). It changes nothing until the exchange confirms.
5. *Enter ``O`` and Replace ``U``* are judged by every check below; every check that fires
   sets its bit, the verdict is accept only when none fires, and the primary reason is the
   lowest bit (:func:`wiregate.sw.reasons.primary`). A limit that is not loaded (no
   :class:`Commit` yet, or the session absent from the committed limits) is not compared
   against; NOT_LOADED rejects the order instead. A check that needs the symbol's limits does
   not fire when the symbol is unknown (only UNKNOWN_SYMBOL does).

   For a Replace, the symbol and side come from the open-order table entry of the order it
   replaces (the *original*, open quantity ``q1`` at ``p1``); the replacing order has the
   new UserRefNum, total quantity ``q2`` and price ``p2``. Its *increase* is
   ``max(0, q2 - q1)`` shares and ``max(0, q2*p2 - q1*p1)`` notional; for an Enter the
   increase is its whole ``q`` and ``q*p``. An original the gate does not know counts as
   ``q1 = p1 = 0``.

   - NOT_LOADED: no Commit yet, or the session is not in the committed limits.
   - HEARTBEAT: limits committed and ``t - last_heartbeat > gateway.heartbeat_timeout_us``.
     The first Commit counts as a heartbeat.
   - KILL_GATEWAY / KILL_SESSION / KILL_SYMBOL: that scope's kill latch is set (symbol: the
     order's symbol index, when it has one).
   - UNKNOWN_SYMBOL: limits committed and the order's symbol is not in them (Enter: by
     name; Replace: the original's symbol index no longer present).
   - RESTRICTED: the symbol is marked restricted.
   - UNKNOWN_ORDER: a Replace whose original is not live in the open-order table.
   - DUPLICATE_REF: the new UserRefNum is not strictly above the session's
     ``last_user_ref_num`` (which starts at 0). Whenever this check passes,
     ``last_user_ref_num`` becomes the new UserRefNum, whatever the verdict, so a number is
     never usable twice.
   - CAPACITY: the new UserRefNum has no place in the open-order table (rule 12): its set
     holds no entry for it and every way of the set holds an order with another UserRefNum
     (so a Replace whose new number maps onto its original's full set fires too: both must
     be tracked until the exchange confirms).
   - RATE: the session's token bucket is empty (rule 6).
   - QUANTITY: ``q == 0``, ``q > OUCH_MAX_QUANTITY``, ``q > symbol.max_order_quantity`` or
     ``q > session.max_order_quantity`` (``q`` = ``q2`` for a Replace).
   - NOTIONAL: ``q * p`` above ``symbol.max_order_notional`` or
     ``session.max_order_notional``.
   - COLLAR: the symbol's reference price is 0; or ``gateway.reference_max_age_us`` is not 0
     and ``t - reference_time > reference_max_age_us`` (``reference_time``: the stamp of
     the last :class:`SetReference`, or the Commit that loaded it; a stamp after ``t`` is
     a negative age, never stale); or ``|p - reference| > collar``; or
     ``p == 0`` (a band as wide as the reference would hold it, and an order priced 0 has
     notional 0, so NOTIONAL and CREDIT could never stop it).
   - POSITION: with ``dq`` the share increase, fires when ``dq > 0`` and, for a buy,
     ``position + working_buy + dq > max_long``, or for a sell side (``S``/``T``/``E``),
     ``working_sell + dq - position > max_short`` (per session and symbol).
   - CREDIT_SESSION / CREDIT_GATEWAY: with ``dn`` the notional increase, fires when
     ``dn > 0`` and ``credit_used + dn > credit`` for the session / the whole gateway.
   - BACKLOG: the drop copy is backlogged (rule 11).

   An increase of zero never fires POSITION or CREDIT: a Replace that adds no exposure is
   not blocked because exposure is already over a limit (say after the limits tightened).
6. *Rate.* Each loaded session has a token bucket from ``SessionLimits.rate``: full
   (``burst``) at the Commit that first loads the session, then one token is added every
   ``refill_us`` after the last refill instant credited, capped at ``burst``
   (``refill_us == 0``: never refilled; a later Commit keeps the bucket, see Control events).
   An Enter or Replace that passes every other check takes a token. One that finds the bucket empty
   fires RATE whatever else fires, adds one to ``throttle_count`` (held at ``RATE_TRIP_MAX``,
   the largest ``trip_after``, as the gateway's field is) and sets ``throttled``;
   when ``throttle_count`` reaches ``trip_after`` (not 0) the session's kill latch is set.
   An accepted message sets ``throttle_count`` to 0 and clears ``throttled``.
7. *Gate accept of an Enter* makes its place (rule 12) a live entry (open quantity ``q`` at ``p``):
   ``working_buy += q`` for a buy, ``working_sell += q`` for ``S``/``T``/``E``, and
   ``credit_used += q*p`` for the session and the gateway. The exchange ack is not awaited.
8. *Gate accept of a Replace* makes the new UserRefNum's place a *pending* entry that
   reserves the increase at once: working on the original's side grows by ``dq`` and credit
   by ``dn``. Decreases wait for the exchange's Order Replaced.
9. *Retransmission.* ``ClientMessage(retransmit=True)`` changes no state. Rules 1 and 2 apply
   to it as to any message; a Cancel, Query or Malformed gets its verdict again by the same
   rules (they depend only on the message and the sync flag). Enter, Replace and Modify get
   the verdict remembered from the first copy: each session remembers verdicts in two
   direct-mapped memories of ``n_verdicts`` entries indexed by ``user_ref_num % n_verdicts``,
   one for Enter/Replace (by the new UserRefNum) and one for Modify, each entry holding the
   message (its appendage left out) and its verdict, written by every such message that got
   past rules 1 and 2. The entry must hold the same message but for the appendage: every
   field of the fixed part equal (hardware compares a digest of the fixed part). The
   appendage, and the AppendageLength that counts it, are not compared: the appendage
   arrives after the verdict is due. When the entry does not hold the same message (never
   seen, evicted, or overwritten by a later message with the same number), the
   retransmission is rejected with OUT_OF_SYNC (fail closed). When the same
   message was sent twice, the retransmission gets the later verdict: for Enter/Replace
   that is a DUPLICATE_REF reject, so a retransmission can lose an accept but never gain
   one; for Modify it can only gain one that the very same message already got.

10. *Void client frames.* The gate judges a message at its last needed byte, before the
   frame's end (and its FCS) arrives, so a frame that ends void (bad FCS, or one the
   ingress could not follow) has already changed state. The hardware undoes it, and the
   model with it: ``ClientMessage(opens_frame=True)`` marks the first message of a frame
   (the undo checkpoint); :class:`FrameVoid` then puts ``last_user_ref_num``,
   ``throttle_count`` and ``throttled`` back to their values before that message and gives
   back every token the frame's messages took (capped at ``burst``); each Enter or Replace
   the frame got accepted is then withdrawn by a :class:`Revoke`, which frees its entry
   exactly like the exchange's Rejected (the frame never reached the exchange). A kill
   latch the frame tripped stays set (only a host Release clears a latch), and the
   verdict memories keep what the frame wrote (the client resends the bytes as new data,
   which overwrites them).

11. *Drop-copy backlog.* Every event but :class:`Tick` and :class:`HostRead` makes one
   drop-copy record, numbered from 0 in event order (the record's ``sequence``).
   ``HostRead(t, sequence)`` says the host has read every record numbered below
   ``sequence`` (never fewer than before, never more than were made). The *fill* an event
   sees is the records made before it that the host has not read. A gate built with marks
   ``backlog_high`` and ``backlog_low`` keeps a *backlogged* flag, updated by every
   record-making event before it is judged: set when ``fill >= backlog_high``, cleared when
   ``fill < backlog_low``, kept otherwise (hysteresis, so trading does not flicker at the
   mark). While it is set, an Enter or Replace judged by rule 5 fires BACKLOG, a rule 5
   check like the others (so it takes no token, and DUPLICATE_REF's update of
   ``last_user_ref_num`` still happens). Nothing else is refused: Cancel, Query, Modify
   (rule 4), retransmissions (rule 9: the remembered verdict), exchange and control events
   pass as before, and no latch is set: trading resumes by itself once the host has read
   enough. Without marks (the default) the rule never fires.

   Worked example, marks 3 and 1: records 0 to 2 are made (a Commit, two Enters) and the
   host reads nothing; the next Enter sees fill 3 and is rejected with BACKLOG (record 3).
   The host reads up to 2: a Cancel sees fill 2 and passes, the flag stays set; an Enter
   (record 5) sees 3 again, BACKLOG. The host reads up to 5: the next Enter sees fill 1,
   not below the low mark, BACKLOG; the host reads up to 7, the next Enter sees fill 0 and
   is judged as usual.

12. *Where an order lives.* Each session's open-order table has ``n_orders`` entries in
   ``n_orders / order_ways`` *sets* of ``order_ways`` *ways*; entry ``set * order_ways +
   way``. A UserRefNum's set is :func:`order_set`: with one way (a direct-mapped table)
   ``user_ref_num % n_orders``; with more, the XOR of the UserRefNum's successive
   ``log2(sets)``-bit fields (low bits first), so consecutive numbers fill every set evenly
   and numbers a multiple of the set count apart still spread. An order is *found* in the
   way of its set whose entry holds its UserRefNum (there is at most one). Its *place* is
   the way it is found in, else the lowest-numbered free way of its set, else none (CAPACITY
   for a new order, rule 5). Every rule that names "the entry" of a UserRefNum means the one
   found; freeing an entry frees its way; nothing moves between ways.

   Worked example, ``n_orders`` 16: direct-mapped, Enters 1, 17, 33 and 49 all map to entry
   1, so while 1 rests the other three are rejected with CAPACITY. With ``order_ways`` 4
   (4 sets, 2-bit fields) their sets are 1, 0 (``01 ^ 00 ^ 01``), 3 and 2: all four rest at
   once, each in way 0 of its set. Enters 50 (``0b11_00_10``: ``10 ^ 00 ^ 11`` = set 1),
   55 (``0b11_01_11``) and 56 (``0b11_10_00``), all of set 1, fill its ways 1 to 3 beside
   1; Enter 61 (``0b11_11_01``: set 1, no free way) is rejected with CAPACITY while 9
   entries stand free. An Executed that fills 50 frees way 1; the next Enter of set 1, 64
   (``0b01_00_00_00``), takes way 1.

Rules for exchange messages (no verdict)
----------------------------------------
Each entry's *charge* is what it adds to working and credit: a live entry its open
quantity and ``open * price``; a pending entry its reserved increase. Every change below is
"remove the old charge, add the new one", so working and credit always equal the sum of the
charges in the table (plus executed notional for credit).

- Order Accepted ``A``: order state ``D`` (accepted dead) frees the entry; otherwise nothing
  (the order was counted at gate accept).
- Order Replaced ``U``: the original's live entry is freed; the new UserRefNum's entry
  becomes live with the quantity and price the exchange reports (its reservation is
  dropped), or is freed when that quantity is 0 or the state is ``D``. When the gate holds
  no pending entry for the new number, the original's symbol and side are used if the new
  number has a place once the original has left (rule 12).
- Order Canceled ``C`` and AIQ Canceled ``D`` (quantity = shares decremented): the live
  entry's open quantity falls by that many (at most its open quantity).
- Order Modified ``M``: the live entry's open quantity becomes the reported quantity (never
  more than it was) and its side the reported side.
- Order Executed ``E``, ``q`` at ``px``: the live entry's open quantity falls by ``q`` (at
  most its open quantity); ``position`` rises by ``q`` for a buy and falls by ``q`` for a
  sell side; ``q*px`` is added to ``executed_notional`` and credit (session and gateway) and
  is never released within the day. The execution is recorded in the session's execution
  table, direct-mapped by ``match_number % n_executions``.
- Rejected ``J``: a live entry is freed (its whole charge released); a pending entry is
  freed (the Replace's reservation undone; the original stays).
- Broken Trade ``B`` (carries UserRefNum and MatchNumber only): when the execution table
  slot holds that match number for that UserRefNum, the execution is reversed (position
  and executed notional back) and forgotten. When it was evicted or never seen, nothing
  changes: the event is counted in ``unmatched`` and the host, which keeps the
  authoritative book, must correct. Any other event naming an order the gate does not hold
  is counted there too.
- Trade Correction ``F``: when the execution table holds that match number for that
  UserRefNum, the execution is reversed and booked again with the corrected quantity and
  price (the open quantity is not touched); otherwise counted in ``unmatched``.
- An entry whose open quantity reaches 0 is freed. Other exchange messages change nothing.

Control events
--------------
- :class:`Commit`: atomic swap of all limits, effective from the next event. A symbol
  index that is new, or now names another symbol, loads its reference from
  ``SymbolLimits.reference_price`` stamped with the Commit time; a symbol already loaded
  keeps its reference and its stamp (only :class:`SetReference` refreshes it), so the
  daemon's re-commits that tighten limits never make a stale reference fresh. A newly
  loaded session's bucket starts full; a session already loaded keeps its tokens (brought
  up to date, then capped at the new ``burst``), so a re-commit never refills a flooding
  session; when the commit changes ``refill_us``, the next refill is one new interval
  after the commit. Positions, working, credit, open orders and kill latches are kept: indices must
  mean the same session and symbol for the whole day.
- :class:`Kill` / :class:`Release`: set / clear the latch of one scope (``"gateway"``,
  ``"session"``, ``"symbol"``). Only Release clears a latch, including one set by the rate
  trip; Release does not reset ``throttle_count``, so a session still at ``trip_after``
  trips again on its next empty-bucket order.
- :class:`Heartbeat`: records the host's heartbeat time.
- :class:`SessionSync`: sets or clears a session's in-sync flag.
- :class:`Tick`: time passes; nothing else.
- :class:`HostRead`: the host's drop-copy reading position (rule 11); makes no record.
"""

import logging
from dataclasses import MISSING, dataclass, fields
from operator import attrgetter

from wiregate.sw.limits import (
    OUCH_MAX_PRICE,
    OUCH_MAX_QUANTITY,
    RATE_TRIP_MAX,
    GatewayLimits,
    Limits,
    RateLimit,
    SessionLimits,
    SymbolLimits,
)
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import Reason, primary

__all__ = [
    "SCOPES",
    "ClientMessage",
    "Commit",
    "ExchangeMessage",
    "Execution",
    "Exposure",
    "FrameVoid",
    "Gate",
    "Heartbeat",
    "HostRead",
    "Kill",
    "Malformed",
    "OrderEntry",
    "Release",
    "Revoke",
    "SessionState",
    "SessionSync",
    "SetReference",
    "Tick",
    "Verdict",
    "collar_fires",
    "credit_fires",
    "heartbeat_fires",
    "notional_fires",
    "order_set",
    "position_fires",
    "quantity_fires",
    "rate_commit",
    "rate_give_back",
    "rate_take",
    "tokens_at",
]

logger = logging.getLogger(__name__)

BUY = "B"
SIDES = frozenset("BSTE")       # buy; sell, sell short, sell short exempt all count as sells
SCOPES = ("gateway", "session", "symbol")
DEAD = "D"                      # OUCH order state: accepted, then canceled at once
# Client messages that can only remove risk at the exchange (rule 3).
_ENTER, _REPLACE, _MODIFY = ouch.EnterOrder.TYPE, ouch.ReplaceOrder.TYPE, ouch.ModifyOrder.TYPE
_NO_RISK = frozenset(cls.TYPE for cls in (ouch.CancelOrder, ouch.AccountQuery, ouch.MassCancel,
                                          ouch.DisableOrderEntry, ouch.EnableOrderEntry))


def _frozen(cls):
    """``@dataclass(frozen=True)`` with an ``__init__`` that fills the instance's ``__dict__``
    at once. The generated one sets each field through ``object.__setattr__`` (to get past
    the frozen guard), about 150 ns a field: the events, verdicts and entries the shadow
    check makes for every record cost it a third of its time. Same signature and defaults;
    the instance is as frozen, compared and hashed as before."""
    cls = dataclass(frozen=True)(cls)
    names, defaults, params = [], {}, []
    for f in fields(cls):
        if f.default_factory is not MISSING or not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: _frozen takes plain fields only")
        names.append(f.name)
        if f.default is MISSING:
            params.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    d[{name!r}] = {name}\n" for name in names)
    namespace: dict = {}
    exec(f"def __init__(self, {', '.join(params)}):\n    d = self.__dict__\n{body}",
         defaults, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    return cls


# --- Events ----------------------------------------------------------------------------------


@_frozen
class Malformed:
    """A client message the parser could not decode; ``reason`` says why (for the log)."""

    reason: str


@_frozen
class ClientMessage:
    """An OUCH message from the client toward the exchange; always gets a :class:`Verdict`.

    Parameters
    ----------
    t : int
        Arrival time, microseconds.
    session : int
        Session index (``SessionLimits.index``).
    msg : ouch client record or Malformed
    retransmit : bool
        The stream tracker saw these bytes before: repeat the first verdict, change nothing.
    opens_frame : bool
        First message of its frame: the checkpoint a :class:`FrameVoid` returns to (rule 10).
    """

    t: int
    session: int
    msg: ouch.ClientMessage | Malformed
    retransmit: bool = False
    opens_frame: bool = False


@_frozen
class ExchangeMessage:
    """An OUCH message from the exchange toward the client; updates state, no verdict."""

    t: int
    session: int
    msg: ouch.ServerMessage


@_frozen
class Commit:
    """Atomic swap of every limit table; the new limits apply from the next event."""

    t: int
    limits: Limits


@_frozen
class Kill:
    """Set the kill latch of ``scope`` (one of :data:`SCOPES`); ``index`` unused for gateway."""

    t: int
    scope: str
    index: int = 0


@_frozen
class Release:
    """Clear the kill latch of ``scope``; the only way a latch is cleared."""

    t: int
    scope: str
    index: int = 0


@_frozen
class Heartbeat:
    """The host is alive."""

    t: int


@_frozen
class SetReference:
    """New reference price for one symbol index.

    ``stamp_us`` is when the price was observed, as the host says (its market-data time on
    the gateway's timebase); the reference's age counts from it. ``None`` stamps it with
    ``t``, the microsecond it takes effect. A host cannot know that microsecond before its
    write lands, so a daemon sends the observation time, and the gateway records it.
    """

    t: int
    symbol_index: int
    price: int
    stamp_us: int | None = None

    @property
    def stamp(self) -> int:
        """The reference's stamp: ``stamp_us``, or ``t`` when none was given."""
        return self.t if self.stamp_us is None else self.stamp_us


@_frozen
class SessionSync:
    """The stream tracker's verdict on a session: out of sync fails closed until resynced."""

    t: int
    session: int
    in_sync: bool


@_frozen
class FrameVoid:
    """The client frame of ``session`` opened last ended void: undo it (rule 10)."""

    t: int
    session: int


@_frozen
class Revoke:
    """Withdraw an order a void frame got accepted: free its entry (rule 10)."""

    t: int
    session: int
    user_ref_num: int


@_frozen
class Tick:
    """Time passing, nothing else."""

    t: int


@_frozen
class HostRead:
    """The host has read every drop-copy record numbered below ``sequence`` (rule 11)."""

    t: int
    sequence: int


# --- Results and state -----------------------------------------------------------------------


@_frozen
class Verdict:
    """The gate's decision on one client message.

    Attributes
    ----------
    accept : bool
        True exactly when ``reasons`` is 0.
    reasons : int
        Reason word: bit ``r`` set for every :class:`Reason` ``r`` that fired.
    primary : Reason or None
        Lowest set bit (highest priority), None on accept.
    session : int
    user_ref_num : int or None
        The new UserRefNum (Enter, Replace), the named one (Cancel, Modify, and Mass Cancel,
        Disable and Enable Order Entry, which carry one too), else None.
    symbol_index : int or None
        The order's symbol index when known.
    msg_type : bytes or None
        The OUCH type byte, None for a Malformed record.
    """

    accept: bool
    reasons: int
    primary: Reason | None
    session: int
    user_ref_num: int | None
    symbol_index: int | None
    msg_type: bytes | None


@_frozen
class OrderEntry:
    """One slot of a session's open-order table.

    A *live* entry (``pending`` False) is an order the gate accepted (Enter) or the exchange
    confirmed (Order Replaced); ``quantity`` is its open quantity. A *pending* entry is a
    Replace accepted by the gate and not yet confirmed: ``quantity``/``price`` are the
    replacing order's, ``orig_user_ref_num`` names the original, and ``reserved_quantity``
    / ``reserved_notional`` are the increase it holds against working and credit.
    """

    user_ref_num: int
    symbol_index: int
    side: str
    quantity: int
    price: int
    pending: bool = False
    orig_user_ref_num: int = 0
    reserved_quantity: int = 0
    reserved_notional: int = 0

    @property
    def charge_quantity(self) -> int:
        """Shares this entry adds to working on its side."""
        return self.reserved_quantity if self.pending else self.quantity

    @property
    def charge_notional(self) -> int:
        """Price units this entry adds to credit_used."""
        return self.reserved_notional if self.pending else self.quantity * self.price


@_frozen
class Execution:
    """One remembered execution, kept so a Broken Trade or Trade Correction can find it."""

    match_number: int
    user_ref_num: int
    symbol_index: int
    side: str
    quantity: int
    price: int


@_frozen
class Exposure:
    """Per (session, symbol): executed position (signed) and working shares by side."""

    position: int
    working_buy: int
    working_sell: int


@dataclass
class SessionState:
    """Everything the gate keeps for one session.

    Attributes
    ----------
    in_sync : bool
    last_user_ref_num : int
    credit_used : int
        Sum of the open-order table's charges plus ``executed_notional``.
    executed_notional : int
    tokens, refill_mark : int
        Token bucket as of ``refill_mark`` (the last refill instant credited).
    throttled : bool
    throttle_count : int
    unmatched : int
        Exchange events naming an order or execution the gate does not hold.
    orders : list of OrderEntry or None
        Open-order table, ``n_orders`` entries, entry ``set * order_ways + way`` (rule 12).
    executions : list of Execution or None
        ``n_executions`` slots, slot = ``match_number % n_executions``.
    order_verdicts, modify_verdicts : list of (message, Verdict) or None
        ``n_verdicts`` slots each, slot = ``user_ref_num % n_verdicts``: the last message
        judged with that slot's UserRefNum and its verdict (rule 9: a retransmission is
        compared with it but for the appendage).
    """

    orders: list
    executions: list
    order_verdicts: list
    modify_verdicts: list
    in_sync: bool = True
    last_user_ref_num: int = 0
    credit_used: int = 0
    executed_notional: int = 0
    tokens: int = 0
    refill_mark: int = 0
    throttled: bool = False
    throttle_count: int = 0
    unmatched: int = 0


def _bit(reason: Reason) -> int:
    return 1 << reason


# Every reason's bit, computed once: the checks below run for every order.
_MALFORMED = _bit(Reason.MALFORMED)
_OUT_OF_SYNC = _bit(Reason.OUT_OF_SYNC)
_NOT_LOADED = _bit(Reason.NOT_LOADED)
_HEARTBEAT = _bit(Reason.HEARTBEAT)
_KILL_GATEWAY = _bit(Reason.KILL_GATEWAY)
_KILL_SESSION = _bit(Reason.KILL_SESSION)
_KILL_SYMBOL = _bit(Reason.KILL_SYMBOL)
_UNKNOWN_SYMBOL = _bit(Reason.UNKNOWN_SYMBOL)
_RESTRICTED = _bit(Reason.RESTRICTED)
_UNKNOWN_ORDER = _bit(Reason.UNKNOWN_ORDER)
_DUPLICATE_REF = _bit(Reason.DUPLICATE_REF)
_CAPACITY = _bit(Reason.CAPACITY)
_QUANTITY = _bit(Reason.QUANTITY)
_NOTIONAL = _bit(Reason.NOTIONAL)
_COLLAR = _bit(Reason.COLLAR)
_POSITION = _bit(Reason.POSITION)
_CREDIT_SESSION = _bit(Reason.CREDIT_SESSION)
_CREDIT_GATEWAY = _bit(Reason.CREDIT_GATEWAY)
_BACKLOG = _bit(Reason.BACKLOG)
_RATE = _bit(Reason.RATE)


def _is_buy(side: str) -> bool:
    return side == BUY


_FIXED_FIELDS: dict = {}     # message class -> getter of every field but the appendage


def _fixed_part(msg):
    """What rule 9 compares: ``msg``'s class and every field of it but the appendage (equal
    exactly when the messages without their appendages are equal; no copy is made)."""
    cls = type(msg)
    getter = _FIXED_FIELDS.get(cls)
    if getter is None:
        getter = _FIXED_FIELDS[cls] = attrgetter(
            *(f.name for f in fields(cls) if f.name != "appendage"))
    return cls, getter(msg)


def _with_quantity(entry: "OrderEntry", quantity: int, side: str | None = None) -> "OrderEntry":
    """``entry`` with another open quantity (and side): ``dataclasses.replace`` without its
    cost, for the exchange events that run for every execution and cancel."""
    return OrderEntry(entry.user_ref_num, entry.symbol_index,
                      entry.side if side is None else side, quantity, entry.price,
                      entry.pending, entry.orig_user_ref_num, entry.reserved_quantity,
                      entry.reserved_notional)


def order_set(user_ref_num: int, n_orders: int, ways: int) -> int:
    """The set of the open-order table that holds ``user_ref_num`` (rule 12).

    One way: ``user_ref_num % n_orders``. More: the XOR of the number's successive
    ``log2(n_orders // ways)``-bit fields, low bits first (``n_orders // ways`` is a power of
    two; a single set is set 0).
    """
    if ways == 1:
        return user_ref_num % n_orders
    bits = (n_orders // ways - 1).bit_length()
    folded = 0
    while bits and user_ref_num:
        folded ^= user_ref_num & ((1 << bits) - 1)
        user_ref_num >>= bits
    return folded


def tokens_at(tokens: int, mark: int, rate: RateLimit, t: int) -> tuple[int, int]:
    """Bucket content at ``t`` and the refill instant credited last (rule 6)."""
    if rate.refill_us == 0:
        return tokens, mark
    steps = (t - mark) // rate.refill_us
    return min(rate.burst, tokens + steps), mark + steps * rate.refill_us


# --- One function per check of rule 5 --------------------------------------------------------
# The gateware has one component per check (wiregate.hw.risk.checks); each is tested against the
# function of the same name here, and Gate._judge is written with these and nothing else.


def quantity_fires(quantity: int, symbol: SymbolLimits | None,
                   session: SessionLimits | None) -> bool:
    """QUANTITY: zero, above the OUCH bound, or above a loaded per-symbol / per-session limit."""
    return (quantity == 0 or quantity > OUCH_MAX_QUANTITY
            or (symbol is not None and quantity > symbol.max_order_quantity)
            or (session is not None and quantity > session.max_order_quantity))


def notional_fires(quantity: int, price: int, symbol: SymbolLimits | None,
                   session: SessionLimits | None) -> bool:
    """NOTIONAL: ``quantity * price`` above a loaded per-symbol / per-session limit."""
    notional = quantity * price
    return ((symbol is not None and notional > symbol.max_order_notional)
            or (session is not None and notional > session.max_order_notional))


def collar_fires(price: int, reference: int, age: int, max_age: int, collar: int) -> bool:
    """COLLAR: no reference, a stale one (``max_age`` 0: never stale), outside the band, or 0."""
    return (reference == 0 or (max_age != 0 and age > max_age)
            or abs(price - reference) > collar or price == 0)


def position_fires(side: str, add_quantity: int, exposure: Exposure, max_long: int,
                   max_short: int) -> bool:
    """POSITION: a share increase that takes projected long or short past its limit."""
    if add_quantity <= 0:
        return False
    if _is_buy(side):
        return exposure.position + exposure.working_buy + add_quantity > max_long
    return exposure.working_sell + add_quantity - exposure.position > max_short


def credit_fires(add_notional: int, used: int, limit: int | None) -> bool:
    """CREDIT_SESSION / CREDIT_GATEWAY: a notional increase past a loaded cap."""
    return add_notional > 0 and limit is not None and used + add_notional > limit


def heartbeat_fires(t: int, last_heartbeat: int | None, gateway: GatewayLimits | None) -> bool:
    """HEARTBEAT: limits committed and the host silent for longer than the timeout."""
    return gateway is not None and t - last_heartbeat > gateway.heartbeat_timeout_us


def rate_take(st: "SessionState", rate: RateLimit, t: int, others_fired: bool) -> tuple[bool, bool]:
    """Rule 6 for one Enter/Replace of a loaded session: (RATE fires, kill latch trips).

    Brings the bucket up to ``t``; takes a token when no other check fired.
    """
    st.tokens, st.refill_mark = tokens_at(st.tokens, st.refill_mark, rate, t)
    if st.tokens == 0:
        st.throttle_count = min(st.throttle_count + 1, RATE_TRIP_MAX)
        st.throttled = True
        return True, rate.trip_after != 0 and st.throttle_count >= rate.trip_after
    if not others_fired:
        st.tokens -= 1
        st.throttle_count = 0
        st.throttled = False
    return False, False


def rate_give_back(st: "SessionState", rate: RateLimit, t: int, taken: int) -> None:
    """Rule 10: return ``taken`` tokens to a bucket brought up to ``t``, capped at the burst."""
    tokens, st.refill_mark = tokens_at(st.tokens, st.refill_mark, rate, t)
    st.tokens = min(rate.burst, tokens + taken)


def rate_commit(st: "SessionState", was: SessionLimits | None, now: SessionLimits | None,
                t: int) -> None:
    """A Commit's effect on one session's bucket (see Control events)."""
    if now is None:
        st.tokens, st.refill_mark = 0, t
    elif was is None:
        st.tokens, st.refill_mark = now.rate.burst, t
    else:   # a re-commit never refills a bucket: bring it up to date, cap it
        tokens, mark = tokens_at(st.tokens, st.refill_mark, was.rate, t)
        if now.rate.refill_us != was.rate.refill_us:
            mark = t    # a new interval starts now (crediting the old time anew is a division)
        st.tokens, st.refill_mark = min(tokens, now.rate.burst), mark


@dataclass
class _Frame:
    """Rule 10's checkpoint: the session state a void frame returns to."""

    session: int
    last_user_ref_num: int
    throttle_count: int
    throttled: bool
    taken: int = 0


def backlog_marks(depth: int) -> tuple[int, int]:
    """The default marks of rule 11 for a drop-copy queue of ``depth`` records.

    (high, low): three quarters and a quarter of the queue, leaving a quarter as headroom
    for the records that keep coming while new orders are refused (every verdict, exchange
    and control event still makes one).
    """
    return depth - depth // 4, max(1, depth // 4)


class Gate:
    """The whole gate's state and the rules that change it (see the module docstring).

    Parameters
    ----------
    n_sessions : int
        Session table size; session indices run 0..n_sessions-1.
    n_symbols : int
        Symbol table size; symbol indices run 0..n_symbols-1.
    n_orders : int
        Open-order table entries per session.
    order_ways : int
        Ways per set of the open-order table (rule 12); 1, the default, is direct-mapped by
        ``user_ref_num % n_orders``. It must divide ``n_orders`` into a power-of-two number
        of sets.
    n_executions : int
        Remembered executions per session (direct-mapped by MatchNumber), for Broken Trade.
    n_verdicts : int
        Remembered verdicts per session and memory (direct-mapped by UserRefNum), for
        retransmissions; defaults to ``n_orders``.
    backlog_high, backlog_low : int or None
        The drop-copy marks of rule 11, in records (``0 < backlog_low <= backlog_high``);
        None (both): no backlog rule.

    Attributes
    ----------
    sessions : list of SessionState
    limits : Limits or None
        The committed limits (None before the first Commit).
    gateway_credit_used : int
        Sum of every session's ``credit_used``.
    kill_gateway : bool
    kill_session, kill_symbol : list of bool
        Kill latches, indexed by session / symbol index.
    last_heartbeat : int or None
    now : int
        Time of the latest event.
    records : int
        Drop-copy records made so far: the sequence number of the next one (rule 11).
    host_read : int
        Records the host has read (the latest :class:`HostRead`).
    backlogged : bool
        Rule 11's flag as the latest record-making event left it.
    """

    def __init__(self, n_sessions: int = 8, n_symbols: int = 1024, n_orders: int = 256,
                 n_executions: int = 256, n_verdicts: int | None = None,
                 backlog_high: int | None = None, backlog_low: int | None = None,
                 order_ways: int = 1):
        if n_verdicts is None:
            n_verdicts = n_orders
        if (backlog_high is None) != (backlog_low is None):
            raise ValueError("give both backlog marks or neither")
        if backlog_high is not None and not (
                isinstance(backlog_high, int) and isinstance(backlog_low, int)
                and 0 < backlog_low <= backlog_high):
            raise ValueError(f"backlog marks must be integers with 0 < low <= high, not "
                             f"high {backlog_high!r}, low {backlog_low!r}")
        self.backlog_high = backlog_high
        self.backlog_low = backlog_low
        for name, value in (("n_sessions", n_sessions), ("n_symbols", n_symbols),
                            ("n_orders", n_orders), ("n_executions", n_executions),
                            ("n_verdicts", n_verdicts)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        n_sets = n_orders // order_ways if isinstance(order_ways, int) and order_ways >= 1 else 0
        if order_ways != 1 and (not n_sets or n_sets * order_ways != n_orders
                                or n_sets & (n_sets - 1)):
            raise ValueError(f"order_ways must divide n_orders {n_orders} into a power-of-two "
                             f"number of sets, not {order_ways!r}")
        self.n_sessions = n_sessions
        self.n_symbols = n_symbols
        self.n_orders = n_orders
        self.order_ways = order_ways
        self.n_executions = n_executions
        self.n_verdicts = n_verdicts

        self.now = 0
        self.records = 0
        self.host_read = 0
        self.backlogged = False
        self.limits: Limits | None = None
        self.last_heartbeat: int | None = None
        self.kill_gateway = False
        self.kill_session = [False] * n_sessions
        self.kill_symbol = [False] * n_symbols
        self.gateway_credit_used = 0
        self._frame: _Frame | None = None     # the client frame opened last (rule 10)
        # The committed limits, as the hardware's index-addressed tables plus the host-filled
        # symbol hash table (symbol name to limits).
        self._session_limits: list[SessionLimits | None] = [None] * n_sessions
        self._symbol_limits: list[SymbolLimits | None] = [None] * n_symbols
        self._symbol_by_name: dict[str, SymbolLimits] = {}
        self._reference = [0] * n_symbols
        self._reference_time = [0] * n_symbols
        self._position = [[0] * n_symbols for _ in range(n_sessions)]
        self._working_buy = [[0] * n_symbols for _ in range(n_sessions)]
        self._working_sell = [[0] * n_symbols for _ in range(n_sessions)]
        self.sessions = [
            SessionState(orders=[None] * n_orders, executions=[None] * n_executions,
                         order_verdicts=[None] * n_verdicts,
                         modify_verdicts=[None] * n_verdicts)
            for _ in range(n_sessions)
        ]
        # Exchange messages not listed change nothing (System Event, Cancel Pending, ...).
        self._exchange_handlers = {
            ouch.OrderAccepted.TYPE: self._accepted,
            ouch.OrderReplaced.TYPE: self._replaced,
            ouch.OrderCanceled.TYPE: self._canceled,
            ouch.AiqCanceled.TYPE: self._canceled,
            ouch.OrderModified.TYPE: self._modified,
            ouch.OrderExecuted.TYPE: self._executed,
            ouch.OrderRejected.TYPE: self._rejected,
            ouch.BrokenTrade.TYPE: self._broken,
            ouch.TradeCorrection.TYPE: self._corrected,
        }

    # --- Inspection ----------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """True once a Commit has happened."""
        return self.limits is not None

    def exposure(self, session: int, symbol_index: int) -> Exposure:
        """Position and working shares of one (session, symbol)."""
        return Exposure(self._position[session][symbol_index],
                        self._working_buy[session][symbol_index],
                        self._working_sell[session][symbol_index])

    def order(self, session: int, user_ref_num: int) -> OrderEntry | None:
        """The entry holding ``user_ref_num`` (live or pending), or None."""
        slot = self._find(session, user_ref_num)
        return None if slot is None else self.sessions[session].orders[slot]

    def _ways(self, user_ref_num: int) -> range:
        """The entries of ``user_ref_num``'s set, lowest way first (rule 12)."""
        first = order_set(user_ref_num, self.n_orders, self.order_ways) * self.order_ways
        return range(first, first + self.order_ways)

    def _find(self, session: int, user_ref_num: int) -> int | None:
        """The entry that holds ``user_ref_num``, or None (rule 12)."""
        orders = self.sessions[session].orders
        if self.order_ways == 1:    # direct-mapped: one entry to look at
            slot = user_ref_num % self.n_orders
            entry = orders[slot]
            return slot if entry is not None and entry.user_ref_num == user_ref_num else None
        for slot in self._ways(user_ref_num):
            if orders[slot] is not None and orders[slot].user_ref_num == user_ref_num:
                return slot
        return None

    def _place(self, session: int, user_ref_num: int) -> int | None:
        """Where ``user_ref_num`` goes: its entry, else its set's lowest free way (rule 12)."""
        if self.order_ways == 1:    # direct-mapped: its entry, or free
            slot = user_ref_num % self.n_orders
            entry = self.sessions[session].orders[slot]
            return slot if entry is None or entry.user_ref_num == user_ref_num else None
        found = self._find(session, user_ref_num)
        if found is not None:
            return found
        orders = self.sessions[session].orders
        return next((slot for slot in self._ways(user_ref_num) if orders[slot] is None), None)

    def tokens(self, session: int) -> int:
        """The session's token count as of :attr:`now` (0 when the session is not loaded)."""
        limits = self._session_limits[session]
        if limits is None:
            return 0
        st = self.sessions[session]
        return tokens_at(st.tokens, st.refill_mark, limits.rate, self.now)[0]

    def reference(self, symbol_index: int) -> tuple[int, int]:
        """(reference price, time it was set) of one symbol index."""
        return self._reference[symbol_index], self._reference_time[symbol_index]

    @staticmethod
    def _memory_rows(memory: list) -> dict:
        """Occupied slots of a verdict memory as (type, UserRefNum, reason word)."""
        return {slot: (row[1].msg_type, row[1].user_ref_num, row[1].reasons)
                for slot, row in enumerate(memory) if row is not None}

    def snapshot(self) -> dict:
        """Every table's content as plain dicts and tuples, for comparison with hardware.

        Zero rows of the (session, symbol) table and empty slots are left out. Tokens are as
        of :attr:`now`, so the snapshot does not depend on when a bucket was last refilled.
        """
        sessions = []
        for index, st in enumerate(self.sessions):
            sessions.append({
                "in_sync": st.in_sync,
                "last_user_ref_num": st.last_user_ref_num,
                "credit_used": st.credit_used,
                "executed_notional": st.executed_notional,
                "tokens": self.tokens(index),
                "throttled": st.throttled,
                "throttle_count": st.throttle_count,
                "unmatched": st.unmatched,
                "orders": {slot: (e.user_ref_num, e.symbol_index, e.side, e.quantity, e.price,
                                  e.pending, e.orig_user_ref_num, e.reserved_quantity,
                                  e.reserved_notional)
                           for slot, e in enumerate(st.orders) if e is not None},
                "executions": {slot: (x.match_number, x.user_ref_num, x.symbol_index, x.side,
                                      x.quantity, x.price)
                               for slot, x in enumerate(st.executions) if x is not None},
                "order_verdicts": self._memory_rows(st.order_verdicts),
                "modify_verdicts": self._memory_rows(st.modify_verdicts),
            })
        exposure = {}
        for s in range(self.n_sessions):
            for y in range(self.n_symbols):
                row = (self._position[s][y], self._working_buy[s][y], self._working_sell[s][y])
                if row != (0, 0, 0):
                    exposure[(s, y)] = row
        return {
            "now": self.now,
            "loaded": self.loaded,
            "last_heartbeat": self.last_heartbeat,
            "gateway_credit_used": self.gateway_credit_used,
            "kill": {
                "gateway": self.kill_gateway,
                "session": tuple(i for i, k in enumerate(self.kill_session) if k),
                "symbol": tuple(i for i, k in enumerate(self.kill_symbol) if k),
            },
            "references": {y: (self._reference[y], self._reference_time[y])
                           for y in range(self.n_symbols) if self._reference[y]},
            "sessions": tuple(sessions),
            "exposure": exposure,
        }

    # --- Dispatch --------------------------------------------------------------------------

    def apply(self, event) -> Verdict | None:
        """Apply one event; return the Verdict for a ClientMessage, else None."""
        cls = type(event)
        if cls is ClientMessage:        # most events: the short way
            return self._take_client(event.t, event.session, event.msg, event.retransmit,
                                     event.opens_frame)
        if event.t < self.now:
            raise ValueError(f"event at t={event.t} is earlier than the last one (t={self.now})")
        self.now = event.t
        if cls is ExchangeMessage:
            self._backlog_update()
            self.records += 1       # this event's record (rule 11)
            session = event.session
            if not 0 <= session < self.n_sessions:
                self._check_session(session)
            self._exchange(session, event.msg)
            return None
        if isinstance(event, HostRead):
            self._host_read(event.sequence)
            return None
        if not isinstance(event, Tick):
            self._backlog_update()
            self.records += 1       # this event's record (rule 11)
        match event:
            case ClientMessage():
                self._check_session(event.session)
                return self._client(event.t, event.session, event.msg, event.retransmit,
                                    event.opens_frame)
            case ExchangeMessage():
                self._check_session(event.session)
                self._exchange(event.session, event.msg)
            case Commit():
                self._commit(event.t, event.limits)
            case Kill() | Release():
                self._latch(event.scope, event.index, isinstance(event, Kill))
            case Heartbeat():
                self.last_heartbeat = event.t
            case SetReference():
                if not 0 <= event.symbol_index < self.n_symbols:
                    raise ValueError(f"symbol index {event.symbol_index} out of range")
                self._reference[event.symbol_index] = event.price
                self._reference_time[event.symbol_index] = event.stamp
            case SessionSync():
                self._check_session(event.session)
                self.sessions[event.session].in_sync = event.in_sync
            case FrameVoid():
                self._check_session(event.session)
                self._undo_frame(event.t, event.session)
            case Revoke():
                self._check_session(event.session)
                self._rejected(event.session, event)
            case Tick():
                pass
            case _:
                raise TypeError(f"not a gate event: {event!r}")
        return None

    def _take_client(self, t: int, s: int, msg, retransmit: bool, opens_frame: bool) -> Verdict:
        """``apply(ClientMessage(t, s, msg, retransmit, opens_frame))`` without making the
        event: the shadow check's way in for every VERDICT record."""
        if t < self.now:
            raise ValueError(f"event at t={t} is earlier than the last one (t={self.now})")
        self.now = t
        self._backlog_update()
        self.records += 1       # this event's record (rule 11)
        if not 0 <= s < self.n_sessions:
            self._check_session(s)
        return self._client(t, s, msg, retransmit, opens_frame)

    def _host_read(self, sequence: int) -> None:
        if not self.host_read <= sequence <= self.records:
            raise ValueError(f"the host cannot have read up to record {sequence}: it had read "
                             f"up to {self.host_read} and {self.records} were made")
        self.host_read = sequence

    def _backlog_update(self) -> None:
        """Rule 11's hysteresis, at a record-making event, before it is judged."""
        if self.backlog_high is None:
            return
        fill = self.records - self.host_read
        self.backlogged = fill >= self.backlog_high or (
            self.backlogged and fill >= self.backlog_low)

    def _check_session(self, session: int) -> None:
        if not 0 <= session < self.n_sessions:
            raise ValueError(f"session index {session} out of range 0..{self.n_sessions - 1}")

    # --- Control ---------------------------------------------------------------------------

    def _commit(self, t: int, limits: Limits) -> None:
        session_limits: list[SessionLimits | None] = [None] * self.n_sessions
        symbol_limits: list[SymbolLimits | None] = [None] * self.n_symbols
        by_name: dict[str, SymbolLimits] = {}
        for sl in limits.sessions:
            if not 0 <= sl.index < self.n_sessions or session_limits[sl.index] is not None:
                raise ValueError(f"session index {sl.index} out of range or repeated")
            session_limits[sl.index] = sl
        for yl in limits.symbols:
            if not 0 <= yl.index < self.n_symbols or symbol_limits[yl.index] is not None:
                raise ValueError(f"symbol index {yl.index} out of range or repeated")
            if yl.symbol in by_name:
                raise ValueError(f"symbol {yl.symbol!r} appears twice")
            symbol_limits[yl.index] = yl
            by_name[yl.symbol] = yl
        if self.limits is None:
            self.last_heartbeat = t
        old_sessions, old_symbols = self._session_limits, self._symbol_limits
        self.limits = limits
        self._session_limits = session_limits
        self._symbol_limits = symbol_limits
        self._symbol_by_name = by_name
        for y in range(self.n_symbols):
            yl, was = symbol_limits[y], old_symbols[y]
            if yl is not None and was is not None and was.symbol == yl.symbol:
                continue    # a re-commit never makes a stale reference fresh
            self._reference[y] = yl.reference_price if yl is not None else 0
            self._reference_time[y] = t
        for s, st in enumerate(self.sessions):
            rate_commit(st, old_sessions[s], session_limits[s], t)

    def _undo_frame(self, t: int, session: int) -> None:
        frame, self._frame = self._frame, None
        if frame is None or frame.session != session:
            raise ValueError(f"FrameVoid for session {session}, whose last frame was not "
                             "opened by a ClientMessage(opens_frame=True)")
        st = self.sessions[session]
        st.last_user_ref_num = frame.last_user_ref_num
        st.throttle_count, st.throttled = frame.throttle_count, frame.throttled
        limits = self._session_limits[session]
        if limits is not None:
            rate_give_back(st, limits.rate, t, frame.taken)

    def _latch(self, scope: str, index: int, value: bool) -> None:
        if scope == "gateway":
            self.kill_gateway = value
        elif scope == "session":
            self._check_session(index)
            self.kill_session[index] = value
        elif scope == "symbol":
            if not 0 <= index < self.n_symbols:
                raise ValueError(f"symbol index {index} out of range")
            self.kill_symbol[index] = value
        else:
            raise ValueError(f"kill scope must be one of {SCOPES}, not {scope!r}")

    # --- Table bookkeeping -------------------------------------------------------------------

    def _charge(self, session: int, entry: OrderEntry, sign: int) -> None:
        """Add (sign 1) or remove (sign -1) an entry's charge to working and credit."""
        quantity = sign * entry.charge_quantity
        notional = sign * entry.charge_notional
        if _is_buy(entry.side):
            self._working_buy[session][entry.symbol_index] += quantity
        else:
            self._working_sell[session][entry.symbol_index] += quantity
        self.sessions[session].credit_used += notional
        self.gateway_credit_used += notional

    def _store(self, session: int, slot: int, entry: OrderEntry | None) -> None:
        """Replace the entry in ``slot``, moving its charge; quantity 0 frees the slot."""
        orders = self.sessions[session].orders
        old = orders[slot]
        if old is not None:
            self._charge(session, old, -1)
        if entry is not None and not entry.pending and entry.quantity == 0:
            entry = None
        orders[slot] = entry
        if entry is not None:
            self._charge(session, entry, 1)

    def _live(self, session: int, user_ref_num: int) -> OrderEntry | None:
        entry = self.order(session, user_ref_num)
        return entry if entry is not None and not entry.pending else None

    # --- Client messages ----------------------------------------------------------------

    def _client(self, t: int, s: int, msg, retransmit: bool, opens_frame: bool) -> Verdict:
        st = self.sessions[s]
        if opens_frame:
            self._frame = _Frame(s, st.last_user_ref_num, st.throttle_count, st.throttled)
        if isinstance(msg, Malformed):
            malformed, msg_type, ref = True, None, None
        else:
            # Rule 1: what the model itself treats as malformed beyond the parser's verdict.
            malformed = (getattr(msg, "side", BUY) not in SIDES
                         or getattr(msg, "price", 0) > OUCH_MAX_PRICE)
            msg_type = msg.TYPE
            ref = getattr(msg, "user_ref_num", None)    # the new one for Enter/Replace
        word = 0
        if malformed:
            word |= _MALFORMED
        if not st.in_sync:
            word |= _OUT_OF_SYNC
        if word:
            symbol_index = None if malformed else self._symbol_of(s, msg)
            return self._verdict(word, s, ref, symbol_index, msg_type)

        if msg_type == _ENTER:
            memory, judge = st.order_verdicts, self._enter
        elif msg_type in _NO_RISK:
            return self._verdict(0, s, ref, self._symbol_of(s, msg), msg_type)
        elif msg_type == _MODIFY:
            memory, judge = st.modify_verdicts, self._modify
        elif msg_type == _REPLACE:
            memory, judge = st.order_verdicts, self._replace
        else:
            raise TypeError(f"not an OUCH client record: {msg!r}")
        slot = ref % self.n_verdicts
        if retransmit:
            remembered = memory[slot]
            if remembered is not None and _fixed_part(remembered[0]) == _fixed_part(msg):
                return remembered[1]
            return self._verdict(_OUT_OF_SYNC, s, ref, None, msg_type)
        verdict = judge(t, s, msg)
        # The message itself (frozen): its fixed part is taken only when a retransmission
        # is compared with it, not for every message.
        memory[slot] = (msg, verdict)
        return verdict

    def _symbol_of(self, session: int, msg) -> int | None:
        """Symbol index of a client message: by name for Enter, from the table otherwise."""
        if msg.TYPE == ouch.EnterOrder.TYPE:
            yl = self._symbol_by_name.get(msg.symbol)
            return yl.index if yl is not None else None
        if msg.TYPE == ouch.ReplaceOrder.TYPE:
            entry = self._live(session, msg.orig_user_ref_num)
        elif msg.TYPE in (ouch.CancelOrder.TYPE, ouch.ModifyOrder.TYPE):
            entry = self.order(session, msg.user_ref_num)
        else:
            return None
        return entry.symbol_index if entry is not None else None

    def _verdict(self, word: int, session: int, ref: int | None, symbol_index: int | None,
                 msg_type: bytes | None) -> Verdict:
        return Verdict(word == 0, word, None if word == 0 else primary(word), session, ref,
                       symbol_index, msg_type)

    def _modify(self, t: int, s: int, msg) -> Verdict:
        """Rule 4 (``t`` unused: no check on a Modify depends on time)."""
        entry = self._live(s, msg.user_ref_num)
        word = 0
        if entry is None:
            word |= _bit(Reason.UNKNOWN_ORDER)
        else:
            if msg.quantity > entry.quantity:
                word |= _bit(Reason.QUANTITY)
            if _is_buy(msg.side) != _is_buy(entry.side):
                word |= _bit(Reason.POSITION)
        symbol_index = entry.symbol_index if entry is not None else None
        return self._verdict(word, s, msg.user_ref_num, symbol_index, msg.TYPE)

    def _enter(self, t: int, s: int, msg) -> Verdict:
        """Rules 5 to 7 for an Enter Order."""
        yl = self._symbol_by_name.get(msg.symbol)
        symbol_index = yl.index if yl is not None else None
        q, p = msg.quantity, msg.price
        # ref, symbol_index, side, quantity, price, add_quantity, add_notional,
        # unknown_symbol, unknown_order
        word, place = self._judge(t, s, msg.user_ref_num, symbol_index, msg.side, q, p, q,
                                  q * p, self.limits is not None and yl is None, False)
        if word == 0:
            self._store(s, place, OrderEntry(msg.user_ref_num, symbol_index, msg.side, q, p))
        return self._verdict(word, s, msg.user_ref_num, symbol_index, msg.TYPE)

    def _replace(self, t: int, s: int, msg) -> Verdict:
        """Rules 5, 6 and 8 for a Replace Order."""
        orig = self._live(s, msg.orig_user_ref_num)
        q2, p2 = msg.quantity, msg.price
        if orig is not None:
            symbol_index, side = orig.symbol_index, orig.side
            q1, p1 = orig.quantity, orig.price
            unknown_symbol = self.limits is not None and self._symbol_limits[symbol_index] is None
        else:
            symbol_index, side, q1, p1, unknown_symbol = None, None, 0, 0, False
        add_quantity = max(0, q2 - q1)
        add_notional = max(0, q2 * p2 - q1 * p1)
        word, place = self._judge(t, s, msg.user_ref_num, symbol_index, side, q2, p2,
                                  add_quantity, add_notional, unknown_symbol, orig is None)
        if word == 0:
            self._store(s, place, OrderEntry(
                msg.user_ref_num, symbol_index, side, q2, p2, pending=True,
                orig_user_ref_num=msg.orig_user_ref_num, reserved_quantity=add_quantity,
                reserved_notional=add_notional))
        return self._verdict(word, s, msg.user_ref_num, symbol_index, msg.TYPE)

    def _judge(self, t: int, s: int, ref: int, symbol_index: int | None, side: str | None,
               quantity: int, price: int, add_quantity: int, add_notional: int,
               unknown_symbol: bool, unknown_order: bool) -> tuple[int, int | None]:
        """Every check of rule 5 and the bucket of rule 6; returns the reason word and the
        new UserRefNum's place (rule 12).

        Updates ``last_user_ref_num`` and the rate state; the caller stores the order in
        that place on accept (nothing here changes the open-order table). Positional
        arguments: a call by keyword costs the shadow check a few percent.
        """
        st = self.sessions[s]
        session_limits = self._session_limits[s]
        gateway: GatewayLimits | None = self.limits.gateway if self.limits else None
        yl = self._symbol_limits[symbol_index] if symbol_index is not None else None
        # The hot path of the shadow check: each check adds its bit in place (no closure).
        word = 0
        if session_limits is None:
            word |= _NOT_LOADED
        if heartbeat_fires(t, self.last_heartbeat, gateway):
            word |= _HEARTBEAT
        if self.kill_gateway:
            word |= _KILL_GATEWAY
        if self.kill_session[s]:
            word |= _KILL_SESSION
        if symbol_index is not None and self.kill_symbol[symbol_index]:
            word |= _KILL_SYMBOL
        if unknown_symbol:
            word |= _UNKNOWN_SYMBOL
        if yl is not None and yl.restricted:
            word |= _RESTRICTED
        if unknown_order:
            word |= _UNKNOWN_ORDER
        if ref <= st.last_user_ref_num:
            word |= _DUPLICATE_REF
        place = self._place(s, ref)
        if place is None:
            word |= _CAPACITY
        if quantity_fires(quantity, yl, session_limits):
            word |= _QUANTITY
        if notional_fires(quantity, price, yl, session_limits):
            word |= _NOTIONAL
        if yl is not None:
            if collar_fires(price, self._reference[yl.index],
                            t - self._reference_time[yl.index], gateway.reference_max_age_us,
                            yl.collar):
                word |= _COLLAR
            if side is not None and position_fires(side, add_quantity,
                                                   self.exposure(s, yl.index), yl.max_long,
                                                   yl.max_short):
                word |= _POSITION
        if credit_fires(add_notional, st.credit_used,
                        session_limits.credit if session_limits is not None else None):
            word |= _CREDIT_SESSION
        if credit_fires(add_notional, self.gateway_credit_used,
                        gateway.credit if gateway is not None else None):
            word |= _CREDIT_GATEWAY
        if self.backlogged:
            word |= _BACKLOG

        if ref > st.last_user_ref_num:
            st.last_user_ref_num = ref
        if session_limits is not None:
            fires, trip = rate_take(st, session_limits.rate, t, word != 0)
            if fires:
                word |= _RATE
            if word == 0 and self._frame is not None and self._frame.session == s:
                self._frame.taken += 1
            if trip:
                self.kill_session[s] = True
                logger.info("session %d: rate trip after %d throttled orders",
                            s, st.throttle_count)
        return word, place

    # --- Exchange messages ---------------------------------------------------------------

    def _exchange(self, s: int, msg) -> None:
        handler = self._exchange_handlers.get(msg.TYPE)
        if handler is not None:
            handler(s, msg)

    def _unmatched(self, s: int, msg) -> None:
        self.sessions[s].unmatched += 1
        logger.debug("session %d: exchange message names nothing the gate holds: %r", s, msg)

    def _accepted(self, s: int, msg) -> None:
        entry = self._live(s, msg.user_ref_num)
        if entry is None:
            self._unmatched(s, msg)
        elif msg.order_state == DEAD:
            self._store(s, self._find(s, msg.user_ref_num), None)

    def _replaced(self, s: int, msg) -> None:
        orig = self._live(s, msg.orig_user_ref_num)
        if orig is not None:
            self._store(s, self._find(s, msg.orig_user_ref_num), None)
        slot = self._place(s, msg.user_ref_num)
        current = self.sessions[s].orders[slot] if slot is not None else None
        if current is not None:
            context = current
        elif slot is not None and orig is not None:
            context = orig
        else:
            self._unmatched(s, msg)
            return
        if msg.order_state == DEAD:
            self._store(s, slot, None)
        else:
            self._store(s, slot, OrderEntry(msg.user_ref_num, context.symbol_index,
                                            context.side, msg.quantity, msg.price))

    def _canceled(self, s: int, msg) -> None:
        entry = self._live(s, msg.user_ref_num)
        if entry is None:
            self._unmatched(s, msg)
            return
        decrement = min(msg.quantity, entry.quantity)
        self._store(s, self._find(s, msg.user_ref_num),
                    _with_quantity(entry, entry.quantity - decrement))

    def _modified(self, s: int, msg) -> None:
        entry = self._live(s, msg.user_ref_num)
        if entry is None:
            self._unmatched(s, msg)
            return
        self._store(s, self._find(s, msg.user_ref_num),
                    _with_quantity(entry, min(msg.quantity, entry.quantity), msg.side))

    def _executed(self, s: int, msg) -> None:
        entry = self._live(s, msg.user_ref_num)
        if entry is None:
            self._unmatched(s, msg)
            return
        q, px = msg.quantity, msg.price
        self._store(s, self._find(s, msg.user_ref_num),
                    _with_quantity(entry, entry.quantity - min(q, entry.quantity)))
        self._book_execution(s, entry.symbol_index, entry.side, q, px, 1)
        self.sessions[s].executions[msg.match_number % self.n_executions] = Execution(
            msg.match_number, msg.user_ref_num, entry.symbol_index, entry.side, q, px)

    def _book_execution(self, s: int, symbol_index: int, side: str, quantity: int,
                        price: int, sign: int) -> None:
        """Add (sign 1) or reverse (sign -1) an execution's position and executed notional."""
        direction = 1 if _is_buy(side) else -1
        self._position[s][symbol_index] += sign * direction * quantity
        notional = sign * quantity * price
        st = self.sessions[s]
        st.executed_notional += notional
        st.credit_used += notional
        self.gateway_credit_used += notional

    def _rejected(self, s: int, msg) -> None:
        if self.order(s, msg.user_ref_num) is None:
            self._unmatched(s, msg)
            return
        self._store(s, self._find(s, msg.user_ref_num), None)

    def _execution(self, s: int, msg) -> Execution | None:
        """The remembered execution a Broken Trade or Trade Correction names, if any."""
        x = self.sessions[s].executions[msg.match_number % self.n_executions]
        if x is None or x.match_number != msg.match_number or x.user_ref_num != msg.user_ref_num:
            self._unmatched(s, msg)
            return None
        return x

    def _broken(self, s: int, msg) -> None:
        x = self._execution(s, msg)
        if x is not None:
            self._book_execution(s, x.symbol_index, x.side, x.quantity, x.price, -1)
            self.sessions[s].executions[msg.match_number % self.n_executions] = None

    def _corrected(self, s: int, msg) -> None:
        x = self._execution(s, msg)
        if x is not None:
            self._book_execution(s, x.symbol_index, x.side, x.quantity, x.price, -1)
            self._book_execution(s, x.symbol_index, x.side, msg.quantity, msg.price, 1)
            self.sessions[s].executions[msg.match_number % self.n_executions] = Execution(
                x.match_number, x.user_ref_num, x.symbol_index, x.side, msg.quantity, msg.price)
