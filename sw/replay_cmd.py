"""``wiregate replay``: a capture through the gateway, with its verdicts and output ports.

The work is :mod:`wiregate.sim.capture`'s; this module reads the arguments, the limit file
and the capture, and writes the results (docs/replay.md).
"""

import argparse
import json
import sys
from pathlib import Path

from wiregate.sw.limits import LimitsError, load_limits
from wiregate.sw.limits_cmd import _profile
from wiregate.sw.profiles import PROFILES

# Exit statuses, as the help text states them.
OK, MISMATCH, BAD_INPUT = 0, 1, 2


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
    if args.engine == "gateware":
        return _fail("--engine gateware is not built yet (docs/replay.md)")
    try:
        limits = load_limits(args.limits, max_sessions=target.n_sessions,
                             max_symbols=target.n_symbols)
    except LimitsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return _fail(f"{args.limits}: {len(exc.problems)} problem(s) in the limit file")
    try:
        records = read_capture(args.pcap)
        outcome = replay_model(records, limits, target, args.width,
                               assume_start=args.assume_start)
    except CaptureError as exc:
        return _fail(str(exc))
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    summary = outcome.summary() | {"pcap": args.pcap, "limits": args.limits,
                                   "engine": args.engine, "width": args.width,
                                   "profile": target.name}
    write_results(Path(args.out), outcome, summary)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['client_messages']} client messages: "
              f"{summary['verdicts']['accept']} accepted, {summary['verdicts']['reject']} "
              f"rejected; results in {args.out}")
    return MISMATCH if summary["mismatches"] else OK


def write_results(out: Path, outcome, summary: dict) -> None:
    """``verdicts.jsonl``, ``to_exchange.pcap``, ``to_client.pcap`` and ``summary.txt``."""
    from wiregate.sw.proto.pcap import write_pcap

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "verdicts.jsonl", "w") as log:
        for entry in outcome.entries:
            log.write(json.dumps(entry.as_json()) + "\n")
    write_pcap(out / "to_exchange.pcap", outcome.to_exchange)
    write_pcap(out / "to_client.pcap", outcome.to_client)
    (out / "summary.txt").write_text(summary_text(summary))


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
    lines += [f"replayed in {summary['seconds']} s of processor time "
              f"({summary['orders_per_s']} client messages/s)"]
    return "\n".join(lines) + "\n"
