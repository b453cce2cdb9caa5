# Ref: wiregate register map 1.4 (this module is the specification; docs/regmap.md is generated)
"""The register map: the one declaration of every register and table of the gateway.

The gateware builds its register file and tables from a :class:`RegisterMap`, the host
driver encodes its reads and writes with it, and ``docs/regmap.md`` is generated from it
(``python -m wiregate.sw.docgen``). Nobody types an address: registers and tables are
declared below as data (name, width, access, fields, description) and every address and
every field offset is computed.

Addressing is in 32-bit words. A 64-bit value occupies two consecutive words, low word at
the lower address, and is aligned to two words. Field offsets count bits from bit 0 of an
item's first word (word ``k`` holds bits ``32k .. 32k+31``). Fields are placed in
declaration order; a field of 32 bits or more, or one that would straddle a word boundary,
starts on the next word.

Multi-word writes are atomic. The gateware stages each word of a 64-bit register or of a
table entry and applies the item when its last word (the highest address among the item's
used words) is written, with every word as staged then; the encoders below emit the low word
first and that trigger word last. Staging is per register, and one staging register serves
every table (the entry index is the trigger word's), so the words of one entry are written
with no other table entry in between: the driver sends each entry whole in one command. A
read of a staged RW register returns the value last applied, not the staged words.

Layout rules, checked at construction:

* the ID block sits at address 0 and its layout never depends on the build parameters, so a
  host reads it first, with any parameters, and checks it before touching anything else;
* register blocks follow in declaration order, each aligned to its power-of-two size;
* tables follow, smallest first, each aligned to its size (depth rounded up to a power of
  two, times ``entry_words``, itself a power of two), so an entry address is a base plus
  a shifted index;
* no two items overlap, every field fits its item, no two fields of an item overlap.

Banked tables are double-buffered: the host writes (and reads back) the shadow bank only,
and a write of ``commit.swap`` makes the gateware swap shadow and active between two
orders. After a swap the shadow bank holds the image of two commits ago, so the host writes
a complete image (or the difference from the image it wrote into that bank) every time.

The engine's state (exposure, open orders, per-session state) and the banked tables are read
through the engine's own table read ports, in cycles when no order needs them: such a read
is answered some cycles later, never stalls an order, and one read is answered before the
next is taken.
"""

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from itertools import pairwise

from wiregate.sw.limits import RATE_BURST_BITS, RATE_REFILL_BITS, RATE_TRIP_BITS
from wiregate.sw.reasons import REASON_BITS, Reason
from wiregate.sw.tables import SymbolHash

__all__ = [
    "ACCESS_MEANING",
    "COUNT_BITS",
    "MAGIC",
    "VERSION",
    "WORD_BITS",
    "Access",
    "Field",
    "Register",
    "RegisterMap",
    "RegmapMismatch",
    "Table",
    "check_layout",
]

WORD_BITS = 32
# The gateway's live event counters: each holds at 2**COUNT_BITS - 1 (never wraps), and the
# map's 64-bit counter registers read it zero-extended.
COUNT_BITS = 32
_WORD_MASK = (1 << WORD_BITS) - 1

MAGIC = int.from_bytes(b"WGTE", "big")   # 0x57475445: "WGTE" read as a big-endian word
VERSION = (1, 4)                          # (major, minor) of this layout


class Access(StrEnum):
    """How the host may access a register or table."""

    RO = "ro"     # read only; writes are ignored by the gateware and refused by the encoder
    RW = "rw"     # read and write
    W1S = "w1s"   # reads the state; writing 1 to a bit sets it, 0 leaves it alone
    W1C = "w1c"   # reads the state; writing 1 to a bit clears it, 0 leaves it alone
    WO = "wo"     # write only (a strobe or a command); reads return 0


ACCESS_MEANING = {
    Access.RO: "read only",
    Access.RW: "read and write",
    Access.W1S: "reads the state; writing 1 to a bit sets it, 0 leaves it alone",
    Access.W1C: "reads the state; writing 1 to a bit clears it, 0 leaves it alone",
    Access.WO: "write only: each write is a command or strobe; reads return 0",
}


@dataclass(frozen=True)
class Field:
    """One named bit field of a register or of a table entry.

    Attributes
    ----------
    name : str
    offset : int
        First bit, counted from bit 0 of the item's first word.
    width : int
        Bits.
    description : str
    """

    name: str
    offset: int
    width: int
    description: str

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def check(self, value: int, where: str) -> int:
        """Return ``value`` if it fits this field, else raise ValueError naming the field."""
        if not isinstance(value, int):
            raise TypeError(f"{where}.{self.name} must be an integer, got {value!r}")
        if not 0 <= value <= self.mask:
            raise ValueError(f"{where}.{self.name} = {value} does not fit in {self.width} "
                             f"bits (0..{self.mask})")
        return int(value)


def _pack(fields: Sequence[Field], values: Mapping[str, int], where: str) -> int:
    by_name = {f.name: f for f in fields}
    unknown = sorted(set(values) - by_name.keys())
    if unknown:
        raise ValueError(f"{where} has no field {unknown[0]!r} (fields: "
                         f"{', '.join(by_name)})")
    value = 0
    for name, field_value in values.items():
        field = by_name[name]
        value |= field.check(field_value, where) << field.offset
    return value


