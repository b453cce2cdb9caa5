"""SoupBin framing and OUCH extraction through the whole ingress under the Amaranth simulator,
against the reference extractor (wiregate.sw.extract) on generated traffic. The Verilator
bench (sim/ingress) runs the same scoreboard over many more messages."""

import random

import pytest
from amaranth.sim import Simulator

from wiregate.hw.ingress.ingress import Ingress
from wiregate.sim.beats import frame_cycles, pack_beat
from wiregate.sim.ingress.scoreboard import IngressScoreboard
from wiregate.sim.traffic import generate
from wiregate.sw.regmap import RegisterMap

REGMAP = RegisterMap()
TAIL = Ingress.latency + 3   # idle cycles after the last frame: more than the latency


def run(width, toward_exchange, frames, sessions, rng):
    dut = Ingress(width, REGMAP, toward_exchange=toward_exchange)
    board = IngressScoreboard(width, REGMAP, sessions, toward_exchange=toward_exchange)
    board.expect(frames)
    counters = {}

    async def testbench(ctx):
        for k, (client_ip, client_port, exchange_ip, exchange_port) in sessions.items():
            ctx.set(dut.write_session.en, 1)
            ctx.set(dut.write_session.index, k)
            ctx.set(dut.write_session.entry, dict(
                client_ip=client_ip, client_port=client_port, exchange_ip=exchange_ip,
                exchange_port=exchange_port, valid=1))
            await ctx.tick()
        ctx.set(dut.write_session.en, 0)
        ctx.set(dut.swap, 1)
        await ctx.tick()
        ctx.set(dut.swap, 0)
        cycles = frame_cycles(frames, width, rng, idle=0.1)
        for c in range(len(cycles) + TAIL):
            valid, word = pack_beat(cycles[c] if c < len(cycles) else None)
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload.as_value(), word)
            await ctx.tick()
            if ctx.get(dut.o.valid):
                board.observe(ctx.get(dut.o.payload.as_value()))
        for name in board.expected_counters():
            counters[name] = ctx.get(getattr(dut, f"count_{name}"))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return board, counters


@pytest.mark.parametrize("toward_exchange", [True, False], ids=["client", "exchange"])
@pytest.mark.parametrize("width", [1, 8])
def test_extraction_matches_reference(width, toward_exchange):
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    frames, sessions = generate(rng, toward_exchange=toward_exchange, n_messages=250)
    board, counters = run(width, toward_exchange, frames, sessions, rng)
    assert not board.mismatches(), f"seed {seed}: {board.mismatches()}"
    assert counters == board.expected_counters(), f"seed {seed}"
    # Most of the traffic must be good messages, or the comparison proves little.
    assert board.messages > 150, f"seed {seed}"
