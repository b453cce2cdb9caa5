"""DropCopy under the Amaranth simulator: records in, wire bytes out.

The bytes are reassembled with the framing flags (:func:`wiregate.sim.beats.frames_from_cycles`)
and decoded with :mod:`wiregate.sw.dropcopy`, whose codec tests/test_dropcopy_format.py checks
against ``struct``. Sequence numbers are the test's own (one per valid input); which records
are lost follows from the documented capacity (``depth`` records besides the one being sent)
and what the test sees on ``o``, cycle by cycle.
"""

import gc
import random
import warnings
from dataclasses import dataclass, field, replace

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from wiregate.hw.control.dropcopy import DropCopy, record_layout
from wiregate.hw.counters import LIVE_BITS
from wiregate.sim.beats import frames_from_cycles, unpack_beat
from wiregate.sim.layouts import pack
from wiregate.sw.dropcopy import (
    KIND_FIELDS,
    RECORD_SIZE,
    Control,
    Kind,
    Record,
    SequenceGap,
    decode_records,
    empty_value,
    read_records,
)
from wiregate.sw.regmap import RegisterMap

REGMAP = RegisterMap()
LAYOUT = record_layout(REGMAP)


def phases(record_time):
    """Traffic phases: (weight, chance of a record per cycle, of o.ready, shortest and
    longest phase in cycles), for a drain of one record per ``record_time`` cycles. Mostly
    about the drain rate, so that ``o`` is busy most of the time and bursts and stalls find
    the queue part full."""
    t = record_time
    return (
        (4, 0.9 / t, 0.95, 10 * t, 60 * t),     # about the drain rate
        (1, 0.6 / t, 1.0, 3 * t, 10 * t),       # below it: the queue drains
        (1, 0.7, 0.7, 4, 32),                   # a burst
        (1, 1.0 / t, 0.0, 2 * t, 6 * t),        # the host stalls
    )


def seeded():
    """A fresh seed, printed so that a failure can be replayed, and its generator."""
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    return seed, random.Random(seed)


def random_record(rng):
    """A record with every field its kind may fill random, often at 0 or its maximum, and
    the other kinds' fields (KIND_FIELDS) empty, as the drop copy's input must have them."""
    values = {}
    for name, member in LAYOUT:
        top = (1 << member.width) - 1
        values[name] = rng.choice((0, top, rng.randint(0, top), rng.randint(0, top)))
    kind = rng.choice(list(Kind))
    values["kind"] = kind
    values["control"] = rng.randint(1, max(Control)) if kind is Kind.CONTROL else 0
    for other, names in KIND_FIELDS.items():
        if other is not kind:
            values.update((name, empty_value(name)) for name in names)
    values["symbol"] = values["symbol"].to_bytes(8, "big")
    return Record(**values)


def port_value(record):
    """The record as the core drives it (the symbol's wire bytes as a big-endian integer)."""
    fields = {name: getattr(record, name) for name, _ in LAYOUT}
    fields["symbol"] = int.from_bytes(record.symbol, "big")
    return pack(LAYOUT, fields)


@dataclass
class Outcome:
    """What a run offered and what came out."""

    sent: dict = field(default_factory=dict)      # sequence -> (record, input cycle)
    lost: list = field(default_factory=list)      # sequences the capacity rule loses
    beats: list = field(default_factory=list)     # beats transferred on `o`
    beat_cycles: list = field(default_factory=list)       # and their cycles
    counters: dict = field(default_factory=dict)
    records: list = field(default_factory=list)   # decoded from the bytes out
    stream: bytes = b""


