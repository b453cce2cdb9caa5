"""Limit files: the risk officer's YAML, validated and turned into integer limits.

All money is an integer count of 1/10,000 dollar (OUCH's 4 implied decimals): ``PRICE_SCALE``
units per dollar. All times are integer microseconds, the gateway's timebase. No float ever
touches a limit: dollar amounts are parsed from their decimal text.

The loader below the data classes reads the YAML *node tree* (``yaml.compose``), never
constructed Python values: every scalar is taken from the text the officer wrote, so YAML's
float parsing cannot round a dollar amount, ``ON`` stays a ticker rather than a boolean, and
every node keeps its line for the error message. The accepted keys are declared once, in
``SCHEMA``; the walker, the key-completeness test of ``docs/limits.md`` and the error
messages all derive from it. ``docs/limits.md`` documents the format.
"""

import difflib
import ipaddress
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

PRICE_SCALE = 10_000          # OUCH prices carry 4 implied decimals
OUCH_MAX_QUANTITY = 999_999   # OUCH: quantity must be below 1,000,000
OUCH_MAX_PRICE = 1_999_999_900  # $199,999.9900, the largest valid OUCH 5.0 price (fits 31 bits)


@dataclass(frozen=True)
class Endpoint:
    """An IPv4 address and TCP port; ``ip`` is the address as a 32-bit integer."""

    ip: int
    port: int


@dataclass(frozen=True)
class RateLimit:
    """Per-session token bucket for new-risk messages (Enter, Replace).

    The bucket holds at most ``burst`` tokens and gains one every ``refill_us``
    microseconds. An order that finds it empty is rejected (RATE) and the session is
    *throttled*; ``trip_after`` consecutive throttled rejects set the session's kill latch
    (0 disables the automatic trip).
    """

    burst: int
    refill_us: int
    trip_after: int


@dataclass(frozen=True)
class SessionLimits:
    """One OUCH session (one TCP connection) and its limits.

    ``index`` is the session's position in the file (0-based): the hardware's session index.
    """

    index: int
    name: str
    client: Endpoint
    exchange: Endpoint
    max_order_quantity: int    # shares per order
    max_order_notional: int    # price units per order (quantity x price)
    credit: int                # price units: working + executed gross notional cap
    rate: RateLimit


@dataclass(frozen=True)
class SymbolLimits:
    """One symbol's limits; missing fields in the file were filled from ``defaults``.

    ``index`` is the symbol's position in the file (0-based): the hardware's symbol index.
    ``reference_price`` 0 means no reference (the collar rejects every order: fail closed).
    ``collar`` is the absolute band in price units: a price p passes when
    ``reference_price - collar <= p <= reference_price + collar``. A band written as a
    percentage in the file is converted here, rounded down (tighter), once.
    ``max_long`` / ``max_short`` bound the projected position per (session, symbol).
    """

    index: int
    symbol: str                # 1..8 ASCII characters, no padding
    reference_price: int
    collar: int
    max_order_quantity: int
    max_order_notional: int
    max_long: int
    max_short: int
    restricted: bool


@dataclass(frozen=True)
class GatewayLimits:
    """Limits that cover the whole gateway."""

    credit: int                  # price units: gross notional cap over all sessions
    heartbeat_timeout_us: int    # host silent longer than this fails closed
    reference_max_age_us: int    # a reference price older than this is stale; 0 = never


@dataclass(frozen=True)
class Limits:
    """A whole validated limit file."""

    gateway: GatewayLimits
    sessions: tuple[SessionLimits, ...]
    symbols: tuple[SymbolLimits, ...]


# ------------------------------------------------------------------------------------------
# Loading and validation

log = logging.getLogger(__name__)

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_TRUE_WORDS = ("true", "yes", "on")       # PyYAML's YAML 1.1 booleans, any case

