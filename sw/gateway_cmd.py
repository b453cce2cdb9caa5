"""``wiregate status``, ``counters``, ``position``, ``kill``, ``release``, ``heartbeat``,
``watch``: the
operator's commands to a running gateway, thin over :class:`~wiregate.sw.driver.Driver`.

Every command takes ``--target`` (:mod:`wiregate.sw.transports`), identifies the gateway
first (its ID block against the register map this host knows: magic, version, layout) and
reports what went wrong in words that say what to do. The exit statuses are the
module's constants, the same for every command (docs/cli.md).
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable

from wiregate.sw.control import Status
from wiregate.sw.driver import CommandRefused, Driver, GatewayTimeout, PushRefused
from wiregate.sw.dropcopy import Record, SequenceGap
from wiregate.sw.limits import LimitsError, load_limits
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.regmap import RegmapMismatch
from wiregate.sw.transports import TARGET_FORMS, TargetError, open_target

__all__ = ["GAP", "MISMATCH", "OK", "PROBLEMS", "REFUSED", "UNREACHABLE", "USAGE",
           "add_target", "register", "run", "session_index", "symbol_index"]

# Exit statuses of every command that talks to a gateway (docs/cli.md).
OK = 0            # done
PROBLEMS = 1      # the limit file has problems (nothing sent); limits diff: differences
USAGE = 2         # a usage error: bad arguments, a bad --target, release without --confirm
UNREACHABLE = 3   # no gateway at the target, or it did not answer in time
MISMATCH = 4      # the gateway's ID block does not match this host's register map
REFUSED = 5       # the gateway refused a command, or a push stopped before its commit
GAP = 6           # watch: records were lost (a sequence gap)

TARGET_ENV = "WIREGATE_TARGET"


def add_target(parser: argparse.ArgumentParser, reads: bool = False) -> None:
    """The options every gateway command has (``--json`` on the commands that read)."""
    parser.add_argument("--target", default=os.environ.get(TARGET_ENV), metavar="URL",
                        help=f"the gateway: {TARGET_FORMS} (default: ${TARGET_ENV})")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="S",
                        help="seconds to wait for each answer (default 2)")
    if reads:
        parser.add_argument("--json", action="store_true", help="print JSON")


def _fail(message: str, status: int) -> int:
    print(f"wiregate: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace, body: Callable[[Driver], Awaitable[int]],
        records: bool = False) -> int:
    """Connect to ``args.target``, identify the gateway, run ``body(driver)``; map every
    failure to its exit status and a message on stderr. Only with ``records`` does the
    driver keep the drop copy."""
    if not args.target:
        return _fail(f"no target: give --target ({TARGET_FORMS}) or set ${TARGET_ENV}", USAGE)

    async def session() -> int:
        driver = Driver(await open_target(args.target), timeout=args.timeout,
                        keep_records=records)
        try:
            await driver.identify()
            return await body(driver)
        finally:
            await driver.close()

    try:
        return asyncio.run(session())
    except TargetError as error:
        return _fail(str(error), USAGE)
    except GatewayTimeout as error:
        return _fail(f"{args.target}: {error}", UNREACHABLE)
    except ConnectionError as error:
        return _fail(f"{args.target}: {error}", UNREACHABLE)
    except RegmapMismatch as error:
        return _fail(f"{args.target} is not the gateway this wiregate describes: {error}. "
                     "Use the wiregate release the gateware was built from, or load the "
                     "gateware this one builds", MISMATCH)
    except (CommandRefused, PushRefused) as error:
        return _fail(str(error), REFUSED)
    except ProtocolError as error:
        return _fail(f"{args.target}: an answer this host cannot read ({error}); is "
                     "another host talking to the gateway?", REFUSED)


def _print(args: argparse.Namespace, value: dict, text: str) -> None:
    print(json.dumps(value) if args.json else text)


# -- names to indices ---------------------------------------------------------------------

def _index(kind: str, name: str, limits_file: str | None, names: Callable) -> int:
    if limits_file is not None:
        try:
            by_name = names(load_limits(limits_file))
        except LimitsError as error:
            raise ValueError(f"{limits_file}: {error}") from None
        if name in by_name:
            return by_name[name]
    if name.isdigit():
        return int(name)
    where = f"in {limits_file}" if limits_file else "(give --limits FILE to use names)"
    raise ValueError(f"no {kind} {name!r} {where}")


def session_index(name: str, limits_file: str | None) -> int:
    """A session's index: by name from the limit file, or given as a number."""
    return _index("session", name, limits_file, lambda lim: {s.name: s.index
                                                              for s in lim.sessions})


def symbol_index(name: str, limits_file: str | None) -> int:
    """A symbol's index: by symbol from the limit file, or given as a number."""
    return _index("symbol", name, limits_file, lambda lim: {s.symbol: s.index
                                                             for s in lim.symbols})


