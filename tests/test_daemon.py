"""``wiregate daemon`` against ``wiregate sim`` as a real process, over its TCP socket.

The gateway process is started as a user would, and the daemon runs either in this process
(:class:`~wiregate.sw.daemon.service.Daemon`, to wrap its transport or watch its state) or as
``wiregate daemon`` itself. What is checked comes from outside the daemon: the drop copy's
own records in the audit log (sequence numbers, gateway times, kinds), the gateway's status
block and counters read by a separate driver afterwards, the audit chain verified by
``wiregate audit verify``'s function, and the metrics parsed with prometheus-client's text
parser and compared with the audit log.

The limit file is ``limits/default.yaml`` with a heartbeat timeout of HEARTBEAT_TIMEOUT_US of
gateway time (docs/sim.md: about 0.5 to 1 ms of gateway time passes per host second here),
so only the daemon's heartbeats keep the gateway from failing closed.
"""

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from wiregate.sim.demo_trading import Clients, Exchange, Planned, connect, connections
from wiregate.sw.audit import iter_entries, verify
from wiregate.sw.control import FrameReader, decode_frame, encode_frame, stuff
from wiregate.sw.control import Kind as FrameKind
from wiregate.sw.daemon.actions import Action
from wiregate.sw.daemon.config import load_config
from wiregate.sw.daemon.references import DATAGRAM
from wiregate.sw.daemon.service import Daemon
from wiregate.sw.driver import Driver, SocketTransport, Transport
from wiregate.sw.dropcopy import Control, Kind, Record, decode_records
from wiregate.sw.limits import load_limits
from wiregate.sw.model import collar_fires
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import Reason

pytestmark = pytest.mark.verilator

ROOT = Path(__file__).resolve().parent.parent
PROFILE, WIDTH = "colorlight-5a75b", 1
HEARTBEAT_TIMEOUT_US = 400
TIMEOUT = 30.0          # a loaded machine runs the model slowly


@pytest.fixture
def sim_port(tmp_path):
    with started_sim(tmp_path / "sim-stderr.txt") as port:
        yield port


@contextlib.contextmanager
def started_sim(log: Path):
    """A `wiregate sim` process; its port."""
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "wiregate.sw.cli", "sim", "--profile", PROFILE,
             "--width", str(WIDTH), "--report-s", "5"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, f"no port line: {line!r}; stderr: {log.read_text()[-2000:]}"
        yield int(match[1])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def limits_text(gateway=(), **symbol0) -> str:
    """limits/default.yaml with the short heartbeat timeout (and the gateway's keys in
    ``gateway`` and AAPL's keys changed)."""
    data = yaml.safe_load((ROOT / "limits" / "default.yaml").read_text())
    data["gateway"]["heartbeat_timeout"] = f"{HEARTBEAT_TIMEOUT_US}us"
    data["gateway"].update(gateway)
    data["symbols"][0].update(symbol0)
    for symbol in data["symbols"]:      # ON must stay text (YAML 1.1 would read a boolean)
        symbol["symbol"] = str(symbol["symbol"])
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def setup(tmp_path, sim_port):
    """(config path, limits path, audit folder, port)."""
    return *daemon_files(tmp_path, sim_port, limits_text()), sim_port


def daemon_files(tmp_path, port: int, text: str) -> tuple[Path, Path, Path]:
    """The daemon's configuration for the gateway on ``port`` and its limit file holding
    ``text``: (config path, limits path, audit folder)."""
    limits = tmp_path / "limits.yaml"
    limits.write_text(text)
    config = tmp_path / "daemon.yaml"
    config.write_text(yaml.safe_dump({
        "target": f"sim://127.0.0.1:{port}", "limits": "limits.yaml",
        "timeout": f"{TIMEOUT}s",
        "heartbeat": {"interval": "50ms", "status_interval": "500ms"},
        "push": {"verify": True, "watch_interval": "100ms"},
        "shadow": {"kill_scope": "gateway", "kill_within": "5s"},
        "audit": {"path": "audit", "max_bytes": "16KiB"},
        "metrics": {"port": 0}}))
    return config, limits, tmp_path / "audit"


