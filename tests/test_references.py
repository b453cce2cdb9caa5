"""Reference prices for the collar (wiregate.sw.daemon.references): the file, UDP and capture
sources, the paced and coalescing feed with its stale alert, and the write through the driver.

Datagrams are sent on a real socket and packed here with ``struct``; the capture is built
with scapy, its ITCH messages byte by byte; the stale alert is held against the model's own
collar rule (``collar_fires``); the write is read back from the simulated gateway and seen
in its drop copy.
"""

import asyncio
import dataclasses
import re
import socket
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from wiregate.sim.control_server import SimulatedGateway
from wiregate.sw.daemon.actions import Action
from wiregate.sw.daemon.references import (
    FileSource,
    PcapSource,
    ReferenceFeed,
    ReferenceUpdate,
    UdpSource,
    read_file,
    read_pcap,
    reference_writes,
    write_reference,
)
from wiregate.sw.driver import Driver, SocketTransport
from wiregate.sw.dropcopy import Control
from wiregate.sw.limits import load_limits
from wiregate.sw.model import collar_fires
from wiregate.sw.regmap import RegisterMap

LIMITS = Path(__file__).parent.parent / "limits" / "default.yaml"   # AAPL is index 0, MSFT 1


def collect(source, n):
    async def main():
        out = []
        async for update in source:
            out.append(update)
            if len(out) == n:
                break
        return out
    return asyncio.run(main())


# --- Files --------------------------------------------------------------------------------

def test_a_csv_file_gives_its_rows_in_price_units(tmp_path):
    path = tmp_path / "refs.csv"
    path.write_text("symbol,price,time_us\nAAPL,228.5,1000\nBRK.B,0.0001,2000\n"
                    "MSFT,415.3099,18446744073709551615\n")
    expected = [ReferenceUpdate("AAPL", 2_285_000, 1000), ReferenceUpdate("BRK.B", 1, 2000),
                ReferenceUpdate("MSFT", 4_153_099, 2**64 - 1)]
    assert list(read_file(path)) == expected
    assert collect(FileSource(path), 3) == expected


def test_a_jsonl_file_takes_prices_as_text_or_numbers(tmp_path):
    path = tmp_path / "refs.jsonl"
    path.write_text('{"symbol": "AAPL", "price": "228.50", "time_us": 5}\n\n'
                    '{"symbol": "NVDA", "price": 135.4, "time_us": 6}\n'
                    '{"symbol": "AMD", "price": 152, "time_us": 7}\n')
    assert list(read_file(path)) == [ReferenceUpdate("AAPL", 2_285_000, 5),
                                     ReferenceUpdate("NVDA", 1_354_000, 6),
                                     ReferenceUpdate("AMD", 1_520_000, 7)]


@pytest.mark.parametrize("name, text, message", [
    ("refs.txt", "", r"refs.txt: reference files are .csv or .jsonl, not '.txt'"),
    ("refs.csv", "symbol,price\nAAPL,1,\n", r"refs.csv:1: the header lacks time_us"),
    ("refs.csv", "symbol,price,time_us\nAAPL,1,1\nAAPL,1.00001,2\n",
     r"refs.csv:3: '1.00001' has 5 decimals"),
    ("refs.csv", "symbol,price,time_us\nAAPL,0,1\n", r"refs.csv:2: AAPL: price 0 outside"),
    ("refs.csv", "symbol,price,time_us\nTOOLONGSYM,1,1\n", r"refs.csv:2: symbol 'TOOLONGSYM'"),
    ("refs.csv", "symbol,price,time_us\nAAPL,1,soon\n", r"refs.csv:2: AAPL: time_us 'soon'"),
    ("refs.jsonl", '{"symbol": "AAPL", "time_us": 1}\n', r"refs.jsonl:1: no price"),
    ("refs.jsonl", '\n[1, 2]\n', r"refs.jsonl:2: a line is one JSON object"),
    ("refs.jsonl", '{"symbol": "AAPL", "price": true, "time_us": 1}\n',
     r"refs.jsonl:1: price True: dollars as text or a number"),
    ("refs.jsonl", '{"symbol": "AAPL", "price": "1", "time_us": -1}\n',
     r"refs.jsonl:1: AAPL: time_us -1 is not"),
])
def test_a_bad_file_names_its_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        list(read_file(path))


