# Ref: wiregate audit log 2.0 (this module is the specification; docs/audit.md explains it)
"""The audit trail: every drop-copy record, host command and alert, in one hash chain.

SEC Rule 15c3-5 and MiFID II RTS 6 ask a broker to keep a record of its risk controls and
of what they did. The log is a folder of JSON-lines files (``audit-000000.jsonl``,
``audit-000001.jsonl``, ...). Each line is one entry::

    {"n": 41, "t": "2026-12-04T10:15:02.123456Z", "kind": "dropcopy", "body": {...},
     "prev": "<hash of entry 40>", "hash": "<hash of this entry>"}

``n`` counts entries from 0 across all files, ``t`` is the host's UTC clock when the entry
was appended, ``body`` is what happened. A ``dropcopy`` entry holds a run of consecutive
drop-copy records, as their wire bytes (``records``: hex, :data:`~wiregate.sw.dropcopy.
RECORD_SIZE` bytes each, in the order read) and the tickers of the symbol indices they name
(``symbols``: index as text -> ticker, from the limits in effect); :func:`entry_records`
decodes them and :func:`record_bodies` names their fields (:func:`record_body`). One entry
per run, not per record: the daemon logs every record the gateway makes, and an entry's JSON
and hash cost more than a record's bytes.
``hash`` is SHA-256 (or HMAC-SHA256 under a key) of the entry's canonical JSON without
``hash`` (keys sorted, no spaces, ASCII), so it covers ``n``, ``t``, ``kind``, ``body`` and
``prev``; ``prev`` of entry 0 is 64 zeros. Changing, removing, inserting or reordering any
entry breaks the chain at that point, which :func:`verify` reports with file and line.

Rotation keeps the chain across files: when a file passes ``max_bytes`` the writer appends a
``rotate`` entry naming the next file, and the next file's first entry continues the chain
from it. So a missing or swapped file is found too. Entries at the very end of the newest
file can be cut off without a trace in the chain itself (nothing follows them); the writer
therefore reports its head (``n`` and ``hash``) for the operator to anchor elsewhere, and
``verify --anchor N:HASH`` proves the log still holds that entry.

A writer that starts on an existing folder verifies it first and continues its chain. A
last line torn by a crash (no newline) is not lost: it is moved into the body of an
``alert`` entry that says so, and the chain continues from the last whole entry.
"""

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wiregate.sw.dropcopy import Control, Kind, Record, decode_records
from wiregate.sw.reasons import describe

__all__ = [
    "KINDS",
    "AuditError",
    "AuditWriter",
    "Entry",
    "entry_records",
    "iter_entries",
    "log_files",
    "record_bodies",
    "record_body",
    "verify",
]

KINDS = ("dropcopy", "command", "alert", "rotate")
GENESIS = "0" * 64
_FILE_RE = re.compile(r"^audit-(\d{6})\.jsonl$")
_KEYS = ("body", "hash", "kind", "n", "prev", "t")


