"""QUANTITY, the fat-finger check: :func:`wiregate.sw.model.quantity_fires` in gateware.

Also what every check of this package shares: the :class:`Check` base (``fire`` and
``latency``), the choice of latency (:func:`check_latency`, :func:`decide`), the limit-entry
ports and the quantity's width.
"""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.limits import OUCH_MAX_QUANTITY
from wiregate.sw.regmap import RegisterMap

from ...ingress.ouch_extract import FIELD_SIZES
from ...multiply import check_integer
from ...tables import entry_layout

__all__ = ["QUANTITY_BITS", "Check", "QuantityCheck", "check_latency", "decide", "limit_members"]

QUANTITY_BITS = 8 * FIELD_SIZES["quantity"]    # the OUCH wire field


def check_latency(latency):
    """Validate a stateless check's latency and return it.

    0: combinational. 1: the compares are registered and ``fire`` is one LUT after them.
    Why 1 exists: on ECP5 after place and route (nextpnr-ecp5, speed grade 6), each check
    of this package between input and output registers runs at 132 to 151 MHz at latency
    0, enough for 125 MHz (1 GbE) but not for 156.25 MHz (10 GbE), and at 167 to 170 MHz
    at latency 1.
    """
    if check_integer("Latency", latency, 0) > 1:
        raise ValueError(f"Latency must be 0 or 1, not {latency}")
    return latency


def decide(m, latency, **terms):
    """Each term as a signal of its width, registered when ``latency`` is 1; by name."""
    signals = {name: Signal(len(Value.cast(term)), name=name) for name, term in terms.items()}
    m.d["sync" if latency else "comb"] += [signals[name].eq(term) for name, term in terms.items()]
    return signals


def limit_members(regmap):
    """Ports of a check that reads the order's symbol and session limit entries."""
    if not isinstance(regmap, RegisterMap):
        raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
    return {
        "symbol": In(entry_layout(regmap, "symbol_limits")),
        "symbol_known": In(1),
        "session": In(entry_layout(regmap, "session_limits")),
        "session_loaded": In(1),
    }


class Check(wiring.Component):
    """A check: its ``members`` plus the reason bit ``fire``, ``latency`` cycles after them."""

    def __init__(self, members, latency):
        self._latency = latency
        super().__init__({**members, "fire": Out(1)})

    @property
    def latency(self):
        return self._latency


class QuantityCheck(Check):
    """Fires for a quantity of 0, above OUCH's bound, or above a loaded per-order limit.

    Unsigned compares only: exact for every input the ports admit.

    Parameters
    ----------
    regmap : RegisterMap
        Gives the layouts of the limit entries.
    latency : int
        0 or 1 (default 1), see :func:`check_latency`.

    Attributes
    ----------
    quantity : In(QUANTITY_BITS)
        The order's quantity (a Replace's new total quantity).
    symbol : In(symbol_limits entry)
        The order's symbol's limits; compared only when ``symbol_known``.
    symbol_known : In(1)
        The symbol is in the committed limits (model: ``symbol is not None``).
    session : In(session_limits entry)
        The session's limits; compared only when ``session_loaded``.
    session_loaded : In(1)
        The session is in the committed limits (model: ``session is not None``).
    fire : Out(1)
        The QUANTITY reason bit.
    fire_without_symbol : Out(1)
        The bit as if the symbol were unknown: the engine learns only at its execute stage
        whether a Replace's original (and so its symbol) is still there.

    Latency
    -------
    ``latency`` cycles, one order per cycle.
    """

    def __init__(self, regmap, latency=1):
        super().__init__({"quantity": In(QUANTITY_BITS), **limit_members(regmap),
                          "fire_without_symbol": Out(1)}, check_latency(latency))

    def elaborate(self, platform):
        m = Module()
        q = self.quantity
        terms = decide(
            m, self._latency,
            zero=q == 0,
            above_ouch=q > OUCH_MAX_QUANTITY,
            above_symbol=self.symbol_known & (q > self.symbol.max_order_quantity),
            above_session=self.session_loaded & (q > self.session.max_order_quantity))
        m.d.comb += [
            self.fire.eq(Cat(*terms.values()).any()),
            self.fire_without_symbol.eq(terms["zero"] | terms["above_ouch"]
                                        | terms["above_session"]),
        ]
        return m
