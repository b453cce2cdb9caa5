"""Whether a sum of terms is positive, in one carry chain however many terms it has.

A check such as ``used + add - released > limit`` written with Amaranth's ``+`` and ``-``
becomes a chain of two-operand adders in Yosys, one carry chain after another: on ECP5 each
is a few nanoseconds of carries and routing. Here the terms are first reduced bit by bit,
three words to two (a sum word and a carry word, one LUT per bit each, all bits at once),
until two words remain, which one carry chain adds; the sign of the sum, less one, says
whether it is positive. (Tried for the execute stage's sums of state and deltas too: 680
LUT4-equivalents more on colorlight-5a75b and no faster after placement; left.)
"""

from amaranth.hdl import Cat, Const, Value

__all__ = ["positive"]


def positive(plus, minus=()):
    """``sum(plus) - sum(minus) > 0``, exact for every value the terms' shapes hold.

    Each term is a value of any shape, signed or not. The words are wide enough that the
    sum never wraps (the widest term, a bit per doubling of the terms' count, and a sign),
    a subtracted term enters as its complement (``-x = ~x + 1``) and the ``+1`` of each,
    less the one that turns ``> 0`` into ``>= 0``, as a constant.
    """
    terms = [Value.cast(v) for v in (*plus, *minus)]
    if not terms:
        raise ValueError("positive() needs at least one term")
    width = max(len(v) for v in terms) + (len(terms) - 1).bit_length() + 1

    def extend(v):
        fill = v[-1] if v.shape().signed else Const(0, 1)
        return Cat(v, fill.replicate(width - len(v)))

    words = [extend(v) for v in terms[:len(plus)]]
    words += [~extend(v) for v in terms[len(plus):]]
    constant = (len(minus) - 1) % (1 << width)     # the sum less one, modulo 2**width
    # A small constant rides in the free low bits of the carry words, one 1 in each (a
    # reduction's carry word has a 0 there): no word of its own, no level of LUTs more.
    ones = constant if constant <= len(words) - 2 else 0
    if constant and not ones:
        words.append(Const(constant, width))
    while len(words) > 2:
        a, b, c = words[:3]
        carry = (a & b) | (a & c) | (b & c)
        low = Const(ones > 0, 1)
        ones = max(ones - 1, 0)
        words = [*words[3:], (a ^ b ^ c)[:width], Cat(low, carry)[:width]]
    total = words[0] if len(words) == 1 else (words[0] + words[1])[:width]
    return ~total[width - 1]
