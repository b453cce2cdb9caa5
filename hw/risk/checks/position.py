"""POSITION, projected long and short: :func:`wiregate.sw.model.position_fires` in gateware."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib.wiring import In

from .quantity import QUANTITY_BITS, Check, check_latency, decide

__all__ = ["POSITION_BITS", "PositionCheck"]

POSITION_BITS = 32      # executed position, signed shares; working quantities unsigned


class PositionCheck(Check):
    """Fires when a share increase takes the projected long or short past its limit.

    Projected long is ``position + working_buy + add_quantity`` (a buy), projected short
    ``working_sell + add_quantity - position`` (a sell side). Each compare is the sign of
    one signed sum of four operands (``max_long - position - working_buy - add_quantity``),
    wide enough for every input the ports admit, so nothing wraps and the hardware equals
    the model exactly. The caller ignores ``fire`` when the symbol is unknown or the order
    has no side (the model does not run the check then).

    Parameters
    ----------
    latency : int
        0 or 1 (default 1), see :func:`~.quantity.check_latency`.

    Attributes
    ----------
    is_buy : In(1)
        Side ``B``; any other valid side (``S``, ``T``, ``E``) is a sell.
    add_quantity : In(QUANTITY_BITS)
        The share increase (an Enter's quantity, a Replace's ``max(0, q2 - q1)``); 0 never
        fires.
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
            "position": In(signed(POSITION_BITS)),
            "working_buy": In(QUANTITY_BITS),
            "working_sell": In(QUANTITY_BITS),
            "max_long": In(32),
            "max_short": In(32),
        }, check_latency(latency))

    def elaborate(self, platform):
        m = Module()
        add, position = self.add_quantity, self.position
        terms = decide(
            m, self._latency,
            is_buy=self.is_buy,
            adds=add != 0,
            long_over=self.max_long - position - self.working_buy - add < 0,
            short_over=self.max_short + position - self.working_sell - add < 0)
        m.d.comb += self.fire.eq(
            terms["adds"] & Mux(terms["is_buy"], terms["long_over"], terms["short_over"]))
        return m
