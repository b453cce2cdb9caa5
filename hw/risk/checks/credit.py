"""CREDIT_SESSION / CREDIT_GATEWAY: :func:`wiregate.sw.model.credit_fires` in gateware.

The core uses one :class:`CreditCheck` for the session's cap and one for the gateway's.
"""

from amaranth.hdl import Module
from amaranth.lib.wiring import In

from .notional import NOTIONAL_BITS
from .quantity import Check, check_latency, decide

__all__ = ["CreditCheck"]


class CreditCheck(Check):
    """Fires when a notional increase takes the credit used past a loaded cap.

    ``used + add_notional > limit`` is decided by the carry out of one sum wide enough never
    to wrap (see :func:`_carry_out`): exact for every input the ports admit.

    Parameters
    ----------
    latency : int
        0 or 1 (default 1), see :func:`~.quantity.check_latency`.

    Attributes
    ----------
    add_notional : In(NOTIONAL_BITS)
        The notional increase (an Enter's ``q * p``, a Replace's ``max(0, q2*p2 - q1*p1)``);
        0 never fires.
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
            "used": In(NOTIONAL_BITS),
            "limit": In(64),
            "limit_loaded": In(1),
        }, check_latency(latency))

    def elaborate(self, platform):
        m = Module()
        add = self.add_notional
        terms = decide(m, self._latency,
                       adds=add != 0,
                       loaded=self.limit_loaded,
                       carry=_carry_out(self.used, add, self.limit))
        m.d.comb += self.fire.eq(terms["adds"] & terms["loaded"] & terms["carry"].any())
        return m


def _carry_out(a, b, c):
    """The bits of ``a + b + ~c`` above the operands' width ``n``; not all 0 exactly when
    ``a + b > c`` (``~c`` is ``2**n - 1 - c``, so the sum reaches ``2**n`` just then).

    Written carry-save: the three operands are first added bit by bit into a sum word and a
    carry word (one LUT per bit each), which one carry chain then adds. Written as
    ``limit - used - add < 0``, Yosys chains two 66-bit adders, which misses 156.25 MHz on
    ECP5 (144 MHz after place and route, against 167 MHz for this form).
    """
    n = max(len(a), len(b), len(c))
    not_c = (~c)[:n]
    sum_word = a ^ b ^ not_c
    carry_word = (a & b) | (a & not_c) | (b & not_c)
    return (sum_word + (carry_word << 1))[n:]