def run(width, depth, schedule, seed, count_bits):
    """Drive ``schedule`` (per cycle: a record or None, ``o.ready``), then drain with
    ``o.ready`` high."""
    dut = DropCopy(width, REGMAP, depth=depth, count_bits=count_bits)
    wrap = 1 << len(dut.count_records)        # live counters: they wrap there
    out = Outcome()
    # More than the drain of a full queue takes.
    drain = [(None, True)] * ((depth + 3) * RECORD_SIZE // width)

    # Signals looked up once and set only when they change: the bench runs ~100k cycles.
    i_valid, i_payload = dut.i.valid, dut.i.payload.as_value()
    o_valid, o_ready, o_payload = dut.o.valid, dut.o.ready, dut.o.payload.as_value()

    async def testbench(ctx):
        done = 0
        kept = 0
        driven = [False, False]   # i.valid, o.ready
        for cycle, (record, ready) in enumerate([*schedule, *drain]):
            if driven[0] != (record is not None):
                driven[0] = record is not None
                ctx.set(i_valid, driven[0])
            if record is not None:
                ctx.set(i_payload, port_value(record))
            if driven[1] != ready:
                driven[1] = ready
                ctx.set(o_ready, ready)
            # This cycle's outputs, sampled at its closing edge.
            _, _, shown, word, records_out, overflows, queued = await ctx.tick().sample(
                o_valid, o_payload, dut.count_records, dut.count_overflow, dut.queued)
            # The counters and the fill count what happened before this cycle.
            assert (records_out, overflows) == (done % wrap, len(out.lost) % wrap), \
                f"seed {seed}: counters at cycle {cycle}"
            assert queued == kept - done, f"seed {seed}: queued at cycle {cycle}"
            # The queue holds `depth` records besides the one being sent, which is the one
            # on `o`, or the last one sent.
            if record is not None:
                out.sent[len(out.sent)] = (record, cycle)
                if kept - (done + shown) < depth:
                    kept += 1
                else:
                    out.lost.append(len(out.sent) - 1)
            if shown and ready:
                beat = unpack_beat(1, word, width)
                out.beats.append(beat)
                out.beat_cycles.append(cycle)
                done += beat[-1].last
            if cycle >= len(schedule) and kept == done:
                break   # drained
        assert kept == done, f"seed {seed}: {kept - done} records never came out"
        out.counters = {"records": ctx.get(dut.count_records),
                        "overflow": ctx.get(dut.count_overflow), "wrap": wrap}

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return out


def check(width, depth, schedule, seed, count_bits=LIVE_BITS):
    """Run ``schedule``, decode the bytes out, and compare everything."""
    out = run(width, depth, schedule, seed, count_bits)
    frames = frames_from_cycles(out.beats)
    assert all(len(b) == RECORD_SIZE and not error for b, error in frames), f"seed {seed}"
    out.stream = b"".join(b for b, _ in frames)
    out.records = decode_records(out.stream)
    assert [r.sequence for r in out.records] == sorted(set(out.sent) - set(out.lost)), \
        f"seed {seed}: records lost where the queue had room, kept where it had none, or " \
        "reordered"
    for r in out.records:
        assert r == replace(out.sent[r.sequence][0], sequence=r.sequence), \
            f"seed {seed}: record {r.sequence} changed on the way"
    wrap = out.counters["wrap"]
    assert out.counters == {"records": len(out.records) % wrap,
                            "overflow": len(out.lost) % wrap, "wrap": wrap}, f"seed {seed}"
    return out


def random_schedule(rng, width, n_records, load):
    """Random phases until ``n_records`` records are offered, record chances times ``load``."""
    choices = phases(RECORD_SIZE // width)
    schedule = []
    offered = 0
    while offered < n_records:
        _, p_record, p_ready, shortest, longest = rng.choices(
            choices, weights=[phase[0] for phase in choices])[0]
        for _ in range(rng.randint(shortest, longest)):
            record = random_record(rng) if rng.random() < min(1.0, p_record * load) else None
            schedule.append((record, rng.random() < p_ready))
            offered += record is not None
    return schedule


@pytest.mark.parametrize(("width", "load", "offered", "least_out"), [
    (1, 3.0, 2200, 500),
    (8, 1.0, 2500, 2000),
])
def test_random_traffic(width, load, offered, least_out):
    # At W = 1 a record takes 88 cycles on `o`, so 2,000 records out would take ~200k cycles
    # (over a minute in the simulator): W = 1 runs at three times W = 8's load, its queue
    # mostly full, and most of its records are lost (each still checked, as lost).
    seed, rng = seeded()
    out = check(width, 16, random_schedule(rng, width, offered, load), seed)
    assert len(out.records) >= least_out and out.lost, \
        f"seed {seed}: {len(out.records)} out, {len(out.lost)} lost"


@pytest.mark.parametrize("width", [1, 8])
def test_below_capacity_nothing_is_lost(width):
    # At most two records per record time (one, or two in back-to-back cycles), the default
    # depth: the stream the host reads is gap-free from 0.
    seed, rng = seeded()
    record_time = RECORD_SIZE // width
    schedule = []
    for _ in range(100 if width == 1 else 250):
        for _ in range(rng.choice((1, 2))):
            schedule.append((random_record(rng), rng.random() < 0.9))
        schedule.extend((None, rng.random() < 0.9) for _ in range(record_time))
    out = check(width, 512, schedule, seed)
    assert not out.lost
    assert read_records(out.stream, next_sequence=0) == out.records


@pytest.mark.parametrize("width", [1, 8])
def test_overflow_while_the_host_stalls(width):
    # A record every cycle while `o` is stalled: `depth` wait and one is on `o`, every
    # later record is lost; once the host drains, numbering goes on and the host sees the
    # gap.
    seed, rng = seeded()
    depth, stalled_cycles = 8, 24
    stalled = [(random_record(rng), False) for _ in range(stalled_cycles)]
    drain = [(None, True)] * ((depth + 1) * RECORD_SIZE // width)
    after = [(random_record(rng), True), (random_record(rng), True)]
    out = check(width, depth, stalled + drain + after, seed)
    kept, first_after = depth + 1, stalled_cycles
    assert [r.sequence for r in out.records] == [*range(kept), first_after, first_after + 1]
    assert out.lost == list(range(kept, first_after))
    with pytest.raises(SequenceGap) as gap:
        read_records(out.stream)
    assert (gap.value.expected, gap.value.got, gap.value.index) == (kept, first_after, kept)


def test_counters_wrap():
    # Live counters 3 bits wide: both wrap past 7 (the register file's totals saturate).
    rng = random.Random(3)
    stalled = [(random_record(rng), False) for _ in range(24)]
    spaced = [(None, True)] * (3 * RECORD_SIZE // 8)   # the three kept drain first
    for _ in range(8):
        spaced.append((random_record(rng), True))
        spaced.extend([(None, True)] * (RECORD_SIZE // 8))
    out = check(8, 2, stalled + spaced, seed=None, count_bits=3)
    assert (len(out.records), len(out.lost)) == (3 + 8, 21)
    assert out.counters == {"records": (3 + 8) % 8, "overflow": 21 % 8, "wrap": 8}


@pytest.mark.parametrize("depth", [1, 2])
def test_smallest_queues(depth):
    seed, rng = seeded()
    out = check(8, depth, random_schedule(rng, 8, 300, 1.0), seed)
    assert out.records and out.lost


@pytest.mark.parametrize("width", [1, 8])
def test_back_to_back(width):
    # Records queued while `o` is busy leave without a gap between them, and the first
    # record is on `o` three cycles after it entered an idle drop copy.
    rng = random.Random(width)
    records = [(random_record(rng), True) for _ in range(6)]
    out = check(width, 8, records, seed=None)
    first = 3
    assert out.beat_cycles == list(range(first, first + 6 * RECORD_SIZE // width))


@pytest.mark.parametrize(("args", "error", "message"), [
    ((3, REGMAP), ValueError, "Beat width must be one of (1, 8), not 3"),
    ((8, REGMAP, 0), ValueError, "Depth must be a power of two, not 0"),
    ((8, REGMAP, 24), ValueError, "Depth must be a power of two, not 24"),
    ((8, REGMAP, 16.0), TypeError, "Depth must be an integer number of rows, not 16.0"),
    ((8, REGMAP, True), TypeError, "Depth must be an integer number of rows, not True"),
])
def test_parameter_errors(args, error, message):
    with pytest.raises(error) as info:
        DropCopy(*args)
    assert str(info.value) == message
    # The half-built component would warn "created but never used" whenever it is
    # collected, inside some later test; collect it here, where that is expected.
    del info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()
