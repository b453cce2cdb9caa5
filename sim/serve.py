"""``wiregate sim``: the gateway's Verilator model as a running process (``docs/sim.md``).

The model is :class:`~wiregate.hw.gateway.Gateway` (the core with the control port on top),
built with the compiled harness (:mod:`wiregate.sim.fast`) into ``build/sim/`` or reused
from there. The process runs it free, a batch of cycles at a time, and between batches moves
bytes between one TCP connection on 127.0.0.1 and the control stream: what the host sends
is fed to ``control_in`` a byte a cycle while the port is ready; what ``control_out`` sends
goes back. Its Ethernet sides take frames from pcap files and write what leaves to pcap
files.

Time is the board's: the model's clock is the width's (125 MHz at W = 1, 156.25 MHz at
W = 8) and the timebase counts microseconds of those cycles. The model is slower than the
board, so the gateway's time runs slower than the host's by the ratio printed (cycles per
second over the clock frequency); a host's intervals (the heartbeat's, the limit file's
``heartbeat_timeout``) are to be read in gateway time.
"""

import selectors
import signal
import socket
import sys
import time

from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter, rdpcap

from wiregate.hw.core import core_holdback
from wiregate.hw.gateway import Gateway
from wiregate.sw.profiles import profile
from wiregate.sw.timebase import CLOCK_HZ

from .fast.bench import SPLIT_VARS
from .fast.build import build_harness
from .fast.model import ALWAYS_READY, Harness

__all__ = ["SimGateway", "run"]

INGRESS = {"client": 0, "exchange": 1}
EGRESS = {"exchange": 0, "client": 1}      # monitors: frames toward each side
CONTROL = 2                                 # monitor: the control stream's bytes
GAP_BYTES = 8 + 12          # preamble and inter-frame gap between two frames on a link
# Batches: while the control stream is busy (bytes from the host not yet taken, or bytes
# sent back in the last batch) a short one, so that a command's answer goes back within
# about a millisecond of the model's time; otherwise about BATCH_SECONDS of host time, ended
# early by the first byte the gateway sends.
BATCH_SECONDS = 0.01
BUSY_BATCH = 512
FIRST_BATCH = 2000


