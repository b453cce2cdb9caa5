"""The core's neighbours under cocotb: the client and exchange links, the risk host, the
drop-copy reader, and the checks at the end of a run.

Everything here drives or watches the Verilog ports of :func:`wiregate.sim.core.core_for`
and hands what it sends and sees to the :class:`~wiregate.sim.core.scoreboard.Scoreboard`.

Cycles. ``TB.now()`` counts the clock's falling edges from the first, as the compiled harness
counts its cycles (reset is cycles 0 to 3); inputs are driven and outputs sampled at falling
edges, so a value driven at edge ``c`` is taken at the rising edge after it and an output
read there is the one that rising edge will see.

Playing items. :meth:`TB.play` puts a :class:`wiregate.sim.trading.Trading` day on the ports:
an item goes on its port at its time ``t`` (scaled), and not before every earlier item on
the other ports has been sent, so that the exchange answers only what it has seen and a
client reacts only to what reached it. A commit therefore finds the links quiet: the
ingress's session table and the engine's limits swap together, never under a frame's
headers, and the scoreboard knows which table each frame met. Frames are built when they are
queued, from the state of their session's stream then.

Racing (``TB.racing``, :meth:`Plan.races`). A racing host action goes a few cycles after its
time, whatever is on the links, and the frames after it do not wait for it. The replay takes
host actions in the order their writes were taken and applies each where the drop copy puts
it among the events, so the model judges every frame as the engine met it. The bench notes
the cycle each racing action took effect in (a commit: its swap) and, at the end, how many
landed while a frame was on each link or its events on their way to the engine.
"""

import pickle
from bisect import bisect_left, bisect_right
from collections import Counter, deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from wiregate.hw.core import core_holdback
from wiregate.hw.egress.rewrite import latency as rewrite_latency
from wiregate.hw.stream import LANE_LAYOUT
from wiregate.sim.layouts import unpack
from wiregate.sim.replay import Mismatch, commit_image
from wiregate.sw.dropcopy import RECORD_SIZE, Control, read_records
from wiregate.sw.model import (
    Commit,
    Heartbeat,
    Kill,
    Release,
    SetReference,
)
from wiregate.sw.timebase import CLOCK_HZ, US_PER_S, timebase_us

from . import core_for, regmap_for
from .frames import (
    frame_beats,
)
from .plan import (
    READBACK_BITS,
    READBACK_FIELDS,
    READBACK_WORDS,
    Plan,
    dropcopy_ready,
    ready_threshold,
)

__all__ = ["TB"]

LANE_BITS = LANE_LAYOUT.size
_DATA, _KEEP, _FIRST, _LAST, _ERROR = (LANE_LAYOUT[name].offset for name in (
    "data", "keep", "first", "last", "error"))
SET_REFERENCE_MARGIN = 40   # cycles a reference update needs left in its microsecond
DRAIN_CYCLES = 200_000      # the most cycles the end of a run may take
_HOST_CODES = {c.name for c in (Control.COMMIT, Control.KILL, Control.RELEASE,
                                Control.HEARTBEAT, Control.SET_REFERENCE)}


class Job:
    """Work for one port; ``done`` is set once it is all on the wire (or taken by the bus),
    in bench cycle ``end``."""

    def __init__(self, port, **work):
        self.port = port
        self.work = work
        self.done = Event()
        self.end = 0

    def finish(self, cycle):
        self.end = cycle
        self.done.set()


