"""Holdback: the fixed delay line between the gateway's ingress and egress.

The egress trails the ingress by exactly ``H`` byte times so that the verdict on an order
exists before the order's SoupBin type byte leaves (the rewrite stage then turns a rejected
``U`` packet into ``+`` in flight). Accepted traffic thus sees one constant latency.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..stream import beat_layout, beat_signature, check_width

__all__ = ["Holdback"]


class Holdback(wiring.Component):
    """Delay a beat stream by exactly ``delay`` byte times.

    The line is a time delay: every input cycle shifts ``width`` byte slots in (empty slots
    when ``i.valid`` is low), and output lane ``l`` at cycle ``c`` is the slot that entered
    at byte time ``c * width + l - delay``. Bytes are never dropped or reordered, framing
    and error flags travel with their byte, and idle time is delayed like data, so the delay
    in bytes holds across gaps. When ``delay`` is not a multiple of ``width`` the lanes are
    re-aligned: a frame that entered at lane 0 leaves starting at lane ``delay % width``.

    Both ports are ``always_ready``: the line sits on a path that cannot be stalled.

    Parameters
    ----------
    width : int
        Bytes per beat (1 or 8).
    delay : int
        Delay ``H`` in bytes, ``H >= 0``.

    Attributes
    ----------
    i : In(stream)
        Beats from the receive side (see :mod:`.stream`).
    o : Out(stream)
        The same beats, ``delay`` byte times later. ``o.valid`` is high when any lane
        holds a byte.

    Latency
    -------
    ``delay`` byte times: ``delay // width`` cycles for lane-aligned data. Lanes whose
    source is the current input beat (only when ``delay < width``) are combinational from
    ``i``; all others come from registers (the ring's read register through one AND gate,
    the mask that keeps the ring's contents from before a reset off the wire).
    """

    def __init__(self, width, delay):
        self._width = check_width(width)
        if not isinstance(delay, int) or isinstance(delay, bool):
            raise TypeError(f"Delay must be an integer number of bytes, not {delay!r}")
        if delay < 0:
            raise ValueError(f"Delay must be zero or more bytes, not {delay}")
        self._delay = delay
        super().__init__({
            "i": In(beat_signature(width)),
            "o": Out(beat_signature(width)),
        })

    @property
    def width(self):
        return self._width

    @property
    def delay(self):
        return self._delay

    def elaborate(self, platform):
        m = Module()
        width, delay = self._width, self._delay

        # The current input beat as byte slots: a lane of an idle beat holds nothing, and a
        # lane without a byte carries no flags, so empty slots can never fake a boundary.
        current = Signal(beat_layout(width))
        for lane in range(width):
            present = self.i.valid & self.i.payload[lane].keep
            m.d.comb += [
                current[lane].data.eq(self.i.payload[lane].data),
                current[lane].keep.eq(present),
                current[lane].first.eq(present & self.i.payload[lane].first),
                current[lane].last.eq(present & self.i.payload[lane].last),
                current[lane].error.eq(present & self.i.payload[lane].error),
            ]

        # history[k] is the beat that entered k + 1 cycles ago. The lanes read at most two
        # of them, adjacent: the older comes from the younger through one register, and the
        # younger, once more than one cycle back, from a ring in LUT RAM (one write and one
        # read per cycle at the same slot) rather than a chain of flip-flop stages.
        backs = [-((lane - delay) // width) - 1 for lane in range(width) if lane < delay]
        history = {}
        if backs:
            young, old = min(backs), max(backs)
            history[young] = Signal(beat_layout(width), name=f"history{young}")
            if young == 0:
                m.d.sync += history[young].eq(current)
            else:
                m.d.comb += history[young].eq(self._ring(m, current, young))
            if old != young:
                history[old] = Signal(beat_layout(width), name=f"history{old}")
                m.d.sync += history[old].eq(history[young])

        # Output lane l takes the slot at byte time (l - delay) relative to the current
        # beat: a pure selection of wires, no logic on the data path.
        any_byte = []
        for lane in range(width):
            back = lane - delay
            if back >= 0:
                source = current[back]
            else:
                beats_back = -(back // width)     # ceil(-back / width)
                source = history[beats_back - 1][back + beats_back * width]
            m.d.comb += self.o.payload[lane].eq(source)
            any_byte.append(source.keep)
        m.d.comb += self.o.valid.eq(Cat(*any_byte).any())

        return m

    def _ring(self, m, current, n):
        """``current`` as it was ``n + 1`` cycles ago: an ``n``-slot ring in LUT RAM, each
        slot read (its old contents) in the cycle it is rewritten, answered a cycle later."""
        layout = beat_layout(self._width)
        m.submodules.ring = ring = Memory(shape=layout, depth=n, init=[],
                                          attrs={"ram_style": "distributed"})
        write, read = ring.write_port(), ring.read_port()
        slot = Signal(range(n))
        m.d.sync += slot.eq(Mux(slot == n - 1, 0, slot + 1))
        # A slot holds a beat of this run only once the ring has gone round since reset;
        # before that its contents are stale (from before a reset) and must not leave.
        round_done = Signal()
        primed = Signal()
        with m.If(slot == n - 1):
            m.d.sync += round_done.eq(1)
        m.d.sync += primed.eq(round_done)
        m.d.comb += [write.addr.eq(slot), write.data.eq(current), write.en.eq(1),
                     read.addr.eq(slot)]
        older = Signal(layout)
        m.d.comb += older.eq(Mux(primed, read.data, 0))
        return older