# --- UDP ----------------------------------------------------------------------------------

def test_udp_datagrams_on_a_real_socket_and_a_bad_one_skipped():
    async def main():
        source = await UdpSource.open("127.0.0.1", 0)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for data in (struct.pack(">8sQQ", b"AAPL    ", 2_285_000, 1_000_001),
                         b"AAPL 228.50",                                # not a datagram
                         struct.pack(">8sQQ", b"MSFT    ", 0, 7),      # price 0
                         struct.pack(">8sQQ", b"BRK.B   ", 1, 2**64 - 1)):
                sender.sendto(data, source.address)
            got = []
            async for update in source:
                got.append(update)
                if len(got) == 2:
                    break
            return got, source.errors
        finally:
            sender.close()
            source.close()

    got, errors = asyncio.run(asyncio.wait_for(main(), 10))
    assert got == [ReferenceUpdate("AAPL", 2_285_000, 1_000_001),
                   ReferenceUpdate("BRK.B", 1, 2**64 - 1)]
    assert errors == 2


# --- Market-data capture ------------------------------------------------------------------

def itch_trade(stock: bytes, price: int, ns: int, shares=100, match=1) -> bytes:
    """ITCH 5.0 Trade (Non-Cross), field by field as the spec lists them: 44 bytes."""
    return (b"P" + (7).to_bytes(2, "big") + (0).to_bytes(2, "big") + ns.to_bytes(6, "big")
            + (99).to_bytes(8, "big") + b"B" + shares.to_bytes(4, "big")
            + stock.ljust(8) + price.to_bytes(4, "big") + match.to_bytes(8, "big"))


def itch_add(stock: bytes) -> bytes:
    """ITCH 5.0 Add Order (type A, 36 bytes): not a trade, passed over."""
    return (b"A" + bytes(4) + (1).to_bytes(6, "big") + bytes(8) + b"S" + bytes(4)
            + stock.ljust(8) + bytes(4))


def mold(sequence: int, *messages: bytes) -> bytes:
    """A MoldUDP64 packet: session (10), sequence (8), count (2), then length-prefixed
    messages."""
    return (b"SESSION001" + sequence.to_bytes(8, "big") + len(messages).to_bytes(2, "big")
            + b"".join(len(m).to_bytes(2, "big") + m for m in messages))


def capture(path, port=26400):
    base = Ether() / IP(src="10.0.0.1", dst="233.54.12.1")
    wrpcap(str(path), [
        base / UDP(sport=5000, dport=port) / Raw(mold(1, itch_add(b"AAPL"),
                                                      itch_trade(b"AAPL", 2_285_100,
                                                                 34_200_000_001_999))),
        base / UDP(sport=5000, dport=port + 1) / Raw(mold(1, itch_trade(b"AAPL", 1, 5))),
        base / TCP(sport=1, dport=port) / Raw(b"not market data"),
        Ether(),                                                    # a runt: passed over
        Ether() / IP(flags="MF") / UDP(dport=port) / Raw(mold(2, itch_trade(b"IBM", 1, 1))),
        # a fragment: passed over (a MoldUDP64 packet fits one frame)
        Ether() / Dot1Q(vlan=12) / IP() / UDP(dport=port) / Raw(mold(
            3, itch_trade(b"MSFT", 4_153_000, 34_200_000_500_000),
            itch_trade(b"BRK.B", 1, 34_200_001_000_000))),
    ])


