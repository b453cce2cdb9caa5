"""FramePacer under the Amaranth simulator: a FIFO full of frames comes out whole, one byte a
cycle within a frame, and each frame starts no sooner than the transmit MAC can take it (the
previous frame padded to 60 bytes, plus preamble, FCS and gap: 24 byte times)."""

import random
from itertools import pairwise

from amaranth.sim import Simulator

from wiregate.hw.board.frame_pacer import FramePacer

WIRE_OVERHEAD = 8 + 4 + 12      # preamble and SFD, FCS, inter-frame gap (IEEE 802.3)
PAD_TO = 60


def run(frames: list[bytes]) -> list[tuple[int, int, int, int]]:
    """Offer ``frames`` as a full FIFO would (``valid`` while bytes remain); return
    (cycle, byte, first, last) per byte out."""
    dut = FramePacer()
    sim = Simulator(dut)
    sim.add_clock(8e-9)
    queue = [(b, i == 0, i == len(f) - 1) for f in frames for i, b in enumerate(f)]
    out = []

    async def bench(ctx):
        cycle, taken = 0, 0
        while taken < len(queue) or cycle < 200:
            if taken < len(queue):
                byte, first, last = queue[taken]
                lane = dut.i.payload[0]
                ctx.set(dut.i.valid, 1)
                ctx.set(lane.data, byte)
                ctx.set(lane.first, first)
                ctx.set(lane.last, last)
                ctx.set(lane.keep, 1)
            else:
                ctx.set(dut.i.valid, 0)
            await ctx.delay(1e-9)       # let the combinational ready settle
            if ctx.get(dut.o.valid):
                o = ctx.get(dut.o.payload[0])
                out.append((cycle, o.data, o.first, o.last))
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                taken += 1
            await ctx.tick()
            cycle += 1

    sim.add_testbench(bench)
    sim.run()
    return out


def split(out):
    frames, current = [], []
    for item in out:
        current.append(item)
        if item[3]:
            frames.append(current)
            current = []
    assert not current
    return frames


def test_frames_whole_and_spaced_for_the_wire():
    rng = random.Random(3)
    sent = [rng.randbytes(rng.choice([1, 5, 43, 60, 61, 200])) for _ in range(30)]
    frames = split(run(sent))
    assert [bytes(b for _, b, _, _ in f) for f in frames] == sent
    for f in frames:
        assert [c for c, *_ in f] == list(range(f[0][0], f[0][0] + len(f)))   # no gaps
        assert f[0][2] == 1 and all(first == 0 for _, _, first, _ in f[1:])
    for a, b in pairwise(frames):
        # The transmitter is free again this many cycles after a frame's first byte.
        assert b[0][0] - a[0][0] == max(len(a), PAD_TO) + WIRE_OVERHEAD


def test_a_frame_waits_for_the_preamble_time_of_bytes():
    # A frame offered from idle is held 8 cycles (the transmitter's preamble) before it moves.
    (frame,) = split(run([bytes(range(64))]))
    assert frame[0][0] == 8
