"""The UART under the Amaranth simulator against a bit-level expectation written here:
8N1, a start bit (0), eight data bits least significant first, a stop bit (1), idle high."""

import random

import pytest
from amaranth.sim import Simulator

from wiregate.hw.board.uart_bridge import UartBridge, uart_divisor
from wiregate.hw.board.uart_rx import UartRx
from wiregate.hw.board.uart_tx import UartTx

CORE_S = 8e-9
DIVISOR = uart_divisor(125e6)


def line_bits(byte: int, stop: int = 1) -> list[int]:
    """The ten bits of one 8N1 character, in the order they are on the line."""
    return [0, *((byte >> i) & 1 for i in range(8)), stop]


def test_divisor_for_3_mbaud():
    assert DIVISOR == 42
    with pytest.raises(ValueError, match="cannot make 3000000 baud"):
        uart_divisor(5e6)       # 1.67 cycles a bit: 2 is 17 % off


def test_tx_waveform():
    rng = random.Random(1)
    sent = [0x00, 0xFF, 0xC0, 0xDB] + [rng.randrange(256) for _ in range(8)]
    dut = UartTx(DIVISOR)
    sim = Simulator(dut)
    sim.add_clock(CORE_S)
    line = []

    async def feed(ctx):
        for byte in sent:
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def watch(ctx):
        for _ in range((len(sent) * 10 + 4) * DIVISOR):
            await ctx.tick()
            line.append(ctx.get(dut.tx))

    sim.add_testbench(feed)
    sim.add_testbench(watch)
    sim.run()
    start = line.index(0)
    assert set(line[:start]) <= {1}
    expected = [bit for byte in sent for bit in line_bits(byte) for _ in range(DIVISOR)]
    assert line[start:start + len(expected)] == expected     # back to back, each bit 42 cycles
    assert set(line[start + len(expected):]) == {1}           # then idle


def drive(ctx, rx, characters, bit_s):
    """Coroutine: put ``characters`` (lists of bits) on ``rx`` at ``bit_s`` a bit."""
    async def run():
        await ctx.delay(5 * bit_s)
        for bits in characters:
            for bit in bits:
                ctx.set(rx, bit)
                await ctx.delay(bit_s)
            ctx.set(rx, 1)
            await ctx.delay(bit_s)      # one bit of idle between characters
    return run()


@pytest.mark.parametrize("offset", [-0.03, 0.0, 0.03])
def test_rx_bytes_at_a_baud_off_by(offset):
    """Bytes sent 3 % fast or slow arrive; a character with a low stop bit is counted and
    dropped, and the byte after it arrives."""
    rng = random.Random(2)
    data = [rng.randrange(256) for _ in range(12)]
    characters = [line_bits(b) for b in data[:6]] + [line_bits(0x55, stop=0)] \
        + [line_bits(b) for b in data[6:]]
    bit_s = DIVISOR * CORE_S / (1 + offset)

    async def send(ctx, rx):
        await drive(ctx, rx, characters, bit_s)

    cycles = round((len(characters) * 11 + 8) * bit_s / CORE_S)
    assert receive(send, cycles) == (data, 1)


def receive(send, cycles):
    """Run ``send(ctx, rx)`` against a :class:`UartRx` for ``cycles``: the bytes out and the
    framing error count."""
    dut = UartRx(DIVISOR)
    sim = Simulator(dut)
    sim.add_clock(CORE_S)
    got = []

    async def watch(ctx):
        for _ in range(cycles):
            await ctx.tick()
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
        got.append(ctx.get(dut.framing_errors))

    async def line(ctx):
        await send(ctx, dut.rx)

    sim.add_testbench(line)
    sim.add_testbench(watch)
    sim.run()
    return got[:-1], got[-1]


def test_rx_ignores_a_glitch():
    """A low pulse shorter than half a bit is no start bit."""
    async def send(ctx, rx):
        await ctx.tick().repeat(10)
        ctx.set(rx, 0)
        await ctx.tick().repeat(DIVISOR // 4)
        ctx.set(rx, 1)
        await ctx.tick().repeat(3 * DIVISOR)
        await drive(ctx, rx, [line_bits(0xA7)], DIVISOR * CORE_S)

    assert receive(send, 25 * DIVISOR) == ([0xA7], 0)


def test_bridge_counts_bytes_a_full_fifo_drops():
    """With the control port not ready, the FIFO keeps the first bytes and counts the rest."""
    data = [0xC0, 0x11, 0x22, 0x33, 0x44, 0x55]
    depth = 4
    dut = UartBridge(DIVISOR, fifo_depth=depth)
    sim = Simulator(dut)
    sim.add_clock(CORE_S)
    got = []

    async def send(ctx):
        await drive(ctx, dut.rx, [line_bits(b) for b in data], DIVISOR * CORE_S)

    async def watch(ctx):
        await ctx.tick().repeat((len(data) * 11 + 8) * DIVISOR)
        got.append(ctx.get(dut.overflows))
        ctx.set(dut.host_in.ready, 1)
        for _ in range(2 * depth + 4):
            if ctx.get(dut.host_in.valid):
                got.append(ctx.get(dut.host_in.payload))
            await ctx.tick()

    sim.add_testbench(send)
    sim.add_testbench(watch)
    sim.run()
    assert got == [len(data) - depth, *data[:depth]]
