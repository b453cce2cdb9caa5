"""The audit trail: the chain is what a plain SHA-256/HMAC recomputation says, and every
edit, removal, insertion, reorder, lost file and cut tail is found, with file and line.

A day (:func:`write_day`) is four entries: a command, two drop-copy entries of two records
each (``batch=2``), an alert."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wiregate.sw.audit import (
    AuditError,
    AuditWriter,
    entry_records,
    iter_entries,
    log_files,
    record_bodies,
    verify,
)
from wiregate.sw.cli import main
from wiregate.sw.dropcopy import Control, Kind, Record, decode_records
from wiregate.sw.reasons import Reason, reason_word

START = datetime(2026, 12, 4, 14, 30, tzinfo=UTC)


class Clock:
    """One millisecond per entry, from START."""

    def __init__(self):
        self.now = START

    def __call__(self):
        self.now += timedelta(milliseconds=1)
        return self.now


def records():
    """A small day: an accepted Enter, a rejected one, an execution, a kill."""
    return [
        Record(sequence=0, cycle=100, time_us=1, kind=Kind.VERDICT, msg_type=ord("O"),
               session=1, accept=1, user_ref_num=7, side=ord("B"), quantity=100,
               price=1_000_000, symbol=b"AAPL    ", symbol_index=3, symbol_known=1),
        Record(sequence=1, cycle=200, time_us=2, kind=Kind.VERDICT, msg_type=ord("O"),
               session=2, reasons=reason_word([Reason.QUANTITY, Reason.NOTIONAL]),
               primary=Reason.QUANTITY, user_ref_num=9, side=ord("S"), quantity=900_000,
               price=1_000_000, symbol=b"MSFT    ", symbol_index=4, symbol_known=1),
        Record(sequence=2, cycle=300, time_us=3, kind=Kind.EXCHANGE, msg_type=ord("E"),
               session=1, user_ref_num=7, quantity=100, price=1_000_000, match_number=55,
               symbol_index=3, symbol_known=1),
        Record(sequence=3, cycle=400, time_us=4, kind=Kind.CONTROL, control=Control.KILL,
               session=2, argument=1),
    ]


NAMES = {3: "AAPL", 4: "MSFT"}


def write_day(folder: Path, *, key=None, max_bytes=64 << 20, repeat=1) -> tuple[int, str]:
    with AuditWriter(folder, key=key, max_bytes=max_bytes, clock=Clock(), batch=2,
                     symbols=NAMES.get) as log:
        for _ in range(repeat):
            log.append("command", {"command": "limits push", "epoch": 1})
            for record in records():
                log.record(record)
            log.append("alert", {"alert": "shadow_mismatch", "session": 2})
        return log.head


def flip(line: str) -> str:
    """``line`` with the first hex digit of its drop-copy records changed (a record edited)."""
    at = line.index('"records":"') + len('"records":"') + 1
    return line[:at] + ("1" if line[at] != "1" else "2") + line[at + 1:]


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def expected_hash(entry: dict, key=None) -> str:
    # Independent of the module: the canonical JSON spelled out here.
    fields = {k: v for k, v in entry.items() if k != "hash"}
    data = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def tamper(folder: Path, edit) -> None:
    """Write a day, then let ``edit`` change the list of lines of its file in place."""
    write_day(folder)
    path = folder / "audit-000000.jsonl"
    lines = lines_of(path)
    edit(lines)
    path.write_text("".join(lines))


def check_broken(folder: Path, line: int | None, words: str, key=None) -> None:
    with pytest.raises(AuditError) as info:
        verify(folder, key)
    assert words in info.value.message, info.value.message
    if line is not None:
        assert info.value.line == line


def test_chain_matches_an_independent_recomputation(tmp_path):
    n, head = write_day(tmp_path)
    raw = [json.loads(text) for text in lines_of(tmp_path / "audit-000000.jsonl")]
    assert [e["n"] for e in raw] == list(range(4)) and n == 3
    prev = "0" * 64
    for entry in raw:
        assert entry["prev"] == prev
        assert entry["hash"] == expected_hash(entry)
        prev = entry["hash"]
    assert head == prev
    assert verify(tmp_path).hash == head
    assert [e["kind"] for e in raw] == ["command", "dropcopy", "dropcopy", "alert"]
    assert raw[1]["t"] == "2026-12-04T14:30:00.002000Z"
    # The records' wire bytes, two an entry, in order; the tickers of the indices they name.
    assert [decode_records(bytes.fromhex(e["body"]["records"])) for e in raw[1:3]] == [
        records()[:2], records()[2:]]
    assert [e["body"]["symbols"] for e in raw[1:3]] == [{"3": "AAPL", "4": "MSFT"},
                                                        {"3": "AAPL"}]


def test_pending_records_are_written_in_order_and_at_most_batch_an_entry(tmp_path):
    day = records()
    with AuditWriter(tmp_path, clock=Clock(), batch=3) as log:
        for record in day * 2:
            log.record(record)
        log.append("alert", {"alert": "a"})    # after the 8 records: 3, 3 and then 2
        log.record(day[0])
        log.flush()                             # the pending record is written
        assert len(list(iter_entries(tmp_path))) == 5
        log.record(day[1])
    entries = list(iter_entries(tmp_path))     # closing wrote the last one
    assert [e.kind for e in entries] == ["dropcopy"] * 3 + ["alert"] + ["dropcopy"] * 2
    got = [entry_records(e) for e in entries if e.kind == "dropcopy"]
    assert got == [day[:3], day[3:] + day[:2], day[2:], [day[0]], [day[1]]]


def test_dropcopy_body_names_what_the_codes_mean(tmp_path):
    write_day(tmp_path)
    bodies = [b for e in iter_entries(tmp_path) if e.kind == "dropcopy"
              for b in record_bodies(e)]
    assert bodies[1]["reason_names"] == ["QUANTITY", "NOTIONAL"]
    assert bodies[1]["accept"] == 0 and bodies[1]["symbol"] == "MSFT"
    # The execution carries only the symbol index; the writer's map names it.
    assert bodies[2]["kind"] == "EXCHANGE" and bodies[2]["symbol"] == "AAPL"
    assert bodies[3]["control"] == "KILL" and bodies[3]["symbol"] == ""
    # Every field of the record is kept, so the record can be rebuilt from the log.
    rebuilt = {k: v for k, v in bodies[0].items() if k in Record.__dataclass_fields__}
    rebuilt.update(kind=Kind[rebuilt["kind"]], control=Control[rebuilt["control"]],
                   symbol=rebuilt["symbol"].encode().ljust(8))
    assert Record(**rebuilt) == records()[0]


def test_an_edited_entry_is_found(tmp_path):
    def edit(lines):
        lines[2] = flip(lines[2])
    tamper(tmp_path, edit)
    check_broken(tmp_path, 3, "entry 2 was altered")


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(tmp_path):
    def edit(lines):
        entry = json.loads(flip(lines[2]))
        entry["hash"] = expected_hash(entry)
        lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
    tamper(tmp_path, edit)
    check_broken(tmp_path, 4, "does not follow")


@pytest.mark.parametrize("index", [0, 2, 3])
def test_a_removed_entry_is_found(tmp_path, index):
    def edit(lines):
        del lines[index]
    tamper(tmp_path, edit)
    if index == 3:
        # The last entry: nothing follows it, so only an anchor can tell.
        head = verify(tmp_path)
        assert head.entries == 3
        with pytest.raises(AuditError, match="cut off"):
            verify(tmp_path, anchors=[(3, "0" * 64)])
    else:
        check_broken(tmp_path, index + 1, "missing")


def test_reordered_entries_are_found(tmp_path):
    def edit(lines):
        lines[1], lines[2] = lines[2], lines[1]
    tamper(tmp_path, edit)
    check_broken(tmp_path, 2, "expected")


def test_an_inserted_entry_is_found(tmp_path):
    def edit(lines):
        lines.insert(2, lines[1])
    tamper(tmp_path, edit)
    check_broken(tmp_path, 3, "repeated or out of order")


def test_rotation_keeps_one_chain_and_a_lost_file_is_found(tmp_path):
    n, head = write_day(tmp_path, max_bytes=2048, repeat=8)
    files = log_files(tmp_path)
    assert len(files) >= 4
    entries = list(iter_entries(tmp_path))
    rotations = [e for e in entries if e.kind == "rotate"]
    assert [e.body["next"] for e in rotations] == [f.name for f in files[1:]]
    assert entries[-1].n == n and entries[-1].hash == head
    assert verify(tmp_path).files == len(files)
    files[2].unlink()
    check_broken(tmp_path, 0, "missing")


def test_swapped_files_are_found(tmp_path):
    write_day(tmp_path, max_bytes=2048, repeat=8)
    a, b = log_files(tmp_path)[1:3]
    text_a, text_b = a.read_text(), b.read_text()
    a.write_text(text_b)
    b.write_text(text_a)
    check_broken(tmp_path, 1, "missing")


def test_a_keyed_log_refuses_a_chain_rebuilt_without_the_key(tmp_path):
    key = b"risk-officer-secret"
    write_day(tmp_path, key=key)
    verify(tmp_path, key)
    path = tmp_path / "audit-000000.jsonl"
    # Rebuild the whole chain with plain SHA-256 after an edit: intact without the key ...
    prev = "0" * 64
    out = []
    for number, text in enumerate(lines_of(path)):
        entry = json.loads(text)
        if number == 2:
            entry = json.loads(flip(text))
        entry["prev"] = prev
        entry["hash"] = prev = expected_hash(entry)
        out.append(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
    path.write_text("".join(out))
    verify(tmp_path)
    # ... but not under it.
    check_broken(tmp_path, 1, "under the given key", key=key)


def test_a_restarted_writer_continues_the_chain(tmp_path):
    n, _ = write_day(tmp_path)
    with AuditWriter(tmp_path, clock=Clock()) as log:
        assert log.head[0] == n
        log.append("command", {"command": "heartbeat"})
    entries = list(iter_entries(tmp_path))
    assert entries[-1].n == n + 1 and entries[-1].body == {"command": "heartbeat"}


def test_a_torn_last_line_is_kept_in_an_alert(tmp_path):
    write_day(tmp_path)
    path = tmp_path / "audit-000000.jsonl"
    torn = '{"body":{"command":"kill"},"n":4,"t":"2026-12'
    path.write_text(path.read_text() + torn)
    check_broken(tmp_path, 5, "torn last line")
    with AuditWriter(tmp_path, clock=Clock()) as log:
        log.append("command", {"command": "kill"})
    entries = list(iter_entries(tmp_path))
    assert entries[4].kind == "alert" and entries[4].body["text"] == torn
    assert entries[5].body == {"command": "kill"}


def test_a_writer_never_extends_a_broken_chain(tmp_path):
    write_day(tmp_path)
    path = tmp_path / "audit-000000.jsonl"
    path.write_text(path.read_text().replace('"session":2', '"session":3', 1))
    with pytest.raises(AuditError, match="altered"):
        AuditWriter(tmp_path)


def test_cli_verify(tmp_path, capsys):
    n, head = write_day(tmp_path)
    assert main(["audit", "verify", str(tmp_path)]) == 0
    assert f"head {n}:{head}" in capsys.readouterr().out
    assert main(["audit", "verify", str(tmp_path / "audit-000000.jsonl"),
                 "--anchor", f"{n}:{head}"]) == 0
    path = tmp_path / "audit-000000.jsonl"
    lines = lines_of(path)
    lines[1] = flip(lines[1])
    path.write_text("".join(lines))
    assert main(["audit", "verify", str(tmp_path)]) == 1
    assert "audit-000000.jsonl:2: entry 1 was altered" in capsys.readouterr().err


def test_cli_show_filters(tmp_path, capsys):
    write_day(tmp_path)

    def show(*args):
        assert main(["audit", "show", str(tmp_path), "--json", *args]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    # A drop-copy entry shows as its records, each with the entry's number and time.
    assert [e["n"] for e in show()] == [0, 1, 1, 2, 2, 3]
    assert [e["body"]["sequence"] for e in show("--symbol", "aapl")] == [0, 2]
    assert [e["body"]["sequence"] for e in show("--reason", "notional")] == [1]
    assert [e["n"] for e in show("--session", "2")] == [1, 2, 3]
    assert [e["kind"] for e in show("--kind", "alert")] == ["alert"]
    assert [e["n"] for e in show("--since", "2026-12-04T14:30:00.003", "--until",
                                 "2026-12-04T14:30:00.004Z")] == [2, 2, 3]
    assert main(["audit", "show", str(tmp_path), "--reason", "NOTIONAL"]) == 0
    text = capsys.readouterr().out
    assert text.strip().endswith("MSFT reject QUANTITY,NOTIONAL")


def test_show_refuses_a_dropcopy_entry_that_holds_no_whole_records(tmp_path, capsys):
    # A chain rebuilt without a key can hold anything: an entry of 87 bytes, not 88.
    write_day(tmp_path)
    path = tmp_path / "audit-000000.jsonl"
    prev, out = "0" * 64, []
    for number, text in enumerate(lines_of(path)):
        entry = json.loads(text)
        if number == 1:
            entry["body"]["records"] = entry["body"]["records"][:-2]
        entry["prev"] = prev
        entry["hash"] = prev = expected_hash(entry)
        out.append(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
    path.write_text("".join(out))
    verify(tmp_path)                    # the chain itself holds
    assert main(["audit", "show", str(tmp_path)]) == 1
    assert "audit-000000.jsonl:2: drop-copy entry 1 does not hold whole records" in \
        capsys.readouterr().err
