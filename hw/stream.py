"""The beat layout every wiregate stream uses, at any width.

A beat carries ``W`` byte lanes; lane 0 is the earliest byte on the wire. Framing lives in
the payload, per lane:

- ``data``: the byte;
- ``keep``: the lane holds a byte (a lane without one carries no flags either);
- ``first``: this byte is the first of a frame;
- ``last``: this byte is the last of a frame;
- ``error``: on the ``last`` lane: the frame that ends here is bad (FCS or PHY error).

Why per lane and not per beat: a MAC hands over frames starting in lane 0, but a delay of
``H`` bytes that is not a multiple of ``W`` (the holdback) moves the frame start to lane
``H mod W``, and then one beat can hold the end of one frame and the start of the next.
Blocks that need lane-0 alignment (the parsers) sit before any such delay.

The streams on the order path are ``always_ready``: the receive MAC cannot be stalled, so
nothing between it and the transmit MAC may apply backpressure.
"""

from amaranth.hdl import Cat
from amaranth.lib import data, stream

__all__ = ["LANE_LAYOUT", "beat_layout", "beat_signature", "check_width", "frame_end"]

LANE_LAYOUT = data.StructLayout({
    "data": 8,
    "keep": 1,
    "first": 1,
    "last": 1,
    "error": 1,
})

# Widths the gateway is built for: 1 byte at 125 MHz (1 GbE), 8 bytes at 156.25 MHz (10 GbE).
SUPPORTED_WIDTHS = (1, 8)


def check_width(width) -> int:
    """Validate a beat width (bytes per beat) and return it."""
    if not isinstance(width, int) or isinstance(width, bool):
        raise TypeError(f"Beat width must be an integer, not {width!r}")
    if width not in SUPPORTED_WIDTHS:
        raise ValueError(f"Beat width must be one of {SUPPORTED_WIDTHS}, not {width}")
    return width


def beat_layout(width: int) -> data.ArrayLayout:
    """Layout of one beat of ``width`` lanes."""
    return data.ArrayLayout(LANE_LAYOUT, check_width(width))


def beat_signature(width: int, *, always_ready: bool = True) -> stream.Signature:
    """Stream signature carrying beats of ``width`` lanes."""
    return stream.Signature(beat_layout(width), always_ready=always_ready)


def frame_end(lanes):
    """The beat holds a frame's last byte, and that frame's FCS (or PHY) was bad."""
    last = Cat(lane.keep & lane.last for lane in lanes).any()
    bad = Cat(lane.keep & lane.last & lane.error for lane in lanes).any()
    return last, bad