# -- commands ------------------------------------------------------------------------------

def status_command(args: argparse.Namespace) -> int:
    async def body(driver: Driver) -> int:
        regmap = driver.regmap
        state = await driver.status()
        ident = {"profile": regmap.profile, "version": regmap.expected_id()["version"],
                 "layout_crc": regmap.layout_crc, **regmap.parameters}
        sessions = [k for k in range(regmap.n_sessions) if state["kill_sessions"] >> k & 1]
        symbols = [k for k in range(regmap.n_symbols) if state["kill_symbols"] >> k & 1]
        _print(args, {**state, "gateway": ident},
               f"epoch {state['epoch']}, limits "
               f"{'loaded' if state['limits_loaded'] else 'NOT loaded'}, active bank "
               f"{state['active_bank']}"
               f"{', commit pending' if state['commit_pending'] else ''}\n"
               f"heartbeat: {'LOST (every order rejects)' if state['heartbeat_lost'] else 'ok'}"
               f"\nkill: gateway {'SET' if state['kill_gateway'] else 'clear'}, sessions "
               f"{', '.join(map(str, sessions)) or 'none'}, symbols "
               f"{', '.join(map(str, symbols)) or 'none'}\n"
               f"sessions in sync: {state['in_sync']:#x}\n"
               f"timebase: {state['timebase_us']} us\n"
               f"gateway: {regmap.n_sessions} sessions, {regmap.n_symbols} symbols, "
               f"profile id {regmap.profile}, layout {regmap.layout_crc:#010x}")
        return OK

    return run(args, body)


def counters_command(args: argparse.Namespace) -> int:
    async def body(driver: Driver) -> int:
        counters = await driver.counters(clear=args.clear)
        width = max(map(len, counters))
        _print(args, counters, "\n".join(f"{name:<{width}} {value}"
                                          for name, value in counters.items()))
        return OK

    return run(args, body)


def position_command(args: argparse.Namespace) -> int:
    try:
        session = session_index(args.session, args.limits)
        symbol = symbol_index(args.symbol, args.limits)
    except ValueError as error:
        return _fail(str(error), USAGE)

    async def body(driver: Driver) -> int:
        try:
            exposure = await driver.exposure(session, symbol)
            state = await driver.session_state(session)
        except ValueError as error:         # an index beyond the gateway's sizes
            return _fail(str(error), USAGE)
        value = {"session": session, "symbol_index": symbol, **exposure, **state}
        _print(args, value,
               f"session {session}, symbol {symbol}: position {exposure['position']}, "
               f"working buy {exposure['working_buy']}, working sell "
               f"{exposure['working_sell']}\n"
               f"session {session}: credit used {state['credit_used']}, tokens "
               f"{state['tokens']}, {'THROTTLED' if state['throttled'] else 'not throttled'} "
               f"({state['throttle_count']} in a row), last UserRefNum "
               f"{state['last_user_ref_num']}\n"
               f"gateway: credit used {state['gateway_credit_used']}")
        return OK

    return run(args, body)


def _scope(args: argparse.Namespace) -> tuple[str, int]:
    if args.gateway:
        return "gateway", 0
    if args.session is not None:
        return "session", session_index(args.session, args.limits)
    return "symbol", symbol_index(args.symbol, args.limits)


def _latch_command(args: argparse.Namespace, action: str) -> int:
    try:
        scope, index = _scope(args)
    except ValueError as error:
        return _fail(str(error), USAGE)
    if action == "release" and not args.confirm:
        return _fail(f"release of the {scope} latch{'' if scope == 'gateway' else f' {index}'}"
                     " is deliberately manual: check why it tripped, then add --confirm",
                     USAGE)

    async def body(driver: Driver) -> int:
        await getattr(driver, action)(scope, index)
        print(f"{action} {scope}{'' if scope == 'gateway' else f' {index}'}: done")
        return OK

    return run(args, body)


def heartbeat_command(args: argparse.Namespace) -> int:
    async def body(driver: Driver) -> int:
        sent = 0
        while args.count is None or sent < args.count:
            try:
                await driver.heartbeat()
            except CommandRefused as error:
                # Another host streams commands (a push): each retry's number was taken by
                # then. The driver knows the number now; the next interval tries again.
                if error.status is not Status.OUT_OF_SEQUENCE:
                    raise
                print(f"wiregate: {error}: another host is commanding; trying again",
                      file=sys.stderr, flush=True)
                await asyncio.sleep(args.interval)
                continue
            sent += 1
            if args.count is None or sent < args.count:
                await asyncio.sleep(args.interval)
        return OK

    try:
        return run(args, body)
    except KeyboardInterrupt:
        return OK