class TB(Plan):
    """The bench around one core (see the module docstring and :class:`Plan`).

    Parameters
    ----------
    dut
        The cocotb handle of the core.
    width : int
    seed : int
    scale : float
        Core microseconds per microsecond of the items played (:meth:`play`).
    dropcopy_ready : float
        Chance that the host takes a drop-copy beat in a cycle.
    """

    def __init__(self, dut, width, seed, *, scale=1.0, dropcopy_ready=0.9):
        super().__init__(width, seed, scale)
        self.dut = dut
        self.dropcopy_ready = dropcopy_ready
        self.core = core_for(width)         # the shapes of the read-back ports
        self.regmap = regmap_for(width)
        self.clock_hz = CLOCK_HZ[width]
        self.period = 10**12 // self.clock_hz      # picoseconds
        self.origin = 0             # sim time (ps) of falling edge 0 (before reset)
        self.offset = 0             # timebase cycle minus bench cycle
        self.queues = {"client": deque(), "exchange": deque(), "control": deque()}
        self.wake = {port: Event() for port in self.queues}
        self.last = dict.fromkeys(self.queues)
        self.errors = []
        self.failure = Event()              # a port coroutine failed
        self.control_seen = Event()         # a host control record was replayed
        self.client_starts = {}     # client frame index -> cycle of its first beat
        self.egress_starts = []     # cycle of each frame's first byte on exchange_tx
        self.records = 0
        self.record_log = []        # every drop-copy record, in order
        self.read_cycles = []       # bench cycle in which each record's last beat was taken
        self.most_queued = 0        # the largest fill a record reported
        self.play_start = 0         # the cycle :meth:`play` started in
        self.wire = {"client": [], "exchange": []}     # (first, last) cycle of each frame
        self.last_race = None       # the last racing host job
        self.race_takes = []        # (action, cycle its write was taken) of racing jobs
        self._took = 0              # the cycle the last host write that changes state was taken

    @property
    def dropcopy_ready(self) -> float:
        return self._dropcopy_ready

    @dropcopy_ready.setter
    def dropcopy_ready(self, chance: float) -> None:
        self._dropcopy_ready = chance
        self.ready_threshold = ready_threshold(chance)

    # --- time -------------------------------------------------------------------------------

    def now(self) -> int:
        """The bench cycle: falling edges since falling edge 0 (the current one included)."""
        return (self._ps() - self.origin) // self.period

    @staticmethod
    def _ps() -> int:
        return round(get_sim_time(unit="ps"))

    def now_us(self, cycle: int) -> int:
        """The core's timebase in bench cycle ``cycle``."""
        return timebase_us(cycle + self.offset, self.clock_hz)

    def first_cycle_of(self, us: int) -> int:
        """The first bench cycle of timebase microsecond ``us``."""
        return -(-us * self.clock_hz // US_PER_S) - self.offset

    async def until(self, cycle: int) -> None:
        """Wait for falling edge ``cycle`` (at once if it has come)."""
        target = self.origin + cycle * self.period
        now = self._ps()
        if target - now > 4 * self.period:      # long waits cost the simulator only
            await Timer(target - self.period * 3 // 4 - now, unit="ps")
        while self._ps() < target:
            await FallingEdge(self.dut.clk)

    async def edge(self) -> None:
        """The next falling edge, unless at one now."""
        if (self._ps() - self.origin) % self.period:
            await FallingEdge(self.dut.clk)

    # --- start ----------------------------------------------------------------------------

    async def start(self):
        """Reset, find the timebase, start the port coroutines."""
        dut = self.dut
        for name in ("client_rx__valid", "exchange_rx__valid", "control__write_en",
                     "control__read_en", "dropcopy__ready", "peek_exposure__session",
                     "peek_exposure__symbol", "peek_order__session", "peek_order__slot"):
            getattr(dut, name).value = 0
        cocotb.start_soon(Clock(dut.clk, self.period, unit="ps").start())
        resets = [dut.rst]
        if self.width == 1:     # the engine's clock: half the byte clock, edges on its edges
            cocotb.start_soon(Clock(dut.engine_clk, 2 * self.period, unit="ps").start())
            resets.append(dut.engine_rst)
        for rst in resets:
            rst.value = 1
        for _ in range(3):
            await FallingEdge(dut.clk)
        for rst in resets:
            rst.value = 0
        await FallingEdge(dut.clk)
        # Number the cycles as the compiled harness does (its reset is cycles 0 to 3): the
        # drop-copy host's pace is a hash of the cycle number, the same in both benches.
        self.origin = self._ps() - 4 * self.period
        await self.calibrate()
        for coro in (self.frame_driver("client"), self.frame_driver("exchange"),
                     self.control_driver(),
                     self.monitor(dut.exchange_tx__valid, dut.exchange_tx__payload,
                                  self.board.egress, self.egress_starts),
                     self.monitor(dut.client_tx__valid, dut.client_tx__payload,
                                  self.board.client_tx, None),
                     self.dropcopy()):
            cocotb.start_soon(self.guard(coro))

    async def calibrate(self):
        """Find the timebase cycle of bench cycle 0: read ``timebase_us`` every cycle until it
        reads 1. A read answers at the next edge with the value of the cycle it was in."""
        dut = self.dut
        first = -(-self.clock_hz // US_PER_S)      # the first cycle of microsecond 1
        dut.control__read_addr.value = self.regmap.read_addresses("timebase_us")[0]
        dut.control__read_en.value = 1
        for _ in range(4 * first):
            await FallingEdge(dut.clk)
            if dut.control__read_valid.value and int(dut.control__read_data.value) >= 1:
                break
        else:
            raise AssertionError("timebase_us never reached 1")
        dut.control__read_en.value = 0
        self.offset = first - (self.now() - 1)

    async def guard(self, coro):
        """Run a port coroutine; its failure is raised by the test at its next check."""
        try:
            await coro
        except Exception as error:      # handed to the test coroutine (check_failed)
            self.errors.append(error)
            self.failure.set()

    def check_failed(self):
        if self.errors:
            raise self.errors[0]

    async def run(self, coro):
        """Run ``coro`` until it ends or a port coroutine fails (whose error is raised)."""
        task = cocotb.start_soon(coro)
        await First(task, self.failure.wait())
        self.check_failed()
        return task.result()

    # --- sessions and frames --------------------------------------------------------------

    def client_job(self, session, msgs, retransmit=False, void=False, lead=b""):
        """A client frame's job (:meth:`Plan.client_frame`)."""
        frame, error, index = self.client_frame(session, msgs, retransmit, void, lead)
        return Job("client", beats=frame_beats(frame, error, self.width), index=index)

    def exchange_jobs(self, session, msgs):
        """The jobs of an exchange segment (:meth:`Plan.exchange_frames`)."""
        return [Job("exchange", beats=frame_beats(frame, error, self.width))
                for frame, error in self.exchange_frames(session, msgs)]

    def handshake_jobs(self, session):
        """The jobs of a connection's handshake (:meth:`Plan.handshake_frames`)."""
        return [Job(port, beats=frame_beats(frame, False, self.width),
                    **({} if index is None else {"index": index}))
                for port, frame, index in self.handshake_frames(session)]

    # --- playing items --------------------------------------------------------------------

    async def release(self, job, *, after_others=True):
        """Queue ``job`` on its port (``after_others``: once every earlier job of the other
        ports is done). A racing host job (``job.work["at"]``) is no job the others wait
        for."""
        if after_others:
            await self.others_done(job.port)
        if job.port != "control":
            job.gap = self.gap_after(job.port)
        self.queues[job.port].append(job)
        if job.work.get("at") is None:
            self.last[job.port] = job
        else:
            self.last_race = job
        self.wake[job.port].set()

    async def others_done(self, port):
        """Every job of the other ports is done; for a host action, what they caused is
        through the engine too (a frame's events need no such wait: the ingress takes longer
        to reach its first than the other port's last needs)."""
        for other, last in self.last.items():
            if other != port and last is not None:
                await last.done.wait()
                if port == "control":
                    await self.until(last.end + self.settle)

    async def all_done(self):
        for last in (*self.last.values(), self.last_race):
            if last is not None:
                await last.done.wait()

    async def connect_waiting(self):
        """Connect the sessions a commit has loaded and that never had a connection."""
        while self.handshakes:
            for job in self.handshake_jobs(self.handshakes.pop(0)):
                await self.release(job)

    async def play(self, items, *, stretch=(0.0, 0)):
        """Play ``items`` on the ports (see the module docstring). ``stretch``: (where, as a
        fraction of the jobs, how many jobs) go as soon as they may, at line rate."""
        self.learn_endpoints(items)
        jobs = list(self.jobs_of(items))
        first = int(stretch[0] * len(jobs))
        fast = range(first, first + stretch[1])
        start = self.play_start = self.now()
        per_us = self.clock_hz / US_PER_S * self.scale
        for k, (port, t, work) in enumerate(jobs):
            self.check_failed()
            if k not in fast:
                await self.until(start + int(t * per_us))
            self.gap_extra = k not in fast
            if port == "control":
                event = self.scaled(work["event"])
                delay = self.races(event)
                if delay is None:
                    await self.release(Job("control", event=event, at=None))
                else:
                    await self.release(Job("control", event=event, at=self.now() + delay),
                                       after_others=False)
                continue
            await self.others_done(port)
            await self.connect_waiting()
            if port == "client":
                await self.release(self.client_job(**work))
            else:
                for job in self.exchange_jobs(**work):
                    await self.release(job)
        await self.all_done()

    # --- the links and the drop copy ------------------------------------------------------

    async def frame_driver(self, port):
        """Send the port's frames, beat by beat, the inter-frame gap (and idle) between."""
        clk = self.dut.clk
        valid = getattr(self.dut, f"{port}_rx__valid")
        payload = getattr(self.dut, f"{port}_rx__payload")
        free = 0            # the first cycle the next frame may start in
        while True:
            job = await self.next_job(port)
            await self.edge()
            await self.until(free)
            if port == "client":
                self.client_starts[job.work["index"]] = self.now()
            valid.value = 1
            for word in job.work["beats"]:
                payload.value = word
                await FallingEdge(clk)
            valid.value = 0
            self.wire[port].append((self.now() - len(job.work["beats"]), self.now() - 1))
            job.finish(self.now())
            free = self.now() + job.gap

    async def monitor(self, valid, payload, sink, starts):
        """Collect the frames of an outgoing beat stream (and each first byte's cycle)."""
        clk = self.dut.clk
        current = None
        while True:
            await FallingEdge(clk)
            if not valid.value:
                await RisingEdge(valid)
                continue
            word = int(payload.value)
            for lane in range(self.width):
                bits = word >> (lane * LANE_BITS)
                if not bits >> _KEEP & 1:
                    continue
                if bits >> _FIRST & 1:
                    if current is not None:
                        raise Mismatch(f"a frame starts inside another at cycle {self.now()}")
                    current = bytearray()
                    if starts is not None:
                        starts.append(self.now())
                if current is None:
                    raise Mismatch(f"a byte outside any frame at cycle {self.now()}")
                current.append(bits >> _DATA & 0xFF)
                if bits >> _LAST & 1:
                    sink.append((bytes(current), bool(bits >> _ERROR & 1)))
                    current = None

    def host_read(self, record) -> int:
        """Records the bench had taken whole before ``record`` took effect (its ``cycle``):
        the host's reading position the model decides BACKLOG from (rule 11)."""
        return bisect_left(self.read_cycles, record.cycle - self.offset)

    async def dropcopy(self):
        """Take the drop copy with random backpressure; replay each record as it ends, with
        the reading position the bench observed."""
        dut = self.dut
        valid, payload, ready = dut.dropcopy__valid, dut.dropcopy__payload, dut.dropcopy__ready
        buffer = bytearray()
        taking = False
        while True:
            await FallingEdge(dut.clk)
            want = dropcopy_ready(self.seed, self.now(), self.ready_threshold)
            if want != taking:
                ready.value = int(want)
                taking = want
            if not valid.value:
                await RisingEdge(valid)
                continue
            if not taking:
                continue
            word = int(payload.value)
            for lane in range(self.width):
                bits = word >> (lane * LANE_BITS)
                if bits >> _KEEP & 1:
                    buffer.append(bits >> _DATA & 0xFF)
            if len(buffer) >= RECORD_SIZE:
                (record,) = read_records(bytes(buffer[:RECORD_SIZE]), self.records)
                self.record_log.append(record)
                del buffer[:RECORD_SIZE]
                self.records += 1
                self.read_cycles.append(self.now())
                self.most_queued = max(self.most_queued, record.queued)
                self.board.replay.apply(record, self.host_read(record))
                if record.control.name in _HOST_CODES:
                    self.control_seen.set()

    # --- the host on the control bus ------------------------------------------------------

    async def write(self, pairs, on_last=None):
        """Write (address, word) pairs in order; ``on_last`` runs as the last is taken."""
        dut = self.dut
        pairs = list(pairs)
        k = 0
        while k < len(pairs):
            await FallingEdge(dut.clk)
            if not dut.control__write_ready.value:
                dut.control__write_en.value = 0
                continue
            address, word = pairs[k]
            dut.control__write_addr.value = address
            dut.control__write_data.value = word
            dut.control__write_en.value = 1
            k += 1
            if k == len(pairs) and on_last is not None:
                on_last()
        await FallingEdge(dut.clk)
        dut.control__write_en.value = 0

    async def read(self, name, index=None) -> dict:
        """Read register (or table entry) ``name``; its fields."""
        dut = self.dut
        words = []
        for address in self.regmap.read_addresses(name, index):
            await FallingEdge(dut.clk)
            dut.control__read_addr.value = address
            dut.control__read_en.value = 1
            await FallingEdge(dut.clk)
            dut.control__read_en.value = 0
            while not dut.control__read_valid.value:    # a counter waits for its sweep
                await FallingEdge(dut.clk)
            words.append(int(dut.control__read_data.value))
        return self.regmap.decode_read(name, words, index)

    async def next_job(self, name):
        """The next job of queue ``name``, waiting for one."""
        queue, wake = self.queues[name], self.wake[name]
        while not queue:
            wake.clear()
            await wake.wait()
        return queue.popleft()

    async def control_driver(self):
        while True:
            job = await self.next_job("control")
            at = job.work.get("at")
            if at is not None:
                await self.until(at)
            await self.host(job.work["event"])
            if at is not None:
                self.race_takes.append((type(job.work["event"]).__name__, self._took))
            job.finish(self.now())

    def took(self, event) -> None:
        """Host action ``event``'s write that changes state is taken in this cycle."""
        self.board.replay.control(event)
        self._took = self.now()

    async def host(self, event):
        """One host action through the register map's encoders."""
        regmap = self.regmap

        def taken():
            self.took(event)

        match event:
            case Commit():
                await self.write_image(event)
                await self.swap(event)
            case Heartbeat():
                await self.write(regmap.encode_write("heartbeat", beat=1), taken)
            case Kill():
                index = None if event.scope == "gateway" else event.index
                await self.write(regmap.encode_kill(event.scope, index), taken)
            case Release():
                index = None if event.scope == "gateway" else event.index
                await self.write(regmap.encode_release(event.scope, index), taken)
            case SetReference():
                await self.set_reference(event, taken)
            case _:
                raise TypeError(f"not a host event: {event!r}")

    async def set_reference(self, event, taken):
        """A reference update stamped with the microsecond the engine applies it in (the
        model's): its last writes go early in a microsecond, with room to spare."""
        regmap = self.regmap
        await self.write(regmap.encode_write("ref_price", event.price))
        while True:
            cycle = self.now() + 1          # the next write's cycle
            stamp = self.now_us(cycle)
            if self.now_us(cycle + 3 + SET_REFERENCE_MARGIN) == stamp:
                break
            await self.until(self.first_cycle_of(stamp + 1))
        pairs = regmap.encode_write("ref_stamp_us", stamp) + regmap.encode_write(
            "ref_update", symbol=event.symbol_index)
        await self.write(pairs, taken)

    async def write_image(self, event):
        """The commit's image into the shadow bank, once the model holds every reference as
        the core does (every host event before it replayed) and no commit is pending."""
        while self.board.replay.controls_waiting:
            self.check_failed()
            self.control_seen.clear()
            await First(self.control_seen.wait(), self.failure.wait())
        await self.until_committed()
        await self.write(commit_image(self.gate, event.limits, self.regmap).writes())

    async def swap(self, event):
        """The commit: swap the banks, wait until it is done, connect new sessions."""
        await self.write(self.regmap.encode_write("commit", swap=1),
                         lambda: self.took(event))
        await self.until_committed()
        self.set_sessions(event.limits)

    async def until_committed(self):
        while (await self.read("status"))["commit_pending"]:
            pass

    def dump(self, path) -> None:
        """What left the core (frames, records, first-byte cycles from the start of
        :meth:`play`) as a pickle, for the compiled harness's agreement test."""
        with open(path, "wb") as out:
            pickle.dump(self.outcome(), out)

    # --- the end --------------------------------------------------------------------------

    async def drain(self):
        """Wait until every record of what was sent has been replayed."""
        deadline = self.now() + DRAIN_CYCLES
        quiet = 0
        while quiet < 4:
            await self.until(self.now() + 64)
            self.check_failed()
            busy = any(self.board.replay.waiting.values()) or self.dut.dropcopy__valid.value
            quiet = 0 if busy else quiet + 1
            if self.now() > deadline:
                raise Mismatch(f"seed {self.seed}: records never came: "
                               f"{self.board.replay.waiting}")

    async def finish(self, name):
        """Drain, then compare frames, state and counters with the model; report latency."""
        await self.all_done()
        await self.drain()
        problems = self.board.check()
        assert not problems, f"seed {self.seed}:\n" + "\n".join(problems[:20])
        await self.compare_state()
        await self.compare_counters()
        self.report_latency(name)
        replay = self.board.replay
        self.dut._log.info("%s: %d records %s, %d accepted, %d rejected, %d client frames, "
                           "%d exchange frames, %d cycles", name, self.records,
                           dict(replay.kinds), replay.accepted, replay.rejected,
                           len(self.board.sent), len(self.board.exchange_sent), self.now())

    def races_seen(self) -> dict:
        """How the racing host actions met the links: by action; and how many took effect
        while a frame was on the client link, on the exchange link, on either, on both, or
        its events on their way to the engine (``settle`` cycles after its last beat)."""
        firsts = {port: [first for first, _ in frames] for port, frames in self.wire.items()}

        def busy(port, cycle):
            k = bisect_right(firsts[port], cycle) - 1
            return k >= 0 and cycle <= self.wire[port][k][1] + self.settle

        seen = Counter(action for action, _ in self.race_takes)
        for _, cycle in self.race_takes:
            ports = [port for port in self.wire if busy(port, cycle)]
            for port in ports:
                seen[port] += 1
            seen["either"] += bool(ports)
            seen["both"] += len(ports) == len(self.wire)
        return dict(seen)

    def report_latency(self, name):
        """First byte in on client_rx to first byte out on exchange_tx, every frame."""
        latencies = {out - self.client_starts[index] for (index, _, _), out in
                     zip(self.board.expected_egress(), self.egress_starts, strict=True)}
        holdback = core_holdback(self.width)
        expected = holdback // self.width + rewrite_latency(self.width)
        period_ns = self.period / 1000
        line = (f"W={self.width} core {name}: first byte in (client_rx) -> first byte out "
                f"(exchange_tx) {sorted(latencies)} cycles = "
                f"{', '.join(f'{c * period_ns:g}' for c in sorted(latencies))} ns at "
                f"{self.clock_hz / 1e6:g} MHz (H = {holdback} bytes: H/W + rewrite = "
                f"{expected} cycles), {len(self.egress_starts)} frames")
        self.dut._log.info(line)
        with open("latency.txt", "a") as report:   # in the build folder, for `make bench`
            print(line, file=report)
        assert latencies == {expected}, f"latency {sorted(latencies)}, expected {expected}"

    async def compare_state(self):
        """Every read-back member, exposure word and order-table entry against the model."""
        dut, core = self.dut, self.core
        n = self.sizes.n_sessions
        # Tokens refill with time, and the rate block sees the timebase a few cycles late:
        # read them well inside one microsecond.
        while self.now_us(self.now() - 16) != self.now_us(self.now() + 16):
            await self.until(self.now() + 16)
        us = self.now_us(self.now())
        got = {name: unpack(getattr(core, name).shape(), int(getattr(dut, name).value))
               for name in READBACK_FIELDS}
        got.update({name: [int(getattr(dut, name).value) >> s & 1 for s in range(n)]
                    for name in READBACK_BITS})
        got.update({name: int(getattr(dut, name).value) for name in READBACK_WORDS})
        self.check_readback(got, us)
        exposure = core.peek_exposure.data.shape()
        order = core.peek_order.data.shape()
        for s in range(n):
            for y in range(self.sizes.n_symbols):
                self.check_exposure(s, y, await self.peek("exposure", exposure, session=s,
                                                          symbol=y))
            for slot in range(self.sizes.n_orders):
                entry = await self.peek("order", order, session=s, slot=slot)
                entry["valid"] = int(dut.peek_order__valid.value)
                self.check_order(s, slot, entry)

    async def peek(self, port, layout, **address):
        """One word of a peek port: the address set and held until ``ok`` answers it (the
        engine's own port two edges later; at W = 1 its clock's crossing needs more)."""
        for name, value in address.items():
            getattr(self.dut, f"peek_{port}__{name}").value = value
        await FallingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        while not getattr(self.dut, f"peek_{port}__ok").value:
            await FallingEdge(self.dut.clk)
        return unpack(layout, int(getattr(self.dut, f"peek_{port}__data").value))

    async def compare_counters(self):
        """The register map's counters of what the bench can count itself."""
        await self.write(self.regmap.encode_write("counter_control", snapshot=1))
        expected = self.expected_counters(self.records)
        got = {name: (await self.read(name))["value"] for name in expected}
        self.check_counters(got, expected)
