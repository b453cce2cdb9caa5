"""NOTIONAL, quantity x price per order: :func:`wiregate.sw.model.notional_fires` in gateware."""

from amaranth.hdl import Module, Signal
from amaranth.lib.wiring import In, Out

from ...ingress.ouch_extract import PRICE_BITS
from ...multiply import Multiplier, check_integer
from .quantity import QUANTITY_BITS, Check, decide, limit_members

__all__ = ["NOTIONAL_BITS", "NotionalCheck"]

NOTIONAL_BITS = QUANTITY_BITS + PRICE_BITS     # holds every product: never wraps


class NotionalCheck(Check):
    """Fires when ``quantity * price`` is above a loaded per-order notional limit.

    The product comes from a pipelined :class:`~wiregate.hw.multiply.Multiplier`; the limits
    and their loaded bits travel beside it through as many registers, so the caller presents
    an order and its limits in one cycle and reads ``fire`` ``latency`` cycles later, one
    order per cycle. The product is exact (``NOTIONAL_BITS`` wide), so the compare is exact
    for every input the ports admit.

    With ``latency`` 1 or more the two 64-bit compares are registered (as the other checks
    at latency 1, see :func:`~.quantity.check_latency`) and the multiplier gets the rest:
    the default 4 is the multiplier's 3, what ECP5 needs at 156.25 MHz, plus the compare.

    Parameters
    ----------
    regmap : RegisterMap
        Gives the layouts of the limit entries.
    latency : int
        Cycles from order to ``fire``, 0 or more (default 4): the compare's register, when
        there is one, and the multiplier's (see :class:`~wiregate.hw.multiply.Multiplier`).

    Attributes
    ----------
    quantity : In(QUANTITY_BITS)
    price : In(PRICE_BITS)
    symbol : In(symbol_limits entry)
        Only ``max_order_notional`` is read; compared only when ``symbol_known``.
    symbol_known : In(1)
        The symbol is in the committed limits (model: ``symbol is not None``).
    session : In(session_limits entry)
        Only ``max_order_notional`` is read; compared only when ``session_loaded``.
    session_loaded : In(1)
        The session is in the committed limits (model: ``session is not None``).
    fire : Out(1)
        The NOTIONAL reason bit of the order presented ``latency`` cycles earlier.
    fire_without_symbol : Out(1)
        The bit as if the symbol were unknown (see :class:`~.quantity.QuantityCheck`).
    notional : Out(NOTIONAL_BITS)
        ``quantity * price`` of that order, for the engine's credit and charges.

    Latency
    -------
    ``latency`` cycles, one order per cycle.

    With ``limits_late`` the limits (``symbol``, ``symbol_known``, ``session``,
    ``session_loaded``) are taken when the product is ready, ``latency - 1`` cycles after the
    operands (the whole latency at 0), instead of with them: the engine knows the order's
    operands cycles before it has read its symbol's limits.
    """

    def __init__(self, regmap, latency=4, *, limits_late=False):
        members = {"quantity": In(QUANTITY_BITS), "price": In(PRICE_BITS),
                   **limit_members(regmap), "fire_without_symbol": Out(1),
                   "notional": Out(NOTIONAL_BITS)}
        check_integer("Latency", latency, 0)
        self._compare_latency = min(latency, 1)
        self._multiplier = Multiplier(QUANTITY_BITS, PRICE_BITS, latency - self._compare_latency)
        self._limits_late = bool(limits_late)
        super().__init__(members, latency)

    def elaborate(self, platform):
        m = Module()
        m.submodules.multiplier = multiplier = self._multiplier
        m.d.comb += [multiplier.a.eq(self.quantity), multiplier.b.eq(self.price)]

        def delayed(value, name):
            if self._limits_late:
                return value
            for n in range(self._multiplier.latency):
                reg = Signal(len(value), name=f"{name}_d{n}")
                m.d.sync += reg.eq(value)
                value = reg
            return value

        symbol_limit = delayed(self.symbol.max_order_notional, "symbol_limit")
        symbol_known = delayed(self.symbol_known, "symbol_known")
        session_limit = delayed(self.session.max_order_notional, "session_limit")
        session_loaded = delayed(self.session_loaded, "session_loaded")
        notional = multiplier.product
        terms = decide(m, self._compare_latency,
                       above_symbol=symbol_known & (notional > symbol_limit),
                       above_session=session_loaded & (notional > session_limit))
        product = decide(m, self._compare_latency, product=notional)["product"]
        m.d.comb += [
            self.fire.eq(terms["above_symbol"] | terms["above_session"]),
            self.fire_without_symbol.eq(terms["above_session"]),
            self.notional.eq(product),
        ]
        return m