class AuditError(ValueError):
    """The log is not intact: where (file and line) and what was found."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Entry:
    """One audit entry as read back, with where it was found."""

    n: int
    t: str
    kind: str
    body: dict
    prev: str
    hash: str
    path: Path
    line: int


def _canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _digest(fields: dict, key: bytes | None) -> str:
    return _hash(_canonical(fields), key)


def _hash(data: bytes, key: bytes | None) -> str:
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _file_name(number: int) -> str:
    return f"audit-{number:06d}.jsonl"


def log_files(folder: Path) -> list[Path]:
    """The log's files in chain order (by their number)."""
    found = [(int(m.group(1)), p) for p in Path(folder).iterdir()
             if (m := _FILE_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def record_body(record: Record, symbols: Callable[[int], str | None] | None = None) -> dict:
    """The body of a drop-copy entry: every field of ``record``, with names beside the codes.

    ``symbols`` maps a symbol index to its ticker (from the limit file that was loaded), so
    ``audit show --symbol`` finds exchange and control records too, which carry only the
    index; an Enter's verdict carries the ticker itself.
    """
    body = {name: getattr(record, name) for name in record.__dataclass_fields__}
    body["kind"] = Kind(record.kind).name
    body["control"] = Control(record.control).name
    body["symbol"] = record.symbol.decode("ascii", "replace").rstrip(" \0")
    body["reason_names"] = describe(record.reasons)
    if not body["symbol"] and record.symbol_known and symbols is not None:
        body["symbol"] = symbols(record.symbol_index) or ""
    return body


def entry_records(entry: "Entry") -> list[Record]:
    """The drop-copy records of a ``dropcopy`` entry, in the order they were read.

    Raises
    ------
    AuditError
        The entry's ``records`` are not whole drop-copy records (a chain rebuilt without
        the key can hold anything).
    """
    try:
        return decode_records(bytes.fromhex(entry.body["records"]))
    except (KeyError, TypeError, ValueError) as error:     # ProtocolError is a ValueError
        raise AuditError(entry.path, entry.line, f"drop-copy entry {entry.n} does not hold "
                                                 f"whole records: {error}") from None


def record_bodies(entry: "Entry") -> list[dict]:
    """:func:`record_body` of each record of a ``dropcopy`` entry, named by its ``symbols``."""
    names = entry.body.get("symbols", {})
    return [record_body(r, lambda index: names.get(str(index)))
            for r in entry_records(entry)]


def _parse(path: Path, line_no: int, text: str, key: bytes | None) -> Entry:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditError(path, line_no, f"not a JSON entry ({exc.msg})") from None
    if not isinstance(fields, dict) or tuple(sorted(fields)) != _KEYS:
        raise AuditError(path, line_no, f"an entry has exactly the keys {', '.join(_KEYS)}")
    claimed = fields.pop("hash")
    if not hmac.compare_digest(str(claimed), _digest(fields, key)):
        raise AuditError(path, line_no, f"entry {fields.get('n')} was altered: its hash does "
                                        "not match its contents" + ("" if key is None else
                                                                    " under the given key"))
    if fields["kind"] not in KINDS:
        raise AuditError(path, line_no, f"unknown entry kind {fields['kind']!r}")
    return Entry(hash=claimed, path=path, line=line_no, **fields)


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, whole) for each line; ``whole`` is False for a torn last line."""
    data = path.read_bytes().decode("utf-8", "replace")
    parts = data.split("\n")
    for number, text in enumerate(parts[:-1], start=1):
        yield number, text, True
    if parts[-1]:
        yield len(parts), parts[-1], False


def iter_entries(folder: Path, key: bytes | None = None) -> Iterator[Entry]:
    """Every entry of the log in order, each checked against its hash and its predecessor.

    Raises
    ------
    AuditError
        At the first entry that is altered, missing, out of order or out of place.
    """
    files = log_files(folder)
    if not files:
        raise AuditError(Path(folder), 0, "no audit-NNNNNN.jsonl files")
    expected_n, expected_prev = 0, GENESIS
    expected_file: str | None = files[0].name
    for path in files:
        if expected_file is None:
            raise AuditError(path, 0, "follows a file that did not end in a rotate entry")
        if path.name != expected_file:
            raise AuditError(path, 0, f"the previous file rotated into {expected_file}, "
                                      "which is missing")
        expected_file = None
        for line_no, text, whole in _lines(path):
            if not whole:
                raise AuditError(path, line_no, "torn last line (no newline): a crash during "
                                                "a write; a writer started on the log keeps it "
                                                "in an alert entry")
            if expected_file is not None:
                raise AuditError(path, line_no, "entries after a rotate entry")
            entry = _parse(path, line_no, text, key)
            if entry.n != expected_n:
                what = "missing" if entry.n > expected_n else "repeated or out of order"
                raise AuditError(path, line_no, f"entry {entry.n} where {expected_n} was "
                                                f"expected: entries {what}")
            if entry.prev != expected_prev:
                raise AuditError(path, line_no, f"entry {entry.n} does not follow the entry "
                                                "before it (its prev hash differs)")
            if entry.kind == "rotate":
                expected_file = entry.body.get("next")
            expected_n, expected_prev = entry.n + 1, entry.hash
            yield entry


@dataclass(frozen=True)
class Head:
    """The last entry of an intact log: how many entries and the hash to anchor."""

    entries: int
    hash: str
    files: int


def verify(folder: Path, key: bytes | None = None,
           anchors: Iterable[tuple[int, str]] = ()) -> Head:
    """Check the whole log; return its head, or raise :class:`AuditError` at the first fault.

    ``anchors`` are (n, hash) pairs recorded elsewhere (an earlier head): each must still be
    in the log with that hash, which proves nothing up to it was cut off or rewritten.
    """
    wanted = dict(anchors)
    count, last, files = 0, GENESIS, set()
    for entry in iter_entries(folder, key):
        count, last = entry.n + 1, entry.hash
        files.add(entry.path)
        anchor = wanted.pop(entry.n, None)
        if anchor is not None and anchor != entry.hash:
            raise AuditError(entry.path, entry.line, f"entry {entry.n} is not the anchored one "
                                                     "(the log was rewritten from here or before)")
    if wanted:
        missing = min(wanted)
        raise AuditError(Path(folder), 0, f"anchored entry {missing} is gone: the log ends at "
                                          f"entry {count - 1}, so entries were cut off")
    return Head(entries=count, hash=last, files=len(files))


class AuditWriter:
    """Append entries to the log in ``folder``, continuing its chain.

    Parameters
    ----------
    folder : Path
        Created if missing. An existing log is verified first (:class:`AuditError` if it is
        not intact: a writer never extends a broken chain).
    key : bytes or None
        HMAC key. Without one, anyone who can write the folder can rewrite it whole and
        recompute the chain; anchors or a key kept off the host close that gap.
    max_bytes : int
        A file that reaches this size is closed with a ``rotate`` entry.
    clock : callable
        Returns the entry's time (UTC); tests pass a fixed clock.
    batch : int
        Drop-copy records per entry at most: :meth:`record` holds records until this many
        are pending, another entry is appended, or :meth:`flush`.
    symbols : callable or None
        Maps a symbol index to its ticker (the limits in effect), for the ``symbols`` of a
        drop-copy entry; settable (:attr:`symbols`).
    """

    def __init__(self, folder: Path, *, key: bytes | None = None, max_bytes: int = 64 << 20,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), batch: int = 512,
                 symbols: Callable[[int], str | None] | None = None) -> None:
        if max_bytes < 1024:
            raise ValueError(f"max_bytes must be at least 1024, got {max_bytes}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self._batch = batch
        self._pending: list[Record] = []
        self.symbols = symbols
        self._folder = Path(folder)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._key = key
        self._max_bytes = max_bytes
        self._clock = clock
        self._n, self._prev, torn = self._resume()
        files = log_files(self._folder)
        self._number = int(_FILE_RE.match(files[-1].name).group(1)) if files else 0
        self._file = self._open()
        if torn is not None:
            self.append("alert", {"alert": "torn_entry",
                                  "message": "the log's last line was cut off by a crash "
                                             "during a write; its text is kept here",
                                  "text": torn})

    def _resume(self) -> tuple[int, str, str | None]:
        files = log_files(self._folder)
        if not files:
            return 0, GENESIS, None
        torn = None
        last = files[-1]
        data = last.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            torn = data[cut:].decode("utf-8", "replace")
            last.write_bytes(data[:cut])
        head = verify(self._folder, self._key)
        return head.entries, head.hash, torn

    @property
    def head(self) -> tuple[int, str]:
        """(n, hash) of the last entry, pending records written first: anchor it elsewhere
        to detect a cut tail."""
        self._write_records()
        return self._n - 1, self._prev

    def append(self, kind: str, body: dict) -> str:
        """Append one entry, after the pending records; returns its hash. ``body`` must be
        JSON-serialisable."""
        if kind not in KINDS or kind in ("rotate", "dropcopy"):
            raise ValueError(f"kind must be one of command, alert, got {kind!r} (drop-copy "
                             "records go through record())")
        self._write_records()
        self._entry(kind, body)
        return self._prev

    def record(self, record: Record) -> None:
        """Take a drop-copy record: it is written with those pending before it, in one entry
        (``batch`` at most), before any later entry and at :meth:`flush`."""
        self._pending.append(record)
        if len(self._pending) >= self._batch:
            self._write_records()

    def _write_records(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        names = {}
        if self.symbols is not None:
            for index in {r.symbol_index for r in pending if r.symbol_known}:
                name = self.symbols(index)
                if name:
                    names[str(index)] = name
        # The body's canonical JSON spelled out: hex digits need no escaping, and
        # json.dumps of a long string costs more than the hash.
        data = b"".join([r.encode() for r in pending]).hex()
        self._entry("dropcopy", f'{{"records":"{data}","symbols":{_canonical(names).decode()}}}')

    def _entry(self, kind: str, body: dict | str) -> None:
        self._write(kind, _canonical(body).decode() if isinstance(body, dict) else body)
        if self._size >= self._max_bytes:
            self._rotate()

    def _write(self, kind: str, body: str) -> None:
        """Write one entry whose body's canonical JSON is ``body``."""
        stamp = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # The canonical JSON built around the body's: keys in sorted order, "hash" between
        # "body" and "kind", the same bytes _canonical gives, which verify() recomputes.
        head = '{"body":' + body + ","
        tail = (f'"kind":{json.dumps(kind)},"n":{self._n},"prev":"{self._prev}",'
                f'"t":"{stamp}"}}')
        digest = _hash((head + tail).encode(), self._key)
        line = f'{head}"hash":"{digest}",{tail}\n'
        self._file.write(line)
        self._size += len(line)         # ASCII: characters are bytes (no tell() per entry)
        self._n, self._prev = self._n + 1, digest

    def _rotate(self) -> None:
        self._number += 1
        self._write("rotate", _canonical({"next": _file_name(self._number)}).decode())
        self._file.close()
        self._file = self._open()

    def _open(self):
        # The writer holds its current file open for its lifetime; close() ends it.
        path = self._folder / _file_name(self._number)
        self._size = path.stat().st_size if path.exists() else 0
        return open(path, "a", encoding="ascii")

    def flush(self) -> None:
        """Write the pending records and hand everything written to the operating system
        (the daemon calls this every heartbeat)."""
        self._write_records()
        self._file.flush()

    def close(self) -> None:
        self._write_records()
        self._file.close()

    def __enter__(self) -> "AuditWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
