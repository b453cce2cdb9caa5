"""Event counters: saturating ones, and the live counters behind the register map's.

A *live counter* (:func:`live_event`, :func:`live_one_of`) is narrow, :data:`LIVE_BITS`,
and wraps: the register file visits each one every few dozen cycles and adds what it moved
since into a total of the map's :data:`~wiregate.sw.regmap.COUNT_BITS` in LUT RAM, which
saturates. Thirty-six 32-bit incrementers, and the register file's 32-bit copies and select
of them, cost the versa-ecp5 core 1,114 LUT4-equivalents more than this. A live counter
moves by at most :data:`LIVE_STEP` a cycle (one event, or the sum of two live counters),
so :data:`LIVE_BITS` bounds how long the register file may leave one unvisited (it
checks).

The saturating ones (:func:`count_event`, :func:`count_amount`) are for counts read where
they are kept, compared or shown: a flood can never wrap them back to a small number that
looks healthy.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Mux, Signal

from wiregate.sw.regmap import COUNT_BITS

__all__ = ["COUNT_BITS", "LIVE_BITS", "LIVE_STEP", "count_amount", "count_event", "live_event",
           "live_one_of"]

LIVE_BITS = 10
LIVE_STEP = 2


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


def live_event(m, counter, event):
    """Add one to the live counter ``counter`` on every cycle ``event`` is high (wrapping)."""
    with m.If(event):
        m.d.sync += counter.eq(counter + 1)


def live_one_of(m, counters, index, event):
    """Add one to the live counter ``counters[index]`` on every cycle ``event`` is high.

    For counters of which at most one counts in a cycle (one per reason of a reject, say):
    they share one incrementer, behind a pick of the counter. The request is registered
    first, decoded to a flag per counter, so that the pick (an AND-OR over the flags, not a
    multiplexer tree on the index) and the carry chain start at flip-flops; the count lands
    a cycle after :func:`live_event`'s would.
    """
    hits = Signal(len(counters))
    m.d.sync += hits.eq(Cat(event & (index == k) for k in range(len(counters))))
    chosen = Signal.like(counters[0])
    m.d.comb += chosen.eq(reduce(operator.or_, (
        c & hit.replicate(len(c)) for c, hit in zip(counters, hits, strict=True))))
    for counter, hit in zip(counters, hits, strict=True):
        with m.If(hit):
            m.d.sync += counter.eq(chosen + 1)
