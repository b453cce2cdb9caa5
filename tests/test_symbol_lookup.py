"""Symbol lookup under the Amaranth simulator, against the limit files' symbol -> index maps."""

import random
import string

import pytest
from amaranth.sim import Simulator

from wiregate.hw.risk.symbol_lookup import SymbolLookup
from wiregate.sw.limits import GatewayLimits, Limits, SymbolLimits
from wiregate.sw.regmap import RegisterMap
from wiregate.sw.tables import compile_limits, symbol_word


def random_symbols(rng, count):
    names = set()
    while len(names) < count:
        length = rng.randint(1, 8)
        names.add("".join(rng.choice(string.ascii_uppercase + ".") for _ in range(length)))
    return sorted(names)


def limits_for(names, rng):
    indices = rng.sample(range(len(names) * 2), len(names))
    symbols = tuple(
        SymbolLimits(index=i, symbol=name, reference_price=1, collar=1, max_order_quantity=1,
                     max_order_notional=1, max_long=1, max_short=1, restricted=False)
        for i, name in zip(indices, names, strict=True))
    return Limits(GatewayLimits(credit=1, heartbeat_timeout_us=1, reference_max_age_us=0),
                  (), symbols)


def near_misses(name):
    """Symbols one bit or one character away from a configured one."""
    word = symbol_word(name)
    yield (word ^ 1).to_bytes(8, "big")
    yield (word ^ (1 << 62)).to_bytes(8, "big")
    yield name.encode().ljust(8, b"\0")              # NUL padding instead of spaces
    yield (name[:-1] + "Z" if name[-1] != "Z" else name[:-1] + "Y").encode().ljust(8, b" ")


def run_lookups(dut, writes, queries):
    """Write ``(bank, slot, entry)`` in order, then look ``(bank, symbol)`` up, one a cycle:
    the index found for each, or None."""
    answers = []
    asked = []          # the cycle of each lookup

    async def testbench(ctx):
        for bank, slot, entry in writes:
            ctx.set(dut.write_bank, bank)
            ctx.set(dut.write.en, 1)
            ctx.set(dut.write.index, slot)
            ctx.set(dut.write.entry, entry)
            await ctx.tick()
        ctx.set(dut.write.en, 0)
        for k in range(len(queries) + dut.latency):
            if k < len(queries):
                bank, symbol = queries[k]
                ctx.set(dut.i, {"valid": 1, "bank": bank, "symbol": symbol})
                asked.append(k)
            else:
                ctx.set(dut.i.valid, 0)
            if ctx.get(dut.o.valid):
                assert asked[len(answers)] == k - dut.latency, "the answer's latency"
                answers.append(ctx.get(dut.o.index) if ctx.get(dut.o.found) else None)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return answers


def check_lookup(regmap, seed, n_symbols, n_lookups=1500, latency=2):
    rng = random.Random(seed)
    banks = []
    for _ in range(2):
        names = random_symbols(rng, n_symbols)
        limits = limits_for(names, rng)
        image = compile_limits(limits, regmap)
        banks.append((image, {y.symbol: y.index for y in limits.symbols}))
    queries = []
    for _ in range(n_lookups):
        bank = rng.randrange(2)
        image, by_name = banks[bank]
        name = rng.choice(list(by_name))
        choice = rng.random()
        if choice < 0.5:
            wire, expected = name.encode().ljust(8, b" "), by_name[name]
        elif choice < 0.8:
            wire = rng.choice(list(near_misses(name)))
            text = wire.rstrip(b" ").decode("latin-1")
            expected = by_name.get(text) if wire == text.encode("latin-1").ljust(8, b" ") \
                else None
        else:
            wire = bytes(rng.randrange(256) for _ in range(8))
            expected = None
        assert image.lookup(wire) == expected      # the host's mirror agrees with the file
        queries.append((bank, wire, expected))

    writes = [(bank, slot, entry) for bank, (image, _) in enumerate(banks)
              for slot, entry in enumerate(image.entries["symbol_hash"])]
    answers = run_lookups(SymbolLookup(regmap, latency), writes,
                          [(bank, int.from_bytes(wire, "big")) for bank, wire, _ in queries])
    expected = [e for _, _, e in queries]
    assert answers == expected, f"seed {seed}"
    assert any(e is None for e in expected) and any(e is not None for e in expected)


