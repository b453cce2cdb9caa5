"""Yosys synth_ecp5 cell counts, checked on the holdback, whose register bits follow from
its contract alone."""

import gc
import json
import warnings

import pytest
from amaranth.hdl import Array, Module, UnusedElaboratable
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from wiregate.hw.egress.holdback import Holdback
from wiregate.hw.stream import beat_signature
from wiregate.sim.synth import (
    BLOCKS,
    CELLS,
    format_table,
    lut4_equivalents,
    main,
    synthesize,
    synthesize_modules,
)
from wiregate.sw.profiles import PROFILES

# A byte slot on the line: 8 data bits and the keep, first, last and error flags.
SLOT_BITS = 8 + 4


def register_bits(width, delay):
    """Flip-flops a delay line of ``delay`` bytes needs at ``width`` bytes per beat, when no
    slot waits more than two cycles (``delay < 2 * width``: no ring in LUT RAM).

    From the contract, not the code: output lane ``l`` carries the slot that entered at
    byte time ``l - delay`` relative to the current beat's lane 0. A slot from ``k`` beats
    back at lane ``p`` must be held ``k`` cycles; the longest hold per lane sets the chain.
    """
    hold = {}
    for lane in range(width):
        source = lane - delay
        if source >= 0:
            continue                       # the current beat: a wire
        beats_back = -(source // width)
        position = source + beats_back * width
        hold[position] = max(hold.get(position, 0), beats_back)
    return SLOT_BITS * sum(hold.values())


@pytest.mark.parametrize(("width", "delay", "flops"), [(1, 0, 0), (1, 3, 36), (8, 11, 132)])
def test_register_bits_by_hand(width, delay, flops):
    # The expectation itself, against counts worked out on paper: (8, 11) holds lanes 5..7
    # two beats and lanes 0..4 one beat.
    assert register_bits(width, delay) == flops


def test_holdback_cells(tmp_path):
    # One test, not parametrized: on a fresh machine the first Yosys run compiles the
    # WebAssembly (about 35 s); under xdist two workers would both compile it.
    for width, delay in [(1, 0), (1, 1), (8, 11), (8, 15)]:
        counts = synthesize(Holdback(width, delay), "holdback", tmp_path / f"w{width}-h{delay}")
        where = f"Holdback({width}, {delay}): {counts}"
        assert counts["TRELLIS_FF"] == register_bits(width, delay), where
        assert set(CELLS) <= set(counts), where
        # Everything was mapped to ECP5 primitives: no generic Yosys cell is left.
        assert not [cell for cell in counts if cell.startswith("$")], where
        # The data path is wires; only the flag gating (4 per lane) and o.valid's OR of the
        # lanes' keep bits take LUTs. No arithmetic, memory or multiplier.
        assert 0 < counts["LUT4"] <= 8 * width, where
        for cell in ("CCU2C", "TRELLIS_DPR16X4", "DP16KD", "MULT18X18D"):
            assert counts[cell] == 0, where
        assert lut4_equivalents(counts) == counts["LUT4"], where


def test_holdback_ring_cells(tmp_path):
    # A longer line is a ring in LUT RAM (16 slots x 4 bits a DPR16X4) holding the beat
    # that goes back furthest but one, read through a register; the furthest, if a lane needs
    # it, is that register's copy. Flip-flops: the ring's slot counter and its two
    # post-reset flags, the read register, the copy's used lanes.
    # (1, 90): 89 slots of 12 bits: 6 x 3 RAMs; 7 + 2 + 12 flip-flops.
    # (8, 27): lanes 3..7 read 3 beats back (2 slots of 96 bits: 24 RAMs), lanes 0..2 read
    # lanes 5..7 of the beat 4 back: 1 + 2 + 96 + 3 x 12 flip-flops.
    for width, delay, rams, flops in [(1, 90, 18, 21), (8, 27, 24, 135)]:
        counts = synthesize(Holdback(width, delay), "holdback", tmp_path / f"w{width}-h{delay}")
        where = f"Holdback({width}, {delay}): {counts}"
        assert counts["TRELLIS_DPR16X4"] == rams, where
        assert counts["TRELLIS_FF"] == flops, where
        assert counts["DP16KD"] == 0 and counts["MULT18X18D"] == 0, where


def test_lut4_equivalents():
    counts = dict.fromkeys(CELLS, 0) | {"LUT4": 10, "CCU2C": 3, "TRELLIS_DPR16X4": 2,
                                        "PFUMX": 7, "L6MUX21": 5, "TRELLIS_FF": 99}
    assert lut4_equivalents(counts) == 10 + 2 * 3 + 6 * 2


class _TwoLines(wiring.Component):
    """Two holdbacks in series (3 then 5 byte times at W = 8): a design with submodules."""

    def __init__(self):
        super().__init__({"i": In(beat_signature(8)), "o": Out(beat_signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.first = first = Holdback(8, 3)
        m.submodules.second = second = Holdback(8, 5)
        wiring.connect(m, wiring.flipped(self.i), first.i)
        wiring.connect(m, first.o, second.i)
        wiring.connect(m, second.o, wiring.flipped(self.o))
        return m


def test_classic_abc_and_per_module_counts(tmp_path):
    # The classic ABC mapping keeps the flip-flops the contract sets.
    counts = synthesize(Holdback(8, 11), "holdback", tmp_path / "abc", abc9=False)
    assert counts["TRELLIS_FF"] == register_bits(8, 11)
    assert not [cell for cell in counts if cell.startswith("$")]
    # Without flattening: each line's own flip-flops, the top has none, the totals add up.
    totals, modules = synthesize_modules(_TwoLines(), "two", tmp_path / "modules")
    assert set(modules) == {"two", "two.first", "two.second"}
    assert modules["two.first"]["TRELLIS_FF"] == register_bits(8, 3)
    assert modules["two.second"]["TRELLIS_FF"] == register_bits(8, 5)
    assert modules["two"]["TRELLIS_FF"] == 0
    for cell in CELLS:
        assert totals[cell] == sum(m[cell] for m in modules.values()), cell


class _WideMux(wiring.Component):
    """One of 16 registered bytes chosen by a 4-bit select: a 20-input function per bit."""

    def __init__(self):
        super().__init__({"words": In(8 * 16), "select": In(4), "o": Out(8)})

    def elaborate(self, platform):
        m = Module()
        words = Array(self.words[8 * k:8 * k + 8] for k in range(16))
        m.d.sync += self.o.eq(words[self.select])
        return m


def test_nowidelut_maps_to_lut4s_alone(tmp_path):
    # The default builds the 16:1 mux from LUT4s and the slice's PFUMX/L6MUX21 muxes;
    # -nowidelut from LUT4s alone.
    wide = synthesize(_WideMux(), "mux", tmp_path / "wide", abc9=False)
    narrow = synthesize(_WideMux(), "mux", tmp_path / "narrow", abc9=False, widelut=False)
    assert wide["PFUMX"] + wide["L6MUX21"] > 0
    assert narrow["PFUMX"] == narrow["L6MUX21"] == 0
    assert narrow["LUT4"] > 0


def test_format_table_against_the_profile():
    colorlight = PROFILES["colorlight-5a75b"]
    counts = dict.fromkeys(CELLS, 0) | {"LUT4": 11_250, "CCU2C": 2_297, "TRELLIS_FF": 100,
                                        "DP16KD": 54}
    text = format_table(counts, colorlight, fit=True)
    assert "profile colorlight-5a75b on LFE5U-25F (CABGA256, -6)" in text
    assert "LUT4-eq             15844   65.2 % of the part" in text
    assert ("core + 4,800 LUT4 shell = 20,644 LUT4-eq, at most 20,644 (85 % of the part); "
            "core + 2 DP16KD shell = 56, at most 56") in text
    assert text.endswith("\nfits")
    text = format_table(counts | {"DP16KD": 55, "LUT4": 11_251}, colorlight, fit=True)
    assert text.endswith("\ndoes not fit: over in LUT4-eq, DP16KD")
    assert "fit" not in format_table(counts, colorlight)


def test_unknown_profile_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["core", "--width", "1", "--profile", "nope"])
    assert info.value.code == 2
    assert ("unknown profile 'nope'; known profiles: colorlight-5a75b, versa-ecp5, full"
            in capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main(["core", "--width", "8", "--profile", "versa-ecp5"])
    assert "profile versa-ecp5 is built for W = 1, not 8" in capsys.readouterr().err


def test_blocks_build_components():
    # Every registered block builds from the options it declares, with the CLI's defaults.
    defaults = {"width": 8, "direction": "exchange", "delay": 27, "profile": PROFILES["full"],
                "order_ways": 1}
    for name, (factory, options) in BLOCKS.items():
        component = factory(**{option: defaults[option] for option in options})
        assert isinstance(component, wiring.Component), name
    # Built and never elaborated: Amaranth warns when the object is garbage collected,
    # which would otherwise happen inside some later test.
    del component
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()


def test_command_line_json(capsys):
    main(["holdback", "--width", "1", "--delay", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["block"] == "holdback"
    assert (report["width"], report["delay"]) == (1, 1)
    assert report["cells"]["TRELLIS_FF"] == register_bits(1, 1)


def test_every_profile_appends_one_report_per_build(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    main(["holdback", "--delay", "1", "--every-profile", "--json", "--results", str(results)])
    lines = results.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        json.loads(line) for line in capsys.readouterr().out.splitlines()]
    reports = [json.loads(line) for line in lines]
    assert [(r["profile"], r["width"], r["part"]["name"]) for r in reports] == [
        (p.name, w, p.part.name) for p in PROFILES.values() for w in p.widths]
    assert all(r["cells"]["TRELLIS_FF"] == register_bits(r["width"], 1) for r in reports)
