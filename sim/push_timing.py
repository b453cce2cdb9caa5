"""Time a full limit push of each build profile over the socket to the test gateway.

``python -m wiregate.sim.push_timing [--profile NAME]``: for each profile, a limit file that
fills every session and symbol, compiled for the profile's register map (W = 1), pushed by
:meth:`~wiregate.sw.driver.Driver.push` to the control stream's test gateway
(:mod:`wiregate.sim.control_server`) on 127.0.0.1. It prints, per step (load into the
shadow bank, read-back, commit, load of the new shadow bank), the bytes each way, the
gateway's clock cycles, the wall time (the Amaranth simulator's speed, not a gateway's), and
the time those bytes take on a 3 Mbaud 8N1 UART (10 bits a byte, the two directions one after
the other: the host keeps one command outstanding).

``--sim``: the same full image pushed to ``wiregate sim`` (the gateway's Verilator model, a
process of its own) for each profile and width it is built for: a first push (load,
read-back, commit, mirror load) over the TCP socket, timed in wall seconds, its bytes both
ways and their time at 3 Mbaud; then the model runs idle for ``--idle-s`` seconds and its
rate line (cycles per second, wall clock and processor time) is printed.
"""

import argparse
import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from wiregate.hw.core import core_holdback
from wiregate.sim.control_server import serve_in_thread
from wiregate.sw.driver import Driver, SocketTransport, Transport
from wiregate.sw.limits import parse_limits
from wiregate.sw.profiles import PROFILES
from wiregate.sw.tables import compile_limits

UART_BAUD = 3_000_000
BITS_PER_BYTE = 10


def full_limits(n_sessions: int, n_symbols: int) -> str:
    """A limit file with every session and symbol of a build in use."""
    sessions = "".join(
        f"  - {{name: s{k}, client: 10.1.{k // 250}.{k % 250 + 1}:40001, "
        f"exchange: 10.2.0.1:15000, max_order_quantity: 50_000, max_order_notional: "
        f"2_500_000.00, credit: 25_000_000.00, rate: {{burst: 200, refill: 200us, "
        f"trip_after: 500}}}}\n" for k in range(n_sessions))
    symbols = "".join(f"  - {{symbol: S{k:05d}, reference_price: {100 + k}.25}}\n"
                      for k in range(n_symbols))
    return ("gateway: {credit: 50_000_000.00, heartbeat_timeout: 1s, "
            "reference_max_age: 60s}\n"
            "defaults: {collar: 5%, max_order_quantity: 10_000, max_order_notional: "
            "1_000_000.00, max_long: 100_000, max_short: 50_000}\n"
            f"sessions:\n{sessions}symbols:\n{symbols}")


def measure(name: str) -> list[tuple[str, int, int, int, float]]:
    """(step, bytes to the gateway, bytes back, cycles, seconds) of one full push."""
    regmap = PROFILES[name].regmap(1, core_holdback(1))
    image = compile_limits(parse_limits(full_limits(regmap.n_sessions, regmap.n_symbols),
                                        "full.yaml"), regmap)
    rows = []
    with serve_in_thread(regmap) as (port, sim):
        def mark(step):
            now = (*sim.line_bytes, sim.cycles, time.monotonic())
            rows.append((step, *(b - a for a, b in zip(mark.last, now, strict=True))))
            mark.last = now

        async def main():
            driver = Driver(await SocketTransport.connect("127.0.0.1", port), timeout=600)
            await driver.identify()
            mark.last = (*sim.line_bytes, sim.cycles, time.monotonic())
            await driver.load(image)
            mark("load")
            assert not await driver.differences(image)
            mark("read-back")
            await driver.commit()
            mark("commit")
            await driver.load(image)
            mark("mirror load")
            await driver.close()

        asyncio.run(main())
    return rows


