"""The daemon's software checks: risk the gateware cannot see, computed from the drop copy.

Each check reads every drop-copy record (:class:`~wiregate.sw.dropcopy.Record`) in sequence
order through :meth:`observe` and returns the :class:`~wiregate.sw.daemon.actions.Action`
its configuration names whenever it fires. The daemon carries the action out through the
gateway's own controls (kill a session, a symbol or the gateway, tighten a limit with a
re-commit) and records it. ``build_checks`` builds them from the ``checks:`` section of the
daemon's configuration; docs/daemon-checks.md documents each with a worked example.

What the checks see
-------------------
The drop copy carries an order's symbol on its Enter only, and its side on the Enter and
the exchange's Order Replaced only (not on a Replace or an Order Executed), so every check
keeps :class:`_Orders`: the symbol, side, open quantity and price of each order the gate
accepted, by (session, UserRefNum), followed through the exchange's Order Accepted (dead),
Order Replaced, Canceled, AIQ Canceled, Executed and Rejected and the gate's REVOKE, and
forgotten when it leaves the book. From it each record becomes at most two plain events:

- :class:`Order`, for the verdict on every Enter ``O`` and Replace ``U`` (retransmissions
  excluded: they change nothing), accepted or rejected, with the exposure it adds (a
  Replace: ``max(0, q2 - q1)`` shares and ``max(0, q2*p2 - q1*p1)`` notional, as in the
  model's rule 5);
- :class:`Fill`, for an Order Executed ``E`` (``sign`` +1), the reversal of a Broken Trade
  ``B`` (-1) and a Trade Correction ``F`` (the old execution -1, the corrected one +1).

An execution of an order the host never saw accepted (the daemon started mid-day) has no
symbol or side: it is counted in ``unmatched`` and no check sees it.

Firing
------
A limit check fires on the record that takes its value above the limit, and then stays
quiet for that key (a symbol, a session, the gateway) until the value is back at or below
the limit: one action per crossing, not one per record. The locate check fires on every
short sale it finds uncovered (each is a separate breach).

Money is in price units (1/10,000 dollar) inside, dollars in the configuration; time is the
records' ``time_us`` (the gateway's timebase), so a replayed day fires exactly as live.
"""

import logging
import re
from abc import ABC, abstractmethod
from collections import OrderedDict, defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from wiregate.sw.daemon.actions import Action
from wiregate.sw.dropcopy import Control, Kind, Record
from wiregate.sw.limits import PRICE_SCALE, format_dollars, format_duration, parse_duration

__all__ = [
    "ACTIONS",
    "CHECKS",
    "CheckConfigError",
    "Concentration",
    "Fill",
    "GrossNotional",
    "Locate",
    "NotionalVelocity",
    "Order",
    "OrderVelocity",
    "RepeatedExecutions",
    "Revoked",
    "build_checks",
]

log = logging.getLogger(__name__)

ACTIONS = ("alert", "kill_session", "kill_symbol", "kill_gateway", "tighten")
_SELL = "STE"                       # OUCH 5.0 sell sides: sell, sell short, short exempt
_EXECUTIONS_KEPT = 1 << 16          # executions remembered for a Broken Trade or Correction


class CheckConfigError(ValueError):
    """An entry of the ``checks:`` section is wrong; the message names it and the key."""


# --- Events -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Order:
    """An Enter or Replace the gate judged.

    Attributes
    ----------
    t : int
        Microseconds (the record's ``time_us``).
    session : int
    symbol : str or None
        None for a Replace of an order the host never saw.
    side : str or None
    quantity, price : int
        The message's (a Replace: the replacing order's total).
    accepted : bool
    added_quantity, added_notional : int
        The exposure it adds (0 when rejected).
    """

    t: int
    session: int
    symbol: str | None
    side: str | None
    quantity: int
    price: int
    accepted: bool
    added_quantity: int
    added_notional: int


@dataclass(frozen=True)
class Fill:
    """An execution booked (``sign`` +1) or taken back (-1).

    Attributes
    ----------
    t : int
        Microseconds (the record's ``time_us``).
    session : int
    symbol, side : str
        The order's.
    quantity, price : int
        The execution's (a correction: the corrected ones).
    sign : int
    """

    t: int
    session: int
    symbol: str
    side: str
    quantity: int
    price: int
    sign: int


