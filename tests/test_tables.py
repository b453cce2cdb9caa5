"""Limit compilation and the symbol hash table."""

import random
import string
import struct

import pytest

from wiregate.sw.limits import (
    Endpoint,
    GatewayLimits,
    Limits,
    RateLimit,
    SessionLimits,
    SymbolLimits,
)
from wiregate.sw.regmap import RegisterMap
from wiregate.sw.tables import (
    H3_MASKS,
    HASH_SEED,
    PROBES,
    SymbolHash,
    SymbolTableFull,
    compile_limits,
    h3,
    place_symbols,
    probe,
    symbol_text,
    symbol_word,
)

TICKERS = ["GME", "AMC", "AMD", "AAPL", "AAP", "A", "AA", "AAL", "MSFT", "MSFU", "GOOG",
           "GOOGL", "BRK.A", "BRK.B", "SPY", "SPYG", "QQQ", "QQQM", "TSLA", "TSL", "IBM",
           "INTC", "NVDA", "NVD", "META", "ZVZZT", "ZWZZT", "ZXZZT", "ABCDEFGH", "Z"]
GATEWAY = GatewayLimits(credit=10**14, heartbeat_timeout_us=3_000_000,
                        reference_max_age_us=60_000_000)


def wire(symbol: str) -> bytes:
    return symbol.encode("ascii").ljust(8, b" ")


def random_symbols(seed: int, count: int, exclude=()) -> list[str]:
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        text = "".join(rng.choice(string.ascii_uppercase + ".")
                       for _ in range(rng.randint(1, 8))).strip(".")
        if text and text not in exclude:
            out[text] = None
    return list(out)


def symbol_limits(index: int, symbol: str, **overrides) -> SymbolLimits:
    values = {"reference_price": 100_0000 + index, "collar": 5_0000,
              "max_order_quantity": 10_000, "max_order_notional": 10**11, "max_long": 50_000,
              "max_short": 40_000, "restricted": False, **overrides}
    return SymbolLimits(index=index, symbol=symbol, **values)


def session(index: int, **overrides) -> SessionLimits:
    values = {"name": f"s{index}", "client": Endpoint(0x0A00_0000 + index, 40_000 + index),
              "exchange": Endpoint(0xC0A8_0101, 15_000), "max_order_quantity": 20_000,
              "max_order_notional": 5 * 10**11, "credit": 10**13,
              "rate": RateLimit(burst=50, refill_us=2_000, trip_after=10), **overrides}
    return SessionLimits(index=index, **values)


def limits_for(symbols: list[str]) -> Limits:
    return Limits(gateway=GATEWAY, sessions=(session(0),),
                  symbols=tuple(symbol_limits(i, s) for i, s in enumerate(symbols)))


def find(image, symbol_bytes: bytes):
    """Test-side lookup: read every candidate slot, compare valid + full 8 bytes."""
    slots = image.entries["symbol_hash"]
    hits = [slots[s]["index"] for s in probe(symbol_bytes, len(slots))
            if slots[s]["valid"] and slots[s]["symbol"].to_bytes(8, "big") == symbol_bytes]
    assert len(hits) <= 1
    return hits[0] if hits else None


# -- the hash ---------------------------------------------------------------------------

def splitmix64(seed):
    """Reference SplitMix64, written from the published algorithm."""
    mask = (1 << 64) - 1
    while True:
        seed = (seed + 0x9E3779B97F4A7C15) & mask
        z = seed
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        yield z ^ (z >> 31)


def test_masks_come_from_splitmix64_with_the_fixed_seed():
    assert next(splitmix64(0)) == 0xE220A8397B1DCDAF   # published first output for seed 0
    stream = splitmix64(HASH_SEED)
    expected = [[next(stream) for _ in range(len(H3_MASKS[0]))] for _ in H3_MASKS]
    assert [list(row) for row in H3_MASKS] == expected


def h3_by_rows(masks, word: int) -> int:
    """H3 the textbook way: XOR together the matrix row of every set input bit."""
    rows = [sum(((m >> i) & 1) << j for j, m in enumerate(masks)) for i in range(64)]
    out = 0
    for i in range(64):
        if word >> i & 1:
            out ^= rows[i]
    return out


def test_h3_matches_row_by_row_computation():
    rng = random.Random(7)
    hasher = SymbolHash(2048)
    assert hasher.bucket_bits == 9 and hasher.bank_slots == 512
    for _ in range(300):
        word = rng.getrandbits(64)
        for t, masks in enumerate(hasher.matrices):
            assert len(masks) == 9
            expected = h3_by_rows(masks, word)
            assert h3(masks, word) == expected
            assert hasher.bucket(t, word.to_bytes(8, "big")) == expected


