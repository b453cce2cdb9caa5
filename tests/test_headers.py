"""Header parser under the Amaranth simulator, against the host's frame parser and
against what each test frame was built to be."""

import random
import struct

import pytest
from amaranth.sim import Simulator

from wiregate.hw.ingress.headers import ERRORS, FrameKind, HeaderParser
from wiregate.sim.beats import frame_cycles, pack_beat
from wiregate.sw.proto.frames import build_frame, ip_checksum, parse_frame, tcp_timestamp_option

MACS = dict(src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02")


def tcp_frame(rng, payload_len=None, **overrides):
    args = dict(
        MACS, src_ip=f"10.1.0.{rng.randint(1, 254)}", dst_ip="10.2.0.1",
        src_port=rng.randint(1024, 65535), dst_port=15000, seq=rng.getrandbits(32),
        ack=rng.getrandbits(32), flags=rng.choice(["PA", "A", "S", "FA", "R"]),
        vlan=rng.choice([None, rng.randint(1, 4094)]),
        tcp_options=rng.choice([b"", tcp_timestamp_option(rng.getrandbits(32), 7)]),
        ip_options=rng.choice([b"", b"", bytes([1, 1, 1, 0])]),
    )
    args.update(overrides)
    n = rng.randint(0, 300) if payload_len is None else payload_len
    return build_frame(rng.randbytes(n), **args)


def refresh_ip_checksum(frame, ip_offset):
    ihl = (frame[ip_offset] & 0xF) * 4
    header = bytearray(frame[ip_offset:ip_offset + ihl])
    header[10:12] = b"\0\0"
    header[10:12] = struct.pack("!H", ip_checksum(bytes(header)))
    return frame[:ip_offset] + bytes(header) + frame[ip_offset + ihl:]


def ip_offset_of(frame):
    return 18 if frame[12:14] == b"\x81\x00" else 14


def make_cases(rng, n):
    """(frame, expected kind, expected error names) built to be each class."""
    cases = []
    for _ in range(n):
        what = rng.choice(["good"] * 6 + ["arp", "ipv6", "udp", "fragment", "bad_ip",
                                          "bad_tcp", "truncated", "bad_ihl", "runt"])
        frame = tcp_frame(rng)
        ip = ip_offset_of(frame)
        if what == "good":
            cases.append((frame, FrameKind.TCP, set()))
        elif what == "arp":
            cases.append((bytes(6) + bytes(6) + b"\x08\x06" + rng.randbytes(28) + bytes(18),
                          FrameKind.ARP, set()))
        elif what == "ipv6":
            cases.append((frame[:12] + b"\x86\xdd" + frame[14:], FrameKind.OTHER, set()))
        elif what == "udp":
            f = bytearray(frame)
            f[ip + 9] = 17
            cases.append((refresh_ip_checksum(bytes(f), ip), FrameKind.IPV4, set()))
        elif what == "fragment":
            cases.append((tcp_frame(rng, ip_flags=1, fragment_offset=rng.choice([0, 185])),
                          FrameKind.OTHER, {"fragment"}))
        elif what == "bad_ip":
            f = bytearray(frame)
            f[ip + 10] ^= 1 << rng.randrange(8)
            cases.append((bytes(f), FrameKind.TCP, {"bad_ip_checksum"}))
        elif what == "bad_tcp":
            parsed = parse_frame(frame)
            f = bytearray(frame)
            f[rng.randrange(parsed.tcp_offset, parsed.tcp_offset + 4)] ^= 0x10  # a port bit
            cases.append((bytes(f), FrameKind.TCP, {"bad_tcp_checksum"}))
        elif what == "truncated":
            frame = tcp_frame(rng, payload_len=rng.randint(1, 300))
            ip = ip_offset_of(frame)
            total = struct.unpack_from("!H", frame, ip + 2)[0]
            cut = rng.randint(15 if ip == 14 else 19, ip + total - 1)
            cases.append((frame[:cut], ("cut", frame), {"truncated"}))
        elif what == "bad_ihl":
            f = bytearray(frame)
            f[ip] = 0x44
            cases.append((refresh_ip_checksum(bytes(f), ip), FrameKind.OTHER, {"unsupported"}))
        else:
            cases.append((frame[:rng.randint(1, 13)], FrameKind.OTHER, {"truncated"}))
    return cases


def run_parser(width, frames, rng):
    dut = HeaderParser(width)
    cycles = frame_cycles([(f, False) for f in frames], width, rng, idle=0.2)
    results = []
    counters = {}

    async def testbench(ctx):
        payload = bytearray()
        for c in range(len(cycles) + dut.latency + 1):
            valid, word = pack_beat(cycles[c] if c < len(cycles) else None)
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload.as_value(), word)
            if ctx.get(dut.o.valid):
                out = ctx.get(dut.o.payload)
                for lane in range(width):
                    if out.lanes[lane].keep and out.payload >> lane & 1:
                        payload.append(out.lanes[lane].data)
                if any(out.lanes[lane].keep and out.lanes[lane].last for lane in range(width)):
                    results.append((out.header, out.errors, bytes(payload)))
                    payload = bytearray()
            await ctx.tick()
        for name in ("frames", *ERRORS):
            counters[name] = ctx.get(getattr(dut, f"count_{name}"))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return results, counters