class _Counted(Transport):
    """A transport that counts the bytes each way."""

    def __init__(self, inner: Transport):
        self.inner, self.sent, self.received = inner, 0, 0

    async def send(self, data: bytes) -> None:
        self.sent += len(data)
        await self.inner.send(data)

    async def receive(self) -> bytes:
        data = await self.inner.receive()
        self.received += len(data)
        return data

    async def close(self) -> None:
        await self.inner.close()


def measure_sim(name: str, width: int, idle_s: float) -> tuple[int, list, str]:
    """(entries, [(step, bytes to the gateway, bytes back, wall seconds)], the rate line) of
    a full push to ``wiregate sim`` and an idle run after it."""
    regmap = PROFILES[name].regmap(width, core_holdback(width))
    image = compile_limits(parse_limits(full_limits(regmap.n_sessions, regmap.n_symbols),
                                        "full.yaml"), regmap)
    process = subprocess.Popen(
        [sys.executable, "-m", "wiregate.sw.cli", "sim", "--profile", name, "--width",
         str(width), "--report-s", "3600"], cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)",
                             process.stdout.readline())[1])

        async def push():
            transport = _Counted(await SocketTransport.connect("127.0.0.1", port))
            driver = Driver(transport, regmap, timeout=600, keep_records=False)
            await driver.identify()
            rows, last = [], (transport.sent, transport.received, time.monotonic())
            for step, action in (("load", lambda: driver.load(image)),
                                 ("read-back", lambda: driver.differences(image)),
                                 ("commit", driver.commit),
                                 ("mirror load", lambda: driver.load(image))):
                assert not await action() or step == "commit"
                now = (transport.sent, transport.received, time.monotonic())
                rows.append((step, *(b - a for a, b in zip(last, now, strict=True))))
                last = now
            await driver.close()
            return rows

        rows = asyncio.run(push())
        time.sleep(idle_s)
        process.send_signal(signal.SIGTERM)
        rate = process.communicate(timeout=120)[0].strip().splitlines()[-1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return sum(len(r) for r in image.entries.values()), rows, rate


def main_sim(profiles: list[str], idle_s: float) -> None:
    print(f"{'profile':<18} {'W':>2} {'entries':>7} {'step':<12} {'to gw B':>9} "
          f"{'from gw B':>9} {'wall s':>7} {'3 Mbaud s':>9}")
    rates = []
    for name in profiles:
        for width in PROFILES[name].widths:
            entries, rows, rate = measure_sim(name, width, idle_s)
            total = ("total", *(sum(r[k] for r in rows) for k in range(1, 4)))
            for step, sent, received, seconds in [*rows, total]:
                uart = (sent + received) * BITS_PER_BYTE / UART_BAUD
                print(f"{name:<18} {width:>2} {entries:>7} {step:<12} {sent:>9} "
                      f"{received:>9} {seconds:>7.2f} {uart:>9.3f}", flush=True)
            rates.append(f"{name} W = {width}: {rate}")
    print("\n".join(rates))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=list(PROFILES), action="append",
                        help="only these profiles (default: every one)")
    parser.add_argument("--sim", action="store_true",
                        help="push to wiregate sim (the Verilator model) instead")
    parser.add_argument("--idle-s", type=float, default=20.0,
                        help="with --sim: seconds the model runs idle after the push")
    args = parser.parse_args(argv)
    if args.sim:
        main_sim(args.profile or list(PROFILES), args.idle_s)
        return
    print(f"{'profile':<18} {'step':<12} {'to gw B':>9} {'from gw B':>9} {'cycles':>9} "
          f"{'wall s':>8} {'3 Mbaud s':>9}")
    for name in args.profile or PROFILES:
        rows = measure(name)
        total = ("total", *(sum(r[k] for r in rows) for k in range(1, 5)))
        for step, sent, received, cycles, seconds in [*rows, total]:
            uart = (sent + received) * BITS_PER_BYTE / UART_BAUD
            print(f"{name:<18} {step:<12} {sent:>9} {received:>9} {cycles:>9} "
                  f"{seconds:>8.1f} {uart:>9.3f}", flush=True)


if __name__ == "__main__":
    main()
