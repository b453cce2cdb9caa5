"""Register map: layout invariants, encoding, ID check, and the generated document."""

import struct

import pytest

from wiregate.sw import docgen
from wiregate.sw.reasons import REASON_BITS, Reason
from wiregate.sw.regmap import (
    VERSION,
    Access,
    Field,
    Register,
    RegisterMap,
    RegmapMismatch,
    Table,
    check_layout,
)

PARAMETER_SETS = [
    {},
    {"n_sessions": 1, "n_symbols": 1, "symbol_slots": 8, "n_orders": 1, "n_pass_rules": 1,
     "n_executions": 2, "dropcopy_depth": 1},
    {"n_sessions": 40, "n_symbols": 5000, "symbol_slots": 8192, "beat_bytes": 8,
     "holdback": 64, "n_pass_rules": 7, "n_executions": 1024, "dropcopy_depth": 64,
     "profile": 9},
]


def occupied_words(regmap):
    """Word address -> owner, built from the items' own spans (fails on any collision)."""
    owner = {}
    for reg in regmap.registers:
        for address in range(reg.address, reg.address + reg.width // 32):
            assert address not in owner, f"{reg.name} collides with {owner[address]}"
            owner[address] = reg.name
    for tab in regmap.tables:
        depth = 1
        while depth < tab.depth:
            depth *= 2
        for address in range(tab.address, tab.address + depth * tab.entry_words):
            assert address not in owner, f"{tab.name} collides with {owner[address]}"
            owner[address] = tab.name
    return owner


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_addresses_unique_and_non_overlapping(params):
    regmap = RegisterMap(**params)
    owner = occupied_words(regmap)
    assert max(owner) < regmap.size_words == 1 << regmap.address_bits
    names = [r.name for r in regmap.registers] + [t.name for t in regmap.tables]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_tables_aligned_to_their_power_of_two_size(params):
    for tab in RegisterMap(**params).tables:
        assert tab.span & (tab.span - 1) == 0 and tab.span >= tab.depth * tab.entry_words
        assert tab.address % tab.span == 0, tab.name
        assert tab.entry_words & (tab.entry_words - 1) == 0
        assert tab.used_words <= tab.entry_words
        assert tab.entry_address(tab.depth - 1) == tab.address + (tab.depth - 1) * tab.entry_words


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_fields_fit_and_do_not_overlap(params):
    regmap = RegisterMap(**params)
    for item in (*regmap.registers, *regmap.tables):
        bits = item.width if isinstance(item, Register) else item.used_words * 32
        taken = set()
        for f in item.fields:
            span = set(range(f.offset, f.offset + f.width))
            assert max(span) < bits, (item.name, f.name)
            assert not span & taken, (item.name, f.name)
            taken |= span
    for reg in regmap.registers:
        if reg.width == 64:
            assert reg.address % 2 == 0, reg.name


def test_id_block_at_zero_with_magic():
    regmap = RegisterMap()
    first = min(regmap.registers, key=lambda r: r.address)
    assert (first.name, first.address, first.access) == ("magic", 0, Access.RO)
    assert first.reset == struct.unpack(">I", b"WGTE")[0] == 0x57475445
    version = regmap.register("version")
    assert version.address == 1
    assert version.decode([version.reset]) == {"minor": VERSION[1], "major": VERSION[0]}
    assert regmap.register("param_reason_bits").reset == REASON_BITS == len(Reason)
    ids = regmap.group("id")
    assert [r.address for r in ids] == list(range(len(ids)))


def test_id_block_layout_does_not_depend_on_parameters():
    def layout(m):
        return [(r.name, r.address, r.fields) for r in m.group("id")]

    assert layout(RegisterMap()) == layout(RegisterMap(**PARAMETER_SETS[2]))


def test_build_parameters_reported():
    regmap = RegisterMap(**PARAMETER_SETS[2])
    expected = regmap.expected_id()
    assert expected["param_sessions"] == 40
    assert expected["param_symbols"] == 5000
    assert expected["param_symbol_slots"] == 8192
    assert expected["param_orders"] == 256
    assert expected["param_beat_bytes"] == 8
    assert expected["param_holdback"] == 64
    assert expected["param_pass_rules"] == 7
    assert expected["param_executions"] == 1024
    assert expected["param_dropcopy_depth"] == 64
    assert expected["param_profile"] == 9
    assert expected["symbol_hash_id"] == regmap.symbol_hash.fingerprint


def test_every_reason_has_its_reject_counter():
    regmap = RegisterMap()
    addresses = set()
    for reason in Reason:
        reg = regmap.register(f"reject_{reason.name.lower()}")
        assert (reg.width, reg.access, reg.group) == (64, Access.RO, "counters")
        assert reason.name in reg.description
        addresses.add(reg.address)
    assert len(addresses) == len(Reason)
    counters = regmap.group("counters")
    assert sum(r.name.startswith("reject_") for r in counters) == len(Reason)
    for name in ("frames_client_rx", "frames_exchange_tx", "frames_exchange_rx",
                 "frames_client_tx", "orders_accepted", "orders_rejected", "malformed",
                 "dropped_no_session", "retransmissions", "out_of_sync", "dropcopy_records"):
        assert regmap.register(name).group == "counters"
    assert all(r.width == 64 and r.access is Access.RO for r in counters)


def test_64_bit_register_written_low_word_first():
    regmap = RegisterMap()
    base = regmap.register("ref_stamp_us").address
    assert regmap.encode_write("ref_stamp_us", 0x1122_3344_5566_7788) == [
        (base, 0x5566_7788), (base + 1, 0x1122_3344)]
    assert regmap.decode_read("ref_stamp_us", [0x5566_7788, 0x1122_3344]) == {
        "value": 0x1122_3344_5566_7788}


def test_register_fields_packed_into_one_word():
    regmap = RegisterMap()
    [(address, word)] = regmap.encode_write("counter_control", clear=1)
    assert address == regmap.register("counter_control").address
    assert word == 0b10
    assert regmap.encode_write("counter_control", snapshot=1, clear=1)[0][1] == 0b11
    status = regmap.decode_read("status", [0b1011])
    assert status == {"limits_loaded": 1, "active_bank": 1, "heartbeat_lost": 0,
                      "commit_pending": 1}


def test_table_entry_layout_matches_hand_written_words():
    regmap = RegisterMap()
    writes = regmap.encode_table_write(
        "session_limits", 3, max_order_quantity=5000, max_order_notional=0x1_2345_6789,
        credit=0xAB_0000_0001, rate_burst=20, rate_refill_us=1000, rate_trip_after=5)
    base = regmap.table("session_limits").address + 3 * 8
    # quantity | notional (2 words, low first) | credit (2 words) | burst | refill | trip
    words = struct.unpack("<8I", struct.pack("<IQQIII", 5000, 0x1_2345_6789,
                                             0xAB_0000_0001, 20, 1000, 5))
    assert writes == [(base + k, w) for k, w in enumerate(words)]


def test_session_entry_ports_share_a_word():
    regmap = RegisterMap()
    writes = regmap.encode_table_write("session", 1, client_ip=0x0A00_0001, client_port=40000,
                                       exchange_ip=0xC0A8_0102, exchange_port=15000, valid=1)
    base = regmap.table("session").address + 4
    assert writes == [(base, 0x0A00_0001), (base + 1, 0xC0A8_0102),
                      (base + 2, 15000 << 16 | 40000), (base + 3, 1)]


def test_table_entry_round_trip():
    regmap = RegisterMap()
    values = {"reference_price": 1_234_500, "collar": 50_000, "max_order_quantity": 999_999,
              "max_order_notional": 10**15, "max_long": 7, "max_short": 8, "restricted": 1,
              "reference_stamp_us": 2**40 + 3, "valid": 1}
    writes = regmap.encode_table_write("symbol_limits", 1023, **values)
    assert [a for a, _ in writes] == regmap.read_addresses("symbol_limits", 1023)
    assert regmap.decode_read("symbol_limits", [w for _, w in writes], index=1023) == values


@pytest.mark.parametrize(("call", "field"), [
    (lambda m: m.encode_table_write("session", 0, client_port=1 << 16), "client_port"),
    (lambda m: m.encode_table_write("session", 0, valid=2), "valid"),
    (lambda m: m.encode_table_write("symbol_limits", 0, max_long=1 << 32), "max_long"),
    (lambda m: m.encode_table_write("symbol_limits", 0, collar=-1), "collar"),
    # An OUCH price fits 31 bits, and so do the reference and the band around it.
    (lambda m: m.encode_table_write("symbol_limits", 0, collar=1 << 31), "collar"),
    (lambda m: m.encode_table_write("symbol_limits", 0, reference_price=1 << 31),
     "reference_price"),
    (lambda m: m.encode_write("ref_update", symbol=1024), "symbol"),
    (lambda m: m.encode_write("scratch", 1 << 32), "scratch"),
    (lambda m: m.encode_write("commit", 2), "commit"),
])
def test_field_overflow_raises_naming_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call(RegisterMap())


def test_unknown_field_and_bad_index_rejected():
    regmap = RegisterMap()
    with pytest.raises(ValueError, match="no field 'colour'"):
        regmap.encode_table_write("session", 0, colour=1)
    with pytest.raises(ValueError, match=r"outside 0\.\.7"):
        regmap.encode_table_write("session", 8, valid=1)
    with pytest.raises(ValueError, match="not both"):
        regmap.encode_write("counter_control", 1, clear=1)


def test_read_only_items_refuse_writes():
    regmap = RegisterMap()
    with pytest.raises(ValueError, match="read-only"):
        regmap.encode_write("epoch", 1)
    with pytest.raises(ValueError, match="read-only"):
        regmap.encode_table_write("session_sync", 0, bits=1)


def test_kill_and_release_use_separate_addresses():
    regmap = RegisterMap(n_sessions=40, n_symbols=100, symbol_slots=128)
    assert regmap.encode_kill("session", 37) == [
        (regmap.table("kill_session_set").address + 1, 1 << 5)]
    assert regmap.encode_release("session", 37) == [
        (regmap.table("kill_session_release").address + 1, 1 << 5)]
    assert regmap.encode_kill("symbol", 99) == [
        (regmap.table("kill_symbol_set").address + 3, 1 << 3)]
    assert regmap.encode_kill("gateway") == [(regmap.register("kill_gateway_set").address, 1)]
    assert regmap.encode_release("gateway") == [
        (regmap.register("kill_gateway_release").address, 1)]
    assert regmap.register("kill_gateway_set").access is Access.W1S
    assert regmap.register("kill_gateway_release").access is Access.W1C
    with pytest.raises(ValueError, match=r"outside 0\.\.39"):
        regmap.encode_kill("session", 40)
    with pytest.raises(ValueError, match="scope"):
        regmap.encode_kill("desk", 1)


def test_state_tables_are_indexed_as_the_engine_addresses_them():
    # exposure: (session, symbol) as session above the symbol index's bits; order: the slot
    # of a UserRefNum is its low bits, below the session.
    regmap = RegisterMap(n_sessions=3, n_symbols=40, symbol_slots=64, n_orders=16)
    assert regmap.exposure_index(2, 39) == 2 * 64 + 39
    assert regmap.table("exposure").depth == 3 * 64
    assert regmap.order_index(1, 16 * 1000 + 5) == 16 + 5
    assert regmap.table("order").depth == 3 * 16
    for call, message in ((lambda: regmap.exposure_index(3, 0), "session index 3"),
                          (lambda: regmap.exposure_index(0, 40), "symbol index 40"),
                          (lambda: regmap.order_index(0, 1 << 32), "UserRefNum")):
        with pytest.raises(ValueError, match=message):
            call()


def test_reference_update_triggers_last():
    regmap = RegisterMap()
    writes = regmap.encode_reference_update(5, 1_500_000, 0x1_0000_0002)
    price, stamp = regmap.register("ref_price").address, regmap.register("ref_stamp_us").address
    assert writes == [(price, 1_500_000), (stamp, 2), (stamp + 1, 1),
                      (regmap.register("ref_update").address, 5)]
    with pytest.raises(ValueError, match="symbol index"):
        regmap.encode_reference_update(1024, 1, 1)


@pytest.mark.parametrize(("params", "message"), [
    ({"n_sessions": 0}, "n_sessions must be an integer in 1..1024, got 0"),
    ({"n_sessions": True}, "n_sessions"),
    ({"n_symbols": 70000}, "n_symbols must be an integer in 1..65536"),
    ({"symbol_slots": 3000}, "symbol_slots must be a power of two"),
    ({"symbol_slots": 4}, "symbol_slots must be a power of two"),
    ({"symbol_slots": 512}, r"symbol_slots \(512\) must be at least n_symbols \(1024\)"),
    ({"n_orders": 0}, "n_orders"),
    ({"beat_bytes": 3}, "beat_bytes must be a power of two in 1..64, got 3"),
    ({"holdback": -1}, "holdback"),
    ({"n_pass_rules": 0}, "n_pass_rules"),
    ({"n_executions": 1}, "n_executions must be a power of two in 2..65536, got 1"),
    ({"n_executions": 96}, "n_executions must be a power of two"),
    ({"dropcopy_depth": 0}, "dropcopy_depth must be a power of two in 1..65536, got 0"),
    ({"dropcopy_depth": 100}, "dropcopy_depth must be a power of two"),
    ({"profile": -1}, "profile must be an integer in 0..65535, got -1"),
])
def test_parameters_validated(params, message):
    with pytest.raises(ValueError, match=message):
        RegisterMap(**params)


def test_check_layout_rejects_broken_layouts():
    f32 = (Field("value", 0, 32, ""),)
    a = Register("a", 4, 32, Access.RW, 0, "", "x", f32)
    b = Register("b", 4, 32, Access.RW, 0, "", "x", f32)
    with pytest.raises(ValueError, match="b at 0x4 overlaps a"):
        check_layout([a, b], [])
    wide = Register("w", 3, 64, Access.RW, 0, "", "x", (Field("value", 0, 64, ""),))
    with pytest.raises(ValueError, match="not aligned"):
        check_layout([wide], [])
    spill = Register("s", 0, 32, Access.RW, 0, "", "x", (Field("f", 20, 16, ""),))
    with pytest.raises(ValueError, match=r"s\.f .* does not fit in 32 bits"):
        check_layout([spill], [])
    clash = Register("c", 0, 32, Access.RW, 0, "", "x",
                     (Field("f", 0, 8, ""), Field("g", 4, 8, "")))
    with pytest.raises(ValueError, match=r"c\.g overlaps"):
        check_layout([clash], [])
    table = Table("t", 8, 4, 4, 3, Access.RW, False, "", (Field("v", 0, 1, ""),))
    with pytest.raises(ValueError, match="not aligned to its power-of-two size 16"):
        check_layout([], [table])
    assert check_layout([a], [Table("t", 16, 4, 4, 3, Access.RW, False, "",
                                    (Field("v", 0, 1, ""),))]) == 32


def test_layout_crc_follows_the_layout():
    assert RegisterMap().layout_crc == RegisterMap().layout_crc
    assert RegisterMap().layout_crc != RegisterMap(n_symbols=2048, symbol_slots=4096).layout_crc
    regmap = RegisterMap()
    assert regmap.register("layout_crc").reset == regmap.layout_crc


def test_from_id_builds_the_reported_map():
    hardware = RegisterMap(**PARAMETER_SETS[2])
    observed = hardware.expected_id()
    host = RegisterMap.from_id(observed)
    assert host.parameters == hardware.parameters
    assert host.layout_crc == hardware.layout_crc
    hardware.check_id(observed)


def test_id_mismatches_are_reported():
    regmap = RegisterMap()
    good = regmap.expected_id()
    with pytest.raises(RegmapMismatch, match="magic 0xffffffff") as info:
        regmap.check_id({**good, "magic": 0xFFFF_FFFF})
    assert info.value.mismatches == [("magic", 0x57475445, 0xFFFF_FFFF)]
    speaks = rf"host speaks {VERSION[0]}\.{VERSION[1]}"
    with pytest.raises(RegmapMismatch, match=rf"version 2\.0 on the gateway, {speaks}"):
        RegisterMap.from_id({**good, "version": 2 << 16})
    with pytest.raises(RegmapMismatch, match=r"symbol_hash_id 0x2 .*layout_crc 0x1 ") as info:
        regmap.check_id({**good, "layout_crc": 1, "symbol_hash_id": 2})
    assert [name for name, _, _ in info.value.mismatches] == ["symbol_hash_id", "layout_crc"]
    with pytest.raises(RegmapMismatch, match="param_holdback"):
        RegisterMap.from_id({k: v for k, v in good.items() if k != "param_holdback"})
    with pytest.raises(RegmapMismatch, match="param_holdback 0x21"):
        regmap.check_id({**good, "param_holdback": 33})
    with pytest.raises(RegmapMismatch, match="param_executions"):
        RegisterMap.from_id({k: v for k, v in good.items() if k != "param_executions"})


def test_committed_document_is_up_to_date():
    assert docgen.DEFAULT_OUTPUT.read_text() == docgen.render(), (
        "docs/regmap.md is stale: run python -m wiregate.sw.docgen")


def test_document_lists_every_item():
    regmap = RegisterMap()
    text = docgen.render(regmap)
    for reg in regmap.registers:
        assert f"| `{reg.address:#06x}` | `{reg.name}` |" in text
    for tab in regmap.tables:
        assert f"| `{tab.address:#06x}` | `{tab.name}` | {tab.depth} |" in text


def test_docgen_check_flags_a_stale_copy(tmp_path):
    target = tmp_path / "regmap.md"
    # The control doc goes to tmp_path too: a test never rewrites the committed copies.
    both = ["--control-output", str(tmp_path / "control.md")]
    assert docgen.main(["--output", str(target), "--check", *both]) == 1
    assert docgen.main(["--output", str(target), *both]) == 0
    assert target.read_text() == docgen.render()
    assert docgen.main(["--output", str(target), "--check", *both]) == 0
    target.write_text(target.read_text().replace("WGTE", "WGTX", 1))
    assert docgen.main(["--output", str(target), "--check", *both]) == 1
