"""pack/unpack of packed layouts, against Amaranth's simulator reading and driving the same
layout through a wire."""

import random

import pytest
from amaranth.hdl import Elaboratable, Module, Shape, Signal, Value, signed
from amaranth.lib import data, enum
from amaranth.sim import Simulator

from wiregate.hw.ingress.tcp_tracker import tracked_beat_layout
from wiregate.hw.stream import beat_layout
from wiregate.sim.layouts import pack, unpack
from wiregate.sw.regmap import RegisterMap


class Colour(enum.Enum, shape=3):
    RED = 1
    BLUE = 6


class Level(enum.Enum, shape=signed(4)):
    LOW = -5
    HIGH = 3


# Every kind of field a port can hold: plain, range, signed, enum, arrays of structs, an
# array of arrays, a union, and a struct nested two deep. (A signed enum is left out here:
# Amaranth 0.5's View cannot index one inside a layout, so the simulator cannot check it.)
MIXED = data.StructLayout({
    "flag": 1,
    "count": range(1000),
    "delta": signed(7),
    "colour": Colour,
    "beat": beat_layout(8),
    "grid": data.ArrayLayout(data.ArrayLayout(signed(3), 2), 3),
    "either": data.UnionLayout({"wide": 10, "narrow": signed(4), "pair": data.ArrayLayout(2, 2)}),
    "outer": data.StructLayout({"inner": data.StructLayout({"x": 5, "y": signed(1)}), "z": 2}),
})

LAYOUTS = {
    "mixed": MIXED,
    "beat1": beat_layout(1),
    "tracked8": tracked_beat_layout(8, RegisterMap()),
}


class Wire(Elaboratable):
    """A pass-through: ``o`` is ``i``, so reading ``o`` sees what was driven into ``i``."""

    def __init__(self, layout):
        self.i = Signal(layout)
        self.o = Signal(layout)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(self.i)
        return m


def leaves(view, path=()):
    """(path, leaf view or value) for every leaf of a View, walked with Amaranth's indexing."""
    layout = view.shape()
    for key, field in layout:
        child = view[key]
        if isinstance(field.shape, data.Layout):
            yield from leaves(child, (*path, key))
        else:
            yield (*path, key), child


def at(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def run(layout, testbench):
    dut = Wire(layout)
    sim = Simulator(dut)

    async def bench(ctx):
        await testbench(ctx, dut)

    sim.add_testbench(bench)
    sim.run()


def random_tree(layout, rng):
    """A random value for every field, as pack takes it; a union gets one field."""
    if isinstance(layout, data.UnionLayout):
        key, field = rng.choice(list(layout))
        return {key: random_leaf(field.shape, rng)}
    values = {key: random_leaf(field.shape, rng) for key, field in layout}
    return list(values.values()) if isinstance(layout, data.ArrayLayout) else values


def random_leaf(shape, rng):
    if isinstance(shape, data.Layout):
        return random_tree(shape, rng)
    if isinstance(shape, enum.EnumMeta):
        return rng.choice(list(shape))
    shape = Shape.cast(shape)
    if shape.signed:
        return rng.randrange(-(1 << shape.width - 1), 1 << shape.width - 1)
    return rng.randrange(1 << shape.width)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_unpack_matches_simulator(name):
    layout = LAYOUTS[name]
    rng = random.Random(1)
    words = [0, (1 << layout.size) - 1] + [rng.getrandbits(layout.size) for _ in range(20)]

    async def testbench(ctx, dut):
        for word in words:
            ctx.set(dut.i.as_value(), word)
            fields = unpack(layout, ctx.get(dut.o.as_value()))
            for path, leaf in leaves(dut.o):
                # Value.cast gives the field's own slice: signed for signed fields, the
                # underlying integer for enum-shaped ones.
                assert at(fields, path) == ctx.get(Value.cast(leaf)), (hex(word), path)

    run(layout, testbench)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_pack_matches_simulator(name):
    layout = LAYOUTS[name]
    rng = random.Random(2)

    async def testbench(ctx, dut):
        for _ in range(20):
            tree = random_tree(layout, rng)
            # Drive each leaf through Amaranth's own View indexing, read the whole word back.
            ctx.set(dut.i.as_value(), 0)
            for path, leaf in leaves(dut.i):
                try:
                    value = at(tree, path)
                except KeyError:
                    continue           # the union fields not chosen
                ctx.set(leaf, value)
            word = ctx.get(dut.o.as_value())
            assert pack(layout, tree) == word, tree
            # And Amaranth's constant builder agrees too.
            assert layout.const(tree).as_bits() == word, tree

    run(layout, testbench)


def test_round_trip_without_unions():
    layout = tracked_beat_layout(1, RegisterMap())
    rng = random.Random(3)
    for _ in range(50):
        word = rng.getrandbits(layout.size)
        assert pack(layout, unpack(layout, word)) == word


def test_values_come_back_as_ints():
    fields = unpack(MIXED, pack(MIXED, {"colour": Colour.BLUE, "delta": -64, "flag": True}))
    assert (fields["colour"], fields["delta"], fields["flag"]) == (6, -64, 1)
    assert type(fields["colour"]) is int
    assert fields["either"] == {"wide": 0, "narrow": 0, "pair": [0, 0]}
    assert len(fields["beat"]) == 8 and fields["beat"][3]["keep"] == 0


def test_signed_enum():
    layout = data.StructLayout({"pad": 3, "level": Level})
    assert pack(layout, {"level": Level.LOW}) == 0b1011 << 3     # -5 in 4 bits
    assert unpack(layout, 0b1011 << 3) == {"pad": 0, "level": -5}
    assert layout.const({"level": Level.LOW}).as_bits() == 0b1011 << 3


def test_pack_shortcuts():
    # Missing fields and trailing array elements are 0; an int or a Const stands for a
    # nested layout's raw bits.
    beat = beat_layout(8)
    lane = beat.elem_shape
    first = pack(beat, [{"data": 0x41, "keep": 1, "first": 1}])
    assert first == 0x41 | 1 << lane["keep"].offset | 1 << lane["first"].offset
    assert pack(beat, [pack(lane, {"data": 0x41, "keep": 1, "first": 1})]) == first
    assert pack(beat, [lane.const({"data": 0x41, "keep": 1, "first": 1})]) == first
    assert pack(beat, beat.const([{"data": 0x41, "keep": 1, "first": 1}])) == first


@pytest.mark.parametrize(("value", "error"), [
    ({"flg": 1}, KeyError),                                  # a typo
    ({"flag": 2}, ValueError),                               # out of range
    ({"delta": -65}, ValueError),
    ({"delta": 64}, ValueError),
    ({"count": 1024}, ValueError),                           # range(1000) is 10 bits
    ({"beat": [{}] * 9}, ValueError),                        # an array of 8
    ({"either": {"wide": 1, "narrow": 1}}, ValueError),      # two fields of a union
    ({"outer": {"inner": [1, 2]}}, TypeError),               # a list for a struct
    ({"grid": {0: [1, 1]}}, TypeError),                      # a dict for an array
    ({"count": "3"}, TypeError),
    ({"beat": beat_layout(1).const([{}])}, ValueError),      # another layout's constant
])
def test_pack_rejects(value, error):
    with pytest.raises(error):
        pack(MIXED, value)


def test_unpack_rejects_a_wider_value():
    with pytest.raises(ValueError):
        unpack(MIXED, 1 << MIXED.size)
    with pytest.raises(ValueError):
        unpack(MIXED, -1)
