"""Seeded trading at the message level: a broker's sessions, a small exchange and a risk host.

:class:`Trading` plays a trading day through a shadow :class:`~wiregate.sw.model.Gate` and
returns it as a time-ordered list of :class:`Item`: model events, each with the gateway port
it arrives on. Nothing here knows the gateware; a bench turns items into port values, the
model takes the events as they are.

Who does what
-------------
- *The broker* sends client frames of one to four OUCH messages per session: Enter,
  Replace, Cancel and Modify of its live orders (sometimes of orders it does not have), a
  few Account Query, Mass Cancel, Disable and Enable, and records the parser could not
  decode (:class:`~wiregate.sw.model.Malformed`). Now and then an Account Query rides at
  the end of a frame, right behind an order (at W = 8 the two can settle in one beat: the
  ingress's *crowded* rule). A few accepted Enter orders per session are quotes, left
  resting all day: the broker never changes them and the exchange never fills them (a
  Mass Cancel or a dead Accepted may still end one). Some frames are retransmissions (recent
  messages again, ``retransmit=True``, now and then with a field changed), some end void
  (:class:`~wiregate.sw.model.FrameVoid` after the frame's messages; the broker usually
  sends the same messages again as new data, as a TCP sender does).
- *The exchange* sees only what the gate passed, from frames that ended clean, a few steps
  later, in order per session. It keeps its own book and answers: Accepted (some dead),
  Replaced, Canceled, AIQ Canceled, Modified, Rejected, and the responses the gate ignores.
  On its own it executes resting orders in part or in full, breaks and corrects some of
  those trades, and sends a few messages naming orders nobody has.
- *The risk host* heartbeats (with an occasional silence longer than the timeout), moves
  reference prices, commits new limits now and then, kills and releases at every scope
  (rate trips included), and marks sessions out of sync and back.

The limits make every reject reason of :mod:`wiregate.sw.reasons` fire: a tight token
bucket on one session, small per-order and exposure limits on one symbol and one session,
credit caps re-set at every commit a little above what is in use, a restricted symbol, one
without a reference, references that go stale, names no limits carry, a small open-order
table with runs of UserRefNums ``n_orders`` apart on a resting order's entry
(:func:`stride_ref`), UserRefNums sent twice, and orders sent before the first commit or
for a session a commit leaves out.

Message fields the gateware does not extract (ClOrdID, display, capacity ...) are a function
of the extracted ones in the messages the broker sends first; a retransmission now and then
changes one (ClOrdID or display), which only the gate's digest of the fixed part tells
apart: the model rejects such a copy (rule 9, OUT_OF_SYNC) and so must the gate.
"""

import dataclasses
import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from wiregate.sw.extract import MALFORMED
from wiregate.sw.limits import (
    OUCH_MAX_PRICE,
    OUCH_MAX_QUANTITY,
    PRICE_SCALE,
    Endpoint,
    GatewayLimits,
    Limits,
    RateLimit,
    SessionLimits,
    SymbolLimits,
)
from wiregate.sw.model import (
    SCOPES,
    ClientMessage,
    Commit,
    ExchangeMessage,
    FrameVoid,
    Gate,
    Heartbeat,
    Kill,
    Malformed,
    Release,
    Revoke,
    SessionSync,
    SetReference,
    backlog_marks,
)
from wiregate.sw.proto import ouch

__all__ = ["Item", "Port", "Sizes", "Trading", "stride_ref"]

DOLLAR = PRICE_SCALE


class Port(StrEnum):
    """Where an item enters the gateway."""

    CLIENT = "client"          # a ClientMessage
    FRAME_END = "frame_end"    # the client frame opened last ended; FrameVoid when void
    EXCHANGE = "exchange"      # an ExchangeMessage
    CONTROL = "control"        # Commit, Kill, Release, Heartbeat, SetReference, SessionSync


@dataclass(frozen=True)
class Item:
    """One thing that happens, in the order the day produced it.

    Attributes
    ----------
    port : Port
    t : int
        Microseconds; never decreases along the list.
    event : model event or None
        What the model is given; None for a frame that ended clean (the model has no event
        for it).
    session : int
        The session of a CLIENT or FRAME_END item.
    frame : int
        The client frame a CLIENT or FRAME_END item belongs to, counted from 0.
    """

    port: Port
    t: int
    event: object
    session: int = 0
    frame: int = 0


