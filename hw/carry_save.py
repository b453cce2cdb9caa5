"""A sum of several operands as one carry chain: carry-save stages in front of one adder."""

from amaranth.hdl import Cat, Const, Value

__all__ = ["carry_save_sum"]


def _extend(value, width):
    """``value`` as ``width`` bits, sign-extended when its shape is signed."""
    value = Value.cast(value)
    top = value[-1] if value.shape().signed else Const(0, 1)
    return Cat(value, top.replicate(max(width - len(value), 0)))[:width]


def carry_save_sum(width, plus, minus=()):
    """The sum of ``plus`` less the sum of ``minus``, modulo ``2 ** width``.

    Written as ``a + b - c - d`` the sum is a carry chain per operand after the first, one
    behind the other; on ECP5 the routing into each chain costs more than the chain. Here
    each operand beyond two is folded in by a carry-save stage (a LUT level: the bits'
    sum and their majority, shifted), and one chain adds the last two. A subtracted
    operand is added inverted; its ``+ 1`` rides in the free low bit of a carry-save
    stage's carries.

    Parameters
    ----------
    width : int
        Bits of the result (each operand is extended or cut to it, by its own shape).
    plus, minus : sequences of Value-castable
        ``plus`` must hold at least one operand.

    Returns
    -------
    Value
        ``width`` bits, unsigned: the two's-complement sum.
    """
    terms = [_extend(t, width) for t in plus] + [~_extend(t, width) for t in minus]
    ones = len(minus)           # the + 1 of each inverted operand
    while len(terms) > 2:
        a, b, c = terms.pop(), terms.pop(), terms.pop()
        low = Const(ones > 0, 1)
        ones -= ones > 0
        terms += [a ^ b ^ c, Cat(low, ((a & b) | (a & c) | (b & c))[:width - 1])]
    total = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    return (total + ones)[:width]
