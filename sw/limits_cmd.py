"""``wiregate limits``: check a limit file before anything from it is pushed to a gateway."""

import argparse
import sys

from wiregate.sw.limits import LimitsError, format_dollars, format_duration, load_limits
from wiregate.sw.regmap import RegisterMap

# A file is checked against the default gateway build unless told the target's table sizes.
_DEFAULT = RegisterMap()


def _table_size(text: str) -> int:
    size = int(text)
    if size < 1:
        raise argparse.ArgumentTypeError(f"table size must be at least 1, got {size}")
    return size


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``limits`` command and its actions to the ``wiregate`` parser."""
    limits = commands.add_parser("limits", help="check limit files",
                                 description="Work with YAML limit files (docs/limits.md).")
    actions = limits.add_subparsers(dest="limits_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="validate a limit file and summarise it",
        description="Validate a limit file. Prints every problem as FILE:LINE: FIELD: MESSAGE "
                    "on stderr and exits 1, or prints a summary and exits 0.")
    check.add_argument("file", metavar="FILE", help="the YAML limit file")
    check.add_argument("--max-sessions", type=_table_size, metavar="N",
                       default=_DEFAULT.n_sessions,
                       help="session table size of the target gateway (default: %(default)s)")
    check.add_argument("--max-symbols", type=_table_size, metavar="N",
                       default=_DEFAULT.n_symbols,
                       help="symbol table size of the target gateway (default: %(default)s)")
    check.set_defaults(handler=check_command)


def check_command(args: argparse.Namespace) -> int:
    """Run ``wiregate limits check``; returns the exit code (0 valid, 1 problems)."""
    try:
        limits = load_limits(args.file, max_sessions=args.max_sessions,
                             max_symbols=args.max_symbols)
    except LimitsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{args.file}: {count} problem{'s' if count != 1 else ''}; nothing may be pushed",
              file=sys.stderr)
        return 1
    restricted = sum(symbol.restricted for symbol in limits.symbols)
    gateway = limits.gateway
    age = format_duration(gateway.reference_max_age_us) if gateway.reference_max_age_us \
        else "never stale"
    print(f"{args.file}: ok\n"
          f"  sessions: {len(limits.sessions)}\n"
          f"  symbols: {len(limits.symbols)} ({restricted} restricted)\n"
          f"  gateway credit: {format_dollars(gateway.credit)}\n"
          f"  heartbeat timeout: {format_duration(gateway.heartbeat_timeout_us)}\n"
          f"  reference max age: {age}")
    return 0
