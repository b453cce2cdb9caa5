"""Event counters as the register map's counters see them."""

from amaranth.hdl import Mux

__all__ = ["count_amount", "count_event"]


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
