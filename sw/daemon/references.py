# Ref: Nasdaq TotalView-ITCH 5.0, Trade Message (Non-Cross), type "P"; Nasdaq
# MoldUDP64 protocol specification 1.00.
"""Reference prices for the collar: pluggable sources, a paced feed, and the write.

The collar rejects every order in a symbol whose reference is missing or older than the
gateway's ``reference_max_age`` (:func:`wiregate.sw.model.collar_fires`), so the daemon
feeds fresh references from a source, no faster than the control stream carries them, and
alerts when a symbol goes stale. docs/daemon-checks.md describes the formats.

Sources yield :class:`ReferenceUpdate` (symbol, price in price units, time in microseconds
of the source's own clock), as async iterables:

- :class:`FileSource`: a CSV (header ``symbol,price,time_us``) or JSON Lines file
  (``{"symbol": "AAPL", "price": "187.25", "time_us": 1000}``); prices in dollars.
- :class:`UdpSource`: one datagram per update, :data:`DATAGRAM` (24 bytes: symbol, 8 ASCII
  bytes padded with spaces; price, u64 price units; time, u64 microseconds; big-endian).
- :class:`PcapSource`: a market-data capture replayed: ITCH 5.0 Trade (Non-Cross)
  messages ``P`` in MoldUDP64 packets over UDP/IPv4/Ethernet, in a pcap or pcapng file;
  each trade is an update at its price, at its ITCH timestamp.

:class:`ReferenceFeed` takes updates as they come (:meth:`~ReferenceFeed.offer`), keeps the
latest per symbol while it waits (coalescing: a symbol never has more than one update
queued), hands out at most ``max_rate`` per second (:meth:`~ReferenceFeed.take`, oldest
waiting symbol first, so a busy symbol cannot starve a quiet one), and raises an alert when
a symbol has had no reference written for longer than ``reference_max_age``
(:meth:`~ReferenceFeed.stale`). :func:`write_reference` writes one through the driver.
"""

import asyncio
import csv
import json
import logging
import struct
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from wiregate.sw.daemon.actions import Action
from wiregate.sw.limits import (
    OUCH_MAX_PRICE,
    Limits,
    format_dollars,
    format_duration,
    parse_dollars,
)
from wiregate.sw.proto.pcap import iter_pcap
from wiregate.sw.regmap import RegisterMap

__all__ = [
    "DATAGRAM",
    "ITCH_TRADE",
    "FileSource",
    "PcapSource",
    "ReferenceFeed",
    "ReferenceUpdate",
    "UdpSource",
    "decode_datagram",
    "encode_datagram",
    "open_source",
    "read_file",
    "read_pcap",
    "reference_writes",
    "write_reference",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferenceUpdate:
    """A new reference price for one symbol.

    Attributes
    ----------
    symbol : str
        1 to 8 printable ASCII characters, no padding.
    price : int
        Price units (1/10,000 dollar), 1 to OUCH_MAX_PRICE.
    time_us : int
        When the source priced it, microseconds of the source's clock.
    """

    symbol: str
    price: int
    time_us: int

    def __post_init__(self) -> None:
        s = self.symbol
        if not isinstance(s, str) or not 1 <= len(s) <= 8 or not all(" " < c <= "~"
                                                                      for c in s):
            raise ValueError(f"symbol {s!r}: 1 to 8 printable ASCII characters, no spaces")
        if isinstance(self.price, bool) or not isinstance(self.price, int) \
                or not 1 <= self.price <= OUCH_MAX_PRICE:
            raise ValueError(f"{s}: price {self.price!r} outside 1..{OUCH_MAX_PRICE} units")
        if isinstance(self.time_us, bool) or not isinstance(self.time_us, int) \
                or not 0 <= self.time_us < 1 << 64:
            raise ValueError(f"{s}: time_us {self.time_us!r} is not 0..2**64-1")


# --- File ---------------------------------------------------------------------------------

def _update(symbol, price, time_us) -> ReferenceUpdate:
    if isinstance(price, bool) or not isinstance(price, int | float | str):
        raise ValueError(f"price {price!r}: dollars as text or a number")
    if isinstance(time_us, str) and time_us.strip().isdigit():
        time_us = int(time_us)
    return ReferenceUpdate(symbol, parse_dollars(str(price)), time_us)


def read_file(path: str | Path) -> Iterator[ReferenceUpdate]:
    """The updates of a ``.csv`` or ``.jsonl`` file, in file order.

    Raises
    ------
    ValueError
        Another extension, a missing column or key, or a bad value; the message names the
        file and line.
    """
    path = Path(path)
    if path.suffix not in (".csv", ".jsonl"):
        raise ValueError(f"{path}: reference files are .csv or .jsonl, not {path.suffix!r}")
    with path.open(newline="") as f:
        if path.suffix == ".csv":
            reader = csv.DictReader(f)
            missing = {"symbol", "price", "time_us"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}:1: the header lacks {', '.join(sorted(missing))}")
            rows = ((reader.line_num, row) for row in reader)
        else:
            rows = ((n, line) for n, line in enumerate(f, 1) if line.strip())
        for line, row in rows:
            try:
                if not isinstance(row, dict):
                    row = json.loads(row)
                    if not isinstance(row, dict):
                        raise ValueError("a line is one JSON object")
                yield _update(row["symbol"], row["price"], row["time_us"])
            except KeyError as error:
                raise ValueError(f"{path}:{line}: no {error.args[0]}") from None
            except ValueError as error:
                raise ValueError(f"{path}:{line}: {error}") from None


class FileSource:
    """The updates of a file (:func:`read_file`), as an async iterable.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.jsonl`` file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    async def __aiter__(self) -> AsyncIterator[ReferenceUpdate]:
        for update in read_file(self.path):
            yield update


# --- UDP ----------------------------------------------------------------------------------

DATAGRAM = struct.Struct(">8sQQ")   # symbol (ASCII, space padded), price units, time_us


def encode_datagram(update: ReferenceUpdate) -> bytes:
    return DATAGRAM.pack(update.symbol.encode("ascii").ljust(8), update.price, update.time_us)


def decode_datagram(data: bytes) -> ReferenceUpdate:
    """One datagram's update; ValueError when it is not :data:`DATAGRAM`."""
    if len(data) != DATAGRAM.size:
        raise ValueError(f"a reference datagram is {DATAGRAM.size} bytes, not {len(data)}")
    symbol, price, time_us = DATAGRAM.unpack(data)
    return ReferenceUpdate(symbol.decode("latin-1").rstrip(" "), price, time_us)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue):
        self.queue = queue

    def datagram_received(self, data: bytes, addr) -> None:
        self.queue.put_nowait((data, addr))


