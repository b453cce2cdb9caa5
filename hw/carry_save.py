"""Sums of several terms in one carry chain, and whether such a sum is positive.

``a + b - c - d`` written with Amaranth's ``+`` and ``-`` becomes a chain of two-operand
adders in Yosys, one carry chain behind another: on ECP5 each is a few nanoseconds of
carries and of routing into it. Here the terms are first reduced bit by bit, three words to
two (a sum word and a carry word, one LUT per bit each, all bits at once), until two words
remain, which one carry chain adds. A subtracted term enters as its complement
(``-x = ~x + 1``); the ``+ 1`` of each, and any small constant, rides in the free low bit
of the reductions' carry words, one 1 in each (no word of its own, no level of LUTs more).
"""

from amaranth.hdl import Cat, Const, Value

__all__ = ["carry_save_sum", "positive"]


def carry_save_sum(width, plus, minus=(), constant=0):
    """``sum(plus) - sum(minus) + constant`` modulo ``2 ** width``, in one carry chain.

    Each term is a value of any shape, signed or not, extended (or cut) to ``width`` bits by
    its own shape. Returns ``width`` bits, unsigned: the two's-complement sum.
    """
    terms = [Value.cast(v) for v in (*plus, *minus)]
    if not terms:
        raise ValueError("carry_save_sum() needs at least one term")

    def extend(v):
        fill = v[-1] if v.shape().signed else Const(0, 1)
        return Cat(v, fill.replicate(max(width - len(v), 0)))[:width]

    words = [extend(v) for v in terms[:len(plus)]]
    words += [~extend(v) for v in terms[len(plus):]]
    constant = (len(minus) + constant) % (1 << width)
    ones = constant if constant <= len(words) - 2 else 0
    if constant and not ones:
        words.append(Const(constant, width))
    while len(words) > 2:
        a, b, c = words[:3]
        carry = (a & b) | (a & c) | (b & c)
        low = Const(ones > 0, 1)
        ones = max(ones - 1, 0)
        words = [*words[3:], (a ^ b ^ c)[:width], Cat(low, carry)[:width]]
    return words[0] if len(words) == 1 else (words[0] + words[1])[:width]


def positive(plus, minus=()):
    """``sum(plus) - sum(minus) > 0``, exact for every value the terms' shapes hold.

    The words are wide enough that the sum never wraps (the widest term, a bit per doubling
    of the terms' count, and a sign); the sign of the sum less one says whether it is
    positive.
    """
    terms = [Value.cast(v) for v in (*plus, *minus)]
    if not terms:
        raise ValueError("positive() needs at least one term")
    width = max(len(v) for v in terms) + (len(terms) - 1).bit_length() + 1
    return ~carry_save_sum(width, plus, minus, constant=-1)[width - 1]
