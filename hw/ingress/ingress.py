"""Ingress: one port's receive path, from the MAC's beats to OUCH events."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.extract import COUNTERS as EXTRACTOR_COUNTERS

from ..counters import LIVE_BITS
from ..stream import beat_signature, check_width
from ..tables import write_signature
from .headers import ERRORS, HeaderParser
from .ouch_extract import OuchExtractor, message_beat_layout
from .sessions import SessionLookup
from .soupbin import SoupBinFramer
from .tcp_tracker import TcpTracker

__all__ = ["DECISION_LATENCY", "LATENCY", "LIVE", "Ingress"]

# Parser and lookup, then the register below.
DECISION_LATENCY = HeaderParser.latency + SessionLookup.latency + 1
# Parser, lookup, tracker, a register, the framer (a cycle) and the extractor.
LATENCY = HeaderParser.latency + SessionLookup.latency + TcpTracker.latency + 1 + 1 + \
    OuchExtractor.latency
# The counters the register map reads: live counters (:mod:`wiregate.hw.counters`).
LIVE = ("frames", "dropped", "retransmits")


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
        :func:`wiregate.hw.ingress.ouch_extract.message_beat_layout` beats: the frame's bytes with
        their headers, session, stream segment and SoupBin roles, the event each beat
        settles, and on the last beat whether the frame is void.
    write_session, write_pass_rule, swap
        Session table control (see :class:`SessionLookup`).
    decision : Out(stream)
        ``drop``, one per frame in frame order, as soon as the session lookup knows whether
        the frame may go toward the exchange (:func:`~.sessions.session_beat_layout`
        ``admit``): the rewrite needs it before the frame's first byte leaves the holdback.
        DECISION_LATENCY cycles after the MAC-side beat that decides it.
    in_sync : Out(n_sessions)
        Sessions whose stream is followed (see :class:`TcpTracker`).
    count_* : Out
        The parser's, the lookup's, the tracker's and the extractor's counters, each as
        wide as its block's (the live ones, :data:`LIVE`, for the register file).

    Latency
    -------
    :data:`LATENCY` cycles: the parser's, the lookup's and the tracker's (their
    ``latency``), one for the register between the tracker and the framer, one for the
    framer, then the extractor's.
    """

    latency = LATENCY

    def __init__(self, width, regmap, *, toward_exchange):
        self._width = check_width(width)
        self._regmap = regmap
        self._toward_exchange = bool(toward_exchange)
        members = {
            "i": In(beat_signature(width)),
            "o": Out(stream.Signature(message_beat_layout(width, regmap), always_ready=True)),
            "write_session": In(write_signature(regmap, "session")),
            "write_pass_rule": In(write_signature(regmap, "pass_rule")),
            "swap": In(1),
            "decision": Out(stream.Signature(data.StructLayout({"drop": 1}), always_ready=True)),
            "in_sync": Out(regmap.n_sessions),
        }
        for name in ("frames", *ERRORS, "dropped", "passed_by_rule", "retransmits", "lost",
                     *EXTRACTOR_COUNTERS):
            members[f"count_{name}"] = Out(LIVE_BITS if name in LIVE else 32)
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

        # The frame's decision: on the first beat of the lookup's output that has it.
        looked_up = sessions.o.payload
        lanes = looked_up.beat.lanes
        starts = Cat(lane.keep & lane.first for lane in lanes).any()
        decided = Signal()      # the current frame's decision has gone out
        deciding = sessions.o.valid & looked_up.decided & (starts | ~decided)
        with m.If(sessions.o.valid & starts):
            m.d.sync += decided.eq(deciding)
        with m.Elif(deciding):
            m.d.sync += decided.eq(1)
        m.d.sync += [self.decision.valid.eq(deciding),
                     self.decision.payload.drop.eq(~looked_up.admit)]
        m.submodules.framer = framer = SoupBinFramer(self._width, self._regmap)
        # A register between them: placed whole, the ingress put the tracker's output
        # registers far from the framer, and the framer's state update from them was the
        # critical path (10.2 ns, 7.4 ns of it routing; the framer alone routes at 131 MHz).
        m.d.sync += [framer.i.valid.eq(tracker.o.valid),
                     framer.i.payload.eq(tracker.o.payload)]
        m.submodules.extractor = extractor = OuchExtractor(
            self._width, self._regmap, toward_exchange=self._toward_exchange)
        wiring.connect(m, framer=framer.o, extractor=extractor.i)
        wiring.connect(m, extractor=extractor.o, out=wiring.flipped(self.o))
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
        for name in EXTRACTOR_COUNTERS:
            m.d.comb += getattr(self, f"count_{name}").eq(getattr(extractor, f"count_{name}"))
        m.d.comb += self.in_sync.eq(tracker.in_sync)
        return m
