"""Event hold under the Amaranth simulator: only good frames' events come out, in order."""

import random

import pytest
from amaranth.sim import Simulator

from wiregate.hw.risk.event_hold import EventHold
from wiregate.sw.regmap import RegisterMap

REGMAP = RegisterMap()


def random_frame(rng, width):
    """(beats, void, events): each beat a list of lane flags plus at most one event."""
    n_beats = rng.randint(1, 12)
    session = rng.randrange(REGMAP.n_sessions)
    beats = []
    for k in range(n_beats):
        event = None
        if rng.random() < 0.4:
            event = {"session": session,
                     "msg_type": rng.choice(b"AUCEJBM"),
                     "user_ref_num": rng.randrange(1 << 32),
                     "quantity": rng.randrange(1 << 32),
                     "retransmit": int(rng.random() < 0.15)}
        beats.append((k == n_beats - 1, event))
    return beats, rng.random() < 0.25, session


def expected_events(frames):
    out = []
    for beats, void, _ in frames:
        if not void:
            out += [e for _, e in beats if e is not None and not e["retransmit"]]
    return out


def run(width, frames, seed, *, depth=256, ready_p=0.7, idle_p=0.3):
    rng = random.Random(seed)
    dut = EventHold(width, REGMAP, depth=depth)
    got, overflows = [], []
    counts = {}

    async def testbench(ctx):
        payload = dut.i.payload
        lanes = payload.beat.beat.beat.beat.lanes
        schedule = []
        for beats, void, session in frames:
            for last, event in beats:
                schedule.append((last, void, session, event))
                while rng.random() < idle_p:
                    schedule.append(None)
        schedule += [None] * (4 * depth + 50)
        for item in schedule:
            ctx.set(dut.i.valid, item is not None)
            ctx.set(payload.as_value(), 0)
            if item is not None:
                last, void, session, event = item
                ctx.set(payload.beat.beat.beat.session, session)
                lane = rng.randrange(width) if last else width - 1
                ctx.set(lanes[lane].keep, 1)
                ctx.set(lanes[lane].last, last)
                ctx.set(payload.void, void and last)
                if event is not None:
                    ctx.set(payload.event.valid, 1)
                    for name in ("session", "msg_type", "retransmit"):
                        ctx.set(getattr(payload.event, name), event[name])
                    ctx.set(payload.event.fields.user_ref_num, event["user_ref_num"])
                    ctx.set(payload.event.fields.quantity, event["quantity"])
            ready = rng.random() < ready_p
            ctx.set(dut.o.ready, ready)
            if ctx.get(dut.overflow):
                overflows.append(ctx.get(dut.overflow_session))
            if ctx.get(dut.o.valid) and ready:
                e = ctx.get(dut.o.payload)
                got.append({"session": e.session, "msg_type": e.msg_type,
                            "user_ref_num": e.fields.user_ref_num,
                            "quantity": e.fields.quantity, "retransmit": e.retransmit})
            await ctx.tick()
        for name in ("held", "discarded", "overflow"):
            counts[name] = ctx.get(getattr(dut, f"count_{name}"))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return got, overflows, counts


@pytest.mark.parametrize("width", [1, 8])
def test_only_good_frames_are_released_in_order(width):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    frames = [random_frame(rng, width) for _ in range(300)]
    got, overflows, counts = run(width, frames, seed)
    expected = expected_events(frames)
    assert got == expected, f"seed {seed}"
    assert overflows == []
    held = [e for beats, _, _ in frames for _, e in beats
            if e is not None and not e["retransmit"]]
    assert counts == {"held": len(expected), "discarded": len(held) - len(expected),
                      "overflow": 0}


def test_a_frame_that_overflows_is_taken_back_and_names_its_session():
    # Depth 8, a reader that never reads during the big frame: its ninth event finds no room.
    event = {"session": 3, "msg_type": ord("E"), "user_ref_num": 1, "quantity": 1,
             "retransmit": 0}
    small = ([(False, dict(event, user_ref_num=k)) for k in range(3)] + [(True, None)], False, 3)
    big = ([(False, dict(event, user_ref_num=10 + k)) for k in range(9)] + [(True, None)],
           False, 3)
    after = ([(True, dict(event, user_ref_num=99, session=1))], False, 1)
    got, overflows, counts = run(1, [small, big, after], seed=1, depth=8, ready_p=0.0)
    assert got == [] and overflows == [3]
    assert counts == {"held": 4, "discarded": 9, "overflow": 1}
    # With a reader, everything of the good frames comes out and the big one does not.
    got, overflows, counts = run(8, [small, big, after], seed=2, depth=16, ready_p=1.0)
    assert got == expected_events([small, big, after]) and overflows == []