@dataclass(frozen=True)
class Sizes:
    """Table sizes shared by the shadow gate and the gateway under test."""

    n_sessions: int = 4
    n_symbols: int = 32
    n_orders: int = 16
    n_executions: int = 16
    backlog_high: int | None = None     # the drop-copy marks (model rule 11)
    backlog_low: int | None = None
    order_ways: int = 1                 # ways per open-order set (model rule 12)
    n_verdicts: int | None = None       # remembered verdicts (model rule 9); None: n_orders

    @classmethod
    def of(cls, profile) -> "Sizes":
        """The sizes and drop-copy marks of a build profile (:mod:`wiregate.sw.profiles`)."""
        high, low = backlog_marks(profile.dropcopy_depth)
        return cls(n_sessions=profile.n_sessions, n_symbols=profile.n_symbols,
                   n_orders=profile.n_orders, n_executions=profile.n_executions,
                   backlog_high=high, backlog_low=low, n_verdicts=profile.n_verdicts)

    def gate(self) -> Gate:
        """A model gate of these sizes."""
        return Gate(self.n_sessions, self.n_symbols, self.n_orders, self.n_executions,
                    n_verdicts=self.n_verdicts, backlog_high=self.backlog_high,
                    backlog_low=self.backlog_low, order_ways=self.order_ways)


@dataclass(frozen=True)
class _Symbol:
    """A symbol's limits in dollars and shares, before a commit scales and indexes them."""

    reference: int
    collar: int
    max_order_quantity: int
    max_order_notional: int
    max_long: int
    max_short: int
    restricted: bool = False


_SYMBOLS = {
    "AAPL": _Symbol(180, 5, 1_000, 150_000, 3_000, 2_000),
    "MSFT": _Symbol(400, 10, 800, 250_000, 2_000, 2_000),
    "NVDA": _Symbol(900, 30, 500, 300_000, 1_500, 1_000),
    "TSLA": _Symbol(250, 12, 600, 120_000, 1_000, 800),
    "AMD": _Symbol(160, 4, 1_000, 120_000, 2_500, 2_500),
    "SPY": _Symbol(500, 5, 2_000, 800_000, 5_000, 5_000),
    "GME": _Symbol(25, 3, 300, 6_000, 400, 300),
    "TINY": _Symbol(10, 1, 50, 400, 120, 80),            # small everything
    "BANNED": _Symbol(50, 5, 1_000, 100_000, 1_000, 1_000, restricted=True),
    "NOREF": _Symbol(0, 5, 1_000, 100_000, 1_000, 1_000),   # no reference: COLLAR
}
# Names a later commit gives to an index in place of another (the model loads them afresh).
_SPARE = {"IBM": _Symbol(190, 6, 800, 150_000, 2_000, 2_000),
          "ORCL": _Symbol(120, 4, 800, 100_000, 2_000, 2_000),
          "QQQ": _Symbol(440, 5, 2_000, 800_000, 5_000, 5_000)}
_UNKNOWN = ("ZVZZT", "XXXX", "AAPLX")      # in no limits: UNKNOWN_SYMBOL
_SPECS = _SYMBOLS | _SPARE


@dataclass(frozen=True)
class _Session:
    """A session's limits by role (session index modulo the number of roles)."""

    max_order_quantity: int
    max_order_notional: int            # dollars
    rates: tuple[RateLimit, ...]       # a commit picks one; two of them so refill_us changes
    activity: int                      # relative chance of the next frame


_ROLES = (
    _Session(5_000, 1_000_000, (RateLimit(30, 2, 0), RateLimit(30, 3, 0)), 4),
    # A tight bucket that trips the session's kill latch: RATE and KILL_SESSION.
    _Session(5_000, 1_000_000, (RateLimit(4, 25, 6), RateLimit(3, 40, 5)), 3),
    # Small per-order limits of the session itself.
    _Session(250, 40_000, (RateLimit(50, 1, 0), RateLimit(40, 2, 0)), 3),
    # Sometimes left out of the limits: NOT_LOADED.
    _Session(5_000, 1_000_000, (RateLimit(10, 5, 0), RateLimit(10, 8, 0)), 2),
)
# Dollars above what is in use, and the chance of each: mostly room for a while, sometimes
# hardly any (CREDIT_SESSION, CREDIT_GATEWAY).
_CREDIT_HEADROOM = ((20_000, 2_000_000, 20_000_000), (1, 3, 6))
_GATEWAY_HEADROOM = ((50_000, 5_000_000, 100_000_000), (1, 3, 6))
HEARTBEAT_TIMEOUT_US = 250
QUERY_BEHIND = 0.05         # fresh frames that end with an Account Query behind their messages
QUOTE_CHANCE = 0.08         # accepted Enter orders kept resting as quotes, up to a share of the
QUOTE_SHARE = 32            # open-order table: n_orders // QUOTE_SHARE per session (at least 1)
_MAX_AGES = (0, 400, 800, 1_500)                          # reference_max_age_us choices


