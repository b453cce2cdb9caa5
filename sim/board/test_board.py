"""cocotb bench: the board shell over RGMII, both ports, against scapy and zlib.

cocotbext-eth's ``RgmiiSource`` drives each port's receive pins (DDR, data on both edges,
its own RXC), ``RgmiiSink`` reads each port's transmit pins. Frames are built with scapy;
the expectation is independent of the design: the same bytes come out of the other port
(padded to 60 as the source pads them), with an FCS that zlib's CRC-32 accepts, except that
a frame sent with a bad FCS comes out with a bad FCS.

Parameters arrive as environment variables from ``tests/test_board_verilator.py``:
``WG_PPM`` (how much faster the far ends' clocks run than the core clock, parts per
million; negative: slower), ``WG_BURST`` (frames of the saturated burst), ``WG_SEED``.
"""

import os
import random
from itertools import pairwise
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time, get_time_from_sim_steps
from cocotbext.eth import GmiiFrame, RgmiiSink, RgmiiSource
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

CORE_PS = 8000          # 125 MHz
MIN_FRAME = 60          # without FCS
IFG = 12
# Wire bytes of a frame besides its data: preamble and SFD, FCS, inter-frame gap.
OVERHEAD = 8 + 4 + IFG
# Receive FIFO fill at rest while a frame passes (see saturated_burst).
REST = 8 + 3


def _seed() -> int:
    return int(os.environ.get("WG_SEED") or random.randrange(1 << 32))


def scapy_frame(rng: random.Random, size: int) -> bytes:
    """An Ethernet/IPv4/UDP frame of ``size`` bytes (FCS excluded), random payload."""
    head = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=rng.randrange(1024, 65536),
                                                       dport=rng.randrange(1024, 65536)))
    pad = max(0, size - len(head))
    return bytes(head / Raw(rng.randbytes(pad)))[:max(size, len(head))]


def on_wire(data: bytes) -> bytes:
    """What must come out for ``data`` sent: the source pads short frames with zeros."""
    return data.ljust(MIN_FRAME, b"\0")


class TB:
    def __init__(self, dut, ppm: float = 0.0):
        self.dut = dut
        self.log = dut._log
        # The far ends' RXC: ``ppm`` faster than the core clock (a shorter period), in fs.
        rx_fs = round(CORE_PS * 1000 / (1 + ppm * 1e-6))
        self.log.info("core clock %d ps, far-end RXC %d fs (%+g ppm)", CORE_PS, rx_fs, ppm)
        Clock(dut.clk, CORE_PS, unit="ps").start()
        if hasattr(dut, "engine_clk"):      # a core: the engine's clock, half the core's
            Clock(dut.engine_clk, 2 * CORE_PS, unit="ps").start()
        for rxc in (dut.rgmii0__rx_clk, dut.rgmii1__rx_clk):
            Clock(rxc, rx_fs, unit="fs").start()
        self.sources = [RgmiiSource(getattr(dut, f"rgmii{n}__rx_data"),
                                    getattr(dut, f"rgmii{n}__rx_ctl"),
                                    getattr(dut, f"rgmii{n}__rx_clk")) for n in (0, 1)]
        self.sinks = [RgmiiSink(getattr(dut, f"rgmii{n}__tx_data"),
                                getattr(dut, f"rgmii{n}__tx_ctl"), dut.sample_clk)
                      for n in (0, 1)]
        for model in (*self.sources, *self.sinks):
            model.log.setLevel("WARNING")

    async def reset(self):
        self.dut.rst.value = 1
        # The sinks sample a quarter period after the core clock's edges (the TX DELAYG).
        await Timer(CORE_PS // 4, unit="ps")
        Clock(self.dut.sample_clk, CORE_PS, unit="ps").start()
        await ClockCycles(self.dut.clk, 20)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 20)

    async def expect(self, port: int, sent: list[bytes], good: list[bool]) -> list[GmiiFrame]:
        """Receive ``len(sent)`` frames on ``port``; each must be the sent bytes, FCS as told."""
        frames = []
        for i, (data, fcs_good) in enumerate(zip(sent, good, strict=True)):
            frame = await self.sinks[port].recv()
            assert frame.error is None, f"port {port} frame {i}: TX_ER set"
            assert bytes(frame.get_payload()) == on_wire(data), \
                f"port {port} frame {i}: {len(frame.get_payload())} bytes differ from the " \
                f"{len(on_wire(data))} sent"
            assert frame.check_fcs() == fcs_good, \
                f"port {port} frame {i}: FCS {'bad' if fcs_good else 'good'}, expected " \
                f"{'good' if fcs_good else 'bad (stomped)'}"
            frames.append(frame)
        assert self.sinks[port].empty(), f"port {port}: more frames out than in"
        return frames

    def check_quiet(self):
        assert int(self.dut.overflowed.value) == 0, "a receive FIFO overflowed"


def ps(steps: int) -> float:
    """Simulator steps (femtoseconds here) as picoseconds."""
    return get_time_from_sim_steps(steps, "ps")


async def first_cycle(dut, signal, bit: int) -> int:
    """Simulator time of the first core clock edge after which ``signal[bit]`` is high."""
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        if int(signal.value) >> bit & 1:
            return get_sim_time()


def write_result(name: str, text: str):
    """Leave a figure for the pytest runner and docs (``build/sim/board-*/``)."""
    Path(name).write_text(text)
    cocotb.log.info("%s: %s", name, text.strip())