@dataclass(frozen=True)
class Revoked:
    """An accepted order withdrawn by the undo of a void frame (REVOKE); it takes back the
    shares its acceptance added (a Replace: its increase)."""

    t: int
    session: int
    symbol: str
    side: str
    added_quantity: int


def _symbol(rec: Record) -> str:
    return rec.symbol.decode("latin-1").rstrip(" ")


class _Orders:
    """The accepted orders and recent executions; turns records into events.

    Attributes
    ----------
    unmatched : int
        Exchange records naming an order or execution the host does not hold.
    """

    def __init__(self):
        # (session, UserRefNum) -> [symbol, side, open quantity, price, shares it added]
        self._orders: dict[tuple[int, int], list] = {}
        self._executions: OrderedDict = OrderedDict()       # (session, match) -> Fill
        self.unmatched = 0
        self._last: tuple[Record | None, list] = (None, [])

    def events(self, rec: Record) -> list:
        """The record's events. Checks built together share one book: the first check to
        see a record turns it into events, the others get the same (the book holds the
        record, so no other record can have its identity)."""
        last, events = self._last
        if rec is not last:
            events = self._events(rec)
            self._last = (rec, events)
        return events

    def _events(self, rec: Record) -> list:
        if rec.kind == Kind.VERDICT:
            if rec.retransmit or rec.msg_type not in (ord("O"), ord("U")):
                return []
            return [self._verdict(rec)]
        if rec.kind == Kind.EXCHANGE:
            return self._exchange(rec)
        if rec.control == Control.REVOKE:
            order = self._orders.pop((rec.session, rec.user_ref_num), None)
            if order is not None:
                return [Revoked(rec.time_us, rec.session, order[0], order[1], order[4])]
        return []

    def _verdict(self, rec: Record) -> Order:
        q, p, s = rec.quantity, rec.price, rec.session
        if rec.msg_type == ord("O"):
            symbol, side, q1, p1 = _symbol(rec), chr(rec.side), 0, 0
        else:
            symbol, side, q1, p1, _ = self._orders.get((s, rec.orig_user_ref_num),
                                                       (None, None, 0, 0, 0))
        dq, dn = (max(0, q - q1), max(0, q * p - q1 * p1)) if rec.accept else (0, 0)
        if rec.accept and symbol is not None:
            self._orders[(s, rec.user_ref_num)] = [symbol, side, q, p, dq]
        return Order(rec.time_us, s, symbol, side, q, p, bool(rec.accept), dq, dn)

    def _exchange(self, rec: Record) -> list:
        key, kind = (rec.session, rec.user_ref_num), chr(rec.msg_type)
        if kind == "U":     # Order Replaced: the exchange's word, but no symbol in the record
            original = self._orders.pop((rec.session, rec.orig_user_ref_num), None)
            replacing = self._orders.pop(key, None) or original
            if replacing is None:
                self.unmatched += 1
            elif rec.quantity and rec.order_state != ord("D"):
                self._orders[key] = [replacing[0], chr(rec.side), rec.quantity, rec.price,
                                     0]      # confirmed: the gate can no longer revoke it
            return []
        if kind == "A":
            if rec.order_state == ord("D"):         # accepted dead: never on the book
                self._orders.pop(key, None)
            return []
        if kind in "BF":
            old = self._executions.pop((rec.session, rec.match_number), None)
            if old is None:
                self.unmatched += 1
                return []
            out = [Fill(rec.time_us, old.session, old.symbol, old.side, old.quantity,
                        old.price, -1)]
            if kind == "F":
                out.append(self._book(rec, old.symbol, old.side))
            return out
        order = self._orders.get(key)
        if kind not in "ECDJ":
            return []
        if order is None:
            self.unmatched += 1
            return []
        if kind == "J":
            del self._orders[key]
            return []
        order[2] -= min(rec.quantity, order[2])
        if order[2] == 0:
            del self._orders[key]
        return [self._book(rec, order[0], order[1])] if kind == "E" else []  # C, D: canceled

    def _book(self, rec: Record, symbol: str, side: str) -> Fill:
        fill = Fill(rec.time_us, rec.session, symbol, side, rec.quantity, rec.price, 1)
        self._executions[(rec.session, rec.match_number)] = fill
        if len(self._executions) > _EXECUTIONS_KEPT:
            self._executions.popitem(last=False)
        return fill


