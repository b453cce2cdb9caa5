# Ref: wiregate symbol hash 1.0 (wiregate.sw.tables)
"""Symbol lookup: an order's 8-byte symbol to its symbol index, by the host-filled hash table.

The host places every configured symbol in one of its four candidate slots
(:mod:`wiregate.sw.tables`); here the four slots are read in the same cycle, one memory each,
and the slot whose valid bit is set and whose stored symbol equals the order's gives the
index. Nothing else can match, so an unknown symbol is never mistaken for a known one,
whatever it hashes to. The hashes are H3: each bucket bit is an XOR of symbol bits chosen by
the fixed masks the host uses (:attr:`SymbolHash.matrices`), no carry chain, no multiplier.

Both banks of the table live in each memory (the bank is the top address bit). A lookup
names the bank it reads: the risk core stamps each order with the bank that was active when
the order entered, so an order in flight across a commit is judged against one bank only.

A slot stores only the symbol bits its address does not already tell (the *tag*). The
bucket is a linear map of the symbol, so a set of ``bucket_bits`` columns of the matrix
that are independent (the *pivots*: the first such columns, from bit 0 up) are determined by
the bucket and the other bits: two symbols of one bucket with equal tags are equal. That
holds for entries in their own bucket only, so a host write that puts a symbol anywhere else
stores the slot empty (the host places every symbol in one of its candidate slots; a slot
elsewhere could otherwise match a symbol it is not).

The host reads a slot of the shadow bank back (``peek``) on the read ports, in cycles with
no lookup: the symbol is rebuilt from the tag and the slot's bucket (the pivot bits are a
fixed XOR of the bucket and the tag), so a slot reads as the host wrote it, except a slot
not in use, whose symbol reads 0, and a symbol written outside its own bucket, which reads
as a slot not in use. The answer takes two registers, the slot's raw entry and the rebuilt
one: the block RAM's output, the pick of the probe and the rebuild's XORs in one cycle were
the engine's slowest path (16.9 ns routed at W = 1).
"""

import operator
from functools import reduce

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.tables import PROBES, WAYS

from ..tables import entry_layout, write_signature

__all__ = ["SymbolLookup"]


def _pivots(masks) -> list[int]:
    """The pivot columns of the hash whose output bit ``j`` is the parity under
    ``masks[j]``: the first columns, from bit 0 up, that are linearly independent."""
    basis = {}          # leading bit -> reduced column (a bucket_bits-bit vector)
    chosen = []
    for bit in range(64):
        column = sum((mask >> bit & 1) << j for j, mask in enumerate(masks))
        for lead in sorted(basis, reverse=True):
            if column >> lead & 1:
                column ^= basis[lead]
        if column:
            basis[column.bit_length() - 1] = column
            chosen.append(bit)
    return chosen


def _rebuild(masks, pivots) -> dict[int, tuple[int, int]]:
    """For each pivot bit ``p``: (bucket mask, symbol mask) with ``symbol[p]`` the parity of
    the bucket under the first XOR the parity of the symbol's other bits under the second
    (a Gaussian elimination of the hash's equations on the pivot columns)."""
    rows = [[mask, 1 << j] for j, mask in enumerate(masks)]    # symbol bits, bucket bits
    solved = {}
    for p in pivots:
        row = next(r for r in rows if r[0] >> p & 1)
        rows.remove(row)
        for other in (*rows, *solved.values()):
            if other[0] >> p & 1:
                other[0] ^= row[0]
                other[1] ^= row[1]
        solved[p] = row
    return {p: (bucket, symbol & ~(1 << p)) for p, (symbol, bucket) in solved.items()}


