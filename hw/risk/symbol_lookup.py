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
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.tables import PROBES, WAYS

from ..tables import entry_layout, write_signature

__all__ = ["SymbolLookup"]


class SymbolLookup(wiring.Component):
    """Probe the symbol hash table: four slots in parallel, a match on symbol and valid bit.

    Parameters
    ----------
    regmap : RegisterMap
        Gives ``symbol_slots``, the hash geometry and the entry layout.

    Attributes
    ----------
    write : In(write port)
        Host writes of ``symbol_hash`` entries, by slot, into bank ``write_bank``.
    write_bank : In(1)
    i : In(struct)
        ``valid``, ``bank`` (the bank to read), ``symbol`` (64 bits, first wire byte most
        significant).
    o : Out(struct)
        ``valid``, ``found``, ``index``: the answer to the lookup presented two cycles
        earlier.

    Latency
    -------
    Two cycles: the block RAM read, then the four compares (registered).
    """

    def __init__(self, regmap):
        self._regmap = regmap
        self._hash = regmap.symbol_hash
        index = entry_layout(regmap, "symbol_hash").members["index"]
        super().__init__({
            "write": In(write_signature(regmap, "symbol_hash")),
            "write_bank": In(1),
            "i": In(data.StructLayout({"valid": 1, "bank": 1, "symbol": 64})),
            "o": Out(data.StructLayout({"valid": 1, "found": 1, "index": index})),
        })

    def elaborate(self, platform):
        m = Module()
        geometry = self._hash
        entry = entry_layout(self._regmap, "symbol_hash")
        bits = geometry.bucket_bits

        # H3: bucket bit j of hash t is the parity of the symbol bits under mask (t, j).
        buckets = []
        for masks in geometry.matrices:
            bucket = Signal(bits)
            m.d.comb += bucket.eq(Cat((self.i.symbol & mask).xor() for mask in masks))
            buckets.append(bucket)

        stage = Signal(data.StructLayout({"valid": 1, "symbol": 64}))
        m.d.sync += [stage.valid.eq(self.i.valid), stage.symbol.eq(self.i.symbol)]
        matches = []
        for k in range(PROBES):
            memory = Memory(shape=entry, depth=2 << bits, init=[])
            m.submodules[f"slots{k}"] = memory
            write = memory.write_port()
            read = memory.read_port()
            m.d.comb += [
                write.addr.eq(Cat(self.write.index[:bits], self.write_bank)),
                write.data.eq(self.write.entry),
                write.en.eq(self.write.en & (self.write.index[bits:] == k)),
                read.addr.eq(Cat(buckets[k // WAYS], self.i.bank)),
            ]
            stored = entry(read.data)
            match = Signal(name=f"match{k}")
            m.d.comb += match.eq(stored.valid & (stored.symbol == stage.symbol))
            matches.append((match, stored.index))

        # The host never places a symbol twice, so at most one slot matches.
        index = Signal.like(self.o.index)
        for match, slot_index in matches:
            with m.If(match):
                m.d.comb += index.eq(slot_index)
        m.d.sync += [
            self.o.valid.eq(stage.valid),
            self.o.found.eq(Cat(match for match, _ in matches).any()),
            self.o.index.eq(index),
        ]
        return m