# --- Configuration values -----------------------------------------------------------------

_REQUIRED = object()


def _dollars(value) -> int:
    """Dollars (a number or decimal text such as 5e7 or 1_000.50) to price units, above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected dollars, got {type(value).__name__}")
    try:
        units = Decimal(str(value).replace("_", "")) * PRICE_SCALE
    except InvalidOperation:
        raise ValueError(f"expected dollars such as 5e7 or 1_000.50, got {value!r}") from None
    if units != units.to_integral_value() or units <= 0:
        raise ValueError(f"{value!r} is not a positive whole number of $0.0001")
    return int(units)


def _count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number above 0, got {value!r}")
    return value


def _duration(value) -> int:
    if not isinstance(value, str):
        raise ValueError(f"expected a duration with its unit such as 500ms, got {value!r}")
    us = parse_duration(value)
    if us <= 0:
        raise ValueError(f"a window must be longer than 0, got {value!r}")
    return us


def _per(value) -> str:
    if value not in ("gateway", "session", "symbol"):
        raise ValueError(f"expected gateway, session or symbol, got {value!r}")
    return value


def _shares(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of shares, 0 or more, got {value!r}")
    return value


def _locates(value) -> dict[str, int]:
    """symbol -> shares located (an empty mapping: no locate for any symbol)."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of symbol to shares located, got {value!r}")
    out = {}
    for symbol, shares in value.items():
        symbol = str(symbol)
        if not 1 <= len(symbol) <= 8 or not all(" " < c <= "~" for c in symbol):
            raise ValueError(f"symbol {symbol!r}: 1 to 8 printable ASCII characters")
        try:
            out[symbol] = _shares(shares)
        except ValueError as error:
            raise ValueError(f"{symbol}: {error}") from None
    return out


def _short_sides(value) -> str:
    if not isinstance(value, str) or not value or any(c not in "TE" for c in value):
        raise ValueError(f"expected short-sale sides T and/or E (such as TE), got {value!r}")
    return value


# --- The checks ---------------------------------------------------------------------------

class _Check(ABC):
    """What every check shares: its name, its action, the order book, the latch per key.

    Every check takes ``name`` (str, what its actions carry as ``check``) and ``action``
    (one of :data:`ACTIONS`) first, then the parameters its docstring lists, as
    :func:`build_checks` converts them (money in price units, durations in microseconds).
    ``orders`` is its order book (:func:`build_checks` gives the checks one together).

    Subclasses set ``PARAMETERS`` (key -> (converter, default or _REQUIRED)), ``carries``
    (the kill scopes their firings always name: "session", "symbol") and ``_subject`` (what
    an alert or tighten names: "session", "symbol" or None for the gateway), and implement
    ``_on(event)`` returning a list of (session, symbol, detail) firings.
    """

    PARAMETERS: dict = {}
    carries: frozenset = frozenset({"session", "symbol"})
    _subject: str | None = None

    def __init__(self, name: str, action: str):
        self.name = name
        self.action = action
        self.tighten = ""       # "FIELD=VALUE" a tighten action leads its detail with
        self.orders = _Orders()
        self._over: set = set()

    def observe(self, record: Record) -> list[Action]:
        """The actions this record makes the check ask for (usually none)."""
        out = []
        for event in self.orders.events(record):
            for session, symbol, detail in self._on(event):
                if self.tighten:
                    detail = f"{self.tighten}; {detail}"
                out.append(Action(self.name, self.action, self._target(session, symbol),
                                  detail))
        return out

    def _target(self, session: int | None, symbol: str | None) -> str | None:
        scope = {"kill_session": "session", "kill_symbol": "symbol",
                 "kill_gateway": None}.get(self.action, self._subject)
        if scope == "session":
            return str(session)
        if scope == "symbol":
            return symbol
        return None

    def _crossed(self, key, over: bool) -> bool:
        """True when ``key`` goes over now (it was not over at its previous value)."""
        if not over:
            self._over.discard(key)
            return False
        if key in self._over:
            return False
        self._over.add(key)
        return True

    @abstractmethod
    def _on(self, event) -> list:
        """The firings of one event: (session, symbol, detail) tuples."""


