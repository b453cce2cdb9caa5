"""The host's reads of the core through ``wiregate sim``: a verified push and the exposure.

``wiregate sim`` runs as a real process (as in ``test_sim_process.py``) with one session's
traffic in its pcap inputs, starting at a gateway time after the push: a handshake, two Enter
Orders, the exchange's Order Accepted and a partial Order Executed, packed with scapy and
``struct`` from PROTOCOLS.md's layouts. The CLI, as a user runs it, pushes
``limits/default.yaml`` with its read-back verification, then ``limits diff`` finds nothing
to change. Once the execution has reached the gateway (its counter says so), ``wiregate
position`` reads the session's exposure in both symbols and its state: each equals the
reference model's (:class:`~wiregate.sw.model.Gate`, given the same messages) and the
values known by construction; the open order and the kill latches read through the driver.
"""

import asyncio
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from wiregate.hw.core import core_holdback
from wiregate.sw.driver import Driver, SocketTransport
from wiregate.sw.limits import load_limits
from wiregate.sw.model import ClientMessage, Commit, ExchangeMessage, Gate, Heartbeat
from wiregate.sw.profiles import profile
from wiregate.sw.proto import ouch

pytestmark = pytest.mark.verilator

ROOT = Path(__file__).resolve().parent.parent
LIMITS = ROOT / "limits" / "default.yaml"
PROFILE, WIDTH = "colorlight-5a75b", 1
START_US = 20_000       # the orders' gateway time: after the push, at any load seen so far
TIMEOUT = 30.0
AAPL, MSFT = 2_285_000, 4_153_000       # inside the file's collars (reference prices)


CLIENT = ("02:00:00:00:01:01", "10.1.0.1", 40001)     # session 0 of limits/default.yaml
EXCHANGE = ("02:00:00:00:00:fe", "10.2.0.1", 15000)


def enter(ref, quantity, symbol, price, side=b"B"):
    """An OUCH 5.0 Enter Order (47 bytes)."""
    return struct.pack(">cIcI8sQccccc14sH", b"O", ref, side, quantity, symbol.ljust(8),
                       price, b"0", b"Y", b"A", b"N", b"N", f"C{ref}".encode().ljust(14), 0)


def accepted(ref, quantity, symbol, price):
    """An OUCH 5.0 Order Accepted (64 bytes) of a buy order, live."""
    return struct.pack(">cQIcI8sQccQcccc14sH", b"A", 1, ref, b"B", quantity, symbol.ljust(8),
                       price, b"0", b"Y", 77 + ref, b"A", b"N", b"N", b"L",
                       f"C{ref}".encode().ljust(14), 0)


def executed(ref, quantity, price, match):
    """An OUCH 5.0 Order Executed (36 bytes), packed from PROTOCOLS.md's layout."""
    return struct.pack(">cQIIQcQH", b"E", 2, ref, quantity, price, b"A", match, 0)


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wiregate.sw.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def traffic(tmp_path):
    """Session 0's two pcaps (a TCP handshake, then each message in its own segment, 10 us
    apart) and the messages in their order: (``c`` client or ``e`` exchange, bytes)."""
    messages = [("c", enter(1, 100, b"AAPL", AAPL)), ("c", enter(2, 30, b"MSFT", MSFT, b"S")),
                ("e", accepted(1, 100, b"AAPL", AAPL)), ("e", executed(1, 40, AAPL, 900))]
    seq = {"c": 1_000, "e": 5_000_000}
    packets = {"c": [], "e": []}
    segments = [("c", "S", b""), ("e", "SA", b""), ("c", "A", b""),
                *((side, "PA", struct.pack(">H", 1 + len(body))
                   + (b"U" if side == "c" else b"S") + body) for side, body in messages)]
    for k, (side, flags, payload) in enumerate(segments):
        (src, dst), other = ((CLIENT, EXCHANGE), "e") if side == "c" else ((EXCHANGE, CLIENT),
                                                                          "c")
        packet = (Ether(src=src[0], dst=dst[0]) / IP(src=src[1], dst=dst[1])
                  / TCP(sport=src[2], dport=dst[2], seq=seq[side], ack=seq[other],
                        flags=flags) / Raw(payload))
        packet.time = 1.0 + k * 1e-5
        packets[side].append(packet)
        seq[side] += len(payload) + ("S" in flags)
    # Both files start at --start-us: the exchange's first frame (SYN-ACK) keeps its place
    # behind the client's SYN by taking the SYN's time.
    packets["e"][0].time = packets["c"][0].time
    paths = {"client": tmp_path / "client.pcap", "exchange": tmp_path / "exchange.pcap"}
    wrpcap(str(paths["client"]), packets["c"])
    wrpcap(str(paths["exchange"]), packets["e"])
    return paths, messages


