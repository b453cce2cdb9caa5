"""Event counters as the register map's counters see them."""

from amaranth.hdl import Array, Mux, Signal

__all__ = ["count_amount", "count_event", "count_one_of"]


def count_event(m, counter, event):
    """Add one to ``counter`` on every cycle ``event`` is high, saturating at all ones.

    Saturating, so a flood of bad frames can never wrap a counter back to a small number
    that would look healthy to the host.
    """
    with m.If(event & (counter != (1 << len(counter)) - 1)):
        m.d.sync += counter.eq(counter + 1)


def count_amount(m, counter, amount):
    """Add ``amount`` (events this cycle, possibly several) to ``counter``, saturating."""
    top = (1 << len(counter)) - 1
    with m.If(amount != 0):
        m.d.sync += counter.eq(Mux(counter > top - amount, top, counter + amount))


def count_one_of(m, counters, index, event):
    """Add one to ``counters[index]`` on every cycle ``event`` is high, saturating.

    For counters of which at most one counts in a cycle (one per reason of a reject, say):
    they share one incrementer and its saturation test, behind a pick of the counter. The
    request is registered first, so that the pick and the carry chain start at flip-flops;
    the count lands a cycle after :func:`count_event`'s would.
    """
    valid = Signal()
    at = Signal.like(index)
    m.d.sync += [valid.eq(event), at.eq(index)]
    chosen = Signal.like(counters[0])
    m.d.comb += chosen.eq(Array(counters)[at])
    with m.If(valid & (chosen != (1 << len(chosen)) - 1)):
        m.d.sync += Array(counters)[at].eq(chosen + 1)
