"""The ``wiregate`` command line: thin subcommands over the host library."""

import argparse
import logging
import sys

from wiregate import __version__
from wiregate.sw import audit_cmd, daemon_cmd, gateway_cmd, limits_cmd, replay_cmd, sim_cmd

# Each subcommand module exposes register(subparsers), which adds its parser and sets
# ``handler`` (a function of the parsed args returning the exit code).
_SUBCOMMANDS: list = [limits_cmd.register, gateway_cmd.register, audit_cmd.register,
                      replay_cmd.register, sim_cmd.register, daemon_cmd.register]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wiregate",
        description="Open FPGA pre-trade risk gateway for OUCH 5.0 over SoupBinTCP.",
    )
    parser.add_argument("--version", action="version", version=f"wiregate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _SUBCOMMANDS:
        register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
