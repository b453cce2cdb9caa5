"""Holdback + Rewrite under the Amaranth simulator, cycle by cycle against sw/rewrite.py.

Frames enter a ``Holdback(width, H)`` as a receive MAC delivers them (lane 0, no gaps inside a
frame, random idle between frames); its output feeds ``Rewrite``. The test plays the risk core:
it decides drops, voids and rejects, and pushes each record at the latest cycle the rewrite's
contract allows or at a random earlier one. The expected output is the input delayed by exactly
H bytes plus the rewrite's latency, lane for lane, with every rejected packet rewritten by
:func:`wiregate.sw.rewrite.reject_in_place`, dropped frames gone and stomped frames ending in
``error``; the counters are checked against the test's own tally.
"""

import dataclasses
import gc
import os
import random
import struct
import warnings

import pytest
from amaranth.hdl import Module, UnusedElaboratable
from amaranth.lib import wiring
from amaranth.sim import Simulator

from wiregate.hw.egress.holdback import Holdback
from wiregate.hw.egress.holdback_size import (
    SETTLE_DISTANCE,
    check_holdback,
    holdback_bytes,
    reject_depth,
    tag_bits,
)
from wiregate.hw.egress.rewrite import COUNTERS, Rewrite, latency, ways
from wiregate.sim.beats import Byte, delay_cycles, pack_beat, unpack_beat
from wiregate.sim.traffic import generate
from wiregate.sw.extract import IngressModel
from wiregate.sw.proto.frames import build_frame, parse_frame
from wiregate.sw.rewrite import reject_in_place

TAG_BITS = 4
U = ord("U")


@dataclasses.dataclass
class Plan:
    """What the test's core decides, frame by frame."""

    frames: list = dataclasses.field(default_factory=list)    # (bytes, fcs_error)
    idle: list = dataclasses.field(default_factory=list)      # idle cycles before each frame
    drop: list = dataclasses.field(default_factory=list)
    void: list = dataclasses.field(default_factory=list)
    rejects: list = dataclasses.field(default_factory=list)   # type byte offsets per frame

    def expected(self):
        """The frames that leave: (bytes, error)."""
        out = []
        for k, (frame, fcs_error) in enumerate(self.frames):
            if not self.drop[k]:
                for x in self.rejects[k]:
                    frame = reject_in_place(frame, x)
                out.append((frame, fcs_error or self.void[k]))
        return out

    def tally(self):
        kept = [not d for d in self.drop]
        return {
            "rewritten": sum(len(r) for r, k in zip(self.rejects, kept, strict=True) if k),
            "dropped": sum(self.drop),
            "stomped": sum(v and k for v, k in zip(self.void, kept, strict=True)),
            "late": 0,
        }


def mac_cycles(plan, width):
    """Beats as a receive MAC hands them over: each frame from lane 0, whole, idle between."""
    cycles = []
    for (frame, error), idle in zip(plan.frames, plan.idle, strict=True):
        cycles += [None] * idle
        for start in range(0, len(frame), width):
            beat = []
            for pos in range(start, start + width):
                last = pos == len(frame) - 1
                beat.append(Byte(frame[pos], first=pos == 0, last=last, error=error and last)
                            if pos < len(frame) else None)
            cycles.append(beat)
    return cycles


def positions(cycles):
    """(frame index, offset) -> cycle, for beats in frame order."""
    where, k, offset = {}, -1, 0
    for c, beat in enumerate(cycles):
        for slot in beat or ():
            if slot is None:
                continue
            k, offset = (k + 1, 0) if slot.first else (k, offset + 1)
            where[k, offset] = c
    return where


