"""The LUT mapping the area count is made with, for the synthesis report and the board build.

``synth_ecp5`` maps logic with ABC9 to LUTs of up to seven inputs (four LUT4s and the
slice's muxes), picked for depth. On the gateway's wide multiplexers and forwarding chains
that costs several times the LUT4s a LUT4-only mapping by the classic ABC pass needs (the
versa-ecp5 core: 37,540 LUT4-equivalents against 35,828). The build profiles' fit rule
counts the classic mapping to LUT4s (``python -m wiregate.sim.synth core --noabc9
--nowidelut``), so a gateway's bitstream is mapped the same way: what the rule judges is
what the board places. (Yosys 0.70's ``synth_ecp5`` accepts ``-noabc9`` and ignores it, so
the classic mapping is spelled out: ``synth_ecp5`` up to ``map_luts``, the classic pass,
then ``synth_ecp5`` from ``map_cells`` on.)
"""

__all__ = ["classic_synth_ecp5"]


def classic_synth_ecp5(top: str, options: str = "", *, widelut: bool = False) -> tuple[str, str]:
    """``synth_ecp5 options -top top`` with the classic ABC pass mapping the LUTs (to LUT4s,
    or with ``widelut`` to LUTs of 4 to 7 inputs), as two parts: the options of the first
    ``synth_ecp5`` (up to ``map_luts``) and the Yosys commands that follow it, ``;`` apart
    (the classic pass, then ``synth_ecp5`` from ``map_cells`` on)."""
    options = [*options.split(), *(() if widelut else ("-nowidelut",))]
    luts = "4:7" if widelut else "4"
    rest = " ".join(["synth_ecp5", *options, "-top", top, "-run", "map_cells:"])
    return (" ".join([*options, "-run", "begin:map_luts"]),
            f"techmap -map +/lattice/latches_map.v; abc -dress -lut {luts}; clean; {rest}")
