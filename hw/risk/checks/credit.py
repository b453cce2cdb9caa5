"""CREDIT_SESSION / CREDIT_GATEWAY: :func:`wiregate.sw.model.credit_fires` in gateware.

The core uses one :class:`CreditCheck` for the session's cap and one for the gateway's.
"""

from amaranth.hdl import Module
from amaranth.lib.wiring import In

from ...carry_save import positive
from .notional import NOTIONAL_BITS
from .quantity import Check, check_latency, decide

__all__ = ["CreditCheck"]


class CreditCheck(Check):
    """Fires when a notional increase takes the credit used past a loaded cap.

    The increase is ``add_notional - released`` when positive (an Enter's ``q * p`` with
    nothing released, a Replace's ``q2 * p2`` less its original's charge ``q1 * p1``), and
    ``used + add_notional - released > limit`` is one carry chain over the four terms
    (:func:`~wiregate.hw.carry_save.positive`), beside the one that says whether there is an
    increase: the Replace's difference is not worked out first. Exact for every input the
    ports admit.

    Parameters
    ----------
    latency : int
        0 or 1 (default 1), see :func:`~.quantity.check_latency`.

    Attributes
    ----------
    add_notional : In(NOTIONAL_BITS)
        The notional the order brings (an Enter's ``q * p``, a Replace's ``q2 * p2``).
    released : In(NOTIONAL_BITS)
        The notional it releases (a Replace's original's charge; 0 for an Enter). No
        increase (``add_notional <= released``) never fires.
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
            "used": In(NOTIONAL_BITS),
            "limit": In(64),
            "limit_loaded": In(1),
        }, check_latency(latency))

    def elaborate(self, platform):
        m = Module()
        add, released = self.add_notional, self.released
        terms = decide(m, self._latency,
                       adds=add > released,
                       loaded=self.limit_loaded,
                       over=positive((self.used, add), (released, self.limit)))
        m.d.comb += self.fire.eq(terms["adds"] & terms["loaded"] & terms["over"])
        return m
