"""``wiregate limits push`` and ``limits diff``: a limit file onto a running gateway.

A push compiles the file for the gateway's own register map (after it identified itself),
then :meth:`~wiregate.sw.driver.Driver.push`: every banked table into the shadow bank,
verified by read-back, committed, the new epoch confirmed. Nothing is sent for a file with
problems; nothing is committed if anything before the commit fails.
"""

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable

from wiregate.sw.driver import Difference, Driver
from wiregate.sw.gateway_cmd import OK, PROBLEMS, add_target, run
from wiregate.sw.limits import Limits, LimitsError, load_limits
from wiregate.sw.tables import (
    Reference,
    SymbolTableFull,
    TableImage,
    compile_limits,
    keep_references,
)

__all__ = ["read_references", "register"]


def read_references(path: str) -> dict[int, Reference]:
    """The references a gateway holds, from a JSON list of ``{"index", "symbol", "price",
    "stamp_us"}`` (price in price units, stamp in the gateway's microseconds)."""
    with open(path) as file:
        rows = json.load(file)
    try:
        return {int(r["index"]): Reference(str(r["symbol"]), int(r["price"]),
                                           int(r["stamp_us"])) for r in rows}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: each reference needs index, symbol, price and stamp_us "
                         f"({error!r})") from None


def _problems(path: str, message: str) -> int:
    print(message, file=sys.stderr)
    print(f"{path}: nothing was sent to the gateway", file=sys.stderr)
    return PROBLEMS


def _checked(path: str) -> Limits | int:
    """The file's limits, or the exit status after printing its problems."""
    try:
        return load_limits(path)
    except LimitsError as error:
        return _problems(path, "\n".join(map(str, error.problems)))


def _image(driver: Driver, path: str) -> TableImage | int:
    """The file compiled for the gateway's map, or the exit status after its problems."""
    regmap = driver.regmap
    try:
        limits = load_limits(path, max_sessions=regmap.n_sessions,
                             max_symbols=regmap.n_symbols)
        return compile_limits(limits, regmap)
    except LimitsError as error:
        return _problems(path, "\n".join(map(str, error.problems)))
    except (SymbolTableFull, ValueError) as error:
        return _problems(path, f"{path}: {error}")


class _Bar:
    """A progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self):
        self.shown = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if self.shown:
            filled = 40 * done // total
            print(f"\r[{'#' * filled}{'.' * (40 - filled)}] {done}/{total} entries",
                  end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.shown:
            print(file=sys.stderr)


def _with_image(args: argparse.Namespace,
                act: Callable[[Driver, TableImage, dict | None], Awaitable[int]]) -> int:
    """Check the file (and the references), connect, compile the file for the gateway's
    map, then ``act(driver, image, held)``; nothing reaches the gateway from a bad file."""
    if isinstance(checked := _checked(args.file), int):
        return checked
    try:
        held = read_references(args.references) if args.references else None
    except (OSError, ValueError) as error:
        return _problems(args.references, str(error))

    async def body(driver: Driver) -> int:
        if isinstance(image := _image(driver, args.file), int):
            return image
        return await act(driver, image, held)

    return run(args, body)


def push_command(args: argparse.Namespace) -> int:
    async def push(driver: Driver, image: TableImage, held: dict | None) -> int:
        bar, start = _Bar(), time.monotonic()
        try:
            epoch = await driver.push(image, held=held, verify=not args.no_verify,
                                      progress=bar)
        finally:
            bar.close()
        seconds = time.monotonic() - start
        entries = sum(len(rows) for rows in image.entries.values())
        if args.json:
            print(json.dumps({"epoch": epoch, "entries": entries, "seconds": seconds}))
        else:
            print(f"{args.file}: committed, epoch {epoch} ({entries} entries, "
                  f"{'verified' if not args.no_verify else 'NOT verified'}, {seconds:.2f} s)")
        return OK

    return _with_image(args, push)


def _difference_json(d: Difference) -> dict:
    return {"table": d.table, "index": d.index, "field": d.field, "gateway": d.gateway,
            "file": d.image}


def diff_command(args: argparse.Namespace) -> int:
    async def diff(driver: Driver, image: TableImage, held: dict | None) -> int:
        if held is not None:
            image = keep_references(image, held)
        found = await driver.differences(image)
        if args.json:
            print(json.dumps([_difference_json(d) for d in found]))
        elif found:
            print("\n".join(map(str, found)))
            print(f"{len(found)} fields differ", file=sys.stderr)
        else:
            print(f"{args.file}: the gateway's tables hold it already; a push changes nothing")
        return PROBLEMS if found else OK

    return _with_image(args, diff)


def register(actions: argparse._SubParsersAction) -> None:
    """Add ``push`` and ``diff`` to the ``wiregate limits`` parser."""
    references = ("a JSON list of {index, symbol, price, stamp_us}: the reference each "
                  "loaded symbol holds now, kept by a re-commit (docs/cli.md)")
    push = actions.add_parser(
        "push", help="load a limit file onto a gateway and commit it",
        description="Compile the limit file for the gateway, write every table into its "
                    "shadow bank, verify it by read-back, commit, and confirm the new "
                    "epoch. Nothing is committed unless every step before succeeds.")
    push.add_argument("file", metavar="FILE", help="the YAML limit file")
    add_target(push, reads=True)
    push.add_argument("--references", metavar="FILE", help=references)
    push.add_argument("--no-verify", action="store_true",
                      help="commit without reading the shadow bank back (faster; each "
                           "frame is still CRC-checked and acknowledged)")
    push.set_defaults(handler=push_command)

    diff = actions.add_parser(
        "diff", help="what a push of a limit file would change",
        description="Read the gateway's shadow bank back (after a push it holds the "
                    "active limits too) and print every field that differs from the "
                    "compiled file; exit 0 when none does, 1 when some do.")
    diff.add_argument("file", metavar="FILE", help="the YAML limit file")
    add_target(diff, reads=True)
    diff.add_argument("--references", metavar="FILE", help=references)
    diff.set_defaults(handler=diff_command)
