# Ref: wiregate symbol hash 1.0; H3 (Carter & Wegman 1979); cuckoo hashing (Pagh & Rodler 2004)
"""Compiling a :class:`~wiregate.sw.limits.Limits` into table images for the shadow bank.

The gateway looks an 8-byte symbol up in a hash table that the host fills and the hardware
only probes. The host does all the placement work here, ahead of time, so the hardware's
job is a fixed, parallel read:

* **Slots.** ``symbol_slots`` slots split into ``PROBES`` (4) memories of ``slots / 4``
  slots each. Memories 0 and 1 are addressed by hash 0, memories 2 and 3 by hash 1: two
  hash choices, each a bucket of two slots. A symbol may live in any of its four candidate
  slots; the gateware reads all four in the same cycle and compares each stored 8-byte
  symbol (plus its valid bit) with the order's. An unknown symbol therefore never matches,
  whatever it hashes to. Two choices with 2-slot buckets place reliably up to about 85 %
  load (the asymptotic threshold is 89.7 %); the default 1,024 symbols in 2,048 slots sit at
  50 %.
* **Hash.** H3: output bit ``j`` of hash ``t`` is the parity (XOR) of the input bits
  selected by a fixed random 64-bit mask ``H3_MASKS[t][j]``. In gateware that is one XOR
  tree per output bit, no multiplier, no carry chain. H3 is chosen because tickers are
  structurally similar: GME, AMC and AMD, or AAPL and AAP, differ in a handful of bits, in
  the same byte positions. A cheap fold (byte sum, XOR of the bytes, low bits of the last
  character) maps such families onto the same or correlated buckets. H3 is linear, so two
  symbols collide in a hash exactly when their XOR difference lies in that matrix's kernel,
  and for a random matrix any fixed non-zero difference, however few bits it has, does so
  with probability ``2**-bucket_bits``. The two matrices are jointly independent, so
  colliding in both hashes has probability ``2**-(2 * bucket_bits)``.
* **Placement.** Insertion is cuckoo hashing with a breadth-first search for the shortest
  eviction chain, bounded by ``MAX_EVICTIONS`` moves. A table that cannot be placed raises
  :class:`SymbolTableFull` naming the symbol and the load: a bad push fails on the host,
  never as a wrong match in the hardware.

The masks come from SplitMix64 seeded with ``HASH_SEED`` (a fixed constant, so the host and
the gateware, and any other language, derive the same matrices). ``SymbolHash.fingerprint``
(CRC-32 of the matrices in use) is reported by the gateware's ID block so the host can check
both sides agree before loading anything.
"""

import logging
import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wiregate.sw.limits import Limits

if TYPE_CHECKING:
    from wiregate.sw.regmap import RegisterMap

__all__ = [
    "H3_MASKS",
    "HASHES",
    "HASH_SEED",
    "MAX_EVICTIONS",
    "MAX_HASH_BITS",
    "PROBES",
    "REFERENCE_AT_COMMIT",
    "SYMBOL_BYTES",
    "WAYS",
    "Reference",
    "SymbolHash",
    "SymbolTableFull",
    "TableImage",
    "compile_limits",
    "h3",
    "keep_references",
    "place_symbols",
    "probe",
    "symbol_text",
    "symbol_word",
]

log = logging.getLogger(__name__)

SYMBOL_BYTES = 8              # OUCH Symbol: 8 bytes, ASCII, left-justified, space-padded
HASHES = 2                    # hash choices per symbol
WAYS = 2                      # slots per bucket
PROBES = HASHES * WAYS        # candidate slots the gateware reads in parallel
MAX_HASH_BITS = 20            # bucket index bits available: up to 4 x 2**20 slots
MAX_EVICTIONS = 32            # longest eviction chain the placement will try
HASH_SEED = 0x5747_5445_4833_0001  # "WGTEH3" + 1; changing it changes every table image

# ASCII never sets bit 7, so only these 56 input bits ever vary in a real symbol; the
# matrices must be independent on them, not merely on all 64 bits.
_LIVE_BITS = 0x7F7F_7F7F_7F7F_7F7F
_U64 = (1 << 64) - 1


