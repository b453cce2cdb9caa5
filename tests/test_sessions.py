"""Session lookup through the ingress path, against an independent Python classification."""

import ipaddress
import random

import pytest
from amaranth.sim import Simulator
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from wiregate.hw.ingress.ingress import Ingress
from wiregate.sim.beats import frame_cycles, frame_ends, pack_beat
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.frames import build_frame, parse_frame
from wiregate.sw.regmap import RegisterMap

REGMAP = RegisterMap()
EXCHANGE = ("10.2.0.1", 15000)
CLIENTS = [(f"10.1.0.{k + 1}", 40001 + k) for k in range(6)]
MACS = dict(src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02")
# rule 0: UDP to 10.2.0.50:5000 only; rule 1: anything to 10.2.0.99; rule 2: from
# 10.3.0.0/16 with a source port of 7000 to 7003
RULES = [
    dict(ip=int(ipaddress.IPv4Address("10.2.0.50")), ip_mask=0xFFFF_FFFF, port=5000,
         port_mask=0xFFFF, match_source=0, valid=1),
    dict(ip=int(ipaddress.IPv4Address("10.2.0.99")), ip_mask=0xFFFF_FFFF, port=0, port_mask=0,
         match_source=0, valid=1),
    dict(ip=int(ipaddress.IPv4Address("10.3.0.0")), ip_mask=0xFFFF_0000, port=7000,
         port_mask=0xFFFC, match_source=1, valid=1),
]


def ip_int(text):
    return int(ipaddress.IPv4Address(text))


def entry(client):
    return dict(client_ip=ip_int(client[0]), client_port=client[1],
                exchange_ip=ip_int(EXCHANGE[0]), exchange_port=EXCHANGE[1], valid=1)


def tcp(src, dst, rng, **kw):
    return build_frame(rng.randbytes(rng.randint(0, 80)), **MACS, src_ip=src[0],
                       src_port=src[1], dst_ip=dst[0], dst_port=dst[1],
                       seq=rng.getrandbits(32), **kw)


def udp(dst_ip, dport, src_ip="10.1.0.1", sport=999):
    return bytes(Ether(src=MACS["src_mac"], dst=MACS["dst_mac"]) /
                 IP(src=src_ip, dst=dst_ip) / UDP(sport=sport, dport=dport) / b"hello")


def random_frame(rng, toward_exchange):
    """A frame of a random class; toward the clients the endpoints are swapped."""
    what = rng.choice(["session"] * 4 + ["unknown", "wrong_port", "arp", "udp_rule",
                                         "udp_other", "rule_ip", "rule_source",
                                         "source_other", "ipv6", "bad_checksum"])
    client = rng.choice(CLIENTS)
    ends = (client, EXCHANGE) if toward_exchange else (EXCHANGE, client)
    if what == "session":
        return tcp(*ends, rng, vlan=rng.choice([None, 7]))
    if what == "unknown":
        stranger = ("10.1.9.9", 40001)
        return tcp(*((stranger, EXCHANGE) if toward_exchange else (EXCHANGE, stranger)), rng)
    if what == "wrong_port":
        other = (EXCHANGE[0], 15001)
        return tcp(*((client, other) if toward_exchange else (other, client)), rng)
    if what == "arp":
        return bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.2.0.1"))
    if what == "udp_rule":
        return udp("10.2.0.50", 5000)
    if what == "udp_other":
        return udp("10.2.0.50", 5001)
    if what == "rule_ip":
        return tcp(client, ("10.2.0.99", 80), rng)
    if what == "rule_source":
        return udp("10.2.0.7", 5000, f"10.3.{rng.randrange(256)}.9", rng.randrange(7000, 7004))
    if what == "source_other":      # the rule's source port, from outside its network
        return udp("10.2.0.7", 5000, "10.4.0.9", 7000)
    if what == "ipv6":
        return bytes(Ether() / IPv6() / UDP() / b"x")
    frame = bytearray(tcp(*ends, rng))
    frame[-1 if len(frame) > 60 else 40] ^= 0x40       # a payload or port bit: TCP checksum
    return bytes(frame)


def classify(frame, sessions, toward_exchange):
    """(hit, session index, drop) decided from the bytes, independently of the gateware."""
    if frame[12:14] == b"\x08\x06":
        return False, None, False
    try:
        parsed = parse_frame(frame)
    except ProtocolError:
        parsed = None
    hit, index = False, None
    if parsed is not None:      # the 4-tuple decides the session; checksums decide the drop
        local = (parsed.ip.src, parsed.tcp.src_port) if toward_exchange else \
            (parsed.ip.dst, parsed.tcp.dst_port)
        remote = (parsed.ip.dst, parsed.tcp.dst_port) if toward_exchange else \
            (parsed.ip.src, parsed.tcp.src_port)
        for k, client in sessions.items():
            if local == client and remote == EXCHANGE:
                hit, index = True, k
    if not toward_exchange:
        return hit, index, False
    pkt = Ether(frame)
    by_rule = IP in pkt and IPv6 not in pkt and (
        pkt[IP].dst == "10.2.0.99" or (UDP in pkt and pkt[IP].dst == "10.2.0.50" and
                                       pkt[UDP].dport == 5000) or
        (UDP in pkt and pkt[IP].src.startswith("10.3.") and 7000 <= pkt[UDP].sport < 7004))
    checks_ok = parsed is None or (parsed.tcp.checksum_ok and parsed.ip.checksum_ok)
    return hit, index, not ((hit or by_rule) and checks_ok)


def run(width, toward_exchange, seed):
    rng = random.Random(seed)
    dut = Ingress(width, REGMAP, toward_exchange=toward_exchange)
    first = dict(enumerate(CLIENTS[:4]))
    second = {**first, 5: CLIENTS[5]}
    phases = [(first, [random_frame(rng, toward_exchange) for _ in range(40)]),
              (second, [random_frame(rng, toward_exchange) for _ in range(40)])]
    seen = []

    async def write(ctx, port, index, values):
        ctx.set(port.en, 1)
        ctx.set(port.index, index)
        ctx.set(port.entry, values)
        await ctx.tick()
        ctx.set(port.en, 0)

    async def testbench(ctx):
        for k, rule in enumerate(RULES):
            await write(ctx, dut.write_pass_rule, k, rule)
        for table, frames in phases:
            # The new table goes to the shadow bank: the first half of the frames still sees
            # the old one; the swap comes between two frames, and the second half sees it.
            for k, client in table.items():
                await write(ctx, dut.write_session, k, entry(client))
            half = len(frames) // 2
            for part, swapped in ((frames[:half], False), (frames[half:], True)):
                cycles = frame_cycles([(f, False) for f in part], width, rng, idle=0.1)
                lanes = lambda o: o.beat.beat.beat.beat.lanes  # noqa: E731
                for out in await frame_ends(ctx, dut, cycles, lanes, dut.latency + 1):
                    b = out.beat.beat.beat
                    seen.append((bool(b.hit), b.session, bool(b.drop), swapped))
                if not swapped:
                    ctx.set(dut.i.valid, 0)
                    ctx.set(dut.swap, 1)
                    await ctx.tick()
                    ctx.set(dut.swap, 0)
        seen.append(ctx.get(dut.count_dropped))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return phases, seen


@pytest.mark.parametrize("width", [1, 8])
@pytest.mark.parametrize("toward_exchange", [True, False])
def test_lookup_and_drop(width, toward_exchange):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    phases, seen = run(width, toward_exchange, seed)
    dropped = seen.pop()
    frames = [(f, old, new) for (new, fs), old in zip(phases, [{}, phases[0][0]], strict=True)
              for f in fs]
    assert len(seen) == len(frames)
    drops = 0
    for number, ((frame, old, new), (hit, index, drop, swapped)) in enumerate(
            zip(frames, seen, strict=True)):
        table = new if swapped else old
        exp_hit, exp_index, exp_drop = classify(frame, table, toward_exchange)
        where = f"seed {seed} frame {number}"
        assert hit == exp_hit, where
        if hit:
            assert index == exp_index, where
        assert drop == exp_drop, where
        drops += drop
    assert dropped == drops


def straddle(width):
    """One session frame per cycle it spends in the ingress, each with a commit's swap in it;
    the banks alternate between holding the frame's session and not, so the swaps remove and
    add it in turn. Returns (swap cycle, removes, passed, hit) per frame."""
    rng = random.Random(width)
    dut = Ingress(width, REGMAP, toward_exchange=True)
    frame = tcp(CLIENTS[0], EXCHANGE, rng, vlan=7)
    cycles = frame_cycles([(frame, False)], width, rng, idle=0)
    seen = []

    async def write(ctx, index, values):
        ctx.set(dut.write_session.en, 1)
        ctx.set(dut.write_session.index, index)
        ctx.set(dut.write_session.entry, values)
        await ctx.tick()
        ctx.set(dut.write_session.en, 0)

    async def testbench(ctx):
        held = dict(entry(CLIENTS[0]))
        await write(ctx, 0, held)
        ctx.set(dut.swap, 1)        # the bank that holds the session is active
        await ctx.tick()
        ctx.set(dut.swap, 0)
        removes = True
        for at in range(len(cycles) + dut.latency):     # the lookup sees the beats late
            await write(ctx, 0, {**held, "valid": int(not removes)})     # the shadow bank
            passed = hit = None
            for c in range(len(cycles) + dut.latency + 4):
                valid, word = pack_beat(cycles[c] if c < len(cycles) else None)
                ctx.set(dut.i.valid, valid)
                ctx.set(dut.i.payload.as_value(), word)
                ctx.set(dut.swap, c == at)
                await ctx.tick()
                if ctx.get(dut.decision.valid):
                    passed = not ctx.get(dut.decision.payload.drop)
                if ctx.get(dut.o.valid):
                    b = ctx.get(dut.o.payload).beat.beat.beat
                    if any(lane.keep and lane.last for lane in b.beat.lanes):
                        hit = bool(b.hit)
            ctx.set(dut.swap, 0)
            seen.append((at, removes, passed, hit))
            removes = not removes

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return seen


@pytest.mark.parametrize("width", [1, 8])
def test_a_swap_under_the_headers_sees_one_table(width):
    """A commit's swap in any cycle of a frame's headers: the frame passes exactly when it
    belongs to a session (one table decides both), whether the swap removes its session
    or adds it; early swaps give the new table, late ones the old."""
    seen = straddle(width)
    for at, removes, passed, hit in seen:
        assert passed is not None and hit is not None, (at, removes)
        assert passed == hit, f"W={width} swap in cycle {at}, removes={removes}: " \
            f"passed={passed}, session={hit}"
    assert {hit == (not removes) for _, removes, _, hit in seen} == {True, False}