class _Positions:
    """Net position per symbol across sessions, its last execution price, and the gross
    notional: the sum over symbols of ``|position| * last price``."""

    def __init__(self):
        self.position: dict[str, int] = defaultdict(int)
        self.last_price: dict[str, int] = {}
        self.exposure: dict[str, int] = defaultdict(int)
        self.gross = 0

    def book(self, fill: Fill) -> int:
        """Book ``fill``; return the symbol's exposure after it."""
        signed = fill.quantity if fill.side not in _SELL else -fill.quantity
        self.position[fill.symbol] += fill.sign * signed
        if fill.sign > 0:
            self.last_price[fill.symbol] = fill.price
        exposure = abs(self.position[fill.symbol]) * self.last_price.get(fill.symbol, 0)
        self.gross += exposure - self.exposure[fill.symbol]
        self.exposure[fill.symbol] = exposure
        return exposure


class GrossNotional(_Check):
    """Gateway-wide gross notional: ``sum over symbols |net position| * last price``.

    The net position of a symbol sums every session's executions (buys up, sells down); the
    price is the symbol's last execution price. Fires when the sum goes above ``limit``;
    the firing names the execution that took it there (its session and symbol).

    Parameters
    ----------
    limit : dollars
    """

    PARAMETERS = {"limit": (_dollars, _REQUIRED)}

    def __init__(self, name: str, action: str, limit: int):
        super().__init__(name, action)
        self.limit = limit
        self.positions = _Positions()

    def _on(self, event) -> list:
        if not isinstance(event, Fill):
            return []
        self.positions.book(event)
        gross = self.positions.gross
        if self._crossed(None, gross > self.limit):
            return [(event.session, event.symbol,
                     f"gross notional {format_dollars(gross)} above "
                     f"{format_dollars(self.limit)} after session {event.session} "
                     f"{'bought' if event.side not in _SELL else 'sold'} {event.quantity} "
                     f"{event.symbol} at {format_dollars(event.price)}")]
        return []


class Concentration(GrossNotional):
    """Concentration in one symbol across sessions: ``|net position| * last price``.

    Fires when one symbol's exposure (as in :class:`GrossNotional`, for that symbol alone)
    goes above ``limit``; alert and tighten name the symbol.

    Parameters
    ----------
    limit : dollars
    """

    _subject = "symbol"

    def _on(self, event) -> list:
        if not isinstance(event, Fill):
            return []
        exposure = self.positions.book(event)
        position = self.positions.position[event.symbol]
        if self._crossed(event.symbol, exposure > self.limit):
            return [(event.session, event.symbol,
                     f"{event.symbol}: net position {position:+} across sessions, "
                     f"{format_dollars(exposure)} at {format_dollars(event.price)}, above "
                     f"{format_dollars(self.limit)}")]
        return []


class _Window:
    """Sums of amounts over a sliding window of ``window_us``, per key: an event at ``t``
    counts while the time is below ``t + window_us``."""

    def __init__(self, window_us: int):
        self.window_us = window_us
        self._events: dict = defaultdict(deque)
        self._sums: dict = defaultdict(int)

    def add(self, key, t: int, amount: int) -> int:
        """Add ``amount`` at ``t``; return the key's sum over ``(t - window_us, t]``."""
        events = self._events[key]
        while events and events[0][0] <= t - self.window_us:
            self._sums[key] -= events.popleft()[1]
        events.append((t, amount))
        self._sums[key] += amount
        return self._sums[key]


