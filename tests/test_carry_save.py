"""carry_save_sum (hw/carry_save.py) against Python's integers: signed and unsigned operands
of several widths, added and subtracted, modulo the result's width."""

import random

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from wiregate.hw.carry_save import carry_save_sum

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
