"""The control plane end to end: ``wiregate sim`` as a real process, the CLI as a user runs it
and the driver over the real socket, while orders flow through its Ethernet sockets.

Each test starts ``wiregate sim`` (colorlight-5a75b, W = 1) with both Ethernet sides on
sockets. A monitor (:class:`~wiregate.sw.driver.Driver`), connected first, reads the whole
drop copy and gives every record to the shadow check (:class:`~wiregate.sw.shadow.ShadowCheck`,
the reference model :mod:`wiregate.sw.model` given the limit files in commit order), so every
record must equal the model's, from sequence 0 with no gap. The limit files are
``limits/default.yaml`` and changes of it, pushed with ``wiregate limits push``. The clients
and the small exchange are the demo's (:mod:`wiregate.sim.demo_trading`): every session logs
in (TCP handshake, SoupBinTCP Login) and the exchange answers what the gateway lets through.

- ``test_push_under_flow_is_atomic``: probe orders flow on one session while a change of
  three tables (a symbol's, a session's, the gateway's) is pushed. The probe is rejected by
  every bank (it changes no state) with a reason word that tells each of the eight
  combinations of old and new tables apart (computed with the model), so each verdict names
  the bank that judged it: every one before the COMMIT record must be the whole old bank's,
  every one after it the whole new bank's, with probes judged during the push (between the
  monitor's heartbeats around it) on both sides of the commit. Then broken pushes (a bad
  value, a truncated file, a re-commit without the references) exit as documented and change
  nothing: the same epoch, ``limits diff`` of the pushed file finds no difference, and the
  probes after them are still the new bank's.
- ``test_kill_release_and_heartbeat``: with ``wiregate heartbeat`` running beside the other
  commands, ``kill --session`` rejects the session's new orders (KILL_SESSION) while its
  cancel passes and other sessions trade; ``release`` without ``--confirm`` refuses with exit
  2 and leaves the latch set; with it, the session trades again. Then the heartbeat stops:
  once the gateway's time is past the timeout, every session's order is rejected with
  HEARTBEAT, and one ``wiregate heartbeat --count 1`` recovers them all.
- ``test_a_fast_side_is_paced``: a peer that sends frames faster than the simulated line
  loses none (each leaves the other side, in order, and the gateway counted each), and one
  whose frames ask for a cycle far ahead is paced by TCP's flow control (its sends block)
  instead of growing the process; each side logs the pauses it counted. A control host
  that sends more than any frame with no END is cut off, with a line in the log.
"""

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from wiregate.hw.core import core_holdback
from wiregate.sim.demo_trading import Clients, Exchange, Planned, connect, connections
from wiregate.sim.serve import FRAME_HEADER
from wiregate.sw.driver import Driver, SocketTransport
from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.limits import load_limits
from wiregate.sw.model import ClientMessage, Commit, Gate, Heartbeat
from wiregate.sw.profiles import profile
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import Reason
from wiregate.sw.shadow import ShadowCheck

pytestmark = pytest.mark.verilator

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "limits" / "default.yaml"
PROFILE, WIDTH = "colorlight-5a75b", 1
TIMEOUT = 60.0          # seconds for any answer or awaited record (a loaded machine is slow)
PROBE_S = 0.005         # host seconds between probe orders
FLOW_S = 0.3            # probes before and after the push

# The change pushed under flow: one edit of limits/default.yaml in each banked table.
EDITS = {
    "symbol_limits": ("  - symbol: AAPL\n    reference_price: 228.50\n    collar: 3%\n",
                      "  - symbol: AAPL\n    reference_price: 228.50\n    collar: 5%\n"
                      "    max_order_quantity: 1_000\n"),
    "session_limits": ("    max_order_notional: 1_000_000.00\n    credit: 10_000_000.00\n",
                       "    max_order_notional: 100_000.00\n    credit: 10_000_000.00\n"),
    "gateway_limits": ("  credit: 50_000_000.00 ", "  credit: 400_000.00 "),
}
# The probe: session algo-market-making (index 2) buys 2,000 AAPL at $237.64, outside the
# old 3 % collar, inside the new 5 %; above the new symbol quantity, session notional and
# gateway credit limits, inside the old ones.
PROBE_SESSION = 2
PROBE = dict(side="B", quantity=2_000, symbol="AAPL", price=2_376_400)
# Gateway time: about 5 s of host time at the model's speed on an idle machine (docs/sim.md).
# Heartbeats (every 0.05 s of host time) cannot get through while a push streams its
# commands; the first commit stamps the host as heard.
HEARTBEAT_EDIT = ("heartbeat_timeout: 1s", "heartbeat_timeout: 10ms")


