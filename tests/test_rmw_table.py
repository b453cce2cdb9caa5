"""RmwTable under the Amaranth simulator: every value at execute equals a plain dict's."""

import random

import pytest
from amaranth.sim import Simulator

from wiregate.hw.risk.rmw_table import RmwTable


def check_table(depth, distance, seed, cycles=1500, hot=3, taps=(), lands=()):
    """Random reads and read-modify-writes, biased onto a few hot keys so hazards are dense.

    The model: a dict updated by every execute-stage write at the end of its cycle; the
    value an event sees at execute (and at each tap) is the dict's content then.
    """
    rng = random.Random(seed)
    hot_keys = rng.sample(range(depth), min(hot, depth))
    dut = RmwTable(32, depth, distance, taps, lands=lands, peek=True)
    model = dict.fromkeys(range(depth), 0)
    reads = []          # address read in each cycle
    mismatches = []

    async def testbench(ctx):
        for c in range(cycles):
            addr = rng.choice(hot_keys) if rng.random() < 0.7 else rng.randrange(depth)
            # About one cycle in four has no event reading: the host's peek takes the port.
            used = rng.random() < 0.75
            ctx.set(dut.read_addr, addr)
            ctx.set(dut.read_en, used)
            reads.append(addr if used else None)
            write = None
            for tap in taps:
                if c >= tap and reads[c - tap] is not None:
                    at = reads[c - tap]
                    seen = ctx.get(getattr(dut, f"tap{tap}"))
                    if seen != model[at]:
                        mismatches.append((f"tap{tap}", c, at, seen, model[at]))
            if c >= distance and reads[c - distance] is not None:
                at = reads[c - distance]
                seen = ctx.get(dut.value)
                if seen != model[at]:
                    mismatches.append((c, at, seen, model[at]))
                if rng.random() < 0.8:
                    # A read-modify-write of the key the event read, as the engine does.
                    write = (at, (seen + rng.randrange(1, 1000)) & 0xFFFF_FFFF)
                elif rng.random() < 0.5:
                    write = (rng.randrange(depth), rng.randrange(1 << 32))
            ctx.set(dut.write_en, write is not None)
            if write is not None:
                ctx.set(dut.write_addr, write[0])
                ctx.set(dut.write_data, write[1])
            peek = rng.randrange(depth)
            ctx.set(dut.peek_addr, peek)
            # What each tap (or value) will show next cycle: this cycle's write where it
            # lands, else what the tap a stage earlier shows now.
            coming = {d: write[1] if ctx.get(getattr(dut, f"lands{d}"))
                      else ctx.get(getattr(dut, f"tap{d - 1}"))
                      for d in lands}
            await ctx.tick()
            if write is not None:
                model[write[0]] = write[1]
            for d, seen in coming.items():
                if c + 1 >= d and reads[c + 1 - d] is not None \
                        and seen != model[reads[c + 1 - d]]:
                    mismatches.append((f"lands{d}", c, reads[c + 1 - d], seen))
            # In a cycle without an event's read the peek reads, and answers a cycle later
            # with that cycle's write applied (the port is transparent to it).
            if not used:
                assert ctx.get(dut.peek_data) == model[peek], f"seed {seed}: peek {peek} at {c}"

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    assert not mismatches, f"seed {seed}: {mismatches[:5]}"


@pytest.mark.parametrize("distance", [1, 2, 3, 5])
@pytest.mark.parametrize("depth", [4, 64])
def test_every_value_at_execute_includes_every_earlier_write(depth, distance):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_table(depth, distance, seed)


@pytest.mark.parametrize("distance,taps", [(2, (1,)), (4, (1, 2)), (8, (3, 5, 7))])
def test_the_taps_include_every_earlier_write_too(distance, taps):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_table(16, distance, seed, taps=taps)


@pytest.mark.parametrize("distance,lands", [(2, (2,)), (4, (2, 3, 4)), (5, (4,))])
def test_lands_says_where_the_write_goes_next_cycle(distance, lands):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_table(16, distance, seed, taps=tuple(d - 1 for d in lands), lands=lands)


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="Distance must be an integer of at least 1"):
        RmwTable(8, 4, 0)
    with pytest.raises(ValueError, match="Depth must be a positive integer"):
        RmwTable(8, 0, 1)
    with pytest.raises(ValueError, match="A tap must be between 1 and distance - 1"):
        RmwTable(8, 4, 3, taps=(3,))
    with pytest.raises(ValueError, match="A lands distance must be between 2 and distance"):
        RmwTable(8, 4, 3, lands=(1,))