def stride_ref(last: int, anchor: int, n_orders: int) -> int:
    """The next UserRefNum above ``last`` that is a multiple of ``n_orders`` from ``anchor``.

    A direct-mapped open-order table puts it on ``anchor``'s entry, so it is refused with
    CAPACITY while ``anchor`` rests there (issue 17); a run of them is the stride pattern a
    set-associative table (model rule 12) must take.
    """
    return last + ((anchor - last) % n_orders or n_orders)


@dataclass
class _Resting:
    """An order on the exchange's book."""

    symbol: str
    side: str
    quantity: int
    price: int


class Trading:
    """A seeded trading day (see the module docstring).

    Parameters
    ----------
    seed : int
    sizes : Sizes
        Table sizes of the shadow gate (and of the gateway the items are meant for).
    void : float
        Chance that a client frame ends void.

    Attributes
    ----------
    gate : Gate
        The shadow gate: every item applied in list order, with a
        :class:`~wiregate.sw.model.Revoke` for each order a void frame had accepted.
    items : list of Item
    """

    def __init__(self, seed: int, sizes: Sizes = Sizes(), *, void: float = 0.04):
        if sizes.n_symbols < len(_SYMBOLS):
            raise ValueError(f"n_symbols must be at least {len(_SYMBOLS)}, not "
                             f"{sizes.n_symbols}")
        self.rng = random.Random(seed)
        self.sizes = sizes
        self.void = void
        self.gate = sizes.gate()
        self.items: list[Item] = []
        self.t = 0
        self.step = 0
        self.frames = 0
        self.messages = 0
        n = sizes.n_sessions
        self._ref = [0] * n                         # highest UserRefNum the broker sent
        self._strides = [0] * n                     # numbers left in a run of stride_ref
        self._stride_anchor = [0] * n
        self._history = [deque(maxlen=24) for _ in range(n)]
        self._resend: list[list | None] = [None] * n
        self._arrivals: deque = deque()             # (due step, session, message)
        self._last_due = [0] * n
        self._book: list[dict[int, _Resting]] = [{} for _ in range(n)]
        self._quotes: list[set[int]] = [set() for _ in range(n)]    # resting all day
        self._executions: list[list] = []           # [session, ref, match, quantity, price]
        self._match = self.rng.randrange(1, 1 << 20)
        self._order_number = self.rng.randrange(1, 1 << 30)
        indices = self.rng.sample(range(sizes.n_symbols), len(_SYMBOLS))
        self._names = dict(zip(indices, _SYMBOLS, strict=True))   # index -> symbol name
        self._next_heartbeat = 0
        self._next_commit = 0

    # --- The day -------------------------------------------------------------------------

    def generate(self, n_messages: int) -> list[Item]:
        """Play until at least ``n_messages`` client messages were sent; return the items."""
        rng = self.rng
        for _ in range(rng.randint(3, 6)):          # orders before any limits: NOT_LOADED
            self._advance()
            self._client_frame(rng.randrange(self.sizes.n_sessions))
        self._commit()
        while self.messages < n_messages:
            self._advance()
            self._host()
            self._exchange()
            if rng.random() < 0.6:
                self._client_frame(self._session())
            if rng.random() < 0.008:            # an algorithm fires a run of orders: RATE
                s = self._session()
                for _ in range(rng.randint(4, 12)):
                    self._client_frame(s)
        return self.items

    def _session(self) -> int:
        n = self.sizes.n_sessions
        return self.rng.choices(range(n), [_ROLES[s % len(_ROLES)].activity
                                           for s in range(n)])[0]

    def _advance(self) -> None:
        self.step += 1
        self.t += self.rng.choice((0, 1, 1, 1, 2, 3))
        self._deliver()

    def _emit(self, port: Port, event, session: int = 0, frame: int = 0):
        """Append an item and apply its event to the shadow gate; return the verdict."""
        self.items.append(Item(port, self.t, event, session, frame))
        return self.gate.apply(event) if event is not None else None

    # --- The broker ----------------------------------------------------------------------

    def _client_frame(self, s: int) -> None:
        rng = self.rng
        frame, self.frames = self.frames, self.frames + 1
        retransmit = False
        resend, self._resend[s] = self._resend[s], None
        if resend is not None:
            planned = list(resend)
        elif self._history[s] and rng.random() < 0.05:
            retransmit = True
            planned = [self._retransmission(m) for m in
                       rng.sample(list(self._history[s]), min(len(self._history[s]),
                                                               rng.choice((1, 1, 2))))]
        else:
            planned = [None] * rng.choices((1, 2, 3, 4), (70, 20, 7, 3))[0]
            if rng.random() < QUERY_BEHIND:
                planned.append(ouch.AccountQuery())
        sent, accepted = [], []
        for k, msg in enumerate(planned):
            if msg is None:     # built now: it depends on the verdicts before it
                msg = self._client_message(s)
            verdict = self._emit(Port.CLIENT, ClientMessage(self.t, s, msg, retransmit,
                                                            opens_frame=k == 0), s, frame)
            self.messages += 1
            sent.append(msg)
            if not retransmit:
                self._history[s].append(msg)
                if verdict.accept:
                    accepted.append(msg)
                    self._maybe_quote(s, msg)
        if rng.random() < self.void:
            self._emit(Port.FRAME_END, FrameVoid(self.t, s), s, frame)
            for msg in accepted:
                if msg.TYPE in (ouch.EnterOrder.TYPE, ouch.ReplaceOrder.TYPE):
                    self.gate.apply(Revoke(self.t, s, msg.user_ref_num))
            if not retransmit and rng.random() < 0.7:
                self._resend[s] = sent
            return
        self._emit(Port.FRAME_END, None, s, frame)
        for msg in accepted:
            due = max(self.step + rng.randint(1, 6), self._last_due[s])
            self._last_due[s] = due
            self._arrivals.append((due, s, msg))

    def _retransmission(self, msg):
        """``msg`` again; now and then changed (a conflicting copy): in a field the gate
        extracts (the quantity), or in one only its digest covers (ClOrdID, display)."""
        r = self.rng.random()
        if r < 0.2 and hasattr(msg, "quantity"):
            return dataclasses.replace(msg, quantity=(msg.quantity + 1) % (1 << 32))
        if r < 0.3 and hasattr(msg, "clordid"):
            if self.rng.random() < 0.5:
                return dataclasses.replace(msg, clordid=msg.clordid[:13] + "Z")
            return dataclasses.replace(msg, display="N" if msg.display == "Y" else "Y")
        return msg

    def _client_message(self, s: int):
        kind = self.rng.choices("OUXMQCDEm", (45, 14, 14, 8, 2, 1.5, 1, 1, 3))[0]
        if kind == "m":
            return Malformed(self.rng.choice(MALFORMED))
        if kind == "Q":
            return ouch.AccountQuery()
        if kind in "CDE":
            self._ref[s] += 1
            ref = self._ref[s]
            if kind == "C":     # of a symbol the session quotes in only when all are
                quoted = {e.symbol_index for e in self.gate.sessions[s].orders
                          if e is not None and e.user_ref_num in self._quotes_of(s)}
                names = [n for i, n in self._names.items() if i not in quoted]
                return ouch.MassCancel(user_ref_num=ref, firm="FIRM", symbol=self.rng.choice(
                    names or list(self._names.values())))
            cls = ouch.DisableOrderEntry if kind == "D" else ouch.EnableOrderEntry
            return cls(user_ref_num=ref, firm="FIRM")
        return {"O": self._enter, "U": self._replace, "X": self._cancel,
                "M": self._modify}[kind](s)

    def _new_ref(self, s: int) -> int:
        rng = self.rng
        r = rng.random()
        n = self.sizes.n_orders
        live = self._live(s)
        if r < 0.04 and self._ref[s] > 0:        # sent before: DUPLICATE_REF
            return rng.randint(max(1, self._ref[s] - 5), self._ref[s])
        if self._strides[s]:
            self._strides[s] -= 1
            self._ref[s] = stride_ref(self._ref[s], self._stride_anchor[s], n)
        elif r < 0.07 and live:                 # onto a live order's slot: CAPACITY
            self._stride_anchor[s] = self._anchor(live)
            self._strides[s] = rng.choice((0, 0, 1, 3))
            self._ref[s] = stride_ref(self._ref[s], self._stride_anchor[s], n)
        else:
            self._ref[s] += rng.randint(2, 2 * n) if r < 0.1 else 1
        return self._ref[s]

    def _anchor(self, live: list) -> int:
        """The UserRefNum a run of colliding numbers follows: often the oldest live order."""
        if self.rng.random() < 0.5:
            return min(e.user_ref_num for e in live)
        return self.rng.choice(live).user_ref_num

    def _live(self, s: int) -> list:
        """The session's open orders the broker may change (its quotes aside)."""
        quotes = self._quotes_of(s)
        return [e for e in self.gate.sessions[s].orders
                if e is not None and not e.pending and e.user_ref_num not in quotes]

    def _quotes_of(self, s: int) -> set[int]:
        """The session's quotes the gate still holds (the others are forgotten)."""
        held = {e.user_ref_num for e in self.gate.sessions[s].orders if e is not None}
        self._quotes[s] &= held
        return self._quotes[s]

    def _maybe_quote(self, s: int, msg) -> None:
        """An accepted Enter becomes a quote now and then, while the session has room."""
        if msg.TYPE != ouch.EnterOrder.TYPE or self.rng.random() >= QUOTE_CHANCE:
            return
        if len(self._quotes_of(s)) < max(1, self.sizes.n_orders // QUOTE_SHARE):
            self._quotes[s].add(msg.user_ref_num)

    def _stranger(self, s: int) -> int:
        """A UserRefNum the session probably has no live order for."""
        return self.rng.randint(1, self._ref[s] + 40)

    def _enter(self, s: int):
        rng = self.rng
        ref = self._new_ref(s)
        if rng.random() < 0.04:
            name = rng.choice(_UNKNOWN)
        else:
            name = rng.choice(list(self._names.values()))
        return ouch.EnterOrder(
            user_ref_num=ref, side=rng.choices("BSTE", (50, 30, 10, 10))[0],
            quantity=self._quantity(), symbol=name, price=self._price(name),
            time_in_force=rng.choice("00003"), display="Y", capacity="A",
            intermarket_sweep="N", cross_type="N", clordid=f"S{s}R{ref}")

    def _replace(self, s: int):
        rng = self.rng
        live = self._live(s)
        if live and rng.random() < 0.85:
            orig = rng.choice(live)
            orig_ref = orig.user_ref_num
            collar = self._spec(self._names.get(orig.symbol_index)).collar * DOLLAR
            if rng.random() < 0.8:
                quantity = max(0, orig.quantity + rng.choice((-50, -20, -10, 0, 10, 20, 50,
                                                              200)))
            else:
                quantity = self._quantity()
            price = max(0, orig.price + rng.randint(-collar // 3, collar // 3))
        else:
            orig_ref = self._stranger(s)
            quantity, price = self._quantity(), self._price(rng.choice(list(_SYMBOLS)))
        ref = self._new_ref(s)
        return ouch.ReplaceOrder(orig_user_ref_num=orig_ref, user_ref_num=ref,
                                 quantity=quantity, price=min(price, OUCH_MAX_PRICE),
                                 time_in_force=rng.choice("00003"), display="Y",
                                 intermarket_sweep="N", clordid=f"S{s}R{ref}")

    def _cancel(self, s: int):
        rng = self.rng
        live = self._live(s)
        if live and rng.random() < 0.8:
            entry = rng.choice(live)
            quantity = 0 if rng.random() < 0.7 else rng.randint(0, entry.quantity - 1)
            return ouch.CancelOrder(user_ref_num=entry.user_ref_num, quantity=quantity)
        return ouch.CancelOrder(user_ref_num=self._stranger(s), quantity=0)

    def _modify(self, s: int):
        rng = self.rng
        live = self._live(s)
        if live and rng.random() < 0.8:
            entry = rng.choice(live)
            buy = entry.side == "B"
            if rng.random() < 0.06:             # across buy and sell: POSITION
                buy = not buy
            side = "B" if buy else rng.choice("STE")
            quantity = rng.randint(0, entry.quantity)
            if rng.random() < 0.08:             # grows: QUANTITY
                quantity = entry.quantity + rng.randint(1, 100)
            return ouch.ModifyOrder(user_ref_num=entry.user_ref_num, side=side,
                                    quantity=quantity)
        return ouch.ModifyOrder(user_ref_num=self._stranger(s), side=rng.choice("BSTE"),
                                quantity=rng.randint(1, 100))

    def _quantity(self) -> int:
        rng = self.rng
        r = rng.random()
        if r < 0.02:
            return 0
        if r < 0.04:
            return rng.randint(OUCH_MAX_QUANTITY + 1, (1 << 32) - 2)
        if r < 0.10:
            return rng.randint(500, 5_000)
        return 10 * rng.randint(1, 30)

    def _spec(self, name: str | None) -> _Symbol:
        return _SPECS.get(name, _SYMBOLS["AAPL"])

    def _price(self, name: str) -> int:
        rng = self.rng
        spec = self._spec(name)
        index = next((i for i, n in self._names.items() if n == name), None)
        reference = self.gate.reference(index)[0] if index is not None else 0
        reference = reference or (spec.reference or 100) * DOLLAR
        collar = spec.collar * DOLLAR
        r = rng.random()
        if r < 0.02:
            price = 0
        elif r < 0.08:                          # outside the band: COLLAR
            price = reference + rng.choice((-1, 1)) * rng.randint(collar + 1, 3 * collar)
        else:
            price = reference + rng.randint(-collar * 4 // 5, collar * 4 // 5)
        return min(max(price, 0), OUCH_MAX_PRICE)

    # --- The exchange --------------------------------------------------------------------

    def _deliver(self) -> None:
        """The exchange takes the messages due at this step, in order."""
        while self._arrivals and self._arrivals[0][0] <= self.step:
            _, s, msg = self._arrivals.popleft()
            self._arrive(s, msg)

    def _send(self, s: int, msg) -> None:
        self._emit(Port.EXCHANGE, ExchangeMessage(self.t, s, msg))

    def _next_order_number(self) -> int:
        self._order_number += 1
        return self._order_number

    def _arrive(self, s: int, msg) -> None:
        rng = self.rng
        book = self._book[s]
        if msg.TYPE == ouch.EnterOrder.TYPE:
            if rng.random() < 0.04:
                self._send(s, _rejected(msg.user_ref_num, s))
                return
            state = "D" if rng.random() < 0.05 else "L"
            self._send(s, ouch.OrderAccepted(
                timestamp=self.t, user_ref_num=msg.user_ref_num, side=msg.side,
                quantity=msg.quantity, symbol=msg.symbol, price=msg.price,
                time_in_force=msg.time_in_force, display="Y",
                order_reference_number=self._next_order_number(), capacity="A",
                intermarket_sweep="N", cross_type="N", order_state=state,
                clordid=f"S{s}R{msg.user_ref_num}"))
            if state == "L" and msg.quantity:
                book[msg.user_ref_num] = _Resting(msg.symbol, msg.side, msg.quantity, msg.price)
        elif msg.TYPE == ouch.ReplaceOrder.TYPE:
            orig = book.get(msg.orig_user_ref_num)
            if orig is None or rng.random() < 0.04:
                self._send(s, _rejected(msg.user_ref_num, s))
                return
            del book[msg.orig_user_ref_num]
            state = "D" if rng.random() < 0.04 else "L"
            self._send(s, ouch.OrderReplaced(
                timestamp=self.t, orig_user_ref_num=msg.orig_user_ref_num,
                user_ref_num=msg.user_ref_num, side=orig.side, quantity=msg.quantity,
                symbol=orig.symbol, price=msg.price, time_in_force=msg.time_in_force,
                display="Y", order_reference_number=self._next_order_number(), capacity="A",
                intermarket_sweep="N", cross_type="N", order_state=state,
                clordid=f"S{s}R{msg.user_ref_num}"))
            if state == "L" and msg.quantity:
                book[msg.user_ref_num] = _Resting(orig.symbol, orig.side, msg.quantity,
                                                  msg.price)
        elif msg.TYPE == ouch.CancelOrder.TYPE:
            order = book.get(msg.user_ref_num)
            if order is not None and msg.quantity < order.quantity:
                self._cancel_shares(s, msg.user_ref_num, order.quantity - msg.quantity)
        elif msg.TYPE == ouch.ModifyOrder.TYPE:
            order = book.get(msg.user_ref_num)
            if order is not None and msg.quantity <= order.quantity:
                self._send(s, ouch.OrderModified(timestamp=self.t, user_ref_num=msg.user_ref_num,
                                                 side=msg.side, quantity=msg.quantity))
                order.side, order.quantity = msg.side, msg.quantity
                if not order.quantity:
                    del book[msg.user_ref_num]
        elif msg.TYPE == ouch.MassCancel.TYPE:
            for ref, order in list(book.items()):
                if order.symbol == msg.symbol:
                    self._cancel_shares(s, ref, order.quantity)
            self._send(s, ouch.MassCancelResponse(timestamp=self.t, user_ref_num=msg.user_ref_num,
                                                  firm=msg.firm, symbol=msg.symbol))
        elif msg.TYPE == ouch.AccountQuery.TYPE:
            self._send(s, ouch.AccountQueryResponse(timestamp=self.t,
                                                    next_user_ref_num=self._ref[s] + 1))
        elif msg.TYPE == ouch.DisableOrderEntry.TYPE:
            self._send(s, ouch.DisableOrderEntryResponse(
                timestamp=self.t, user_ref_num=msg.user_ref_num, firm=msg.firm))
        elif msg.TYPE == ouch.EnableOrderEntry.TYPE:
            self._send(s, ouch.EnableOrderEntryResponse(
                timestamp=self.t, user_ref_num=msg.user_ref_num, firm=msg.firm))

    def _cancel_shares(self, s: int, ref: int, decrement: int) -> None:
        order = self._book[s][ref]
        if self.rng.random() < 0.15:
            self._send(s, ouch.AiqCanceled(
                timestamp=self.t, user_ref_num=ref, quantity=decrement, reason="Q",
                quantity_prevented_from_trading=decrement, execution_price=order.price,
                liquidity_flag="A", aiq_strategy="N"))
        else:
            self._send(s, ouch.OrderCanceled(timestamp=self.t, user_ref_num=ref,
                                             quantity=decrement, reason="U"))
        order.quantity -= decrement
        if not order.quantity:
            del self._book[s][ref]

    def _exchange(self) -> None:
        """What the exchange does on its own: fills, breaks, corrections and noise."""
        rng = self.rng
        resting = [(s, ref) for s, book in enumerate(self._book) for ref in book
                   if ref not in self._quotes[s]]
        if resting and rng.random() < 0.12:
            self._execute(*rng.choice(resting))
        if self._executions and rng.random() < 0.008:
            x = self._pick_execution()
            self._executions.remove(x)
            s, ref, match, _, _ = x
            self._send(s, ouch.BrokenTrade(timestamp=self.t, user_ref_num=ref,
                                           match_number=match, reason="E",
                                           clordid=f"S{s}R{ref}"))
        if self._executions and rng.random() < 0.008:
            x = self._pick_execution()
            s, ref, match, quantity, price = x
            x[3] = rng.randint(1, quantity)
            x[4] = max(1, price + rng.randint(-500, 500))
            self._send(s, ouch.TradeCorrection(timestamp=self.t, user_ref_num=ref,
                                               quantity=x[3], price=x[4], liquidity_flag="A",
                                               match_number=match, reason="E",
                                               clordid=f"S{s}R{ref}"))
        if rng.random() < 0.005:
            self._stray()
        if rng.random() < 0.01:
            self._noise()

    def _execute(self, s: int, ref: int) -> None:
        rng = self.rng
        order = self._book[s][ref]
        quantity = order.quantity if rng.random() < 0.35 else rng.randint(1, order.quantity)
        price = max(1, order.price + rng.randint(-100, 100))
        self._match += rng.randint(1, 3)
        self._send(s, ouch.OrderExecuted(timestamp=self.t, user_ref_num=ref, quantity=quantity,
                                         price=price, liquidity_flag="A",
                                         match_number=self._match))
        self._executions.append([s, ref, self._match, quantity, price])
        order.quantity -= quantity
        if not order.quantity:
            del self._book[s][ref]

    def _pick_execution(self) -> list:
        """Mostly a recent execution; sometimes an old one the gate has since forgotten."""
        if self.rng.random() < 0.7:
            return self.rng.choice(self._executions[-8:])
        return self.rng.choice(self._executions)

    def _stray(self) -> None:
        """A message naming an order or a trade the gate does not hold (``unmatched``)."""
        rng = self.rng
        s = rng.randrange(self.sizes.n_sessions)
        ref = self._ref[s] + rng.randint(100, 1000)
        msg = rng.choice((
            ouch.OrderExecuted(timestamp=self.t, user_ref_num=ref, quantity=10,
                               price=100 * DOLLAR, liquidity_flag="A", match_number=1),
            ouch.OrderCanceled(timestamp=self.t, user_ref_num=ref, quantity=10, reason="U"),
            ouch.BrokenTrade(timestamp=self.t, user_ref_num=ref, match_number=self._match + 77,
                             reason="E", clordid="STRAY"),
            _rejected(ref, s)))
        self._send(s, msg)

    def _noise(self) -> None:
        """Exchange messages the gate applies without effect."""
        rng = self.rng
        s = rng.randrange(self.sizes.n_sessions)
        ref = rng.choice(list(self._book[s]) or [self._ref[s]])
        self._send(s, rng.choice((
            ouch.SystemEvent(timestamp=self.t, event_code="S"),
            ouch.CancelPending(timestamp=self.t, user_ref_num=ref),
            ouch.CancelReject(timestamp=self.t, user_ref_num=ref),
            ouch.PriorityUpdate(timestamp=self.t, user_ref_num=ref, price=123 * DOLLAR,
                                display="Y", order_reference_number=self._next_order_number()),
            ouch.OrderRestated(timestamp=self.t, user_ref_num=ref, reason="R"))))

    # --- The risk host -------------------------------------------------------------------

    def _host(self) -> None:
        rng = self.rng
        gate = self.gate
        if self.t >= self._next_heartbeat:
            self._emit(Port.CONTROL, Heartbeat(self.t))
            self._next_heartbeat = self.t + rng.randint(40, 120)
            if rng.random() < 0.1:          # the host goes quiet: HEARTBEAT
                self._next_heartbeat += HEARTBEAT_TIMEOUT_US
        if self.step >= self._next_commit:
            self._commit()
        if rng.random() < 0.04:
            self._set_reference()
        if rng.random() < 0.006:
            scope = rng.choices(SCOPES, (2, 2, 3))[0]
            self._emit(Port.CONTROL, Kill(self.t, scope, self._scope_index(scope)))
        if gate.kill_gateway and rng.random() < 0.05:
            self._emit(Port.CONTROL, Release(self.t, "gateway"))
        for scope, latches in (("session", gate.kill_session), ("symbol", gate.kill_symbol)):
            for index, latched in enumerate(latches):
                if latched and rng.random() < 0.03:
                    self._emit(Port.CONTROL, Release(self.t, scope, index))
        for s, st in enumerate(gate.sessions):
            if st.in_sync and rng.random() < 0.001:
                self._emit(Port.CONTROL, SessionSync(self.t, s, False))
            elif not st.in_sync and rng.random() < 0.05:
                self._emit(Port.CONTROL, SessionSync(self.t, s, True))

    def _scope_index(self, scope: str) -> int:
        if scope == "session":
            return self.rng.randrange(self.sizes.n_sessions)
        if scope == "symbol":
            return self.rng.choice(list(self._names))
        return 0

    def _set_reference(self) -> None:
        rng = self.rng
        index = rng.choice(list(self._names))
        spec = self._spec(self._names[index])
        current = self.gate.reference(index)[0] or (spec.reference or 100) * DOLLAR
        collar = spec.collar * DOLLAR
        r = rng.random()
        if r < 0.03:
            price = 0
        elif r < 0.08:                      # a jump: resting prices fall outside the band
            price = current + rng.choice((-1, 1)) * rng.randint(collar, 3 * collar)
        else:
            price = current + rng.randint(-collar // 2, collar // 2)
        self._emit(Port.CONTROL, SetReference(self.t, index, min(max(price, 0), 1 << 31)))

    def _commit(self) -> None:
        self._emit(Port.CONTROL, Commit(self.t, self._limits()))
        self._next_commit = self.step + self.rng.randint(250, 500)

    def _limits(self) -> Limits:
        """New limits: credit a little above what is in use, symbols dropped and renamed."""
        rng = self.rng
        gate = self.gate
        if rng.random() < 0.15:             # an index changes hands
            free = [name for name in _SPARE if name not in self._names.values()]
            plain = [i for i, name in self._names.items() if name not in ("BANNED", "NOREF",
                                                                          "TINY")]
            if free and plain:
                self._names[rng.choice(plain)] = rng.choice(free)
        dropped = {i for i in self._names if rng.random() < 0.04}
        symbols = []
        for index, name in sorted(self._names.items()):
            if index in dropped:
                continue
            spec = _SPECS[name]
            grow, shrink = rng.choice((1, 1, 1, 2)), rng.choice((1, 1, 1, 2))
            symbols.append(SymbolLimits(
                index=index, symbol=name, reference_price=spec.reference * DOLLAR,
                collar=spec.collar * DOLLAR, max_order_quantity=spec.max_order_quantity,
                max_order_notional=spec.max_order_notional * DOLLAR,
                max_long=spec.max_long * grow // shrink,
                max_short=spec.max_short * grow // shrink,
                restricted=spec.restricted or rng.random() < 0.03))
        sessions = []
        for s in range(self.sizes.n_sessions):
            role = _ROLES[s % len(_ROLES)]
            if s % len(_ROLES) == 3 and rng.random() < 0.25:
                continue
            used = gate.sessions[s].credit_used
            sessions.append(SessionLimits(
                index=s, name=f"s{s}", client=Endpoint(0x0A010001 + s, 40001 + s),
                exchange=Endpoint(0x0A020001, 15000),
                max_order_quantity=role.max_order_quantity,
                max_order_notional=role.max_order_notional * DOLLAR,
                credit=used + rng.choices(*_CREDIT_HEADROOM)[0] * DOLLAR,
                rate=rng.choice(role.rates)))
        gateway = GatewayLimits(
            credit=gate.gateway_credit_used + rng.choices(*_GATEWAY_HEADROOM)[0] * DOLLAR,
            heartbeat_timeout_us=HEARTBEAT_TIMEOUT_US,
            reference_max_age_us=rng.choice(_MAX_AGES))
        return Limits(gateway, tuple(sessions), tuple(symbols))


def _rejected(ref: int, s: int) -> ouch.OrderRejected:
    return ouch.OrderRejected(timestamp=0, user_ref_num=ref, reason=0x1F, clordid=f"S{s}R{ref}")