def _splitmix64(seed: int):
    """SplitMix64 (Steele, Lea & Flood 2014): tiny, portable, fixed output for a seed."""
    state = seed & _U64
    while True:
        state = (state + 0x9E37_79B9_7F4A_7C15) & _U64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & _U64
        z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & _U64
        yield z ^ (z >> 31)


def _rank(vectors: Sequence[int]) -> int:
    """Rank over GF(2) of integers seen as bit vectors."""
    basis: dict[int, int] = {}   # leading bit -> reduced vector
    for v in vectors:
        while v:
            top = v.bit_length() - 1
            if top not in basis:
                basis[top] = v
                break
            v ^= basis[top]
    return len(basis)


def _make_masks() -> tuple[tuple[int, ...], ...]:
    stream = _splitmix64(HASH_SEED)
    masks = tuple(tuple(next(stream) for _ in range(MAX_HASH_BITS)) for _ in range(HASHES))
    # A dependent set would leave buckets unreachable or tie the two hashes together.
    flat = [m & _LIVE_BITS for row in masks for m in row]
    if _rank(flat) != len(flat):
        raise RuntimeError(f"H3 masks from seed {HASH_SEED:#x} are linearly dependent")
    return masks


H3_MASKS: tuple[tuple[int, ...], ...] = _make_masks()
"""``H3_MASKS[t][j]``: the input bits whose XOR is output bit ``j`` of hash ``t``.

Input bit ``i`` is bit ``i`` of :func:`symbol_word` (bit 63 is the top bit of the first
symbol byte on the wire). A table of ``S`` slots uses the first ``log2(S / 4)`` masks.
"""


def h3(masks: Sequence[int], word: int) -> int:
    """H3 hash of a 64-bit ``word``: bit ``j`` is the parity of ``word & masks[j]``."""
    out = 0
    for j, mask in enumerate(masks):
        out |= ((word & mask).bit_count() & 1) << j
    return out


def symbol_word(symbol: str) -> int:
    """The 64-bit value of a symbol as the gateway sees it.

    The symbol is space-padded to 8 bytes as on the wire and read big-endian, so the first
    character is the most significant byte. Raises ValueError for a symbol that is empty,
    longer than 8 characters, not printable ASCII, or has leading or trailing spaces (which
    the padding would make ambiguous).
    """
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str, got {type(symbol).__name__}")
    if not 1 <= len(symbol) <= SYMBOL_BYTES:
        raise ValueError(f"symbol {symbol!r} must be 1 to {SYMBOL_BYTES} characters")
    if not all(" " <= ch <= "~" for ch in symbol) or symbol != symbol.strip(" "):
        raise ValueError(f"symbol {symbol!r} must be printable ASCII without outer spaces")
    return int.from_bytes(symbol.encode("ascii").ljust(SYMBOL_BYTES, b" "), "big")


def symbol_text(word: int) -> str:
    """The symbol text of a 64-bit symbol value, padding stripped (inverse of symbol_word)."""
    return word.to_bytes(SYMBOL_BYTES, "big").decode("ascii").rstrip(" ")


def _wire_word(symbol: str | bytes) -> int:
    # bytes are the 8 wire bytes exactly as they arrive, whatever their values: the
    # gateware hashes whatever an order carries, configured or not.
    if isinstance(symbol, bytes | bytearray):
        if len(symbol) != SYMBOL_BYTES:
            raise ValueError(f"wire symbol must be {SYMBOL_BYTES} bytes, got {len(symbol)}")
        return int.from_bytes(symbol, "big")
    return symbol_word(symbol)


