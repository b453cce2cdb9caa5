"""``wiregate sim``: the gateway's Verilator model as a process (:mod:`wiregate.sim.serve`)."""

from pathlib import Path

from wiregate.sw.profiles import PROFILES


def register(commands) -> None:
    parser = commands.add_parser(
        "sim", help="run the gateway's Verilator model, its control stream on 127.0.0.1",
        description="Build (or reuse, in build/sim/) the gateway's Verilator model for a "
                    "profile and width and run it until SIGINT or SIGTERM. The control stream "
                    "listens on 127.0.0.1; the first line on stdout names the port (and the "
                    "Ethernet sides' ports). See docs/sim.md.")
    parser.add_argument("--profile", required=True, choices=sorted(PROFILES),
                        help="build profile (table sizes)")
    parser.add_argument("--width", type=int, required=True, choices=(1, 8),
                        help="bytes per beat: 1 (1 GbE, 125 MHz) or 8 (10 GbE, 156.25 MHz)")
    parser.add_argument("--port", type=int, default=0,
                        help="TCP port of the control stream on 127.0.0.1 (default: chosen)")
    for side in ("client", "exchange"):
        source = parser.add_mutually_exclusive_group()
        source.add_argument(f"--{side}-in", type=Path, metavar="PCAP",
                            help=f"frames from the {side} side, sent at their capture "
                                 "times from --start-us on")
        source.add_argument(f"--{side}-port", type=int, metavar="PORT",
                            help=f"the {side} side on a TCP socket on 127.0.0.1 (0: chosen, "
                                 "printed): length-prefixed frames both ways (docs/sim.md)")
        parser.add_argument(f"--{side}-out", type=Path, metavar="PCAP",
                            help=f"write the frames leaving toward the {side} side here, "
                                 "stamped with the gateway's time")
        parser.add_argument(f"--{side}-received", type=Path, metavar="PCAP",
                            help=f"write the frames the {side} side sent into the gateway "
                                 "here, stamped with the gateway's time of their first byte")
    parser.add_argument("--start-us", type=float, default=0.0,
                        help="gateway time (microseconds) of the pcaps' first frames")
    parser.add_argument("--report-s", type=float, default=10.0,
                        help="seconds of host time between rate lines on stderr")
    parser.set_defaults(handler=_run)


def _run(args) -> int:
    # Imported here: Amaranth and the harness load only for `sim`.
    from wiregate.sim.serve import run

    return run(args)
