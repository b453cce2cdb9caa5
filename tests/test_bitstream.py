"""Both boards' bitstreams build, meet 125 MHz on every clock, and are for the right part.

About a minute per board on one core (the build is cached by a hash of its inputs, so an
unchanged tree costs nothing the second time); ``-m "not bitstream"`` leaves it out.
"""

import json

import pytest

from wiregate.hw.board.build import build

# The JTAG IDCODE each bitstream checks (its VERIFY_ID command, 0xE2) before it configures:
# from Lattice's ECP5 family data sheet, as openocd's ECP5 configurations list them.
IDCODE = {"colorlight-5a75b": 0x41111043,     # LFE5U-25F
          "versa-ecp5": 0x81112043}           # LFE5UM5G-45F
PART = {"colorlight-5a75b": b"LFE5U-25F-6CABGA256", "versa-ecp5": b"LFE5UM5G-45F-8CABGA381"}


@pytest.mark.bitstream
@pytest.mark.parametrize("name", sorted(IDCODE))
def test_bitstream(name):
    out = build(name)
    bitstream = (out / "top.bit").read_bytes()
    assert PART[name] in bitstream[:64]
    verify_id = bytes([0xE2, 0, 0, 0]) + IDCODE[name].to_bytes(4, "big")
    assert verify_id in bitstream[:128]
    report = json.loads((out / "nextpnr-report.json").read_text())
    # The core clock and both RXCs, each constrained to 125 MHz and meeting it.
    assert len(report["fmax"]) == 3
    for clock, f in report["fmax"].items():
        assert f["constraint"] == pytest.approx(125.0), clock
        assert f["achieved"] >= 125.0, clock
    assert (out / "report.txt").read_text().endswith("timing: met\n")
