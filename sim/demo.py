"""``make demo``: the whole gateway with no board (``docs/demo.md``).

``python -m wiregate.sim.demo [--orders N] [--out DIR]``:

1. starts ``wiregate sim`` (the gateway's Verilator model, built into ``build/sim/`` on first
   use) with both Ethernet sides on sockets, and connects a monitor to its control stream
   first, so the monitor reads the whole drop copy from record 0;
2. pushes ``limits/default.yaml`` with ``wiregate limits push`` and sends a heartbeat with
   ``wiregate heartbeat``, the command line a user runs;
3. logs the limit file's sessions in (TCP handshake, SoupBinTCP Login) and plays the
   trading day of :mod:`wiregate.sim.demo_trading` against its small exchange, with a
   session killed (``wiregate kill``) and released (``wiregate release --confirm``) half
   way;
4. checks every drop-copy record against the reference model (:class:`ShadowCheck
   <wiregate.sw.shadow.ShadowCheck>`) as it arrives;
5. stops the gateway, and writes into the output folder both ports' pcaps, the verdict
   log, the first-byte latency (from the pcaps' stamps) and its plot, and the summary it
   prints. Exit status 0 when the shadow check passed, 1 otherwise.
"""

import argparse
import asyncio
import json
import re
import signal
import sys
import time
from collections import Counter, defaultdict, deque
from pathlib import Path

from wiregate.sim.demo_trading import (
    BREACHES,
    KILL_SESSION,
    Clients,
    Exchange,
    connect,
    connections,
    plan,
)
from wiregate.sim.fast.capture import latency_figures
from wiregate.sw.driver import Driver, SocketTransport
from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.limits import load_limits
from wiregate.sw.profiles import profile
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.frames import ip_to_int, parse_frame
from wiregate.sw.proto.pcap import read_pcap
from wiregate.sw.reasons import Reason
from wiregate.sw.shadow import ShadowCheck
from wiregate.sw.timebase import CLOCK_HZ

__all__ = ["Demo", "main"]

ROOT = Path(__file__).resolve().parent.parent
LIMITS = Path("limits", "default.yaml")     # from ROOT, where the command lines run
LOOKAHEAD = 40_000          # cycles: how far ahead of the gateway's time the clients send
STALL_S = 0.3               # no newer stamp for this long: send anyway (the link is idle)
QUIET_S = 2.0               # the day is over when no record came for this long
TIMEOUT = 120.0             # seconds for any one answer (a loaded machine is slow)
LATENCIES = {"first_byte": "first byte in to first byte out",
             "verdict": "first byte in to the verdict's drop-copy record"}


