"""TCP stream tracking through the ingress path, against the plain tracker of sw/extract.py
(written from the rules in hw/ingress/tcp_tracker.py's docstring)."""

import random

import pytest
from amaranth.sim import Simulator

from wiregate.hw.ingress.ingress import Ingress
from wiregate.hw.ingress.tcp_tracker import Segment
from wiregate.sim.beats import frame_cycles, frame_ends
from wiregate.sw.extract import StreamTracker
from wiregate.sw.proto.frames import Peer, TcpFlow, build_frame, ip_to_int, parse_frame
from wiregate.sw.regmap import RegisterMap

REGMAP = RegisterMap()
EXCHANGE = Peer("02:00:00:00:00:02", "10.2.0.1", 15000)
CLIENTS = [Peer("02:00:00:00:00:01", f"10.1.0.{k + 1}", 40001 + k) for k in range(4)]


def traffic(rng, n_events):
    """Client-to-exchange frames of several sessions: (session, frame) in wire order."""
    flows = {}
    out = []

    def connect(k, isn):
        # A new connection on the session's 4-tuple: the client's SYN and ACK.
        flows[k] = TcpFlow(CLIENTS[k], EXCHANGE, client_isn=isn, vlan=rng.choice([None, 9]),
                           timestamps=rng.random() < 0.5)
        out.extend((k, f) for f in flows[k].handshake()
                   if parse_frame(f).tcp.src_port == CLIENTS[k].port)

    for k in range(len(CLIENTS)):
        connect(k, 2**32 - 40 - k)      # just below 2**32: the sequence numbers wrap
    for _ in range(n_events):
        k = rng.randrange(len(flows))
        flow = flows[k]
        sent = len(flow.client.sent) if flow else 0
        what = rng.choices(["send", "retransmit", "corrupt", "ack", "gap", "overlap", "rst",
                            "fin", "syn"], weights=[8, 5, 1, 1, 1, 1, 1, 1, 3])[0]
        if flow is None or what == "syn":
            connect(k, rng.getrandbits(32))
        elif what == "send" or (what in ("retransmit", "overlap") and sent == 0):
            data = rng.randbytes(rng.randint(1, 200))
            cuts = sorted(rng.sample(range(1, len(data)), k=min(2, len(data) - 1)))
            out += [(k, f) for f in flow.client.send(data, cuts)]
        elif what == "retransmit":
            start = rng.randrange(sent)
            out.append((k, flow.client.retransmit(start, rng.randint(start + 1, sent))))
        elif what == "gap":
            flow.client.send(rng.randbytes(10))          # never delivered
            out += [(k, f) for f in flow.client.send(rng.randbytes(10))]
        elif what == "overlap":
            flow.client.send(rng.randbytes(10))          # new bytes, undelivered...
            out.append((k, flow.client.retransmit(rng.randrange(sent), sent + 10)))
        elif what == "corrupt":
            frame = bytearray(flow.client.send(rng.randbytes(20))[0])
            frame[-1] ^= 0x01                            # bad TCP checksum: must not count
            out.append((k, bytes(frame)))
            out.append((k, flow.client.retransmit(sent, sent + 20)))
        elif what == "ack":
            out.append((k, flow.client.ack()))
        elif what == "rst":
            c = CLIENTS[k]
            out.append((k, build_frame(b"", src_mac=c.mac, dst_mac=EXCHANGE.mac, src_ip=c.ip,
                                       dst_ip=EXCHANGE.ip, src_port=c.port,
                                       dst_port=EXCHANGE.port, seq=flow.client.next_seq,
                                       flags="R")))
            flows[k] = None
        else:
            out.append((k, flow.client.fin()))
            flows[k] = None
    return out


def run(width, frames, rng):
    dut = Ingress(width, REGMAP, toward_exchange=True)
    seen = []
    final = {}

    async def testbench(ctx):
        for k, c in enumerate(CLIENTS):
            ctx.set(dut.write_session.en, 1)
            ctx.set(dut.write_session.index, k)
            ctx.set(dut.write_session.entry, dict(
                client_ip=ip_to_int(c.ip), client_port=c.port, exchange_ip=ip_to_int(
                    EXCHANGE.ip), exchange_port=EXCHANGE.port, valid=1))
            await ctx.tick()
        ctx.set(dut.write_session.en, 0)
        ctx.set(dut.swap, 1)
        await ctx.tick()
        ctx.set(dut.swap, 0)
        cycles = frame_cycles([(f, False) for _, f in frames], width, rng, idle=0.1)
        lanes = lambda o: o.beat.beat.beat.beat.lanes  # noqa: E731
        for out in await frame_ends(ctx, dut, cycles, lanes, tail=dut.latency + 1):
            tracked = out.beat.beat
            seen.append((tracked.beat.session, tracked.beat.hit, Segment(tracked.segment)))
        final.update(in_sync=ctx.get(dut.in_sync), retransmits=ctx.get(dut.count_retransmits),
                     lost=ctx.get(dut.count_lost))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return seen, final


NAMES = {"none": Segment.NONE, "new": Segment.NEW, "retransmit": Segment.RETRANSMIT,
         "lost": Segment.LOST}


@pytest.mark.parametrize("width", [1, 8])
def test_stream_classification(width):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    frames = traffic(rng, 120 if width == 1 else 300)
    seen, final = run(width, frames, rng)
    plain = StreamTracker()
    assert len(seen) == len(frames)
    counts = {"retransmit": 0, "lost": 0}
    for number, ((k, frame), (session, hit, segment)) in enumerate(
            zip(frames, seen, strict=True)):
        expected = plain.segment(k, frame)
        where = f"seed {seed} frame {number}"
        assert hit and session == k, where
        assert segment == NAMES[expected], where
        if expected in counts:
            counts[expected] += 1
    synced = sum(1 << k for k, v in plain.next.items() if isinstance(v, int))
    assert final == {"in_sync": synced, "retransmits": counts["retransmit"],
                     "lost": counts["lost"]}
