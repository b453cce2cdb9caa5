"""``wiregate replay``: a capture through the gateway, with its verdicts and output ports.

The work is :mod:`wiregate.sim.capture`'s; this module reads the arguments, the limit file
and the capture, and writes the results (docs/replay.md).
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

from wiregate.sw.limits import LimitsError, load_limits
from wiregate.sw.limits_cmd import _profile
from wiregate.sw.profiles import PROFILES

# Exit statuses, as the help text states them.
OK, MISMATCH, BAD_INPUT = 0, 1, 2
GATEWARE_MAX_GAP_US = 1000


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``replay`` command to the ``wiregate`` parser."""
    replay = commands.add_parser(
        "replay", help="replay a pcap through the gateway",
        description="Replay a capture of OUCH 5.0 over SoupBinTCP (both directions may be "
                    "present) through the gateway with the limits of FILE, and write the "
                    "verdict of every client message, what leaves each port and a summary "
                    "into DIR (docs/replay.md). Exits 0, 1 when the gateware and the model "
                    "disagree, 2 on a bad capture, limit file or argument.")
    replay.add_argument("pcap", metavar="PCAP", help="the capture (pcap or pcapng, Ethernet)")
    replay.add_argument("--limits", required=True, metavar="FILE",
                        help="the YAML limit file; its sessions are the session table")
    replay.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    replay.add_argument("--width", type=int, choices=(1, 8), default=1,
                        help="bytes per beat of the gateway: 1 (1 GbE) or 8 (10 GbE)")
    replay.add_argument("--profile", type=_profile, metavar="NAME", default=PROFILES["full"],
                        help=f"the build profile whose table sizes the gateway has: "
                             f"{', '.join(PROFILES)} (default: full)")
    replay.add_argument("--engine", choices=("model", "gateware"), default="model",
                        help="model: the reference model alone; gateware: the Verilator "
                             "model of the core, checked against the model")
    replay.add_argument("--max-gap-us", type=int, metavar="US",
                        help="shorten idle gaps between frames longer than this (default: "
                             "none for the model, 1000 for the gateware, whose cycles cost "
                             "real time)")
    replay.add_argument("--assume-start", action="store_true",
                        help="a session that starts mid-stream (no SYN): take its first "
                             "segment as the stream's start (a replay convenience; the live "
                             "gateway voids such frames)")
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.set_defaults(handler=replay_command)


def _fail(message: str) -> int:
    print(f"wiregate replay: {message}", file=sys.stderr)
    return BAD_INPUT


def replay_command(args: argparse.Namespace) -> int:
    """Run ``wiregate replay``; returns the exit status (0, 1 mismatch, 2 bad input)."""
    from wiregate.sim.capture import CaptureError, read_capture, replay_model

    target = args.profile
    if args.width not in target.widths:
        return _fail(f"profile {target.name} is built for W = "
                     f"{' or '.join(map(str, target.widths))}, not {args.width}")
    max_gap = args.max_gap_us
    if max_gap is None and args.engine == "gateware":
        max_gap = GATEWARE_MAX_GAP_US
    if max_gap is not None and max_gap < 0:
        return _fail(f"--max-gap-us must not be negative, got {max_gap}")
    try:
        limits = load_limits(args.limits, max_sessions=target.n_sessions,
                             max_symbols=target.n_symbols)
    except LimitsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return _fail(f"{args.limits}: {len(exc.problems)} problem(s) in the limit file")
    latency = None
    try:
        records = read_capture(args.pcap)
        if args.engine == "model":
            outcome = replay_model(records, limits, target, args.width,
                                   assume_start=args.assume_start, max_gap_us=max_gap)
        else:
            from amaranth.hdl import UnusedElaboratable

            from wiregate.sim.fast.capture import replay_gateware

            # The harness keeps the core it was built from, and never elaborates it.
            warnings.filterwarnings("ignore", category=UnusedElaboratable)
            outcome, latency = replay_gateware(records, limits, target, args.width,
                                               assume_start=args.assume_start,
                                               max_gap_us=max_gap)
    except CaptureError as exc:
        return _fail(str(exc))
    except RuntimeError as exc:     # the gateware engine's model cannot be built
        return _fail(f"--engine gateware: {exc}")
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    summary = outcome.summary() | {"pcap": args.pcap, "limits": args.limits,
                                   "engine": args.engine, "width": args.width,
                                   "profile": target.name}
    if latency is not None:
        summary["latency"] = {name: latency[name] for name in ("first_byte", "verdict")}
    write_results(Path(args.out), outcome, summary, latency)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for mismatch in summary["mismatches"]:
            print(f"mismatch: {mismatch.splitlines()[0]}", file=sys.stderr)
        print(f"{summary['client_messages']} client messages: "
              f"{summary['verdicts']['accept']} accepted, {summary['verdicts']['reject']} "
              f"rejected; results in {args.out}")
    return MISMATCH if summary["mismatches"] else OK