def expected_state(messages):
    chosen = profile(PROFILE)
    gate = Gate(chosen.n_sessions, chosen.n_symbols, chosen.n_orders, chosen.n_executions)
    gate.apply(Commit(0, load_limits(LIMITS)))
    gate.apply(Heartbeat(0))
    for side, body in messages:
        gate.apply(ClientMessage(0, 0, ouch.decode_client(body)) if side == "c"
                   else ExchangeMessage(0, 0, ouch.decode_server(body)))
    return gate


@pytest.fixture
def sim(tmp_path, wiregate_sim):
    paths, messages = traffic(tmp_path)
    running = wiregate_sim("--profile", PROFILE, "--width", WIDTH, "--start-us", START_US,
                           "--client-in", paths["client"], "--exchange-in", paths["exchange"])
    return running.target, running.port, messages


async def read_back(port, limits_index):
    """After the execution has arrived: the open order, the latches, the timebase."""
    chosen = profile(PROFILE)
    regmap = chosen.regmap(WIDTH, core_holdback(WIDTH))
    driver = Driver(await SocketTransport.connect("127.0.0.1", port), regmap, timeout=TIMEOUT,
                    keep_records=False)
    try:
        await driver.identify()
        while (await driver.counters())["frames_exchange_rx"] < 3:     # SYN-ACK, A, E
            await asyncio.sleep(0.5)
        await driver.kill("symbol", limits_index["MSFT"])
        status = await driver.status()
        return {"order1": await driver.order(0, 1), "order2": await driver.order(0, 2),
                "order3": await driver.order(0, 3), "status": status}
    finally:
        await driver.close()


def test_push_verified_then_position(sim):
    target, port, messages = sim
    began = time.monotonic()
    pushed = cli("limits", "push", str(LIMITS), "--target", target, "--json",
                 "--timeout", str(TIMEOUT))
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["epoch"] == 1
    diff = cli("limits", "diff", str(LIMITS), "--target", target, "--json",
               "--timeout", str(TIMEOUT))
    assert (diff.returncode, json.loads(diff.stdout)) == (0, []), diff.stderr

    limits = load_limits(LIMITS)
    index = {s.symbol: s.index for s in limits.symbols}
    status = cli("status", "--target", target, "--json", "--timeout", str(TIMEOUT))
    assert json.loads(status.stdout)["timebase_us"] < START_US, \
        f"the push took past the orders' start ({time.monotonic() - began:.0f} s)"
    state = asyncio.run(read_back(port, index))

    gate = expected_state(messages)
    for symbol, position, buy, sell in (("AAPL", 40, 60, 0), ("MSFT", 0, 0, 30)):
        shown = cli("position", "0", symbol, "--limits", str(LIMITS), "--target", target,
                    "--json", "--timeout", str(TIMEOUT))
        assert shown.returncode == 0, shown.stderr
        got = json.loads(shown.stdout)
        model = gate.exposure(0, index[symbol])
        assert (got["position"], got["working_buy"], got["working_sell"]) == (
            model.position, model.working_buy, model.working_sell) == (position, buy, sell)
        assert got["credit_used"] == gate.sessions[0].credit_used
        assert got["gateway_credit_used"] == gate.gateway_credit_used
        assert got["last_user_ref_num"] == 2
        assert not got["throttled"]
    order = state["order1"]
    assert (order["user_ref_num"], order["quantity"], order["is_buy"],
            order["symbol_index"], order["price"]) == (1, 60, 1, index["AAPL"], AAPL)
    assert state["order2"]["quantity"] == 30 and not state["order2"]["is_buy"]
    assert state["order3"] is None
    assert state["status"]["kill_symbols"] == 1 << index["MSFT"]