def test_h3_is_linear():
    rng = random.Random(8)
    masks = SymbolHash(4096).matrices[1]
    assert h3(masks, 0) == 0
    for _ in range(200):
        a, b = rng.getrandbits(64), rng.getrandbits(64)
        assert h3(masks, a ^ b) == h3(masks, a) ^ h3(masks, b)


def test_h3_input_bit_order_is_wire_order():
    masks = SymbolHash(2048).matrices[0]
    # Bit 63 is the top bit of the first wire byte; flipping it adds exactly that row.
    base = wire("GME")
    flipped = bytes([base[0] ^ 0x80]) + base[1:]
    expected = h3_by_rows(masks, 1 << 63) ^ h3_by_rows(masks, int.from_bytes(base, "big"))
    assert h3(masks, int.from_bytes(flipped, "big")) == expected


def test_probe_geometry():
    for symbol in TICKERS:
        slots = probe(symbol, 2048)
        assert len(slots) == PROBES == 4
        for k, slot in enumerate(slots):
            assert k * 512 <= slot < (k + 1) * 512
        assert slots[1] - slots[0] == 512 and slots[3] - slots[2] == 512
        assert probe(wire(symbol), 2048) == slots
        # The gateware mirrors this: memories 0 and 1 by hash 0, memories 2 and 3 by hash 1,
        # each hash the first 9 masks of its H3 row (2048 slots / 4 memories = 2**9).
        word = int.from_bytes(wire(symbol), "big")
        b0, b1 = (h3_by_rows(H3_MASKS[t][:9], word) for t in (0, 1))
        assert slots == (b0, 512 + b0, 1024 + b1, 1536 + b1)


def test_similar_tickers_spread_over_buckets():
    hasher = SymbolHash(2048)
    family = ["GME", "AMC", "AMD", "AAPL", "AAP", "AAL", "AA"]
    pairs = {(hasher.bucket(0, s), hasher.bucket(1, s)) for s in family}
    assert len(pairs) == len(family)


def test_fingerprint_changes_with_table_size():
    assert SymbolHash(2048).fingerprint == SymbolHash(2048).fingerprint
    assert SymbolHash(2048).fingerprint != SymbolHash(4096).fingerprint


def test_symbol_word_is_the_padded_wire_bytes_big_endian():
    hi, lo = struct.unpack(">II", b"AAPL    ")
    assert symbol_word("AAPL") == hi << 32 | lo
    assert symbol_word("ABCDEFGH") == int.from_bytes(b"ABCDEFGH", "big")
    assert symbol_text(symbol_word("BRK.A")) == "BRK.A"


@pytest.mark.parametrize("bad", ["", "ABCDEFGHI", " AB", "AB ", "\u00c9", "A\tB"])
def test_symbol_word_rejects_bad_symbols(bad):
    with pytest.raises(ValueError, match="symbol"):
        symbol_word(bad)


# -- placement --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_configured_symbol_found_in_its_probes(seed):
    symbols = TICKERS + random_symbols(seed, 1024 - len(TICKERS), exclude=set(TICKERS))
    regmap = RegisterMap()
    image = compile_limits(limits_for(symbols), regmap)
    stored = [e for e in image.entries["symbol_hash"] if e["valid"]]
    assert len(stored) == 1024
    assert {symbol_text(e["symbol"]) for e in stored} == set(symbols)
    for index, symbol in enumerate(symbols):
        assert find(image, wire(symbol)) == index
        assert image.lookup(symbol) == index


@pytest.mark.parametrize("seed", [11, 12])
def test_unknown_symbols_never_match(seed):
    known = TICKERS + random_symbols(seed, 994, exclude=set(TICKERS))
    image = compile_limits(limits_for(known), RegisterMap())
    for symbol in random_symbols(seed + 100, 3000, exclude=set(known)):
        assert find(image, wire(symbol)) is None
        assert image.lookup(symbol) is None
    # Every one-bit neighbour of a configured symbol hashes somewhere, but never matches.
    rng = random.Random(seed)
    configured = {wire(s) for s in known}
    checked = 0
    for symbol in TICKERS + rng.sample(known, 60):
        word = int.from_bytes(wire(symbol), "big")
        for bit in range(64):
            neighbour = (word ^ 1 << bit).to_bytes(8, "big")
            if neighbour in configured:   # "A" and "C" are one bit apart and both known
                continue
            checked += 1
            assert find(image, neighbour) is None
            assert image.lookup(neighbour) is None
    assert checked > 5000