def test_a_capture_replays_its_itch_trades_at_their_timestamps(tmp_path):
    path = tmp_path / "md.pcap"
    capture(path)
    # ITCH timestamps are nanoseconds since midnight: 9:30:00.000001999 is 34,200,000,001 us.
    expected = [ReferenceUpdate("AAPL", 2_285_100, 34_200_000_001),
                ReferenceUpdate("MSFT", 4_153_000, 34_200_000_500),     # 802.1Q tagged
                ReferenceUpdate("BRK.B", 1, 34_200_001_000)]
    assert list(read_pcap(path, port=26400)) == expected
    assert collect(PcapSource(path, port=26400), 3) == expected
    assert collect(PcapSource(path, port=26400, speed=1e9), 3) == expected     # paced
    # Without a port filter the other feed's trade (AAPL at $0.0001, at 5 ns) comes too.
    assert [u.time_us for u in read_pcap(path)] == [34_200_000_001, 0, 34_200_000_500,
                                                   34_200_001_000]


@pytest.mark.parametrize("packet, message", [
    (mold(1, itch_trade(b"AAPL", 1, 1)[:40]), r"frame 2: an ITCH Trade of 40 bytes, not 44"),
    (mold(1, itch_trade(b"AAPL", 1, 1))[:-4], r"frame 2: a MoldUDP64 message runs past"),
    (mold(1, itch_trade(b"AAPL", 1, 1))[:21], r"frame 2: a MoldUDP64 message runs past"),
    (mold(1)[:12], r"frame 2: a MoldUDP64 packet of 12 bytes"),
    (mold(1, itch_trade(b"AAPL", 0, 1)), r"frame 2: AAPL: price 0 outside"),
])
def test_a_capture_that_does_not_parse_is_refused_naming_the_frame(tmp_path, packet, message):
    path = tmp_path / "bad.pcap"
    good = Ether() / IP() / UDP(dport=1) / Raw(mold(1, itch_trade(b"AAPL", 1, 1)))
    wrpcap(str(path), [good, Ether() / IP() / UDP(dport=1) / Raw(packet)])
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + message):
        list(read_pcap(path))


# --- The feed -----------------------------------------------------------------------------

def limits(max_age_us=1_000_000):
    base = load_limits(LIMITS)
    return dataclasses.replace(base, gateway=dataclasses.replace(
        base.gateway, reference_max_age_us=max_age_us))


def test_the_feed_coalesces_per_symbol_and_paces_to_the_rate():
    feed = ReferenceFeed(limits(), max_rate=1000, start_us=0)     # one write per 1,000 us
    feed.offer(ReferenceUpdate("AAPL", 1, 0))
    feed.offer(ReferenceUpdate("MSFT", 2, 0))
    feed.offer(ReferenceUpdate("AAPL", 3, 1))       # replaces AAPL's, keeps its place
    feed.offer(ReferenceUpdate("ZZZZ", 4, 1))       # not in the limits
    assert (feed.coalesced, feed.unknown, feed.pending()) == (1, 1, 2)
    assert feed.take(0) == [(0, ReferenceUpdate("AAPL", 3, 1))]
    assert feed.take(999) == []                     # the next is due at 1,000
    feed.offer(ReferenceUpdate("AAPL", 5, 2))       # behind MSFT, queued first
    assert feed.take(1000) == [(1, ReferenceUpdate("MSFT", 2, 0))]
    assert feed.take(1500) == []
    assert feed.take(2000) == [(0, ReferenceUpdate("AAPL", 5, 2))]
    assert feed.take(10_000) == []


def test_a_burst_lets_a_quiet_feed_catch_up_then_holds_the_rate():
    feed = ReferenceFeed(limits(), max_rate=100, burst=3)      # one per 10,000 us
    for k, symbol in enumerate(("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL")):
        feed.offer(ReferenceUpdate(symbol, 10 + k, 0))
    # At 1 s, long quiet: three go at once; then one each 10 ms after 1 s.
    assert [i for i, _ in feed.take(1_000_000)] == [0, 1, 2]
    assert feed.take(1_009_999) == []
    assert [i for i, _ in feed.take(1_010_000)] == [3]
    assert [i for i, _ in feed.take(1_020_000)] == [4]