def edited(*edits) -> str:
    text = DEFAULT.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def enter(session: int, ref: int, side: str, quantity: int, symbol: str, price: int):
    return ouch.EnterOrder(user_ref_num=ref, side=side, quantity=quantity, symbol=symbol,
                           price=price, time_in_force="0", display="Y", capacity="A",
                           intermarket_sweep="N", cross_type="N", clordid=f"E{session}R{ref}")


def probe_word(limits) -> int:
    """The model's reason word for a probe on a fresh gate with ``limits``."""
    chosen = profile(PROFILE)
    gate = Gate(chosen.n_sessions, chosen.n_symbols, chosen.n_orders, chosen.n_executions)
    gate.apply(Commit(0, limits))
    gate.apply(Heartbeat(0))
    verdict = gate.apply(ClientMessage(1, PROBE_SESSION, enter(PROBE_SESSION, 1, **PROBE)))
    return verdict.reasons


def _foreground() -> None:
    """Ctrl-C as a terminal's foreground command has it: a pytest-xdist worker ignores
    SIGINT, and a child inherits that, so the test's Ctrl-C would not reach it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Run:
    """The test's view of one running ``wiregate sim``: the monitor and its shadow check,
    the CLI, and the clients and exchange on the Ethernet sockets."""

    sim: object
    shadow: ShadowCheck
    tmp: Path

    async def start(self) -> None:
        regmap = profile(PROFILE).regmap(WIDTH, core_holdback(WIDTH))
        self.records = []
        self.monitor = Driver(await SocketTransport.connect("127.0.0.1", self.sim.port),
                              regmap, timeout=TIMEOUT)
        await self.monitor.identify()
        self._reading = asyncio.ensure_future(self._read())
        self.refs = Counter()       # the last UserRefNum of each session
        self._tasks = []

    async def _read(self) -> None:
        async for record in self.monitor.records():     # raises SequenceGap at a gap
            self.records.append(record)
            self.shadow.check(record)

    async def trade(self, limits) -> None:
        """Connect both Ethernet sides and log every session of ``limits`` in."""
        links = connections(limits)
        client, exchange = (await connect(self.sim.sides["client"]),
                            await connect(self.sim.sides["exchange"]))
        self.sides = (client, exchange)
        self.clients = Clients(client, limits, links)
        self.exchange = Exchange(exchange, limits, links, seed=1)
        self._tasks += [asyncio.ensure_future(self.clients.listen()),
                        asyncio.ensure_future(self.exchange.listen())]
        await self.clients.login(TIMEOUT)

    def send(self, session: int, message) -> None:
        self.clients.send(Planned(0, 0, session, message), 0)

    def enter(self, session: int, **order) -> int:
        """An Enter Order with the session's next UserRefNum; returns it."""
        self.refs[session] += 1
        self.send(session, enter(session, self.refs[session], **order))
        return self.refs[session]

    async def cli(self, *args: str, target: bool = True):
        """``wiregate ARGS --target … --timeout …``: (exit status, stdout, stderr)."""
        process = await self.spawn(*args, target=target)
        out, err = await process.communicate()
        return process.returncode, out.decode(), err.decode()

    async def spawn(self, *args: str, target: bool = True):
        extra = ("--target", self.sim.target, "--timeout", str(TIMEOUT)) if target else ()
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wiregate.sw.cli", *args, *extra, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=_foreground)

    async def status(self) -> dict:
        code, out, err = await self.cli("status", "--json")
        assert code == 0, err
        return json.loads(out)

    async def until(self, predicate, what: str):
        """Wait (reading records) until ``predicate()`` is true; fail after TIMEOUT."""
        async def wait():
            while not predicate():
                if self._reading.done():
                    self._reading.result()
                await asyncio.sleep(0.01)
        try:
            await asyncio.wait_for(wait(), TIMEOUT)
        except TimeoutError:
            pytest.fail(f"no {what} within {TIMEOUT} s")

    def verdict(self, session: int, ref: int, msg_type: bytes = b"O"):
        found = [r for r in self.records if r.kind == Kind.VERDICT and r.session == session
                 and r.user_ref_num == ref and r.msg_type == msg_type[0]]
        return found[0] if found else None

    async def verdict_of(self, session: int, ref: int, msg_type: bytes = b"O"):
        await self.until(lambda: self.verdict(session, ref, msg_type) is not None,
                         f"verdict on session {session} #{ref}")
        return self.verdict(session, ref, msg_type)

    def controls(self, code: Control) -> list:
        return [r for r in self.records if r.kind == Kind.CONTROL and r.control == code]

    async def close(self) -> None:
        for task in (self._reading, *self._tasks):
            task.cancel()
        for side in getattr(self, "sides", ()):
            side.writer.close()
        await self.monitor.close()

    def check_shadow(self) -> None:
        """(5): every record received equals the model's, from 0 with no gap."""
        assert self.shadow.mismatch is None, str(self.shadow.mismatch)
        assert [r.sequence for r in self.records] == list(range(len(self.records)))
        assert self.shadow.checked == len(self.records) > 0