class SymbolHash:
    """Probe geometry of a symbol table of ``slots`` slots: what the gateware mirrors.

    Parameters
    ----------
    slots : int
        Number of slots, a power of two of at least 8.

    Attributes
    ----------
    slots : int
    bank_slots : int
        Slots per memory (``slots / PROBES``); slot ``k * bank_slots + b`` is entry ``b``
        of memory ``k``.
    bucket_bits : int
        Output bits of each hash (``log2(bank_slots)``).
    matrices : tuple[tuple[int, ...], ...]
        ``matrices[t]``: the masks of hash ``t`` (a prefix of ``H3_MASKS[t]``).
    fingerprint : int
        CRC-32 of the seed, the slot count and the masks in use, reported by the ID block.
    """

    def __init__(self, slots: int):
        if (not isinstance(slots, int) or slots < 2 * PROBES or slots & (slots - 1)
                or slots > PROBES << MAX_HASH_BITS):
            raise ValueError(
                f"symbol_slots must be a power of two in {2 * PROBES}..{PROBES << MAX_HASH_BITS},"
                f" got {slots!r}")
        self.slots = slots
        self.bank_slots = slots // PROBES
        self.bucket_bits = self.bank_slots.bit_length() - 1
        self.matrices = tuple(row[:self.bucket_bits] for row in H3_MASKS)
        blob = HASH_SEED.to_bytes(8, "big") + slots.to_bytes(8, "big")
        for row in self.matrices:
            blob += b"".join(m.to_bytes(8, "big") for m in row)
        self.fingerprint = zlib.crc32(blob)

    def bucket(self, hash_index: int, symbol: str | bytes) -> int:
        """Bucket (entry within a memory) that hash ``hash_index`` gives ``symbol``."""
        return h3(self.matrices[hash_index], _wire_word(symbol))

    def probe(self, symbol: str | bytes) -> tuple[int, ...]:
        """The ``PROBES`` candidate slots of ``symbol`` (str, or the 8 wire bytes)."""
        word = _wire_word(symbol)
        buckets = [h3(m, word) for m in self.matrices]
        return tuple(k * self.bank_slots + buckets[k // WAYS] for k in range(PROBES))


def probe(symbol: str | bytes, slots: int) -> tuple[int, ...]:
    """Candidate slots of ``symbol`` in a table of ``slots`` slots (see SymbolHash.probe)."""
    return SymbolHash(slots).probe(symbol)


class SymbolTableFull(ValueError):
    """The symbols cannot all be placed in the table within the eviction bound.

    Attributes
    ----------
    symbol : str
        The symbol whose insertion failed.
    count : int
        How many symbols the table was asked to hold.
    slots : int
        Slots in the table.
    """

    def __init__(self, symbol: str, position: int, count: int, slots: int):
        self.symbol = symbol
        self.count = count
        self.slots = slots
        super().__init__(
            f"symbol table full: cannot place {symbol!r} (symbol {position + 1} of {count}) "
            f"in {slots} slots at load {count / slots:.1%} with at most {MAX_EVICTIONS} "
            f"evictions; raise symbol_slots or configure fewer symbols")


def place_symbols(symbols: Sequence[str], slots: int) -> list[int | None]:
    """Place ``symbols`` into a table of ``slots`` slots.

    Returns the table as a list: slot -> position in ``symbols``, or None for an empty
    slot. Deterministic: the same symbols in the same order give the same table. Raises
    :class:`SymbolTableFull` when some symbol cannot be placed.
    """
    hasher = SymbolHash(slots)
    candidates = [hasher.probe(s) for s in symbols]
    table: list[int | None] = [None] * slots
    longest = 0
    for position in range(len(symbols)):
        moves = _insert(table, candidates, position)
        if moves is None:
            raise SymbolTableFull(symbols[position], position, len(symbols), slots)
        longest = max(longest, moves)
    log.debug("placed %d symbols in %d slots (load %.1f%%), longest eviction chain %d",
              len(symbols), slots, 100 * len(symbols) / slots, longest)
    return table


def _insert(table: list[int | None], candidates: list[tuple[int, ...]],
            position: int) -> int | None:
    """Insert one symbol; return the number of evictions it took, or None if impossible."""
    for slot in candidates[position]:
        if table[slot] is None:
            table[slot] = position
            return 0
    # Breadth-first over "the occupant of this slot could move to that one" finds the
    # shortest eviction chain, so the table changes as little as possible per insert.
    parent: dict[int, int | None] = dict.fromkeys(candidates[position])
    queue = deque((slot, 1) for slot in candidates[position])
    while queue:
        slot, depth = queue.popleft()
        for alternative in candidates[table[slot]]:
            if alternative in parent:
                continue
            parent[alternative] = slot
            if table[alternative] is None:
                cursor = alternative
                while (previous := parent[cursor]) is not None:
                    table[cursor] = table[previous]
                    cursor = previous
                table[cursor] = position
                return depth
            if depth < MAX_EVICTIONS:
                queue.append((alternative, depth + 1))
    return None


class TableImage:
    """The content of every banked table for one :class:`Limits`, ready for the shadow bank.

    Every entry of every banked table is present, unused ones as zeros (valid 0), because
    the shadow bank still holds the image from two commits ago and must be overwritten
    completely.

    Parameters
    ----------
    regmap : RegisterMap
        The register map the image is laid out for.
    entries : Mapping[str, Sequence[Mapping[str, int]]]
        Table name -> one field mapping per entry (the table's full depth).

    Attributes
    ----------
    regmap : RegisterMap
    entries : dict[str, tuple[dict[str, int], ...]]
        Field values per entry, per table.
    words : dict[str, tuple[tuple[int, ...], ...]]
        The same entries encoded as register words (the table's used words per entry).
    """

    def __init__(self, regmap: "RegisterMap", entries: Mapping[str, Sequence[Mapping[str, int]]]):
        self.regmap = regmap
        self.entries = {name: tuple(dict(e) for e in rows) for name, rows in entries.items()}
        self.words = {}
        for name, rows in self.entries.items():
            table = regmap.table(name)
            if len(rows) != table.depth:
                raise ValueError(f"{name}: image has {len(rows)} entries, table depth is "
                                 f"{table.depth}")
            self.words[name] = tuple(table.encode_entry(e, index=i) for i, e in enumerate(rows))

    def writes(self, previous: "TableImage | None" = None) -> list[tuple[int, int]]:
        """(address, word) pairs that load this image into the shadow bank.

        With ``previous`` (the image last written into the *same* bank, i.e. two commits
        ago), only the words that differ are returned.
        """
        if previous is not None and (previous.regmap.layout_crc != self.regmap.layout_crc
                                     or previous.regmap.parameters != self.regmap.parameters):
            raise ValueError("previous image was compiled for a different register map")
        out = []
        for name in sorted(self.words, key=lambda n: self.regmap.table(n).address):
            table = self.regmap.table(name)
            old = previous.words[name] if previous is not None else None
            for index, entry in enumerate(self.words[name]):
                base = table.entry_address(index)
                for k, word in enumerate(entry):
                    if old is None or old[index][k] != word:
                        out.append((base + k, word))
        return out

    def lookup(self, symbol: str | bytes) -> int | None:
        """Symbol index the gateware would find for ``symbol``, or None (unknown).

        Mirrors the hardware: read the candidate slots, match valid and the full symbol.
        """
        word = _wire_word(symbol)
        slots = self.entries["symbol_hash"]
        for slot in SymbolHash(len(slots)).probe(symbol):
            entry = slots[slot]
            if entry["valid"] and entry["symbol"] == word:
                return entry["index"]
        return None


def _zero_entries(regmap: "RegisterMap", name: str) -> list[dict[str, int]]:
    table = regmap.table(name)
    return [dict.fromkeys((f.name for f in table.fields), 0) for _ in range(table.depth)]


def _check_indices(kind: str, indices: Sequence[int], depth: int) -> None:
    seen: set[int] = set()
    for index in indices:
        if not 0 <= index < depth:
            raise ValueError(f"{kind} index {index} outside the gateway's 0..{depth - 1}")
        if index in seen:
            raise ValueError(f"{kind} index {index} configured twice")
        seen.add(index)


# A reference stamp meaning "the time this bank is committed": the model stamps a newly
# loaded reference with its Commit's time, which the host cannot know when it writes the
# shadow bank. The gateware reads this value as the active bank's commit time.
REFERENCE_AT_COMMIT = (1 << 64) - 1


def compile_limits(limits: Limits, regmap: "RegisterMap", *,
                   reference_stamp_us: int = REFERENCE_AT_COMMIT) -> TableImage:
    """Compile ``limits`` into the banked tables of ``regmap``.

    Parameters
    ----------
    limits : Limits
        A validated limit set.
    regmap : RegisterMap
        The gateway's register map (its build parameters bound the table sizes).
    reference_stamp_us : int
        Gateway timebase (microseconds) to stamp the file's reference prices with. The
        default, :data:`REFERENCE_AT_COMMIT`, stamps them with the commit's time, as the
        model does for a symbol the commit loads; for a symbol already loaded the driver
        writes the reference and stamp it holds (a re-commit never refreshes a reference).

    Raises
    ------
    ValueError
        Too many sessions or symbols, duplicate indices or symbols, or a value that does not
        fit its field (the message names table, entry and field).
    SymbolTableFull
        The symbol hash table cannot place every symbol.
    """
    if len(limits.sessions) > regmap.n_sessions:
        raise ValueError(f"{len(limits.sessions)} sessions configured, the gateway has "
                         f"{regmap.n_sessions}")
    if len(limits.symbols) > regmap.n_symbols:
        raise ValueError(f"{len(limits.symbols)} symbols configured, the gateway has "
                         f"{regmap.n_symbols}")
    _check_indices("session", [s.index for s in limits.sessions], regmap.n_sessions)
    _check_indices("symbol", [s.index for s in limits.symbols], regmap.n_symbols)
    names = [s.symbol for s in limits.symbols]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"symbol {duplicate!r} configured twice")

    session = _zero_entries(regmap, "session")
    session_limits = _zero_entries(regmap, "session_limits")
    for s in limits.sessions:
        session[s.index].update(client_ip=s.client.ip, client_port=s.client.port,
                                exchange_ip=s.exchange.ip, exchange_port=s.exchange.port,
                                valid=1)
        session_limits[s.index].update(
            max_order_quantity=s.max_order_quantity, max_order_notional=s.max_order_notional,
            credit=s.credit, rate_burst=s.rate.burst, rate_refill_us=s.rate.refill_us,
            rate_trip_after=s.rate.trip_after)

    symbol_limits = _zero_entries(regmap, "symbol_limits")
    for y in limits.symbols:
        symbol_limits[y.index].update(
            reference_price=y.reference_price, reference_stamp_us=reference_stamp_us,
            collar=y.collar, max_order_quantity=y.max_order_quantity,
            max_order_notional=y.max_order_notional, max_long=y.max_long,
            max_short=y.max_short, restricted=int(y.restricted), valid=1)

    gateway = _zero_entries(regmap, "gateway_limits")
    g = limits.gateway
    gateway[0].update(credit=g.credit, heartbeat_timeout_us=g.heartbeat_timeout_us,
                      reference_max_age_us=g.reference_max_age_us)

    symbol_hash = _zero_entries(regmap, "symbol_hash")
    for slot, position in enumerate(place_symbols(names, regmap.symbol_slots)):
        if position is not None:
            y = limits.symbols[position]
            symbol_hash[slot].update(symbol=symbol_word(y.symbol), index=y.index, valid=1)

    return TableImage(regmap, {
        "session": session,
        "session_limits": session_limits,
        "symbol_limits": symbol_limits,
        "gateway_limits": gateway,
        "symbol_hash": symbol_hash,
    })


@dataclass(frozen=True)
class Reference:
    """The reference price a symbol index holds on a gateway, and when it was set.

    Attributes
    ----------
    symbol : str
        The symbol the index names now.
    price : int
        Price units.
    stamp_us : int
        Gateway timebase (microseconds) when it was set.
    """

    symbol: str
    price: int
    stamp_us: int


def keep_references(image: TableImage, held: Mapping[int, Reference]) -> TableImage:
    """``image`` for a re-commit: every symbol index that keeps its symbol keeps its reference.

    The model's rule (:class:`~wiregate.sw.model.Commit`): a symbol already loaded keeps its
    reference and stamp; a new one, or an index that now names another symbol, takes the
    image's. ``held`` maps the symbol indices loaded now to what they hold.
    """
    names = {e["index"]: e["symbol"] for e in image.entries["symbol_hash"] if e["valid"]}
    entries = {name: [dict(e) for e in rows] for name, rows in image.entries.items()}
    for index, reference in held.items():
        if names.get(index) == symbol_word(reference.symbol):
            entries["symbol_limits"][index].update(reference_price=reference.price,
                                                   reference_stamp_us=reference.stamp_us)
    return TableImage(image.regmap, entries)
