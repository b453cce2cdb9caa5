"""``wiregate sim`` as a real process, driven by the host driver over its TCP socket.

The process is started as a user would (``python -m wiregate.sw.cli sim``), its port read
from the first line it prints. Over :class:`~wiregate.sw.driver.SocketTransport` the driver
identifies the gateway against the profile's register map, pushes ``limits/default.yaml``
into the shadow bank (every table, entry by entry), commits, kills and releases at two
scopes, sends a heartbeat, has one command refused, and reads the counters. What comes back
is checked against independent expectations: the ID block against the map the host
compiles, the status and epoch registers, the control counters against the test's own
tally, the frame counters and the pcap written toward the clients against the pcap frames
the process was given (frames of no session: the client's dropped, the exchange's passed
on), and every drop-copy record replayed through the model (:class:`~wiregate.sw.model.Gate`
via :class:`~wiregate.sim.replay.Replay`, the same replay the core benches use), from
sequence 0 with no gap. On SIGTERM the process must exit cleanly and report its rate.
"""

import asyncio
import re
import signal
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import rdpcap, wrpcap

from wiregate.hw.core import core_holdback
from wiregate.sim.replay import Replay, commit_image
from wiregate.sim.trading import Sizes
from wiregate.sw.control import Status
from wiregate.sw.driver import CommandRefused, Driver, SocketTransport
from wiregate.sw.limits import load_limits
from wiregate.sw.model import Commit, Heartbeat, Kill, Release, backlog_marks
from wiregate.sw.profiles import profile

pytestmark = pytest.mark.verilator


def _frame(src, dst, sport, dport, payload):
    return (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="PA") / Raw(payload))


# Frames of no configured session, at gateway time 0 and 1 us: the client's are dropped, the
# exchange's pass to the clients unchanged.
CLIENT_FRAMES = [_frame("10.9.0.1", "10.2.0.1", 40001, 15000, b"client %d" % k) for k in (0, 1)]
EXCHANGE_FRAMES = [_frame("10.2.0.1", "10.9.0.1", 15000, 40001, b"exchange")]
for k, packet in enumerate(CLIENT_FRAMES + EXCHANGE_FRAMES):
    packet.time = k * 1e-6

ROOT = Path(__file__).resolve().parent.parent
# The smallest profile of each width, as the core bench's default (sim/core/__init__.py).
BUILDS = [("colorlight-5a75b", 1), ("full", 8)]
RESPONSE_TIMEOUT = 30.0     # a loaded machine runs the model slowly


@pytest.fixture(params=BUILDS, ids=[f"{p}-w{w}" for p, w in BUILDS])
def sim_process(request, tmp_path, wiregate_sim):
    name, width = request.param
    pcaps = {f"{side}_{way}": tmp_path / f"{side}-{way}.pcap"
             for side in ("client", "exchange") for way in ("in", "out")}
    wrpcap(str(pcaps["client_in"]), CLIENT_FRAMES)
    wrpcap(str(pcaps["exchange_in"]), EXCHANGE_FRAMES)
    running = wiregate_sim("--profile", name, "--width", width, "--report-s", 2,
                           *(a for key, path in pcaps.items()
                             for a in (f"--{key.replace('_', '-')}", path)))
    return running.process, running.port, running.log, name, width, pcaps


class Tally(Driver):
    """The driver, counting the commands the gateway answered OK and those it refused."""

    ok = refused = 0

    async def command(self, *args, **kwargs):
        try:
            response = await super().command(*args, **kwargs)
        except CommandRefused:
            self.refused += 1
            raise
        self.ok += 1
        return response