async def until(condition, what: str, timeout: float = 2 * TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def entries(folder: Path) -> list:
    return list(iter_entries(folder))


def records(folder: Path) -> list[Record]:
    return [r for e in entries(folder) if e.kind == "dropcopy"
            for r in decode_records(bytes.fromhex(e.body["records"]))]


def alerts(folder: Path) -> list[dict]:
    return [e.body for e in entries(folder) if e.kind == "alert"]


async def gateway_state(port: int) -> tuple[dict, dict]:
    """The status block and counters, read by a driver of the test's own."""
    driver = Driver(await SocketTransport.connect("127.0.0.1", port), timeout=TIMEOUT)
    try:
        await driver.identify()
        return await driver.status(), await driver.counters()
    finally:
        await driver.close()


class Alter(Transport):
    """The socket, with the drop-copy records ``change`` returns a new record for altered on
    their way in (the frame re-encoded with a good CRC, as if the gateway had sent it)."""

    def __init__(self, inner: Transport, change):
        self._inner, self._change, self._reader = inner, change, FrameReader()
        self.altered: list[Record] = []

    async def send(self, data):
        await self._inner.send(data)

    async def receive(self):
        out = b""
        while not out:
            for frame, _ in self._reader.feed(await self._inner.receive()):
                decoded = decode_frame(frame)
                if decoded.kind == FrameKind.DROP_COPY:
                    new = self._change(Record.decode(decoded.payload))
                    if new is not None:
                        self.altered.append(new)
                        frame = encode_frame(FrameKind.DROP_COPY, 0, new.encode())
                out += stuff(frame)
        return out

    async def finish(self):
        await self._inner.finish()

    async def close(self):
        await self._inner.close()


async def serve(config_path, port, body, *, checks=(), wrap=None):
    """Run a daemon in this process while ``body(daemon)`` runs; stop it; return it."""
    daemon = Daemon(load_config(config_path), checks=list(checks))
    transport = await SocketTransport.connect("127.0.0.1", port)
    running = asyncio.ensure_future(daemon.run(wrap(transport) if wrap else transport))
    try:
        await until(lambda: daemon.limits is not None or running.done(), "the first commit")
        await body(daemon)
    finally:
        daemon.stop()
        await asyncio.wait_for(running, 4 * TIMEOUT)
    return daemon


def test_daemon_keeps_the_gateway_alive_and_every_record_agrees(setup):
    config, _, audit, port = setup
    seen = []

    class Watch:
        """A check of the test's own: sees every record; one alert at the 10th."""

        name = "watch"

        def observe(self, record):
            seen.append(record.sequence)
            if len(seen) == 10:
                return [Action("watch", "alert", None, "tenth record")]
            return []

    def span():     # gateway time from the commit to the last heartbeat logged
        got = records(audit)
        commit = next((r.time_us for r in got if r.control == Control.COMMIT), None)
        return 0 if commit is None else got[-1].time_us - commit

    async def body(daemon):
        # Long enough in gateway time for many heartbeat timeouts.
        await until(lambda: span() > 25 * HEARTBEAT_TIMEOUT_US, "gateway time to pass",
                    timeout=240)

    daemon = asyncio.run(serve(config, port, body, checks=[Watch()]))
    state, counters = asyncio.run(gateway_state(port))

    got = records(audit)
    # Every record the gateway sent is in the log once, in order, from 0, and agreed with.
    assert [r.sequence for r in got] == list(range(len(got)))
    assert counters["dropcopy_records"] == len(got) and counters["dropcopy_overflow"] == 0
    assert daemon.mismatch is None and daemon.shadow.checked == len(got)
    assert seen == list(range(len(got)))
    commits = [r for r in got if r.control == Control.COMMIT]
    assert [r.argument for r in commits] == [1] and state["epoch"] == 1
    # The heartbeats came closer than the timeout all along, in the gateway's own time.
    loaded = commits[0].time_us
    beats = [r.time_us for r in got if r.control == Control.HEARTBEAT and r.time_us > loaded]
    assert beats[-1] - loaded > 25 * HEARTBEAT_TIMEOUT_US
    assert max(b - a for a, b in zip([loaded, *beats], beats, strict=False)) \
        < HEARTBEAT_TIMEOUT_US
    names = [a["alert"] for a in alerts(audit)]
    assert "fail_closed_heartbeat_lost" not in names and names.count("check_alert") == 1
    assert verify(audit).entries == len(entries(audit))

    async def lost():      # with the daemon stopped, the watchdog fires: its beats mattered
        for _ in range(200):
            state, _ = await gateway_state(port)
            if state["heartbeat_lost"]:
                return state
            await asyncio.sleep(0.1)
        return state
    assert asyncio.run(lost())["heartbeat_lost"] == 1


def test_a_bad_limit_file_changes_nothing_and_a_good_one_is_pushed(setup):
    config, limits, audit, port = setup

    async def body(daemon):
        limits.write_text(limits_text(max_order_quantity=-5))      # fails the check
        await until(lambda: "limits_rejected" in [a["alert"] for a in alerts(audit)],
                    "the alert")
        await asyncio.sleep(1.0)        # several watch intervals: still nothing pushed
        assert (await daemon.driver.status())["epoch"] == 1
        limits.write_text(limits_text(max_order_quantity=1234))
        await until(lambda: any(r.control == Control.COMMIT and r.argument == 2
                                for r in records(audit)), "the second commit")
        await until(lambda: daemon.shadow.next_sequence == len(records(audit)), "the shadow")

    daemon = asyncio.run(serve(config, port, body))
    rejected = [a for a in alerts(audit) if a["alert"] == "limits_rejected"]
    assert len(rejected) == 1 and "max_order_quantity" in " ".join(rejected[0]["problems"])
    pushes = [e.body for e in entries(audit) if e.kind == "command"
              and e.body["command"] == "push"]
    assert [p["epoch"] for p in pushes] == [1, 2] and "1234" in pushes[1]["text"]
    assert daemon.mismatch is None
    # The model the shadow keeps took the new limit with the commit the gateway made.
    assert daemon.shadow.gate.limits.symbols[0].max_order_quantity == 1234
    state, _ = asyncio.run(gateway_state(port))
    assert state["epoch"] == 2


def test_an_altered_record_trips_the_kill(setup):
    config, _, audit, port = setup

    def change(record):     # the third heartbeat's time goes back before the second's
        if record.control == Control.HEARTBEAT:
            change.beats.append(record)
            if len(change.beats) == 3:
                return Record(**{**vars(record), "time_us": change.beats[1].time_us - 1})
        return None
    change.beats = []
    wrapped = []

    async def body(daemon):
        await until(lambda: daemon.mismatch is not None, "the mismatch")
        await until(lambda: any(r.control == Control.KILL for r in records(audit)),
                    "the kill's record")

    def wrap(transport):
        wrapped.append(Alter(transport, change))
        return wrapped[0]

    daemon = asyncio.run(serve(config, port, body, wrap=wrap))
    bad = wrapped[0].altered[0]
    assert (daemon.mismatch.sequence, daemon.mismatch.field) == (bad.sequence, "time_us")
    got = records(audit)
    kill = next(r for r in got if r.control == Control.KILL)
    assert kill.argument == 0 and kill.sequence > bad.sequence        # scope 0: gateway
    alert = next(a for a in alerts(audit) if a["alert"] == "shadow_mismatch")
    # Both sides: what the record said and what the model expected.
    assert (alert["gateway"], alert["model"]) == (bad.time_us, change.beats[1].time_us)
    assert alert["record"]["sequence"] == bad.sequence and alert["kill"] == "gateway"
    assert alert["kill_seconds"] < load_config(config).kill_within
    state, _ = asyncio.run(gateway_state(port))
    assert state["kill_gateway"] == 1


def scrape(port: int) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode())
            for s in family.samples}


