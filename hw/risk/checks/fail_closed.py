"""Fail closed: no limits loaded, the host silent, or the session out of sync (rules 2 and 5)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import RegisterMap

from ...counters import count_event
from ...tables import entry_layout

__all__ = ["FailClosed"]


class FailClosed(wiring.Component):
    """The checks that reject an order because the gate cannot judge it.

    NOT_LOADED fires until a commit has loaded the order's session; HEARTBEAT fires once
    limits are committed and the host has been silent for longer than the active
    ``heartbeat_timeout_us`` (:func:`wiregate.sw.model.heartbeat_fires`); OUT_OF_SYNC fires
    while the session's in-sync bit is clear (rule 2).

    The watchdog counts the microseconds since the last heartbeat instead of storing its
    ``now_us`` (the same ``t - last_heartbeat``, with no 64-bit subtraction): a heartbeat
    strobe, and the first commit, restart it at 0. It is one bit wider than the timeout and
    saturates, so a silence past every timeout stays past it: exact for any silence.

    In one cycle a judgment comes before the commit and the heartbeat (the model's order
    for a judgment before a control event at the same ``t``): it sees the limits and the
    heartbeat as they were.

    Parameters
    ----------
    regmap : RegisterMap
        Gives ``n_sessions`` and the ``gateway_limits`` entry layout.

    Attributes
    ----------
    tick : In(1)
        From :class:`wiregate.hw.risk.timebase.Timebase`: ``now_us`` stepped this cycle.
    commit : In(valid, gateway)
        ``valid``: the limit banks swap this cycle; ``gateway``: the newly active
        ``gateway_limits`` entry (only ``heartbeat_timeout_us`` is used).
    heartbeat : In(1)
        The host's heartbeat.
    in_sync : In(n_sessions)
        Each session's in-sync flag (from the stream trackers).
    judge : In(session, session_loaded; not_loaded, heartbeat, out_of_sync)
        The message's session and whether the active limits hold it. The outputs are the
        reason bits NOT_LOADED, HEARTBEAT, OUT_OF_SYNC.
    loaded : Out(1)
        A commit has happened since reset (``status.limits_loaded``).
    heartbeat_lost : Out(1)
        The host is silent past the timeout (``status.heartbeat_lost``); equals
        ``judge.heartbeat``.

    Latency
    -------
    Every output is combinational from the registers, ``judge`` and ``tick``; commits and
    heartbeats land at the clock edge, so the next cycle's judgment sees them.
    """

    def __init__(self, regmap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._regmap = regmap
        super().__init__({
            "tick": In(1),
            "commit": In(wiring.Signature({
                "valid": Out(1),
                "gateway": Out(entry_layout(regmap, "gateway_limits")),
            })),
            "heartbeat": In(1),
            "in_sync": In(regmap.n_sessions),
            "judge": In(wiring.Signature({
                "session": Out(range(regmap.n_sessions)),
                "session_loaded": Out(1),
                "not_loaded": In(1),
                "heartbeat": In(1),
                "out_of_sync": In(1),
            })),
            "loaded": Out(1),
            "heartbeat_lost": Out(1),
        })

    @property
    def regmap(self):
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        timeout = Signal.like(self.commit.gateway.heartbeat_timeout_us)
        silent_us = Signal(len(timeout) + 1)     # as of the previous cycle's now_us

        count_event(m, silent_us, self.tick)
        with m.If(self.heartbeat | (self.commit.valid & ~self.loaded)):
            m.d.sync += silent_us.eq(0)
        with m.If(self.commit.valid):
            m.d.sync += [
                self.loaded.eq(1),
                timeout.eq(self.commit.gateway.heartbeat_timeout_us),
            ]

        m.d.comb += [
            self.heartbeat_lost.eq(self.loaded & (silent_us + self.tick > timeout)),
            self.judge.not_loaded.eq(~(self.loaded & self.judge.session_loaded)),
            self.judge.heartbeat.eq(self.heartbeat_lost),
            self.judge.out_of_sync.eq(~self.in_sync.bit_select(self.judge.session, 1)),
        ]
        return m