def check_parser(width, seed, n):
    rng = random.Random(seed)
    cases = make_cases(rng, n)
    results, counters = run_parser(width, [frame for frame, _, _ in cases], rng)
    assert len(results) == len(cases)
    expected_counts = dict.fromkeys(ERRORS, 0)
    for number, ((frame, kind, errors), (header, error_bits, payload)) in enumerate(
            zip(cases, results, strict=True)):
        where = f"seed {seed} frame {number} ({len(frame)} bytes)"
        got_errors = {name for bit, name in enumerate(ERRORS) if error_bits >> bit & 1}
        assert got_errors == errors, where
        for name in errors:
            expected_counts[name] += 1
        if isinstance(kind, tuple):
            # Truncated: whatever headers and payload arrived are reported as such.
            parsed = parse_frame(kind[1])
            arrived = len(frame) >= parsed.payload_offset
            assert header.done == arrived, where
            assert payload == frame[parsed.payload_offset:], where
            continue
        assert header.kind == kind, where
        if kind == FrameKind.TCP:
            parsed = parse_frame(frame)
            assert header.done == 1, where
            assert header.vlan == (parsed.eth.vlan is not None), where
            assert header.ip_src == struct.unpack("!I", frame[parsed.ip_offset + 12:][:4])[0]
            assert header.ip_dst == struct.unpack("!I", frame[parsed.ip_offset + 16:][:4])[0]
            assert (header.src_port, header.dst_port) == (parsed.tcp.src_port,
                                                          parsed.tcp.dst_port), where
            assert (header.seq, header.ack) == (parsed.tcp.seq, parsed.tcp.ack), where
            assert header.flags == parsed.tcp.flags, where
            assert header.proto == 6, where
            assert header.payload_start == parsed.payload_offset, where
            assert header.payload_len == len(parsed.payload), where
            assert payload == parsed.payload, where
        else:
            assert header.done == 0 and payload == b"", where
    assert counters == {"frames": len(cases), **expected_counts}


@pytest.mark.parametrize("width", [1, 8])
def test_random_frames(width):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_parser(width, seed, n=40 if width == 1 else 120)


@pytest.mark.parametrize("width", [1, 8])
def test_recovers_after_garbage(width):
    # Random bytes of every length, then a good frame: the good frame must parse.
    rng = random.Random(5)
    frames = [rng.randbytes(rng.randint(1, 80)) for _ in range(20)]
    good = tcp_frame(rng, payload_len=50)
    results, _ = run_parser(width, [*frames, good], rng)
    header, errors, payload = results[-1]
    assert errors == 0 and header.kind == FrameKind.TCP
    assert payload == parse_frame(good).payload
