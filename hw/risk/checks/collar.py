"""COLLAR, the price band around a fresh reference: :func:`wiregate.sw.model.collar_fires`."""

from amaranth.hdl import Module
from amaranth.lib.wiring import In

from ...ingress.ouch_extract import PRICE_BITS
from ...timebase import TIME_BITS
from .quantity import Check, check_latency, decide

__all__ = ["CollarCheck"]


class CollarCheck(Check):
    """Fires for no reference, a stale one, a price outside the band, or a price of 0.

    The caller feeds the order's symbol's reference, stamp and band (symbol_limits) and the
    gateway's ``reference_max_age_us``, and ignores ``fire`` when the symbol is unknown (the
    model does not run the check then).

    Each compare is the sign of one signed sum wide enough for every input the ports admit:
    ``now - reference_stamp > max_age`` as ``reference_stamp + max_age - now < 0`` (a stamp
    in the future is a negative age, never stale, as in the model), and
    ``|price - reference| > collar`` as two such sums. No input makes the hardware differ
    from the model.

    Parameters
    ----------
    latency : int
        0 or 1 (default 1), see :func:`~.quantity.check_latency`.

    Attributes
    ----------
    price : In(PRICE_BITS)
    reference : In(32)
        Reference price; 0 means none (fires). As wide as the host's reference update
        (``ref_price``); the committed one (``reference_price``) is 31 bits.
    collar : In(31)
        Band either side of the reference, in price units (at most an OUCH price).
    reference_stamp : In(TIME_BITS)
        Time the reference was set, microseconds.
    now : In(TIME_BITS)
        Time of the order, microseconds.
    max_age : In(32)
        ``reference_max_age_us``; 0: a reference never goes stale.
    fire : Out(1)
        The COLLAR reason bit.

    Latency
    -------
    ``latency`` cycles, one order per cycle.
    """

    def __init__(self, latency=1):
        super().__init__({
            "price": In(PRICE_BITS),
            "reference": In(32),
            "collar": In(31),
            "reference_stamp": In(TIME_BITS),
            "now": In(TIME_BITS),
            "max_age": In(32),
        }, check_latency(latency))

    def elaborate(self, platform):
        m = Module()
        price, reference, collar = self.price, self.reference, self.collar
        terms = decide(
            m, self._latency,
            no_reference=reference == 0,
            ages=self.max_age != 0,
            older=self.reference_stamp + self.max_age - self.now < 0,
            below=price + collar - reference < 0,
            above=reference + collar - price < 0,
            zero_price=price == 0)
        m.d.comb += self.fire.eq(terms["no_reference"] | (terms["ages"] & terms["older"])
                                 | terms["below"] | terms["above"] | terms["zero_price"])
        return m