class OrderVelocity(_Check):
    """Orders per sliding window: every Enter and Replace the gate judged, accepted or not
    (a flood of rejects is still a runaway), counted over the last ``window``.

    Fires when the count goes above ``limit``, gateway-wide or ``per`` session or symbol (a
    Replace of an order the host never saw has no symbol and counts only for its session and
    the gateway).

    Parameters
    ----------
    limit : int
    window : duration
    per : "gateway", "session" or "symbol"
    """

    PARAMETERS = {"limit": (_count, _REQUIRED), "window": (_duration, _REQUIRED),
                  "per": (_per, "gateway")}
    _what = "orders"

    def __init__(self, name: str, action: str, limit: int, window: int, per: str):
        super().__init__(name, action)
        self.limit, self.per = limit, per
        self._window = _Window(window)
        self._subject = None if per == "gateway" else per
        self.carries = frozenset({"session"} | ({"symbol"} if per == "symbol" else set()))

    def _amount(self, order: Order) -> int:
        return 1

    def _format(self, amount: int) -> str:
        return str(amount)

    def _on(self, event) -> list:
        if not isinstance(event, Order):
            return []
        key = {"gateway": None, "session": event.session, "symbol": event.symbol}[self.per]
        if self.per == "symbol" and key is None:
            return []
        total = self._window.add(key, event.t, self._amount(event))
        if self._crossed(key, total > self.limit):
            where = "" if key is None else f" in {self.per} {key}"
            return [(event.session, event.symbol,
                     f"{self._format(total)} {self._what} within "
                     f"{format_duration(self._window.window_us)}{where}, above "
                     f"{self._format(self.limit)}")]
        return []


class NotionalVelocity(OrderVelocity):
    """Notional per sliding window: the notional the accepted Enters and Replaces added
    (:attr:`Order.added_notional`), summed over the last ``window``.

    Parameters
    ----------
    limit : dollars
    window : duration
    per : "gateway", "session" or "symbol"
    """

    PARAMETERS = {**OrderVelocity.PARAMETERS, "limit": (_dollars, _REQUIRED)}
    _what = "of new notional"

    def _amount(self, order: Order) -> int:
        return order.added_notional

    def _format(self, amount: int) -> str:
        return format_dollars(amount)


class RepeatedExecutions(_Check):
    """A runaway algorithm: ``count`` executions of one session on one symbol and side
    within ``window``. Fires on the ``count``-th; alert and tighten name the session.

    Parameters
    ----------
    count : int
    window : duration
    """

    PARAMETERS = {"count": (_count, _REQUIRED), "window": (_duration, _REQUIRED)}
    _subject = "session"

    def __init__(self, name: str, action: str, count: int, window: int):
        super().__init__(name, action)
        self.count = count
        self._window = _Window(window)

    def _on(self, event) -> list:
        if not isinstance(event, Fill) or event.sign < 0:
            return []
        key = (event.session, event.symbol, event.side)
        seen = self._window.add(key, event.t, 1)
        if self._crossed(key, seen >= self.count):
            return [(event.session, event.symbol,
                     f"session {event.session}: {seen} executions on {event.symbol} side "
                     f"{event.side} within {format_duration(self._window.window_us)} "
                     f"(limit {self.count})")]
        return []


class Locate(_Check):
    """Short sales need a locate: the accepted short sales (``sides``, by default sell
    short ``T`` and short exempt ``E``) of every session in a symbol must stay within the
    shares ``locates`` lists for it; a symbol not listed has none.

    Fires on every accepted short sale that takes the symbol's short quantity above its
    locate; a revoked order gives back the shares it added. Alert and tighten name the symbol.

    Parameters
    ----------
    locates : mapping of symbol to shares
    sides : str
    """

    PARAMETERS = {"locates": (_locates, _REQUIRED), "sides": (_short_sides, "TE")}
    _subject = "symbol"

    def __init__(self, name: str, action: str, locates: dict[str, int], sides: str):
        super().__init__(name, action)
        self.locates, self.sides = locates, sides
        self.used: dict[str, int] = defaultdict(int)

    def _on(self, event) -> list:
        if isinstance(event, Revoked) and event.side in self.sides:
            self.used[event.symbol] -= event.added_quantity
            return []
        if not isinstance(event, Order) or not event.added_quantity or event.side is None \
                or event.side not in self.sides:
            return []       # a Replace of an order never seen: no side, no symbol to judge
        self.used[event.symbol] += event.added_quantity
        located = self.locates.get(event.symbol)
        if located is not None and self.used[event.symbol] <= located:
            return []
        have = "no locate" if located is None else f"a locate for {located}"
        return [(event.session, event.symbol,
                 f"short sale of {event.quantity} {event.symbol} by session "
                 f"{event.session}: {self.used[event.symbol]} sold short, {have}")]


