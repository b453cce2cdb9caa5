"""Time a full limit push of each build profile over the socket to the test gateway.

``python -m wiregate.sim.push_timing [--profile NAME]``: for each profile, a limit file that
fills every session and symbol, compiled for the profile's register map (W = 1), pushed by
:meth:`~wiregate.sw.driver.Driver.push` to the control stream's test gateway
(:mod:`wiregate.sim.control_server`) on 127.0.0.1. It prints, per step (load into the
shadow bank, read-back, commit, load of the new shadow bank), the bytes each way, the
gateway's clock cycles, the wall time (the Amaranth simulator's speed, not a gateway's), and
the time those bytes take on a 3 Mbaud 8N1 UART (10 bits a byte, the two directions one after
the other: the host keeps one command outstanding).
"""

import argparse
import asyncio
import time

from wiregate.hw.core import core_holdback
from wiregate.sim.control_server import serve_in_thread
from wiregate.sw.driver import Driver, SocketTransport
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=list(PROFILES), action="append",
                        help="only these profiles (default: every one)")
    args = parser.parse_args(argv)
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
