"""The ``wiregate`` command line against the control stream's test gateway.

The gateway is :class:`~wiregate.sim.control_gateway.ControlGateway` in the Amaranth
simulator, served on a real socket on 127.0.0.1 (:func:`~wiregate.sim.control_server.
serve_in_thread`); each command is the CLI's ``main`` with ``--target sim://...``. What the
commands do is checked against the gateway's own account (the entries its register file wrote
into the tables, its latches, its counters) and against independent expectations: the
compiled limit file (``sw/tables.py``), the model's re-commit rule (``sw/model.py``, through
``sim/replay.commit_image``), the records the bench fed the drop copy.
"""

import asyncio
import json
import os
import select
import socket
import threading
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import pytest

from wiregate.sim.control_server import SMALL, serve_in_thread
from wiregate.sim.replay import commit_image
from wiregate.sw import gateway_cmd
from wiregate.sw import regmap as regmap_module
from wiregate.sw.cli import main
from wiregate.sw.control import (
    Command,
    FrameReader,
    decode_frame,
    encode_command,
    encode_frame,
    stuff,
)
from wiregate.sw.driver import Driver, PushRefused, SocketTransport
from wiregate.sw.dropcopy import Kind, Record
from wiregate.sw.limits import load_limits
from wiregate.sw.model import Commit, Gate, SetReference
from wiregate.sw.regmap import RegisterMap
from wiregate.sw.tables import compile_limits

DEFAULT = "limits/default.yaml"
DEFAULT_TEXT = Path(DEFAULT).read_text()


@pytest.fixture
def gateway():
    regmap = RegisterMap(**SMALL)
    with serve_in_thread(regmap) as (port, sim):
        yield regmap, f"sim://127.0.0.1:{port}", sim


