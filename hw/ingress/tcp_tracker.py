"""TCP stream tracking per session: which payload bytes are new, which were seen before.

# Ref: RFC 9293 (TCP): sequence space arithmetic modulo 2**32, SYN and FIN each take one.

The gate judges each byte of a session's stream once. A segment that starts at the next
expected sequence number carries new bytes; one that ends at or before it is a
retransmission (its orders get their first verdict again and are never counted twice);
anything else (a gap, or an overlap that mixes old and new bytes) loses the stream: the
session is *out of sync* and fails closed until a new connection (SYN) starts it afresh.
State changes only when a frame ends clean (no parser error, good FCS), so a corrupted
frame, which the exchange will not accept either, never moves the tracker.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.enum import Enum
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import RegisterMap

from ..counters import LIVE_BITS, count_event, live_event
from ..stream import check_width, frame_end
from .headers import FrameKind
from .sessions import session_beat_layout

__all__ = ["Segment", "StreamState", "TcpTracker", "tracked_beat_layout"]

TCP_FIN, TCP_SYN, TCP_RST = 0x01, 0x02, 0x04


class StreamState(Enum, shape=2):
    """A session's stream, per direction."""

    IDLE = 0         # no connection seen since reset, or closed by FIN/RST: data loses sync
    SYNCED = 1       # next expected sequence number known
    OUT_OF_SYNC = 2  # a gap or a conflicting overlap was seen: fail closed until SYN


class Segment(Enum, shape=2):
    """What a frame's payload is to its session's stream."""

    NONE = 0         # no session payload: not a session frame, or no payload bytes
    NEW = 1          # starts at the next expected byte
    RETRANSMIT = 2   # entirely before the next expected byte
    LOST = 3         # the session is or goes out of sync: nothing in it may be trusted


def tracked_beat_layout(width: int, regmap: RegisterMap) -> data.StructLayout:
    """A session beat with the frame's place in its session's stream."""
    return data.StructLayout({
        "beat": session_beat_layout(width, regmap),
        "segment": Segment,      # valid from the parser's ``header.done``
    })


def _before(a, b):
    """``a`` comes before ``b`` in 32-bit sequence space."""
    return (a - b)[31]