def record_json(record: Record) -> dict:
    """A record's non-zero fields (every enum by name, the symbol as text)."""
    out = {}
    for name, value in vars(record).items():
        if name == "symbol":
            value = value.decode("ascii", "replace").rstrip()
        elif hasattr(value, "name"):
            value = value.name
        if value or name == "sequence":
            out[name] = value
    return out


def record_text(record: Record) -> str:
    """One line: sequence, time, kind, then every other non-zero field."""
    fields = record_json(record)
    head = f"{fields.pop('sequence'):>8} {fields.pop('time_us', 0):>12} us " \
           f"{fields.pop('kind')}"
    fields.pop("cycle", None)
    return " ".join([head, *(f"{k}={v}" for k, v in fields.items())])


def watch_command(args: argparse.Namespace) -> int:
    gaps = []

    def on_gap(gap: SequenceGap) -> None:
        gaps.append(gap)
        print(f"wiregate watch: GAP: {gap}", file=sys.stderr, flush=True)

    async def body(driver: Driver) -> int:
        seen = 0
        async for record in driver.records(on_gap):
            print(json.dumps(record_json(record)) if args.json else record_text(record),
                  flush=True)
            seen += 1
            if seen == args.count:
                break
        return GAP if gaps else OK

    try:
        return run(args, body, records=True)
    except KeyboardInterrupt:
        return GAP if gaps else OK


def register(commands: argparse._SubParsersAction) -> None:
    """Add the gateway commands to the ``wiregate`` parser."""
    status = commands.add_parser("status", help="the gateway's state",
                                 description="Epoch, limits loaded, bank, heartbeat, kill "
                                             "latches, sessions in sync, build.")
    add_target(status, reads=True)
    status.set_defaults(handler=status_command)

    counters = commands.add_parser("counters", help="the gateway's counters",
                                   description="Snapshot every counter at once and read it.")
    add_target(counters, reads=True)
    counters.add_argument("--clear", action="store_true",
                          help="also zero the live counters (after the snapshot)")
    counters.set_defaults(handler=counters_command)

    position = commands.add_parser(
        "position", help="a session's exposure in a symbol",
        description="Position, working buy and working sell of SESSION in SYMBOL, and the "
                    "session's credit used, tokens and throttle state, as the gateway's "
                    "checks hold them. SESSION and SYMBOL are names from --limits FILE, or "
                    "indices.")
    add_target(position, reads=True)
    position.add_argument("session", metavar="SESSION")
    position.add_argument("symbol", metavar="SYMBOL")
    position.add_argument("--limits", metavar="FILE",
                          help="the limit file the gateway runs, to name sessions and symbols")
    position.set_defaults(handler=position_command)

    for action, text in (("kill", "set a kill latch: the scope's new orders reject, "
                                   "cancels pass"),
                         ("release", "release a kill latch (needs --confirm)")):
        parser = commands.add_parser(action, help=text, description=text[0].upper()
                                     + text[1:] + ". SESSION and SYMBOL are names from "
                                     "--limits FILE, or indices.")
        add_target(parser)
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--gateway", action="store_true", help="the gateway-wide latch")
        scope.add_argument("--session", metavar="SESSION", help="one session's latch")
        scope.add_argument("--symbol", metavar="SYMBOL", help="one symbol's latch")
        parser.add_argument("--limits", metavar="FILE",
                            help="the limit file the gateway runs, to name sessions and "
                                 "symbols")
        if action == "release":
            parser.add_argument("--confirm", action="store_true",
                                help="release it: recovery is deliberately manual")
        parser.set_defaults(handler=lambda args, a=action: _latch_command(args, a))

    heartbeat = commands.add_parser(
        "heartbeat", help="keep the gateway alive until stopped",
        description="Send a heartbeat every --interval seconds until interrupted (Ctrl-C). "
                    "A gateway that hears none for its heartbeat_timeout rejects every "
                    "order.")
    add_target(heartbeat)
    heartbeat.add_argument("--interval", type=float, default=0.25, metavar="S",
                           help="seconds between heartbeats (default 0.25; keep it well "
                                "under the limit file's heartbeat_timeout)")
    heartbeat.add_argument("--count", type=int, metavar="N", help="stop after N heartbeats")
    heartbeat.set_defaults(handler=heartbeat_command)

    watch = commands.add_parser(
        "watch", help="the live drop copy, decoded",
        description="Print every drop-copy record as it arrives, one a line (or JSON "
                    "lines), and report every sequence gap on stderr; exits 6 if there "
                    "was one.")
    add_target(watch, reads=True)
    watch.add_argument("--count", type=int, metavar="N", help="stop after N records")
    watch.set_defaults(handler=watch_command)

