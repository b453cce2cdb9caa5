"""The gateway core: both ports' paths, the risk engine, the control port and the drop copy.

Board-agnostic: four MAC-side beat streams (receive and transmit toward the clients and
toward the exchange), the control port (a 32-bit word bus onto the register map) and the
drop-copy byte stream. The board shell adds the MACs and the transports.

Toward the exchange, every received beat goes two ways: into the client ingress (parse,
session, stream, SoupBin, OUCH extraction) and into the holdback line, ``H`` bytes long. The
ingress's events go to the engine; its verdicts, the frame decisions (drop a frame of no
session) and the void frames go to the rewrite, which sits between the holdback and the
transmit MAC and acts on the bytes as they leave. ``H`` is the least that puts every record
there in time (:func:`wiregate.hw.egress.holdback_size.holdback_bytes`), checked here at
elaboration.

Toward the clients, frames pass unchanged (one register); the exchange ingress reads them
beside the path, and its events wait in the event hold until their frame ends good, then go
to the engine.

Clocks: everything runs on the byte clock (``sync``) but the risk engine at W = 1, which runs
at half of it in the ``engine`` domain, its rising edges on the byte clock's
(:mod:`wiregate.hw.risk.half_rate`); the board's PLL, or the bench, drives both.

One hop, one ``connect`` (or one assignment block where a hop adapts a record).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.model import backlog_marks
from wiregate.sw.reasons import Reason
from wiregate.sw.timebase import CLOCK_HZ

from .control.dropcopy import DropCopy
from .control.executor import COUNTERS as CONTROL_COUNTERS
from .control.register_file import RegisterFile
from .counters import LIVE_BITS, live_event, live_one_of
from .egress.holdback import Holdback
from .egress.holdback_size import check_holdback, holdback_bytes, reject_depth, tag_bits
from .egress.rewrite import Rewrite
from .ingress.ingress import DECISION_LATENCY, Ingress
from .risk.engine import Engine, engine_latency
from .risk.event_hold import EventHold
from .risk.half_rate import HalfRateEngine, half_rate_latency
from .stream import beat_signature, check_width, frame_end
from .timebase import Timebase

__all__ = ["Core", "core_holdback", "core_latencies"]

# The byte after a frame's 4-tuple at the latest: Ethernet, 802.1Q, IPv4 with every option,
# the TCP ports.
MAX_TUPLE_END = 14 + 4 + 60 + 4
FRAME_SLOT = 64 + 20        # least byte times a frame takes on the wire (frame, preamble, gap)
# The engine's state read-back, brought out for benches: the state the model keeps, and the
# exposure and order-table peek ports (which the register file's table reads take while one
# waits).
READBACK = ("credit_used", "gateway_credit_used", "last_user_ref_num", "unmatched", "in_sync",
            "kill_gateway", "kill_sessions", "tokens", "throttled", "throttle_count",
            "peek_exposure", "peek_order")


def core_latencies(width):
    """The core's latencies in cycles from the MAC-side beat, as ``holdback_bytes`` takes them.

    - verdict: the settling byte's beat through the ingress and the engine to the reject (at
      W = 1 the engine at half the byte clock, its crossings included);
    - decision: the frame's first byte to its drop-or-pass record, which waits for the
      4-tuple (its last byte at most :data:`MAX_TUPLE_END` - 1 into the frame), then the
      ingress's :data:`~wiregate.hw.ingress.ingress.DECISION_LATENCY`, then one register;
    - void: the frame's last byte through the ingress, plus one register.
    """
    check_width(width)
    return {
        "verdict_latency": Ingress.latency + (half_rate_latency() if width == 1
                                              else engine_latency(width)),
        "decision_latency": (MAX_TUPLE_END - 1) // width + DECISION_LATENCY + 1,
        "void_latency": Ingress.latency + 1,
    }


def core_holdback(width):
    """H at ``width``: what the core's ``regmap`` must be built with (``holdback=``)."""
    return holdback_bytes(width, **core_latencies(width))