def _run(wiregate_sim, tmp_path, commits) -> Run:
    sim = wiregate_sim("--profile", PROFILE, "--width", WIDTH, "--client-port", 0,
                       "--exchange-port", 0)
    chosen = profile(PROFILE)
    return Run(sim, ShadowCheck.for_profile(chosen, [
        load_limits(path, max_sessions=chosen.n_sessions, max_symbols=chosen.n_symbols)
        for path in commits]), tmp_path)


# --- (1), (2), (5): a push under flow, broken pushes ---------------------------------------


def test_push_under_flow_is_atomic(wiregate_sim, tmp_path):
    tables = list(EDITS)
    variants = {parts: tmp_path / f"variant-{len(parts)}-{'-'.join(parts)}.yaml"
                for n in range(len(tables) + 1) for parts in combinations(tables, n)}
    for parts, path in variants.items():
        path.write_text(edited(*(EDITS[t] for t in parts)))
    old, new = variants[()], variants[tuple(tables)]
    # The probe's word under each combination of old and new tables: all eight differ, so a
    # verdict of a bank mixing old and new tables would match neither whole bank's.
    words = {parts: probe_word(load_limits(path)) for parts, path in variants.items()}
    assert len(set(words.values())) == len(words), words
    assert all(word != 0 for word in words.values())       # every bank rejects the probe

    run = _run(wiregate_sim, tmp_path, [old, new])
    probes = asyncio.run(_push_under_flow(run, old, new, tmp_path))
    run.check_shadow()

    # Every probe verdict is the whole bank's of its epoch (the COMMIT records before it).
    assert [r.argument for r in run.controls(Control.COMMIT)] == [1, 2]
    epoch, seen, marks = 0, Counter(), []
    for r in run.records:
        if r.kind == Kind.CONTROL and r.control == Control.COMMIT:
            epoch = r.argument
        elif r.kind == Kind.CONTROL and r.control == Control.HEARTBEAT:
            marks.append(epoch)
        elif r.kind == Kind.VERDICT and r.session == PROBE_SESSION and r.msg_type == ord("O"):
            assert (r.accept, r.reasons) == (0, words[() if epoch == 1 else tuple(tables)]), r
            seen[(len(marks), epoch)] += 1
    assert sum(seen.values()) == probes
    # The monitor's heartbeats bracket the push: probes were judged during it, by the old
    # bank while the shadow bank loaded, by the new one after the commit.
    assert marks == [1, 2]
    assert seen[(1, 1)] >= 3 and seen[(1, 2)] >= 3, seen
    # After the broken pushes (the last mark on), still the new bank's verdicts.
    assert seen[(2, 2)] >= 3, seen


async def _push_under_flow(run: Run, old: Path, new: Path, tmp_path: Path) -> int:
    await run.start()
    try:
        code, out, err = await run.cli("limits", "push", str(old), "--json")
        assert code == 0 and json.loads(out)["epoch"] == 1, err
        await run.trade(load_limits(old))
        flowing = asyncio.Event()
        flowing.set()

        async def probes():
            while flowing.is_set():
                run.enter(PROBE_SESSION, **PROBE)
                await asyncio.sleep(PROBE_S)

        sender = asyncio.ensure_future(probes())
        # The re-commit keeps each symbol's reference and stamp: those of the first commit.
        (commit,) = run.controls(Control.COMMIT)
        references = tmp_path / "references.json"
        references.write_text(json.dumps([
            {"index": y.index, "symbol": y.symbol, "price": y.reference_price,
             "stamp_us": commit.time_us} for y in load_limits(old).symbols]))
        await asyncio.sleep(FLOW_S)
        await run.monitor.heartbeat()               # marks the push's start in the drop copy
        code, out, err = await run.cli("limits", "push", str(new), "--references",
                                       str(references), "--json")
        assert code == 0 and json.loads(out)["epoch"] == 2, err
        await run.monitor.heartbeat()               # and its end
        await asyncio.sleep(FLOW_S)

        # (2) Broken pushes: nothing sent, or nothing committed.
        bad_value = tmp_path / "bad-value.yaml"
        bad_value.write_text(new.read_text().replace("collar: 5%", "collar: five percent"))
        truncated = tmp_path / "truncated.yaml"
        text = new.read_text()
        truncated.write_text(text[:text.index("rate: {burst: 200") + 12])    # in a {...}
        for path, expected in ((bad_value, 1), (truncated, 1), (new, 5)):
            code, out, err = await run.cli("limits", "push", str(path))
            assert code == expected, (path, out, err)
            assert ("nothing was sent" if expected == 1 else "--references") in err, err
        status = await run.status()
        assert (status["epoch"], status["limits_loaded"], status["commit_pending"]) == (2, 1, 0)
        code, out, err = await run.cli("limits", "diff", str(new), "--references",
                                       str(references), "--json")
        assert (code, json.loads(out)) == (0, []), err
        code, out, _ = await run.cli("limits", "diff", str(old), "--references",
                                     str(references), "--json")
        assert code == 1 and {d["table"] for d in json.loads(out)} >= set(EDITS)
        await asyncio.sleep(FLOW_S)
        flowing.clear()
        await sender
        sent = run.refs[PROBE_SESSION]
        await run.verdict_of(PROBE_SESSION, sent)
        return sent
    finally:
        await run.close()


