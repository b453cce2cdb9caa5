"""Builders of limits and OUCH messages for directed tests and benches.

Short calls with the defaults a scenario leaves alone (a $100.00 order of 100 shares of AAPL,
limits that pass it), so that a test shows only what it is about. Prices are in OUCH price
units (1/10,000 dollar).
"""

from wiregate.sim.trading import Item, Port
from wiregate.sw.limits import (
    Endpoint,
    GatewayLimits,
    Limits,
    RateLimit,
    SessionLimits,
    SymbolLimits,
)
from wiregate.sw.model import ClientMessage, Commit, ExchangeMessage, FrameVoid, Malformed
from wiregate.sw.proto import ouch

__all__ = ["P100", "Script", "accepted", "aiq_canceled", "broken", "cancel", "canceled",
           "corrected", "enter", "executed", "limits", "modified", "modify", "rejected",
           "replace_order", "replaced", "session", "symbol"]

P100 = 1_000_000      # $100.0000


def symbol(index, name, *, reference_price=P100, collar=50_000, max_order_quantity=1_000,
           max_order_notional=500 * P100, max_long=1_500, max_short=1_000, restricted=False):
    return SymbolLimits(index=index, symbol=name, reference_price=reference_price,
                        collar=collar, max_order_quantity=max_order_quantity,
                        max_order_notional=max_order_notional, max_long=max_long,
                        max_short=max_short, restricted=restricted)


def session(index, *, max_order_quantity=5_000, max_order_notional=10**12, credit=10**13,
            rate=None, client=None, exchange=None):
    return SessionLimits(index=index, name=f"s{index}",
                         client=client or Endpoint(0x0A000001 + index, 40000 + index),
                         exchange=exchange or Endpoint(0x0A0000FE, 15000),
                         max_order_quantity=max_order_quantity,
                         max_order_notional=max_order_notional, credit=credit,
                         rate=rate or RateLimit(burst=100, refill_us=1_000, trip_after=0))


def limits(symbols, *, sessions=None, credit=10**14, heartbeat_timeout_us=10**9,
           reference_max_age_us=0):
    return Limits(
        gateway=GatewayLimits(credit=credit, heartbeat_timeout_us=heartbeat_timeout_us,
                              reference_max_age_us=reference_max_age_us),
        sessions=tuple(sessions or (session(0), session(1))),
        symbols=tuple(symbols),
    )


def enter(ref, side="B", quantity=100, name="AAPL", price=P100, tif="0"):
    return ouch.EnterOrder(user_ref_num=ref, side=side, quantity=quantity, symbol=name,
                           price=price, time_in_force=tif, display="Y", capacity="A",
                           intermarket_sweep="N", cross_type="N", clordid=f"C{ref}")


def replace_order(orig, ref, quantity, price=P100):
    return ouch.ReplaceOrder(orig_user_ref_num=orig, user_ref_num=ref, quantity=quantity,
                             price=price, time_in_force="0", display="Y",
                             intermarket_sweep="N", clordid=f"C{ref}")


def cancel(ref, quantity=0):
    return ouch.CancelOrder(user_ref_num=ref, quantity=quantity)


def modify(ref, side, quantity):
    return ouch.ModifyOrder(user_ref_num=ref, side=side, quantity=quantity)


def accepted(ref, state="L", side="B", quantity=100, price=P100):
    return ouch.OrderAccepted(timestamp=1, user_ref_num=ref, side=side, quantity=quantity,
                              symbol="AAPL", price=price, time_in_force="0", display="Y",
                              order_reference_number=7, capacity="A", intermarket_sweep="N",
                              cross_type="N", order_state=state, clordid=f"C{ref}")


def replaced(orig, ref, quantity, price=P100, side="B", state="L"):
    return ouch.OrderReplaced(timestamp=1, orig_user_ref_num=orig, user_ref_num=ref, side=side,
                              quantity=quantity, symbol="AAPL", price=price,
                              time_in_force="0", display="Y", order_reference_number=8,
                              capacity="A", intermarket_sweep="N", cross_type="N",
                              order_state=state, clordid=f"C{ref}")


def canceled(ref, quantity):
    return ouch.OrderCanceled(timestamp=1, user_ref_num=ref, quantity=quantity, reason="U")


def aiq_canceled(ref, quantity):
    return ouch.AiqCanceled(timestamp=1, user_ref_num=ref, quantity=quantity, reason="Q",
                            quantity_prevented_from_trading=quantity, execution_price=P100,
                            liquidity_flag="A", aiq_strategy="N")


def modified(ref, side, quantity):
    return ouch.OrderModified(timestamp=1, user_ref_num=ref, side=side, quantity=quantity)


def executed(ref, quantity, price, match):
    return ouch.OrderExecuted(timestamp=1, user_ref_num=ref, quantity=quantity, price=price,
                              liquidity_flag="A", match_number=match)


def rejected(ref):
    return ouch.OrderRejected(timestamp=1, user_ref_num=ref, reason=0x1F, clordid=f"C{ref}")


def broken(ref, match):
    return ouch.BrokenTrade(timestamp=1, user_ref_num=ref, match_number=match, reason="E",
                            clordid=f"C{ref}")


def corrected(ref, match, quantity, price):
    return ouch.TradeCorrection(timestamp=1, user_ref_num=ref, quantity=quantity, price=price,
                                liquidity_flag="A", match_number=match, reason="E",
                                clordid=f"C{ref}")


class Script:
    """Items (:class:`wiregate.sim.trading.Item`) of a directed day, in time order:
    ``at(t)``, then what happens then; ``commit``: limits committed at t = 0."""

    def __init__(self, commit=None):
        self.items = []
        self.t = 0
        self.frames = 0
        if commit is not None:
            self.control(Commit, commit)

    def at(self, t):
        self.t = t
        return self

    def client(self, session, *msgs, retransmit=False, void=False):
        """One client frame of ``msgs`` (a message, or a Malformed reason string)."""
        frame, self.frames = self.frames, self.frames + 1
        for k, msg in enumerate(msgs):
            if isinstance(msg, str):
                msg = Malformed(msg)
            self.items.append(Item(Port.CLIENT, self.t, ClientMessage(
                self.t, session, msg, retransmit, opens_frame=k == 0), session, frame))
        self.items.append(Item(Port.FRAME_END, self.t,
                               FrameVoid(self.t, session) if void else None, session, frame))
        return self

    def exchange(self, session, *msgs):
        for msg in msgs:
            self.items.append(Item(Port.EXCHANGE, self.t, ExchangeMessage(self.t, session, msg)))
        return self

    def control(self, cls, *args):
        self.items.append(Item(Port.CONTROL, self.t, cls(self.t, *args)))
        return self