def test_the_stale_alert_comes_exactly_when_the_model_collar_starts_rejecting():
    max_age = 1_000_000
    feed = ReferenceFeed(limits(max_age), max_rate=1e6, start_us=0)
    aapl = limits().symbols[0]
    feed.offer(ReferenceUpdate("AAPL", aapl.reference_price, 0))
    assert feed.take(200_000) == [(0, ReferenceUpdate("AAPL", aapl.reference_price, 0))]

    def rejects(now, written):      # the model, at AAPL's reference price
        return collar_fires(aapl.reference_price, aapl.reference_price, now - written,
                            max_age, aapl.collar)

    stale_symbols = {y.symbol for y in limits().symbols} - {"AAPL"}
    assert not rejects(1_000_000, 0) and feed.stale(1_000_000) == []
    assert rejects(1_000_001, 0)
    alerts = feed.stale(1_000_001)      # every symbol loaded at 0 and never refreshed
    assert {a.target for a in alerts} == stale_symbols
    assert all(a.check == "references" and a.kind == "alert" for a in alerts)
    assert not rejects(1_200_000, 200_000) and feed.stale(1_200_000) == []
    assert rejects(1_200_001, 200_000)
    assert feed.stale(1_200_001) == [Action(
        "references", "alert", "AAPL", "AAPL: no reference written for 1000001us, above "
        "reference_max_age 1s; the collar rejects its orders")]
    assert feed.stale(5_000_000) == []              # once, until it is fresh again
    feed.offer(ReferenceUpdate("AAPL", 1, 0))
    feed.take(5_000_000)
    assert feed.stale(6_000_000) == []
    assert [a.target for a in feed.stale(6_000_001)] == ["AAPL"]


def test_a_max_age_of_zero_never_goes_stale():
    assert ReferenceFeed(limits(0), max_rate=1).stale(2**63) == []


def test_a_feed_refuses_a_rate_that_is_not_positive():
    with pytest.raises(ValueError, match=r"max_rate must be above 0"):
        ReferenceFeed(limits(), max_rate=0)


# --- The write ----------------------------------------------------------------------------

PARAMETERS = {"n_sessions": 5, "n_symbols": 40, "symbol_slots": 64, "n_orders": 16,
              "n_pass_rules": 2}


def test_the_writes_stage_price_and_stamp_and_end_with_the_trigger():
    regmap = RegisterMap(**PARAMETERS)
    runs = reference_writes(regmap, 7, 2_285_000, 0x1_0000_0002)
    words = {address + k: word for address, run in runs for k, word in enumerate(run)}
    stamp = regmap.register("ref_stamp_us").address
    assert words == {regmap.register("ref_price").address: 2_285_000,
                     stamp: 2, stamp + 1: 1,                # low word first
                     regmap.register("ref_update").address: 7}
    assert runs[-1][0] + len(runs[-1][1]) - 1 == regmap.register("ref_update").address


def test_write_reference_through_the_driver_reaches_the_gateways_registers():
    sim = SimulatedGateway(RegisterMap(**PARAMETERS))

    async def main():
        server = await asyncio.start_server(sim.serve, "127.0.0.1", 0)
        transport = await SocketTransport.connect("127.0.0.1",
                                                  server.sockets[0].getsockname()[1])
        driver = Driver(transport, timeout=30)
        try:
            await driver.identify()
            await write_reference(driver, 3, 4_153_000, 123_456_789_012)
            await driver.heartbeat()
            staged = (await driver.read_register("ref_price"),
                      await driver.read_register("ref_stamp_us"))
            controls = []
            async for record in driver.records():     # the trigger fired: a record of it
                controls.append(record.control)
                if len(controls) == 2:
                    break
            return staged, controls
        finally:
            await driver.close()
            server.close()

    staged, controls = asyncio.run(asyncio.wait_for(main(), 120))
    assert staged == ({"value": 4_153_000}, {"value": 123_456_789_012})
    assert controls == [Control.SET_REFERENCE, Control.HEARTBEAT]