CHECKS = {
    "gross_notional": GrossNotional,
    "concentration": Concentration,
    "order_velocity": OrderVelocity,
    "notional_velocity": NotionalVelocity,
    "repeated_executions": RepeatedExecutions,
    "locate": Locate,
}
_ENTRY_KEYS = ("check", "action", "name", "tighten")
_TIGHTEN = re.compile(r"\w+=\d+")


def _build(where: str, entry) -> _Check:
    if not isinstance(entry, dict):
        raise CheckConfigError(f"{where}: expected a mapping with check: and action:, got "
                               f"{entry!r}")
    kind = entry.get("check")
    if kind not in CHECKS:
        raise CheckConfigError(f"{where}: check {kind!r} is not one of {', '.join(CHECKS)}")
    cls = CHECKS[kind]
    where = f"{where} ({kind})"
    action = entry.get("action")
    if action not in ACTIONS:
        raise CheckConfigError(f"{where}: action {action!r} is not one of "
                               f"{', '.join(ACTIONS)}")
    name = entry.get("name", kind)
    if not isinstance(name, str) or not name:
        raise CheckConfigError(f"{where}: name must be text, got {name!r}")
    unknown = [key for key in entry if key not in _ENTRY_KEYS and key not in cls.PARAMETERS]
    if unknown:
        raise CheckConfigError(f"{where}: unknown key {unknown[0]!r} (known: "
                               f"{', '.join((*_ENTRY_KEYS, *cls.PARAMETERS))})")
    values = {}
    for key, (convert, default) in cls.PARAMETERS.items():
        if key not in entry:
            if default is _REQUIRED:
                raise CheckConfigError(f"{where}: {key} is required")
            values[key] = default
            continue
        try:
            values[key] = convert(entry[key])
        except (TypeError, ValueError) as error:
            raise CheckConfigError(f"{where}.{key}: {error}") from None
    check = cls(name, action, **values)
    tighten = entry.get("tighten")
    if (action == "tighten") != (tighten is not None):
        raise CheckConfigError(f"{where}: tighten (FIELD=VALUE, the limit to lower and its "
                               "new value in limit-file units) goes with action tighten, "
                               "and only with it")
    if tighten is not None:
        if not isinstance(tighten, str) or not _TIGHTEN.fullmatch(tighten.replace(" ", "")):
            raise CheckConfigError(f"{where}.tighten: expected FIELD=VALUE such as "
                                   f"max_long=0, got {tighten!r}")
        check.tighten = tighten.replace(" ", "")
    scope = {"kill_session": "session", "kill_symbol": "symbol"}.get(action)
    if scope is not None and scope not in check.carries:
        raise CheckConfigError(f"{where}: action {action} needs a {scope}, and this check "
                               f"does not always name one (it names: "
                               f"{', '.join(sorted(check.carries)) or 'nothing'})")
    return check


def build_checks(section: list[dict] | None) -> list:
    """The checks of the configuration's ``checks:`` section, in order.

    Each entry is a mapping: ``check`` (one of :data:`CHECKS`), ``action`` (one of
    :data:`ACTIONS`), an optional ``name`` (default: the check's; unique) and the check's
    parameters. The checks share one order book, so give each of them every record, in
    sequence order.

    Raises
    ------
    CheckConfigError
        Naming the entry (``checks[2] (locate)``) and the key: not a list, an unknown check,
        action or key, a missing or bad parameter, a duplicate name, or a kill scope the
        check cannot name.
    """
    if section is None:
        return []
    if not isinstance(section, list):
        raise CheckConfigError(f"checks: expected a list of checks, got {section!r}")
    checks = [_build(f"checks[{k}]", entry) for k, entry in enumerate(section)]
    orders = _Orders()
    for check in checks:
        check.orders = orders       # one book for all: see _Orders.events
    names = [check.name for check in checks]
    for k, name in enumerate(names):
        if name in names[:k]:
            raise CheckConfigError(f"checks[{k}]: name {name!r} is already used by "
                                   f"checks[{names.index(name)}]; give each a name:")
    return checks
