"""The host driver (sw/driver.py) against the control port in the Amaranth simulator.

The transport under test is the real :class:`SocketTransport` on 127.0.0.1, bridged by a
small asyncio server to the simulated gateway (:class:`ControlGateway`), which a transport
class here steps forward while the driver waits. What the driver reports is checked against
the gateway itself: table writes on the register file's write ports, latches in the Kill
block, records against the records fed into the drop copy.
"""

import asyncio
import contextlib
import random

import pytest
from amaranth.sim import Simulator

from wiregate.sim.control_gateway import ControlGateway
from wiregate.sw.control import Kind, Status, encode_frame, stuff
from wiregate.sw.driver import CommandRefused, Driver, GatewayTimeout, SocketTransport, Transport
from wiregate.sw.dropcopy import Control, Record, SequenceGap
from wiregate.sw.regmap import Access, RegisterMap, RegmapMismatch

PARAMETERS = {"n_sessions": 5, "n_symbols": 40, "symbol_slots": 64, "n_orders": 16,
              "n_pass_rules": 2}
CLOCK = 1e-8


class SimulatedGateway:
    """The gateway under the simulator: bytes in, bytes out, stepped on demand."""

    def __init__(self, regmap):
        self.gateway = ControlGateway(regmap)
        self.inbound = bytearray()
        self.outbound = bytearray()
        self.table_writes = []
        self.cycles = 0
        port = self.gateway.port
        tables = [t for t in regmap.tables if t.access is Access.RW]

        async def feed(ctx):
            while True:
                if not self.inbound:
                    await ctx.tick()
                    continue
                ctx.set(port.i.valid, 1)
                ctx.set(port.i.payload, self.inbound[0])
                *_, ready = await ctx.tick().sample(port.i.ready)
                ctx.set(port.i.valid, 0)
                if ready:
                    del self.inbound[0]

        async def collect(ctx):
            ctx.set(port.o.ready, 1)
            ports = [getattr(self.gateway.registers, f"write_{t.name}") for t in tables]
            while True:
                _, _, valid, byte, *writes = await ctx.tick().sample(
                    port.o.valid, port.o.payload,
                    *(s for p in ports for s in (p.en, p.index, p.entry)))
                if valid:
                    self.outbound.append(byte)
                for k, t in enumerate(tables):
                    en, index, entry = writes[3 * k:3 * k + 3]
                    if en:
                        self.table_writes.append(
                            (t.name, index, {f.name: entry[f.name] for f in t.fields}))

        self.sim = Simulator(self.gateway)
        self.sim.add_clock(CLOCK)
        self.sim.add_testbench(feed, background=True)
        self.sim.add_testbench(collect, background=True)

    def step(self, cycles=400) -> bytes:
        """Run ``cycles`` clock cycles; return what the gateway sent meanwhile."""
        self.cycles += cycles
        self.sim.run_until(self.cycles * CLOCK)
        data, self.outbound = bytes(self.outbound), bytearray()
        return data

    async def serve(self, reader, writer):
        """Bridge one TCP connection to the simulated gateway."""
        while not reader.at_eof():
            with contextlib.suppress(TimeoutError):
                self.inbound += await asyncio.wait_for(reader.read(4096), 0.001)
            data = self.step()
            if data:
                writer.write(data)
                await writer.drain()
        writer.close()


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
        # A host that starts against a running gateway learns the sequence from its answer.
        restarted = Driver(transport, regmap)
        await restarted.heartbeat()
        # ... and the first host, now behind, learns it from its refusal.
        with pytest.raises(CommandRefused) as stale:
            await driver.heartbeat()
        assert stale.value.status is Status.OUT_OF_SEQUENCE
        await driver.heartbeat()
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
