"""The core bench's traffic through the compiled harness: :class:`FastBench`.

It plays what :class:`wiregate.sim.core.bench.TB` plays, as the cocotb bench schedules it,
and checks what the cocotb bench checks: every drop-copy record replayed through the model
(:class:`~wiregate.sim.replay.Replay`), every frame leaving toward the exchange byte for
byte and every frame toward the clients (:class:`~wiregate.sim.core.scoreboard.Scoreboard`),
then the counters and the engine's final state.

Scheduling. The cocotb bench's coroutines wait on each other at job granularity (a frame
goes once every earlier job of the other ports is on the wire; a host action a few cycles
after the frames before it); only the links, the monitors, the drop-copy reader and the
word bus's handshake act every cycle, and those are compiled. So here the play loop computes
each frame's first cycle itself, queues the frame in the harness, and runs the harness only
when a host action needs the core (its writes, its reads, the drop copy it waits for) and
every few hundred jobs, up to the play loop's own time, which no later frame precedes.
Records and egress frames are taken after each run, batch by batch.
"""

import time

from wiregate.hw.core import core_holdback
from wiregate.hw.egress.rewrite import latency as rewrite_latency
from wiregate.sim.core import bench_profile, core_for, regmap_for
from wiregate.sim.core.plan import (
    READBACK_BITS,
    READBACK_FIELDS,
    READBACK_WORDS,
    Plan,
    ready_threshold,
)
from wiregate.sim.layouts import unpack
from wiregate.sim.replay import Mismatch, commit_image
from wiregate.sw.dropcopy import RECORD_SIZE, read_records
from wiregate.sw.model import Commit, Heartbeat, Kill, Release, SetReference
from wiregate.sw.timebase import CLOCK_HZ, US_PER_S, timebase_us

from .build import build_harness
from .model import Harness

__all__ = ["FastBench"]

INGRESS = {"client": 0, "exchange": 1}
EGRESS, CLIENT_TX, DROPCOPY = 0, 1, 2       # the harness's monitors
SET_REFERENCE_MARGIN = 40   # as the cocotb bench: cycles a reference update needs
DRAIN_CYCLES = 200_000
BATCH_JOBS = 512            # jobs played between two runs of the harness
# Each OUCH extractor lane keeps its state in one wide variable whose bits feed each other
# through the lane's logic: split for Verilator (see build_harness), the false loops go.
SPLIT_VARS = ("lane?_state",)
_FAR = 1 << 62


