"""The risk engine at half the byte clock: the engine in a clock domain of its own, ``engine``.

Why (``docs/risk-core.md``, "The way to the board clock"): at W = 1 the engine takes a writing
event every other cycle and each of its two execute stages needs about 16 ns, where the
byte clock gives 8. Clocked at half the byte clock, from a second output of the same PLL
with its rising edges on the byte clock's, the loop has the 16 ns it needs and the wire
still gives it an event at most every other engine cycle.

Every port of :class:`~.engine.Engine` crosses here, and the component has the engine's
ports, in the byte clock's domain (``sync``), with the differences listed below. The two
clocks are related, so no crossing needs a synchronizer: each is a path from a register of
one clock to a register of the other, with one byte-clock period to settle (the place-and-
route report checks those paths against it). What crosses, and how:

- *A pulse of the byte clock* (a client event, a frame end): its values held in byte-clock
  registers and its arrival marked by flipping a toggle; the engine's clock keeps a copy of
  the toggle, and registers the values in its first cycle where the two differ (the
  engine's choice reads them at once). A pulse must come at least two byte cycles after
  the one before on its port, or its values would change before the engine's edge took
  them: the wire gives that (a SoupBin packet is at least two bytes). A frame end is held a
  byte cycle more, so that it never reaches the engine in the cycle of its frame's last
  event.
- *A host table write*: the toggle alone; the engine's clock registers the write port's
  index and entry as they are at its first edge after the toggle, and the table takes
  them at the next, ahead of any commit sent after them. They must stay as the pulse wrote
  them for two more byte cycles: the register file's do (it takes one write in three
  cycles, and its entries are its staging register).
- *Exchange events*: the event hold keeps an event on its port until ``ready`` (a stream's
  rule), so the engine's clock registers it straight from there, and ``ready`` answers in
  the byte clock's first cycle after that edge.
- *Control events*: the core changes an offer not yet taken (a session's sync state), so
  one event is held when taken (``ready``), while the toggle and its copy agree, then
  registered in the engine's clock for the engine to take.
- *A pulse of the engine's clock* (the verdict, the record): registered with a toggle in the
  engine's clock; the byte clock keeps a copy, and sees the pulse in the first of its two
  cycles after the engine's edge.
- *Levels* (the status and the read-back): as they are; they change at the engine's edges.
- *Time*: ``now_us`` and ``cycle`` registered in the engine's clock, and ``tick`` made there
  from ``now_us`` (a byte-clock pulse could fall between two engine edges).
- *The drop-copy fill*: ``queued`` keeps its contract in the byte clock (every record this
  component delivered before this cycle counted); the engine's clock registers it with the
  record the engine made in the cycle before, still on its way.
- *The host's reads* (``peek_*``): the address registered in the engine's clock, and the
  answer and its ``ok`` too (a block RAM's output has no time left to reach a byte-clock
  register); ``ok`` also waits until the address has been held :data:`PEEK_HOLD` byte
  cycles, so that the answer is the current address's (the engine answers from the third
  of its cycles after an address is set, :func:`~wiregate.hw.tables.read_signature`).

Differences from the engine's ports: no ``tick`` (made from ``now_us``); ``commit_pending``
also counts a commit crossing either way; a verdict comes :attr:`latency` or one cycle
fewer after its client event (which, depends on the phase of the two clocks when it
arrives): :attr:`least_latency`.
"""

from amaranth.hdl import Cat, DomainRenamer, Module, Mux, Signal
from amaranth.lib import wiring

from wiregate.sw.dropcopy import Control, Kind

from .engine import EXEC, Engine, engine_latency

__all__ = ["ENGINE_DOMAIN", "PEEK_HOLD", "HalfRateEngine", "half_rate_latency"]

ENGINE_DOMAIN = "engine"
# Byte cycles a host read's address is held before ``ok`` may answer it: the engine's edge
# that registers it comes one or two cycles after it changed, the engine answers an address
# from the third of its cycles on (a table read's contract, ``read_signature``: the symbol
# hash table registers its answer twice), and its answer is registered at the edge after.
PEEK_HOLD = 2 + 2 * 3 + 2
STATUS = ("loaded", "active_bank", "epoch", "heartbeat_lost", "credit_used",
          "gateway_credit_used", "last_user_ref_num", "unmatched", "in_sync", "kill_gateway",
          "kill_sessions", "tokens", "throttled", "throttle_count")
PEEKS = {   # port: its address members
    "peek_exposure": ("session", "symbol"),
    "peek_order": ("session", "slot"),
    "peek_limits": ("session", "symbol"),
    "peek_symbol_hash": ("slot",),
    "peek_kill_symbols": ("index",),
}
WRITES = ("session", "session_limits", "symbol_limits", "gateway_limits", "symbol_hash")