def test_placement_is_deterministic():
    symbols = random_symbols(21, 1500)
    assert place_symbols(symbols, 2048) == place_symbols(symbols, 2048)


def test_overfull_table_raises_naming_symbol_and_load():
    symbols = random_symbols(31, 2048)
    regmap = RegisterMap(n_symbols=2048, symbol_slots=2048)
    with pytest.raises(SymbolTableFull) as info:
        compile_limits(limits_for(symbols), regmap)
    error = info.value
    assert error.symbol in symbols and error.slots == 2048 and error.count == 2048
    assert repr(error.symbol) in str(error) and "2048 slots" in str(error)
    assert "load 100.0%" in str(error)


def test_more_symbols_than_slots_raises():
    with pytest.raises(SymbolTableFull, match=r"of 9\) in 8 slots at load 112.5%"):
        place_symbols(list("ABCDEFGHI"), 8)


# -- compilation ------------------------------------------------------------------------

def hand_limits() -> Limits:
    return Limits(
        gateway=GatewayLimits(credit=0x12_3456_789A, heartbeat_timeout_us=2_500_000,
                              reference_max_age_us=30_000_000),
        sessions=(
            session(0),
            SessionLimits(index=1, name="desk2", client=Endpoint(0x0A01_0203, 50_001),
                          exchange=Endpoint(0xC0A8_0A0B, 15_001), max_order_quantity=7_500,
                          max_order_notional=0x2_0000_0003, credit=0x4_0000_0005,
                          rate=RateLimit(burst=12, refill_us=750, trip_after=0)),
        ),
        symbols=(
            symbol_limits(0, "AAPL", reference_price=185_2500, collar=9_2625),
            symbol_limits(1, "GME", restricted=True, reference_price=0),
            symbol_limits(2, "AMD", max_order_notional=0x9_8765_4321, max_long=123,
                          max_short=456),
        ),
    )


def test_compiled_entries_equal_the_limits():
    regmap = RegisterMap()
    image = compile_limits(hand_limits(), regmap, reference_stamp_us=777)
    s1 = image.entries["session"][1]
    assert s1 == {"client_ip": 0x0A01_0203, "client_port": 50_001,
                  "exchange_ip": 0xC0A8_0A0B, "exchange_port": 15_001, "valid": 1}
    assert all(e["valid"] == 0 for e in image.entries["session"][2:])
    assert image.entries["session_limits"][1] == {
        "max_order_quantity": 7_500, "max_order_notional": 0x2_0000_0003,
        "credit": 0x4_0000_0005, "rate_burst": 12, "rate_refill_us": 750,
        "rate_trip_after": 0}
    assert image.entries["session_limits"][0]["rate_trip_after"] == 10
    assert image.entries["symbol_limits"][0] == {
        "reference_price": 185_2500, "collar": 9_2625, "max_order_quantity": 10_000,
        "max_order_notional": 10**11, "max_long": 50_000, "max_short": 40_000,
        "restricted": 0, "reference_stamp_us": 777, "valid": 1}
    assert image.entries["symbol_limits"][1]["restricted"] == 1
    assert image.entries["symbol_limits"][1]["reference_price"] == 0
    assert image.entries["symbol_limits"][2]["max_order_notional"] == 0x9_8765_4321
    assert image.entries["symbol_limits"][3]["max_order_quantity"] == 0
    assert image.entries["gateway_limits"] == ({
        "credit": 0x12_3456_789A, "heartbeat_timeout_us": 2_500_000,
        "reference_max_age_us": 30_000_000},)
    assert [image.lookup(s) for s in ("AAPL", "GME", "AMD", "AMC")] == [0, 1, 2, None]


def test_compiled_words_at_their_addresses():
    regmap = RegisterMap()
    memory = dict(compile_limits(hand_limits(), regmap).writes())
    session_limits = regmap.table("session_limits").address + 1 * 8
    assert [memory[session_limits + k] for k in range(8)] == list(
        struct.unpack("<8I", struct.pack("<IQQIII", 7_500, 0x2_0000_0003, 0x4_0000_0005,
                                         12, 750, 0)))
    gateway = regmap.table("gateway_limits").address
    assert [memory[gateway + k] for k in range(4)] == list(
        struct.unpack("<4I", struct.pack("<QII", 0x12_3456_789A, 2_500_000, 30_000_000)))
    symbol_hash = regmap.table("symbol_hash").address
    slot = next(s for s in probe("AAPL", 2048)
                if memory[symbol_hash + 4 * s + 2] & 0x3FF == 0
                and memory[symbol_hash + 4 * s + 2] >> 10 & 1)
    hi, lo = struct.unpack(">II", b"AAPL    ")
    assert memory[symbol_hash + 4 * slot] == lo and memory[symbol_hash + 4 * slot + 1] == hi
    # A full image: every used word of every banked table, nothing else.
    banked = [t for t in regmap.tables if t.banked]
    assert len(memory) == sum(t.depth * t.used_words for t in banked)
    assert {t.name for t in banked} == {"session", "session_limits", "symbol_limits",
                                        "gateway_limits", "symbol_hash"}


