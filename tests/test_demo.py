"""``make demo`` end to end, short: a few hundred orders through ``wiregate sim``'s sockets.

What the demo claims is checked against what it cannot choose: every drop-copy record
agrees with the reference model (the shadow check, from record 0 with no gap); each limit
the plan breaks fired in the gateway's verdicts (and so, the check having passed, in the
model's); every order the gateway rejected reached the exchange as a SoupBin ``+`` packet
and every accepted Enter Order was answered; and the pcaps parse with scapy, every IPv4 and
TCP checksum valid, each frame toward the exchange as long as the client frame it came from.
"""

import json

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from wiregate.sim.demo import Demo
from wiregate.sw.dropcopy import Kind

pytestmark = pytest.mark.verilator

BROKEN = ("QUANTITY", "NOTIONAL", "COLLAR", "RESTRICTED", "UNKNOWN_SYMBOL", "POSITION",
          "CREDIT_SESSION", "RATE", "DUPLICATE_REF", "KILL_SESSION")


def _checksums_valid(packet) -> bool:
    again = Ether(bytes(packet))
    del again[IP].chksum
    del again[TCP].chksum
    again = Ether(bytes(again))
    return (again[IP].chksum, again[TCP].chksum) == (packet[IP].chksum, packet[TCP].chksum)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import asyncio

    out = tmp_path_factory.mktemp("demo")
    run = Demo(out, orders=300, seed=3)
    return run, asyncio.run(run.run()), out


def test_every_record_agrees_with_the_model(demo):
    run, summary, _ = demo
    assert [r.sequence for r in run.records] == list(range(len(run.records)))
    assert run.shadow.mismatch is None
    assert run.shadow.checked == len(run.records) == summary["records"] > 0


def test_each_limit_broken_fired(demo):
    run, summary, out = demo
    verdicts = [r for r in run.records if r.kind == Kind.VERDICT]
    assert summary["orders"] >= 300
    for reason in BROKEN:
        assert summary["reasons"].get(reason, 0) > 0, reason
    # The log holds every verdict record, as the record says.
    lines = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert [(e["sequence"], e["verdict"]) for e in lines] == [
        (v.sequence, "accept" if v.accept else "reject") for v in verdicts]
    # Every reject left as a '+' packet the exchange ignored; every accepted Enter Order
    # reached the exchange, which accepted or rejected it.
    enters = [v for v in verdicts if v.msg_type == ord("O")]
    assert summary["exchange_ignored_debug"] == summary["verdicts"]["reject"] > 0
    answered = summary["exchange_sent"]
    assert answered["OrderAccepted"] + answered.get("OrderRejected", 0) == sum(
        v.accept for v in enters)
    # Positions moved: executions in full and in part, and cancels.
    for kind in ("OrderExecuted (full)", "OrderExecuted (partial)", "OrderCanceled"):
        assert answered.get(kind, 0) > 0, kind


def test_pcaps_parse_with_valid_checksums(demo):
    _, summary, out = demo
    pcaps = {name: rdpcap(str(out / f"{name}.pcap")) for name in (
        "from_client", "to_exchange", "from_exchange", "to_client")}
    for name, packets in pcaps.items():
        assert packets, name
        for packet in packets:
            assert IP in packet and TCP in packet, name
            assert _checksums_valid(packet), (name, packet.summary())
    # Nothing dropped: each frame left as long as it came, in the same order.
    for into, out_of in (("from_client", "to_exchange"), ("from_exchange", "to_client")):
        assert [len(p) for p in pcaps[into]] == [len(p) for p in pcaps[out_of]]
    changed = sum(bytes(a) != bytes(b) for a, b in zip(pcaps["from_client"],
                                                        pcaps["to_exchange"], strict=True))
    # One message a frame: a frame changed for each rejected message (rewritten in place).
    assert changed == summary["verdicts"]["reject"]
    # A latency for every frame with payload that left toward the exchange, and a verdict
    # delay for every verdict record (each matched to the frame its message came in).
    latency = summary["latency"]
    assert latency["first_byte"]["count"] == sum(
        p[IP].len - 4 * p[IP].ihl - 4 * p[TCP].dataofs > 0 for p in pcaps["to_exchange"])
    assert latency["verdict"]["count"] == sum(summary["verdicts"].values())
    assert 0 < latency["verdict"]["cycles"]["min"] <= latency["verdict"]["cycles"]["max"]
    assert (out / "latency.png").stat().st_size > 0