# Digits only in ASCII: ``\d`` would also accept other scripts' digits, which ``int`` reads.
_DECIMAL = re.compile(r"(-?)([0-9](?:_?[0-9])*)(?:\.([0-9]+))?")
_DURATION = re.compile(r"(-?[0-9](?:_?[0-9])*(?:\.[0-9]+)?)\s*(s|ms|us|µs)")
_DURATION_PLACES = {"s": 6, "ms": 3, "us": 0, "µs": 0}   # decimal places down to 1 us
_PRICE_DECIMALS = 4                                      # PRICE_SCALE == 10**4
_PERCENT_SCALE = 10**4                                   # percentages kept to 4 decimals
_NAME_MAX = 32


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a limit file, located like a compiler error.

    Attributes
    ----------
    file : str
        The file name as given (``"<string>"`` for text passed to :func:`parse_limits`).
    line : int
        1-based line of the offending YAML node; 0 when the problem is the file as a whole
        (it cannot be read).
    field : str
        Path of the offending key, e.g. ``symbols[3].max_long`` (list indexes are 0-based,
        the hardware's table indexes); empty when no key applies (a YAML syntax error).
    message : str
        What is wrong, in words a risk officer can act on.
    """

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class LimitsError(ValueError):
    """A limit file that cannot be used; nothing from it may be pushed.

    Attributes
    ----------
    problems : list of Problem
        Every problem found in the file, in line order.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Key:
    """One key a limit file may hold: the single declaration the loader and docs follow.

    Attributes
    ----------
    name : str
        The key as written in the file.
    kind : str
        What its value is: ``dollars``, ``shares``, ``count``, ``duration``, ``collar``,
        ``bool``, ``symbol``, ``name``, ``endpoint``, ``mapping`` or ``list``.
    required : bool
        Must be present. For a symbol key that ``defaults`` may supply, present in the
        symbol or in ``defaults``.
    minimum, maximum : int or None
        Inclusive bounds in the stored unit (price units, microseconds, shares).
    why_maximum : str
        What the maximum is, for the message when it is exceeded.
    default : object
        Value of an optional key that is absent (and not supplied by ``defaults``).
    defaultable : bool
        A symbol key that the ``defaults`` block may supply.
    """

    name: str
    kind: str
    required: bool = True
    minimum: int | None = None
    maximum: int | None = None
    why_maximum: str = ""
    default: Any = None
    defaultable: bool = False


_OUCH_QTY = "the OUCH maximum quantity"
_OUCH_PRICE = "the largest OUCH price"
# The gateway's limit tables hold these in 32-bit and 64-bit fields (sw/regmap.py); a value
# that does not fit is refused here, where the message can name the file and line.
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
# The message-rate fields are narrower than a word (sw/regmap.py takes these widths): each
# session keeps its bucket and its limits in flip-flops with a counter, a compare and an
# adder of each width, so every bit is paid once per session (issue 12's area work).
RATE_BURST_BITS = 20      # a bucket of 1,048,575 tokens at most
RATE_REFILL_BITS = 26     # one token every 67 s at the slowest
RATE_TRIP_BITS = 16       # a trip after 65,535 throttled rejects in a row at most
RATE_BURST_MAX = (1 << RATE_BURST_BITS) - 1
RATE_REFILL_MAX = (1 << RATE_REFILL_BITS) - 1
RATE_TRIP_MAX = (1 << RATE_TRIP_BITS) - 1


def _field_max(bits):
    return f"the largest value the gateway's {bits}-bit table field holds"


_U32 = _field_max(32)
_U64 = _field_max(64)

_TOP_KEYS = (
    Key("gateway", "mapping"),
    Key("defaults", "mapping", required=False),
    Key("sessions", "list"),
    Key("symbols", "list"),
)
_GATEWAY_KEYS = (
    Key("credit", "dollars", minimum=1, maximum=U64_MAX, why_maximum=_U64),
    Key("heartbeat_timeout", "duration", minimum=1, maximum=U32_MAX, why_maximum=_U32),
    Key("reference_max_age", "duration", minimum=0, maximum=U32_MAX, why_maximum=_U32),
)
_SESSION_KEYS = (
    Key("name", "name"),
    Key("client", "endpoint"),
    Key("exchange", "endpoint"),
    Key("max_order_quantity", "shares", minimum=1, maximum=OUCH_MAX_QUANTITY,
        why_maximum=_OUCH_QTY),
    Key("max_order_notional", "dollars", minimum=1, maximum=U64_MAX, why_maximum=_U64),
    Key("credit", "dollars", minimum=1, maximum=U64_MAX, why_maximum=_U64),
    Key("rate", "mapping"),
)
_RATE_KEYS = (
    Key("burst", "count", minimum=1, maximum=RATE_BURST_MAX,
        why_maximum=_field_max(RATE_BURST_BITS)),
    Key("refill", "duration", minimum=1, maximum=RATE_REFILL_MAX,
        why_maximum=_field_max(RATE_REFILL_BITS)),
    Key("trip_after", "count", minimum=0, maximum=RATE_TRIP_MAX,
        why_maximum=_field_max(RATE_TRIP_BITS)),
)
_SYMBOL_KEYS = (
    Key("symbol", "symbol"),
    Key("reference_price", "dollars", required=False, minimum=1, maximum=OUCH_MAX_PRICE,
        why_maximum=_OUCH_PRICE, default=0),
    Key("collar", "collar", defaultable=True),
    Key("max_order_quantity", "shares", minimum=1, maximum=OUCH_MAX_QUANTITY,
        why_maximum=_OUCH_QTY, defaultable=True),
    Key("max_order_notional", "dollars", minimum=1, maximum=U64_MAX, why_maximum=_U64,
        defaultable=True),
    Key("max_long", "shares", minimum=0, maximum=U32_MAX, why_maximum=_U32, defaultable=True),
    Key("max_short", "shares", minimum=0, maximum=U32_MAX, why_maximum=_U32,
        defaultable=True),
    Key("restricted", "bool", required=False, default=False, defaultable=True),
)
_DEFAULT_KEYS = tuple(replace(k, required=False) for k in _SYMBOL_KEYS if k.defaultable)

SCHEMA: dict[str, tuple[Key, ...]] = {
    "": _TOP_KEYS,
    "gateway": _GATEWAY_KEYS,
    "defaults": _DEFAULT_KEYS,
    "sessions[]": _SESSION_KEYS,
    "sessions[].rate": _RATE_KEYS,
    "symbols[]": _SYMBOL_KEYS,
}
"""Every key the loader accepts, by section path (``sessions[]`` is each list item)."""


def schema_paths() -> list[str]:
    """Full path of every accepted key, e.g. ``sessions[].rate.refill``, in schema order."""
    return [_join(section, key.name) for section, keys in SCHEMA.items() for key in keys]


# -- value text -----------------------------------------------------------------------------

def _fixed_point(text: str, places: int, what: str) -> int:
    """Signed decimal text as an exact integer count of ``10**-places``; never via float."""
    match = _DECIMAL.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected {what}, got {text!r}")
    sign, whole, frac = match.groups()
    frac = frac or ""
    if len(frac) > places:
        raise ValueError(f"{text!r} has {len(frac)} decimals; at most {places} allowed")
    value = int(whole.replace("_", "")) * 10**places + int(frac.ljust(places, "0") or "0")
    return -value if sign else value


def parse_dollars(text: str) -> int:
    """Dollars written as decimal text (``1_250.5``) to integer price units (x 10,000).

    Raises
    ------
    ValueError
        Not plain decimal digits (underscores may group them), or more than 4 decimals.
    """
    match = _DECIMAL.fullmatch(text.strip())
    if match is not None and len(match.group(3) or "") > _PRICE_DECIMALS:
        raise ValueError(f"{text!r} has {len(match.group(3))} decimals; dollar amounts carry "
                         f"at most {_PRICE_DECIMALS} ($0.0001, the OUCH price unit)")
    return _fixed_point(text, _PRICE_DECIMALS, "dollars as decimal text such as 1_250.50")


def parse_duration(text: str) -> int:
    """A duration with its unit (``1s``, ``500ms``, ``250us``) to integer microseconds.

    Raises
    ------
    ValueError
        No unit, an unknown unit, or not a whole number of microseconds.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected a duration with a unit (s, ms, us) such as 500ms, "
                         f"got {text!r}")
    number, unit = match.groups()
    places = _DURATION_PLACES[unit]
    # Trailing zeros below a microsecond are exact ("1.000000s"); anything else is not.
    whole, _, frac = number.partition(".")
    frac = frac.rstrip("0")
    if len(frac) > places:
        raise ValueError(f"{text!r} is not a whole number of microseconds")
    return _fixed_point(f"{whole}.{frac}" if frac else whole, places, "a duration")


def format_dollars(units: int) -> str:
    """Price units as dollars for people: ``$1,234.50``, ``$0.0001``."""
    whole, frac = divmod(abs(units), PRICE_SCALE)
    cents = f"{frac:04d}".rstrip("0").ljust(2, "0")
    return f"{'-' if units < 0 else ''}${whole:,}.{cents}"


def format_duration(us: int) -> str:
    """Microseconds in the largest unit that keeps them whole: ``1s``, ``500ms``, ``250us``."""
    if us % 1_000_000 == 0:
        return f"{us // 1_000_000}s"
    if us % 1_000 == 0:
        return f"{us // 1_000}ms"
    return f"{us}us"


def _parse_count(text: str) -> int:
    match = _DECIMAL.fullmatch(text.strip())
    if match is not None and match.group(3) is not None:
        raise ValueError(f"expected a whole number, got {text!r}")
    return _fixed_point(text, 0, "a whole number such as 10_000")


@dataclass(frozen=True)
class _Collar:
    """A collar as written: an absolute band in price units, or percent x 10**4."""

    units: int | None = None
    percent: int | None = None

    def resolve(self, reference_price: int) -> int:
        """The band in price units; a percentage rounds down (the tighter band)."""
        if self.units is not None:
            return self.units
        return reference_price * self.percent // (100 * _PERCENT_SCALE)


def _parse_collar(text: str) -> _Collar:
    text = text.strip()
    if text.endswith("%"):
        percent = _fixed_point(text[:-1], 4, "a percentage such as 5%")
        if percent <= 0:
            raise ValueError(f"collar must be greater than 0%, got {text!r}")
        if percent > 100 * _PERCENT_SCALE:
            raise ValueError(f"collar {text!r} is above 100% of the reference price")
        return _Collar(percent=percent)
    if _DECIMAL.fullmatch(text) is None:
        raise ValueError(f"expected a dollar band such as 0.50 or a percentage such as 5%, "
                         f"got {text!r}")
    units = parse_dollars(text)
    if units <= 0:
        raise ValueError(f"collar must be greater than zero, got {format_dollars(units)}")
    if units > OUCH_MAX_PRICE:
        raise ValueError(f"collar {format_dollars(units)} is above {_OUCH_PRICE} "
                         f"({format_dollars(OUCH_MAX_PRICE)})")
    return _Collar(units=units)


def _parse_endpoint(text: str) -> Endpoint:
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise ValueError(f"expected IP:port such as 10.1.0.1:40001, got {text!r}")
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError as exc:
        raise ValueError(f"bad IPv4 address in {text!r}: {exc}") from None
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        raise ValueError(f"{host} is not a unicast host address")
    if re.fullmatch(r"[0-9]{1,5}", port) is None or not 1 <= int(port) <= 65535:
        raise ValueError(f"bad port in {text!r}: must be 1 to 65535")
    return Endpoint(int(ip), int(port))


def _parse_symbol(text: str) -> str:
    if not 1 <= len(text) <= 8:
        raise ValueError(f"symbol {text!r} is {len(text)} characters; OUCH symbols are 1 to 8")
    for char in text:
        if not "!" <= char <= "~":
            raise ValueError(f"symbol {text!r} holds {char!r}: only printable ASCII, "
                             f"no spaces (the wire pads with spaces)")
    return text


def _parse_name(text: str) -> str:
    if not 1 <= len(text) <= _NAME_MAX:
        raise ValueError(f"name must be 1 to {_NAME_MAX} characters, got {len(text)}")
    for char in text:
        if not " " <= char <= "~":
            raise ValueError(f"name {text!r} holds {char!r}: only printable ASCII")
    return text


_PARSERS = {
    "dollars": parse_dollars,
    "shares": _parse_count,
    "count": _parse_count,
    "duration": parse_duration,
    "collar": _parse_collar,
    "endpoint": _parse_endpoint,
    "symbol": _parse_symbol,
    "name": _parse_name,
}
_FORMATS = {
    "dollars": format_dollars,
    "shares": "{:,}".format,
    "count": "{:,}".format,
    "duration": format_duration,
}
_EXPECTED = {
    "dollars": "dollars as decimal text",
    "shares": "a whole number of shares",
    "count": "a whole number",
    "duration": "a duration such as 500ms",
    "collar": "a dollar band or a percentage",
    "bool": "true or false",
    "symbol": "a symbol",
    "name": "a name",
    "endpoint": "IP:port",
}


# -- the walker -----------------------------------------------------------------------------

def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "no value"
    return f"{node.value!r}"


_INVALID = object()   # a value that was reported as a problem


@dataclass
class _Reader:
    """Walks one file's YAML node tree against ``SCHEMA``, collecting every problem."""

    filename: str
    problems: list[Problem] = field(default_factory=list)
    # Node of every key seen (valid or not), by full field path: for later located checks.
    nodes: dict[str, yaml.Node] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)

    def problem(self, line: int, path: str, message: str) -> None:
        self.problems.append(Problem(self.filename, line, path, message))

    def read(self, text: str, max_sessions: int | None,
             max_symbols: int | None) -> Limits | None:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            message = f"YAML syntax error: {exc.problem}"
            if exc.context and exc.context_mark is not None:
                message += f" ({exc.context}, line {exc.context_mark.line + 1})"
            elif exc.context:
                message += f" ({exc.context})"
            self.problem(exc.problem_mark.line + 1, "", message)
            return None
        except yaml.YAMLError as exc:   # the reader's bad-character error has no mark
            position = getattr(exc, "position", 0)
            self.problem(text.count("\n", 0, position) + 1, "", f"YAML error: {exc}")
            return None
        if root is None:
            self.problem(1, "", "the file is empty")
            return None
        top = self.mapping(root, "", SCHEMA[""])
        if top is None:
            return None
        gateway = self.section(top, "gateway", "gateway")
        defaults = self.section(top, "defaults", "defaults") or {}
        sessions = self.sessions(top.get("sessions"), max_sessions)
        symbols = self.symbols(top.get("symbols"), defaults, max_symbols)
        if self.problems:
            return None
        return Limits(
            gateway=GatewayLimits(
                credit=gateway["credit"],
                heartbeat_timeout_us=gateway["heartbeat_timeout"],
                reference_max_age_us=gateway["reference_max_age"],
            ),
            sessions=tuple(sessions),
            symbols=tuple(symbols),
        )

    def section(self, parent: dict, name: str, path: str) -> dict | None:
        if name not in parent:
            return None
        return self.mapping(parent[name], path, SCHEMA[re.sub(r"\[\d+\]", "[]", path)])

    def mapping(self, node: yaml.Node, path: str, keys: tuple[Key, ...],
                inherited: frozenset[str] = frozenset()) -> dict | None:
        """The parsed values of a mapping node (valid keys only); None if not a mapping."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(_line(node), path, f"expected a mapping of keys, got {_describe(node)}")
            return None
        known = {key.name: key for key in keys}
        values: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(_line(key_node), path, "keys must be plain names")
                continue
            name = key_node.value
            path_of_key = _join(path, name)
            if path_of_key in self.key_lines:
                self.problem(_line(key_node), path_of_key,
                             f"duplicate key (first given at line {self.key_lines[path_of_key]})")
                continue
            self.key_lines[path_of_key] = _line(key_node)
            key = known.get(name)
            if key is None:
                self.problem(_line(key_node), path_of_key, _unknown_key(name, known))
                continue
            self.nodes[path_of_key] = value_node
            value = self.value(value_node, path_of_key, key)
            if value is not _INVALID:
                values[name] = value
        for key in keys:
            if key.required and _join(path, key.name) not in self.key_lines:
                if key.defaultable:
                    if key.name in inherited:
                        continue
                    message = "missing required key (give it here or in defaults)"
                else:
                    message = "missing required key"
                self.problem(_line(node), _join(path, key.name), message)
        return values

    def value(self, node: yaml.Node, path: str, key: Key) -> Any:
        if key.kind in ("mapping", "list"):
            return node
        if not isinstance(node, yaml.ScalarNode):
            self.problem(_line(node), path,
                         f"expected {_EXPECTED[key.kind]}, got {_describe(node)}")
            return _INVALID
        text = node.value
        if text.strip() == "" or (node.style is None and text == "~"):
            self.problem(_line(node), path, f"no value: expected {_EXPECTED[key.kind]}")
            return _INVALID
        if key.kind == "bool":
            if node.tag != _BOOL_TAG:
                self.problem(_line(node), path, f"expected true or false, got {text!r}")
                return _INVALID
            return text.lower() in _TRUE_WORDS
        try:
            value = _PARSERS[key.kind](text)
        except ValueError as exc:
            self.problem(_line(node), path, str(exc))
            return _INVALID
        message = _bound_problem(key, value)
        if message:
            self.problem(_line(node), path, message)
            return _INVALID
        return value

    def items(self, node: yaml.Node | None, path: str, what: str,
              table_size: int | None) -> list[yaml.Node]:
        if node is None:   # the key is missing: already reported
            return []
        line = self.key_lines[path]
        if not isinstance(node, yaml.SequenceNode):
            self.problem(line, path, f"expected a list of {what}s, got {_describe(node)}")
            return []
        if not node.value:
            self.problem(line, path, f"needs at least one {what}")
        if table_size is not None and len(node.value) > table_size:
            self.problem(line, path, f"{len(node.value)} {what}s, but the gateway's {what} "
                                     f"table holds {table_size}")
        return node.value

    def sessions(self, node: yaml.Node | None, table_size: int | None) -> list[SessionLimits]:
        sessions = []
        first_name: dict[str, str] = {}
        first_client: dict[Endpoint, tuple[str, Endpoint | None]] = {}
        for index, item in enumerate(self.items(node, "sessions", "session", table_size)):
            path = f"sessions[{index}]"
            values = self.mapping(item, path, SCHEMA["sessions[]"])
            if values is None:
                continue
            rate = self.section(values, "rate", f"{path}.rate")
            name, client = values.get("name"), values.get("client")
            if name is not None:
                if name in first_name:
                    self.problem(_line(self.nodes[f"{path}.name"]), f"{path}.name",
                                 f"duplicate session name {name!r} (also {first_name[name]})")
                else:
                    first_name[name] = path
            if client is not None:
                if client in first_client:
                    other, other_exchange = first_client[client]
                    # The gateway must tell sessions apart by the client end alone.
                    same = ("4-tuple" if values.get("exchange") == other_exchange
                            else "client endpoint")
                    self.problem(_line(self.nodes[f"{path}.client"]), f"{path}.client",
                                 f"same {same} as {other} "
                                 f"(line {self.key_lines[other + '.client']}): sessions "
                                 f"overlap")
                else:
                    first_client[client] = (path, values.get("exchange"))
            if _complete(values, _SESSION_KEYS) and rate is not None \
                    and _complete(rate, _RATE_KEYS):
                sessions.append(SessionLimits(
                    index=index,
                    name=name,
                    client=client,
                    exchange=values["exchange"],
                    max_order_quantity=values["max_order_quantity"],
                    max_order_notional=values["max_order_notional"],
                    credit=values["credit"],
                    rate=RateLimit(burst=rate["burst"], refill_us=rate["refill"],
                                   trip_after=rate["trip_after"]),
                ))
        return sessions

    def symbols(self, node: yaml.Node | None, defaults: dict,
                table_size: int | None) -> list[SymbolLimits]:
        symbols = []
        first_symbol: dict[str, str] = {}
        # Keys given in defaults, valid or not: a bad default is reported once, there.
        inherited = frozenset(k.name for k in _DEFAULT_KEYS if f"defaults.{k.name}"
                              in self.key_lines)
        for index, item in enumerate(self.items(node, "symbols", "symbol", table_size)):
            path = f"symbols[{index}]"
            own = self.mapping(item, path, SCHEMA["symbols[]"], inherited)
            if own is None:
                continue
            symbol = own.get("symbol")
            if symbol is not None:
                if symbol in first_symbol:
                    other = first_symbol[symbol]
                    self.problem(_line(self.nodes[f"{path}.symbol"]), f"{path}.symbol",
                                 f"duplicate symbol {symbol!r} (also {other}, line "
                                 f"{self.key_lines[other + '.symbol']})")
                else:
                    first_symbol[symbol] = path
            values = {k.name: k.default for k in _SYMBOL_KEYS if not k.required}
            values |= defaults
            values |= own
            collar = values.get("collar")
            if collar is not None:
                band = collar.resolve(values["reference_price"])
                if band == 0 and values["reference_price"] > 0:
                    where = f"{path}.collar" if "collar" in own else "defaults.collar"
                    self.problem(_line(self.nodes[where]), f"{path}.collar",
                                 f"rounds down to a zero band at reference price "
                                 f"{format_dollars(values['reference_price'])}")
                values["collar"] = band
            if _complete(values, _SYMBOL_KEYS):
                symbols.append(SymbolLimits(index=index, **values))
        return symbols


def _complete(values: dict, keys: tuple[Key, ...]) -> bool:
    return all(key.name in values for key in keys)


def _bound_problem(key: Key, value: Any) -> str | None:
    if not isinstance(value, int):
        return None
    fmt = _FORMATS[key.kind]
    if key.minimum is not None and value < key.minimum:
        if key.minimum == 0:
            return f"must not be negative, got {fmt(value)}"
        if key.minimum == 1:
            return f"must be greater than zero, got {fmt(value)}"
        return f"must be at least {fmt(key.minimum)}, got {fmt(value)}"
    if key.maximum is not None and value > key.maximum:
        return f"{fmt(value)} is above {key.why_maximum} ({fmt(key.maximum)})"
    return None


def _unknown_key(name: str, known: dict[str, Key]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(known)}"
    return f"unknown key {name!r}{hint}"


def parse_limits(text: str, filename: str = "<string>", *, max_sessions: int | None = None,
                 max_symbols: int | None = None) -> Limits:
    """Validate limit-file text and convert it to integer :class:`Limits`.

    Parameters
    ----------
    text : str
        The YAML text.
    filename : str
        Name used in problem locations.
    max_sessions, max_symbols : int, optional
        Table sizes of the target gateway; more entries than these is a problem.

    Raises
    ------
    LimitsError
        Listing every problem in the file; no partial ``Limits`` is ever returned.
    """
    reader = _Reader(filename)
    limits = reader.read(text, max_sessions, max_symbols)
    if reader.problems:
        raise LimitsError(sorted(reader.problems, key=lambda p: p.line))
    log.debug("%s: %d sessions, %d symbols", filename, len(limits.sessions), len(limits.symbols))
    return limits


def load_limits(path: str | os.PathLike, *, max_sessions: int | None = None,
                max_symbols: int | None = None) -> Limits:
    """Read, validate and convert a limit file; see :func:`parse_limits`.

    An unreadable or non-UTF-8 file is reported as a located :class:`LimitsError` too.
    """
    filename = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LimitsError([Problem(filename, 0, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LimitsError([Problem(filename, line, "", "not UTF-8 text")]) from None
    return parse_limits(text, filename, max_sessions=max_sessions, max_symbols=max_symbols)