def _unpack(fields: Sequence[Field], value: int) -> dict[str, int]:
    return {f.name: value >> f.offset & f.mask for f in fields}


def _split(value: int, words: int) -> list[int]:
    return [value >> (WORD_BITS * k) & _WORD_MASK for k in range(words)]


def _join(words: Sequence[int], count: int, where: str) -> int:
    if len(words) != count:
        raise ValueError(f"{where} needs {count} words, got {len(words)}")
    value = 0
    for k, word in enumerate(words):
        if not 0 <= word <= _WORD_MASK:
            raise ValueError(f"{where} word {k} = {word} is not a 32-bit value")
        value |= word << (WORD_BITS * k)
    return value


def _pow2(n: int) -> int:
    """Smallest power of two >= n (n >= 1)."""
    return 1 << (n - 1).bit_length()


def _align(address: int, alignment: int) -> int:
    return -(-address // alignment) * alignment


@dataclass(frozen=True)
class Register:
    """A register of one or two words.

    Attributes
    ----------
    name : str
    address : int
        Word address of the first (low) word.
    width : int
        32 or 64 bits.
    access : Access
    reset : int
        Value after reset (for the ID block: the value the host expects to read).
    description : str
    group : str
        The block it belongs to (``id``, ``control``, ...).
    fields : tuple[Field, ...]
        A register declared without fields has one field, ``value``, of its full width.
    """

    name: str
    address: int
    width: int
    access: Access
    reset: int
    description: str
    group: str
    fields: tuple[Field, ...]

    @property
    def words(self) -> int:
        return self.width // WORD_BITS

    @property
    def addresses(self) -> tuple[int, ...]:
        return tuple(range(self.address, self.address + self.words))

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")

    def encode(self, value: int | None = None, **fields: int) -> list[int]:
        """Words to write (low word first): a whole ``value`` or named ``fields``.

        Fields not named are written as 0.
        """
        if value is not None and fields:
            raise ValueError(f"{self.name}: give a whole value or fields, not both")
        if value is None:
            return _split(_pack(self.fields, fields, self.name), self.words)
        if not isinstance(value, int) or not 0 <= value < 1 << self.width:
            raise ValueError(f"{self.name} = {value!r} does not fit in {self.width} bits")
        covered = sum(f.mask << f.offset for f in self.fields)
        if value & ~covered:
            raise ValueError(f"{self.name} = {value:#x} sets bits outside its fields")
        return _split(value, self.words)

    def value(self, words: Sequence[int]) -> int:
        """The register value from the words read (low word first)."""
        return _join(words, self.words, self.name)

    def decode(self, words: Sequence[int]) -> dict[str, int]:
        """Field values from the words read (low word first)."""
        return _unpack(self.fields, self.value(words))


@dataclass(frozen=True)
class Table:
    """An array of equal entries, each ``entry_words`` words.

    Attributes
    ----------
    name : str
    address : int
        Word address of entry 0.
    depth : int
        Number of entries.
    entry_words : int
        Address stride between entries, a power of two.
    used_words : int
        Words of an entry that hold fields; the rest of the stride reads 0, ignores writes
        and need not be stored by the gateware.
    access : Access
    banked : bool
        Double-buffered: the host reaches the shadow bank, ``commit`` swaps.
    description : str
    fields : tuple[Field, ...]
        Layout of one entry.
    """

    name: str
    address: int
    depth: int
    entry_words: int
    used_words: int
    access: Access
    banked: bool
    description: str
    fields: tuple[Field, ...]

    @property
    def span(self) -> int:
        """Words of address space the table occupies (a power of two)."""
        return _pow2(self.depth) * self.entry_words

    @property
    def entry_bits(self) -> int:
        """Bits an entry needs (up to the end of its last field)."""
        return max(f.offset + f.width for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"table {self.name} has no field {name!r}")

    def entry_address(self, index: int) -> int:
        """Word address of entry ``index``."""
        if not isinstance(index, int) or not 0 <= index < self.depth:
            raise ValueError(f"{self.name} index {index!r} outside 0..{self.depth - 1}")
        return self.address + index * self.entry_words

    def encode_entry(self, values: Mapping[str, int], index: int | None = None) -> list[int]:
        """The ``used_words`` words of one entry; fields not named are 0."""
        where = self.name if index is None else f"{self.name}[{index}]"
        return _split(_pack(self.fields, values, where), self.used_words)

    def decode_entry(self, words: Sequence[int]) -> dict[str, int]:
        """Field values of one entry from its ``used_words`` words."""
        return _unpack(self.fields, _join(words, self.used_words, self.name))


class RegmapMismatch(ValueError):
    """The gateway's ID block does not match the host's register map.

    Attributes
    ----------
    mismatches : list[tuple[str, int, int | None]]
        (register, expected, observed) for each ID register that differs.
    """

    def __init__(self, message: str, mismatches: list[tuple[str, int, int | None]]):
        self.mismatches = mismatches
        super().__init__(message)


def _layout_fields(specs: Sequence[tuple[str, int, str]], where: str):
    """Place fields in declaration order; return (fields, words used)."""
    fields = []
    cursor = 0
    for name, width, description in specs:
        if not 1 <= width <= 2 * WORD_BITS:
            raise ValueError(f"{where}.{name}: width {width} outside 1..{2 * WORD_BITS}")
        if width >= WORD_BITS or cursor % WORD_BITS + width > WORD_BITS:
            cursor = _align(cursor, WORD_BITS)
        fields.append(Field(name, cursor, width, description))
        cursor += width
    return tuple(fields), max(1, -(-cursor // WORD_BITS))


def check_layout(registers: Sequence[Register], tables: Sequence[Table]) -> int:
    """Check the layout invariants; return the address space in words (a power of two).

    Raises ValueError naming the first violation: a duplicate name, overlapping items, a
    misaligned table or wide register, a field outside its item, or overlapping fields.
    """
    spans = []
    names: set[str] = set()
    for item in (*registers, *tables):
        if item.name in names:
            raise ValueError(f"name {item.name!r} declared twice")
        names.add(item.name)
        if isinstance(item, Register):
            if item.width not in (WORD_BITS, 2 * WORD_BITS):
                raise ValueError(f"register {item.name}: width {item.width} is not 32 or 64")
            if item.address % item.words:
                raise ValueError(f"register {item.name} at {item.address:#x} is not aligned "
                                 f"to {item.words} words")
            bits, size = item.width, item.words
            if not 0 <= item.reset < 1 << bits:
                raise ValueError(f"register {item.name}: reset does not fit {bits} bits")
        else:
            size = item.span
            if item.entry_words & (item.entry_words - 1) or item.address % size:
                raise ValueError(f"table {item.name} at {item.address:#x} is not aligned to "
                                 f"its power-of-two size {size}")
            if not 1 <= item.used_words <= item.entry_words:
                raise ValueError(f"table {item.name}: {item.used_words} used words in an "
                                 f"entry of {item.entry_words}")
            bits = item.used_words * WORD_BITS
        used = 0
        for f in item.fields:
            if f.offset < 0 or f.offset + f.width > bits:
                raise ValueError(f"{item.name}.{f.name} (bits {f.offset}..{f.offset + f.width - 1})"
                                 f" does not fit in {bits} bits")
            if used & (f.mask << f.offset):
                raise ValueError(f"{item.name}.{f.name} overlaps another field")
            used |= f.mask << f.offset
        spans.append((item.address, item.address + size, item.name))
    spans.sort()
    for (_, end, name), (start, _, other) in pairwise(spans):
        if start < end:
            raise ValueError(f"{other} at {start:#x} overlaps {name} (ends at {end:#x})")
    end = max((e for _, e, _ in spans), default=1)
    return _pow2(end)


# --------------------------------------------------------------------------- declarations
# (name, width, access, description, fields, reset); fields: (name, width, description).
# A register with no fields gets one field, "value", of its full width.

_GROUPS = {
    "id": ("ID and version",
           "Read first. Its layout never depends on the build parameters, so the host can "
           "read it before it knows them; it checks magic, version, parameters, symbol hash "
           "and layout CRC (RegisterMap.from_id) before touching anything else."),
    "control": ("Control", "Commands from the host."),
    "status": ("Status", "Gateway state. A 64-bit status register latches its high word "
                         "when its low word is read, so read low then high."),
    "kill": ("Kill latches",
             "Set and release are separate addresses (write one to set, write one to clear) "
             "so a host command never races the gateware's own automatic trip with a "
             "read-modify-write. Both addresses read the current latch. Per-session and "
             "per-symbol latches are the kill_* bitmap tables: bit i of word w is index "
             "32w + i. Cancels still pass a set latch."),
    "reference": ("Reference price update",
                  "Write ref_price and ref_stamp_us, then ref_update with the symbol index: "
                  "the gateware writes price and stamp into that symbol's symbol_limits "
                  "entry in both banks at once, between two orders, so neither bank is left "
                  "with a stale reference. The stamp is the host's reading of timebase_us; "
                  "the collar rejects a reference older than reference_max_age_us."),
    "counters": ("Counters",
                 "64-bit event counters (low word first). Reads return a snapshot: writing "
                 "counter_control.snapshot copies every live counter at once, so a set of "
                 "reads is consistent and a 64-bit value never tears. The gateway counts in "
                 f"{COUNT_BITS} bits and holds a count at its top, 2**{COUNT_BITS} - 1 "
                 "(never wrapping to a small number); the high word reads 0."),
}

_COUNTERS = (
    ("frames_client_rx", "frames received on the client port"),
    ("frames_exchange_tx", "frames sent on the exchange port"),
    ("frames_exchange_rx", "frames received on the exchange port"),
    ("frames_client_tx", "frames sent on the client port"),
    ("orders_accepted", "client OUCH messages passed to the exchange"),
    ("orders_rejected", "client OUCH messages rejected (rewritten into a Debug packet)"),
    *((f"reject_{r.name.lower()}", f"rejects whose primary reason is {r.name} (bit {int(r)})")
      for r in Reason),
    ("malformed", "frames or packets that failed to parse (either direction)"),
    ("dropped_no_session", "frames toward the exchange matching no session and no pass rule"),
    ("retransmissions", "TCP segments below the next expected sequence number (re-judged)"),
    ("out_of_sync", "times a session entered the fail-closed out-of-sync state"),
    ("dropcopy_records", "drop-copy records sent whole to the host"),
    ("dropcopy_overflow", "drop-copy records lost: queue full (a sequence gap; no latch)"),
    ("fcs_errors", "frames received with a bad FCS (stomped on egress, never laundered)"),
    # The control stream's (wiregate.sw.control.Status.counter): one per class of answer.
    ("control_commands", "control frames executed (status OK)"),
    ("control_frame_errors", "control frames refused as damaged: CRC, framing, length, "
                             "version or MAC"),
    ("control_command_errors", "control frames refused as wrong: sequence, malformed, "
                               "unknown command, length for the command, or out of range"),
)


@dataclass(frozen=True)
class _Reg:
    name: str
    width: int
    access: Access
    description: str
    fields: tuple[tuple[str, int, str], ...] = ()
    reset: int = 0


@dataclass(frozen=True)
class _Tab:
    name: str
    depth: int
    access: Access
    banked: bool
    description: str
    fields: tuple[tuple[str, int, str], ...]


def _check_int(name: str, value, low: int, high: int, power_of_two: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if ok and power_of_two:
        ok = value & (value - 1) == 0
    if not ok:
        kind = "a power of two" if power_of_two else "an integer"
        raise ValueError(f"{name} must be {kind} in {low}..{high}, got {value!r}")


class RegisterMap:
    """Every register and table of a gateway built with the given parameters.

    Parameters
    ----------
    n_sessions : int
        OUCH sessions (1..1024).
    n_symbols : int
        Symbols with limits (1..65536).
    symbol_slots : int
        Slots in the symbol hash table: a power of two, 8..4194304, at least ``n_symbols``.
    n_orders : int
        Open-order table entries per session (1..65536).
    beat_bytes : int
        Datapath beat width W in bytes: a power of two, 1..64.
    holdback : int
        Egress holdback H in bytes (0..65535).
    n_pass_rules : int
        Host pass rules for non-session traffic toward the exchange (1..64).
    n_executions : int
        Remembered executions per session, for Broken Trade and Correction: a power of two,
        2..65536 (the model's ``n_executions``).
    dropcopy_depth : int
        Rows of the drop-copy queue: a power of two, 1..65536.
    n_verdicts : int or None
        Remembered verdicts per session and memory, for retransmissions (model rule 9):
        1..``n_orders``; None: ``n_orders``.
    profile : int
        Id of the build profile the sizes come from (:mod:`wiregate.sw.profiles`); 0 when
        they were given by hand.

    Attributes
    ----------
    parameters : dict[str, int]
        The parameters above, by name.
    registers : tuple[Register, ...]
        In address order.
    tables : tuple[Table, ...]
        In address order.
    size_words : int
        Address space in words (a power of two); ``address_bits`` its log2.
    layout_crc : int
        CRC-32 of every item's name, address, width, access and field layout.
    symbol_hash : SymbolHash
        Probe geometry of the symbol hash table.
    """

    def __init__(self, n_sessions: int = 8, n_symbols: int = 1024, symbol_slots: int = 2048,
                 n_orders: int = 256, beat_bytes: int = 1, holdback: int = 32,
                 n_pass_rules: int = 4, n_executions: int = 256, dropcopy_depth: int = 512,
                 n_verdicts: int | None = None, profile: int = 0):
        _check_int("n_sessions", n_sessions, 1, 1024)
        _check_int("n_symbols", n_symbols, 1, 1 << 16)
        self.symbol_hash = SymbolHash(symbol_slots)  # validates symbol_slots
        if symbol_slots < n_symbols:
            raise ValueError(f"symbol_slots ({symbol_slots}) must be at least n_symbols "
                             f"({n_symbols})")
        _check_int("n_orders", n_orders, 1, 1 << 16)
        _check_int("beat_bytes", beat_bytes, 1, 64, power_of_two=True)
        _check_int("holdback", holdback, 0, 0xFFFF)
        _check_int("n_pass_rules", n_pass_rules, 1, 64)
        _check_int("n_executions", n_executions, 2, 1 << 16, power_of_two=True)
        _check_int("dropcopy_depth", dropcopy_depth, 1, 1 << 16, power_of_two=True)
        if n_verdicts is None:
            n_verdicts = n_orders
        _check_int("n_verdicts", n_verdicts, 1, n_orders)
        _check_int("profile", profile, 0, 0xFFFF)
        self.n_sessions = n_sessions
        self.n_symbols = n_symbols
        self.symbol_slots = symbol_slots
        self.n_orders = n_orders
        self.beat_bytes = beat_bytes
        self.holdback = holdback
        self.n_pass_rules = n_pass_rules
        self.n_executions = n_executions
        self.dropcopy_depth = dropcopy_depth
        self.n_verdicts = n_verdicts
        self.profile = profile
        self.parameters = {
            "n_sessions": n_sessions, "n_symbols": n_symbols, "symbol_slots": symbol_slots,
            "n_orders": n_orders, "beat_bytes": beat_bytes, "holdback": holdback,
            "n_pass_rules": n_pass_rules, "n_executions": n_executions,
            "dropcopy_depth": dropcopy_depth, "n_verdicts": n_verdicts, "profile": profile,
        }
        self.symbol_index_bits = max(1, (n_symbols - 1).bit_length())

        registers, tables = self._allocate()
        self.size_words = check_layout(registers, tables)
        self.address_bits = self.size_words.bit_length() - 1
        self.layout_crc = self._crc(registers, tables)
        registers = [replace(r, reset=self.layout_crc) if r.name == "layout_crc" else r
                     for r in registers]
        self.registers = tuple(registers)
        self.tables = tuple(tables)
        self._by_name: dict[str, Register | Table] = {i.name: i for i in (*registers, *tables)}

    # -- declaration --------------------------------------------------------------------

    def _blocks(self) -> list[tuple[str, list[_Reg]]]:
        idx = self.symbol_index_bits
        ro = Access.RO
        return [
            ("id", [
                _Reg("magic", 32, ro, 'constant 0x57475445, "WGTE"', reset=MAGIC),
                _Reg("version", 32, ro, "register map version",
                     (("minor", 16, "compatible additions"), ("major", 16, "layout changes")),
                     reset=VERSION[0] << 16 | VERSION[1]),
                _Reg("param_sessions", 32, ro, "build parameter n_sessions",
                     reset=self.n_sessions),
                _Reg("param_symbols", 32, ro, "build parameter n_symbols",
                     reset=self.n_symbols),
                _Reg("param_symbol_slots", 32, ro, "build parameter symbol_slots",
                     reset=self.symbol_slots),
                _Reg("param_orders", 32, ro, "build parameter n_orders (per session)",
                     reset=self.n_orders),
                _Reg("param_beat_bytes", 32, ro, "build parameter W (datapath bytes per beat)",
                     reset=self.beat_bytes),
                _Reg("param_holdback", 32, ro, "build parameter H (egress holdback, bytes)",
                     reset=self.holdback),
                _Reg("param_pass_rules", 32, ro, "build parameter n_pass_rules",
                     reset=self.n_pass_rules),
                _Reg("param_reason_bits", 32, ro, "reject reason bits (wiregate.sw.reasons)",
                     reset=REASON_BITS),
                _Reg("symbol_hash_id", 32, ro, "CRC-32 of the symbol hash matrices in use",
                     reset=self.symbol_hash.fingerprint),
                _Reg("layout_crc", 32, ro, "CRC-32 of this register layout"),
                _Reg("param_executions", 32, ro,
                     "build parameter n_executions (remembered executions per session)",
                     reset=self.n_executions),
                _Reg("param_dropcopy_depth", 32, ro, "build parameter dropcopy_depth "
                     "(drop-copy queue rows)", reset=self.dropcopy_depth),
                _Reg("param_profile", 32, ro, "build profile id (wiregate.sw.profiles); "
                     "0: sizes given by hand", reset=self.profile),
                _Reg("param_verdicts", 32, ro, "build parameter n_verdicts (remembered "
                     "verdicts per session, each memory)", reset=self.n_verdicts),
            ]),
            ("control", [
                _Reg("commit", 32, Access.WO,
                     "swap shadow and active limit banks between two orders",
                     (("swap", 1, "write 1 to request the swap"),)),
                _Reg("heartbeat", 32, Access.WO, "host heartbeat: restarts the watchdog",
                     (("beat", 1, "write 1"),)),
                _Reg("scratch", 32, Access.RW, "free for the host (bus test)"),
                _Reg("counter_control", 32, Access.WO, "counter snapshot and clear",
                     (("snapshot", 1, "copy every live counter into the readable snapshot"),
                      ("clear", 1, "zero every live counter (after the snapshot, if both)"))),
            ]),
            ("status", [
                _Reg("status", 32, ro, "gateway state flags",
                     (("limits_loaded", 1, "a commit has happened since reset"),
                      ("active_bank", 1, "bank the checks read (the other is the shadow)"),
                      ("heartbeat_lost", 1, "host silent past heartbeat_timeout_us"),
                      ("commit_pending", 1, "swap requested, waiting for an order boundary; "
                                            "do not write the shadow bank"))),
                _Reg("epoch", 32, ro, "commits since reset (the swap increments it)"),
                _Reg("timebase_us", 64, ro, "microseconds since reset"),
                _Reg("gateway_credit_used", 64, ro, "working + executed gross notional over "
                     "all sessions (price units)"),
            ]),
            ("kill", [
                _Reg("kill_gateway_set", 32, Access.W1S, "set the gateway kill latch",
                     (("gateway", 1, "gateway-wide latch"),)),
                _Reg("kill_gateway_release", 32, Access.W1C, "release the gateway kill latch",
                     (("gateway", 1, "gateway-wide latch"),)),
            ]),
            ("reference", [
                _Reg("ref_price", 32, Access.RW, "staged reference price (price units)"),
                _Reg("ref_stamp_us", 64, Access.RW, "staged reference stamp (timebase_us)"),
                _Reg("ref_update", 32, Access.WO, "apply the staged reference to a symbol",
                     (("symbol", idx, "symbol index"),)),
            ]),
            ("counters", [_Reg(name, 64, ro, text) for name, text in _COUNTERS]),
        ]

    def _table_specs(self) -> list[_Tab]:
        idx = self.symbol_index_bits
        order_bits = (self.n_orders - 1).bit_length()
        session_words = -(-self.n_sessions // WORD_BITS)
        symbol_words = -(-self.n_symbols // WORD_BITS)
        bitmap = (("bits", 32, "bit i: index 32 * entry + i"),)
        return [
            _Tab("session", self.n_sessions, Access.RW, True,
                 "session 4-tuples; the entry index is the session index",
                 (("client_ip", 32, "client IPv4 address"),
                  ("exchange_ip", 32, "exchange IPv4 address"),
                  ("client_port", 16, "client TCP port"),
                  ("exchange_port", 16, "exchange TCP port"),
                  ("valid", 1, "entry in use"))),
            _Tab("pass_rule", self.n_pass_rules, Access.RW, False,
                 "host pass rules: non-session traffic toward the exchange that may pass",
                 (("ip", 32, "IPv4 address to match"),
                  ("ip_mask", 32, "address bits compared (0 matches any address)"),
                  ("port", 16, "TCP/UDP port to match"),
                  ("port_mask", 16, "port bits compared (0 matches any protocol and port)"),
                  ("match_source", 1, "0: match the destination, 1: match the source"),
                  ("valid", 1, "rule in use"))),
            _Tab("symbol_hash", self.symbol_slots, Access.RW, True,
                 "symbol hash slots (sw/tables.py places, the gateware probes 4 in parallel)",
                 (("symbol", 64, "8 ASCII bytes, space padded, first byte most significant"),
                  ("index", idx, "symbol index"),
                  ("valid", 1, "slot in use"))),
            _Tab("symbol_limits", self.n_symbols, Access.RW, True,
                 "per-symbol limits, by symbol index; ref_update sets the reference "
                 "the collar uses in both banks, but a read returns the reference "
                 "fields as the host wrote them",
                 (("reference_price", 31, "collar reference (price units, at most "
                                          "OUCH_MAX_PRICE); 0: none, reject"),
                  ("collar", 31, "band either side of the reference (price units, at most "
                                 "OUCH_MAX_PRICE)"),
                  ("max_order_quantity", 32, "shares per order"),
                  ("max_order_notional", 64, "quantity x price per order (price units)"),
                  ("max_long", 32, "projected long per session (shares)"),
                  ("max_short", 32, "projected short per session (shares)"),
                  ("restricted", 1, "restricted list: reject"),
                  ("reference_stamp_us", 64, "timebase_us when the reference was set; all "
                                             "ones: when this bank was committed"),
                  ("valid", 1, "symbol index in use"))),
            _Tab("session_limits", self.n_sessions, Access.RW, True,
                 "per-session limits, by session index",
                 (("max_order_quantity", 32, "shares per order"),
                  ("max_order_notional", 64, "quantity x price per order (price units)"),
                  ("credit", 64, "working + executed gross notional cap (price units)"),
                  ("rate_burst", RATE_BURST_BITS, "token bucket size"),
                  ("rate_refill_us", RATE_REFILL_BITS, "microseconds per token"),
                  ("rate_trip_after", RATE_TRIP_BITS, "throttled rejects in a row that "
                                                      "trip the session kill latch; 0: "
                                                      "never"))),
            _Tab("gateway_limits", 1, Access.RW, True, "gateway-wide limits",
                 (("credit", 64, "gross notional cap over all sessions (price units)"),
                  ("heartbeat_timeout_us", 32, "host silence that fails closed"),
                  ("reference_max_age_us", 32, "a reference older than this is stale; "
                                               "0: never"))),
            _Tab("session_state", self.n_sessions, Access.RO, False,
                 "per-session state the checks keep, by session index",
                 (("credit_used", 64, "working + executed gross notional (price units)"),
                  ("last_user_ref_num", 32, "highest UserRefNum accepted (duplicate check)"),
                  ("tokens", RATE_BURST_BITS, "message-rate tokens left"),
                  ("throttle_count", RATE_TRIP_BITS, "throttled rejects in a row (held "
                                                     "at its largest value)"),
                  ("throttled", 1, "the session is throttled"))),
            _Tab("exposure", self.n_sessions << idx, Access.RO, False,
                 "exposure of (session, symbol): entry session * 2**symbol_index_bits + "
                 "symbol (RegisterMap.exposure_index)",
                 (("position", 32, "executed position, shares, two's complement"),
                  ("working_buy", 32, "shares of working buy orders"),
                  ("working_sell", 32, "shares of working sell orders"))),
            _Tab("order", self.n_sessions << order_bits, Access.RO, False,
                 "open-order slots: entry session * n_orders + UserRefNum mod n_orders "
                 "(RegisterMap.order_index); valid only if user_ref_num is the one asked",
                 (("valid", 1, "the slot holds an order"),
                  ("pending", 1, "a Replace waiting for the exchange's Order Replaced"),
                  ("is_buy", 1, "buy side"),
                  ("symbol_index", idx, "symbol index"),
                  ("user_ref_num", 32, "UserRefNum of the order in the slot"),
                  ("quantity", 32, "open shares"),
                  ("price", 32, "price (price units)"),
                  ("charge_quantity", 32, "shares charged to the working exposure"),
                  ("charge_notional", 64, "notional charged to credit (price units)"))),
            _Tab("session_sync", session_words, Access.RO, False,
                 "per-session in-sync flags (bitmap)", bitmap),
            _Tab("kill_session_set", session_words, Access.W1S, False,
                 "per-session kill latches: set (bitmap)", bitmap),
            _Tab("kill_session_release", session_words, Access.W1C, False,
                 "per-session kill latches: release (bitmap)", bitmap),
            _Tab("kill_symbol_set", symbol_words, Access.W1S, False,
                 "per-symbol kill latches: set (bitmap)", bitmap),
            _Tab("kill_symbol_release", symbol_words, Access.W1C, False,
                 "per-symbol kill latches: release (bitmap)", bitmap),
        ]

    def _allocate(self) -> tuple[list[Register], list[Table]]:
        registers = []
        address = 0
        for group, specs in self._blocks():
            placed = []
            offset = 0
            for spec in specs:
                words = spec.width // WORD_BITS
                offset = _align(offset, words)
                fields, _ = _layout_fields(spec.fields or (("value", spec.width,
                                                             spec.description),), spec.name)
                placed.append((offset, spec, fields))
                offset += words
            address = _align(address, _pow2(offset))
            for start, spec, fields in placed:
                registers.append(Register(spec.name, address + start, spec.width, spec.access,
                                          spec.reset, spec.description, group, fields))
            address += offset
        shaped = []
        for spec in self._table_specs():
            fields, used = _layout_fields(spec.fields, spec.name)
            shaped.append((_pow2(spec.depth) * _pow2(used), spec, fields, used))
        tables = []
        # Smallest first fills the space after the registers; each starts aligned to its size.
        for span, spec, fields, used in sorted(shaped, key=lambda s: s[0]):
            address = _align(address, span)
            tables.append(Table(spec.name, address, spec.depth, _pow2(used), used, spec.access,
                                spec.banked, spec.description, fields))
            address += span
        return registers, tables

    @staticmethod
    def _crc(registers: Sequence[Register], tables: Sequence[Table]) -> int:
        lines = []
        for r in registers:
            lines.append(f"R {r.name} {r.address} {r.width} {r.access}")
            lines.extend(f" {f.name} {f.offset} {f.width}" for f in r.fields)
        for t in tables:
            lines.append(f"T {t.name} {t.address} {t.depth} {t.entry_words} {t.access} "
                         f"{int(t.banked)}")
            lines.extend(f" {f.name} {f.offset} {f.width}" for f in t.fields)
        return zlib.crc32("\n".join(lines).encode())

    # -- lookup -------------------------------------------------------------------------

    def register(self, name: str) -> Register:
        item = self._by_name.get(name)
        if not isinstance(item, Register):
            raise KeyError(f"no register named {name!r}")
        return item

    def table(self, name: str) -> Table:
        item = self._by_name.get(name)
        if not isinstance(item, Table):
            raise KeyError(f"no table named {name!r}")
        return item

    def group(self, name: str) -> tuple[Register, ...]:
        """Registers of one block (``id``, ``control``, ``status``, ``kill``, ...)."""
        return tuple(r for r in self.registers if r.group == name)

    @staticmethod
    def groups() -> dict[str, tuple[str, str]]:
        """Block name -> (title, description), in layout order."""
        return dict(_GROUPS)

    # -- encoding -----------------------------------------------------------------------

    def encode_write(self, name: str, value: int | None = None,
                     **fields: int) -> list[tuple[int, int]]:
        """(address, word) pairs writing register ``name`` (low word first).

        Raises ValueError for a read-only register or a value or field that does not fit.
        """
        reg = self.register(name)
        if reg.access is Access.RO:
            raise ValueError(f"register {name} is read-only")
        return list(zip(reg.addresses, reg.encode(value, **fields), strict=True))

    def encode_table_write(self, table: str, index: int, /,
                           **fields: int) -> list[tuple[int, int]]:
        """(address, word) pairs writing entry ``index`` of ``table``; unnamed fields are 0."""
        tab = self.table(table)
        if tab.access is Access.RO:
            raise ValueError(f"table {table} is read-only")
        base = tab.entry_address(index)
        words = tab.encode_entry(fields, index=index)
        return [(base + k, w) for k, w in enumerate(words)]

    def read_addresses(self, name: str, index: int | None = None) -> list[int]:
        """Word addresses to read for register ``name``, or entry ``index`` of table ``name``."""
        if index is None:
            return list(self.register(name).addresses)
        tab = self.table(name)
        base = tab.entry_address(index)
        return list(range(base, base + tab.used_words))

    def decode_read(self, name: str, words: Sequence[int],
                    index: int | None = None) -> dict[str, int]:
        """Field values from the words read at :meth:`read_addresses` (same arguments)."""
        if index is None:
            return self.register(name).decode(words)
        self.table(name).entry_address(index)  # validates the index
        return self.table(name).decode_entry(words)

    def exposure_index(self, session: int, symbol_index: int) -> int:
        """The ``exposure`` entry of (session, symbol index)."""
        self._check_session(session)
        if not isinstance(symbol_index, int) or not 0 <= symbol_index < self.n_symbols:
            raise ValueError(f"symbol index {symbol_index!r} outside 0..{self.n_symbols - 1}")
        return session << self.symbol_index_bits | symbol_index

    def order_index(self, session: int, user_ref_num: int) -> int:
        """The ``order`` entry (slot) that holds UserRefNum ``user_ref_num`` of ``session``."""
        self._check_session(session)
        if not isinstance(user_ref_num, int) or not 0 <= user_ref_num < 1 << 32:
            raise ValueError(f"UserRefNum {user_ref_num!r} is not a 32-bit value")
        slots = 1 << (self.n_orders - 1).bit_length()
        return session * slots + user_ref_num % self.n_orders

    def _check_session(self, session: int) -> None:
        if not isinstance(session, int) or not 0 <= session < self.n_sessions:
            raise ValueError(f"session index {session!r} outside 0..{self.n_sessions - 1}")

    def _latch(self, scope: str, index: int | None, action: str) -> list[tuple[int, int]]:
        if scope == "gateway":
            if index is not None:
                raise ValueError("the gateway kill latch takes no index")
            return self.encode_write(f"kill_gateway_{action}", gateway=1)
        if scope not in ("session", "symbol"):
            raise ValueError(f"kill scope must be gateway, session or symbol, got {scope!r}")
        depth = self.n_sessions if scope == "session" else self.n_symbols
        if not isinstance(index, int) or not 0 <= index < depth:
            raise ValueError(f"{scope} index {index!r} outside 0..{depth - 1}")
        word, bit = divmod(index, WORD_BITS)
        return self.encode_table_write(f"kill_{scope}_{action}", word, bits=1 << bit)

    def encode_kill(self, scope: str, index: int | None = None) -> list[tuple[int, int]]:
        """Set one kill latch: ``scope`` is gateway, session or symbol (with ``index``)."""
        return self._latch(scope, index, "set")

    def encode_release(self, scope: str, index: int | None = None) -> list[tuple[int, int]]:
        """Release one kill latch (same arguments as :meth:`encode_kill`)."""
        return self._latch(scope, index, "release")

    def encode_reference_update(self, symbol_index: int, price: int,
                                stamp_us: int) -> list[tuple[int, int]]:
        """Writes that set one symbol's reference price and stamp; the trigger comes last."""
        if not 0 <= symbol_index < self.n_symbols:
            raise ValueError(f"symbol index {symbol_index} outside 0..{self.n_symbols - 1}")
        return (self.encode_write("ref_price", price)
                + self.encode_write("ref_stamp_us", stamp_us)
                + self.encode_write("ref_update", symbol=symbol_index))

    # -- identification -----------------------------------------------------------------

    def expected_id(self) -> dict[str, int]:
        """ID register name -> the value this map expects the gateway to report."""
        return {r.name: r.reset for r in self.group("id")}

    def check_id(self, observed: Mapping[str, int]) -> None:
        """Raise :class:`RegmapMismatch` unless ``observed`` ID values match this map.

        Magic is checked first (is this a wiregate at all?), then the version, then the
        rest; the message lists every mismatch.
        """
        expected = self.expected_id()
        magic = observed.get("magic")
        if magic != MAGIC:
            raise RegmapMismatch(f"no wiregate ID block: magic {_hex(magic)}, expected "
                                 f"{MAGIC:#010x} ('WGTE')", [("magic", MAGIC, magic)])
        version = observed.get("version")
        if version != expected["version"]:
            raise RegmapMismatch(
                f"register map version {_version(version)} on the gateway, host speaks "
                f"{VERSION[0]}.{VERSION[1]}", [("version", expected["version"], version)])
        wrong = [(name, value, observed.get(name)) for name, value in expected.items()
                 if observed.get(name) != value]
        if wrong:
            detail = ", ".join(f"{n} {_hex(o)} (expected {v:#x})" for n, v, o in wrong)
            raise RegmapMismatch(f"gateway ID block differs from the host's map: {detail}",
                                 wrong)

    @classmethod
    def from_id(cls, observed: Mapping[str, int]) -> "RegisterMap":
        """Build the map for the parameters the gateway's ID block reports, and check it."""
        probe = cls()  # the ID block's layout and magic/version do not depend on parameters
        probe.check_id({**probe.expected_id(), "magic": observed.get("magic"),
                        "version": observed.get("version")})
        try:
            regmap = cls(**{name: observed[f"param_{register}"] for name, register in (
                ("n_sessions", "sessions"), ("n_symbols", "symbols"),
                ("symbol_slots", "symbol_slots"), ("n_orders", "orders"),
                ("beat_bytes", "beat_bytes"), ("holdback", "holdback"),
                ("n_pass_rules", "pass_rules"), ("n_executions", "executions"),
                ("dropcopy_depth", "dropcopy_depth"), ("n_verdicts", "verdicts"),
                ("profile", "profile"))})
        except KeyError as missing:
            raise RegmapMismatch(f"ID block read lacks {missing}", []) from None
        regmap.check_id(observed)
        return regmap


def _hex(value: int | None) -> str:
    return "missing" if value is None else f"{value:#x}"


def _version(word: int | None) -> str:
    return "missing" if word is None else f"{word >> 16}.{word & 0xFFFF}"
