"""The board definitions, the generated MAC's interface, and the bitstream report's verdict."""

import re

import pytest
from amaranth.hdl import Module

from wiregate.constraints import BOARDS, board
from wiregate.constraints.boards import ColorlightPlatform, Versa5GPlatform
from wiregate.hw.board.build import NAME, format_report, synth_overrides
from wiregate.hw.board.liteeth_gen import generate

RGMII = {"tx_clk", "tx_ctl", "tx_data", "rx_clk", "rx_ctl", "rx_data"}


def _rgmii(platform, number):
    (resource,) = [r for r in platform.resources.values()
                   if r.name == "eth_rgmii" and r.number == number]
    return {sub.name: sub for sub in resource.ios}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_both_ports_alike_with_rxc_constrained(name):
    platform = board(name).platform()
    for number in (0, 1):
        subs = _rgmii(platform, number)
        assert set(subs) >= RGMII, f"port {number}: {sorted(subs)}"
        assert subs["rx_clk"].clock.frequency == 125e6


def test_versa_is_the_5g_part():
    assert Versa5GPlatform.device == "LFE5UM5G-45F"


def test_colorlight_shares_phy_management_on_port0():
    platform = ColorlightPlatform()
    assert {"rst", "mdc", "mdio"} <= set(_rgmii(platform, 0))
    assert not {"rst", "mdc", "mdio"} & set(_rgmii(platform, 1))


def test_unknown_board():
    with pytest.raises(ValueError, match="Unknown board 'zedboard'; known: colorlight-5a75b"):
        board("zedboard")


def test_generated_mac_interface(tmp_path):
    text = generate(tmp_path, tx_delay=2e-9, rx_delay=2e-9).read_text()
    assert "BSD-2-Clause" in text and "Florent Kermarrec" in text
    ports = {name: direction for direction, name in
             re.findall(r"^\s*(input|output)\s+(?:\[\d+:0\]\s+)?(\w+),?$", text, re.M)}
    assert ports == {
        "rx_clk": "input", "rx_rst": "input", "tx_clk": "input", "tx_rst": "input",
        "rgmii_rx_ctl": "input", "rgmii_rx_data": "input", "rgmii_tx_clk": "output",
        "rgmii_tx_ctl": "output", "rgmii_tx_data": "output",
        "rx_valid": "output", "rx_data": "output", "rx_last": "output", "rx_error": "output",
        "rx_crc_error": "output", "rx_preamble_error": "output",
        "tx_valid": "input", "tx_data": "input", "tx_last": "input", "tx_error": "input",
        "tx_ready": "output",
    }
    # The ECP5 DDR cells the PHY needs: 5 input (ctl + 4 data), 6 output (clock, ctl, data).
    assert len(re.findall(r"^IDDRX1F\b", text, re.M)) == 5
    assert len(re.findall(r"^ODDRX1F\b", text, re.M)) == 6


def _report(core_mhz):
    return {
        "utilization": {"TRELLIS_COMB": {"used": 1000, "available": 24288},
                        "DP16KD": {"used": 0, "available": 56}},
        "fmax": {"$glbnet$clk": {"achieved": core_mhz, "constraint": 125.0},
                 "$glbnet$rxc": {"achieved": 140.0, "constraint": 125.0}},
    }


def test_report_passes_when_every_clock_meets_its_constraint():
    text, ok = format_report("colorlight-5a75b", _report(125.5), 40.0)
    assert ok
    assert "TRELLIS_COMB       1000 / 24288  (4.1 %)" in text
    assert "DP16KD" not in text     # unused cells are left out
    assert text.endswith("timing: met\n")


def test_report_fails_when_one_clock_misses():
    text, ok = format_report("colorlight-5a75b", _report(124.9), 40.0)
    assert not ok
    assert re.search(r"core clock \(\$glbnet\$clk\)\s+124.90 / 125.00 FAILED", text)
    assert re.search(r"\$glbnet\$rxc\s+140.00 / 125.00 ok", text)
    assert text.endswith("timing: FAILED\n")


def test_report_fails_when_a_path_between_the_core_and_engine_clocks_is_too_long():
    # Both clocks meet their own constraints; the engine's (62.5 MHz, edges on the core
    # clock's) reaches the core clock through a path longer than the core clock's period.
    def report(delay):
        step = {"type": "routing", "delay": delay}
        return {**_report(130.0), "fmax": {
            **_report(130.0)["fmax"],
            "$glbnet$engine_clk": {"achieved": 70.0, "constraint": 62.5}},
            "critical_paths": [{"from": "posedge $glbnet$engine_clk",
                                "to": "posedge $glbnet$clk", "path": [step, step]}]}

    text, ok = format_report("colorlight-5a75b", report(4.2), 40.0)
    assert not ok and text.endswith("timing: FAILED\n")
    assert re.search(r"engine clock \(\$glbnet\$engine_clk\) -> core clock \(\$glbnet\$clk\)"
                     r"\s+8.40 / 8.00 FAILED", text), text
    text, ok = format_report("colorlight-5a75b", report(3.9), 40.0)
    assert ok and re.search(r"7.80 / 8.00 ok", text), text


@pytest.mark.parametrize("core", ["pass-through", "gateway"])
def test_gateway_build_maps_as_the_fit_rule_counts(core):
    """The gateway's Yosys script maps LUTs with the classic ABC pass to LUT4s between
    synth_ecp5's two halves, as ``wiregate.sim.synth --noabc9 --nowidelut`` counts; the
    pass-through's is synth_ecp5 alone."""
    plan = board("versa-ecp5").platform().prepare(Module(), name=NAME,
                                                  **synth_overrides(core))
    script = [" ".join(line.split()) for line in plan.files[f"{NAME}.ys"].splitlines()
              if line.strip().startswith(("synth_ecp5", "techmap"))]
    if core == "pass-through":
        assert script == [f"synth_ecp5 -top {NAME}"]
    else:
        assert script == [
            f"synth_ecp5 -nowidelut -run begin:map_luts -top {NAME}",
            "techmap -map +/lattice/latches_map.v; abc -dress -lut 4; clean; "
            f"synth_ecp5 -nowidelut -top {NAME} -run map_cells:"]