class TcpTracker(wiring.Component):
    """Track the next expected sequence number of every session in one direction.

    Parameters
    ----------
    width : int
        Bytes per beat.
    regmap : RegisterMap
        Gives the number of sessions.

    Attributes
    ----------
    i : In(stream)
        :func:`wiregate.hw.ingress.sessions.session_beat_layout` beats.
    o : Out(stream)
        :func:`tracked_beat_layout` beats, :attr:`latency` cycles later.
    in_sync : Out(n_sessions)
        Bit k: session k's stream is SYNCED (the host's view, and the risk core's
        fail-closed input).
    count_retransmits : Out(:data:`~wiregate.hw.counters.LIVE_BITS`)
        Retransmitted segments (a live counter: it wraps).
    count_lost : Out(32)
        Segments that lost (or found lost) a stream (saturating).

    Latency
    -------
    Two cycles: the session's state is read, then judged.
    """

    latency = 2

    def __init__(self, width, regmap):
        self._width = check_width(width)
        self._regmap = regmap
        n = regmap.n_sessions
        super().__init__({
            "i": In(stream.Signature(session_beat_layout(width, regmap), always_ready=True)),
            "o": Out(stream.Signature(tracked_beat_layout(width, regmap), always_ready=True)),
            "in_sync": Out(n),
            "count_retransmits": Out(LIVE_BITS),
            "count_lost": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._regmap.n_sessions
        beat = self.i.payload
        hdr = beat.beat.header
        lanes = beat.beat.lanes

        states = [Signal(StreamState, name=f"state_{k}") for k in range(n)]
        # Each session's next expected sequence number is a row of LUT RAM (the read port is
        # the session select); it is read only in the SYNCED state, which a SYN's commit
        # enters with the number written, so reset need not clear it.
        m.submodules.nexts = nexts = Memory(shape=32, depth=n, init=[],
                                            attrs={"ram_style": "distributed"})
        next_read, next_write = nexts.read_port(domain="comb"), nexts.write_port()
        m.d.comb += self.in_sync.eq(Cat(s == StreamState.SYNCED for s in states))

        # Stage 1: the session's state and the segment's end, registered with the beat. The
        # state read here is the one before the frame: the previous frame's commit (a cycle
        # after stage 2 of its last beat) lands long before this frame's ``header.done``,
        # the first beat whose state is used, at least 54 bytes (7 beats) into the frame.
        valid = Signal()
        state = Signal(StreamState)
        expected = Signal(32)
        seq_end = Signal(32)
        m.d.comb += next_read.addr.eq(beat.session)
        m.d.sync += [
            valid.eq(self.i.valid),
            state.eq(Cat(states).word_select(beat.session, 2)),
            expected.eq(next_read.data),
            seq_end.eq(hdr.seq + hdr.payload_len),
        ]
        delayed = Signal(session_beat_layout(self._width, self._regmap), name="beat_1")
        m.d.sync += delayed.eq(beat)
        beat = delayed
        hdr = beat.beat.header
        lanes = beat.beat.lanes

        # Stage 2.
        session_frame = beat.hit & (hdr.kind == FrameKind.TCP) & hdr.done
        syn, fin, rst = (hdr.flags & TCP_SYN) != 0, (hdr.flags & TCP_FIN) != 0, \
            (hdr.flags & TCP_RST) != 0
        length = hdr.payload_len

        # The frame's verdict on its payload, from the state before the frame.
        segment = Signal(Segment)
        with m.If(~session_frame | syn | (length == 0)):
            # A SYN carrying data (TCP Fast Open) is not followed: nothing in it is trusted.
            m.d.comb += segment.eq(Mux(session_frame & syn & (length != 0), Segment.LOST,
                                       Segment.NONE))
        with m.Elif(state != StreamState.SYNCED):
            m.d.comb += segment.eq(Segment.LOST)
        with m.Elif(hdr.seq == expected):
            m.d.comb += segment.eq(Segment.NEW)
        with m.Elif(~_before(expected, seq_end)):        # ends at or before ``expected``
            m.d.comb += segment.eq(Segment.RETRANSMIT)
        with m.Else():
            m.d.comb += segment.eq(Segment.LOST)

        ends, bad_fcs = frame_end(lanes)
        last = valid & ends
        clean = (beat.beat.errors == 0) & ~bad_fcs
        # The new state, worked out a cycle later from registers (the segment's verdict among
        # them) and committed then when the frame ended clean: the next frame reads it no
        # sooner than its ``header.done``, as above. The sequence compares, the verdict and
        # the new state's select in one cycle were the whole ingress's longest path (seed 2,
        # 8.4 ns).
        commit = Signal()
        session = Signal.like(beat.session)
        was = Signal(StreamState)
        was_next = Signal(32)
        after_syn = Signal(32)
        after_new = Signal(32)
        rst_3, syn_3, fin_3, data_3 = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [commit.eq(last & session_frame & clean), session.eq(beat.session),
                     was.eq(state), was_next.eq(expected), after_syn.eq(seq_end + 1),
                     after_new.eq(seq_end), rst_3.eq(rst), syn_3.eq(syn), fin_3.eq(fin),
                     data_3.eq(length != 0)]
        segment_3 = self.o.payload.segment       # ``segment``, registered with them
        new_state = Signal(StreamState)
        new_next = Signal(32)
        m.d.comb += [new_state.eq(was), new_next.eq(was_next)]
        with m.If(rst_3):
            m.d.comb += new_state.eq(StreamState.IDLE)
        with m.Elif(syn_3):
            m.d.comb += [new_state.eq(Mux(data_3, StreamState.OUT_OF_SYNC, StreamState.SYNCED)),
                         new_next.eq(after_syn)]
        with m.Elif(segment_3 == Segment.LOST):
            m.d.comb += new_state.eq(StreamState.OUT_OF_SYNC)
        with m.Elif(segment_3 == Segment.NEW):
            m.d.comb += new_next.eq(after_new)
        with m.If(~rst_3 & ~syn_3 & (segment_3 != Segment.LOST) & fin_3):
            m.d.comb += new_state.eq(StreamState.IDLE)
        for k in range(n):
            with m.If(commit & (session == k)):
                m.d.sync += states[k].eq(new_state)
        m.d.comb += [next_write.addr.eq(session),
                     next_write.data.eq(new_next), next_write.en.eq(commit)]

        m.d.sync += [
            self.o.valid.eq(valid),
            self.o.payload.beat.eq(beat),
            self.o.payload.segment.eq(segment),
        ]

        # Counted a cycle later, from the registered segment: the counters' enables behind the
        # sequence compares were the whole ingress's longest path (9.2 ns, seed 1).
        ended = Signal()
        m.d.sync += ended.eq(last)
        segment_out = self.o.payload.segment
        live_event(m, self.count_retransmits, ended & (segment_out == Segment.RETRANSMIT))
        count_event(m, self.count_lost, ended & (segment_out == Segment.LOST))
        return m