def half_rate_latency():
    """Byte cycles from a client event to its verdict and record, at most: the toggle (one
    byte cycle), the engine's first edge after it (one or two), its register, the engine's
    own latency at W = 1 in engine cycles, the engine's register out and the byte clock's
    first cycle after it."""
    return 2 * engine_latency(1) + 5


def _like(value, name):
    return Signal(value.shape(), name=name)


def _toggle_in(m, name, valid):
    """A byte-clock pulse as a toggle and the engine clock's copy of it: the two differ
    from the byte cycle after the pulse to the engine's first edge after that."""
    flag, seen = Signal(name=f"{name}_flag"), Signal(name=f"{name}_seen")
    with m.If(valid):
        m.d.sync += flag.eq(~flag)
    m.d[ENGINE_DOMAIN] += seen.eq(flag)
    return flag ^ seen


def _pulse_in(m, name, valid, values):
    """A byte-clock pulse and its values into the engine's clock, registered at the engine's
    first edge after it: (valid, values) there."""
    held = [_like(v, f"{name}_{k}_held") for k, v in enumerate(values)]
    with m.If(valid):
        m.d.sync += [h.eq(v) for h, v in zip(held, values, strict=True)]
    arrived = _toggle_in(m, name, valid)
    out_valid = Signal(name=f"{name}_valid")
    out = [_like(v, f"{name}_{k}") for k, v in enumerate(values)]
    m.d[ENGINE_DOMAIN] += [out_valid.eq(arrived),
                           *(o.eq(h) for o, h in zip(out, held, strict=True))]
    return out_valid, out


def _held_stream_in(m, name, source, sink):
    """A byte-clock stream whose source holds each payload until ``ready`` (a stream's rule)
    into an engine-clock one: registered straight from the source at the engine's edges,
    ``ready`` given in the byte clock's first cycle after the edge that took it (the source
    has moved on by the engine's next edge)."""
    taken, acked = Signal(name=f"{name}_taken"), Signal(name=f"{name}_acked")
    valid, payload = Signal(name=f"{name}_valid"), _like(source.payload, f"{name}_payload")
    with m.If(~valid | sink.ready):
        m.d[ENGINE_DOMAIN] += [valid.eq(source.valid), payload.eq(source.payload)]
        with m.If(source.valid):
            m.d[ENGINE_DOMAIN] += taken.eq(~taken)
    m.d.sync += acked.eq(taken)
    m.d.comb += [source.ready.eq(taken ^ acked), sink.valid.eq(valid),
                 sink.payload.eq(payload)]


def _stream_in(m, name, source, sink):
    """A byte-clock stream into an engine-clock one, its payload held in the byte clock when
    taken (the source may change an offer not yet taken); returns what it holds not yet
    taken by the engine: (valid, payload) in each clock."""
    held = _like(source.payload, f"{name}_held")
    flag, seen = Signal(name=f"{name}_flag"), Signal(name=f"{name}_seen")
    free = flag == seen
    m.d.comb += source.ready.eq(free)
    with m.If(source.valid & free):
        m.d.sync += [flag.eq(~flag), held.eq(source.payload)]
    valid, payload = Signal(name=f"{name}_valid"), _like(source.payload, f"{name}_payload")
    with m.If(~valid | sink.ready):
        m.d[ENGINE_DOMAIN] += [valid.eq(~free), payload.eq(held), seen.eq(flag)]
    m.d.comb += [sink.valid.eq(valid), sink.payload.eq(payload)]
    return (~free, held), (valid, payload)


def _pulse_out(m, name, valid, values):
    """An engine-clock pulse and its values into the byte clock: (valid, values) there."""
    held = [_like(v, f"{name}_{k}_held") for k, v in enumerate(values)]
    flag, seen = Signal(name=f"{name}_flag"), Signal(name=f"{name}_seen")
    with m.If(valid):
        m.d[ENGINE_DOMAIN] += [flag.eq(~flag),
                               *(h.eq(v) for h, v in zip(held, values, strict=True))]
    m.d.sync += seen.eq(flag)
    return flag ^ seen, held