@pytest.mark.parametrize("slots, n_symbols", [(16, 6), (2048, 1024)])
@pytest.mark.parametrize("latency", [2, 3])
def test_lookups_match_the_configured_symbols(slots, n_symbols, latency):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    regmap = RegisterMap(n_symbols=n_symbols * 2, symbol_slots=max(slots, n_symbols * 2))
    check_lookup(regmap, seed, n_symbols, latency=latency)


def h3(masks, word):
    return sum(bin(word & mask).count("1") % 2 << j for j, mask in enumerate(masks))


def test_a_symbol_written_outside_its_buckets_never_matches():
    # A slot keeps only the symbol bits its bucket does not tell, so a symbol stored in
    # another bucket would share its tag with some symbol that hashes there. Find that
    # symbol from the hash alone (flip pivot bits: the first columns, from bit 0 up, outside
    # the span of those before) and check neither it nor the misplaced symbol is found.
    regmap = RegisterMap(n_symbols=12, symbol_slots=16)
    geometry = regmap.symbol_hash
    masks = geometry.matrices[0]              # memories 0 and 1 are addressed by hash 0
    span, pivot_bits = {0}, []
    for bit in range(64):
        column = h3(masks, 1 << bit)
        if column not in span:
            span |= {v ^ column for v in span}
            pivot_bits.append(bit)
    stored = symbol_word("ABC")
    home = h3(masks, stored)
    away = (home + 1) % geometry.bank_slots
    flips = [sum(1 << b for k, b in enumerate(pivot_bits) if subset >> k & 1)
             for subset in range(1 << len(pivot_bits))]
    twin = next(stored ^ f for f in flips if h3(masks, stored ^ f) == away)
    writes = [(0, away, {"symbol": stored, "index": 5, "valid": 1}),  # memory 0, elsewhere
              (0, geometry.bank_slots + home,                    # memory 1, its own bucket
               {"symbol": stored, "index": 7, "valid": 1})]
    answers = run_lookups(SymbolLookup(regmap), writes, [(0, twin), (0, stored)])
    assert answers == [None, 7]


@pytest.mark.parametrize("slots, n_symbols", [(16, 6), (512, 200)])
def test_the_host_reads_every_slot_back_between_lookups(slots, n_symbols):
    # Both banks written from two images; every slot of each bank read back (``peek``, of
    # bank ``write_bank``) while lookups take the read ports in random cycles: each answer
    # taken with ``ok`` is the image's entry, the symbol rebuilt from tag and bucket, an
    # empty slot all zeros.
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    regmap = RegisterMap(n_symbols=n_symbols * 2, symbol_slots=slots)
    images = [compile_limits(limits_for(random_symbols(rng, n_symbols), rng), regmap)
              for _ in range(2)]
    dut = SymbolLookup(regmap)
    read = []

    async def testbench(ctx):
        for bank, image in enumerate(images):
            ctx.set(dut.write_bank, bank)
            for slot, entry in enumerate(image.entries["symbol_hash"]):
                ctx.set(dut.write.en, 1)
                ctx.set(dut.write.index, slot)
                ctx.set(dut.write.entry, entry)
                await ctx.tick()
        ctx.set(dut.write.en, 0)
        for bank in range(2):
            ctx.set(dut.write_bank, bank)
            for slot in range(slots):
                ctx.set(dut.peek.slot, slot)
                await ctx.tick()        # the answer follows the slot by three cycles
                await ctx.tick()
                while True:
                    lookup = rng.random() < 0.5
                    ctx.set(dut.i, {"valid": lookup, "bank": rng.randrange(2),
                                    "symbol": rng.getrandbits(64)})
                    await ctx.tick()
                    if ctx.get(dut.peek.ok):
                        break
                data = ctx.get(dut.peek.data)
                read.append((bank, slot, {"symbol": data.symbol, "index": data.index,
                                          "valid": data.valid}))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    expected = [(bank, slot, dict(entry)) for bank, image in enumerate(images)
                for slot, entry in enumerate(image.entries["symbol_hash"])]
    assert read == expected, f"seed {seed}"
    assert sum(e["valid"] for _, _, e in expected) == 2 * n_symbols


def test_latency_is_checked():
    with pytest.raises(ValueError, match="latency must be 2 or 3, not 4"):
        SymbolLookup(RegisterMap(n_symbols=4, symbol_slots=8), latency=4)