def write_results(out: Path, outcome, summary: dict, latency: dict | None = None) -> None:
    """``verdicts.jsonl``, ``to_exchange.pcap``, ``to_client.pcap``, ``summary.txt`` and,
    with ``latency``, ``latency.json`` and ``latency.png``."""
    from wiregate.sw.proto.pcap import write_pcap

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "verdicts.jsonl", "w") as log:
        for entry in outcome.entries:
            log.write(json.dumps(entry.as_json()) + "\n")
    write_pcap(out / "to_exchange.pcap", outcome.to_exchange)
    write_pcap(out / "to_client.pcap", outcome.to_client)
    (out / "summary.txt").write_text(summary_text(summary))
    if latency is not None:
        figures = {name: latency[name] for name in ("first_byte", "verdict", "definition")}
        (out / "latency.json").write_text(json.dumps(figures, indent=2) + "\n")
        plot_latency(out / "latency.png", latency)


def plot_latency(path: Path, latency: dict) -> None:
    """Histograms of both delays, in ns, the percentiles marked and listed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, panels = pyplot.subplots(1, 2, figsize=(10, 4))
    for axes, key, what, unit in ((panels[0], "first_byte", "first byte in to first byte out",
                                   "client frames"),
                                  (panels[1], "verdict", "last needed byte to verdict",
                                   "client messages")):
        figures = latency[key]
        ns = [c * 1e9 / figures["clock_hz"] for c in latency["samples"][key]]
        axes.hist(ns, bins=50, color="tab:blue")
        for name in ("p50", "p99", "p99.9"):
            if name in figures["ns"]:
                axes.axvline(figures["ns"][name], linestyle="--", color="tab:red")
        axes.text(0.97, 0.95, "\n".join(f"{name} {value} ns" for name, value
                                         in figures["ns"].items()),
                  transform=axes.transAxes, ha="right", va="top", family="monospace")
        axes.set_xlabel(f"{what} (ns)")
        axes.set_ylabel(unit)
        axes.set_title(f"{figures['count']} {unit}, {figures['clock_hz'] / 1e6:g} MHz")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def summary_text(summary: dict) -> str:
    """The summary as ``summary.txt`` shows it."""
    lines = [f"wiregate replay of {summary['pcap']} with {summary['limits']}",
             f"engine {summary['engine']}, W = {summary['width']}, profile "
             f"{summary['profile']}",
             f"frames in: {summary['frames']}; out toward the exchange "
             f"{summary['frames_out']['to_exchange']}, toward the clients "
             f"{summary['frames_out']['to_client']}",
             f"client messages: {summary['client_messages']}: "
             f"{summary['verdicts']['accept']} accepted, {summary['verdicts']['reject']} "
             f"rejected", "", "rejected messages by reason (every reason that fired):"]
    lines += [f"  {name:<16} {count}" for name, count in summary["reasons"].items()] or \
        ["  none"]
    lines += ["", "gateway counters:"]
    lines += [f"  {name:<20} {value}" for name, value in summary["gateway_counters"].items()]
    for port, counters in summary["ingress_counters"].items():
        lines.append(f"ingress ({port} port): " + ", ".join(
            f"{name} {value}" for name, value in counters.items()))
    lines += ["", "sessions at the end:"]
    lines += [f"  {s['index']} {s['name']}: in sync {s['in_sync']}, killed {s['killed']}, "
              f"last UserRefNum {s['last_user_ref_num']}" for s in summary["sessions"]]
    lines += ["", "warnings:"] + [f"  {w}" for w in summary["warnings"]] if \
        summary["warnings"] else []
    lines += ["", f"mismatches with the model: {len(summary['mismatches'])}"]
    lines += [f"  {m}" for m in summary["mismatches"]]
    for key, what in (("first_byte", "first byte in to first byte out"),
                      ("verdict", "last needed byte to verdict")):
        lat = summary.get("latency", {}).get(key)
        if lat:
            lines += [f"{what} ({lat['count']}): " + ", ".join(
                f"{name} {lat['cycles'][name]} cycles ({lat['ns'][name]} ns)"
                for name in lat["cycles"])]
    lines += [f"replayed in {summary['seconds']} s of processor time "
              f"({summary['orders_per_s']} client messages/s)"]
    return "\n".join(lines) + "\n"
