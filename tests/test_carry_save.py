"""hw/carry_save.py against Python's integers: carry_save_sum over signed and unsigned operands
of several widths, added and subtracted, modulo the result's width; positive exactly."""

import random

import pytest
from amaranth.hdl import Module, Shape, Signal, signed, unsigned
from amaranth.sim import Simulator

from wiregate.hw.carry_save import carry_save_sum, positive

WIDTH = 12
SHAPES = [8, signed(10), 12, signed(12), 14]     # narrower, as wide and wider than WIDTH


@pytest.mark.parametrize("n_plus, n_minus", [(1, 0), (2, 0), (3, 0), (2, 1), (2, 2), (1, 3),
                                             (4, 2)])
def test_carry_save_sum_is_the_sum_modulo_its_width(n_plus, n_minus):
    rng = random.Random(n_plus * 10 + n_minus)
    plus = [Signal(rng.choice(SHAPES), name=f"p{k}") for k in range(n_plus)]
    minus = [Signal(rng.choice(SHAPES), name=f"m{k}") for k in range(n_minus)]
    total = Signal(WIDTH)
    m = Module()
    m.d.comb += total.eq(carry_save_sum(WIDTH, plus, minus))

    def extremes(s):
        shape = s.shape()
        low = -(1 << (shape.width - 1)) if shape.signed else 0
        return low, low + (1 << shape.width) - 1

    async def bench(ctx):
        for trial in range(300):
            values = []
            for s in plus + minus:
                low, high = extremes(s)
                # the first trials put every operand at an extreme (all carries, all borrows)
                values.append(rng.choice((low, high)) if trial < 40 else rng.randint(low, high))
                ctx.set(s, values[-1])
            # an operand wider than WIDTH counts modulo 2 ** WIDTH, like the result
            expected = sum(values[:n_plus]) - sum(values[n_plus:])
            assert ctx.get(total) == expected % (1 << WIDTH), values

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("n_plus, n_minus", [
    (1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (2, 2), (3, 2), (2, 3), (1, 4), (4, 4), (0, 6)])
def test_positive_against_python(n_plus, n_minus):
    # Every count of subtracted terms makes another constant (all ones, 0, small ones that
    # ride in the carry words' low bits, or one too large for them): signed and unsigned
    # terms of different widths, at their extremes and at random, against Python's sum.
    shapes = [(signed(5), unsigned(4), unsigned(6), signed(3))[k % 4]
              for k in range(n_plus + n_minus)]
    terms = [Signal(shape, name=f"t{k}") for k, shape in enumerate(shapes)]
    m = Module()
    out = Signal()
    m.d.comb += out.eq(positive(terms[:n_plus], terms[n_plus:]))
    rng = random.Random(n_plus * 10 + n_minus)

    def extremes(shape):
        s = Shape.cast(shape)
        lo, hi = (-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1) if s.signed \
            else (0, (1 << s.width) - 1)
        return lo, hi

    vectors = [[extremes(s)[e >> k & 1] for k, s in enumerate(shapes)]
               for e in range(1 << len(shapes))]
    vectors += [[rng.randint(*extremes(s)) for s in shapes] for _ in range(3000)]

    async def testbench(ctx):
        for values in vectors:
            for term, value in zip(terms, values, strict=True):
                ctx.set(term, value)
            expected = sum(values[:n_plus]) - sum(values[n_plus:]) > 0
            assert ctx.get(out) == expected, f"{values}"

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