class Demo:
    """One run (see the module docstring).

    Parameters
    ----------
    out : Path
        The folder the results go to (created).
    orders : int
        About how many Enter Orders the clients send.
    seed : int
    profile_name : str
    width : int

    Attributes
    ----------
    records : list of Record
        The whole drop copy, in order.
    shadow : ShadowCheck
    """

    def __init__(self, out: Path, orders: int = 3000, seed: int = 1,
                 profile_name: str = "colorlight-5a75b", width: int = 1):
        self.out, self.orders, self.seed = out, orders, seed
        self.profile_name, self.width = profile_name, width
        chosen = profile(profile_name)
        self.limits = load_limits(ROOT / LIMITS, max_sessions=chosen.n_sessions,
                                  max_symbols=chosen.n_symbols)
        self.shadow = ShadowCheck.for_profile(chosen, [self.limits])
        self.records = []
        self.commands: list[str] = []
        self._control_seen = {code: asyncio.Event() for code in (Control.KILL,
                                                                Control.RELEASE)}
        self._control_cycle = {}
        self._last_record = time.monotonic()
        self._sides = []

    # --- The gateway and the command line ----------------------------------------------------

    async def _start_sim(self):
        self.out.mkdir(parents=True, exist_ok=True)
        pcaps = {"--client-out": "to_client.pcap", "--exchange-out": "to_exchange.pcap",
                 "--client-received": "from_client.pcap",
                 "--exchange-received": "from_exchange.pcap"}
        self.sim_log = open(self.out / "sim.log", "w")     # noqa: SIM115 (closed in run)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wiregate.sw.cli", "sim", "--profile", self.profile_name,
            "--width", str(self.width), "--client-port", "0", "--exchange-port", "0",
            "--report-s", "30",
            *(a for option, name in pcaps.items() for a in (option, str(self.out / name))),
            stdout=asyncio.subprocess.PIPE, stderr=self.sim_log, cwd=ROOT)
        line = (await self.process.stdout.readline()).decode()
        ports = re.search(r"listening on 127\.0\.0\.1:(\d+) .*client side on "
                          r"127\.0\.0\.1:(\d+); exchange side on 127\.0\.0\.1:(\d+)", line)
        if not ports:
            raise RuntimeError(f"wiregate sim did not start: {line!r}; see "
                               f"{self.out / 'sim.log'}")
        self.control_port, self.client_port, self.exchange_port = map(int, ports.groups())
        self.target = f"sim://127.0.0.1:{self.control_port}"

    async def _cli(self, *arguments: str) -> None:
        """Run ``wiregate ARGUMENTS --target …`` as a user would; fail on a non-zero exit."""
        command = ["wiregate", *arguments, "--target", self.target, "--timeout", str(TIMEOUT)]
        self.commands.append(" ".join(command))
        print(f"$ {' '.join(command)}", flush=True)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wiregate.sw.cli", *command[1:], cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        for line in output.decode().splitlines():
            print(f"  {line}", flush=True)
        if process.returncode:
            raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")

    # --- The drop copy -------------------------------------------------------------------------

    async def _monitor(self, driver: Driver) -> None:
        """Every record, checked by the shadow model as it arrives."""
        async for record in driver.records():
            self.records.append(record)
            self._last_record = time.monotonic()
            self.shadow.check(record)
            if record.kind == Kind.CONTROL and record.control in self._control_seen:
                self._control_cycle[record.control] = record.cycle
                self._control_seen[record.control].set()

    def _now(self) -> int:
        """The latest gateway cycle the host has seen (frames' stamps, records' cycles)."""
        return max([side.last_cycle for side in self._sides]
                   + [self.records[-1].cycle if self.records else 0])

    # --- The day ----------------------------------------------------------------------------

    async def _trade(self, clients: Clients) -> None:
        """Send the plan, each message at its cycle, pausing at the kill and the release."""
        items = plan(self.limits, self.orders, self.seed)
        base = self._now() + LOOKAHEAD
        for item in items:
            cycle = base + item.cycle
            await self._wait_for(cycle - (0 if item.barrier else LOOKAHEAD))
            if item.barrier is None:
                clients.send(item, cycle)
                continue
            release = item.barrier == "release"
            name = next(s.name for s in self.limits.sessions if s.index == KILL_SESSION)
            await self._cli(item.barrier, "--session", name, "--limits", str(LIMITS),
                            *(["--confirm"] if release else []))
            code = Control.RELEASE if release else Control.KILL
            await asyncio.wait_for(self._control_seen[code].wait(), TIMEOUT)
            # The plan goes on from the cycle the latch changed (the command took a while).
            base += max(0, self._control_cycle[code] + 1_000 - cycle)
        await clients.side.writer.drain()

    async def _wait_for(self, cycle: int) -> None:
        """Until the gateway's time reaches ``cycle``, or no newer time came for STALL_S."""
        seen, since = self._now(), time.monotonic()
        while self._now() < cycle:
            await asyncio.sleep(0.005)
            if self._now() != seen:
                seen, since = self._now(), time.monotonic()
            elif time.monotonic() - since > STALL_S:
                return

    async def run(self) -> dict:
        began = time.monotonic()
        listeners = []
        await self._start_sim()
        monitor = Driver(await SocketTransport.connect("127.0.0.1", self.control_port),
                         timeout=TIMEOUT)
        watching = asyncio.ensure_future(self._monitor(monitor))
        try:
            await self._cli("limits", "push", str(LIMITS))
            await self._cli("heartbeat", "--count", "1")
            links = connections(self.limits)
            client_side, exchange_side = await connect(self.client_port), \
                await connect(self.exchange_port)
            self._sides = [client_side, exchange_side]
            clients = Clients(client_side, self.limits, links)
            exchange = Exchange(exchange_side, self.limits, links, self.seed)
            listeners += [asyncio.ensure_future(clients.listen()),
                          asyncio.ensure_future(exchange.listen())]
            await clients.login(TIMEOUT)
            print(f"{len(links)} sessions logged in; trading", flush=True)
            traded = time.monotonic()
            await self._trade(clients)
            while time.monotonic() - self._last_record < QUIET_S:
                await asyncio.sleep(0.1)
            if watching.done():
                watching.result()       # raises what stopped the monitor (a gap)
            trading_s = time.monotonic() - traded
        finally:
            watching.cancel()
            for side in self._sides:
                side.writer.close()
            await monitor.close()
            self.process.send_signal(signal.SIGTERM)
            rate = (await self.process.communicate())[0].decode().strip().splitlines()
            self.sim_log.close()
        for listener in listeners:
            listener.cancel()
        summary = self._summary(clients, exchange, rate[-1] if rate else "")
        summary["seconds"] = {"trading": round(trading_s, 1),
                              "total": round(time.monotonic() - began, 1)}
        self._write(summary)
        return summary

    # --- The results ------------------------------------------------------------------------

    def _summary(self, clients: Clients, exchange: Exchange, rate: str) -> dict:
        verdicts = [r for r in self.records if r.kind == Kind.VERDICT]
        reasons = Counter(r.name for v in verdicts for r in Reason if v.reasons >> r & 1)
        primary = Counter(Reason(v.primary).name for v in verdicts if not v.accept)
        mismatch = self.shadow.mismatch
        latency = self._latency()
        return {
            "orders": clients.sent["EnterOrder"],
            "client_messages": dict(clients.sent),
            "verdicts": {"accept": sum(v.accept for v in verdicts),
                         "reject": sum(not v.accept for v in verdicts)},
            "reasons": {r.name: reasons[r.name] for r in Reason if reasons[r.name]},
            "primary": {r.name: primary[r.name] for r in Reason if primary[r.name]},
            "exchange_sent": dict(exchange.sent),
            "exchange_ignored_debug": exchange.debug,
            "clients_received": dict(clients.responses),
            "records": len(self.records),
            "shadow": {"checked": self.shadow.checked,
                       "mismatch": None if mismatch is None else str(mismatch)},
            "latency": latency,
            "breaches": [b.reason for b in BREACHES] + ["DUPLICATE_REF", "RATE",
                                                        "CREDIT_SESSION", "KILL_SESSION"],
            "commands": self.commands,
            "sim": rate,
        }

    def _latency(self) -> dict:
        """From the pcaps' cycle stamps and the drop copy's cycles: first byte in to first
        byte out of every client frame that left toward the exchange (matched by source,
        port and TCP sequence), and first byte in to the verdict's record (matched by
        session, message type and UserRefNum; one message a frame)."""
        clock = CLOCK_HZ[self.width]
        sessions = {(s.client.ip, s.client.port): s.index for s in self.limits.sessions}
        entered, messages = {}, defaultdict(deque)
        for packet in read_pcap(self.out / "from_client.pcap"):
            frame = _frame(packet.data)
            if frame is None:
                continue
            cycle = round(packet.timestamp_ns * clock / 1e9)
            entered.setdefault((frame.ip.src, frame.tcp.src_port, frame.tcp.seq), cycle)
            payload = frame.payload
            if payload[2:3] == b"U":        # one SoupBin Unsequenced Data packet: OUCH
                session = sessions[(ip_to_int(frame.ip.src), frame.tcp.src_port)]
                messages[session, payload[3], payload[4:8]].append(cycle)
        self.latency_cycles = {"first_byte": [], "verdict": []}
        for packet in read_pcap(self.out / "to_exchange.pcap"):
            frame = _frame(packet.data)
            key = None if frame is None else (frame.ip.src, frame.tcp.src_port, frame.tcp.seq)
            if key in entered:
                self.latency_cycles["first_byte"].append(
                    round(packet.timestamp_ns * clock / 1e9) - entered[key])
        for r in self.records:
            waiting = messages.get((r.session, r.msg_type, r.user_ref_num.to_bytes(4, "big")))
            if r.kind == Kind.VERDICT and waiting:
                self.latency_cycles["verdict"].append(r.cycle - waiting.popleft())
        return {name: latency_figures(cycles, clock)
                for name, cycles in self.latency_cycles.items()}

    def _write(self, summary: dict) -> None:
        names = {s.index: s.name for s in self.limits.sessions}
        with open(self.out / "verdicts.jsonl", "w") as log:
            for r in self.records:
                if r.kind != Kind.VERDICT:
                    continue
                log.write(json.dumps({
                    "sequence": r.sequence, "time_us": r.time_us, "cycle": r.cycle,
                    "session": names.get(r.session, r.session),
                    "msg_type": chr(r.msg_type) if r.msg_type else None,
                    "user_ref_num": r.user_ref_num,
                    "verdict": "accept" if r.accept else "reject",
                    "reasons": [x.name for x in Reason if r.reasons >> x & 1]}) + "\n")
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (self.out / "summary.txt").write_text(summary_text(summary, self.out))
        _plot(self.out / "latency.png", self.latency_cycles, CLOCK_HZ[self.width])


