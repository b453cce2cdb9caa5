"""``wiregate sim``: the gateway's Verilator model as a running process (``docs/sim.md``).

The model is :class:`~wiregate.hw.gateway.Gateway` (the core with the control port on top),
built with the compiled harness (:mod:`wiregate.sim.fast`) into ``build/sim/`` or reused
from there. The process runs it free, a batch of cycles at a time, and between batches moves
bytes between TCP connections on 127.0.0.1 and the control stream: whole command frames from
each host are fed to ``control_in`` a byte a cycle while the port is ready; of what
``control_out`` sends, each response goes to the host whose command it answers and the drop
copy to the host connected longest. Each Ethernet side takes frames from a pcap file or from
a TCP connection (length-prefixed frames, :data:`FRAME_HEADER`), and what leaves toward it
goes to that connection and to a pcap file.

Time is the board's: the model's clock is the width's (125 MHz at W = 1, 156.25 MHz at
W = 8) and the timebase counts microseconds of those cycles. The model is slower than the
board, so the gateway's time runs slower than the host's by the ratio printed (cycles per
second over the clock frequency); a host's intervals (the heartbeat's, the limit file's
``heartbeat_timeout``) are to be read in gateway time.
"""

import selectors
import signal
import socket
import struct
import sys
import time
from collections import deque

from scapy.utils import RawPcapWriter, rdpcap

from wiregate.hw.core import core_holdback
from wiregate.hw.gateway import Gateway
from wiregate.sw.control import BUFFER_BYTES, END, Kind
from wiregate.sw.profiles import profile
from wiregate.sw.timebase import CLOCK_HZ

from .fast.bench import SPLIT_VARS
from .fast.build import build_harness
from .fast.model import ALWAYS_READY, Harness

__all__ = ["FRAME_HEADER", "FRAME_MIN", "SimGateway", "run"]

