"""The control stream's test gateway (:class:`~wiregate.sim.control_gateway.ControlGateway`)
under the Amaranth simulator, served on a real TCP socket on 127.0.0.1.

:class:`SimulatedGateway` steps the simulation while bytes come in and sends back what the
gateway sends; :func:`serve_in_thread` runs it on its own event loop in a thread, so a host
that runs its own loop (the ``wiregate`` command line, :func:`asyncio.run`) can talk to it.
``python -m wiregate.sim.control_server [--port N] [--profile NAME]`` serves one until
stopped, for trying the ``wiregate`` commands (docs/cli.md) before ``wiregate sim``.

It records every entry the register file writes into a table (``table_writes``), the
gateway's own account of what reached the shadow bank, and feeds the drop copy the records
a bench gives it (``feed_records``) as the engine would.
"""

import argparse
import asyncio
import contextlib
import threading
from collections.abc import Iterator

from amaranth.sim import Simulator

from wiregate.hw.control.dropcopy import record_layout
from wiregate.hw.core import core_holdback
from wiregate.sim.control_gateway import ControlGateway
from wiregate.sw.dropcopy import Record
from wiregate.sw.profiles import PROFILES
from wiregate.sw.regmap import Access, RegisterMap

__all__ = ["CLOCK", "SMALL", "SimulatedGateway", "serve_in_thread"]

CLOCK = 1e-8
# Sizes that hold limits/default.yaml and keep the simulator quick.
SMALL = {"n_sessions": 5, "n_symbols": 40, "symbol_slots": 64, "n_orders": 16,
         "n_pass_rules": 2}


class SimulatedGateway:
    """The gateway under the simulator: bytes in, bytes out, stepped on demand.

    Attributes
    ----------
    gateway : ControlGateway
    table_writes : list[tuple[str, int, dict[str, int]]]
        (table, index, fields) of every entry written, in order.
    cycles : int
        Clock cycles simulated.
    line_bytes : list[int]
        Bytes received from the host and sent to it.
    """

    def __init__(self, regmap: RegisterMap):
        self.gateway = ControlGateway(regmap)
        self.inbound = bytearray()
        self.outbound = bytearray()
        self.table_writes = []
        self.records = []               # (cycles to wait, Record) the bench still has to feed
        self.cycles = 0
        self.line_bytes = [0, 0]
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

        records, layout = self.gateway.records, record_layout(self.gateway.regmap)

        async def feed_records(ctx):
            while True:
                if not self.records:
                    await ctx.tick()
                    continue
                pause, record = self.records.pop(0)
                if pause:
                    await ctx.tick().repeat(pause)
                ctx.set(records.valid, 1)
                ctx.set(records.payload, layout.const(_fields(record, layout)))
                while not (await ctx.tick().sample(records.ready))[-1]:
                    pass
                ctx.set(records.valid, 0)

        self.sim = Simulator(self.gateway)
        self.sim.add_clock(CLOCK)
        for bench in (feed, collect, feed_records):
            self.sim.add_testbench(bench, background=True)

    def feed_records(self, records: list[Record], pause: int = 0) -> None:
        """Have the bench hand ``records`` to the drop copy, ``pause`` cycles before each."""
        self.records += [(pause, r) for r in records]

    def step(self, cycles: int = 400) -> bytes:
        """Run ``cycles`` clock cycles; return what the gateway sent meanwhile."""
        self.cycles += cycles
        self.sim.run_until(self.cycles * CLOCK)
        data, self.outbound = bytes(self.outbound), bytearray()
        return data

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Bridge one TCP connection to the simulated gateway."""
        while not reader.at_eof():
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(reader.read(4096), 0.001)
                self.inbound += data
                self.line_bytes[0] += len(data)
            data = self.step()
            if data:
                self.line_bytes[1] += len(data)
                writer.write(data)
                await writer.drain()
        writer.close()


def _fields(record: Record, layout) -> dict[str, int]:
    """A record's fields as the core hands them over (the queue numbers it)."""
    return {name: int.from_bytes(record.symbol) if name == "symbol" else int(getattr(record, name))
            for name, _ in layout}


@contextlib.contextmanager
def serve_in_thread(regmap: RegisterMap) -> Iterator[tuple[int, SimulatedGateway]]:
    """Serve a fresh simulated gateway on 127.0.0.1 from a thread; yield (port, gateway)."""
    gateway = SimulatedGateway(regmap)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box = {}

    async def start():
        box["server"] = await asyncio.start_server(gateway.serve, "127.0.0.1", 0)
        started.set()

    def run():
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait()
    async def stop():
        box["server"].close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        yield box["server"].sockets[0].getsockname()[1], gateway
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve the control stream's test gateway (Amaranth simulator) on "
                    "127.0.0.1 until stopped.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free)")
    parser.add_argument("--profile", choices=list(PROFILES),
                        help="a build profile's sizes at W = 1 (default: small sizes that "
                             "hold limits/default.yaml)")
    args = parser.parse_args(argv)
    regmap = PROFILES[args.profile].regmap(1, core_holdback(1)) if args.profile \
        else RegisterMap(**SMALL)
    gateway = SimulatedGateway(regmap)

    async def serve():
        server = await asyncio.start_server(gateway.serve, "127.0.0.1", args.port)
        print(f"control stream's test gateway on sim://127.0.0.1:"
              f"{server.sockets[0].getsockname()[1]} (Ctrl-C stops it)", flush=True)
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