def wiregate(capsys, *argv):
    """Run the CLI; return (exit status, stdout, stderr). The simulated gateway runs a few
    thousand cycles a second: a frame of table writes takes it about a second."""
    status = main([*argv, "--timeout", "60"] if "--target" in argv else list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def loads(image):
    """The register file's writes that load ``image`` once, in the order the driver sends."""
    return [(name, k, entry)
            for name in sorted(image.entries, key=lambda n: image.regmap.table(n).address)
            for k, entry in enumerate(image.entries[name])]


def status(capsys, target):
    code, out, _ = wiregate(capsys, "status", "--target", target, "--json")
    assert code == 0
    return json.loads(out)


def test_push_loads_verifies_commits_and_reads_back(capsys, gateway, tmp_path):
    regmap, target, sim = gateway
    image = compile_limits(load_limits(DEFAULT), regmap)
    assert status(capsys, target)["epoch"] == 0
    code, out, err = wiregate(capsys, "limits", "push", DEFAULT, "--target", target,
                              "--json")
    assert code == 0, err
    assert json.loads(out)["epoch"] == 1
    # Once into the shadow bank, verified, committed, and once more into the new shadow bank.
    assert sim.table_writes == loads(image) * 2
    state = status(capsys, target)
    assert (state["epoch"], state["limits_loaded"], state["active_bank"]) == (1, 1, 1)
    # The read-back equals the compiled file: diff finds nothing.
    code, out, _ = wiregate(capsys, "limits", "diff", DEFAULT, "--target", target, "--json")
    assert (code, json.loads(out)) == (0, [])

    # A broken file is refused before anything is sent: same writes, epoch, read-back.
    broken = tmp_path / "broken.yaml"
    broken.write_text(DEFAULT_TEXT.replace("max_long: 100_000", "max_long: -5"))
    writes = list(sim.table_writes)
    code, _, err = wiregate(capsys, "limits", "push", str(broken), "--target", target)
    assert code == gateway_cmd.PROBLEMS
    assert "max_long: must not be negative" in err and "nothing was sent" in err
    assert sim.table_writes == writes
    assert status(capsys, target)["epoch"] == 1
    code, out, _ = wiregate(capsys, "limits", "diff", DEFAULT, "--target", target, "--json")
    assert (code, json.loads(out)) == (0, [])

    # diff names what a push of another file would change.
    tighter = tmp_path / "tighter.yaml"
    tighter.write_text(DEFAULT_TEXT.replace("credit: 50_000_000.00",
                                                    "credit: 40_000_000.00"))
    code, out, _ = wiregate(capsys, "limits", "diff", str(tighter), "--target", target,
                            "--json")
    assert (code, json.loads(out)) == (1, [{"table": "gateway_limits", "index": 0,
                                            "field": "credit",
                                            "gateway": 50_000_000 * 10_000,
                                            "file": 40_000_000 * 10_000}])


def test_recommit_keeps_the_references_the_model_keeps(capsys, gateway, tmp_path):
    regmap, target, sim = gateway
    first = load_limits(DEFAULT)
    assert wiregate(capsys, "limits", "push", DEFAULT, "--target", target)[0] == 0
    # The second file renames symbol 1 and moves every reference price.
    old = first.symbols[1].symbol
    second_path = tmp_path / "second.yaml"
    second_path.write_text(DEFAULT_TEXT.replace(f"symbol: {old}\n", "symbol: ZZZZ\n")
                           .replace("reference_price: 1", "reference_price: 2"))
    second = load_limits(str(second_path))
    assert second.symbols[1].symbol == "ZZZZ"
    # Without the references a re-commit must keep, the push refuses and changes nothing.
    writes = list(sim.table_writes)
    code, _, err = wiregate(capsys, "limits", "push", str(second_path), "--target", target)
    assert code == gateway_cmd.REFUSED and "--references" in err
    assert sim.table_writes == writes and status(capsys, target)["epoch"] == 1
    # The model: committed at t=100, symbol 0's reference refreshed at t=200.
    gate = Gate(n_sessions=regmap.n_sessions, n_symbols=regmap.n_symbols)
    gate.apply(Commit(100, first))
    gate.apply(SetReference(200, 0, 1_234_500))
    held = [{"index": y.index, "symbol": y.symbol, "price": gate.reference(y.index)[0],
             "stamp_us": gate.reference(y.index)[1]} for y in first.symbols]
    references = tmp_path / "references.json"
    references.write_text(json.dumps(held))
    code, _, err = wiregate(capsys, "limits", "push", str(second_path), "--target", target,
                            "--references", str(references))
    assert code == 0, err
    assert sim.table_writes[len(writes):] == loads(commit_image(gate, second, regmap)) * 2
    assert status(capsys, target)["epoch"] == 2


class OneBitOff(SocketTransport):
    """A line that flips the lowest bit of the first word of the first TABLE_WRITE, and
    gives the frame a CRC that matches: the gateway takes it and writes the wrong word."""

    flipped = False

    async def send(self, data):
        (frame, _), = FrameReader().feed(data)
        decoded = decode_frame(frame)
        if decoded.kind == Command.TABLE_WRITE and not self.flipped:
            self.flipped = True
            payload = bytearray(decoded.payload)
            payload[11] ^= 1        # after table and index: word 0, least significant byte
            data = stuff(encode_frame(decoded.kind, decoded.sequence, bytes(payload)))
        await super().send(data)


def test_push_refuses_to_commit_what_does_not_read_back(capsys, gateway):
    regmap, target, sim = gateway
    image = compile_limits(load_limits(DEFAULT), regmap)
    port = int(target.rsplit(":", 1)[1])

    async def push():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        driver = Driver(OneBitOff(reader, writer), timeout=60)
        await driver.identify()
        with pytest.raises(PushRefused, match="nothing committed") as refused:
            await driver.push(image)
        await driver.close()
        return refused.value.differences

    differences = asyncio.run(push())
    first = loads(image)[0]
    wrong = regmap.table(first[0]).decode_entry(
        [w ^ (k == 0) for k, w in enumerate(regmap.table(first[0]).encode_entry(first[2]))])
    assert [(d.table, d.index, d.field, d.gateway, d.image) for d in differences] == [
        (first[0], 0, f, wrong[f], first[2][f]) for f in first[2] if wrong[f] != first[2][f]]
    assert sim.table_writes == [(first[0], 0, wrong), *loads(image)[1:]]
    assert status(capsys, target)["epoch"] == 0


def test_kill_and_release_need_confirm(capsys, gateway):
    regmap, target, _ = gateway
    desk2 = next(s.index for s in load_limits(DEFAULT).sessions
                 if s.name == "equities-desk-2")
    assert wiregate(capsys, "kill", "--session", "equities-desk-2", "--limits", DEFAULT,
                    "--target", target)[0] == 0
    assert wiregate(capsys, "kill", "--gateway", "--target", target)[0] == 0
    state = status(capsys, target)
    assert (state["kill_sessions"], state["kill_gateway"]) == (1 << desk2, 1)
    code, _, err = wiregate(capsys, "release", "--session", str(desk2), "--target", target)
    assert code == gateway_cmd.USAGE and "--confirm" in err
    assert status(capsys, target)["kill_sessions"] == 1 << desk2
    assert wiregate(capsys, "release", "--session", str(desk2), "--confirm",
                    "--target", target)[0] == 0
    assert wiregate(capsys, "release", "--gateway", "--confirm", "--target", target)[0] == 0
    state = status(capsys, target)
    assert (state["kill_sessions"], state["kill_gateway"]) == (0, 0)
    # An index the gateway does not have is refused by it.
    code, _, err = wiregate(capsys, "kill", "--session", str(regmap.n_sessions),
                            "--target", target)
    assert code == gateway_cmd.REFUSED and "INDEX_RANGE" in err
    code, _, err = wiregate(capsys, "kill", "--session", "nobody", "--target", target)
    assert code == gateway_cmd.USAGE and "--limits" in err
    # A symbol latch reads back too, in status and its text.
    msft = next(y.index for y in load_limits(DEFAULT).symbols if y.symbol == "MSFT")
    assert wiregate(capsys, "kill", "--symbol", "MSFT", "--limits", DEFAULT,
                    "--target", target)[0] == 0
    assert status(capsys, target)["kill_symbols"] == 1 << msft
    code, out, _ = wiregate(capsys, "status", "--target", target)
    assert code == 0 and f"symbols {msft}\n" in out


def test_position_names_and_indices(capsys, gateway):
    # The test gateway has no engine: its exposure and state read 0. What is checked here
    # is the command: names from the limit file or indices, text and JSON, a bad name.
    regmap, target, _ = gateway
    code, out, _ = wiregate(capsys, "position", "equities-desk-2", "MSFT", "--limits",
                            DEFAULT, "--target", target, "--json")
    limits = load_limits(DEFAULT)
    assert code == 0 and json.loads(out) == {
        "session": next(s.index for s in limits.sessions if s.name == "equities-desk-2"),
        "symbol_index": next(y.index for y in limits.symbols if y.symbol == "MSFT"),
        "position": 0, "working_buy": 0, "working_sell": 0, "credit_used": 0,
        "last_user_ref_num": 0, "tokens": 0, "throttle_count": 0, "throttled": 0,
        "gateway_credit_used": 0}
    code, out, _ = wiregate(capsys, "position", "0", "3", "--target", target)
    assert code == 0 and out.startswith("session 0, symbol 3: position 0, working buy 0")
    code, _, err = wiregate(capsys, "position", "0", "NOPE", "--limits", DEFAULT,
                            "--target", target)
    assert code == gateway_cmd.USAGE and "NOPE" in err
    code, _, err = wiregate(capsys, "position", str(regmap.n_sessions), "0",
                            "--target", target)
    assert code == gateway_cmd.USAGE and "session index" in err


def test_counters_and_heartbeat(capsys, gateway):
    regmap, target, _ = gateway
    code, out, _ = wiregate(capsys, "counters", "--target", target, "--json")
    assert code == 0
    counters = json.loads(out)
    assert list(counters) == [r.name for r in regmap.group("counters")]
    assert counters["control_frame_errors"] == counters["control_command_errors"] == 0
    # A damaged frame (its CRC's last byte flipped) is counted as one frame error.
    frame = bytearray(encode_command(Command.HEARTBEAT, 12345))
    frame[-1] ^= 1
    with socket.create_connection(("127.0.0.1", int(target.rsplit(":", 1)[1]))) as line:
        line.sendall(stuff(bytes(frame)))
        line.recv(64)
    assert wiregate(capsys, "heartbeat", "--interval", "0", "--count", "3",
                    "--target", target)[0] == 0
    code, out, _ = wiregate(capsys, "counters", "--target", target, "--json", "--clear")
    after = json.loads(out)
    assert after["control_frame_errors"] == 1
    # Each new host (heartbeat, then counters) learns the sequence from one refusal.
    assert after["control_command_errors"] == counters["control_command_errors"] + 2
    assert after["control_commands"] > counters["control_commands"] + 3
    code, out, _ = wiregate(capsys, "counters", "--target", target, "--json")
    assert json.loads(out)["control_frame_errors"] == 0


def bench_records(n):
    return [Record(kind=Kind.VERDICT, session=k % 3, msg_type=ord("O"), accept=k % 2,
                   user_ref_num=1000 + k, quantity=100 * k + 1, price=1_500_000 + k,
                   symbol=b"AAPL    ") for k in range(n)]


def watched(out):
    return [json.loads(line) for line in out.splitlines()]


def test_watch_prints_every_record_decoded(capsys, gateway):
    _, target, sim = gateway
    fed = bench_records(12)
    sim.feed_records(fed, pause=300)        # slower than the line: none is lost
    code, out, err = wiregate(capsys, "watch", "--count", "12", "--json", "--target", target)
    assert code == 0, err
    got = watched(out)
    assert [r["sequence"] for r in got] == list(range(12))
    for record, line in zip(fed, got, strict=True):
        expected = gateway_cmd.record_json(record)
        assert {k: line[k] for k in expected if k != "sequence"} == \
            {k: v for k, v in expected.items() if k != "sequence"}


def test_watch_reports_a_gap(capsys, gateway):
    _, target, sim = gateway
    fed = bench_records(60)
    sim.feed_records(fed[:40])              # one a cycle: the 16-row queue overflows
    sim.feed_records(fed[40:], pause=300)   # then slower than the line: all arrive
    code, out, err = wiregate(capsys, "watch", "--count", "30", "--json", "--target",
                              target)
    assert code == gateway_cmd.GAP
    sequences = [r["sequence"] for r in watched(out)]
    lost = sum(b - a - 1 for a, b in pairwise(sequences))
    assert lost > 0 and err.count("GAP") == sum(
        b != a + 1 for a, b in pairwise(sequences))


def test_errors_say_what_to_do(capsys):
    code, _, err = wiregate(capsys, "status", "--target", "tcp://127.0.0.1:1")
    assert code == gateway_cmd.USAGE and "sim://HOST:PORT" in err
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, _, err = wiregate(capsys, "status", "--target", f"sim://127.0.0.1:{port}")
    assert code == gateway_cmd.UNREACHABLE and "wiregate sim" in err


@contextmanager
def serial_line(port):
    """A pty whose far end is bridged to the gateway's socket: the serial device's path."""
    master, slave = os.openpty()
    line = socket.create_connection(("127.0.0.1", port))
    stop = threading.Event()

    def bridge():
        while not stop.is_set():
            ready, _, _ = select.select([master, line], [], [], 0.05)
            if master in ready:
                line.sendall(os.read(master, 4096))
            if line in ready:
                os.write(master, line.recv(4096))

    thread = threading.Thread(target=bridge, daemon=True)
    thread.start()
    try:
        yield os.ttyname(slave)
    finally:
        stop.set()
        thread.join()
        line.close()
        os.close(master)
        os.close(slave)


def test_serial_transport_over_a_pty(capsys, gateway):
    target = gateway[1]
    with serial_line(int(target.rsplit(":", 1)[1])) as device:
        serial = f"serial://{device}?baud=3000000"
        assert wiregate(capsys, "kill", "--session", "2", "--target", serial)[0] == 0
        state = status(capsys, serial)
        assert (state["kill_sessions"], state["epoch"]) == (1 << 2, 0)
        code, _, err = wiregate(capsys, "status", "--target", serial + "&parity=E")
        assert code == gateway_cmd.USAGE and "baud" in err
    code, _, err = wiregate(capsys, "status", "--target", "serial:///dev/nonexistent-tty")
    assert code == gateway_cmd.UNREACHABLE and "/dev/nonexistent-tty" in err


def test_a_gateway_of_another_version_is_refused(capsys, gateway, monkeypatch):
    target = gateway[1]
    # The gateway was built by this wiregate; the host now speaks a later layout version.
    monkeypatch.setattr(regmap_module, "VERSION", (regmap_module.VERSION[0] + 1, 0))
    code, out, err = wiregate(capsys, "limits", "push", DEFAULT, "--target", target)
    assert code == gateway_cmd.MISMATCH and out == ""
    assert "version" in err and "wiregate release the gateware was built from" in err
    monkeypatch.undo()
    assert status(capsys, target)["epoch"] == 0