async def drive(port: int, name: str, width: int):
    """The session over the socket; returns the replay, the new epoch and the records."""
    chosen = profile(name)
    regmap = chosen.regmap(width, core_holdback(width))
    high, low = backlog_marks(chosen.dropcopy_depth)
    replay = Replay(Sizes(chosen.n_sessions, chosen.n_symbols, chosen.n_orders,
                          chosen.n_executions, high, low).gate())
    limits = load_limits(ROOT / "limits" / "default.yaml", max_sessions=chosen.n_sessions,
                         max_symbols=chosen.n_symbols)
    driver = Tally(await SocketTransport.connect("127.0.0.1", port), regmap,
                   timeout=RESPONSE_TIMEOUT)
    try:
        assert await driver.identify() is regmap        # raises on any mismatch

        image = commit_image(replay.gate, limits, regmap)
        for table, rows in image.entries.items():
            await driver.write_table(table, 0, rows)
        assert (await driver.read_register("status"))["limits_loaded"] == 0
        replay.control(Commit(0, limits))
        epoch = await driver.commit()
        assert (await driver.read_register("status"))["limits_loaded"] == 1

        session = len(limits.sessions) - 1
        latched = set()
        for event in (Kill(0, "gateway"), Kill(0, "session", session), Heartbeat(0),
                      Release(0, "session", session), Release(0, "gateway")):
            replay.control(event)
            if isinstance(event, Heartbeat):
                await driver.heartbeat()
            elif isinstance(event, Kill):
                await driver.kill(event.scope, event.index)
                latched.add(event.scope)
            else:
                await driver.release(event.scope, event.index)
                latched.discard(event.scope)
            gateway = (await driver.read_register("kill_gateway_set"))["gateway"]
            sessions = (await driver.read_register("kill_session_set", 0))["bits"]
            assert (gateway, sessions) == ("gateway" in latched,
                                           ("session" in latched) << session), event

        with pytest.raises(CommandRefused) as refused:      # a session past the profile's
            await driver.kill("session", chosen.n_sessions)
        assert refused.value.status is Status.INDEX_RANGE

        ok_before = driver.ok
        counters = await driver.counters()
        # Every OK command before SNAPSHOT (which is counted after it has copied).
        assert counters["control_commands"] == ok_before, counters
        assert counters["control_command_errors"] == driver.refused == 1
        assert counters["control_frame_errors"] == 0
        # The pcaps' frames, on no session: the client's dropped, the exchange's passed on.
        assert {k: counters[k] for k in ("frames_client_rx", "dropped_no_session",
                                         "frames_exchange_tx", "frames_exchange_rx",
                                         "frames_client_tx")} == {
            "frames_client_rx": len(CLIENT_FRAMES), "dropped_no_session": len(CLIENT_FRAMES),
            "frames_exchange_tx": 0, "frames_exchange_rx": len(EXCHANGE_FRAMES),
            "frames_client_tx": len(EXCHANGE_FRAMES)}

        records = []

        async def replay_all():
            async for record in driver.records():       # raises SequenceGap at a gap
                records.append(record)
                replay.apply(record)
                if not replay.controls_waiting:
                    return

        await asyncio.wait_for(replay_all(), RESPONSE_TIMEOUT)
        return replay, epoch, records
    finally:
        await driver.close()


def test_sim_process_serves_the_driver(sim_process):
    process, port, log, name, width, pcaps = sim_process
    replay, epoch, records = asyncio.run(drive(port, name, width))
    assert epoch == 1
    assert records[0].sequence == 0
    assert [r.sequence for r in records] == list(range(len(records)))
    assert {k: replay.kinds[k] for k in ("COMMIT", "KILL", "RELEASE", "HEARTBEAT")} == {
        "COMMIT": 1, "KILL": 2, "RELEASE": 2, "HEARTBEAT": 1}
    assert replay.gate.loaded and not replay.gate.kill_gateway

    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, log.read_text()[-2000:]
    rate = re.search(r"ran (\d+) cycles in [\d.]+ s: (\d+) cycles/s", out)
    assert rate and int(rate[1]) > 0 and int(rate[2]) > 0, out
    assert [bytes(p) for p in rdpcap(str(pcaps["client_out"]))] == [
        bytes(p) for p in EXCHANGE_FRAMES]
    assert len(rdpcap(str(pcaps["exchange_out"]))) == 0