class Timing:
    """When each byte is on the MAC side and on the rewrite's input, and the contract's
    window for a record acting on it: from the MAC side to one cycle before it leaves."""

    def __init__(self, plan, width, holdback, cycles=None):
        self.cycles = mac_cycles(plan, width) if cycles is None else cycles
        self.d = latency(width)
        self.total = len(self.cycles) + -(-holdback // width) + self.d + 4
        self.mac = positions(self.cycles)
        self.rw = positions(delay_cycles(self.cycles, width, holdback, self.total))

    def latest(self, k, offset):
        return self.rw[k, offset] + self.d - 1

    def window(self, k, offset):
        # Decisions and voids take one bit per tag: never more than 2**(TAG_BITS - 1) - 1
        # frames ahead of the output.
        earliest = self.mac[k, offset]
        behind = k - (1 << (TAG_BITS - 1)) + 1
        if behind >= 0:
            earliest = max(earliest, self.rw[behind, 0] + self.d)
        return min(earliest, self.latest(k, offset)), self.latest(k, offset)


def records(plan, bits):
    """The records the test's core pushes, per stream and in order, each with the (frame,
    offset) of the byte it acts on."""
    wanted = {"frames": [], "void": [], "rejects": []}
    for k, (frame, _) in enumerate(plan.frames):
        tag = k % (1 << bits)
        wanted["frames"].append(((k, 0), {"frame": tag, "drop": int(plan.drop[k])}))
        if plan.void[k]:
            wanted["void"].append(((k, len(frame) - 1), {"frame": tag}))
        wanted["rejects"] += [((k, x), {"frame": tag, "offset": x}) for x in plan.rejects[k]]
    return wanted


def schedule(plan, timing, rng, at_latest=0.5):
    """Push cycles per stream: each record at its latest cycle with probability ``at_latest``,
    else at a random cycle of its window; one record per cycle per stream, in order."""
    pushes = {}
    for name, wanted in records(plan, TAG_BITS).items():
        windows = [timing.window(*byte) for byte, _ in wanted]
        cycles = [hi if rng.random() < at_latest else rng.randint(lo, hi) for lo, hi in windows]
        for j in range(len(cycles) - 2, -1, -1):
            cycles[j] = min(cycles[j], cycles[j + 1] - 1)
        assert not cycles or cycles[0] >= 0
        pushes[name] = dict(zip(cycles, [r for _, r in wanted], strict=True))
    return pushes


def earliest_pushes(plan, timing, bits):
    """Every record at the first cycle the core could know it (the byte it names on the MAC
    side), one per cycle per stream."""
    pushes = {}
    for name, wanted in records(plan, bits).items():
        cycle, pushes[name] = -1, {}
        for byte, record in wanted:
            cycle = max(timing.mac[byte], cycle + 1)
            pushes[name][cycle] = record
    return pushes


def simulate(width, holdback, cycles, pushes, total, **params):
    """Run Holdback + Rewrite; return the output beats per cycle and the counters."""
    m = Module()
    m.submodules.hold = hold = Holdback(width, holdback)
    m.submodules.rewrite = dut = Rewrite(width, **{"tag_bits": TAG_BITS, **params})
    wiring.connect(m, hold.o, dut.i)
    seen, counters = [], {}

    async def testbench(ctx):
        for c in range(total):
            valid, word = pack_beat(cycles[c] if c < len(cycles) else None)
            ctx.set(hold.i.valid, valid)
            ctx.set(hold.i.payload.as_value(), word)
            for name in ("frames", "void", "rejects"):
                record = pushes.get(name, {}).get(c)
                port = getattr(dut, name)
                ctx.set(port.valid, record is not None)
                if record is not None:
                    ctx.set(port.payload, record)
            seen.append(unpack_beat(ctx.get(dut.o.valid), ctx.get(dut.o.payload.as_value()),
                                    width))
            await ctx.tick()
        counters.update({name: ctx.get(getattr(dut, f"count_{name}")) for name in COUNTERS})

    sim = Simulator(m)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return seen, counters


def expected_cycles(timing, width, holdback, outputs):
    """The input delayed by H bytes and the rewrite's latency, each byte replaced by
    ``outputs[k]`` (None: the frame is dropped), error on the last byte as given."""
    delayed = delay_cycles(timing.cycles, width, holdback + timing.d * width, timing.total)
    k, offset, result = -1, 0, []
    for beat in delayed:
        lanes = []
        for slot in beat or [None] * width:
            if slot is None:
                lanes.append(None)
                continue
            k, offset = (k + 1, 0) if slot.first else (k, offset + 1)
            if outputs[k] is None:
                lanes.append(None)
                continue
            data, error = outputs[k]
            lanes.append(Byte(data[offset], first=slot.first, last=slot.last,
                              error=slot.last and error))
        result.append(lanes if any(s is not None for s in lanes) else None)
    return result


def check(width, holdback, plan, pushes, where, *, outputs=None, tally=None, late=0, **params):
    """Simulate and compare cycle by cycle and counter by counter (``late``: the records the
    case made late, when ``tally`` is not given)."""
    timing = Timing(plan, width, holdback)
    if outputs is None:
        leaving = iter(plan.expected())
        outputs = [None if d else next(leaving) for d in plan.drop]
    seen, counters = simulate(width, holdback, timing.cycles, pushes, timing.total, **params)
    expected = expected_cycles(timing, width, holdback, outputs)
    for c, (got, want) in enumerate(zip(seen, expected, strict=True)):
        assert got == want, f"{where}: cycle {c}: {got} != {want}"
    assert counters == (tally or {**plan.tally(), "late": late}), where


def traffic_plan(rng, width, n_messages):
    """Generated client traffic judged by the reference ingress: frames of no session are
    mostly dropped, void frames are the ingress's, rejects a random half of the packets it
    could rewrite in place; then a burst of minimum-size frames back to back."""
    frames, sessions = generate(rng, toward_exchange=True, n_messages=n_messages)
    ingress = IngressModel(sessions, toward_exchange=True, width=width)
    plan = Plan()
    for frame, fcs_error in frames:
        result = ingress.frame(frame, fcs_error)
        rejectable = [e.type_offset for e in result.events
                      if e.sb_type == U and e.room and not e.continued]
        add(plan, rng, frame, fcs_error, drop=result.session is None and rng.random() < 0.8,
            void=(result.void or rng.random() < 0.05) and not fcs_error,
            rejects=[x for x in rejectable if rng.random() < 0.5])
    for _ in range(30):
        add(plan, rng, minimum_frame(rng), rng.random() < 0.1, idle=0,
            drop=rng.random() < 0.3, void=rng.random() < 0.3, rejects=[])
    return plan


def add(plan, rng, frame, fcs_error=False, *, drop=False, void=False, rejects=(), idle=None):
    if idle is None:
        idle = 0 if rng.random() < 0.3 else rng.randint(1, 12)
    plan.frames.append((frame, fcs_error))
    plan.idle.append(idle)
    plan.drop.append(drop)
    plan.void.append(void)
    plan.rejects.append(list(rejects))


def client_frame(payload, seq=1000, **options):
    return build_frame(payload, src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02",
                       src_ip="10.1.0.1", dst_ip="10.2.0.1", src_port=40001, dst_port=15000,
                       seq=seq, **options)


def minimum_frame(rng):
    """A pure ACK: 54 bytes of headers padded to the 60-byte minimum."""
    return client_frame(b"", seq=rng.getrandbits(32), flags="A")


def packed_frame(count, spacing=0, **options):
    """``count`` minimum SoupBin U packets (5 bytes each; pairs from 0xFFD0 up, so 0xFFD5 and
    0xFFD6 bracket the end-around carry), each followed by a Debug packet of ``spacing``
    bytes. Without spacing the type bytes are 5 apart: they sit at every lane, two share a
    beat at W = 8 and some pairs straddle two beats. Returns the frame and the type bytes'
    offsets."""
    debug = struct.pack(">H", spacing - 2) + b"+" + b"." * (spacing - 3) if spacing else b""
    packets = [struct.pack(">H", 3) + b"U" + struct.pack(">H", (0xFFD0 + k) % 0x10000) + debug
               for k in range(count)]
    frame = client_frame(b"".join(packets), **options)
    start = parse_frame(frame).payload_offset
    return frame, [start + 2 + (5 + spacing) * k for k in range(count)]


def rejected(frame, offsets):
    for x in offsets:
        frame = reject_in_place(frame, x)
    return frame


# --- the random run ----------------------------------------------------------------------

@pytest.mark.parametrize(("width", "holdback", "n_messages", "n_frames"), [
    (1, None, 360, 300),
    (8, None, 250, 200),
    (8, 60, 150, 100),      # frames leave starting in lane 4 instead of 7
])
def test_generated_traffic(width, holdback, n_messages, n_frames):
    seed = int(os.environ.get("WG_SEED", random.randrange(1 << 32)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    if holdback is None:
        holdback = holdback_bytes(width, 2)
    plan = traffic_plan(rng, width, n_messages)
    while len(plan.frames) < n_frames:     # the generator packs messages per frame at random
        n_messages += n_messages // 4
        plan = traffic_plan(rng, width, n_messages)
    pushes = schedule(plan, Timing(plan, width, holdback), rng)
    check(width, holdback, plan, pushes, f"seed {seed}")


# --- hand-picked cases -------------------------------------------------------------------

def simple_plan(rng, frames, **decisions):
    plan = Plan()
    for k, (frame, rejects) in enumerate(frames):
        add(plan, rng, frame, idle=2, rejects=rejects,
            **{name: k in ks for name, ks in decisions.items()})
    return plan


@pytest.mark.parametrize("width", [1, 8])
@pytest.mark.parametrize("holdback", [47, 50])
def test_packed_packets_every_lane(width, holdback):
    # Type bytes at every lane, two in one beat, pairs straddling beats; records at the
    # latest cycle and at random ones; with VLAN and TCP options shifting the payload.
    rng = random.Random(1)
    frames = [packed_frame(12), packed_frame(9, vlan=3, tcp_options=b"\x01" * 12),
              packed_frame(7, ip_options=b"\x01" * 4)]
    for at_latest in (1.0, 0.0):
        plan = simple_plan(rng, frames)
        pushes = schedule(plan, Timing(plan, width, holdback), rng, at_latest=at_latest)
        check(width, holdback, plan, pushes, f"at_latest={at_latest}")


@pytest.mark.parametrize("width", [1, 8])
def test_back_to_back_minimum_frames(width):
    # 60-byte frames with no idle: at W = 8 with H = 51 every output beat that ends one frame
    # starts the next (lane 3), and drops, voids and bad FCS alternate across them.
    rng = random.Random(2)
    plan = Plan()
    for k in range(40):
        add(plan, rng, minimum_frame(rng), k % 5 == 4, idle=0, drop=k % 3 == 0,
            void=k % 4 == 1)
    check(width, 51, plan, schedule(plan, Timing(plan, width, 51), rng, at_latest=1.0), "b2b")


def late_case(width, holdback, change):
    """Three frames with rejects, all records at the latest cycle, then ``change`` moves or
    removes some; returns the plan and the pushes."""
    rng = random.Random(3)
    frames = [packed_frame(3, spacing=20) for _ in range(3)]
    plan = simple_plan(rng, frames, void=[1])
    timing = Timing(plan, width, holdback)
    pushes = schedule(plan, timing, rng, at_latest=1.0)
    change(pushes)
    return plan, pushes


def moved(stream, index, by):
    """Move the ``index``-th record of ``stream`` by ``by`` cycles (None removes it)."""
    def change(pushes):
        cycle = sorted(pushes[stream])[index]
        record = pushes[stream].pop(cycle)
        if by is not None:
            pushes[stream][cycle + by] = record
    return change


@pytest.mark.parametrize("width", [1, 8])
@pytest.mark.parametrize("by", [1, None])
def test_decision_late_or_missing_drops_the_frame(width, by):
    plan, pushes = late_case(width, 47, moved("frames", 1, by))
    plan.drop[1] = True
    check(width, 47, plan, pushes, f"by={by}", late=1)


@pytest.mark.parametrize("width", [1, 8])
def test_late_decision_does_not_linger(width):
    # Frame 1's decision comes one cycle late, frame 17's (the same tag, 2**4 frames on)
    # never: both frames are dropped; the late record must not stand in for the missing one.
    rng = random.Random(8)
    plan = Plan()
    for _ in range(18):
        add(plan, rng, minimum_frame(rng), idle=rng.randint(0, 3))
    timing = Timing(plan, width, 47)
    pushes = schedule(plan, timing, rng, at_latest=1.0)
    moved("frames", 1, 1)(pushes)
    moved("frames", 17, None)(pushes)
    plan.drop[1] = plan.drop[17] = True
    check(width, 47, plan, pushes, "linger", late=2)


@pytest.mark.parametrize("width", [1, 8])
def test_void_one_cycle_late_is_counted_not_applied(width):
    plan, pushes = late_case(width, 47, moved("void", 0, 1))
    plan.void[1] = False
    check(width, 47, plan, pushes, "void late", late=1)


@pytest.mark.parametrize("width", [1, 8])
def test_reject_one_cycle_late_stomps_its_frame(width):
    # The second reject of frame 0 comes one cycle after its type byte left: the byte
    # leaves as U, the frame (still leaving) ends with error, the third reject still applies.
    plan, pushes = late_case(width, 47, moved("rejects", 1, 1))
    frame, _ = plan.frames[0]
    first, _, third = plan.rejects[0]
    outputs = [(rejected(frame, [first, third]), True), *plan.expected()[1:]]
    tally = plan.tally()
    tally.update(rewritten=tally["rewritten"] - 1, stomped=tally["stomped"] + 1, late=1)
    check(width, 47, plan, pushes, "reject late", outputs=outputs, tally=tally)


@pytest.mark.parametrize("width", [1, 8])
def test_reject_of_a_byte_that_is_not_u_stomps(width):
    rng = random.Random(4)
    frame, rejects = packed_frame(2)
    plan = simple_plan(rng, [(frame, [rejects[0] - 1]), (frame, rejects)])
    pushes = schedule(plan, Timing(plan, width, 47), rng)
    tally = {"rewritten": 2, "dropped": 0, "stomped": 1, "late": 0}
    outputs = [(frame, True), (rejected(frame, rejects), False)]
    check(width, 47, plan, pushes, "not U", outputs=outputs, tally=tally)


def test_gap_inside_a_frame_stomps_a_reject_it_splits():
    # A gap between the two bytes after a type byte (no MAC does this, but if one did, the
    # pair cannot be computed in time): the frame leaves unchanged and stomped.
    rng = random.Random(5)
    frame, rejects = packed_frame(1)
    plan = simple_plan(rng, [(frame, rejects)])
    cycles = mac_cycles(plan, 1)
    gap = positions(cycles)[0, rejects[0] + 2]
    timing = Timing(plan, 1, 47, [*cycles[:gap], None, *cycles[gap:]])
    pushes = schedule(plan, timing, rng, at_latest=1.0)
    seen, counters = simulate(1, 47, timing.cycles, pushes, timing.total)
    assert counters == {"rewritten": 0, "dropped": 0, "stomped": 1, "late": 0}
    got = [slot for beat in seen for slot in beat or () if slot is not None]
    assert (bytes(s.data for s in got), got[-1].error) == (frame, True)


@pytest.mark.parametrize("width", [1, 8])
def test_full_reject_queue_voids_the_frame(width):
    # Two records per way, eight pushed long before their type bytes: those that find their
    # FIFO full void the frame instead, and count as late.
    rng = random.Random(6)
    frame, rejects = packed_frame(8)
    plan = simple_plan(rng, [(frame, rejects)])
    timing = Timing(plan, width, 47)
    depth = 2 * ways(width)
    pushes = {"frames": {0: {"frame": 0, "drop": 0}},
              "rejects": {c: {"frame": 0, "offset": x} for c, x in enumerate(rejects)}}
    seen, counters = simulate(width, 47, timing.cycles, pushes, timing.total,
                              reject_depth=depth)
    assert counters == {"rewritten": depth, "dropped": 0, "stomped": 1,
                        "late": len(rejects) - depth}
    got = [slot for beat in seen for slot in beat or () if slot is not None]
    assert (bytes(s.data for s in got), got[-1].error) == (rejected(frame, rejects[:depth]), True)


# --- the holdback length -----------------------------------------------------------------

def enter_orders_frame(shift):
    """One segment of Enter Orders whose type bytes fall in every lane over a few frames."""
    enter = struct.pack(">cIcI8sQccccc14sH", b"O", 7, b"B", 100, b"AAPL    ", 1_500_000,
                        b"0", b"Y", b"A", b"N", b"N", b"CL1".ljust(14), 0)
    packet = struct.pack(">H", len(enter) + 1) + b"U" + enter
    frame = client_frame(b"\x00\x01R" * shift + packet * 3)
    start = parse_frame(frame).payload_offset + 3 * shift
    return frame, [start + 2 + len(packet) * k for k in range(3)]


@pytest.mark.parametrize("width", [1, 8])
@pytest.mark.parametrize("verdict_latency", [0, 5])
def test_holdback_length_is_exactly_enough(width, verdict_latency):
    # The core's reject for each Enter Order arrives exactly ``verdict_latency`` cycles after
    # the beat holding its settling byte was on the MAC side. With holdback_bytes() every
    # reject is in time; with one byte less some (those whose settling byte starts a beat)
    # are late.
    rng = random.Random(7)
    frames = [enter_orders_frame(shift) for shift in range(8 if width == 8 else 1)]
    for less in (0, 1):
        holdback = holdback_bytes(width, verdict_latency) - less
        plan = simple_plan(rng, frames)
        timing = Timing(plan, width, holdback)
        pushes = schedule(plan, timing, rng, at_latest=0.0)
        pushes["rejects"] = {timing.mac[k, x + SETTLE_DISTANCE] + verdict_latency:
                             {"frame": k, "offset": x}
                             for k, xs in enumerate(plan.rejects) for x in xs}
        if less:
            _, counters = simulate(width, holdback, timing.cycles, pushes, timing.total)
            assert counters["late"] > 0, (holdback, counters)
        else:
            check(width, holdback, plan, pushes, f"H={holdback}")


@pytest.mark.parametrize("width", [1, 8])
@pytest.mark.parametrize("stream", ["frames", "void"])
def test_holdback_length_for_decisions_and_voids(width, stream):
    # Decisions come a fixed latency after the frame's first byte, voids after its last byte;
    # frame lengths cover every lane. The latency is long enough to set H on its own.
    rng = random.Random(11)
    cycles = 60 // width + 6
    lengths = {"decision_latency" if stream == "frames" else "void_latency": cycles}
    for less in (0, 1):
        holdback = holdback_bytes(width, 0, **lengths) - less
        assert holdback + less > holdback_bytes(width, 0)
        bits = tag_bits(width, holdback, frame_slot=60)
        plan = Plan()
        for k in range(16):
            add(plan, rng, client_frame(b"x" * (6 + k % 8)), idle=2, void=stream == "void")
        timing = Timing(plan, width, holdback)
        pushes = earliest_pushes(plan, timing, bits)
        pushes[stream] = {cycle + cycles: record for cycle, record in pushes[stream].items()}
        if less:
            _, counters = simulate(width, holdback, timing.cycles, pushes, timing.total,
                                   tag_bits=bits)
            assert counters["late"] > 0, (holdback, counters)
        else:
            check(width, holdback, plan, pushes, f"H={holdback}", tag_bits=bits)


@pytest.mark.parametrize("width", [1, 8])
def test_reject_depth_is_never_exceeded(width):
    # A long run of rejectable packets, every one rejected as early as possible: one per
    # 5 bytes at W = 1, one per beat at W = 8 (the ingress emits one event per beat).
    rng = random.Random(9)
    holdback = holdback_bytes(width, 2)
    spacing = 0 if width == 1 else 3
    plan = simple_plan(rng, [packed_frame(120, spacing), packed_frame(40, spacing)])
    timing = Timing(plan, width, holdback)
    check(width, holdback, plan, earliest_pushes(plan, timing, TAG_BITS), "depth",
          reject_depth=reject_depth(width, holdback))


@pytest.mark.parametrize("width", [1, 8])
def test_tag_bits_cover_the_shortest_frames(width):
    # One-byte to one-beat frames back to back, decisions and voids as early as possible:
    # the most frames the stream allows between a record and its frame's output.
    rng = random.Random(10)
    holdback = holdback_bytes(width, 2)
    bits = tag_bits(width, holdback, frame_slot=width)
    plan = Plan()
    for _ in range(300 // width):
        add(plan, rng, rng.randbytes(rng.randint(1, width)), rng.random() < 0.2, idle=0,
            drop=rng.random() < 0.3, void=rng.random() < 0.3)
    timing = Timing(plan, width, holdback)
    check(width, holdback, plan, earliest_pushes(plan, timing, bits), f"{bits} bits",
          tag_bits=bits)


@pytest.mark.parametrize(("args", "kwargs", "error", "message"), [
    ((3,), {}, ValueError, "Beat width must be one of (1, 8), not 3"),
    ((8,), {"tag_bits": 1}, ValueError, "Tag width must be at least 2 bits, not 1"),
    ((8,), {"tag_bits": "4"}, TypeError, "Tag width must be an integer, not '4'"),
    ((8,), {"reject_depth": 3}, ValueError,
     "Reject depth must be a positive multiple of 2 at width 8, not 3"),
    ((1,), {"reject_depth": 0}, ValueError,
     "Reject depth must be a positive multiple of 1 at width 1, not 0"),
    ((1,), {"reject_depth": 2.0}, TypeError, "Reject depth must be an integer, not 2.0"),
])
def test_parameter_errors(args, kwargs, error, message):
    with pytest.raises(error) as info:
        Rewrite(*args, **kwargs)
    assert str(info.value) == message
    # The half-built component would warn "created but never used" when collected later.
    del info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()


def test_check_holdback():
    need = holdback_bytes(8, 4, decision_latency=2)
    check_holdback(8, need, 4, decision_latency=2)
    with pytest.raises(ValueError) as info:
        check_holdback(8, need - 1, 4, decision_latency=2)
    assert str(info.value) == f"Holdback of {need - 1} bytes is too short at width 8: these " \
                              f"latencies need {need}"


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: holdback_bytes(8, -1), ValueError, "Verdict latency must be zero or more cycles, "
                                                "not -1"),
    (lambda: holdback_bytes(8, 0, void_latency=1.5), TypeError,
     "Void latency must be an integer number of cycles, not 1.5"),
    (lambda: holdback_bytes(2, 0), ValueError, "Beat width must be one of (1, 8), not 2"),
    (lambda: tag_bits(8, 63, 0), ValueError, "Frame slot must be at least 1 byte time, not 0"),
])
def test_holdback_size_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message
