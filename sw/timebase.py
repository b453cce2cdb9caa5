"""The gateway's timebase: integer microseconds derived from the clock, exactly.

The model's time ``t`` is integer microseconds since reset. The gateware counts clock cycles
and derives ``t`` from them with no drift and no rounding of its own: in cycle ``c``
(counting from reset, the first cycle is 0) the time is ``floor(c * 10**6 / clock_hz)``.
At 156.25 MHz a microsecond is 156.25 cycles, so the microseconds are 156 or 157 cycles
long, in the fixed pattern this floor gives; the host and the drop copy convert with
:func:`timebase_us` and agree with the gateware to the microsecond.
"""

__all__ = ["CLOCK_HZ", "US_PER_S", "timebase_us"]

US_PER_S = 1_000_000

# The core clock at each datapath width (bytes per beat): 1 GbE at W=1, 10 GbE at W=8.
CLOCK_HZ = {1: 125_000_000, 8: 156_250_000}


def timebase_us(cycle: int, clock_hz: int) -> int:
    """Microseconds since reset in cycle ``cycle`` of a ``clock_hz`` clock (exact floor)."""
    return cycle * US_PER_S // clock_hz
