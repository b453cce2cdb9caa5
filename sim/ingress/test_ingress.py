"""cocotb bench: the whole ingress under Verilator, against the reference extractor.

Parameters arrive as environment variables set by :func:`wiregate.sim.runner.run_bench`:
``WG_WIDTH``, ``WG_DIRECTION`` (``client`` or ``exchange``), ``WG_MESSAGES`` (OUCH messages
per random test), and optionally ``WG_SEED``.
"""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from wiregate.hw.counters import LIVE_BITS
from wiregate.hw.ingress.ingress import LIVE, Ingress
from wiregate.hw.tables import entry_layout
from wiregate.sim.beats import frame_cycles, pack_beat
from wiregate.sim.ingress.scoreboard import IngressScoreboard
from wiregate.sim.layouts import pack
from wiregate.sim.traffic import generate
from wiregate.sw.regmap import RegisterMap

PERIOD_NS = 8
TAIL = Ingress.latency + 3   # idle cycles after the last frame: more than the latency


class TB:
    """Loads the session table, drives frames, feeds every output beat to the scoreboard."""

    def __init__(self, dut):
        self.dut = dut
        self.width = int(os.environ["WG_WIDTH"])
        self.toward_exchange = os.environ["WG_DIRECTION"] == "client"
        self.messages = int(os.environ["WG_MESSAGES"])
        self.seed = int(os.environ.get("WG_SEED") or random.randrange(1 << 32))
        self.rng = random.Random(self.seed)
        self.regmap = RegisterMap()
        dut._log.info("ingress W=%d direction=%s seed=%d", self.width,
                      os.environ["WG_DIRECTION"], self.seed)

    async def start(self, sessions):
        dut = self.dut
        dut.i__valid.value = 0
        dut.i__payload.value = 0
        dut.write_session__en.value = 0
        dut.write_pass_rule__en.value = 0
        dut.swap.value = 0
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        dut.rst.value = 1
        for _ in range(2):
            await FallingEdge(dut.clk)
        dut.rst.value = 0
        layout = entry_layout(self.regmap, "session")
        for k, (client_ip, client_port, exchange_ip, exchange_port) in sessions.items():
            dut.write_session__en.value = 1
            dut.write_session__index.value = k
            dut.write_session__entry.value = pack(layout, dict(
                client_ip=client_ip, client_port=client_port, exchange_ip=exchange_ip,
                exchange_port=exchange_port, valid=1))
            await FallingEdge(dut.clk)
        dut.write_session__en.value = 0
        dut.swap.value = 1
        await FallingEdge(dut.clk)
        dut.swap.value = 0

    async def run(self, frames, sessions, idle):
        """Drive ``frames`` with random idle cycles (probability ``idle``); check them."""
        board = IngressScoreboard(self.width, self.regmap, sessions,
                                  toward_exchange=self.toward_exchange)
        board.expect(frames)
        await self.start(sessions)
        dut = self.dut
        cycles = frame_cycles(frames, self.width, self.rng, idle=idle)
        arrival = beat_arrivals(cycles)
        latencies = set()
        for c in range(len(cycles) + TAIL):
            valid, word = pack_beat(cycles[c] if c < len(cycles) else None)
            dut.i__valid.value = valid
            dut.i__payload.value = word
            await ReadOnly()
            if dut.o__valid.value:
                frame = len(board.seen)
                event = board.observe(int(dut.o__payload.value))
                if event is not None:
                    # Cycles from the beat holding the last needed byte to its event.
                    latencies.add(c - arrival[frame, event["last_offset"] // self.width])
            await FallingEdge(dut.clk)
        line = (f"W={self.width} {os.environ['WG_DIRECTION']}: last needed byte -> event "
                f"{sorted(latencies)} cycles, {len(frames)} frames, {board.messages} messages")
        dut._log.info(line)
        with open("latency.txt", "a") as report:   # in the build folder, for `make bench`
            print(line, file=report)
        problems = board.mismatches()
        assert not problems, f"seed {self.seed}: " + "\n".join(problems)
        # The live counters (the register map's) wrap; the register file sums them.
        expected = {name: count % (1 << LIVE_BITS) if name in LIVE else count
                    for name, count in board.expected_counters().items()}
        counters = {name: int(getattr(dut, f"count_{name}").value) for name in expected}
        assert counters == expected, (
            f"seed {self.seed}: counters {counters} != expected {expected}")
        dut._log.info("%d frames, %d good messages, %d cycles, counters %s", len(frames),
                      board.messages, len(cycles), counters)
        return board


def beat_arrivals(cycles):
    """The input cycle of every beat: (frame number, beat number in the frame) -> cycle."""
    arrival = {}
    frame, beat_no = -1, 0
    for c, beat in enumerate(cycles):
        if beat is None:
            continue
        if beat[0] is not None and beat[0].first:
            frame, beat_no = frame + 1, 0
        arrival[frame, beat_no] = c
        beat_no += 1
    return arrival


@cocotb.test()
async def random_traffic(dut):
    """Random order flow with every kind of trouble, random idle gaps on the input."""
    tb = TB(dut)
    frames, sessions = generate(tb.rng, toward_exchange=tb.toward_exchange,
                                n_messages=tb.messages)
    board = await tb.run(frames, sessions, idle=0.1)
    assert board.messages >= tb.messages * 0.8, f"seed {tb.seed}: traffic too broken"


@cocotb.test()
async def line_rate(dut):
    """Back-to-back frames, no idle cycle at all: nothing is stalled, no event is lost."""
    tb = TB(dut)
    frames, sessions = generate(tb.rng, toward_exchange=tb.toward_exchange,
                                n_messages=max(tb.messages // 10, 500), pack=0.1, split=0.05)
    await tb.run(frames, sessions, idle=0.0)


@cocotb.test()
async def recovers_after_garbage(dut):
    """Garbage of every length (some with bad FCS) between valid traffic: the valid frames
    after it are parsed exactly as the reference parses them."""
    tb = TB(dut)
    frames, sessions = generate(tb.rng, toward_exchange=tb.toward_exchange, n_messages=200,
                                garbage=0.0)
    mixed = []
    for frame in frames:
        for _ in range(tb.rng.choice([0, 0, 1, 3])):
            junk = tb.rng.randbytes(tb.rng.choice([1, 13, 14, 17, 40, 60, 200, 1500]))
            mixed.append((junk[:12] + b"\x88\xb5" + junk[14:], tb.rng.random() < 0.3))
        mixed.append(frame)
    board = await tb.run(mixed, sessions, idle=0.05)
    good_after_junk = sum(1 for evs, _ in board.seen if any(e[5] is None for e in evs))
    assert good_after_junk > 50, f"seed {tb.seed}: too few good frames checked"
