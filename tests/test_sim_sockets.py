"""``wiregate sim``'s live sides: the Ethernet sides on TCP sockets, and two control hosts.

The process is started as a user would, with ``--client-port 0 --exchange-port 0`` and the
pcap options. With no limits loaded: a frame of no session from the exchange passes to the
clients unchanged, an ARP request from a client passes to the exchange, a TCP frame of no
session from a client is dropped (scapy builds them all, not the project's frame code). What
leaves each socket must be those frames byte for byte, stamped with a cycle no earlier than
the one each was asked to enter at, and the pcaps (received and sent, nanosecond stamps)
must say the same. Two control hosts at once: the one connected first reads the drop copy
of the kill and release the second one commands; each gets its own answers, and a host
whose sequence number another one used is told the next one, counted, and sends again with it.
"""

import asyncio
import socket
import struct

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import rdpcap

from wiregate.hw.core import core_holdback
from wiregate.sw.driver import Driver, SocketTransport
from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.profiles import profile
from wiregate.sw.timebase import CLOCK_HZ

pytestmark = pytest.mark.verilator

PROFILE, WIDTH = "colorlight-5a75b", 1
HEADER = struct.Struct("!HBQ")      # docs/sim.md: length, flags, cycle
TIMEOUT = 60.0

EXCHANGE_FRAME = bytes(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
                       / IP(src="10.2.0.1", dst="10.9.0.1")
                       / TCP(sport=15000, dport=40001, flags="PA") / Raw(b"exchange"))
ARP_FRAME = bytes(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")
                  / ARP(psrc="10.1.0.1", pdst="10.2.0.1"))
STRAY_FRAME = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                    / IP(src="10.9.0.1", dst="10.2.0.1")
                    / TCP(sport=40001, dport=15000, flags="PA") / Raw(b"no session"))
LATER = 20_000      # cycles ahead of the gateway's time that the second exchange frame asks for


@pytest.fixture
def sim(tmp_path, wiregate_sim):
    pcaps = {f"--{side}-{what}": tmp_path / f"{side}-{what}.pcap"
             for side in ("client", "exchange") for what in ("out", "received")}
    running = wiregate_sim("--profile", PROFILE, "--width", WIDTH, "--client-port", 0,
                           "--exchange-port", 0,
                           *(a for option, path in pcaps.items() for a in (option, path)))
    ports = [running.port, running.sides["client"], running.sides["exchange"]]
    return running.process, ports, pcaps, running.log


def _connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _send(connection, frame: bytes, cycle: int = 0, flags: int = 0) -> None:
    connection.sendall(HEADER.pack(len(frame), flags, cycle) + frame)


def _read_exactly(connection, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = connection.recv(n - len(data))
        assert chunk, "the side's connection closed"
        data += chunk
    return data


def _receive(connection) -> tuple[bytes, int, int]:
    length, flags, cycle = HEADER.unpack(_read_exactly(connection, HEADER.size))
    return _read_exactly(connection, length), flags, cycle


def _cycle(packet) -> int:
    return round(packet.time * CLOCK_HZ[WIDTH])


def test_ethernet_sides_on_sockets(sim):
    process, (_, client_port, exchange_port), pcaps, log = sim
    client, exchange = _connect(client_port), _connect(exchange_port)
    _send(exchange, EXCHANGE_FRAME)
    frame, flags, first = _receive(client)
    assert (frame, flags) == (EXCHANGE_FRAME, 0)
    # A frame asked for a later cycle enters at that cycle and leaves after it.
    _send(exchange, EXCHANGE_FRAME, cycle=first + LATER)
    frame, flags, second = _receive(client)
    assert frame == EXCHANGE_FRAME and second > first + LATER
    _send(client, STRAY_FRAME)          # no session: dropped
    _send(client, ARP_FRAME)            # ARP passes toward the exchange
    frame, flags, arp_out = _receive(exchange)
    assert (frame, flags) == (ARP_FRAME, 0)
    # A second connection to a side is refused while the first is open.
    extra = _connect(exchange_port)
    assert extra.recv(1) == b""
    # A frame shorter than an Ethernet header closes the connection, with a word why.
    _send(client, b"short")
    assert client.recv(1) == b""
    process.terminate()
    process.communicate(timeout=120)
    assert process.returncode == 0
    assert "client side: a frame of 5 bytes" in log.read_text()

    received = {side: rdpcap(str(pcaps[f"--{side}-received"])) for side in ("client",
                                                                          "exchange")}
    sent = {side: rdpcap(str(pcaps[f"--{side}-out"])) for side in ("client", "exchange")}
    assert [bytes(p) for p in received["exchange"]] == [EXCHANGE_FRAME] * 2
    assert _cycle(received["exchange"][1]) == first + LATER
    assert [bytes(p) for p in received["client"]] == [STRAY_FRAME, ARP_FRAME]
    assert [bytes(p) for p in sent["client"]] == [EXCHANGE_FRAME] * 2
    assert [_cycle(p) for p in sent["client"]] == [first, second]
    assert [bytes(p) for p in sent["exchange"]] == [ARP_FRAME]
    assert [_cycle(p) for p in sent["exchange"]] == [arp_out]
    # Forwarded after it entered: the gateway's delay, the same for both exchange frames.
    delays = [_cycle(out) - _cycle(into) for out, into in zip(sent["client"],
                                                                received["exchange"], strict=True)]
    assert delays[0] == delays[1] > 0


async def _two_hosts(port: int):
    regmap = profile(PROFILE).regmap(WIDTH, core_holdback(WIDTH))
    reader = Driver(await SocketTransport.connect("127.0.0.1", port), regmap, timeout=TIMEOUT)
    commander = Driver(await SocketTransport.connect("127.0.0.1", port), regmap,
                       timeout=TIMEOUT)
    try:
        await commander.identify()
        await commander.kill("session", 1)
        await commander.release("session", 1)
        records = []
        async for record in reader.records():
            records.append(record)
            if record.control == Control.RELEASE:
                break
        # The reader's first command: it learns the sequence number the commander left.
        await reader.heartbeat()
        # The commander's next one carries a number the reader has used: refused (counted),
        # and the refusal says which number is next, which the commander sends again with.
        errors = (await reader.counters())["control_command_errors"]
        latch = (await commander.read_register("kill_session_set", 0))["bits"]
        refused = (await commander.counters())["control_command_errors"] - errors
        return records, refused, latch
    finally:
        await reader.close()
        await commander.close()


def test_two_control_hosts(sim):
    _, (control_port, _, _), _, _ = sim
    records, refused, latch = asyncio.run(_two_hosts(control_port))
    # From sequence 0: each session out of sync at reset (no connection yet), then the
    # commander's kill and release.
    n = profile(PROFILE).n_sessions
    assert [(r.sequence, r.kind, r.control, r.session, r.argument) for r in records] == [
        (k, Kind.CONTROL, Control.SESSION_SYNC, k, 0) for k in range(n)] + [
        (n, Kind.CONTROL, Control.KILL, 1, 1), (n + 1, Kind.CONTROL, Control.RELEASE, 1, 1)]
    assert refused == 1
    assert latch == 0
