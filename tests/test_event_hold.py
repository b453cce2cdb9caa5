"""Event hold under the Amaranth simulator: only good frames' events come out, in order."""

import random

import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from wiregate.hw.ingress.ouch_extract import event_layout
from wiregate.hw.risk.event_hold import EventHold
from wiregate.sw.extract import MALFORMED
from wiregate.sw.proto.ouch import SERVER_LAYOUTS
from wiregate.sw.regmap import RegisterMap

REGMAP = RegisterMap()
FIELD_BITS = {name: Shape.cast(shape).width
              for name, shape in event_layout(REGMAP).members["fields"].members.items()}
# What an exchange event carries that no check reads: the hold may drop it.
FRAMING = {"sb_type": 8, "length": 16, "continued": 1, "room": 1, "type_offset": 16,
           "last_offset": 16, "type_seq": 32}


def random_event(rng, session):
    """An exchange event as the extractor settles it: the fields its type's layout has
    (none when malformed), random framing, and flags the hold must keep or drop."""
    msg_type = rng.choice(list(SERVER_LAYOUTS))
    malformed = rng.choice(range(len(MALFORMED))) if rng.random() < 0.1 else None
    names = () if malformed is not None else \
        [f.name for f in SERVER_LAYOUTS[msg_type].fields if f.name in FIELD_BITS]
    return {"session": session, "msg_type": msg_type[0],
            "malformed": 0 if malformed is None else 1 << malformed,
            "fields": {name: rng.randrange(1 << FIELD_BITS[name]) for name in names},
            "framing": {name: rng.randrange(1 << bits) for name, bits in FRAMING.items()},
            "retransmit": int(rng.random() < 0.15)}


def released(event):
    """What the hold releases for ``event``: its meaning, the framing zero."""
    return {"session": event["session"], "msg_type": event["msg_type"],
            "malformed": event["malformed"], "valid": 1, "from_client": 0, "retransmit": 0,
            "digest": 0, "fields": {name: event["fields"].get(name, 0) for name in FIELD_BITS},
            "framing": dict.fromkeys(FRAMING, 0)}


def random_frame(rng, width):
    """(beats, void, events): each beat a list of lane flags plus at most one event."""
    n_beats = rng.randint(1, 12)
    session = rng.randrange(REGMAP.n_sessions)
    beats = []
    for k in range(n_beats):
        event = None
        if rng.random() < 0.4:
            event = random_event(rng, session)
        beats.append((k == n_beats - 1, event))
    return beats, rng.random() < 0.25, session


def expected_events(frames):
    out = []
    for beats, void, _ in frames:
        if not void:
            out += [released(e) for _, e in beats if e is not None and not e["retransmit"]]
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
                    for name in ("session", "msg_type", "malformed", "retransmit"):
                        ctx.set(getattr(payload.event, name), event[name])
                    for name, value in {**event["fields"], **event["framing"]}.items():
                        member = getattr(payload.event, name, None)
                        ctx.set(payload.event.fields[name] if member is None else member,
                                value)
            ready = rng.random() < ready_p
            ctx.set(dut.o.ready, ready)
            if ctx.get(dut.overflow):
                overflows.append(ctx.get(dut.overflow_session))
            if ctx.get(dut.o.valid) and ready:
                e = ctx.get(dut.o.payload)
                got.append({**{name: getattr(e, name) for name in (
                    "session", "msg_type", "malformed", "valid", "from_client", "retransmit",
                    "digest")},
                    "fields": {name: e.fields[name] for name in FIELD_BITS},
                    "framing": {name: getattr(e, name) for name in FRAMING}})
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
    def event(ref, session=3):
        return {"session": session, "msg_type": ord("E"), "malformed": 0,
                "fields": {"user_ref_num": ref, "quantity": 1}, "framing": {}, "retransmit": 0}

    small = ([(False, event(k)) for k in range(3)] + [(True, None)], False, 3)
    big = ([(False, event(10 + k)) for k in range(9)] + [(True, None)], False, 3)
    after = ([(True, event(99, session=1))], False, 1)
    got, overflows, counts = run(1, [small, big, after], seed=1, depth=8, ready_p=0.0)
    assert got == [] and overflows == [3]
    assert counts == {"held": 4, "discarded": 9, "overflow": 1}
    # With a reader, everything of the good frames comes out and the big one does not.
    got, overflows, counts = run(8, [small, big, after], seed=2, depth=16, ready_p=1.0)
    assert got == expected_events([small, big, after]) and overflows == []