# --- (3), (4), (5): kill and release, heartbeat lost and regained ---------------------------


def test_kill_release_and_heartbeat(wiregate_sim, tmp_path):
    limits_file = tmp_path / "heartbeat.yaml"
    limits_file.write_text(edited(HEARTBEAT_EDIT))
    run = _run(wiregate_sim, tmp_path, [limits_file])
    asyncio.run(_kill_release_heartbeat(run, limits_file))
    run.check_shadow()


async def _kill_release_heartbeat(run: Run, limits_file: Path) -> None:
    limits = load_limits(limits_file)
    timeout_us = limits.gateway.heartbeat_timeout_us
    name = {s.index: s.name for s in limits.sessions}
    killed, other = 1, 0
    aapl = next(y for y in limits.symbols if y.symbol == "AAPL")
    # 10 shares 1 % below the reference: inside every limit, and it rests at the exchange.
    resting = dict(side="B", quantity=10, symbol="AAPL",
                   price=aapl.reference_price * 99 // 100 // 100 * 100)
    await run.start()
    heartbeat = await run.spawn("heartbeat", "--interval", "0.05")
    try:
        code, out, err = await run.cli("limits", "push", str(limits_file), "--json")
        assert code == 0 and json.loads(out)["epoch"] == 1, err
        await run.trade(limits)
        first = run.enter(killed, **resting)
        assert (await run.verdict_of(killed, first)).accept

        # (3) Kill the session: its new orders reject, its cancel passes, others trade.
        code, _, err = await run.cli("kill", "--session", name[killed], "--limits",
                                     str(limits_file))
        assert code == 0, err
        await run.until(lambda: run.controls(Control.KILL), "KILL record")
        refused = run.enter(killed, **resting)
        run.send(killed, ouch.CancelOrder(user_ref_num=first, quantity=0))
        elsewhere = run.enter(other, **resting)
        verdict = await run.verdict_of(killed, refused)
        assert not verdict.accept and verdict.primary == Reason.KILL_SESSION
        assert (await run.verdict_of(killed, first, b"X")).accept
        assert (await run.verdict_of(other, elsewhere)).accept

        code, _, err = await run.cli("release", "--session", name[killed], "--limits",
                                     str(limits_file))
        assert code == 2 and "--confirm" in err, err
        assert (await run.status())["kill_sessions"] == 1 << killed
        code, _, err = await run.cli("release", "--session", name[killed], "--limits",
                                     str(limits_file), "--confirm")
        assert code == 0, err
        await run.until(lambda: run.controls(Control.RELEASE), "RELEASE record")
        assert (await run.verdict_of(killed, run.enter(killed, **resting))).accept

        # (4) Stop the heartbeat: once the gateway's time is past the timeout, every order
        # rejects (HEARTBEAT); one heartbeat recovers.
        assert heartbeat.returncode is None, (await heartbeat.communicate())[1]
        heartbeat.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(heartbeat.communicate(), TIMEOUT)
        assert heartbeat.returncode == 0, err
        async def lost():
            while not (status := await run.status())["heartbeat_lost"]:
                await asyncio.sleep(0.2)
            return status

        status = await asyncio.wait_for(lost(), TIMEOUT)
        # ... which the gateway says once its time is past the last heartbeat's timeout.
        assert status["timebase_us"] >= run.controls(Control.HEARTBEAT)[-1].time_us + timeout_us
        for session in name:
            verdict = await run.verdict_of(session, run.enter(session, **resting))
            assert not verdict.accept and verdict.primary == Reason.HEARTBEAT, verdict
        code, _, err = await run.cli("heartbeat", "--count", "1")
        assert code == 0, err
        assert (await run.status())["heartbeat_lost"] == 0
        for session in name:
            assert (await run.verdict_of(session, run.enter(session, **resting))).accept
    finally:
        if heartbeat.returncode is None:
            heartbeat.kill()
            await heartbeat.wait()
        await run.close()


# --- (6): a socket side that sends faster than the line ------------------------------------

FLOOD = 2_000               # frames, far more than the model holds ahead of its time
FAR = 1 << 60               # a cycle the model never reaches
STUCK_S = 5.0               # a send blocked this long: the peer is paced
TRIED_BYTES = 128 << 20     # what the paced peer tries to send
PACED_BYTES = 32 << 20      # at most what it may get into the kernel's buffers and the process


def _rss(pid: int) -> int:
    """Resident bytes of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _receive_frames(connection: socket.socket, n: int, into: list) -> None:
    buffer = b""
    while len(into) < n:
        chunk = connection.recv(1 << 16)
        if not chunk:
            return
        buffer += chunk
        while len(buffer) >= FRAME_HEADER.size:
            length, _, _ = FRAME_HEADER.unpack_from(buffer)
            if len(buffer) < FRAME_HEADER.size + length:
                break
            into.append(buffer[FRAME_HEADER.size:FRAME_HEADER.size + length])
            buffer = buffer[FRAME_HEADER.size + length:]


def test_a_fast_side_is_paced(wiregate_sim):
    sim = wiregate_sim("--profile", PROFILE, "--width", WIDTH, "--client-port", 0,
                       "--exchange-port", 0)
    client = socket.create_connection(("127.0.0.1", sim.sides["client"]), timeout=TIMEOUT)
    exchange = socket.create_connection(("127.0.0.1", sim.sides["exchange"]), timeout=TIMEOUT)
    # Frames of no session from the exchange pass to the clients unchanged (test_sim_sockets).
    frames = [bytes(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
                    / IP(src="10.2.0.1", dst="10.9.0.1") / TCP(sport=15000, dport=40001)
                    / Raw(b"%06d" % k + bytes(140))) for k in range(FLOOD)]
    received: list = []
    reader = threading.Thread(target=_receive_frames, args=(client, FLOOD, received))
    reader.start()
    exchange.sendall(b"".join(FRAME_HEADER.pack(len(f), 0, 0) + f for f in frames))
    reader.join(TIMEOUT * 4)
    assert received == frames, f"{len(received)} of {FLOOD} frames came out"
    counted = subprocess.run(
        [sys.executable, "-m", "wiregate.sw.cli", "counters", "--json", "--target",
         sim.target, "--timeout", str(TIMEOUT)], cwd=ROOT, capture_output=True, text=True)
    counters = json.loads(counted.stdout)
    assert counters["frames_exchange_rx"] == counters["frames_client_tx"] == FLOOD

    # Frames asked for a cycle the model never reaches: it must stop reading, not hold them.
    before = _rss(sim.process.pid)
    frame = frames[0] + bytes(800)
    chunk = b"".join(FRAME_HEADER.pack(len(frame), 0, FAR) + frame for _ in range(64))
    client.settimeout(STUCK_S)
    sent = 0
    try:
        while sent < TRIED_BYTES:
            sent += client.send(chunk)
    except TimeoutError:
        pass
    grown = _rss(sim.process.pid) - before
    assert sent < PACED_BYTES, f"{sent} bytes taken: the side is not paced"
    assert grown < PACED_BYTES, f"the process grew by {grown} bytes"
    # A control host that sends more than any frame with no END is cut off, and the
    # gateway still answers the next host.
    garbage = socket.create_connection(("127.0.0.1", sim.port), timeout=TIMEOUT)
    garbage.sendall(bytes(64 << 10))
    assert garbage.recv(1) == b""
    assert counted.returncode == 0 and subprocess.run(
        [sys.executable, "-m", "wiregate.sw.cli", "status", "--target", sim.target,
         "--timeout", str(TIMEOUT)], cwd=ROOT, capture_output=True).returncode == 0
    client.close()
    exchange.close()
    sim.stop()
    assert sim.process.returncode == 0
    log = sim.log.read_text()
    assert "a control host sent" in log and "with no END" in log, log[-2000:]
    for side in ("client", "exchange"):
        assert f"{side} side: the peer sends faster than the line" in log, log[-2000:]
        assert f"{side} side: reading paused" in log, log[-2000:]