class HalfRateEngine(wiring.Component):
    """:class:`~.engine.Engine` clocked by the ``engine`` domain, at half the byte clock (the
    module docstring); the parameters are the engine's.

    Attributes
    ----------
    The engine's (its docstring), in the byte clock, with the differences the module
    docstring lists.
    latency, least_latency : int
        Byte cycles from a client event to its verdict and record: one or the other.
    same_order : int
        Two client messages naming one order come more than this many byte cycles apart.
    stamp_lag : int
        Byte cycles from the ``cycle`` a record is stamped with to its delivery.
    """

    def __init__(self, regmap, **options):
        self._engine = engine = Engine(regmap, **options)
        if regmap.beat_bytes != 1:
            raise ValueError("the engine runs at half the byte clock at W = 1 only")
        members = dict(engine.signature.members)
        del members["tick"]
        super().__init__(members)
        self.latency = half_rate_latency()
        self.least_latency = self.latency - 1
        # Engine cycles apart, whatever the phase: two byte cycles more than twice as many.
        self.same_order = 2 * engine.same_order + 1
        # ``cycle`` is registered at the engine's edge that starts EXEC; the record is made
        # at APPLY and registered at its end.
        self.stamp_lag = 2 * (engine.apply_stage - EXEC) + 3

    @property
    def regmap(self):
        return self._engine.regmap

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = DomainRenamer(ENGINE_DOMAIN)(self._engine)
        slow = m.d[ENGINE_DOMAIN]

        # Events in: the client's registered where they arrive, the frame end a cycle later
        # than its own pulse.
        client = self.client
        valid, (payload,) = _pulse_in(m, "client", client.valid, [client.payload])
        m.d.comb += [engine.client.valid.eq(valid), engine.client.payload.eq(payload)]
        end_valid, end_void = Signal(), Signal()
        m.d.sync += [end_valid.eq(self.frame_end.valid), end_void.eq(self.frame_end.void)]
        valid, (void,) = _pulse_in(m, "frame_end", end_valid, [end_void])
        m.d.comb += [engine.frame_end.valid.eq(valid), engine.frame_end.void.eq(void)]
        _held_stream_in(m, "exchange", self.exchange, engine.exchange)
        (c_held, c_fast), (c_waits, c_slow) = _stream_in(m, "control", self.control,
                                                          engine.control)
        # The host's table writes, registered from the register file's staging register
        # (held two cycles after the pulse) at the engine's first edge after the toggle.
        for table in WRITES:
            port, inner = getattr(self, f"write_{table}"), getattr(engine, f"write_{table}")
            slow += [inner.en.eq(_toggle_in(m, f"write_{table}", port.en)),
                     inner.index.eq(port.index), inner.entry.eq(port.entry)]

        # Time: the engine's own tick, in the engine cycle that first sees the new microsecond.
        now = Signal.like(self.now_us)
        slow += [now.eq(self.now_us), engine.tick.eq(self.now_us != now),
                 engine.cycle.eq(self.cycle)]
        m.d.comb += engine.now_us.eq(now)

        # Out: the verdict and the record; the fill counts the record on its way.
        verdict = engine.verdict
        valid, (accept, offset, frame) = _pulse_out(
            m, "verdict", verdict.valid, [verdict.accept, verdict.type_offset, verdict.frame])
        m.d.comb += [self.verdict.valid.eq(valid), self.verdict.accept.eq(accept),
                     self.verdict.type_offset.eq(offset), self.verdict.frame.eq(frame)]
        valid, (record,) = _pulse_out(m, "record", engine.record.valid,
                                      [engine.record.payload])
        m.d.comb += [self.record.valid.eq(valid), self.record.payload.eq(record)]
        slow += engine.queued.eq(self.queued + engine.record.valid)

        for name in STATUS:
            m.d.comb += getattr(self, name).eq(getattr(engine, name))
        # A commit is pending from the cycle the crossing takes it to the one its record
        # leaves in (what the core swaps the ingresses' session tables on).
        commits = [(c_fast.code == Control.COMMIT) & c_held,
                   (c_slow.code == Control.COMMIT) & c_waits,
                   valid & (record.kind == Kind.CONTROL) & (record.control == Control.COMMIT)]
        m.d.comb += self.commit_pending.eq(Cat(*commits, engine.commit_pending).any())

        for name, members in PEEKS.items():
            self._peek(m, engine, name, members)
        return m

    def _peek(self, m, engine, port_name, members):
        """A host read: the address into the engine's clock, the answer registered there (a
        block RAM's output has no time left for a byte-clock register), ``ok`` once the
        address has been held long enough."""
        port, inner = getattr(self, port_name), getattr(engine, port_name)
        address = Cat(getattr(port, name) for name in members)
        last = Signal.like(address)
        held_for = Signal(range(PEEK_HOLD + 1))
        fresh = address != last
        m.d.sync += [last.eq(address),
                     held_for.eq(Mux(fresh, 1, Mux(held_for == PEEK_HOLD, PEEK_HOLD,
                                                   held_for + 1)))]
        for name in members:
            m.d[ENGINE_DOMAIN] += getattr(inner, name).eq(getattr(port, name))
        answers = [name for name in inner.signature.members if name not in (*members, "ok")]
        for name in answers:
            m.d[ENGINE_DOMAIN] += getattr(port, name).eq(getattr(inner, name))
        answered = Signal(name=f"{port_name}_ok")
        m.d[ENGINE_DOMAIN] += answered.eq(inner.ok)
        m.d.comb += port.ok.eq(~fresh & (held_for == PEEK_HOLD) & answered)
