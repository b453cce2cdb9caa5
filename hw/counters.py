"""Event counters as the register map's counters see them."""

import operator
from functools import reduce

from amaranth.hdl import Cat, Mux, Signal

from wiregate.sw.regmap import COUNT_BITS

__all__ = ["COUNT_BITS", "count_amount", "count_event", "count_one_of"]


def _plus_one(m, value):
    """``value + 1`` and whether ``value`` is all ones: the adder's carry out is the test
    (a compare of every bit beside the adder cost a third of it again)."""
    more = Signal(len(value) + 1)
    m.d.comb += more.eq(value + 1)
    return more[:-1], more[-1]


def count_event(m, counter, event):
    """Add one to ``counter`` on every cycle ``event`` is high, saturating at all ones.

    Saturating, so a flood of bad frames can never wrap a counter back to a small number
    that would look healthy to the host.
    """
    following, full = _plus_one(m, counter)
    with m.If(event & ~full):
        m.d.sync += counter.eq(following)


def count_amount(m, counter, amount):
    """Add ``amount`` (events this cycle, possibly several) to ``counter``, saturating."""
    top = (1 << len(counter)) - 1
    with m.If(amount != 0):
        m.d.sync += counter.eq(Mux(counter > top - amount, top, counter + amount))


def count_one_of(m, counters, index, event):
    """Add one to ``counters[index]`` on every cycle ``event`` is high, saturating.

    For counters of which at most one counts in a cycle (one per reason of a reject, say):
    they share one incrementer, behind a pick of the counter. The request is registered
    first, decoded to a flag per counter, so that the pick (an AND-OR over the flags, not a
    multiplexer tree on the index) and the carry chain start at flip-flops; the count lands
    a cycle after :func:`count_event`'s would.
    """
    hits = Signal(len(counters))
    m.d.sync += hits.eq(Cat(event & (index == k) for k in range(len(counters))))
    chosen = Signal.like(counters[0])
    m.d.comb += chosen.eq(reduce(operator.or_, (
        c & hit.replicate(len(c)) for c, hit in zip(counters, hits, strict=True))))
    following, full = _plus_one(m, chosen)
    for counter, hit in zip(counters, hits, strict=True):
        with m.If(hit & ~full):
            m.d.sync += counter.eq(following)