class Core(wiring.Component):
    """The gateway between the client port and the exchange port.

    Parameters
    ----------
    width : int
        Bytes per beat (1: 1 GbE at 125 MHz, 8: 10 GbE at 156.25 MHz).
    regmap : RegisterMap
        Table sizes (among them ``n_executions`` and ``dropcopy_depth``) and the register
        map, usually a build profile's (:mod:`wiregate.sw.profiles`); its ``beat_bytes`` and
        ``holdback`` must be ``width`` and :attr:`holdback` (the ID block reports them all).
    backlog_high, backlog_low : int or None
        The drop-copy marks of model rule 11, in records: BACKLOG from ``backlog_high``
        until the fill is below ``backlog_low``. None:
        :func:`wiregate.sw.model.backlog_marks` of the queue's depth (``docs/risk-core.md``).

    Attributes
    ----------
    client_rx, exchange_rx : In(stream)
        Beats from the receive MACs.
    exchange_tx, client_tx : Out(stream)
        Beats to the transmit MACs.
    control : In(bus)
        The register file's word bus (:class:`wiregate.hw.control.register_file.RegisterFile`).
    dropcopy : Out(stream)
        The drop-copy records as bytes (:mod:`wiregate.sw.dropcopy`), with backpressure.
    count_control_commands, count_control_frame_errors, count_control_command_errors : In
        The control port's counters (:class:`~wiregate.hw.control.control_port.ControlPort`,
        which sits above the core, :mod:`wiregate.hw.gateway`), read at the register map's
        counters of the same names (live counters, :data:`wiregate.hw.counters.LIVE_BITS`
        wide); 0 when nothing drives them.
    credit_used, ..., peek_exposure, peek_order
        The engine's read-back (:data:`READBACK`, see :class:`~wiregate.hw.risk.engine.Engine`).
    """

    def __init__(self, width, regmap, *, backlog_high=None, backlog_low=None):
        self._width = check_width(width)
        self._regmap = regmap
        depth = regmap.dropcopy_depth
        if backlog_high is None and backlog_low is None:
            backlog_high, backlog_low = backlog_marks(depth)
        if backlog_high is None or backlog_low is None or backlog_high > depth:
            raise ValueError(f"backlog marks {backlog_high}, {backlog_low}: give both, the "
                             f"high one at most the queue's {depth} records")
        self.backlog_high, self.backlog_low = backlog_high, backlog_low
        self._holdback = core_holdback(width)
        if regmap.beat_bytes != width or regmap.holdback != self._holdback:
            raise ValueError(f"regmap is built for W={regmap.beat_bytes}, H={regmap.holdback}; "
                             f"this core is W={width}, H={self._holdback}")
        self._register_file = RegisterFile(regmap)
        # At W = 1 the engine runs at half the byte clock (the ``engine`` clock domain, which
        # the board or the bench drives).
        engine = HalfRateEngine if width == 1 else Engine
        self._engine = engine(regmap, n_executions=regmap.n_executions,
                              frame_bits=tag_bits(width, self._holdback, FRAME_SLOT),
                              backlog_high=backlog_high, backlog_low=backlog_low)
        readback = {name: self._engine.signature.members[name] for name in READBACK}
        super().__init__({
            **readback,
            "client_rx": In(beat_signature(width)),
            "exchange_tx": Out(beat_signature(width)),
            "exchange_rx": In(beat_signature(width)),
            "client_tx": Out(beat_signature(width)),
            "control": self._register_file.signature.members["bus"],
            "dropcopy": Out(beat_signature(width, always_ready=False)),
            **{f"count_{name}": In(LIVE_BITS) for name in CONTROL_COUNTERS},
        })

    @property
    def holdback(self):
        """H, the holdback in bytes."""
        return self._holdback

    @property
    def width(self):
        return self._width

    def _table_reads(self, m, registers, engine):
        """The register file's table reads onto the engine's read ports; the benches' peeks
        of exposure and orders when no table read waits."""
        regmap = self._regmap
        symbol_bits, order_bits = regmap.symbol_index_bits, (regmap.n_orders - 1).bit_length()
        exposure, order = registers.read_exposure, registers.read_order
        taken = registers.reading
        m.d.comb += [
            engine.peek_exposure.symbol.eq(Mux(taken, exposure.index[:symbol_bits],
                                               self.peek_exposure.symbol)),
            engine.peek_exposure.session.eq(Mux(taken, exposure.index[symbol_bits:],
                                                self.peek_exposure.session)),
            engine.peek_order.slot.eq(Mux(taken, order.index[:order_bits],
                                          self.peek_order.slot)),
            engine.peek_order.session.eq(Mux(taken, order.index[order_bits:],
                                             self.peek_order.session)),
            exposure.ok.eq(engine.peek_exposure.ok),
            order.ok.eq(engine.peek_order.ok),
            order.data.valid.eq(engine.peek_order.valid),
            *(exposure.data[f.name].eq(engine.peek_exposure.data[f.name])
              for f in regmap.table("exposure").fields),
            *(order.data[f.name].eq(engine.peek_order.data[f.name])
              for f in regmap.table("order").fields if f.name != "valid"),
        ]
        limits = engine.peek_limits
        m.d.comb += [limits.session.eq(registers.read_session_limits.index),
                     limits.symbol.eq(registers.read_symbol_limits.index)]
        for table in ("session", "session_limits", "gateway_limits", "symbol_limits"):
            port = getattr(registers, f"read_{table}")
            source = limits.session_entry if table == "session" else getattr(limits, table)
            m.d.comb += [port.data.eq(source), port.ok.eq(limits.ok)]
        hashes, kills = registers.read_symbol_hash, registers.read_kill_symbols
        m.d.comb += [
            engine.peek_symbol_hash.slot.eq(hashes.index),
            hashes.data.eq(engine.peek_symbol_hash.data), hashes.ok.eq(engine.peek_symbol_hash.ok),
            engine.peek_kill_symbols.index.eq(kills.index),
            kills.data.bits.eq(engine.peek_kill_symbols.bits),
            kills.ok.eq(engine.peek_kill_symbols.ok),
            registers.gateway_credit_used.eq(engine.gateway_credit_used),
        ]
        for s in range(regmap.n_sessions):
            state = registers.session_state[s]
            m.d.comb += [state.credit_used.eq(engine.credit_used[s]),
                         state.throttled.eq(engine.throttled[s]),
                         *(state[name].eq(getattr(engine, name)[s]) for name in (
                             "last_user_ref_num", "tokens", "throttle_count"))]

    def elaborate(self, platform):
        m = Module()
        width, regmap = self._width, self._regmap
        holdback = self._holdback
        check_holdback(width, holdback, **core_latencies(width))
        tags = tag_bits(width, holdback, FRAME_SLOT)

        m.submodules.timebase = timebase = Timebase(CLOCK_HZ[width])
        m.submodules.registers = registers = self._register_file
        wiring.connect(m, host=wiring.flipped(self.control), registers=registers.bus)
        m.submodules.client_ingress = client = Ingress(width, regmap, toward_exchange=True)
        m.submodules.exchange_ingress = exchange = Ingress(width, regmap, toward_exchange=False)
        m.submodules.engine = engine = self._engine
        m.submodules.holdback = line = Holdback(width, holdback)
        m.submodules.rewrite = rewrite = Rewrite(
            width, tag_bits=tags, reject_depth=reject_depth(width, holdback))
        m.submodules.event_hold = hold = EventHold(width, regmap)
        m.submodules.dropcopy = dropcopy = DropCopy(width, regmap, depth=regmap.dropcopy_depth)

        # Toward the exchange: the MAC feeds the ingress and the holdback; the holdback
        # feeds the rewrite, the rewrite the MAC.
        m.d.comb += [
            client.i.valid.eq(self.client_rx.valid), client.i.payload.eq(self.client_rx.payload),
            line.i.valid.eq(self.client_rx.valid), line.i.payload.eq(self.client_rx.payload),
        ]
        wiring.connect(m, line=line.o, rewrite=rewrite.i)
        wiring.connect(m, rewrite=rewrite.o, mac=wiring.flipped(self.exchange_tx))

        # Toward the clients: pass-through; the exchange ingress reads beside the path.
        m.d.sync += [self.client_tx.valid.eq(self.exchange_rx.valid),
                     self.client_tx.payload.eq(self.exchange_rx.payload)]
        m.d.comb += [exchange.i.valid.eq(self.exchange_rx.valid),
                     exchange.i.payload.eq(self.exchange_rx.payload)]
        wiring.connect(m, ingress=exchange.o, hold=hold.i)
        wiring.connect(m, hold=hold.o, engine=engine.exchange)

        # The client ingress's beats: frame tags (counted by first byte, as the rewrite
        # counts), the events and the frame ends.
        beat = client.o.payload
        lanes = beat.beat.beat.beat.beat.lanes
        starts = client.o.valid & Cat(lane.keep & lane.first for lane in lanes).any()
        ends, _ = frame_end(lanes)
        ends = ends & client.o.valid
        tag = Signal(tags)          # the tag of the frame on the ingress output
        next_tag = Signal(tags)     # the tag the next frame will get
        with m.If(starts):
            m.d.comb += tag.eq(next_tag)
            m.d.sync += next_tag.eq(next_tag + 1)
        with m.Else():
            m.d.comb += tag.eq(next_tag - 1)

        # The decisions come one per frame, in frame order, ahead of the frame's beats here.
        decision_tag = Signal(tags)
        with m.If(client.decision.valid):
            m.d.sync += decision_tag.eq(decision_tag + 1)
        m.d.sync += [
            rewrite.frames.valid.eq(client.decision.valid),
            rewrite.frames.payload.frame.eq(decision_tag),
            rewrite.frames.payload.drop.eq(client.decision.payload.drop),
            rewrite.void.valid.eq(ends & beat.void),
            rewrite.void.payload.frame.eq(tag),
        ]

        event = beat.event
        has_event = client.o.valid & event.valid
        judged = Signal()       # an earlier beat of this frame had an event
        with m.If(has_event):
            m.d.sync += judged.eq(1)
        with m.Elif(starts):
            m.d.sync += judged.eq(0)
        judged = judged & ~starts
        m.d.comb += [
            engine.client.valid.eq(has_event),
            engine.client.payload.event.eq(event),
            engine.client.payload.opens_frame.eq(~judged),
            engine.client.payload.frame.eq(tag),
        ]
        # The frame end reaches the engine a cycle later: never with an event of its frame.
        m.d.sync += [engine.frame_end.valid.eq(ends & (judged | has_event)),
                     engine.frame_end.void.eq(beat.void)]

        # Verdicts: a reject rewrites its packet.
        verdict = engine.verdict
        m.d.comb += [
            rewrite.rejects.valid.eq(verdict.valid & ~verdict.accept),
            rewrite.rejects.payload.frame.eq(verdict.frame),
            rewrite.rejects.payload.offset.eq(verdict.type_offset),
        ]

        # Timebase (the half-rate engine makes its own tick).
        m.d.comb += [engine.now_us.eq(timebase.now_us), engine.cycle.eq(timebase.cycle)]
        if width != 1:
            m.d.comb += engine.tick.eq(timebase.tick)

        # Host writes: the engine's tables, and both ingresses' session and pass-rule tables.
        for table in ("session_limits", "symbol_limits", "gateway_limits", "symbol_hash"):
            wiring.connect(m, registers=getattr(registers, f"write_{table}"),
                           engine=getattr(engine, f"write_{table}"))
        sessions = registers.write_session
        rules = registers.write_pass_rule
        for port in (engine.write_session, client.write_session, exchange.write_session):
            m.d.comb += [port.en.eq(sessions.en), port.index.eq(sessions.index),
                         port.entry.eq(sessions.entry)]
        for port in (client.write_pass_rule, exchange.write_pass_rule):
            m.d.comb += [port.en.eq(rules.en), port.index.eq(rules.index),
                         port.entry.eq(rules.entry)]

        # Control events: session sync changes first, then the host's. (A drop-copy overflow
        # sets no latch: BACKLOG keeps the queue from filling, and a loss is counted and
        # shows as a sequence gap.)
        n = regmap.n_sessions
        overflowed = Signal(n)      # a session whose exchange events were lost, until resync
        exchange_in_sync = exchange.in_sync
        was_in_sync = Signal(n, init=(1 << n) - 1)
        m.d.sync += [
            was_in_sync.eq(exchange_in_sync),
            overflowed.eq((overflowed & ~(exchange_in_sync & ~was_in_sync))
                          | (Mux(hold.overflow, 1, 0) << hold.overflow_session)[:n]),
        ]
        in_sync = Signal(n)
        m.d.comb += in_sync.eq(client.in_sync & exchange_in_sync & ~overflowed)
        reported = Signal(n, init=(1 << n) - 1)     # the engine's view, as queued
        differs = in_sync ^ reported
        lowest = Signal(range(n))
        for s in reversed(range(n)):
            with m.If(differs[s]):
                m.d.comb += lowest.eq(s)
        control = engine.control
        with m.If(differs.any()):
            m.d.comb += [control.valid.eq(1), control.payload.code.eq(Control.SESSION_SYNC),
                         control.payload.index.eq(lowest),
                         control.payload.in_sync.eq(in_sync.bit_select(lowest, 1))]
            with m.If(control.ready):
                m.d.sync += reported.bit_select(lowest, 1).eq(in_sync.bit_select(lowest, 1))
        with m.Else():
            m.d.comb += [control.valid.eq(registers.control.valid),
                         control.payload.eq(registers.control.payload),
                         registers.control.ready.eq(control.ready)]
        # The ingresses' session tables swap with the commit's record, after the engine's
        # banks (``docs/voids.md``: a frame's orders may meet the limits of a commit made
        # after its session was taken, never the other way).
        record = engine.record.payload
        swap = (engine.record.valid & (record.kind == Kind.CONTROL)
                & (record.control == Control.COMMIT))
        m.d.comb += [client.swap.eq(swap), exchange.swap.eq(swap)]

        # The drop copy: the engine's records (the engine orders them all).
        wiring.connect(m, engine=engine.record, dropcopy=dropcopy.i)
        m.d.comb += engine.queued.eq(dropcopy.queued)
        wiring.connect(m, dropcopy=dropcopy.o, host=wiring.flipped(self.dropcopy))

        for name in READBACK:
            if name.startswith("peek_"):
                bench, port = getattr(self, name), getattr(engine, name)
                m.d.comb += [bench.data.eq(port.data), bench.ok.eq(port.ok)]
            else:
                m.d.comb += getattr(self, name).eq(getattr(engine, name))
        m.d.comb += self.peek_order.valid.eq(engine.peek_order.valid)
        self._table_reads(m, registers, engine)

        # Status and read-back.
        m.d.comb += [
            registers.loaded.eq(engine.loaded),
            registers.active_bank.eq(engine.active_bank),
            registers.heartbeat_lost.eq(engine.heartbeat_lost),
            registers.commit_pending.eq(engine.commit_pending),
            registers.epoch.eq(engine.epoch),
            registers.timebase_us.eq(timebase.now_us),
            registers.in_sync.eq(engine.in_sync),
            registers.kill_gateway.eq(engine.kill_gateway),
            registers.kill_sessions.eq(engine.kill_sessions),
        ]

        # Counters (the register map's list), counted here where no block counts them: live
        # counters, which the register file sums into its totals.
        def frames_on(port):
            counter = Signal(LIVE_BITS)
            live_event(m, counter, port.valid & Cat(lane.keep & lane.first
                                                    for lane in port.payload).any())
            return counter

        def fcs_errors(port):
            counter = Signal(LIVE_BITS)
            _, bad = frame_end(port.payload)
            live_event(m, counter, port.valid & bad)
            return counter

        verdicts = engine.record.valid & (record.kind == Kind.VERDICT)
        counted = {
            "frames_client_rx": client.count_frames,
            "frames_exchange_tx": frames_on(self.exchange_tx),
            "frames_exchange_rx": exchange.count_frames,
            "frames_client_tx": frames_on(self.client_tx),
            "dropped_no_session": client.count_dropped,
            "dropcopy_records": dropcopy.count_records,
            "dropcopy_overflow": dropcopy.count_overflow,
        }
        for name, condition in (("orders_accepted", verdicts & record.accept),
                                ("orders_rejected", verdicts & ~record.accept)):
            counted[name] = Signal(LIVE_BITS, name=f"count_{name}")
            live_event(m, counted[name], condition)
        by_reason = [Signal(LIVE_BITS, name=f"count_reject_{reason.name.lower()}")
                     for reason in Reason]
        live_one_of(m, by_reason, record.primary, verdicts & ~record.accept)
        for reason, counter in zip(Reason, by_reason, strict=True):
            counted[f"reject_{reason.name.lower()}"] = counter
        malformed = Signal(LIVE_BITS)
        live_event(m, malformed, (client.o.valid & event.valid & event.malformed.any())
                   | (exchange.o.valid & exchange.o.payload.event.valid
                      & exchange.o.payload.event.malformed.any()))
        counted["malformed"] = malformed
        # A sum of two live counters is one (it moves by at most LIVE_STEP a cycle).
        retransmissions = Signal(LIVE_BITS)
        m.d.comb += retransmissions.eq(client.count_retransmits + exchange.count_retransmits)
        counted["retransmissions"] = retransmissions
        out_of_sync = Signal(LIVE_BITS)
        live_event(m, out_of_sync, control.valid & control.ready
                    & (control.payload.code == Control.SESSION_SYNC) & ~control.payload.in_sync)
        counted["out_of_sync"] = out_of_sync
        fcs = Signal(LIVE_BITS)
        m.d.comb += fcs.eq(fcs_errors(self.client_rx) + fcs_errors(self.exchange_rx))
        counted["fcs_errors"] = fcs
        for name in CONTROL_COUNTERS:
            counted[name] = getattr(self, f"count_{name}")
        for name, value in counted.items():
            if len(value) != LIVE_BITS:     # an eq would cut a wider count silently
                raise ValueError(f"counter {name} is {len(value)} bits, not {LIVE_BITS}")
            m.d.comb += getattr(registers, f"count_{name}").eq(value)
        return m
