"""SoupBinTCP framing: where each logical packet starts and ends in a session's TCP stream.

# Ref: SoupBinTCP 3.00: a packet is a big-endian u16 length followed by that many bytes,
# the first of which is the packet type.

Packets do not align with TCP segments: one segment may carry several, and a packet may be
split across segments, even inside its length field. So the framing state (which byte of
which packet comes next) is kept per session and carried from one in-order segment to the
next. It follows the stream tracker's rules (:mod:`wiregate.hw.ingress.tcp_tracker`): a new segment
continues from the saved state; a retransmitted one is parsed from a fresh state (it is
assumed to start on a packet boundary, as it did when first sent; the risk core compares what
it finds with what it remembers); a lost one is not parsed. The saved state moves only when
a frame ends clean, exactly when the tracker commits: a SYN starts fresh, a new segment saves
the state after its last byte.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.enum import Enum
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import RegisterMap

from ..stream import check_width, frame_end
from .headers import FrameKind
from .tcp_tracker import TCP_SYN, Segment, tracked_beat_layout

__all__ = ["Chain", "Role", "Save", "SoupBinFramer", "framed_beat_layout"]


class Role(Enum, shape=2):
    """What a payload byte is to SoupBinTCP (and, as framing state, what comes next)."""

    NONE = 0      # not a byte of a followed stream
    LEN_HI = 1    # high byte of a packet's length
    LEN_LO = 2    # low byte of a packet's length
    BODY = 3      # a byte of the packet: type byte at ``pos`` 0


class Chain(Enum, shape=2):
    """Where the framing state of a beat's first payload lane comes from."""

    CONTINUE = 0  # the previous beat of this frame (or no payload here)
    SAVED = 1     # the session's saved state: the first payload of a new segment
    FRESH = 2     # a fresh state: the first payload of a retransmitted segment


class Save(Enum, shape=2):
    """What the frame's last beat does to the session's saved state."""

    NONE = 0
    CHAIN = 1     # save the state after this beat (a clean new segment)
    FRESH = 2     # start afresh (a clean SYN)


FRAMING_LAYOUT = data.StructLayout({
    "role": Role,
    "pos": 16,        # BODY: index from the packet type byte (any value in other roles)
    "length": 16,     # the packet's length (LEN_LO and BODY; any value in other roles)
    "end": 1,         # the packet's last byte (LEN_LO when the length is 0)
})

# The framing state between two bytes: ``phase`` is the role of the next byte.
STATE_LAYOUT = data.StructLayout({
    "phase": Role,
    "len_hi": 8,
    "length": 16,
    "pos": 16,
    "rest": 16,       # BODY: bytes after the next one (``length - 1 - pos``): zero at the end
})
FRESH_STATE = {"phase": Role.LEN_HI}


def framed_beat_layout(width: int, regmap: RegisterMap) -> data.StructLayout:
    """A tracked beat with the SoupBin role of each payload lane."""
    return data.StructLayout({
        "beat": tracked_beat_layout(width, regmap),
        "framing": data.ArrayLayout(FRAMING_LAYOUT, width),
        "chain": Chain,
        "save": Save,     # on the beat holding the frame's last byte
    })


def _step(m, state, active, byte, name):
    """One payload byte through the framing state: its role and the state after it."""
    out = Signal(FRAMING_LAYOUT, name=f"{name}_framing")
    after = Signal(STATE_LAYOUT, name=f"{name}_state")
    m.d.comb += after.eq(state)
    # ``pos`` and ``length`` mean something only with the role that has them (BODY; LEN_LO's
    # length), and every reader tests the role: left ungated, their registers need no reset
    # from ``active``, which was the critical path of the whole ingress (9.3 ns).
    m.d.comb += [out.pos.eq(state.pos),
                 out.length.eq(Mux(state.phase == Role.LEN_LO, Cat(byte, state.len_hi),
                                   state.length))]
    with m.If(active):
        m.d.comb += out.role.eq(state.phase)
        with m.Switch(state.phase):
            with m.Case(Role.LEN_HI):
                m.d.comb += [after.phase.eq(Role.LEN_LO), after.len_hi.eq(byte)]
            with m.Case(Role.LEN_LO):
                length = Cat(byte, state.len_hi)
                m.d.comb += [
                    out.end.eq(length == 0),
                    after.length.eq(length),
                    after.pos.eq(0),
                    after.rest.eq(length - 1),
                    after.phase.eq(Mux(length == 0, Role.LEN_HI, Role.BODY)),
                ]
            with m.Case(Role.BODY):
                # A count down, not ``pos + 1 == length``: no carry chain before the end.
                end = state.rest == 0
                m.d.comb += [
                    out.end.eq(end),
                    after.pos.eq(state.pos + 1),
                    after.rest.eq(state.rest - 1),
                    after.phase.eq(Mux(end, Role.LEN_HI, Role.BODY)),
                ]
    return out, after


