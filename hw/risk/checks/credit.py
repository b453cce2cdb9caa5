"""CREDIT_SESSION / CREDIT_GATEWAY: :func:`wiregate.sw.model.credit_fires` in gateware.

The core uses one :class:`CreditCheck` for the session's cap and one for the gateway's.
"""

from amaranth.hdl import Module, Mux
from amaranth.lib.wiring import In

from ...carry_save import positive
from .notional import NOTIONAL_BITS
from .quantity import Check, check_latency, decide

__all__ = ["CreditCheck"]


class CreditCheck(Check):
    """Fires when a notional increase takes the credit used past a loaded cap.

    The increase is ``add_notional - released`` when positive (a Replace's ``q2 * p2`` less
    its live original's charge ``q1 * p1``), else ``add_notional`` whole (an Enter's
    ``q * p``, a Replace of an unknown original). ``used + add_notional - released > limit``
    is one carry chain over the four terms (:func:`~wiregate.hw.carry_save.positive`),
    beside the one that says whether there is an increase: the Replace's difference is not
    worked out first. Exact for every input the ports admit.

    Parameters
    ----------
    latency : int
        0 or 1 (default 1), see :func:`~.quantity.check_latency`.

    Attributes
    ----------
    add_notional : In(NOTIONAL_BITS)
        The notional the order brings (an Enter's ``q * p``, a Replace's ``q2 * p2``).
    released : In(NOTIONAL_BITS)
        The notional the order's original would release (its charge ``q1 * p1``), counted
        only while ``releasing``. No increase (``add_notional <= released``) never fires.
    releasing : In(1)
        The order releases ``released``: a Replace whose original is live. Otherwise (an
        Enter, a Replace of an order the gate does not know) the increase is the whole
        ``add_notional``. Both answers are worked out, each one carry chain, and this bit
        picks one: the original's liveness, known late at EXEC, gates one bit, not the 64 of
        a term.
    used : In(NOTIONAL_BITS)
        Credit used so far (working plus executed notional).
    limit : In(64)
        The cap (session_limits or gateway_limits ``credit``).
    limit_loaded : In(1)
        The cap is in the committed limits (model: ``limit is not None``).
    fire : Out(1)
        The CREDIT_SESSION or CREDIT_GATEWAY reason bit.

    Latency
    -------
    ``latency`` cycles, one order per cycle.
    """

    def __init__(self, latency=1):
        super().__init__({
            "add_notional": In(NOTIONAL_BITS),
            "released": In(NOTIONAL_BITS),
            "releasing": In(1),
            "used": In(NOTIONAL_BITS),
            "limit": In(64),
            "limit_loaded": In(1),
        }, check_latency(latency))

    def elaborate(self, platform):
        m = Module()
        add, released = self.add_notional, self.released
        terms = decide(m, self._latency,
                       releasing=self.releasing,
                       loaded=self.limit_loaded,
                       adds_over=add > released,
                       over=positive((self.used, add), (released, self.limit)),
                       adds_whole=add.any(),
                       over_whole=positive((self.used, add), (self.limit,)))
        m.d.comb += self.fire.eq(terms["loaded"] & Mux(
            terms["releasing"], terms["adds_over"] & terms["over"],
            terms["adds_whole"] & terms["over_whole"]))
        return m