class SymbolLookup(wiring.Component):
    """Probe the symbol hash table: four slots in parallel, a match on symbol and valid bit.

    Parameters
    ----------
    regmap : RegisterMap
        Gives ``symbol_slots``, the hash geometry and the entry layout.
    latency : 2 or 3
        Cycles from a lookup to its answer. At 3 the four compares are registered before
        the match picks the index (the block RAM's output and a 56-bit compare fill a
        cycle at 125 MHz on their own).

    Attributes
    ----------
    write : In(write port)
        Host writes of ``symbol_hash`` entries, by slot, into bank ``write_bank``.
    write_bank : In(1)
    i : In(struct)
        ``valid``, ``bank`` (the bank to read), ``symbol`` (64 bits, first wire byte most
        significant).
    o : Out(struct)
        ``valid``, ``found``, ``index``: the answer to the lookup presented ``latency``
        cycles earlier.
    peek : In(slot; data, ok)
        The host's read of slot ``slot`` of bank ``write_bank``: ``data`` is the entry at
        the slot of three cycles before, when ``ok`` (no lookup was presented then).

    Latency
    -------
    ``latency`` cycles: the block RAM read, then the four compares (registered), at 3 then
    the match.
    """

    def __init__(self, regmap, latency=2):
        if latency not in (2, 3):
            raise ValueError(f"latency must be 2 or 3, not {latency!r}")
        self.latency = latency
        self._regmap = regmap
        self._hash = regmap.symbol_hash
        index = entry_layout(regmap, "symbol_hash").members["index"]
        super().__init__({
            "write": In(write_signature(regmap, "symbol_hash")),
            "write_bank": In(1),
            "i": In(data.StructLayout({"valid": 1, "bank": 1, "symbol": 64})),
            "o": Out(data.StructLayout({"valid": 1, "found": 1, "index": index})),
            "peek": In(wiring.Signature({
                "slot": Out(range(regmap.symbol_slots)),
                "data": In(entry_layout(regmap, "symbol_hash")),
                "ok": In(1)})),
        })

    def elaborate(self, platform):
        m = Module()
        geometry = self._hash
        entry = entry_layout(self._regmap, "symbol_hash")
        bits = geometry.bucket_bits

        # H3: bucket bit j of hash t is the parity of the symbol bits under mask (t, j).
        def bucket(masks, symbol):
            return Cat((symbol & mask).xor() for mask in masks)

        buckets, tags, rebuilt = [], [], []
        peek = self.peek
        for t, masks in enumerate(geometry.matrices):
            buckets.append(Signal(bits, name=f"bucket{t}"))
            m.d.comb += buckets[t].eq(bucket(masks, self.i.symbol))
            pivots = _pivots(masks)
            kept = [b for b in range(64) if b not in pivots]
            tags.append(lambda symbol, kept=kept: Cat(symbol[b] for b in kept))
            rebuilt.append((kept, _rebuild(masks, pivots)))
        # The host's symbol, in its own bucket of each hash (else its slot is stored empty).
        at_home = [Signal(name=f"at_home{t}") for t in range(len(geometry.matrices))]
        m.d.comb += [home.eq(bucket(masks, self.write.entry.symbol) == self.write.index[:bits])
                     for home, masks in zip(at_home, geometry.matrices, strict=True)]

        stage = Signal(data.StructLayout({"valid": 1, "symbol": 64}))
        m.d.sync += [stage.valid.eq(self.i.valid), stage.symbol.eq(self.i.symbol)]
        matches, peeked = [], []
        for k in range(PROBES):
            tag = tags[k // WAYS]
            slot = data.StructLayout({"valid": 1, "tag": len(tag(self.i.symbol)),
                                      "index": entry.members["index"]})
            memory = Memory(shape=slot, depth=2 << bits, init=[])
            m.submodules[f"slots{k}"] = memory
            write = memory.write_port()
            read = memory.read_port()
            m.d.comb += [
                write.addr.eq(Cat(self.write.index[:bits], self.write_bank)),
                write.data.valid.eq(self.write.entry.valid & at_home[k // WAYS]),
                write.data.tag.eq(tag(self.write.entry.symbol)),
                write.data.index.eq(self.write.entry.index),
                write.en.eq(self.write.en & (self.write.index[bits:] == k)),
                read.addr.eq(Mux(self.i.valid, Cat(buckets[k // WAYS], self.i.bank),
                                 Cat(peek.slot[:bits], self.write_bank))),
            ]
            peeked.append(read.data)
            match = Signal(name=f"match{k}")
            slot_index = Signal.like(read.data.index, name=f"index{k}")
            compared = [match.eq(read.data.valid & (read.data.tag == tag(stage.symbol))),
                        slot_index.eq(read.data.index)]
            if self.latency == 3:
                m.d.sync += compared
            else:
                m.d.comb += compared
            matches.append((match, slot_index))

        # The host's read: the slot's memory, registered, then its symbol rebuilt from tag and
        # bucket, registered again.
        raw = Signal.like(peeked[0])
        held_slot = Signal.like(peek.slot)
        raw_ok = Signal()
        m.d.sync += [raw.eq(Array(p.as_value() for p in peeked)[peek.slot[bits:]]),
                     held_slot.eq(peek.slot), raw_ok.eq(~stage.valid)]
        probe = held_slot[bits:]
        symbol = Signal(64)
        for t, (kept, solution) in enumerate(rebuilt):
            with m.If(probe // WAYS == t):
                known = Signal(64, name=f"tag_bits{t}")     # the tag, in place
                m.d.comb += [known[b].eq(raw.tag[i]) for i, b in enumerate(kept)]
                m.d.comb += symbol.eq(known)
                m.d.comb += [symbol[p].eq((held_slot[:bits] & bucket_mask).xor()
                                          ^ (known & symbol_mask).xor())
                             for p, (bucket_mask, symbol_mask) in solution.items()]
        m.d.sync += [peek.data.symbol.eq(Mux(raw.valid, symbol, 0)),
                     peek.data.index.eq(raw.index), peek.data.valid.eq(raw.valid),
                     peek.ok.eq(raw_ok)]

        # The host never places a symbol twice, so at most one slot matches: the index is an
        # OR of the slots' indices, each gated by its match, not a chain of multiplexers.
        index = Signal.like(self.o.index)
        gated = [Mux(match, slot_index, 0) for match, slot_index in matches]
        m.d.comb += index.eq(reduce(operator.or_, gated))
        valid = stage.valid
        if self.latency == 3:
            valid = Signal(name="compared_valid")
            m.d.sync += valid.eq(stage.valid)
        m.d.sync += [
            self.o.valid.eq(valid),
            self.o.found.eq(Cat(match for match, _ in matches).any()),
            self.o.index.eq(index),
        ]
        return m