class FastBench(Plan):
    """The core under the compiled harness (see the module docstring).

    Parameters
    ----------
    width, seed, scale
        As :class:`~wiregate.sim.core.plan.Plan`.
    dropcopy_ready : float
        Share of the cycles the drop-copy host is ready in.

    Attributes
    ----------
    sim : Harness
    client_starts : dict
        Client frame index -> cycle of its first beat.
    egress_starts : list
        Cycle of each first byte toward the exchange.
    record_log : list
        Every drop-copy record, in order.
    timing : dict
        Processor seconds spent in the harness (the rest of a run is Python: the model,
        the scoreboard, the frames).
    """

    def __init__(self, width: int, seed: int, *, scale: float = 1.0,
                 dropcopy_ready: float = 0.9):
        super().__init__(width, seed, scale)
        library, ports = build_harness(core_for(width), "core",
                                        {"width": width, "profile": bench_profile(width).name},
                                        split_vars=SPLIT_VARS)
        self.sim = sim = Harness(library, ports, width)
        self.core = core_for(width)
        self.regmap = regmap_for(width)
        self.clock_hz = CLOCK_HZ[width]
        for port, k in INGRESS.items():
            sim.ingress(k, f"{port}_rx")
        sim.egress(EGRESS, "exchange_tx")
        sim.egress(CLIENT_TX, "client_tx")
        sim.egress(DROPCOPY, "dropcopy", frames=False, ready_seed=seed,
                   ready_threshold=ready_threshold(dropcopy_ready))
        sim.bus("control")
        self.t = 0                  # the host's (control driver's) cycle
        self.play_t = 0             # the play loop's cycle
        self.free = dict.fromkeys(INGRESS, 0)
        self.last_end = {"client": None, "exchange": None, "control": None}
        self.client_starts = {}
        self.egress_starts = []
        self.record_log = []
        self.play_start = 0
        self._dropcopy = bytearray()
        self._taken = 0             # drop-copy bytes taken
        self.offset = 0
        self.timing = {"harness": 0.0}

    # --- time and the harness -------------------------------------------------------------

    def now_us(self, cycle: int) -> int:
        return timebase_us(cycle + self.offset, self.clock_hz)

    def first_cycle_of(self, us: int) -> int:
        return -(-us * self.clock_hz // US_PER_S) - self.offset

    def _run(self, until: int, **stop) -> int:
        begin = time.process_time()
        cycle = self.sim.run(until, **stop)
        self.timing["harness"] += time.process_time() - begin
        self.collect()
        return cycle

    def until(self, cycle: int) -> None:
        """Run the harness to ``cycle`` (the host's time moves there)."""
        if cycle > self.sim.cycle:
            self._run(cycle)
        self.t = max(self.t, cycle)

    def collect(self) -> None:
        """Take what the monitors completed: egress frames to the scoreboard, records
        through the replay."""
        for frame, error, start in self.sim.take(EGRESS):
            self.board.egress.append((frame, error))
            self.egress_starts.append(start)
        self.board.client_tx.extend((f, e) for f, e, _ in self.sim.take(CLIENT_TX))
        data = self.sim.take(DROPCOPY)
        self._taken += len(data)
        self._dropcopy += data
        whole = len(self._dropcopy) // RECORD_SIZE * RECORD_SIZE
        if whole:
            for record in read_records(bytes(self._dropcopy[:whole]), len(self.record_log)):
                self.record_log.append(record)
                self.board.replay.apply(record)
            del self._dropcopy[:whole]

    # --- start ----------------------------------------------------------------------------

    def start(self) -> None:
        """Reset as the cocotb bench does, then find the timebase (``TB.calibrate``)."""
        sim = self.sim
        resets = [name for name in ("rst", "engine_rst") if name in sim.ports]
        for name in resets:
            sim.poke(name, 1)
        sim.run(sim.cycle + 3)
        for name in resets:
            sim.poke(name, 0)
        sim.run(sim.cycle + 1)
        first = -(-self.clock_hz // US_PER_S)
        sim.poke("control__read_addr", self.regmap.read_addresses("timebase_us")[0])
        sim.poke("control__read_en", 1)
        for _ in range(4 * first):
            sim.run(sim.cycle + 1)
            if sim.peek("control__read_valid") and sim.peek("control__read_data") >= 1:
                break
        else:
            raise AssertionError("timebase_us never reached 1")
        sim.poke("control__read_en", 0)
        self.offset = first - (sim.cycle - 1)
        self.t = self.play_t = sim.cycle

    # --- the host on the word bus ---------------------------------------------------------

    def write(self, pairs, on_last=None) -> None:
        """``TB.write``: the words from the next cycle on, one per ready cycle."""
        self.sim.write(list(pairs), self.t + 1)
        begin = time.process_time()
        self.t = self.sim.run(_FAR, stop_on_write=True)
        self.timing["harness"] += time.process_time() - begin
        if on_last is not None:     # before any record that follows the write
            on_last()
        self.collect()

    def read(self, name, index=None) -> dict:
        """``TB.read``: each word's address one cycle, its data with ``read_valid``."""
        sim, words = self.sim, []
        for address in self.regmap.read_addresses(name, index):
            self.until(self.t + 1)
            sim.poke("control__read_addr", address)
            sim.poke("control__read_en", 1)
            self.until(self.t + 1)
            sim.poke("control__read_en", 0)
            while not sim.peek("control__read_valid"):
                self.until(self.t + 1)
            words.append(sim.peek("control__read_data"))
        return self.regmap.decode_read(name, words, index)

    def host(self, event) -> None:
        """``TB.host``: one host action through the register map's encoders."""
        regmap = self.regmap

        def taken():
            self.board.replay.control(event)

        match event:
            case Commit():
                self.write_image(event)
                self.write(regmap.encode_write("commit", swap=1), taken)
                self.until_committed()
                self.set_sessions(event.limits)
            case Heartbeat():
                self.write(regmap.encode_write("heartbeat", beat=1), taken)
            case Kill():
                index = None if event.scope == "gateway" else event.index
                self.write(regmap.encode_kill(event.scope, index), taken)
            case Release():
                index = None if event.scope == "gateway" else event.index
                self.write(regmap.encode_release(event.scope, index), taken)
            case SetReference():
                self.write(regmap.encode_write("ref_price", event.price))
                while True:
                    stamp = self.now_us(self.t + 1)
                    if self.now_us(self.t + 4 + SET_REFERENCE_MARGIN) == stamp:
                        break
                    self.until(self.first_cycle_of(stamp + 1))
                self.write(regmap.encode_write("ref_stamp_us", stamp) + regmap.encode_write(
                    "ref_update", symbol=event.symbol_index), taken)
            case _:
                raise TypeError(f"not a host event: {event!r}")

    def write_image(self, event) -> None:
        """``TB.write_image``: once every earlier host event's record is in, and no commit
        pending."""
        while self.board.replay.controls_waiting:
            # Run until the next record is whole; the host sees it in the cycle it ends.
            target = (self._taken // RECORD_SIZE + 1) * RECORD_SIZE
            begin = time.process_time()
            cycle = self.sim.run(self.t + DRAIN_CYCLES, watch=DROPCOPY, watch_bytes=target)
            self.timing["harness"] += time.process_time() - begin
            self.collect()
            if self._taken < target:
                raise Mismatch(f"seed {self.seed}: the records of host events never came")
            self.t = cycle - 1
        self.until_committed()
        self.write(commit_image(self.gate, event.limits, self.regmap).writes())

    def until_committed(self) -> None:
        while self.read("status")["commit_pending"]:
            pass

    # --- playing items --------------------------------------------------------------------

    def others_done(self, port: str) -> int:
        """The cycle every job of the other ports is done by (``TB.others_done``)."""
        cycle = self.play_t
        for other, end in self.last_end.items():
            if other != port and end is not None:
                cycle = max(cycle, end + (self.settle if port == "control" else 0))
        return cycle

    def release(self, port: str, frame: bytes, error: bool, index=None) -> None:
        """Queue a frame as ``TB.release`` and the port's frame driver would send it."""
        self.play_t = self.others_done(port)
        start = max(self.play_t, self.free[port])
        end = start + -(-len(frame) // self.width)
        self.free[port] = end + self.gap_after(port)
        self.last_end[port] = end
        self.sim.send(INGRESS[port], frame, start, error)
        if index is not None:
            self.client_starts[index] = start

    def control(self, event) -> None:
        """A host action: released as ``TB.release`` would, done at once (nothing else may
        go on the links before it is done)."""
        self.play_t = self.others_done("control")
        self.until(max(self.play_t, self.t))
        self.host(event)
        self.last_end["control"] = self.t

    def connect_waiting(self) -> None:
        while self.handshakes:
            for port, frame, index in self.handshake_frames(self.handshakes.pop(0)):
                self.release(port, frame, False, index)

    def play(self, items, *, stretch=(0.0, 0)) -> None:
        """``TB.play``: ``items`` on the ports."""
        self.learn_endpoints(items)
        jobs = list(self.jobs_of(items))
        first = int(stretch[0] * len(jobs))
        fast = range(first, first + stretch[1])
        start = self.play_start = self.play_t
        per_us = self.clock_hz / US_PER_S * self.scale
        for k, (port, t, work) in enumerate(jobs):
            if k not in fast:
                self.play_t = max(self.play_t, start + int(t * per_us))
            self.gap_extra = k not in fast
            if port == "control":
                self.control(self.scaled(work["event"]))
                continue
            self.play_t = self.others_done(port)
            self.connect_waiting()
            if port == "client":
                frame, error, index = self.client_frame(**work)
                self.release("client", frame, error, index)
            else:
                for frame, error in self.exchange_frames(**work):
                    self.release("exchange", frame, error)
            if k % BATCH_JOBS == BATCH_JOBS - 1:
                self.until(self.play_t)
        ends = [end for end in self.last_end.values() if end is not None]
        self.until(max([self.play_t, *ends]))

    # --- the end --------------------------------------------------------------------------

    def drain(self) -> None:
        """``TB.drain``: until every record of what was sent has been replayed."""
        deadline = self.t + DRAIN_CYCLES
        quiet = 0
        while quiet < 4:
            self.until(self.t + 64)
            busy = any(self.board.replay.waiting.values()) or self.sim.peek("dropcopy__valid")
            quiet = 0 if busy else quiet + 1
            if self.t > deadline:
                raise Mismatch(f"seed {self.seed}: records never came: "
                               f"{self.board.replay.waiting}")

    def finish(self) -> None:
        """Drain, then compare frames, counters and state with the model."""
        self.drain()
        problems = self.board.check()
        assert not problems, f"seed {self.seed}:\n" + "\n".join(problems[:20])
        self.compare_state()
        self.write(self.regmap.encode_write("counter_control", snapshot=1))
        expected = self.expected_counters(len(self.record_log))
        self.check_counters({name: self.read(name)["value"] for name in expected}, expected)

    def latencies(self) -> set:
        """First byte in (client_rx) to first byte out (exchange_tx), every frame."""
        return {out - self.client_starts[index] for (index, _, _), out in
                zip(self.board.expected_egress(), self.egress_starts, strict=True)}

    def expected_latency(self) -> int:
        return core_holdback(self.width) // self.width + rewrite_latency(self.width)

    def compare_state(self) -> None:
        """``TB.compare_state``: the read-back ports, exposures and order table."""
        sim, core, n = self.sim, self.core, self.sizes.n_sessions
        while self.now_us(self.t - 16) != self.now_us(self.t + 16):
            self.until(self.t + 16)
        us = self.now_us(self.t)
        got = {name: unpack(getattr(core, name).shape(), sim.peek(name))
               for name in READBACK_FIELDS}
        got.update({name: [sim.peek(name) >> s & 1 for s in range(n)]
                    for name in READBACK_BITS})
        got.update({name: sim.peek(name) for name in READBACK_WORDS})
        self.check_readback(got, us)
        exposure = core.peek_exposure.data.shape()
        order = core.peek_order.data.shape()
        for s in range(n):
            for y in range(self.sizes.n_symbols):
                self.check_exposure(s, y, self.peek("exposure", exposure, session=s, symbol=y))
            for slot in range(self.sizes.n_orders):
                entry = self.peek("order", order, session=s, slot=slot)
                entry["valid"] = sim.peek("peek_order__valid")
                self.check_order(s, slot, entry)

    def peek(self, port, layout, **address) -> dict:
        """One word of a peek port: the address set and held until ``ok`` answers it (as
        ``TB.peek``)."""
        for name, value in address.items():
            self.sim.poke(f"peek_{port}__{name}", value)
        self.until(self.t + 2)
        while not self.sim.peek(f"peek_{port}__ok"):
            self.until(self.t + 1)
        return unpack(layout, self.sim.peek(f"peek_{port}__data"))
