"""cocotb bench: the board shell with the gateway core, RGMII on both ports and the control
stream over the UART pins.

The host end of the UART is modelled here at exactly 3 Mbaud (the FTDI's rate; the gateway's
bit time is 42 core cycles, 2.976 Mbaud), 8N1, from the bit-level definition; the frames are
built and checked with :mod:`wiregate.sw.control`, the expected register contents come from
:mod:`wiregate.sw.regmap`, Ethernet frames from scapy with zlib's CRC-32 as in
``test_board.py``. Parameters (``WG_*``) come from ``tests/test_board_verilator.py``.
"""

import random

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, Timer
from cocotbext.eth import GmiiFrame

from wiregate.sw.control import (
    Command,
    FrameReader,
    Kind,
    Status,
    decode_frame,
    decode_outbound,
    encode_command,
    latch_command,
    stuff,
    table_write,
)
from wiregate.sw.dropcopy import Control, Record

from .gateway_regmap import bench_regmap
from .test_board import CORE_PS, TB, _seed, ps, scapy_frame, write_result

BIT_FS = round(1e15 / 3e6)      # the host's bit time at 3 Mbaud, femtoseconds


class UartHost:
    """The host's end of the control UART: bytes out on ``uart_rx``, frames in from
    ``uart_tx`` (responses in ``responses``, drop-copy records in ``records``)."""

    def __init__(self, dut):
        self.dut = dut
        dut.uart_rx.value = 1
        self.reader = FrameReader()
        self.responses, self.records = [], []
        self.framing_errors = 0
        self.sequence = 0
        cocotb.start_soon(self._receive())

    async def send(self, data: bytes):
        for byte in data:
            for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                self.dut.uart_rx.value = bit
                await Timer(BIT_FS, unit="fs")

    async def _receive(self):
        line = self.dut.uart_tx
        while True:
            await FallingEdge(line)
            await Timer(BIT_FS // 2, unit="fs")
            if int(line.value):
                continue        # not a start bit
            byte = 0
            for i in range(8):
                await Timer(BIT_FS, unit="fs")
                byte |= int(line.value) << i
            await Timer(BIT_FS, unit="fs")
            if not int(line.value):
                self.framing_errors += 1
                continue
            for frame, ok in self.reader.feed(bytes([byte])):
                assert ok, "an invalid SLIP escape from the gateway"
                out = decode_outbound(decode_frame(frame))
                (self.records if isinstance(out, Record) else self.responses).append(out)

    async def command(self, frame: bytes):
        """Send one command frame (already carrying ``self.sequence``), wait for its response."""
        count = len(self.responses)
        await self.send(stuff(frame))
        for _ in range(400):
            if len(self.responses) > count:
                break
            await Timer(10 * BIT_FS, unit="fs")
        assert len(self.responses) == count + 1, f"no response to {frame.hex()}"
        response = self.responses[-1]
        assert response.sequence == self.sequence
        assert response.status is Status.OK, f"{Kind(frame[1]).name}: {response.status.name}"
        self.sequence += 1
        return response

    async def read(self, address: int, count: int) -> tuple[int, ...]:
        response = await self.command(encode_command(Command.READ, self.sequence,
                                                      address=address, count=count))
        return response.words

    async def write(self, address: int, words: list[int]):
        await self.command(encode_command(Command.WRITE, self.sequence, words,
                                          address=address))


@cocotb.test()
async def control_over_uart(dut):
    """Identify, a register written and read back, a table write and a commit, a kill and
    its release: each answered OK over the UART and seen in the gateway's state."""
    regmap = bench_regmap()
    tb = TB(dut)
    host = UartHost(dut)
    await tb.reset()
    expected = regmap.expected_id()
    ids = await host.read(0, len(expected))
    assert dict(zip(expected, ids, strict=True)) == expected

    scratch = regmap.register("scratch").address
    await host.write(scratch, [0x0000C0DB])         # END and ESC inside: SLIP escapes
    assert await host.read(scratch, 1) == (0x0000C0DB,)

    status, epoch = regmap.register("status").address, regmap.register("epoch").address
    loaded = 1 << regmap.register("status").field("limits_loaded").offset
    assert (await host.read(status, 1))[0] & loaded == 0
    await host.command(table_write(regmap, host.sequence, "gateway_limits", 0, [
        {"credit": 1_000_000, "heartbeat_timeout_us": 0, "reference_max_age_us": 0}]))
    await host.command(encode_command(Command.COMMIT, host.sequence))
    await ClockCycles(dut.clk, 100)
    assert (await host.read(status, 1))[0] & loaded
    assert await host.read(epoch, 1) == (1,)

    assert int(dut.kill.value) == 0
    await host.command(latch_command(Command.KILL, host.sequence, "gateway"))
    assert int(dut.kill.value) == 1
    assert await host.read(regmap.register("kill_gateway_set").address, 1) == (1,)
    await host.command(latch_command(Command.RELEASE, host.sequence, "gateway"))
    assert int(dut.kill.value) == 0
    sent = [Control.COMMIT, Control.KILL, Control.RELEASE]
    # The records queue behind the trackers' SESSION_SYNC records, about 700 bits a frame.
    for _ in range(100):
        if any(r.control is Control.RELEASE for r in host.records):
            break
        await Timer(100 * BIT_FS, unit="fs")
    controls = [r.control for r in host.records if r.control in sent]
    assert controls == sent, controls
    assert host.framing_errors == 0


@cocotb.test()
async def exchange_frames_to_clients(dut):
    """Frames from the exchange reach the clients unchanged through the paced gateway; one
    with a bad FCS leaves stomped; back to back minimum frames keep line rate."""
    rng = random.Random(_seed())
    tb = TB(dut)
    UartHost(dut)
    await tb.reset()
    sizes = [rng.choice([60, 64, 128, 512, 1514]) for _ in range(12)] + [60] * 40
    sent = [scapy_frame(rng, s) for s in sizes]
    good = [True] * len(sent)
    good[3] = False
    started = []
    for i, (data, fcs_good) in enumerate(zip(sent, good, strict=True)):
        frame = GmiiFrame.from_payload(data, tx_complete=(
            lambda f: started.append(f.sim_time_start)) if i == 0 else None)
        if not fcs_good:
            frame.data[-1] ^= 0x01
        await tb.sources[1].send(frame)
    frames = await tb.expect(0, sent, good)
    tb.check_quiet()
    assert int(dut.fail_closed.value) == 0
    total = ps(frames[0].sim_time_start - started[0])
    write_result("latency.txt",
                 f"port 1 to port 0, gateway core (W = 1, small tables), frame from an idle "
                 f"line: first bit in to first bit out {total / 1000:.1f} ns = "
                 f"{total / CORE_PS:.2f} cycles\n")
