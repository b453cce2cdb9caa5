"""``wiregate audit``: verify the audit trail's hash chain and show its entries."""

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from wiregate.sw.audit import KINDS, AuditError, iter_entries, record_bodies, verify
from wiregate.sw.reasons import Reason

# Exit codes: 0 intact (show: shown), 1 the log is not intact, 2 bad arguments (argparse).
INTACT, BROKEN = 0, 1


def _folder(text: str) -> Path:
    path = Path(text)
    if path.is_file():
        return path.parent       # a file names its log: the chain runs through all its files
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such audit folder or file")
    return path


def _anchor(text: str) -> tuple[int, str]:
    number, sep, digest = text.partition(":")
    if not sep or not number.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError(f"an anchor is N:HASH (64 hex digits), got {text!r}")
    return int(number), digest.lower()


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _reason(text: str) -> str:
    name = text.upper()
    if name not in Reason.__members__:
        raise argparse.ArgumentTypeError(
            f"unknown reason {text!r}; one of {', '.join(Reason.__members__)}")
    return name


def _key(path: str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes().strip()


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``audit`` command and its actions to the ``wiregate`` parser."""
    audit = commands.add_parser("audit", help="verify and read the audit trail",
                                description="The hash-chained audit trail (docs/audit.md).")
    actions = audit.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("log", type=_folder, metavar="PATH",
                        help="the audit folder, or any of its files (the whole log is read)")
    common.add_argument("--key-file", metavar="FILE",
                        help="the HMAC key the log was written with")

    check = actions.add_parser(
        "verify", parents=[common], help="check every entry and the chain between them",
        description="Exit 0 and print the head (entries, hash) if the log is intact; exit 1 "
                    "naming the file and line of the first entry that was altered, removed, "
                    "inserted or moved.")
    check.add_argument("--anchor", type=_anchor, action="append", default=[], metavar="N:HASH",
                       help="an earlier head that must still be in the log (repeatable)")
    check.set_defaults(handler=verify_command)

    show = actions.add_parser(
        "show", parents=[common], help="print entries, filtered",
        description="Print the entries that match every filter given, one per line (a "
                    "drop-copy entry's records one per line, each with its entry's number "
                    "and time), while checking the chain; exit 1 at the first fault.")
    show.add_argument("--kind", choices=KINDS)
    show.add_argument("--session", type=int, metavar="INDEX")
    show.add_argument("--symbol", metavar="TICKER")
    show.add_argument("--reason", type=_reason, metavar="NAME",
                      help="drop-copy records whose reasons include NAME")
    show.add_argument("--since", type=_time, metavar="TIME", help="ISO 8601, UTC if no zone")
    show.add_argument("--until", type=_time, metavar="TIME")
    show.add_argument("--json", action="store_true", help="the entries as JSON lines")
    show.set_defaults(handler=show_command)


def verify_command(args: argparse.Namespace) -> int:
    try:
        head = verify(args.log, _key(args.key_file), args.anchor)
    except AuditError as exc:
        print(f"audit log NOT intact: {exc}", file=sys.stderr)
        return BROKEN
    print(f"{args.log}: intact, {head.entries} entries in {head.files} file(s); "
          f"head {head.entries - 1}:{head.hash}")
    return INTACT


def _matches(entry, body: dict, args) -> bool:
    stamp = _time(entry.t)
    return ((args.kind is None or entry.kind == args.kind)
            and (args.session is None or body.get("session") == args.session)
            and (args.symbol is None or body.get("symbol") == args.symbol.upper())
            and (args.reason is None or args.reason in body.get("reason_names", ()))
            and (args.since is None or stamp >= args.since)
            and (args.until is None or stamp <= args.until))


def _line(entry, body: dict) -> str:
    if entry.kind != "dropcopy":
        return f"{entry.n} {entry.t} {entry.kind} {json.dumps(body, sort_keys=True)}"
    what = body["kind"] if body["control"] == "NONE" else body["control"]
    verdict = ("accept" if body["accept"] else "reject " + ",".join(body["reason_names"])) \
        if body["kind"] == "VERDICT" else ""
    return (f"{entry.n} {entry.t} seq={body['sequence']} {what} session={body['session']} "
            f"ref={body['user_ref_num']} {body['symbol'] or '-'} {verdict}").rstrip()


def show_command(args: argparse.Namespace) -> int:
    try:
        for entry in iter_entries(args.log, _key(args.key_file)):
            bodies = record_bodies(entry) if entry.kind == "dropcopy" else [entry.body]
            for body in bodies:
                if not _matches(entry, body, args):
                    continue
                if args.json:
                    print(json.dumps({"n": entry.n, "t": entry.t, "kind": entry.kind,
                                      "body": body}, sort_keys=True))
                else:
                    print(_line(entry, body))
    except AuditError as exc:
        print(f"audit log NOT intact: {exc}", file=sys.stderr)
        return BROKEN
    return INTACT
