"""cocotb bench: the holdback delay line under Verilator, against the plain delay model.

Parameters arrive as environment variables set by :func:`wiregate.sim.runner.run_bench`:
``WG_WIDTH``, ``WG_DELAY``, and optionally ``WG_SEED`` and ``WG_FRAMES``.
"""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, Timer

from wiregate.sim.beats import (
    delay_cycles,
    frame_cycles,
    frames_from_cycles,
    pack_beat,
    random_frames,
    unpack_beat,
)

PERIOD_NS = 8


class TB:
    """Drives beats into the holdback and records what leaves, one cycle at a time."""

    def __init__(self, dut):
        self.dut = dut
        self.width = int(os.environ["WG_WIDTH"])
        self.delay = int(os.environ["WG_DELAY"])
        self.seed = int(os.environ.get("WG_SEED") or random.randrange(1 << 32))
        self.rng = random.Random(self.seed)
        # H = 0 is a plain wire: the Verilog has no clock, so the bench steps time instead.
        self.clocked = self.delay > 0
        dut._log.info("holdback W=%d H=%d seed=%d", self.width, self.delay, self.seed)

    async def start(self):
        self.dut.i__valid.value = 0
        self.dut.i__payload.value = 0
        if self.clocked:
            cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
            self.dut.rst.value = 1
            for _ in range(2):
                await FallingEdge(self.dut.clk)
            self.dut.rst.value = 0

    async def next_cycle(self):
        if self.clocked:
            await FallingEdge(self.dut.clk)
        else:
            await Timer(PERIOD_NS, unit="ns")

    async def run(self, cycles, total):
        """Drive ``cycles`` (then idle) for ``total`` cycles; return the output cycles."""
        seen = []
        for c in range(total):
            await self.next_cycle()
            valid, word = pack_beat(cycles[c] if c < len(cycles) else None)
            self.dut.i__valid.value = valid
            self.dut.i__payload.value = word
            await ReadOnly()
            seen.append(unpack_beat(int(self.dut.o__valid.value),
                                    int(self.dut.o__payload.value), self.width))
        return seen


def first_byte_times(cycles, width):
    """Byte time (cycle * W + lane) of every frame's first byte."""
    return [c * width + lane for c, beat in enumerate(cycles) for lane, slot in
            enumerate(beat or ()) if slot is not None and slot.first]


@cocotb.test()
async def random_frames_with_gaps(dut):
    """Random frames of 1..1600 bytes with random idle gaps, checked cycle by cycle."""
    tb = TB(dut)
    await tb.start()
    frames = random_frames(tb.rng, int(os.environ.get("WG_FRAMES", "40")))
    cycles = frame_cycles(frames, tb.width, tb.rng, idle=0.2)
    total = len(cycles) + tb.delay // tb.width + 2
    expected = delay_cycles(cycles, tb.width, tb.delay, total)

    seen = await tb.run(cycles, total)

    mismatches = [c for c in range(total) if seen[c] != expected[c]]
    assert not mismatches, (f"seed {tb.seed}: {len(mismatches)} cycles differ, first at "
                            f"{mismatches[0]}: {seen[mismatches[0]]} != {expected[mismatches[0]]}")
    assert frames_from_cycles(seen) == frames, f"seed {tb.seed}: frames differ"

    # The observed delay, measured on the wire independently of the model.
    times_in = first_byte_times(cycles, tb.width)
    times_out = first_byte_times(seen, tb.width)
    delays = {b - a for a, b in zip(times_in, times_out, strict=True)}
    assert delays == {tb.delay}, f"seed {tb.seed}: observed delays {delays} bytes"
    dut._log.info("observed delay: %d bytes = %.3f cycles (%d frames, %d cycles)",
                  tb.delay, tb.delay / tb.width, len(frames), total)


@cocotb.test()
async def back_to_back_short_frames(dut):
    """Frames of 1..20 bytes with no idle: frame ends and starts share beats after the delay."""
    tb = TB(dut)
    await tb.start()
    frames = random_frames(tb.rng, 200, max_len=20)
    cycles = frame_cycles(frames, tb.width, tb.rng, idle=0.0)
    total = len(cycles) + tb.delay // tb.width + 2
    seen = await tb.run(cycles, total)
    assert seen == delay_cycles(cycles, tb.width, tb.delay, total), f"seed {tb.seed}"
    assert frames_from_cycles(seen) == frames, f"seed {tb.seed}"
