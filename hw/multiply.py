"""Pipelined unsigned multiplier, shaped for the ECP5 MULT18X18D DSP blocks."""

from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DSP_WIDTH", "Multiplier", "check_integer"]

# Operand width of one ECP5 MULT18X18D used unsigned: each partial product fits one block.
DSP_WIDTH = 18


def check_integer(name, value, least):
    """Validate an integer parameter (not a bool) of at least ``least``; return it."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, not {value}")
    return value


class Multiplier(wiring.Component):
    """Unsigned product ``a * b``, one result per cycle, ``latency`` cycles after its operands.

    The operands are cut into ``DSP_WIDTH``-bit digits and every pair of digits is
    multiplied on its own, so each partial product is one 18x18 multiply (one MULT18X18D);
    the shifted partial products are then added in the fabric. Registers go, as ``latency``
    allows, on the operands (DSP inputs), on the partial products (DSP outputs) and on the
    sum:

    - ``latency`` 0: no register (combinational);
    - 1: the sum;
    - 2: the operands and the sum;
    - 3: the operands, the partial products and the sum;
    - more: the sum is delayed further, for a caller that needs the result later.

    Why 3 by default, and why primitives on ECP5: a fabric register, a MULT18X18D and a
    fabric register in a row take about 7.1 ns after place and route (nextpnr-ecp5, speed
    grade 6), over the 6.4 ns of 156.25 MHz at any latency, and Yosys' ECP5 flow never moves
    fabric registers into the block. So when ``latency`` is 3 or more and the platform is an
    ECP5, each partial product is an instantiated MULT18X18D whose own input and output
    registers are the operand and partial-product stages (same cycles, same result); on any
    other platform, and in simulation, the same stages are fabric registers and Yosys infers
    the multipliers. Measured for 32x32 at latency 3 on an LFE5U-25F: 135 to 141 MHz
    inferred, 160 to 164 MHz with the primitives (the sum's carry chain is then the limit).

    There is no stall: the order path cannot be held up, so every cycle's operands leave
    ``latency`` cycles later.

    Parameters
    ----------
    a_width, b_width : int
        Operand widths in bits, at least 1.
    latency : int
        Cycles from operands to product, 0 or more (default 3).

    Attributes
    ----------
    a : In(a_width)
    b : In(b_width)
    i_valid : In(1)
        The operands are an item; travels alongside, the product does not depend on it.
    product : Out(a_width + b_width)
        ``a * b`` of the operands presented ``latency`` cycles earlier; exact, never wraps.
    o_valid : Out(1)
        ``i_valid`` of those operands.

    Latency
    -------
    ``latency`` cycles, one item per cycle.
    """

    def __init__(self, a_width, b_width, latency=3):
        self._a_width = check_integer("Operand width", a_width, 1)
        self._b_width = check_integer("Operand width", b_width, 1)
        self._latency = check_integer("Latency", latency, 0)
        super().__init__({
            "a": In(a_width),
            "b": In(b_width),
            "i_valid": In(1),
            "product": Out(a_width + b_width),
            "o_valid": Out(1),
        })

    @property
    def latency(self):
        return self._latency

    def elaborate(self, platform):
        m = Module()
        latency = self._latency

        def register(value, name):
            reg = Signal(len(value), name=name)
            m.d.sync += reg.eq(value)
            return reg

        # Registers before the sum: the operands from latency 2, the partial products from 3.
        before = min(latency - 1, 2) if latency else 0
        on_dsp = before == 2 and getattr(platform, "family", None) == "ecp5"
        a, b = self.a, self.b
        if before >= 1 and not on_dsp:
            a, b = register(a, "a_reg"), register(b, "b_reg")
        partials = []
        for i in range(0, self._a_width, DSP_WIDTH):
            for j in range(0, self._b_width, DSP_WIDTH):
                digit_a, digit_b = a[i:i + DSP_WIDTH], b[j:j + DSP_WIDTH]
                name = f"partial_a{i}_b{j}"
                if on_dsp:
                    partial = _registered_mult18x18d(m, digit_a, digit_b, name)
                elif before == 2:
                    partial = register(digit_a * digit_b, name)
                else:
                    partial = digit_a * digit_b
                partials.append(partial << (i + j))
        product = sum(partials)
        for n in range(latency - before):
            product = register(product[:len(self.product)], f"product{n}")
        m.d.comb += self.product.eq(product)

        valid = self.i_valid
        for n in range(latency):
            valid = register(valid, f"valid{n}")
        m.d.comb += self.o_valid.eq(valid)
        return m


def _registered_mult18x18d(m, a, b, name):
    """``a * b`` (each at most 18 bits) on one MULT18X18D using its input and output
    registers: the product of the operands of two cycles ago. Port and bit order as in
    Yosys' own ECP5 mapping (``lattice/dsp_map_18x18.v``): bit 0 is the least significant.
    """
    product = Signal(2 * DSP_WIDTH, name=name)
    ports = {f"i_A{k}": a[k] if k < len(a) else 0 for k in range(DSP_WIDTH)}
    ports |= {f"i_B{k}": b[k] if k < len(b) else 0 for k in range(DSP_WIDTH)}
    ports |= {f"i_C{k}": 0 for k in range(DSP_WIDTH)}      # the adder input: unused
    ports |= {f"o_P{k}": product[k] for k in range(2 * DSP_WIDTH)}
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
        p_GSR="DISABLED",
        i_SIGNEDA=0, i_SIGNEDB=0, i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal(), i_CE0=1, i_RST0=0,
        **ports)
    return product[:len(a) + len(b)]
