"""The pipelined multiplier under the Amaranth simulator against Python's product, and its
ECP5 mapping under Yosys synth_ecp5."""

import gc
import math
import random
import re
import warnings
from types import SimpleNamespace

import pytest
from amaranth.hdl import ClockSignal, Const, Fragment, Instance, Module, UnusedElaboratable
from amaranth.sim import Simulator

from wiregate.hw.multiply import DSP_WIDTH, Multiplier
from wiregate.sim.synth import synthesize


def operand(rng, width):
    """Extremes and digit boundaries (where the partial products meet) or uniform."""
    top = (1 << width) - 1
    special = [0, 1, top, top - 1, 1 << (width - 1)]
    for edge in range(DSP_WIDTH, width, DSP_WIDTH):
        special += [(1 << edge) - 1, 1 << edge, ((1 << edge) - 1) << (width - edge)]
    return rng.choice(special) if rng.random() < 0.4 else rng.getrandbits(width)


def check_multiplier(a_width, b_width, latency, seed, n=500, idle=0.3):
    rng = random.Random(seed)
    items = [(operand(rng, a_width), operand(rng, b_width), int(rng.random() >= idle))
             for _ in range(n)]
    dut = Multiplier(a_width, b_width, latency)
    assert dut.latency == latency
    assert len(dut.product) == a_width + b_width

    async def testbench(ctx):
        for c in range(n + latency):
            if c < n:
                a, b, valid = items[c]
                ctx.set(dut.a, a)
                ctx.set(dut.b, b)
                ctx.set(dut.i_valid, valid)
            got = (ctx.get(dut.product), ctx.get(dut.o_valid))
            if c >= latency:
                a, b, valid = items[c - latency]
                assert got == (a * b, valid), f"seed {seed}: item {c - latency}: {a} * {b}"
            else:   # the pipeline is filling: nothing valid comes out of reset
                assert got[1] == 0, f"seed {seed}: cycle {c}"
            if latency:
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9, if_exists=True)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("latency", [0, 1, 2, 3, 4, 6])
def test_32x32(latency):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_multiplier(32, 32, latency, seed)


@pytest.mark.parametrize(("a_width", "b_width"), [
    (1, 1), (18, 18), (19, 17), (36, 36), (37, 5), (7, 64), (64, 64),
])
def test_widths(a_width, b_width):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_multiplier(a_width, b_width, 3, seed, n=300)


def test_back_to_back():
    # Every cycle carries an item: one result per cycle, none lost or repeated.
    check_multiplier(32, 32, 3, seed=5, n=400, idle=0.0)


def test_default_latency():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        assert Multiplier(32, 32).latency == 3
        gc.collect()


# MULT18X18D register settings the latency account needs (the pipeline register is off).
_REGISTERS = {"REG_INPUTA_CLK": "CLK0", "REG_INPUTB_CLK": "CLK0", "REG_PIPELINE_CLK": "NONE",
              "REG_OUTPUT_CLK": "CLK0"}


class _OnEcp5(Multiplier):
    """Elaborated as for an ECP5 board (``synthesize`` exports without a platform)."""

    def elaborate(self, platform):
        return super().elaborate(SimpleNamespace(family="ecp5"))


def digit_products(a_width, b_width):
    """Bits of every 18x18 partial product, from the digit widths alone."""
    digits_a = [min(DSP_WIDTH, a_width - i) for i in range(0, a_width, DSP_WIDTH)]
    digits_b = [min(DSP_WIDTH, b_width - j) for j in range(0, b_width, DSP_WIDTH)]
    return sum(x + y for x in digits_a for y in digits_b)


def test_ecp5_blocks():
    # No simulation model of the MULT18X18D exists here, so its configuration is checked
    # against the latency account and Lattice's port names: operands registered (A, B) and
    # product registered (output), no pipeline register: the operand and partial-product
    # stages, 2 of the 3 cycles. Every bit is traced: operand bit n reaches port A(n - i) of
    # each block of digit i and no other port, and P(k) is bit k of the partial product.
    dut = _OnEcp5(32, 32, 3)
    blocks = {name: sub for sub, name, _ in Fragment.get(dut, None).subfragments
              if isinstance(sub, Instance)}
    assert len(blocks) == 4
    for block in blocks.values():
        assert block.type == "MULT18X18D"
        assert {k: block.parameters.get(k, "NONE") for k in _REGISTERS} == _REGISTERS
        ports = {port: value for port, (value, _direction) in block.ports.items()}
        assert isinstance(ports["CLK0"], ClockSignal) and ports["CLK0"].domain == "sync"
        for port, tied in [("SIGNEDA", 0), ("SIGNEDB", 0), ("SOURCEA", 0), ("SOURCEB", 0),
                           ("CE0", 1), ("RST0", 0)]:
            assert isinstance(ports[port], Const) and ports[port].value == tied, port

    async def testbench(ctx):
        for name, block in blocks.items():
            i, j = map(int, re.fullmatch(r"partial_a(\d+)_b(\d+)", name).groups())
            for operand_port, letter, digit in ((dut.a, "A", i), (dut.b, "B", j)):
                for n in range(len(operand_port)):
                    ctx.set(dut.a, 0)
                    ctx.set(dut.b, 0)
                    ctx.set(operand_port, 1 << n)
                    high = {port for port, (value, _) in block.ports.items()
                            if port[0] == letter and port[1:].isdigit() and ctx.get(value)}
                    inside = digit <= n < digit + DSP_WIDTH
                    expected = {f"{letter}{n - digit}"} if inside else set()
                    assert high == expected, (name, letter, n)
            partial = block.ports["P0"][0].value
            for k in range(2 * DSP_WIDTH):
                ctx.set(partial, 0)
                ctx.set(block.ports[f"P{k}"][0], 1)
                assert ctx.get(partial) == 1 << k, (name, k)

    sim = Simulator(Module())      # only wires are traced: the instances are never run
    sim.add_testbench(testbench)
    sim.run()


def test_ecp5_cells(tmp_path):
    # One partial product per MULT18X18D. In the fabric flow every stage is flip-flops;
    # on ECP5 the operand and partial-product stages are the blocks' own registers, so only
    # the sum and the valid bits remain in the fabric.
    a_width = b_width = 32
    blocks = math.ceil(a_width / DSP_WIDTH) * math.ceil(b_width / DSP_WIDTH)
    fabric = synthesize(Multiplier(a_width, b_width, 3), "mul", tmp_path / "fabric")
    ecp5 = synthesize(_OnEcp5(a_width, b_width, 3), "mul", tmp_path / "ecp5")
    for counts in (fabric, ecp5):
        assert counts["MULT18X18D"] == blocks, counts
        assert not [cell for cell in counts if cell.startswith("$")], counts
    product_and_valid = a_width + b_width + 3
    assert ecp5["TRELLIS_FF"] == product_and_valid, ecp5
    assert fabric["TRELLIS_FF"] == (product_and_valid + a_width + b_width
                                    + digit_products(a_width, b_width)), fabric


@pytest.mark.parametrize(("args", "error", "message"), [
    ((0, 32), ValueError, "Operand width must be at least 1, not 0"),
    ((32, "32"), TypeError, "Operand width must be an integer, not '32'"),
    ((32, 32, -1), ValueError, "Latency must be at least 0, not -1"),
    ((32, 32, True), TypeError, "Latency must be an integer, not True"),
])
def test_parameter_errors(args, error, message):
    with pytest.raises(error) as info:
        Multiplier(*args)
    assert str(info.value) == message
    del info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()
