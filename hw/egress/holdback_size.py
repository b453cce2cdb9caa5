"""The holdback length H: the fewest bytes that let every verdict reach the rewrite in time.

The egress trails the ingress by H byte times (:class:`~.holdback.Holdback`), then
:class:`~.rewrite.Rewrite` adds its own ``d = latency(W)`` cycles. Three records must
reach the rewrite at least one cycle before the byte they act on leaves it (its contract):

- a reject, before the packet's SoupBin type byte leaves;
- a frame's decision (drop or pass), before the frame's first byte leaves;
- a void record, before the frame's last byte leaves.

Timing at width W. The receive MAC hands a frame over without gaps, starting in lane 0: frame
byte ``o`` of a frame starting at cycle ``c0`` is on the MAC-side stream at cycle
``c0 + o // W``. The holdback delays it by H byte times, so it is on ``Rewrite.i`` at cycle
``c0 + (o + H) // W`` and leaves ``Rewrite.o`` ``d`` cycles later.

Reject. The extractor settles a client event at the last byte of the message's fixed part
(:mod:`wiregate.sw.extract`, rule 4), ``D`` bytes after the SoupBin type byte at ``x``, with
``D`` the longest fixed part in :data:`~wiregate.sw.proto.ouch.CLIENT_LAYOUTS` (Enter Order:
47; a malformed packet settles earlier). With ``L`` the core's latency, in cycles from the
settling byte's beat on the MAC side to the reject on ``Rewrite.rejects``, the requirement is,
for every lane ``r = x mod W`` the type byte may sit in::

    (r + D) // W + L  <=  (r + H) // W + d - 1

Write ``K = L + 1 - d``. ``H = D + K * W`` meets it for every ``r``, as
``(r + D + K * W) // W = (r + D) // W + K``. With one byte less the right side is
``(r + D - 1) // W + K``, one short exactly when ``(r + D) mod W == 0``: when the settling byte
starts an ingress beat. The type byte's lane depends on the headers and the packets before it,
so every ``r`` occurs, and ``D + K * W`` is the least H.

Decision and void. With ``Ld`` the cycles from a frame's first byte on the MAC side to its
decision on ``Rewrite.frames`` (the lead's: header parse, session lookup and the header bytes
it waits for), and ``Lv`` the cycles from its last byte to a void record, the same reasoning
with distance 0 gives ``H >= (Ld + 1 - d) * W`` and ``H >= (Lv + 1 - d) * W``.

H is the largest of the three, and never below zero.

What waits in the rewrite. A record is pushed no earlier than the byte it names is on the MAC
side, and it is used when that byte leaves the rewrite, ``H + d * W`` byte times later (up to a
beat more for rounding). Rejectable type bytes are at least
:data:`~.rewrite.REJECT_SPACING` bytes apart and the core pushes at most one record a
cycle, which bounds the rejects waiting (:func:`reject_depth`); frames take at least
``frame_slot`` byte times each on the MAC side, which bounds the frames between a record and its
frame (:func:`tag_bits`).
"""

from wiregate.sw.proto.ouch import CLIENT_LAYOUTS

from ..stream import check_width
from .rewrite import REJECT_SPACING, latency, ways

__all__ = ["SETTLE_DISTANCE", "check_holdback", "holdback_bytes", "reject_depth", "tag_bits"]

# Bytes from a client packet's SoupBin type byte (pos 0) to the byte that settles its event
# (pos F, the last byte of an F-byte fixed part, OUCH type byte included).
SETTLE_DISTANCE = max(layout.fixed_length for layout in CLIENT_LAYOUTS.values())


def _cycles(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer number of cycles, not {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be zero or more cycles, not {value}")
    return value


def holdback_bytes(width, verdict_latency, *, decision_latency=0, void_latency=0) -> int:
    """The least holdback, in bytes, for these core latencies at ``width`` bytes per beat.

    Parameters
    ----------
    width : int
        Bytes per beat (1 or 8).
    verdict_latency : int
        Cycles from the beat holding an event's settling byte on the MAC side to its reject on
        ``Rewrite.rejects``.
    decision_latency : int
        Cycles from a frame's first byte on the MAC side to its decision on
        ``Rewrite.frames``.
    void_latency : int
        Cycles from a frame's last byte on the MAC side to its void record on
        ``Rewrite.void``.
    """
    width = check_width(width)
    slack = 1 - latency(width)
    needs = (
        SETTLE_DISTANCE + (_cycles("Verdict latency", verdict_latency) + slack) * width,
        (_cycles("Decision latency", decision_latency) + slack) * width,
        (_cycles("Void latency", void_latency) + slack) * width,
    )
    return max(0, *needs)


def check_holdback(width, holdback, verdict_latency, *, decision_latency=0, void_latency=0):
    """Raise ``ValueError`` unless a holdback of ``holdback`` bytes is long enough.

    For the core's ``__init__``: ``check_holdback(width, H, L, decision_latency=...)``.
    """
    need = holdback_bytes(width, verdict_latency, decision_latency=decision_latency,
                          void_latency=void_latency)
    if holdback < need:
        raise ValueError(f"Holdback of {holdback} bytes is too short at width {width}: these "
                         f"latencies need {need}")


def _span(width, holdback):
    """Byte times from a byte on the MAC side to its leaving the rewrite, rounded up a beat."""
    return holdback + (latency(width) + 1) * width


def reject_depth(width, holdback) -> int:
    """``Rewrite(reject_depth=...)`` that no sequence of rejects can overflow, however early
    the core pushes them: rejectable type bytes are :data:`~.rewrite.REJECT_SPACING`
    bytes apart and the core pushes one record per cycle at most, so one record per
    ``max(REJECT_SPACING, W)`` bytes of the span waits; the FIFOs, filled in turn, share them
    evenly."""
    width = check_width(width)
    waiting = -(-_span(width, holdback) // max(REJECT_SPACING, width)) + 1
    n = ways(width)
    return n * -(-waiting // n)


def tag_bits(width, holdback, frame_slot) -> int:
    """``Rewrite(tag_bits=...)`` when every frame takes at least ``frame_slot`` byte times on
    the MAC side (its bytes and the idle before the next): enough bits that fewer than
    ``2**(bits - 1)`` frames lie between a record's frame and the frame leaving. The worst case
    the stream allows is ``frame_slot = W`` (a one-byte frame per beat); a real link has at
    least 60 bytes and the inter-frame gap per frame."""
    if frame_slot < 1:
        raise ValueError(f"Frame slot must be at least 1 byte time, not {frame_slot}")
    frames = _span(check_width(width), holdback) // frame_slot + 2
    return frames.bit_length() + 1
