"""POSITION, projected long and short: :func:`wiregate.sw.model.position_fires` in gateware."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib.wiring import In

from ...carry_save import positive
from .quantity import QUANTITY_BITS, Check, check_latency, decide

__all__ = ["POSITION_BITS", "PositionCheck"]

POSITION_BITS = 32      # executed position, signed shares; working quantities unsigned


class PositionCheck(Check):
    """Fires when a share increase takes the projected long or short past its limit.

    The increase is ``add_quantity - released`` when positive (an Enter's quantity with
    nothing released, a Replace's ``q2`` less its original's ``q1``). Projected long is
    ``position + working_buy + increase`` (a buy), projected short ``working_sell + increase
    - position`` (a sell side). Each compare is one carry chain over the five terms
    (:func:`~wiregate.hw.carry_save.positive`), wide enough for every input the ports admit, so
    nothing wraps and the hardware equals the model exactly. The caller ignores ``fire`` when the
    symbol is unknown or the order has no side (the model does not run the check then).

    Parameters
    ----------
    latency : int
        0 or 1 (default 1), see :func:`~.quantity.check_latency`.

    Attributes
    ----------
    is_buy : In(1)
        Side ``B``; any other valid side (``S``, ``T``, ``E``) is a sell.
    add_quantity : In(QUANTITY_BITS)
        The shares the order brings (an Enter's quantity, a Replace's ``q2``).
    released : In(QUANTITY_BITS)
        The shares it releases (a Replace's original's ``q1``; 0 for an Enter). No increase
        (``add_quantity <= released``) never fires.
    position : In(signed(POSITION_BITS))
    working_buy, working_sell : In(QUANTITY_BITS)
    max_long, max_short : In(32)
        The symbol's limits (symbol_limits).
    fire : Out(1)
        The POSITION reason bit.

    Latency
    -------
    ``latency`` cycles, one order per cycle.
    """

    def __init__(self, latency=1):
        super().__init__({
            "is_buy": In(1),
            "add_quantity": In(QUANTITY_BITS),
            "released": In(QUANTITY_BITS),
            "position": In(signed(POSITION_BITS)),
            "working_buy": In(QUANTITY_BITS),
            "working_sell": In(QUANTITY_BITS),
            "max_long": In(32),
            "max_short": In(32),
        }, check_latency(latency))

    def elaborate(self, platform):
        m = Module()
        add, released, position = self.add_quantity, self.released, self.position
        terms = decide(
            m, self._latency,
            is_buy=self.is_buy,
            adds=add > released,
            long_over=positive((position, self.working_buy, add),
                               (released, self.max_long)),
            short_over=positive((self.working_sell, add),
                                (released, position, self.max_short)))
        m.d.comb += self.fire.eq(
            terms["adds"] & Mux(terms["is_buy"], terms["long_over"], terms["short_over"]))
        return m
