"""Rate: every session's token bucket, throttle and trip (model rule 6), and its undo (rule 10)."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import RegisterMap

from ...tables import entry_layout

__all__ = ["Rate"]


def _saturating_increment(value):
    """``value + 1``, held at all ones: a counter that cannot wrap back to a small number."""
    return Mux(value.all(), value, value + 1)


class Rate(wiring.Component):
    """Token buckets of all sessions, in registers, refilled in parallel every microsecond.

    Each session keeps its bucket as the model does (:func:`wiregate.sw.model.tokens_at`):
    ``tokens`` as of the last refill instant credited, and instead of that instant (the
    model's ``refill_mark``) the microseconds until the next one, ``wait = refill_us - (t -
    refill_mark)``. At each microsecond (``tick``) a session whose ``wait`` is 1 gains a
    token (capped at ``burst``) and ``wait`` starts again at ``refill_us``, so no division
    is ever needed, nor any instant, nor a subtractor for the restart: ``tick`` is the only
    time input.
    ``refill_us`` 0 never refills.

    The model's ``rate_take`` is the judgment, ``rate_commit`` the commit and
    ``rate_give_back`` the restore, with one difference from the model as it stands: a
    re-commit that *changes* a loaded session's ``refill_us`` starts the new interval at
    the commit, where ``rate_commit`` keeps the last refill instant and so would credit at
    once every new interval that fits in the time elapsed since (a division). That never
    gives more tokens than the model; a re-commit with the same ``refill_us`` keeps the
    session's refill instants, exactly as the model does.

    A judgment, a restore and a commit each come in a cycle of their own: each is one
    event's, and the engine executes one event at a time. The microsecond's refill comes
    first in its cycle (the cycle's ``now_us`` is the time of everything else) and the
    checkpoint before the judgment, so a judgment in a refill cycle sees the new token.
    That the three never share a cycle keeps the judgment's take (which waits for every
    other check, ``others_fired``) out of the restore's and the commit's sums: the take
    is the last step before a bucket's register.

    With ``take_latency`` 1 (the engine at W = 1, where an event writes a cycle after it is
    judged) the take is registered and lands in the cycle after the judgment, which must
    hold no judgment, checkpoint, restore or commit: the judgment's fire and trip then
    wait for nothing but the bucket, and ``others_fired`` goes straight into a register.
    The bucket is the model's all the same: in that cycle a refill counts the pending
    take (a full bucket whose token is being taken still gains the refill), and the
    read-back shows the bucket and the throttle as the take leaves them.

    Parameters
    ----------
    regmap : RegisterMap
        Gives ``n_sessions`` and the ``session_limits`` entry layout.
    take_latency : 0 or 1
        Cycles from a judgment to its take.

    Attributes
    ----------
    tick : In(1)
        From :class:`wiregate.hw.risk.timebase.Timebase`: ``now_us`` stepped this cycle.
    commit : In(valid, limits, loaded)
        ``valid``: the limits banks swap this cycle. ``limits``: every session's newly
        active ``session_limits`` entry; ``loaded``: bit ``s`` when session ``s`` is in the
        committed limits. The component keeps its own copy of the previous ones.
    judge : In(valid, session, others_fired; fire, trip)
        An Enter or Replace of ``session`` at the execute stage (not in a cycle with
        ``restore`` or ``commit.valid``); ``others_fired``: any
        other check fired (no token is taken). ``fire``: RATE (the bucket is empty);
        ``trip``: the session's kill latch must be set. Both are 0 for a session that is not
        loaded and when ``valid`` is low.
    checkpoint : In(valid, session)
        The first message of a client frame: remember ``session``'s ``throttle_count`` and
        ``throttled`` (before this cycle's judgment) and count the tokens its judgments
        take from now on (this cycle's included). A new checkpoint replaces the old one.
    restore : In(1)
        The checkpointed frame ended void (not in a cycle with a judgment, a checkpoint or
        a commit): give back the tokens counted (capped at
        ``burst``; none when the session is no longer loaded) and put ``throttle_count``
        and ``throttled`` back. Acts on the checkpoint's session, then forgets the
        checkpoint (a second restore does nothing). A kill latch set by a trip stays set.
    tokens : Out(ArrayLayout(32, n_sessions))
        Each session's tokens as of this cycle's ``now_us`` (0 when not loaded).
    throttled : Out(n_sessions)
    throttle_count : Out(ArrayLayout(32, n_sessions))
        Saturates at all ones, where the model keeps counting; the trip decides the same
        (a saturated count is at or above every ``trip_after``). The tokens taken since
        the checkpoint saturate too, above every ``burst`` they are capped at.

    Latency
    -------
    ``fire`` and ``trip`` are combinational from the registered state and the ``judge`` and
    ``tick`` inputs. Every update lands at the clock edge (a take at ``take_latency`` 1 at
    the next one), so the next judgment of the same session sees it. The read-back outputs
    are combinational from registers and ``tick``.
    """

    def __init__(self, regmap, *, take_latency=0):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        if take_latency not in (0, 1):
            raise ValueError(f"take_latency must be 0 or 1, not {take_latency!r}")
        self._regmap = regmap
        self._take_latency = take_latency
        n = regmap.n_sessions
        limits = entry_layout(regmap, "session_limits")
        burst, refill, trip_after = (limits[name].shape for name in (
            "rate_burst", "rate_refill_us", "rate_trip_after"))
        # Per session: the rate limits last committed, and the bucket.
        self._limits = data.StructLayout({
            "loaded": 1,
            "burst": burst,
            "refills": 1,
            "refill_us": refill,
            "trip_after": trip_after,
        })
        self._bucket = data.StructLayout({
            "tokens": burst,
            "wait": refill,
            "throttled": 1,
            "throttle_count": trip_after,
        })
        self._checkpoint = data.StructLayout({
            "armed": 1,
            "session": range(n),
            "taken": burst,
        })
        self._saved = data.StructLayout({"throttle_count": trip_after, "throttled": 1})
        super().__init__({
            "tick": In(1),
            "commit": In(wiring.Signature({
                "valid": Out(1),
                "limits": Out(data.ArrayLayout(limits, n)),
                "loaded": Out(n),
            })),
            "judge": In(wiring.Signature({
                "valid": Out(1),
                "session": Out(range(n)),
                "others_fired": Out(1),
                "fire": In(1),
                "trip": In(1),
            })),
            "checkpoint": In(wiring.Signature({"valid": Out(1), "session": Out(range(n))})),
            "restore": In(1),
            "tokens": Out(data.ArrayLayout(burst, n)),
            "throttled": Out(n),
            "throttle_count": Out(data.ArrayLayout(trip_after, n)),
        })

    @property
    def regmap(self):
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        n = self._regmap.n_sessions
        # Per-session registers, read through Array (a plain n-way mux) where the session
        # is a signal.
        limits = [Signal(self._limits, name=f"limits{s}") for s in range(n)]
        buckets = [Signal(self._bucket, name=f"bucket{s}") for s in range(n)]
        checkpoint = Signal(self._checkpoint)
        judge = self.judge

        # At take_latency 1 the take is last cycle's judgment's: a token was owed (the
        # bucket was not empty) and no other check fired.
        owed = Signal()
        owed_by = Signal(n)         # the same, a bit per session: no compare behind the take
        pending = [Const(0)] * n
        if self._take_latency:
            take_session = Signal.like(judge.session)
            others_fired = Signal()
            m.d.sync += [take_session.eq(judge.session), others_fired.eq(judge.others_fired)]
            take = owed & ~others_fired
            pending = [owed_by[s] & ~others_fired for s in range(n)]

        # 1. The microsecond: every bucket as of this cycle's now_us. Tokens never exceed
        # the burst (every write caps them), so "not full" is an equality test; a bucket
        # whose token is being taken is not full.
        refills, empties, refilled = [], [], []
        for s, (lim, b) in enumerate(zip(limits, buckets, strict=True)):
            refill = Signal(name=f"refill{s}")
            empty = Signal(name=f"empty{s}")
            visible = Signal.like(b.tokens, name=f"refilled{s}")
            step = Signal(signed(2), name=f"pending_step{s}")
            m.d.comb += [
                refill.eq(self.tick & lim.loaded & lim.refills & (b.wait == 1)
                          & ((b.tokens != lim.burst) | pending[s])),
                empty.eq((b.tokens == 0) & ~refill),
                # One adder: the refill and the pending take make a step in -1..1 first.
                step.eq(refill - pending[s]),
                visible.eq(b.tokens + step),
                self.tokens[s].eq(visible),
                self.throttled[s].eq(b.throttled & ~pending[s]),
                self.throttle_count[s].eq(Mux(pending[s], 0, b.throttle_count)),
            ]
            refills.append(refill)
            empties.append(empty)
            refilled.append(visible)

        def select(signals, index, name):
            """One session's signal, muxed once however many places use it."""
            value = Signal.like(signals[0], name=name)
            m.d.comb += value.eq(Array(signals)[index])
            return value

        # 2. The checkpoint, before this cycle's judgment. Every session's throttle state is
        # copied at every checkpoint, and the restore puts back its session's copy: no select
        # of the checkpoint session's state.
        opened = Signal(self._checkpoint)
        m.d.comb += opened.eq(checkpoint)
        saved = [Signal(self._saved, name=f"saved{s}") for s in range(n)]
        with m.If(self.checkpoint.valid):
            m.d.comb += [
                opened.armed.eq(1),
                opened.session.eq(self.checkpoint.session),
                opened.taken.eq(0),
            ]
            m.d.sync += [saved[s].eq(Cat(b.throttle_count, b.throttled))
                         for s, b in enumerate(buckets)]

        # 3. The judgment (model rate_take).
        j_empty = select(empties, judge.session, "j_empty")
        j_trip_after = select([lim.trip_after for lim in limits], judge.session, "j_trip_after")
        j_count = Signal.like(j_trip_after)
        m.d.comb += j_count.eq(_saturating_increment(
            select([b.throttle_count for b in buckets], judge.session, "j_throttle_count")))
        judging = judge.valid & select([lim.loaded for lim in limits], judge.session, "j_loaded")
        if self._take_latency:
            m.d.sync += [owed.eq(judging & ~j_empty),
                         owed_by.eq(Mux(judging & ~j_empty, 1 << judge.session, 0))]
        else:
            take, take_session = judging & ~j_empty & ~judge.others_fired, judge.session
        m.d.comb += [
            judge.fire.eq(judging & j_empty),
            judge.trip.eq(judge.fire & (j_trip_after != 0) & (j_count >= j_trip_after)),
        ]
        counted = opened.armed & take & (take_session == opened.session)
        taken = Mux(counted, _saturating_increment(opened.taken), opened.taken)

        # The bucket after the refill and the take: one adder of a step in -1..1, the take
        # its last input (at take_latency 1 that is the refilled bucket itself).
        judged_tokens = refilled
        if not self._take_latency:
            judged_tokens = []
            for s, b in enumerate(buckets):
                step = Signal(signed(2), name=f"step{s}")
                m.d.comb += step.eq(refills[s] - (take & (take_session == s)))
                judged = Signal.like(b.tokens, name=f"judged_tokens{s}")
                m.d.comb += judged.eq(b.tokens + step)
                judged_tokens.append(judged)

        # 4. The restore (model rate_give_back), on the checkpoint's session: the tokens
        # it has, plus those taken since the checkpoint, capped (no judgment or take this
        # cycle). The refill is the sum's third term, not an adder before it.
        restoring = self.restore & checkpoint.armed
        r_burst = select([lim.burst for lim in limits], checkpoint.session, "r_burst")
        given = Signal(len(r_burst) + 1)
        m.d.comb += given.eq(select([b.tokens for b in buckets], checkpoint.session, "r_tokens")
                             + checkpoint.taken
                             + select(refills, checkpoint.session, "r_refill"))
        given_back = Mux(given > r_burst, r_burst, given)

        # 5. Every session's next state: judgment, restore, then the commit (rate_commit).
        for s, (lim, b) in enumerate(zip(limits, buckets, strict=True)):
            judged = judge.session == s
            took = take & (take_session == s)
            restored = restoring & (checkpoint.session == s)
            m.d.sync += [
                b.tokens.eq(judged_tokens[s]),
                b.wait.eq(Mux(self.tick & (b.wait == 1), lim.refill_us, b.wait - self.tick)),
            ]
            with m.If(restored & lim.loaded):
                m.d.sync += b.tokens.eq(given_back)
            with m.If(restored):
                m.d.sync += [
                    b.throttle_count.eq(saved[s].throttle_count),
                    b.throttled.eq(saved[s].throttled),
                ]
            with m.Elif(judge.fire & judged):
                m.d.sync += [b.throttle_count.eq(j_count), b.throttled.eq(1)]
            with m.Elif(took):
                m.d.sync += [b.throttle_count.eq(0), b.throttled.eq(0)]

            new = self.commit.limits[s]
            with m.If(self.commit.valid):
                m.d.sync += [
                    lim.loaded.eq(self.commit.loaded[s]),
                    lim.burst.eq(new.rate_burst),
                    lim.refills.eq(new.rate_refill_us != 0),
                    lim.refill_us.eq(new.rate_refill_us),
                    lim.trip_after.eq(new.rate_trip_after),
                ]
                with m.If(~self.commit.loaded[s]):
                    m.d.sync += b.tokens.eq(0)
                # Newly loaded: a full bucket. A re-commit never refills: it caps the
                # bucket at the new burst (no judgment or take this cycle). The refilled
                # bucket is compared from the register, not through the refill's adder.
                above = (b.tokens > new.rate_burst) | (refills[s] & (b.tokens == new.rate_burst))
                with m.Elif(~lim.loaded | above):
                    m.d.sync += b.tokens.eq(new.rate_burst)
                # Newly loaded, or the refill interval changed: refill instants count from
                # now.
                with m.If(~lim.loaded | (lim.refill_us != new.rate_refill_us)):
                    m.d.sync += b.wait.eq(new.rate_refill_us)

        m.d.sync += [checkpoint.eq(opened), checkpoint.taken.eq(taken)]
        with m.If(self.restore):
            m.d.sync += checkpoint.armed.eq(0)
        return m
