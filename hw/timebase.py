"""Timebase: the model's microseconds, counted from the clock with no drift."""

from math import gcd

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from wiregate.sw.timebase import US_PER_S

__all__ = ["TIME_BITS", "Timebase"]

TIME_BITS = 64      # the microsecond timebase: never wraps in a gateway's lifetime


class Timebase(wiring.Component):
    """Free-running cycle counter and microsecond clock.

    ``now_us`` is :func:`wiregate.sw.timebase.timebase_us` of the cycle, exactly, also when
    a microsecond is not a whole number of cycles (156.25 at 156.25 MHz). With the ratio
    ``US_PER_S / clock_hz`` reduced to ``num / den``, a phase accumulator adds ``num`` every
    cycle and ``now_us`` steps when it reaches ``den``: the accumulator is always
    ``cycle * num mod den``, so ``now_us`` is always ``floor(cycle * num / den)``, with no
    division and no error that could accumulate over a day.

    Parameters
    ----------
    clock_hz : int
        Clock frequency; at least 1 MHz (``now_us`` advances by at most one per cycle).

    Attributes
    ----------
    cycle : Out(64)
        Cycles since reset (0 in the first cycle).
    now_us : Out(TIME_BITS)
        ``timebase_us(cycle, clock_hz)``.
    tick : Out(1)
        High in the cycles where ``now_us`` has just stepped (``now_us`` is one more than
        in the cycle before); low in cycle 0.

    Latency
    -------
    All outputs are registers: ``now_us`` and ``tick`` belong to the same cycle as ``cycle``.
    """

    cycle: Out(64)
    now_us: Out(64)
    tick: Out(1)

    def __init__(self, clock_hz):
        if not isinstance(clock_hz, int) or isinstance(clock_hz, bool):
            raise TypeError(f"Clock frequency must be an integer number of Hz, not {clock_hz!r}")
        if clock_hz < US_PER_S:
            raise ValueError(f"Clock frequency must be at least {US_PER_S} Hz, not {clock_hz}")
        self._clock_hz = clock_hz
        super().__init__()

    @property
    def clock_hz(self):
        return self._clock_hz

    def elaborate(self, platform):
        m = Module()
        common = gcd(US_PER_S, self._clock_hz)
        num, den = US_PER_S // common, self._clock_hz // common

        phase = Signal(range(den))       # cycle * num mod den
        stepped = Signal(range(den + num))
        m.d.comb += stepped.eq(phase + num)
        wrap = stepped >= den
        m.d.sync += [
            self.cycle.eq(self.cycle + 1),
            self.tick.eq(wrap),
            self.now_us.eq(self.now_us + wrap),
            phase.eq(Mux(wrap, stepped - den, stepped)),
        ]
        return m