class SoupBinFramer(wiring.Component):
    """Mark every followed payload byte with its SoupBin role, per session.

    Parameters
    ----------
    width : int
        Bytes per beat.
    regmap : RegisterMap
        Gives the number of sessions.

    Attributes
    ----------
    i : In(stream)
        :func:`wiregate.hw.ingress.tcp_tracker.tracked_beat_layout` beats.
    o : Out(stream)
        :func:`framed_beat_layout` beats, one cycle later. ``chain`` and ``save`` tell the
        next stage (which keeps its own per-session state) when to load and save it.

    Latency
    -------
    One cycle. At W = 8 the lanes of a beat are framed by a chain of eight steps.
    """

    def __init__(self, width, regmap):
        self._width = check_width(width)
        self._regmap = regmap
        super().__init__({
            "i": In(stream.Signature(tracked_beat_layout(width, regmap), always_ready=True)),
            "o": Out(stream.Signature(framed_beat_layout(width, regmap), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._regmap.n_sessions
        tracked = self.i.payload
        beat = tracked.beat.beat
        hdr = beat.header
        lanes = beat.lanes

        followed = self.i.valid & tracked.beat.hit & (
            (tracked.segment == Segment.NEW) | (tracked.segment == Segment.RETRANSMIT))
        active = [followed & beat.payload[k] for k in range(self._width)]
        frame_start = self.i.valid & lanes[0].keep & lanes[0].first

        # The frame's first payload beat loads the state; later beats continue it.
        started = Signal()
        loading = ~started | frame_start
        chain = Signal(Chain)
        with m.If(Cat(active).any() & loading):
            m.d.comb += chain.eq(Mux(tracked.segment == Segment.NEW, Chain.SAVED,
                                     Chain.FRESH))
        with m.If(self.i.valid):
            with m.If(frame_start):
                m.d.sync += started.eq(0)
            with m.If(Cat(active).any()):
                m.d.sync += started.eq(1)

        # Each session's saved state is a row of LUT RAM, not flip-flops: the RAM's read port
        # is the session select (a multiplexer of every session's state was most of the
        # block). Reset leaves it as it was: a session's state is read only for a new
        # segment, which follows a SYN, and the SYN's frame saved a fresh state.
        m.submodules.saved = saved = Memory(shape=STATE_LAYOUT, depth=n, init=[FRESH_STATE] * n,
                                            attrs={"ram_style": "distributed"})
        saved_read = saved.read_port(domain="comb")
        current = Signal(STATE_LAYOUT, init=FRESH_STATE)
        fresh = Const(FRESH_STATE, STATE_LAYOUT)
        m.d.comb += saved_read.addr.eq(tracked.beat.session)
        session_saved = saved_read.data
        # A frame's first payload beat loads the session's saved state for a new segment,
        # else a fresh one. The lanes' state is chosen as ``chain`` is but without
        # ``active`` (the tracker's hit and segment, late in the cycle: the path through
        # ``chain`` was the whole ingress's longest, 9.2 ns). A beat with no payload lane yet
        # loads a state no lane uses, and the frame's first payload beat loads it again.
        loaded = Signal(STATE_LAYOUT)
        m.d.comb += loaded.eq(Mux(tracked.segment == Segment.NEW, session_saved, fresh))
        if self._width == 1:
            # Picked a beat ahead, off the byte's path: at W = 1 the beat before a frame's
            # first payload byte is its last TCP header byte, which has the frame's session
            # and segment (from ``header.done``). A wider beat may hold both. (The segment's
            # select into the length arithmetic was the exchange port's longest path.)
            picked = Signal(STATE_LAYOUT)
            with m.If(self.i.valid):
                m.d.sync += picked.eq(loaded)
            loaded = picked
        # Lane 0 steps from both states, and ``loading`` (from the input's ``valid``) picks
        # after the length arithmetic, not before it (that select into ``current.rest`` was
        # the whole ingress's longest path, 8.1 ns).
        steps = [_step(m, start, active[0], lanes[0].data, f"lane0_{name}")
                 for start, name in ((loaded, "loaded"), (current, "continued"))]
        out, state = Signal(FRAMING_LAYOUT), Signal(STATE_LAYOUT)
        m.d.comb += [out.eq(Mux(loading, steps[0][0], steps[1][0])),
                     state.eq(Mux(loading, steps[0][1], steps[1][1]))]
        framing = [out]
        for k, lane in enumerate(lanes[1:], start=1):
            out, state = _step(m, state, active[k], lane.data, f"lane{k}")
            framing.append(out)
        with m.If(self.i.valid):
            m.d.sync += current.eq(state)

        # The saved state moves when the tracker commits: on a clean session frame's end.
        last, bad_fcs = frame_end(lanes)
        session_frame = tracked.beat.hit & (hdr.kind == FrameKind.TCP) & hdr.done
        commit = self.i.valid & last & session_frame & (beat.errors == 0) & ~bad_fcs
        save = Signal(Save)
        with m.If(commit):
            with m.If((hdr.flags & TCP_SYN) != 0):
                m.d.comb += save.eq(Save.FRESH)
            with m.Elif(tracked.segment == Segment.NEW):
                m.d.comb += save.eq(Save.CHAIN)
        # Written a cycle later, from registers: the session's next frame loads it no sooner
        # than its first payload byte, at least 54 bytes (7 beats) after this frame's end.
        # The state to save is ``current``'s then (a frame's last beat, which may save, is
        # a valid beat: ``current`` took the state after it).
        save_1 = Signal(Save)
        session_1 = Signal.like(tracked.beat.session)
        m.d.sync += [save_1.eq(save), session_1.eq(tracked.beat.session)]
        saved_write = saved.write_port()
        m.d.comb += [saved_write.addr.eq(session_1),
                     saved_write.data.eq(Mux(save_1 == Save.CHAIN, current, fresh)),
                     saved_write.en.eq((save_1 == Save.CHAIN) | (save_1 == Save.FRESH))]

        o = self.o.payload
        m.d.sync += [
            self.o.valid.eq(self.i.valid),
            o.beat.eq(tracked),
            o.framing.eq(Cat(framing)),
            o.chain.eq(chain),
            o.save.eq(save),
        ]
        return m
