"""``wiregate limits``: check a limit file before anything from it is pushed to a gateway."""

import argparse
import sys

from wiregate.sw import push_cmd
from wiregate.sw.limits import (
    Limits,
    LimitsError,
    Problem,
    format_dollars,
    format_duration,
    load_limits,
)
from wiregate.sw.profiles import PROFILES, Profile, profile
from wiregate.sw.tables import SymbolTableFull, place_symbols

# Exit statuses, as the help text states them.
OK, PROBLEMS, USAGE = 0, 1, 2


def _table_size(text: str) -> int:
    size = int(text)
    if size < 1:
        raise argparse.ArgumentTypeError(f"table size must be at least 1, got {size}")
    return size


def _profile(name: str) -> Profile:
    try:
        return profile(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``limits`` command and its actions to the ``wiregate`` parser."""
    limits = commands.add_parser("limits", help="check, push and diff limit files",
                                 description="Work with YAML limit files (docs/limits.md).")
    actions = limits.add_subparsers(dest="limits_action", metavar="ACTION", required=True)
    default = PROFILES["full"]
    check = actions.add_parser(
        "check", help="validate a limit file and summarise it",
        description="Validate a limit file against the table sizes of a gateway build: a "
                    "build profile (sw/profiles.py; default: full) or sizes given one by "
                    "one. Prints every problem as FILE:LINE: FIELD: MESSAGE on stderr and "
                    "exits 1, or prints a summary and exits 0; exits 2 on a usage error.")
    check.add_argument("file", metavar="FILE", help="the YAML limit file")
    check.add_argument("--profile", type=_profile, metavar="NAME",
                       help=f"the build profile of the target gateway: "
                            f"{', '.join(PROFILES)}")
    check.add_argument("--max-sessions", type=_table_size, metavar="N",
                       help=f"session table size of the target gateway, instead of a "
                            f"profile (default: full's {default.n_sessions})")
    check.add_argument("--max-symbols", type=_table_size, metavar="N",
                       help=f"symbol table size of the target gateway, instead of a "
                            f"profile (default: full's {default.n_symbols})")
    check.set_defaults(handler=check_command)
    push_cmd.register(actions)


def _placement_problem(limits: Limits, target: Profile, path: str) -> Problem | None:
    """The first symbol the profile's hash table cannot place, by its field; else None."""
    try:
        place_symbols([s.symbol for s in limits.symbols], target.symbol_slots)
    except SymbolTableFull as exc:
        index = next(s.index for s in limits.symbols if s.symbol == exc.symbol)
        return Problem(path, 0, f"symbols[{index}].symbol", str(exc))
    return None


def _holds(target: Profile, limits: Limits, path: str) -> bool:
    return (len(limits.sessions) <= target.n_sessions
            and len(limits.symbols) <= target.n_symbols
            and _placement_problem(limits, target, path) is None)


def _report(path: str, problems: list[Problem], target: Profile | None) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    count = len(problems)
    print(f"{path}: {count} problem{'s' if count != 1 else ''}; nothing may be pushed",
          file=sys.stderr)
    if target is None:
        return PROBLEMS
    # Is it only too large for this build? Then say which builds hold it.
    try:
        limits = load_limits(path)
    except LimitsError:
        return PROBLEMS
    fitting = [p.name for p in PROFILES.values() if _holds(p, limits, path)]
    print(f"{path}: {len(limits.sessions)} sessions and {len(limits.symbols)} symbols do not "
          f"fit profile {target.name} ({target.n_sessions} sessions, {target.n_symbols} "
          f"symbols); " + (f"they fit {', '.join(fitting)}" if fitting
                           else "no build profile holds them"), file=sys.stderr)
    return PROBLEMS


def check_command(args: argparse.Namespace) -> int:
    """Run ``wiregate limits check``; returns the exit status (0 valid, 1 problems, 2 usage)."""
    if args.profile is not None and (args.max_sessions or args.max_symbols):
        print("wiregate limits check: --profile gives the table sizes; do not give "
              "--max-sessions or --max-symbols with it", file=sys.stderr)
        return USAGE
    # Sizes given by hand leave the symbol hash table's size unknown: no placement check.
    by_hand = args.max_sessions or args.max_symbols
    target = args.profile or PROFILES["full"]
    max_sessions = args.max_sessions or target.n_sessions
    max_symbols = args.max_symbols or target.n_symbols
    try:
        limits = load_limits(args.file, max_sessions=max_sessions, max_symbols=max_symbols)
    except LimitsError as exc:
        return _report(args.file, exc.problems, args.profile)
    problem = None if by_hand else _placement_problem(limits, target, args.file)
    if problem is not None:
        return _report(args.file, [problem], args.profile)
    restricted = sum(symbol.restricted for symbol in limits.symbols)
    gateway = limits.gateway
    age = format_duration(gateway.reference_max_age_us) if gateway.reference_max_age_us \
        else "never stale"
    against = (f"{max_sessions} sessions, {max_symbols} symbols" if by_hand else
               f"profile {target.name} ({target.part.name}): {target.n_sessions} sessions, "
               f"{target.n_symbols} symbols in {target.symbol_slots} hash slots")
    print(f"{args.file}: ok\n"
          f"  sessions: {len(limits.sessions)}\n"
          f"  symbols: {len(limits.symbols)} ({restricted} restricted)\n"
          f"  gateway credit: {format_dollars(gateway.credit)}\n"
          f"  heartbeat timeout: {format_duration(gateway.heartbeat_timeout_us)}\n"
          f"  reference max age: {age}\n"
          f"  checked against: {against}")
    return OK
