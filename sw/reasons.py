"""Reject reasons: the one declaration every other part derives from.

Each reason is one bit of the reason word the gateway reports with every verdict. Bit order
is priority order: when several checks fire, the lowest-numbered bit is the *primary*
reason (the one shown to the client and counted in the primary-reason counters). The
reason word always carries every check that fired.

The priority puts "we cannot judge this order at all" first (malformed, out of sync, no
limits, host silent), then the operator's kill switches, then what the order refers to
(symbol, order, UserRefNum, capacity), then rate, then the per-order limits, then the
accumulated exposure limits. A risk officer reading a drop copy thus sees the most
fundamental cause first.

BACKLOG comes last, on purpose: it is the one reason that says nothing about the order, its
session or its risk; it only says the host is behind on the drop copy, and it clears by
itself when the host catches up. Every other reason is more useful to the client and to the
risk officer, so BACKLOG as the *primary* reason means exactly "this order passed every
risk check and was refused only because the drop copy is behind: send it again later".
Appending it also keeps every older bit number (and reason word) as it was.

``ouch`` is the OUCH 5.0 Rejected reason code (u16) the closest exchange-side rejection
would carry, so reports can be read alongside exchange rejects; 0 means no equivalent.
"""

from enum import IntEnum

__all__ = ["NO_PRIMARY", "REASON_BITS", "Reason", "describe", "primary", "reason_word"]


class Reason(IntEnum):
    """Bit position of each reject reason; lower is higher priority."""

    MALFORMED = 0         # unparseable, unknown type, bad length, price above the OUCH maximum
    OUT_OF_SYNC = 1       # session's TCP or SoupBin stream lost sync (gap or conflicting overlap)
    NOT_LOADED = 2        # no limit tables committed yet
    HEARTBEAT = 3         # host heartbeat not seen within the timeout
    KILL_GATEWAY = 4      # gateway-wide kill latch set
    KILL_SESSION = 5      # this session's kill latch set (by host or automatic trip)
    KILL_SYMBOL = 6       # this symbol's kill latch set
    UNKNOWN_SYMBOL = 7    # symbol not in the host-loaded symbol table
    RESTRICTED = 8        # symbol on the restricted list
    UNKNOWN_ORDER = 9     # Replace/Modify names a UserRefNum the gate has no open order for
    DUPLICATE_REF = 10    # new UserRefNum not strictly above the session's last one
    CAPACITY = 11         # the session's open-order table has no free slot for this order
    RATE = 12             # session token bucket empty (throttled)
    QUANTITY = 13         # fat finger: quantity above a per-symbol/per-session/OUCH limit, or zero
    NOTIONAL = 14         # quantity x price above the per-order notional limit
    COLLAR = 15           # price outside the band or zero, or no (or a stale) reference price
    POSITION = 16         # projected long or short (working orders included) above the limit
    CREDIT_SESSION = 17   # session gross notional (working + executed) would exceed its cap
    CREDIT_GATEWAY = 18   # gateway-wide gross notional would exceed its cap
    BACKLOG = 19          # the drop copy is backlogged: the host has not read enough records


REASON_BITS = len(Reason)
# The primary reason recorded for an accept (primary() is None): a value no reason has, so the
# field alone tells an accept from a MALFORMED reject, and it fits the same bits as a reason.
NO_PRIMARY = REASON_BITS
_BY_BIT = tuple(Reason(bit) for bit in range(REASON_BITS))   # primary() is on the hot path

# Closest OUCH 5.0 Rejected reason for each of ours (see PROTOCOLS.md); 0 = none.
OUCH_EQUIVALENT = {
    Reason.MALFORMED: 0x13,
    Reason.UNKNOWN_SYMBOL: 0x17,
    Reason.RESTRICTED: 0x07,
    Reason.QUANTITY: 0x1E,
    Reason.NOTIONAL: 0x1F,
    Reason.COLLAR: 0x1D,
    Reason.POSITION: 0x06,
}


def reason_word(reasons) -> int:
    """Pack an iterable of :class:`Reason` into the reason word (bit per reason)."""
    word = 0
    for r in reasons:
        word |= 1 << Reason(r)
    return word


def primary(word: int) -> Reason | None:
    """The highest-priority reason in ``word``, or None for an accept (word 0)."""
    if word == 0:
        return None
    bit = (word & -word).bit_length() - 1
    return _BY_BIT[bit] if bit < REASON_BITS else Reason(bit)   # Reason() raises for others


def describe(word: int) -> list[str]:
    """Names of every reason in ``word``, in priority order."""
    return [r.name for r in Reason if word >> r & 1]