class SimGateway:
    """The gateway model with its ports bound, run in batches.

    Parameters
    ----------
    profile_name : str
        A build profile (:mod:`wiregate.sw.profiles`) built for ``width``.
    width : int
        Bytes per beat.

    Attributes
    ----------
    sim : Harness
    clock_hz : int
    """

    def __init__(self, profile_name: str, width: int):
        chosen = profile(profile_name)
        if width not in chosen.widths:
            raise ValueError(f"profile {profile_name} is built for W = "
                             f"{' or '.join(map(str, chosen.widths))}, not {width}")
        regmap = chosen.regmap(width, core_holdback(width))
        library, ports = build_harness(Gateway(width, regmap), "gateway",
                                       {"width": width, "profile": chosen.name},
                                       split_vars=SPLIT_VARS)
        self.sim = sim = Harness(library, ports, width)
        self.width, self.clock_hz = width, CLOCK_HZ[width]
        for side, k in INGRESS.items():
            sim.ingress(k, f"{side}_rx")
        sim.egress(EGRESS["exchange"], "exchange_tx")
        sim.egress(EGRESS["client"], "client_tx")
        sim.feed("control_in")
        self.connected(False)
        self._free = dict.fromkeys(INGRESS, 0)       # first cycle each link is free

    def connected(self, on: bool) -> None:
        """With no host, ``control_out`` is not ready: responses and records wait in the
        gateway (the drop copy in its queue) instead of being lost."""
        self.sim.egress(CONTROL, "control_out", frames=False, plain=True,
                        ready_threshold=ALWAYS_READY if on else 0)

    def send(self, side: str, frame: bytes, start: int) -> None:
        """Queue ``frame`` toward the gateway on ``side`` from cycle ``start`` at the
        earliest (after the link's previous frame and gap)."""
        start = max(start, self._free[side], self.sim.cycle)
        self.sim.send(INGRESS[side], frame, start)
        self._free[side] = start + -(-(len(frame) + GAP_BYTES) // self.width)

    def cycle_of(self, us: float) -> int:
        return round(us * self.clock_hz / 1e6)


def _read_pcap(path):
    """(seconds from the first frame, frame bytes) of every frame in a pcap file."""
    packets = rdpcap(str(path))
    first = float(packets[0].time) if packets else 0.0
    return [(float(p.time) - first, bytes(p)) for p in packets]


class _PcapOut:
    """Frames leaving one side, stamped with the gateway's time (cycle / clock)."""

    def __init__(self, path, clock_hz):
        self._writer = PcapWriter(str(path), linktype=1, sync=True)
        self._writer.write_header(None)     # a file even if no frame leaves
        self._clock = clock_hz

    def write(self, frames):
        for data, _error, cycle in frames:
            packet = Ether(data)
            packet.time = cycle / self._clock
            self._writer.write(packet)

    def close(self):
        self._writer.close()


class _Host:
    """The one TCP connection on the control stream (a second one is refused while it is
    open: two hosts would interleave their commands' sequence numbers)."""

    def __init__(self, port: int):
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.connection = None

    def poll(self, gateway: SimGateway) -> None:
        """Accept a connection, and feed what the host sent."""
        for key, _ in self.selector.select(timeout=0):
            if key.fileobj is self.listener:
                connection, _ = self.listener.accept()
                if self.connection is not None:
                    connection.close()
                    continue
                connection.setblocking(False)
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.connection = connection
                self.selector.register(connection, selectors.EVENT_READ)
                gateway.connected(True)
                continue
            try:
                data = self.connection.recv(65536)
            except OSError:
                data = b""
            if data:
                gateway.sim.push(data)
            else:
                self.drop(gateway)

    def send(self, data: bytes, gateway: SimGateway) -> None:
        if self.connection is None or not data:
            return
        try:
            self.connection.setblocking(True)
            self.connection.sendall(data)
            self.connection.setblocking(False)
        except OSError:
            self.drop(gateway)

    def drop(self, gateway: SimGateway) -> None:
        self.selector.unregister(self.connection)
        self.connection.close()
        self.connection = None
        gateway.connected(False)

    def close(self):
        if self.connection is not None:
            self.connection.close()
        self.listener.close()


def run(args) -> int:
    """Serve until SIGINT or SIGTERM; print the rate. Returns the exit code.

    ``args``: as :mod:`wiregate.sw.sim_cmd` parses them.
    """
    try:
        gateway = SimGateway(args.profile, args.width)
    except ValueError as error:
        print(f"wiregate sim: {error}", file=sys.stderr)
        return 2
    start = gateway.cycle_of(args.start_us)
    for side in INGRESS:
        path = getattr(args, f"{side}_in")
        if path is not None:
            for t, frame in _read_pcap(path):
                gateway.send(side, frame, start + gateway.cycle_of(t * 1e6))
    outputs = {side: _PcapOut(getattr(args, f"{side}_out"), gateway.clock_hz)
               for side in EGRESS if getattr(args, f"{side}_out") is not None}
    try:
        host = _Host(args.port)
    except OSError as error:
        print(f"wiregate sim: cannot listen on 127.0.0.1:{args.port}: {error.strerror}",
              file=sys.stderr)
        return 2
    stop = []       # a signal ends the loop; the rate is printed and the pcaps closed
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.append(1))
    sim = gateway.sim
    print(f"wiregate sim: listening on 127.0.0.1:{host.port} (profile {args.profile}, "
          f"W = {args.width}, {gateway.clock_hz} Hz)", flush=True)
    began = last_report = time.perf_counter()
    began_cpu = last_cpu = time.process_time()
    reported_cycle, batch, answered, sent = 0, FIRST_BATCH, False, 0
    try:
        while not stop:
            host.poll(gateway)
            if answered or sim.push(b""):       # (push returns the bytes not yet taken)
                sim.run(sim.cycle + BUSY_BATCH)
            else:
                before, start = time.perf_counter(), sim.cycle
                sim.run(start + batch, watch=CONTROL, watch_bytes=sent + 1)
                spent = time.perf_counter() - before
                if sim.cycle - start == batch:      # sized from whole batches only
                    batch = max(BUSY_BATCH, min(1 << 20, int(
                        batch * BATCH_SECONDS / max(spent, 1e-6))))
            data = sim.take(CONTROL)
            sent += len(data)
            answered = bool(data)
            host.send(data, gateway)
            for side, k in EGRESS.items():
                frames = sim.take(k)
                if side in outputs:
                    outputs[side].write(frames)
            now = time.perf_counter()
            if now - last_report >= args.report_s:
                cpu = time.process_time()
                print(_rate_line(sim.cycle - reported_cycle, now - last_report,
                                 cpu - last_cpu, gateway), file=sys.stderr, flush=True)
                last_report, last_cpu, reported_cycle = now, cpu, sim.cycle
    finally:
        host.close()
        for out in outputs.values():
            out.close()
    print(_rate_line(sim.cycle, time.perf_counter() - began, time.process_time() - began_cpu,
                     gateway, total=True), flush=True)
    return 0


def _rate_line(cycles: int, seconds: float, cpu: float, gateway: SimGateway,
               total: bool = False) -> str:
    """The rate in wall-clock time (what a host's intervals see) and in processor time
    (what the model costs, whatever else shares the machine)."""
    rate = cycles / seconds if seconds else 0.0
    what = "ran" if total else "running:"
    return (f"wiregate sim: {what} {cycles} cycles in {seconds:.1f} s: {rate:.0f} cycles/s "
            f"({cycles / cpu if cpu else 0.0:.0f} per processor second); 1 s of host time is "
            f"{rate / gateway.clock_hz * 1e6:.0f} us of gateway time")