INGRESS = {"client": 0, "exchange": 1}
EGRESS = {"exchange": 0, "client": 1}      # monitors: frames toward each side
CONTROL = 2                                 # monitor: the control stream's bytes
GAP_BYTES = 8 + 12          # preamble and inter-frame gap between two frames on a link
# An Ethernet side's socket carries each frame (no FCS) after this header, both ways
# (docs/sim.md): the frame's length, flags (BAD_FCS: a frame sent, or left, with a bad FCS)
# and a cycle: toward the gateway the earliest cycle its first byte may enter (0: as soon as
# the link is free), from the gateway the cycle its first byte left.
FRAME_HEADER = struct.Struct("!HBQ")
BAD_FCS = 0x01
FRAME_MIN = 14              # an Ethernet header; a shorter frame is refused
# A socket side's frames queued in the model ahead of its time: when either bound is reached
# the side's socket is not read until the model has taken them all (its buffers start afresh
# only when empty), so a peer that sends faster than the line is paced by TCP's flow
# control (its sends block) instead of growing the process; nothing is dropped.
AHEAD_FRAMES = 256
AHEAD_BYTES = 256 * 1024
# The control stream alike: hosts are not read while this many bytes wait for control_in,
# and a host whose unfinished frame is longer than any frame can be (each byte escaped, in
# the gateway's buffer) is cut off.
CONTROL_AHEAD = 64 * 1024
CONTROL_FRAME_MAX = 2 * BUFFER_BYTES + 2
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

    def send(self, side: str, frame: bytes, start: int, error: bool = False) -> int:
        """Queue ``frame`` toward the gateway on ``side`` from cycle ``start`` at the
        earliest (after the link's previous frame and gap); return the cycle its first byte
        enters."""
        start = max(start, self._free[side], self.sim.cycle)
        self.sim.send(INGRESS[side], frame, start, error)
        self._free[side] = start + -(-(len(frame) + GAP_BYTES) // self.width)
        return start

    def free(self, side: str) -> int:
        """The first cycle ``side``'s link is free after the frames queued on it."""
        return self._free[side]

    def cycle_of(self, us: float) -> int:
        return round(us * self.clock_hz / 1e6)


def _read_pcap(path):
    """(seconds from the first frame, frame bytes) of every frame in a pcap file."""
    packets = rdpcap(str(path))
    first = float(packets[0].time) if packets else 0.0
    return [(float(p.time) - first, bytes(p)) for p in packets]


class _PcapOut:
    """Frames of one side, stamped with the gateway's time of their first byte (cycle /
    clock), in nanoseconds: a cycle is 8 ns at W = 1 and 6.4 ns at W = 8, so the cycle is
    ``round(time * clock)``. Written raw: the model's loop has no time to dissect them."""

    def __init__(self, path, clock_hz):
        self._writer = RawPcapWriter(str(path), linktype=1, sync=True, nano=True)
        self._writer.write_header(None)     # a file even if no frame leaves
        self._clock = clock_hz

    def write(self, frames):
        for data, _error, cycle in frames:
            ns = cycle * 1_000_000_000 // self._clock
            self._writer.write_packet(data, sec=ns // 1_000_000_000, usec=ns % 1_000_000_000)

    def close(self):
        self._writer.close()


class _Control:
    """The control stream's TCP connections.

    Each host's bytes are split into frames at ``END`` and fed whole, so two hosts'
    commands never interleave inside a frame; the gateway answers every frame, in order, so
    each response goes to the host whose frame it answers (:attr:`owners`). Drop-copy frames
    go to the host connected longest, and wait in the gateway while no host is connected.
    Hosts share the gateway's one sequence number: a host that starts learns it from its
    first answer (docs/control.md), and one that was idle while another commanded does again.
    """

    def __init__(self, port: int):
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.hosts: list[socket.socket] = []        # the oldest first: it reads the drop copy
        self._pending: dict[socket.socket, bytes] = {}
        self.owners: deque = deque()                # the host of each frame fed, unanswered
        self._out = b""                             # control_out bytes of an unfinished frame

    def poll(self, gateway: SimGateway) -> None:
        """Accept connections, and feed the whole frames hosts sent (while the feed's
        queue is short)."""
        reading = self.hosts if gateway.sim.push(b"") < CONTROL_AHEAD else []
        for connection in _ready([self.listener, *reading]):
            if connection is self.listener:
                host = _accept(self.listener)
                self.hosts.append(host)
                self._pending[host] = b""
                gateway.connected(True)
                continue
            data = _receive(connection)
            if data is None:
                continue
            if not data:
                self.drop(connection, gateway)
                continue
            *frames, self._pending[connection] = (self._pending[connection] + data).split(
                bytes([END]))
            for body in frames:
                if body:        # two END in a row are no frame
                    gateway.sim.push(bytes([END]) + body + bytes([END]))
                    self.owners.append(connection)
            if len(self._pending[connection]) > CONTROL_FRAME_MAX:
                print(f"wiregate sim: a control host sent {len(self._pending[connection])} "
                      f"bytes with no END, more than any frame ({CONTROL_FRAME_MAX}); "
                      "connection closed", file=sys.stderr, flush=True)
                self.drop(connection, gateway)

    def deliver(self, data: bytes, gateway: SimGateway) -> None:
        """Send what ``control_out`` sent, whole frame by whole frame, to its host."""
        *frames, self._out = (self._out + data).split(bytes([END]))
        for body in frames:
            if not body:
                continue
            if len(body) > 1 and body[1] == Kind.DROP_COPY:
                host = self.hosts[0] if self.hosts else None
            else:
                host = self.owners.popleft() if self.owners else None
            if host in self.hosts and not _send_all(host, bytes([END]) + body + bytes([END])):
                self.drop(host, gateway)

    def drop(self, host: socket.socket, gateway: SimGateway) -> None:
        self.hosts.remove(host)
        del self._pending[host]
        host.close()
        gateway.connected(bool(self.hosts))

    def close(self):
        for host in self.hosts:
            host.close()
        self.listener.close()


class _EthernetSide:
    """One Ethernet side on a TCP socket: one connection at a time (the cable), frames with
    :data:`FRAME_HEADER` both ways. Frames that leave while nothing is connected are lost,
    as on a cable with nothing at its end (the pcap still has them).

    What the peer sends is paced to the model: at most :data:`AHEAD_FRAMES` frames or
    :data:`AHEAD_BYTES` bytes wait in the model for their cycle; past that the socket is
    not read until they have all entered, so the peer's sends block (:attr:`paced` counts
    the pauses, the first is logged, the count is logged at exit).
    """

    def __init__(self, side: str, port: int, received: "_PcapOut | None"):
        self.side = side
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.connection: socket.socket | None = None
        self._pending = b""
        self._received = received
        self._ahead: deque = deque()        # (cycle after its last byte, bytes) of each frame
        self._ahead_bytes = 0
        self._pausing = False
        self.paced = 0

    def _full(self, gateway: SimGateway) -> bool:
        """Whether frames queued in the model hold the socket back (a pause starts at a
        bound and lasts until the model has taken them all)."""
        cycle = gateway.sim.cycle
        while self._ahead and self._ahead[0][0] <= cycle:
            self._ahead_bytes -= self._ahead.popleft()[1]
        if self._pausing and not self._ahead:
            self._pausing = False
        elif not self._pausing and (len(self._ahead) >= AHEAD_FRAMES
                                    or self._ahead_bytes >= AHEAD_BYTES):
            self._pausing = True
            if not self.paced:
                print(f"wiregate sim: {self.side} side: the peer sends faster than the line; "
                      f"reading paused at {len(self._ahead)} frames ({self._ahead_bytes} "
                      "bytes) ahead of the model, until it has taken them (counted at exit)",
                      file=sys.stderr, flush=True)
            self.paced += 1
        return self._pausing

    def poll(self, gateway: SimGateway) -> None:
        """Accept a connection (a second one is refused while one is open), queue the
        frames it sent, as far as the bounds allow."""
        if self._pending:
            self._queue(gateway)        # frames held back by the bounds
        # Not full: every whole frame read is queued, what is left is the start of one.
        reading = self.connection is not None and not self._full(gateway)
        for connection in _ready([self.listener] + ([self.connection] if reading else [])):
            if connection is self.listener:
                peer = _accept(self.listener)
                if self.connection is not None:
                    peer.close()
                else:
                    self.connection, self._pending = peer, b""
                continue
            data = _receive(connection)
            if data is None:
                continue
            if not data:
                self.drop()
                continue
            self._pending += data
            self._queue(gateway)

    def _queue(self, gateway: SimGateway) -> None:
        pending, at = self._pending, 0
        while len(pending) - at >= FRAME_HEADER.size and not self._full(gateway):
            length, flags, cycle = FRAME_HEADER.unpack_from(pending, at)
            if length < FRAME_MIN:
                print(f"wiregate sim: {self.side} side: a frame of {length} bytes (at least "
                      f"{FRAME_MIN}: an Ethernet header); connection closed", file=sys.stderr,
                      flush=True)
                self.drop()
                return
            end = at + FRAME_HEADER.size + length
            if len(pending) < end:
                break
            frame = pending[at + FRAME_HEADER.size:end]
            error = bool(flags & BAD_FCS)
            start = gateway.send(self.side, frame, cycle, error)
            self._ahead.append((gateway.free(self.side), length))
            self._ahead_bytes += length
            if self._received is not None:
                self._received.write([(frame, error, start)])
            at = end
        self._pending = pending[at:]

    def send(self, frames) -> None:
        if self.connection is None or not frames:
            return
        data = b"".join(FRAME_HEADER.pack(len(frame), BAD_FCS if error else 0, cycle) + frame
                        for frame, error, cycle in frames)
        if not _send_all(self.connection, data):
            self.drop()

    def drop(self) -> None:
        self.connection.close()
        self.connection, self._pending = None, b""

    def close(self):
        if self.connection is not None:
            self.connection.close()
        self.listener.close()
        if self.paced:
            print(f"wiregate sim: {self.side} side: reading paused {self.paced} times (the "
                  f"peer sent faster than the line; bounds {AHEAD_FRAMES} frames, "
                  f"{AHEAD_BYTES} bytes)", file=sys.stderr, flush=True)


def _ready(sockets) -> list:
    """The sockets of ``sockets`` with something to read (or a connection to accept)."""
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        return [key.fileobj for key, _ in selector.select(timeout=0)]


def _accept(listener: socket.socket) -> socket.socket:
    connection, _ = listener.accept()
    connection.setblocking(False)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _receive(connection: socket.socket) -> bytes | None:
    """What the peer sent; b"" when it closed (or the connection failed), None when it
    sent nothing after all."""
    try:
        return connection.recv(1 << 20)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _send_all(connection: socket.socket, data: bytes) -> bool:
    """Send ``data`` whole (waiting for the peer to read); False when the connection
    failed."""
    try:
        connection.setblocking(True)
        connection.sendall(data)
        connection.setblocking(False)
    except OSError:
        return False
    return True


def run(args) -> int:
    """Serve until SIGINT or SIGTERM; print the rate. Returns the exit code.

    ``args``: as :mod:`wiregate.sw.sim_cmd` parses them.
    """
    try:
        gateway = SimGateway(args.profile, args.width)
    except ValueError as error:
        print(f"wiregate sim: {error}", file=sys.stderr)
        return 2
    outputs = {side: _PcapOut(getattr(args, f"{side}_out"), gateway.clock_hz)
               for side in EGRESS if getattr(args, f"{side}_out") is not None}
    received = {side: _PcapOut(getattr(args, f"{side}_received"), gateway.clock_hz)
                for side in INGRESS if getattr(args, f"{side}_received") is not None}
    start = gateway.cycle_of(args.start_us)
    for side in INGRESS:
        path = getattr(args, f"{side}_in")
        if path is not None:
            for t, frame in _read_pcap(path):
                cycle = gateway.send(side, frame, start + gateway.cycle_of(t * 1e6))
                if side in received:
                    received[side].write([(frame, False, cycle)])
    sides = {}
    try:
        host = _Control(args.port)
        for side in INGRESS:
            port = getattr(args, f"{side}_port")
            if port is not None:
                sides[side] = _EthernetSide(side, port, received.get(side))
    except OSError as error:
        print(f"wiregate sim: cannot listen on 127.0.0.1: {error.strerror}", file=sys.stderr)
        return 2
    stop = []       # a signal ends the loop; the rate is printed and the pcaps closed
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.append(1))
    sim = gateway.sim
    print(f"wiregate sim: listening on 127.0.0.1:{host.port} (profile {args.profile}, "
          f"W = {args.width}, {gateway.clock_hz} Hz)" + "".join(
              f"; {side} side on 127.0.0.1:{ethernet.port}" for side, ethernet in sides.items()),
          flush=True)
    began = last_report = time.perf_counter()
    began_cpu = last_cpu = time.process_time()
    reported_cycle, batch, answered, sent = 0, FIRST_BATCH, False, 0
    try:
        while not stop:
            host.poll(gateway)
            for ethernet in sides.values():
                ethernet.poll(gateway)
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
            host.deliver(data, gateway)
            for side, k in EGRESS.items():
                frames = sim.take(k)
                if side in outputs:
                    outputs[side].write(frames)
                if side in sides:
                    sides[side].send(frames)
            now = time.perf_counter()
            if now - last_report >= args.report_s:
                cpu = time.process_time()
                print(_rate_line(sim.cycle - reported_cycle, now - last_report,
                                 cpu - last_cpu, gateway), file=sys.stderr, flush=True)
                last_report, last_cpu, reported_cycle = now, cpu, sim.cycle
    finally:
        host.close()
        for closing in (*sides.values(), *outputs.values(), *received.values()):
            closing.close()
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