def test_the_daemon_process_restarts_without_losing_a_record(setup):
    config, _, audit, port = setup

    def run_once(seconds: float) -> dict:
        process = subprocess.Popen(
            [sys.executable, "-m", "wiregate.sw.cli", "daemon", "--config", str(config)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = process.stdout.readline()
            match = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
            assert match, (line, process.stderr.read() if process.poll() is not None else "")
            deadline = time.monotonic() + 4 * TIMEOUT
            while True:       # until the status was read once after some heartbeats
                metrics = scrape(int(match[1]))
                ready = metrics.get(("wiregate_heartbeats_total", ()), 0) >= 10 \
                    and metrics.get(("wiregate_epoch", ()), 0) >= 1
                if ready or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(seconds)
            metrics = scrape(int(match[1]))
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=4 * TIMEOUT)
        assert process.returncode == 0, err[-2000:]
        return metrics

    first = run_once(1.0)
    after_first = records(audit)
    second = run_once(1.0)
    got = records(audit)
    assert len(got) > len(after_first) > 0
    assert [r.sequence for r in got] == list(range(len(got)))       # no gap, no repeat
    _, counters = asyncio.run(gateway_state(port))
    assert counters["dropcopy_records"] == len(got)
    pushes = [e for e in entries(audit) if e.kind == "command" and e.body["command"] == "push"]
    assert len(pushes) == 1         # the restart found the same file committed
    assert [a["alert"] for a in alerts(audit)] == []

    # The metrics, as scraped from the first process, against the log at that time.
    assert first[("wiregate_epoch", ())] == 1
    assert first[("wiregate_fail_closed", (("state", "heartbeat_lost"),))] == 0
    assert first[("wiregate_fail_closed", (("state", "limits_not_loaded"),))] == 0
    assert first[("wiregate_shadow_mismatches_total", ())] == 0
    assert first[("wiregate_dropcopy_records_total", ())] <= len(after_first)
    assert first[("wiregate_shadow_checked_total", ())] == \
        first[("wiregate_dropcopy_records_total", ())]
    assert 0 <= first[("wiregate_heartbeat_age_seconds", ())] < 5
    sessions = {dict(labels)["session"] for (name, labels) in first
                if name == "wiregate_session_killed"}
    assert sessions == {"equities-desk-1", "equities-desk-2", "algo-market-making",
                        "retail-flow"}
    assert second[("wiregate_gateway_counter", (("counter", "control_frame_errors"),))] == 0
    assert second[("wiregate_gateway_counter", (("counter", "dropcopy_records"),))] >= \
        len(after_first)


class AfterCommit:
    """A check of the test's own: ``actions`` at the first heartbeat after the commit."""

    name = "after-commit"

    def __init__(self, audit: Path, actions: list[Action]):
        self._audit, self._actions = audit, actions

    def observe(self, record):
        if not self._actions or record.control != Control.HEARTBEAT or not any(
                r.control == Control.COMMIT for r in records(self._audit)):
            return []
        actions, self._actions = self._actions, []
        return actions


def test_actions_of_a_check_are_carried_out_audited_and_counted(setup):
    config, _, audit, port = setup

    act = AfterCommit(audit, [  # every kind of action
        Action("act", "kill_session", "equities-desk-2", "too fast"),
        Action("act", "kill_symbol", "NVDA", "halted"),
        Action("act", "kill_session", "nobody", "no such session"),
        Action("act", "kill_session", "1", "by index, as the richer checks name it"),
        Action("act", "tighten", "AAPL", "max_order_quantity 100"),
        Action("act", "alert", None, "look"),
        Action("act", "kill_gateway", None, "enough")])

    async def body(daemon):
        await until(lambda: sum(r.control == Control.KILL for r in records(audit)) == 4,
                    "four kill records")

    daemon = asyncio.run(serve(config, port, body, checks=[act]))
    kills = [(r.argument, r.session, r.symbol_index) for r in records(audit)
             if r.control == Control.KILL]
    # Scopes by index in the model's SCOPES: gateway 0, session 1, symbol 2.
    assert kills == [(1, 1, 0), (2, 0, 2), (1, 1, 0), (0, 0, 0)]
    assert daemon.mismatch is None      # the model took the kills the gateway made
    sent = [(e.body["scope"], e.body["index"], e.body["by"]) for e in entries(audit)
            if e.kind == "command" and e.body["command"] == "kill"]
    assert sent == [("session", 1, "act"), ("symbol", 2, "act"), ("session", 1, "act"),
                    ("gateway", 0, "act")]
    names = [a["alert"] for a in alerts(audit)]
    assert names.count("action_failed") == 2 and names.count("check_kill_session") == 3
    assert {"check_kill_symbol", "check_tighten", "check_alert",
            "check_kill_gateway"} <= set(names)
    count = daemon.metrics.registry.get_sample_value
    assert count("wiregate_actions_total", {"check": "act", "kind": "kill_session"}) == 3
    assert count("wiregate_kills_total", {"scope": "symbol"}) == 1
    state, _ = asyncio.run(gateway_state(port))
    assert state["kill_gateway"] == 1 and state["kill_sessions"] == 1 << 1


def test_a_record_lost_on_the_way_is_a_mismatch_never_a_silent_gap(setup):
    config, _, audit, port = setup
    config.write_text(config.read_text().replace("kill_scope: gateway", "kill_scope: alert"))

    class Drop(Alter):
        """The socket, with the fourth heartbeat's frame lost."""

        async def receive(self):
            out = b""
            while not out:
                for frame, _ in self._reader.feed(await self._inner.receive()):
                    decoded = decode_frame(frame)
                    if decoded.kind == FrameKind.DROP_COPY:
                        record = Record.decode(decoded.payload)
                        if record.control == Control.HEARTBEAT:
                            self.beats += 1
                            if self.beats == 4:
                                self.altered.append(record)
                                continue
                    out += stuff(frame)
            return out

    lost = []

    def wrap(transport):
        lost.append(Drop(transport, None))
        lost[0].beats = 0
        return lost[0]

    async def body(daemon):
        await until(lambda: daemon.mismatch is not None, "the mismatch")
        await until(lambda: records(audit)[-1].sequence > daemon.mismatch.sequence + 2,
                    "records after it")

    daemon = asyncio.run(serve(config, port, body, wrap=wrap))
    gone = lost[0].altered[0]
    assert (daemon.mismatch.field, daemon.mismatch.gateway, daemon.mismatch.model) == (
        "sequence", gone.sequence + 1, gone.sequence)
    got = records(audit)
    assert gone.sequence not in [r.sequence for r in got]
    alert = next(a for a in alerts(audit) if a["alert"] == "shadow_mismatch")
    assert alert["kill"] is None            # kill_scope: alert
    assert not any(r.control == Control.KILL for r in got)
    # Records after the gap are still logged and counted, not checked.
    assert len(got) > daemon.shadow.checked + 1


def test_a_tighten_recommits_and_a_restart_keeps_it(setup):
    config, _, audit, port = setup

    tighten = AfterCommit(audit, [  # two tightens, a loosen, a detail without FIELD=VALUE
        Action("tighten", "tighten", "AAPL", "max_order_quantity=100 velocity"),
        Action("tighten", "tighten", "3", "credit=1000000"),    # a session by its index
        Action("tighten", "tighten", "AAPL", "max_order_quantity=99999"),
        Action("tighten", "tighten", "AAPL", "halve it")])

    def commits():
        return [r.argument for r in records(audit) if r.control == Control.COMMIT]

    async def body(daemon):
        await until(lambda: commits() == [1, 2, 3], "two more commits")
        await until(lambda: daemon.shadow.next_sequence == len(records(audit)), "the shadow")

    daemon = asyncio.run(serve(config, port, body, checks=[tighten]))
    assert daemon.mismatch is None
    aapl, retail = daemon.shadow.gate.limits.symbols[0], daemon.shadow.gate.limits.sessions[3]
    assert (aapl.max_order_quantity, retail.credit) == (100, 1_000_000)
    assert [a["alert"] for a in alerts(audit)].count("action_failed") == 2
    pushes = [e.body for e in entries(audit) if e.kind == "command"
              and e.body["command"] == "push"]
    assert [p["tighten"] for p in pushes] == [
        [], [["AAPL", "max_order_quantity", 100]],
        [["AAPL", "max_order_quantity", 100], ["retail-flow", "credit", 1_000_000]]]

    async def idle(daemon):
        await asyncio.sleep(1.0)

    again = asyncio.run(serve(config, port, idle))      # resumes from the log
    assert again.mismatch is None and commits() == [1, 2, 3]
    assert again.shadow.gate.limits.symbols[0].max_order_quantity == 100
    assert len([e for e in entries(audit) if e.kind == "command"
                and e.body["command"] == "push"]) == 3


def test_a_line_torn_by_a_crash_is_kept_and_a_broken_log_stops_the_start(setup):
    config, _, audit, port = setup

    async def idle(daemon):
        await asyncio.sleep(1.0)

    asyncio.run(serve(config, port, idle))
    before = records(audit)
    last = sorted(audit.glob("audit-*.jsonl"))[-1]
    with open(last, "a") as file:                   # a crash in the middle of a write
        file.write('{"body":{"accept":0,"argu')
    again = asyncio.run(serve(config, port, idle))
    got = records(audit)
    assert again.mismatch is None and len(got) > len(before)
    assert [r.sequence for r in got] == list(range(len(got)))
    torn = [a for a in alerts(audit) if a["alert"] == "torn_entry"]
    assert len(torn) == 1 and torn[0]["text"] == '{"body":{"accept":0,"argu'

    # An entry altered: the daemon refuses to start, and sends the gateway nothing.
    _, one = asyncio.run(gateway_state(port))
    _, two = asyncio.run(gateway_state(port))      # what the test's own reads cost
    first = sorted(audit.glob("audit-*.jsonl"))[0]
    first.write_text(first.read_text().replace('"epoch":0', '"epoch":7', 1))
    run = subprocess.run(
        [sys.executable, "-m", "wiregate.sw.cli", "daemon", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=4 * TIMEOUT)
    assert run.returncode == 1 and "audit log is not intact" in run.stderr, run.stderr
    _, three = asyncio.run(gateway_state(port))
    assert three["control_commands"] - two["control_commands"] == \
        two["control_commands"] - one["control_commands"]
    assert three["dropcopy_records"] == two["dropcopy_records"] == len(got)


def test_a_gateway_reset_under_the_log_starts_the_model_afresh(setup, tmp_path):
    config, _, audit, port = setup

    async def idle(daemon):
        await asyncio.sleep(0.5)

    asyncio.run(serve(config, port, idle))
    first = records(audit)
    with started_sim(tmp_path / "second-sim-stderr.txt") as fresh:     # epoch 0, sequence 0
        daemon = asyncio.run(serve(config, fresh, idle))
        again = asyncio.run(serve(config, fresh, idle))         # and a restart after it
        state, counters = asyncio.run(gateway_state(fresh))
    got = records(audit)[len(first):]
    # The second gateway's drop copy from 0, whole, after the first's, in one chain.
    assert [r.sequence for r in got] == list(range(len(got)))
    assert counters["dropcopy_records"] == len(got) and state["epoch"] == 1
    assert [r.argument for r in got if r.control == Control.COMMIT] == [1]
    assert daemon.mismatch is None and again.mismatch is None
    assert again.shadow.next_sequence == len(got)
    reset = [a for a in alerts(audit) if a["alert"] == "gateway_reset"]
    assert len(reset) == 1 and (reset[0]["epoch"], reset[0]["log_epoch"]) == (0, 1)
    assert verify(audit).entries == len(entries(audit))


def test_a_stale_reference_feed_alerts_when_the_model_collar_starts_rejecting(setup):
    """References over UDP keep AAPL fresh, then stop: the symbols never fed and then AAPL
    go stale, each raising ``reference_stale`` once, at a gateway time at which the model's
    collar rule rejects its orders; every SET_REFERENCE record, stamps included, agreed with
    the model, which holds the last price written."""
    config, limits, audit, port = setup
    max_age_us = 1_500
    limits.write_text(limits_text(gateway={"reference_max_age": f"{max_age_us}us"}))
    settings = yaml.safe_load(config.read_text())
    settings["references"] = {"source": "udp", "port": 0, "max_rate": 500, "interval": "20ms"}
    config.write_text(yaml.safe_dump(settings))
    loaded = load_limits(limits)
    aapl = loaded.symbols[0]
    fed = aapl.reference_price + 100

    def stale() -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for alert in alerts(audit):
            if alert["alert"] == "reference_stale":
                out.setdefault(alert["symbol"], []).append(alert["now_us"])
        return out

    def written() -> list[Record]:
        return [r for r in records(audit) if r.control == Control.SET_REFERENCE]

    async def body(daemon):
        await until(lambda: daemon.reference_source is not None, "the reference socket")
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            while len(written()) < 3 or "MSFT" not in stale():
                sender.sendto(DATAGRAM.pack(b"AAPL    ", fed, 0), daemon.reference_source.address)
                await asyncio.sleep(0.05)
        finally:
            sender.close()
        await until(lambda: "AAPL" in stale(), "AAPL to go stale", timeout=120)

    daemon = asyncio.run(serve(config, port, body))
    got = records(audit)
    assert daemon.mismatch is None and daemon.shadow.checked == len(got)
    commit = next(r for r in got if r.control == Control.COMMIT).time_us
    writes = written()
    assert all((r.symbol_index, r.price) == (0, fed) for r in writes) and len(writes) >= 3
    assert daemon.shadow.gate.reference(0) == (fed, writes[-1].argument)
    alerted = stale()
    assert set(alerted) == {y.symbol for y in loaded.symbols}
    assert all(len(times) == 1 for times in alerted.values())
    for y in loaded.symbols:
        price, since = (fed, writes[-1].argument) if y.index == 0 else \
            (y.reference_price, commit)
        assert collar_fires(price, price, alerted[y.symbol][0] - since, max_age_us, y.collar)
    # AAPL was fresh while fed: its one alert came after its last write.
    assert alerted["AAPL"][0] > writes[-1].time_us


def test_a_stale_reference_makes_the_collar_reject_orders_end_to_end(wiregate_sim, tmp_path):
    """Orders through ``wiregate sim``'s client side while the daemon feeds references: an
    AAPL order while AAPL is fed is accepted; once MSFT (never fed) has gone stale, an MSFT
    order is rejected with COLLAR, and so is an AAPL order once its feed stopped and it went
    stale. The shadow check agrees on every record (the model decides each verdict), and
    each verdict's COLLAR bit is what :func:`collar_fires` says of the order's price and the
    age of its reference, taken from the drop copy's own SET_REFERENCE and COMMIT records."""
    sim = wiregate_sim("--profile", PROFILE, "--width", WIDTH, "--client-port", 0,
                       "--exchange-port", 0)
    max_age_us = 2_000
    config, limits, audit = daemon_files(tmp_path, sim.port, limits_text(gateway={
        # The clients' traffic slows the simulated gateway: a longer heartbeat timeout
        # than the other tests' keeps HEARTBEAT out of these verdicts.
        "heartbeat_timeout": "5ms", "reference_max_age": f"{max_age_us}us"}))
    settings = yaml.safe_load(config.read_text())
    settings["references"] = {"source": "udp", "port": 0, "max_rate": 500, "interval": "20ms"}
    config.write_text(yaml.safe_dump(settings))
    loaded = load_limits(limits)
    aapl, msft = loaded.symbols[0], loaded.symbols[1]
    fed = aapl.reference_price + 100
    session = 0
    orders = {}         # name -> (symbol limits, price, UserRefNum)

    def stale() -> set[str]:
        return {a["symbol"] for a in alerts(audit) if a["alert"] == "reference_stale"}

    def verdict(ref: int) -> Record | None:
        found = [r for r in records(audit) if r.kind == Kind.VERDICT and r.session == session
                 and r.user_ref_num == ref]
        return found[0] if found else None

    async def body(daemon):
        await until(lambda: daemon.reference_source is not None, "the reference socket")
        links = connections(loaded)
        client, exchange = await connect(sim.sides["client"]), await connect(
            sim.sides["exchange"])
        clients = Clients(client, loaded, links)
        tasks = [asyncio.ensure_future(clients.listen()),
                 asyncio.ensure_future(Exchange(exchange, loaded, links, seed=1).listen())]
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        feeding = True

        async def feed():
            while feeding:
                sender.sendto(DATAGRAM.pack(b"AAPL    ", fed, 0),
                              daemon.reference_source.address)
                await asyncio.sleep(0.05)

        async def order(name: str, symbol, price: int) -> None:
            ref = len(orders) + 1
            orders[name] = (symbol, price, ref)
            clients.send(Planned(0, 0, session, ouch.EnterOrder(
                user_ref_num=ref, side="B", quantity=100, symbol=symbol.symbol, price=price,
                time_in_force="0", display="Y", capacity="A", intermarket_sweep="N",
                cross_type="N", clordid=f"STALE{ref}")), 0)
            await until(lambda: verdict(ref) is not None, f"the verdict on {name}")

        feeder = asyncio.ensure_future(feed())
        try:
            await clients.login(TIMEOUT)
            await until(lambda: any(r.control == Control.SET_REFERENCE
                                    for r in records(audit)), "a reference written")
            await order("AAPL fed", aapl, fed)
            await until(lambda: "MSFT" in stale(), "MSFT to go stale")
            await order("MSFT stale", msft, msft.reference_price)
            feeding = False
            await feeder
            await until(lambda: "AAPL" in stale(), "AAPL to go stale")
            await order("AAPL stale", aapl, fed)
        finally:
            feeding = False
            sender.close()
            for task in (feeder, *tasks):
                task.cancel()
            client.writer.close()
            exchange.writer.close()

    daemon = asyncio.run(serve(config, sim.port, body))
    got = records(audit)
    assert daemon.mismatch is None and daemon.shadow.checked == len(got)
    commit = next(r for r in got if r.control == Control.COMMIT).time_us
    collar_bit = 1 << Reason.COLLAR
    decided = {}
    for name, (symbol, price, ref) in orders.items():
        rec = verdict(ref)
        # The reference in effect: the last SET_REFERENCE of the symbol before the verdict,
        # or the limit file's at the commit.
        writes = [r for r in got if r.control == Control.SET_REFERENCE and
                  r.symbol_index == symbol.index and r.sequence < rec.sequence]
        reference, since = ((writes[-1].price, writes[-1].argument) if writes
                            else (symbol.reference_price, commit))
        fires = collar_fires(price, reference, rec.time_us - since, max_age_us, symbol.collar)
        assert bool(rec.reasons & collar_bit) == fires, name
        decided[name] = (rec.accept, rec.primary if not rec.accept else None)
    assert decided == {"AAPL fed": (1, None), "MSFT stale": (0, Reason.COLLAR),
                       "AAPL stale": (0, Reason.COLLAR)}