def _frame(data: bytes):
    """The parsed frame when it carries TCP payload, else None."""
    try:
        frame = parse_frame(data)
    except ProtocolError:       # ARP, or anything not IPv4/TCP
        return None
    return frame if frame.payload else None


def _plot(path: Path, cycles: dict, clock_hz: int) -> None:
    """Histograms of both delays, in ns."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, panels = pyplot.subplots(1, 2, figsize=(10, 4))
    for axes, (name, what) in zip(panels, LATENCIES.items(), strict=True):
        axes.hist([c * 1e9 / clock_hz for c in cycles[name]], bins=40, color="tab:blue")
        axes.set_xlabel(f"{what} (ns)")
        axes.set_ylabel("client frames")
        axes.set_title(f"{len(cycles[name])} client frames, {clock_hz / 1e6:g} MHz")
    figure.suptitle("wiregate demo")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def summary_text(summary: dict, out: Path) -> str:
    lat = summary["latency"]
    shadow = summary["shadow"]
    lines = [
        f"orders sent: {summary['orders']} Enter Orders; client messages "
        + ", ".join(f"{k} {v}" for k, v in summary["client_messages"].items()),
        f"verdicts: {summary['verdicts']['accept']} accepted, "
        f"{summary['verdicts']['reject']} rejected",
        "rejected, by reason (every reason that fired; primary in brackets):",
        *(f"  {name:<16} {count:>6}  [{summary['primary'].get(name, 0)}]"
          for name, count in summary["reasons"].items()),
        "the exchange answered: " + ", ".join(f"{k} {v}" for k, v in
                                              summary["exchange_sent"].items())
        + f"; it ignored {summary['exchange_ignored_debug']} rejected orders (SoupBin '+')",
        f"shadow check (sw/model.py) of {summary['records']} drop-copy records: "
        + ("PASSED, every record agrees" if shadow["mismatch"] is None and
           shadow["checked"] == summary["records"] else f"FAILED: {shadow['mismatch']}"),
        *(f"latency, {what}, {lat[key]['count']} client frames: " + ", ".join(
            f"{name} {lat[key]['cycles'][name]} cycles ({lat[key]['ns'][name]} ns)"
            for name in lat[key]["cycles"]) for key, what in LATENCIES.items()),
        f"gateway model: {summary['sim']}",
        f"wall time: {summary['seconds']['trading']} s trading, "
        f"{summary['seconds']['total']} s in all",
        f"results in {out}/: to_exchange.pcap, to_client.pcap (what left each port), "
        "from_client.pcap, from_exchange.pcap (what entered), verdicts.jsonl, latency.png, "
        "summary.txt, summary.json, sim.log",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wiregate.sim.demo",
                                     description="The gateway's demo with no board "
                                                 "(docs/demo.md).")
    parser.add_argument("--orders", type=int, default=3000,
                        help="about how many Enter Orders (default 3000)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "demo",
                        help="the results folder (default build/demo)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    summary = asyncio.run(Demo(args.out, args.orders, args.seed).run())
    print(summary_text(summary, args.out), end="")
    return 0 if summary["shadow"]["mismatch"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
