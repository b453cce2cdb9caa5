"""Ingress: one port's receive path, from the MAC's beats to per-session frames."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .headers import ERRORS, HeaderParser
from .sessions import SessionLookup
from .stream import beat_signature, check_width
from .tables import write_signature
from .tcp_tracker import TcpTracker, tracked_beat_layout

__all__ = ["Ingress"]


class Ingress(wiring.Component):
    """The receive path of one port.

    Parameters
    ----------
    width : int
        Bytes per beat.
    regmap : RegisterMap
        Table sizes and layouts.
    toward_exchange : bool
        Client port (frames toward the exchange) or exchange port.

    Attributes
    ----------
    i : In(stream)
        Beats from the receive MAC (always ready).
    o : Out(stream)
        :func:`wiregate.hw.tcp_tracker.tracked_beat_layout` beats.
    write_session, write_pass_rule, swap
        Session table control (see :class:`SessionLookup`).
    in_sync : Out(n_sessions)
        Sessions whose stream is followed (see :class:`TcpTracker`).
    count_* : Out(32)
        The parser's, the lookup's and the tracker's counters.

    Latency
    -------
    Three cycles (parser, lookup, tracker).
    """

    def __init__(self, width, regmap, *, toward_exchange):
        self._width = check_width(width)
        self._regmap = regmap
        self._toward_exchange = bool(toward_exchange)
        members = {
            "i": In(beat_signature(width)),
            "o": Out(stream.Signature(tracked_beat_layout(width, regmap), always_ready=True)),
            "write_session": In(write_signature(regmap, "session")),
            "write_pass_rule": In(write_signature(regmap, "pass_rule")),
            "swap": In(1),
            "in_sync": Out(regmap.n_sessions),
        }
        for name in ("frames", *ERRORS, "dropped", "passed_by_rule", "retransmits", "lost"):
            members[f"count_{name}"] = Out(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = HeaderParser(self._width)
        m.submodules.sessions = sessions = SessionLookup(
            self._width, self._regmap, toward_exchange=self._toward_exchange)

        wiring.connect(m, mac=wiring.flipped(self.i), parser=parser.i)
        wiring.connect(m, parser=parser.o, sessions=sessions.i)
        m.submodules.tracker = tracker = TcpTracker(self._width, self._regmap)
        wiring.connect(m, sessions=sessions.o, tracker=tracker.i)
        wiring.connect(m, tracker=tracker.o, out=wiring.flipped(self.o))
        wiring.connect(m, host=wiring.flipped(self.write_session), table=sessions.write_session)
        wiring.connect(m, host=wiring.flipped(self.write_pass_rule),
                       table=sessions.write_pass_rule)
        m.d.comb += sessions.swap.eq(self.swap)

        for name in ("frames", *ERRORS):
            m.d.comb += getattr(self, f"count_{name}").eq(getattr(parser, f"count_{name}"))
        for name in ("dropped", "passed_by_rule"):
            m.d.comb += getattr(self, f"count_{name}").eq(getattr(sessions, f"count_{name}"))
        for name in ("retransmits", "lost"):
            m.d.comb += getattr(self, f"count_{name}").eq(getattr(tracker, f"count_{name}"))
        m.d.comb += self.in_sync.eq(tracker.in_sync)
        return m
