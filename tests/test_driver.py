"""The host driver (sw/driver.py) against the control port in the Amaranth simulator.

The transport under test is the real :class:`SocketTransport` on 127.0.0.1, bridged by a
small asyncio server to the simulated gateway (:class:`ControlGateway`, stepped by
:class:`~wiregate.sim.control_server.SimulatedGateway` while the driver waits). What the
driver reports is checked against the gateway itself: table writes on the register file's
write ports, latches in the Kill block, records against the records fed into the drop copy.
"""

import asyncio
import random

import pytest

from wiregate.sim.control_server import SimulatedGateway
from wiregate.sw.control import Kind, Status, encode_frame, stuff
from wiregate.sw.driver import CommandRefused, Driver, GatewayTimeout, SocketTransport, Transport
from wiregate.sw.dropcopy import Control, Record, SequenceGap
from wiregate.sw.regmap import RegisterMap, RegmapMismatch

PARAMETERS = {"n_sessions": 5, "n_symbols": 40, "symbol_slots": 64, "n_orders": 16,
              "n_pass_rules": 2}


def run(body, records=()):
    """Serve a simulated gateway on 127.0.0.1 and run ``body(driver, gateway)`` against it."""
    regmap = RegisterMap(**PARAMETERS)
    sim = SimulatedGateway(regmap)

    async def main():
        server = await asyncio.start_server(sim.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = await SocketTransport.connect("127.0.0.1", port)
        driver = Driver(transport, timeout=30)
        try:
            await body(driver, sim, transport)
        finally:
            await driver.close()
            server.close()

    asyncio.run(main())


def test_driver_identifies_writes_commits_kills_and_reads():
    rng = random.Random(4)

    async def body(driver, sim, transport):
        regmap = await driver.identify()
        assert regmap.parameters == RegisterMap(**PARAMETERS).parameters
        await driver.write_register("scratch", 0xC0DBC0DB)
        assert await driver.read_register("scratch") == {"value": 0xC0DBC0DB}
        # A table longer than a frame goes in several TABLE_WRITEs, all of it.
        t = regmap.table("symbol_limits")
        entries = [{f.name: rng.getrandbits(f.width) for f in t.fields}
                   for _ in range(t.depth)]
        entries[0]["valid"] = 1
        await driver.write_table("symbol_limits", 0, entries)
        assert sim.table_writes == [("symbol_limits", k, e) for k, e in enumerate(entries)]
        gateway_limits = {"credit": 1, "heartbeat_timeout_us": 1_000_000,
                          "reference_max_age_us": 0}
        await driver.write_table("gateway_limits", 0, [gateway_limits])
        assert await driver.commit() == 1
        assert (await driver.read_register("status"))["limits_loaded"] == 1
        await driver.kill("session", 4)
        assert await driver.read_register("kill_session_set", 0) == {"bits": 1 << 4}
        await driver.release("session", 4)
        assert await driver.read_register("kill_session_set", 0) == {"bits": 0}
        await driver.heartbeat()
        counters = await driver.counters()
        assert counters["control_frame_errors"] == 0
        assert counters["control_command_errors"] == 0
        assert counters["control_commands"] > 10
        with pytest.raises(CommandRefused) as refused:
            await driver.kill("symbol", 40)
        assert refused.value.status is Status.INDEX_RANGE
        await driver.kill("symbol", 39)                       # the sequence still holds
        # The symbol latches read through the register map (the kill block's memory).
        assert (await driver.status())["kill_symbols"] == 1 << 39
        # No engine behind the test gateway: its state reads 0, an empty slot no order.
        assert await driver.exposure(4, 39) == {"position": 0, "working_buy": 0,
                                                "working_sell": 0}
        assert await driver.order(4, 17) is None
        with pytest.raises(ValueError, match="session index 5"):
            await driver.exposure(5, 0)
        # A host that starts against a running gateway learns the sequence from its answer.
        restarted = Driver(transport, regmap)
        await restarted.heartbeat()
        # ... and the first host, now behind, learns it from a refusal and sends again.
        errors = (await restarted.counters())["control_command_errors"]
        await driver.heartbeat()
        assert (await driver.counters())["control_command_errors"] == errors + 1
        with pytest.raises(ValueError, match="outside"):
            await driver.write_table("session", 3, [{}] * 3)
        # The drop copy: every control event, in order, no gap.
        seen = []
        async for record in driver.records():
            seen.append(record.control)
            if len(seen) == 5:
                break
        assert seen == [Control.COMMIT, Control.KILL, Control.RELEASE, Control.HEARTBEAT,
                        Control.KILL]

    run(body)


def test_driver_refuses_a_gateway_of_other_parameters():
    async def body(driver, sim, transport):
        driver.regmap = RegisterMap(**{**PARAMETERS, "n_sessions": 6})
        with pytest.raises(RegmapMismatch, match="param_sessions"):
            await driver.identify()

    run(body)


class Overtaken(Transport):
    """``inner``, on which ``other`` (a driver sharing it) sends a heartbeat before each of
    the first ``times`` sends: each of them goes out with a number the other host took."""

    def __init__(self, inner, other, times):
        self.inner, self.other, self.times = inner, other, times

    async def send(self, data):
        if self.times:
            self.times -= 1
            await self.other.heartbeat()
        await self.inner.send(data)

    async def receive(self):
        return await self.inner.receive()


@pytest.mark.parametrize("times", [12, None])
def test_driver_outlasts_a_host_that_takes_its_numbers_and_gives_up_at_its_timeout(times):
    # A push streams commands while `wiregate heartbeat` runs: the heartbeat's tries lose
    # the race for the number many times in a row, and must still get through.
    async def body(other, sim, transport):
        await other.identify()
        # Without end, the driver gives up at its timeout: long enough that every answer
        # comes inside it on a loaded machine (two CI runs at 0.5 s timed an answer out).
        driver = Driver(Overtaken(transport, other, times or 1 << 30),
                        timeout=30 if times else 5)
        if times is None:
            with pytest.raises(CommandRefused) as refused:
                await driver.heartbeat()
            assert refused.value.status is Status.OUT_OF_SEQUENCE
            return
        errors = (await other.counters())["control_command_errors"]
        await driver.heartbeat()
        # Every try but the last was refused; then the other host's first read, its number
        # taken by that last try, once.
        assert (await other.counters())["control_command_errors"] == errors + times + 1

    run(body)


class Canned(Transport):
    """A gateway that sends ``line`` once, then nothing, and hears nothing."""

    def __init__(self, line=b""):
        self.line = line

    async def send(self, data):
        pass

    async def receive(self):
        if self.line:
            line, self.line = self.line, b""
            return line
        await asyncio.sleep(1)
        return b""


def test_driver_reports_a_silent_gateway():
    async def main():
        driver = Driver(Canned(), timeout=0.05)
        with pytest.raises(GatewayTimeout, match="no answer"):
            await driver.heartbeat()

    asyncio.run(main())


def test_driver_reports_a_drop_copy_gap():
    line = b"".join(stuff(encode_frame(Kind.DROP_COPY, 0, Record(kind=1, sequence=n).encode()))
                    for n in (5, 6, 9))

    async def main():
        driver = Driver(Canned(line))
        got = []
        with pytest.raises(SequenceGap, match="2 records lost"):
            async for record in driver.records():
                got.append(record.sequence)
        assert got == [5, 6]

    asyncio.run(main())