class UdpSource:
    """Updates from UDP datagrams (:data:`DATAGRAM`) on a local address.

    A datagram that does not decode is logged, counted in ``errors`` and skipped: one bad
    sender does not stop the feed. Open it with :meth:`open`.

    Attributes
    ----------
    address : tuple
        The bound (host, port) (port 0 asks for a free one).
    errors : int
    """

    def __init__(self, transport, queue: asyncio.Queue):
        self._transport, self._queue = transport, queue
        self.address = transport.get_extra_info("sockname")[:2]
        self.errors = 0

    @classmethod
    async def open(cls, host: str = "127.0.0.1", port: int = 0) -> "UdpSource":
        queue: asyncio.Queue = asyncio.Queue()
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Datagrams(queue), local_addr=(host, port))
        return cls(transport, queue)

    async def __aiter__(self) -> AsyncIterator[ReferenceUpdate]:
        while True:
            data, sender = await self._queue.get()
            try:
                yield decode_datagram(data)
            except ValueError as error:
                self.errors += 1
                log.warning("reference datagram from %s refused: %s", sender, error)

    def close(self) -> None:
        self._transport.close()


# --- Market-data capture --------------------------------------------------------------------

# ITCH 5.0 Trade (Non-Cross), as (name, struct code); big-endian, 44 bytes.
ITCH_TRADE = (
    ("message_type", "c"),           # b"P"
    ("stock_locate", "H"),
    ("tracking_number", "H"),
    ("timestamp", "6s"),             # nanoseconds since midnight, 48 bits
    ("order_reference_number", "Q"),
    ("buy_sell_indicator", "c"),
    ("shares", "I"),
    ("stock", "8s"),                 # space padded
    ("price", "I"),                  # 4 implied decimals: OUCH price units
    ("match_number", "Q"),
)
_TRADE = struct.Struct(">" + "".join(code for _, code in ITCH_TRADE))
if _TRADE.size != 44:
    raise ValueError(f"ITCH 5.0 Trade is 44 bytes, the declaration gives {_TRADE.size}")
_MOLD = struct.Struct(">10sQH")      # MoldUDP64: session, sequence number, message count
_VLAN, _IPV4, _UDP = 0x8100, 0x0800, 17     # EtherTypes, IP protocol number