@cocotb.test()
async def frames_both_ways(dut):
    """Random frames on both ports at once come out of the other port unchanged."""
    seed = _seed()
    rng = random.Random(seed)
    dut._log.info("seed %d", seed)
    tb = TB(dut)
    await tb.reset()
    sizes = [[rng.choice([43, 60, 64, 65, 128, 512, 1514]) for _ in range(24)] for _ in (0, 1)]
    sent = [[scapy_frame(rng, s) for s in sizes[n]] for n in (0, 1)]
    # The source sends a copy of the frame; its start time comes back through tx_complete.
    started = []
    core_in = cocotb.start_soon(first_cycle(dut, dut.core_rx_valid, 0))
    core_out = cocotb.start_soon(first_cycle(dut, dut.core_tx_valid, 1))
    for n in (0, 1):
        for i, data in enumerate(sent[n]):
            done = (lambda f: started.append(f.sim_time_start)) if n == 0 and i == 0 else None
            await tb.sources[n].send(GmiiFrame.from_payload(data, tx_complete=done))
    out1 = cocotb.start_soon(tb.expect(1, sent[0], [True] * len(sent[0])))
    out0 = cocotb.start_soon(tb.expect(0, sent[1], [True] * len(sent[1])))
    frames1 = await out1
    await out0
    tb.check_quiet()
    # First bit in to first bit out (preamble to preamble), port 0 to port 1.
    # Wire to core: to the first data byte offered to the core (after the 8 bytes of
    # preamble and SFD, which the core never sees); core to wire: from the first byte the
    # core offers to the first bit of the preamble sent.
    total = ps(frames1[0].sim_time_start - started[0])
    to_core = ps(await core_in - started[0])
    from_core = ps(frames1[0].sim_time_start - await core_out)
    write_result("latency.txt",
                 f"port 0 to port 1, pass-through core: first bit in to first bit out "
                 f"{total / 1000:.1f} ns = {total / CORE_PS:.2f} cycles; wire to core "
                 f"{to_core / CORE_PS:.2f} cycles (8 of them the preamble and SFD); core to "
                 f"wire {from_core / CORE_PS:.2f} cycles; core itself "
                 f"{(total - to_core - from_core) / CORE_PS:.2f} cycles\n")


@cocotb.test()
async def bad_fcs_is_stomped(dut):
    """A frame received with a bad FCS leaves with a bad FCS; its neighbours are intact."""
    rng = random.Random(_seed())
    tb = TB(dut)
    await tb.reset()
    sent = [scapy_frame(rng, s) for s in (100, 100, 60, 1514, 64)]
    good = [True, False, True, False, True]
    for data, fcs_good in zip(sent, good, strict=True):
        frame = GmiiFrame.from_payload(data)
        if not fcs_good:
            frame.data[-1] ^= 0x01      # the last FCS byte, as a bit error on the wire would
        await tb.sources[0].send(frame)
    await tb.expect(1, sent, good)
    tb.check_quiet()


@cocotb.test()
async def back_to_back_minimum_frames(dut):
    """Minimum frames at the minimum gap, through at line rate with the minimum gap out."""
    rng = random.Random(_seed())
    tb = TB(dut)
    await tb.reset()
    count = 300
    sent = [scapy_frame(rng, MIN_FRAME) for _ in range(count)]
    for data in sent:
        await tb.sources[0].send(GmiiFrame.from_payload(data))
    frames = await tb.expect(1, sent, [True] * count)
    tb.check_quiet()
    # Each frame starts exactly one minimum frame time after the one before.
    spacing = {round(ps(b.sim_time_start - a.sim_time_start) / CORE_PS)
               for a, b in pairwise(frames)}
    assert spacing == {MIN_FRAME + OVERHEAD}, f"frame spacing in cycles: {sorted(spacing)}"


@cocotb.test()
async def saturated_burst(dut):
    """A long line-rate burst with the far end's clock offset: no overflow, nothing lost."""
    ppm = float(os.environ.get("WG_PPM", "0"))
    burst = int(os.environ.get("WG_BURST", "100"))
    rng = random.Random(_seed())
    tb = TB(dut, ppm)
    await tb.reset()
    sent = [scapy_frame(rng, 1514) for _ in range(burst)]
    for data in sent:
        await tb.sources[0].send(GmiiFrame.from_payload(data))
    peak = 0

    async def watch():
        nonlocal peak
        while True:
            await RisingEdge(dut.clk)
            peak = max(peak, int(dut.level0.value))

    watcher = cocotb.start_soon(watch())
    await tb.expect(1, sent, [True] * burst)
    watcher.cancel()
    tb.check_quiet()
    wire_bytes = burst * (1514 + OVERHEAD)
    write_result(f"burst{ppm:+g}ppm.txt",
                 f"{ppm:+g} ppm, {burst} frames of 1514 bytes ({wire_bytes} wire bytes): "
                 f"receive FIFO peak {peak} bytes, "
                 f"drift {wire_bytes * abs(ppm) * 1e-6:.1f} bytes\n")
    # At rest the FIFO holds the bytes that arrive while the transmitter sends a preamble
    # (8) and those inside the crossing (3: two Gray-pointer synchroniser stages and the
    # output register); a faster far end adds its drift over the burst, and that drift
    # must show (else the clocks were not offset), a slower one adds nothing.
    drift = wire_bytes * max(ppm, 0) * 1e-6
    assert REST - 1 + int(drift) <= peak <= REST + 1 + int(drift), \
        f"receive FIFO peaked at {peak} bytes, expected {REST} + {drift:.1f}"
