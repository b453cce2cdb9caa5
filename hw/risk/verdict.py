"""The verdict: every check's reason bit in, accept and the primary reason out."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.reasons import NO_PRIMARY, REASON_BITS

__all__ = ["Verdict"]


class Verdict(wiring.Component):
    """Combine the reason bits: accept when none is set, primary = the lowest set bit.

    Bit ``r`` of ``fires`` is :class:`wiregate.sw.reasons.Reason` ``r``; bit order is
    priority order, so the primary reason is :func:`wiregate.sw.reasons.primary`.

    Attributes
    ----------
    fires : In(REASON_BITS)
        Every check's reason bit.
    reasons : Out(REASON_BITS)
        The reason word: ``fires`` unchanged (every check that fired is reported).
    accept : Out(1)
        No bit is set.
    primary : Out(range(REASON_BITS + 1))
        Index of the lowest set bit; ``NO_PRIMARY`` (= ``REASON_BITS``) on an accept.

    Latency
    -------
    0: combinational.
    """

    fires: In(REASON_BITS)
    reasons: Out(REASON_BITS)
    accept: Out(1)
    primary: Out(range(REASON_BITS + 1))

    def elaborate(self, platform):
        m = Module()
        # As the model: word & -word isolates the lowest set bit; its index is then an OR of
        # the one-hot bits, one OR per index bit, instead of a chain of priority muxes.
        lowest = Signal(REASON_BITS)
        m.d.comb += lowest.eq(self.fires & -self.fires)
        index = Cat(Cat(lowest[r] for r in range(REASON_BITS) if r >> k & 1).any()
                    for k in range((REASON_BITS - 1).bit_length()))
        m.d.comb += [
            self.reasons.eq(self.fires),
            self.accept.eq(self.fires == 0),
            self.primary.eq(Mux(self.fires == 0, NO_PRIMARY, index)),
        ]
        return m