def _udp_payload(frame: bytes) -> tuple[int, bytes] | None:
    """(destination port, payload) of an Ethernet (802.1Q tagged or not) IPv4 UDP frame;
    None for anything else, a fragment included (a MoldUDP64 packet fits a frame)."""
    l3 = 14
    if len(frame) >= 18 and struct.unpack_from(">H", frame, 12)[0] == _VLAN:
        l3 = 18
    if len(frame) < l3 + 20 or struct.unpack_from(">H", frame, l3 - 2)[0] != _IPV4:
        return None
    ihl = (frame[l3] & 0x0F) * 4
    fragment = struct.unpack_from(">H", frame, l3 + 6)[0] & 0x3FFF    # MF flag, offset
    if frame[l3] >> 4 != 4 or frame[l3 + 9] != _UDP or fragment or len(frame) < l3 + ihl + 8:
        return None
    udp = l3 + ihl
    port, length = struct.unpack_from(">2xHH", frame, udp)
    return port, frame[udp + 8:udp + length]


def _trades(payload: bytes) -> Iterator[ReferenceUpdate]:
    """The trades of one MoldUDP64 packet; ValueError when it does not parse."""
    if len(payload) < _MOLD.size:
        raise ValueError(f"a MoldUDP64 packet of {len(payload)} bytes")
    _, _, count = _MOLD.unpack_from(payload)
    at = _MOLD.size
    for _ in range(count if count != 0xFFFF else 0):    # 0xFFFF: end of session
        length = int.from_bytes(payload[at:at + 2], "big")
        message = payload[at + 2:at + 2 + length]
        at += 2 + length
        if at > len(payload):
            raise ValueError("a MoldUDP64 message runs past its packet")
        if message[:1] != b"P":
            continue
        if length != _TRADE.size:
            raise ValueError(f"an ITCH Trade of {length} bytes, not {_TRADE.size}")
        fields = dict(zip((name for name, _ in ITCH_TRADE), _TRADE.unpack(message),
                          strict=True))
        yield ReferenceUpdate(fields["stock"].decode("latin-1").rstrip(" "), fields["price"],
                              int.from_bytes(fields["timestamp"], "big") // 1000)


def read_pcap(path: str | Path, port: int | None = None) -> Iterator[ReferenceUpdate]:
    """The ITCH trades of a pcap or pcapng capture of Ethernet frames, in capture order
    (only UDP to ``port``, if given; frames other than IPv4/UDP are passed over).

    Raises
    ------
    ValueError
        Not an Ethernet capture, or a MoldUDP64 packet or ITCH Trade that does not parse
        (or prices a trade at 0); the message names the frame (1 is the first).
    """
    for number, record in enumerate(iter_pcap(path), 1):
        found = _udp_payload(record.data)
        if found is None or (port is not None and found[0] != port):
            continue
        try:
            updates = list(_trades(found[1]))
        except ValueError as error:
            raise ValueError(f"{path}: frame {number}: {error}") from None
        yield from updates


class PcapSource:
    """A capture's trades (:func:`read_pcap`) as an async iterable.

    Parameters
    ----------
    path : str or Path
        A pcap or pcapng capture of Ethernet frames.
    port : int or None
        Only UDP datagrams to this port (None: every one).
    speed : float or None
        Pace the replay by the trades' timestamps, ``speed`` times faster than they were
        (1.0: real time); None: as fast as they are read.
    """

    def __init__(self, path: str | Path, port: int | None = None,
                 speed: float | None = None):
        self.path, self.port, self.speed = Path(path), port, speed

    async def __aiter__(self) -> AsyncIterator[ReferenceUpdate]:
        loop = asyncio.get_running_loop()
        start = first = None
        for update in read_pcap(self.path, self.port):
            if self.speed is not None:
                if start is None:
                    start, first = loop.time(), update.time_us
                delay = start + (update.time_us - first) / 1e6 / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            yield update


# --- The feed -----------------------------------------------------------------------------

class ReferenceFeed:
    """Coalesces updates, paces them to the control stream, and watches for staleness.

    Times ``now_us`` are the gateway's timebase as the daemon reads it: a reference written
    at ``now_us`` is stamped with it, and the collar finds it stale once the timebase has
    passed ``now_us + reference_max_age_us``.

    Parameters
    ----------
    limits : Limits
        The committed limits: symbol names to indices, and ``reference_max_age_us``.
    max_rate : float
        Updates per second the daemon may write (each is one control WRITE command).
    start_us : int
        When the limits were committed: the file's references count as written then.
    burst : int
        Updates that may go back to back after a quiet spell.

    Attributes
    ----------
    coalesced : int
        Updates replaced by a later one for the same symbol before they were written.
    unknown : int
        Updates for a symbol the limits do not list (dropped: it has no index).
    """

    NAME = "references"

    def __init__(self, limits: Limits, max_rate: float, start_us: int = 0, burst: int = 1):
        if not max_rate > 0 or burst < 1:
            raise ValueError(f"max_rate must be above 0 and burst at least 1, got {max_rate} "
                             f"and {burst}")
        self._index = {y.symbol: y.index for y in limits.symbols}
        self.max_age_us = limits.gateway.reference_max_age_us
        self._interval_us = 1_000_000 / max_rate
        self._burst = burst
        self._due = float(start_us)        # when the next write is due at the steady rate
        self._pending: dict[str, ReferenceUpdate] = {}
        self._written = dict.fromkeys(self._index, start_us)
        self._stale: set[str] = set()
        self.coalesced = 0
        self.unknown = 0

    def offer(self, update: ReferenceUpdate) -> None:
        """Queue ``update``; a symbol already queued keeps its place and takes the new price."""
        if update.symbol not in self._index:
            self.unknown += 1
            log.warning("reference for %s dropped: not in the limits", update.symbol)
            return
        if update.symbol in self._pending:
            self.coalesced += 1
        self._pending[update.symbol] = update

    def take(self, now_us: int) -> list[tuple[int, ReferenceUpdate]]:
        """(symbol index, update) of the updates to write now, oldest queued first.

        The pace is a virtual schedule (GCRA): one update per ``1 / max_rate`` on average,
        at most ``burst`` at once.
        """
        out = []
        while self._pending and now_us >= self._due - (self._burst - 1) * self._interval_us:
            symbol = next(iter(self._pending))
            out.append((self._index[symbol], self._pending.pop(symbol)))
            self._due = max(self._due, now_us) + self._interval_us
            self._written[symbol] = now_us
            self._stale.discard(symbol)
        return out

    def stale(self, now_us: int) -> list[Action]:
        """An alert for each symbol that has just gone stale (once until it is fresh)."""
        if self.max_age_us == 0:
            return []
        out = []
        for symbol, written in self._written.items():
            if now_us - written > self.max_age_us and symbol not in self._stale:
                self._stale.add(symbol)
                out.append(Action(self.NAME, "alert", symbol,
                                  f"{symbol}: no reference written for "
                                  f"{format_duration(now_us - written)}, above "
                                  f"reference_max_age {format_duration(self.max_age_us)}; "
                                  "the collar rejects its orders"))
        return out

    def pending(self) -> int:
        return len(self._pending)

    def queued(self) -> list[ReferenceUpdate]:
        """The updates waiting, oldest queued first (to carry into a feed of new limits)."""
        return list(self._pending.values())


async def open_source(config) -> "FileSource | UdpSource | PcapSource":
    """The source a :class:`~wiregate.sw.daemon.config.ReferencesConfig` names, opened."""
    if config.source == "udp":
        return await UdpSource.open(config.host, config.port)
    if config.source == "pcap":
        return PcapSource(config.path, config.port, config.speed)
    return FileSource(config.path)


def reference_writes(regmap: RegisterMap, symbol_index: int, price: int,
                     stamp_us: int) -> list[tuple[int, list[int]]]:
    """(first address, words) of each WRITE that sets a symbol's reference, in order: the
    price and stamp staged, the trigger last (it ends the last run)."""
    runs: list[tuple[int, list[int]]] = []
    for address, word in regmap.encode_reference_update(symbol_index, price, stamp_us):
        if runs and runs[-1][0] + len(runs[-1][1]) == address:
            runs[-1][1].append(word)
        else:
            runs.append((address, [word]))
    return runs


_LOCKS: "weakref.WeakKeyDictionary[object, asyncio.Lock]" = weakref.WeakKeyDictionary()


async def write_reference(driver, symbol_index: int, price: int, stamp_us: int) -> None:
    """Write one reference through ``driver`` (identified): ``price`` in price units,
    stamped ``stamp_us`` (the gateway's timebase when it takes effect).

    The staging registers are shared by every symbol, so two writes through one driver
    never interleave (a lock per driver): the trigger applies the price staged with it.
    """
    log.debug("reference %s of symbol %d stamped %d", format_dollars(price), symbol_index,
              stamp_us)
    lock = _LOCKS.setdefault(driver, asyncio.Lock())
    async with lock:
        for address, words in reference_writes(driver.regmap, symbol_index, price, stamp_us):
            await driver.write(address, words)
