"""Yosys synth_ecp5 cell counts, checked on the holdback, whose register bits follow from
its contract alone."""

import gc
import json
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.lib import wiring

from wiregate.hw.egress.holdback import Holdback
from wiregate.sim.synth import BLOCKS, CELLS, lut4_equivalents, main, synthesize

# A byte slot on the line: 8 data bits and the keep, first, last and error flags.
SLOT_BITS = 8 + 4


def register_bits(width, delay):
    """Flip-flops a delay line of ``delay`` bytes needs at ``width`` bytes per beat.

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
    for width, delay in [(1, 0), (1, 3), (8, 11), (8, 27)]:
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


def test_lut4_equivalents():
    counts = dict.fromkeys(CELLS, 0) | {"LUT4": 10, "CCU2C": 3, "TRELLIS_DPR16X4": 2,
                                        "PFUMX": 7, "L6MUX21": 5, "TRELLIS_FF": 99}
    assert lut4_equivalents(counts) == 10 + 2 * 3 + 6 * 2


def test_blocks_build_components():
    # Every registered block builds from the options it declares, with the CLI's defaults.
    defaults = {"width": 8, "direction": "exchange", "delay": 27}
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
    main(["holdback", "--width", "1", "--delay", "3", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["block"] == "holdback"
    assert (report["width"], report["delay"]) == (1, 3)
    assert report["cells"]["TRELLIS_FF"] == register_bits(1, 3)