def test_writes_against_previous_image_are_the_difference():
    regmap = RegisterMap()
    before = hand_limits()
    changed = list(before.symbols)
    changed[2] = symbol_limits(2, "AMD", max_order_notional=0x9_8765_4321, max_long=124,
                               max_short=456)
    after = Limits(before.gateway, before.sessions, tuple(changed))
    old, new = compile_limits(before, regmap), compile_limits(after, regmap)
    max_long_word = regmap.table("symbol_limits").field("max_long").offset // 32
    assert new.writes(previous=old) == [
        (regmap.table("symbol_limits").address + 2 * 16 + max_long_word, 124)]
    assert new.writes(previous=new) == []
    with pytest.raises(ValueError, match="different register map"):
        new.writes(previous=compile_limits(before, RegisterMap(n_sessions=4)))


@pytest.mark.parametrize(("limits", "message"), [
    (Limits(GATEWAY, tuple(session(i) for i in range(9)), ()), "9 sessions configured"),
    (Limits(GATEWAY, (session(0), session(0)), ()), "session index 0 configured twice"),
    (Limits(GATEWAY, (session(8),), ()), "session index 8 outside"),
    (Limits(GATEWAY, (), (symbol_limits(0, "GME"), symbol_limits(1, "GME"))),
     "symbol 'GME' configured twice"),
    (Limits(GATEWAY, (), (symbol_limits(0, "GME", max_long=1 << 32),)),
     r"symbol_limits\[0\]\.max_long = 4294967296 does not fit in 32 bits"),
    (Limits(GATEWAY, (session(0, max_order_notional=1 << 64),), ()),
     r"session_limits\[0\]\.max_order_notional"),
    (Limits(GatewayLimits(1, 1 << 32, 0), (), ()),
     r"gateway_limits\[0\]\.heartbeat_timeout_us"),
])
def test_compile_errors_name_the_problem(limits, message):
    with pytest.raises(ValueError, match=message):
        compile_limits(limits, RegisterMap())


def test_too_many_symbols_for_the_gateway():
    limits = limits_for(random_symbols(41, 20))
    with pytest.raises(ValueError, match="20 symbols configured, the gateway has 16"):
        compile_limits(limits, RegisterMap(n_symbols=16, symbol_slots=32))


def test_every_limit_the_schema_admits_fits_its_table_field():
    # The loader's maxima and the register map's field widths are declared apart; a file
    # at every maximum must compile, so nothing validated can fail later without a line.
    from wiregate.sw.limits import (
        OUCH_MAX_PRICE,
        OUCH_MAX_QUANTITY,
        RATE_BURST_MAX,
        RATE_REFILL_MAX,
        RATE_TRIP_MAX,
        U32_MAX,
        U64_MAX,
    )
    top = Limits(
        gateway=GatewayLimits(credit=U64_MAX, heartbeat_timeout_us=U32_MAX,
                              reference_max_age_us=U32_MAX),
        sessions=(session(0, max_order_quantity=OUCH_MAX_QUANTITY, max_order_notional=U64_MAX,
                          credit=U64_MAX,
                          rate=RateLimit(RATE_BURST_MAX, RATE_REFILL_MAX, RATE_TRIP_MAX)),),
        symbols=(symbol_limits(0, "GME", reference_price=OUCH_MAX_PRICE, collar=OUCH_MAX_PRICE,
                               max_order_quantity=OUCH_MAX_QUANTITY,
                               max_order_notional=U64_MAX, max_long=U32_MAX,
                               max_short=U32_MAX),),
    )
    image = compile_limits(top, RegisterMap())
    assert image.entries["symbol_limits"][0]["max_long"] == U32_MAX
    assert image.entries["session_limits"][0]["credit"] == U64_MAX
    assert [image.entries["session_limits"][0][f"rate_{name}"]
            for name in ("burst", "refill_us", "trip_after")] == [
        RATE_BURST_MAX, RATE_REFILL_MAX, RATE_TRIP_MAX]
