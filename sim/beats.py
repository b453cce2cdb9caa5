"""Beats as Python values: stimulus, packing and the plain models the benches check against.

Both simulators (Amaranth's and Verilator through cocotb) drive and check the same way:
a *cycle* is either ``None`` (valid low) or a list of ``W`` slots; a *slot* is ``None``
(lane without a byte) or a :class:`Byte`. Beats are packed into integers with the bit
offsets of :data:`wiregate.hw.stream.LANE_LAYOUT`, so the layout is declared only once.
"""

import random
from dataclasses import dataclass

from wiregate.hw.stream import LANE_LAYOUT

__all__ = [
    "Byte",
    "delay_cycles",
    "frame_cycles",
    "frame_ends",
    "frames_from_cycles",
    "pack_beat",
    "random_frames",
    "unpack_beat",
]

_LANE_BITS = LANE_LAYOUT.size
_FIELD = {name: LANE_LAYOUT[name].offset for name in ("data", "keep", "first", "last", "error")}


@dataclass(frozen=True)
class Byte:
    """One byte on a lane with its framing flags."""

    data: int
    first: bool = False
    last: bool = False
    error: bool = False


def random_frames(rng: random.Random, count: int, min_len=1, max_len=1600, error_rate=0.1):
    """``count`` random frames as (bytes, error) pairs."""
    frames = []
    for _ in range(count):
        length = rng.randint(min_len, max_len)
        frames.append((rng.randbytes(length), rng.random() < error_rate))
    return frames


def frame_cycles(frames, width: int, rng: random.Random, idle=0.2, max_idle=4):
    """Cycles that carry ``frames`` the way a receive MAC does.

    Each frame starts in lane 0, only its last beat may be partial, and its error flag is
    on the last byte. With probability ``idle`` a run of 1..``max_idle`` idle cycles is
    inserted before any beat, inside frames too.
    """
    cycles = []
    for payload, error in frames:
        for start in range(0, len(payload), width):
            if rng.random() < idle:
                cycles.extend([None] * rng.randint(1, max_idle))
            chunk = payload[start:start + width]
            beat = []
            for lane in range(width):
                pos = start + lane
                if lane < len(chunk):
                    is_last = pos == len(payload) - 1
                    beat.append(Byte(chunk[lane], first=pos == 0, last=is_last,
                                     error=error and is_last))
                else:
                    beat.append(None)
            cycles.append(beat)
    return cycles


def pack_beat(beat) -> tuple[int, int]:
    """A cycle as (valid, payload integer)."""
    if beat is None:
        return 0, 0
    word = 0
    for lane, slot in enumerate(beat):
        if slot is None:
            continue
        fields = {"data": slot.data, "keep": 1, "first": int(slot.first),
                  "last": int(slot.last), "error": int(slot.error)}
        for name, value in fields.items():
            word |= value << (lane * _LANE_BITS + _FIELD[name])
    return 1, word


def unpack_beat(valid: int, word: int, width: int):
    """The inverse of :func:`pack_beat`; lanes without ``keep`` read as ``None``."""
    if not valid:
        return None
    beat = []
    for lane in range(width):
        bits = word >> (lane * _LANE_BITS)
        if not bits >> _FIELD["keep"] & 1:
            beat.append(None)
            continue
        beat.append(Byte(bits >> _FIELD["data"] & 0xFF, first=bool(bits >> _FIELD["first"] & 1),
                         last=bool(bits >> _FIELD["last"] & 1),
                         error=bool(bits >> _FIELD["error"] & 1)))
    return beat


def delay_cycles(cycles, width: int, delay: int, total: int):
    """The holdback's reference: ``cycles`` delayed by ``delay`` byte times.

    Returns ``total`` output cycles, each ``None`` when no lane holds a byte.
    """
    slots = [None] * delay
    for beat in cycles:
        slots.extend(beat if beat is not None else [None] * width)
    slots.extend([None] * (total * width - len(slots)))
    out = []
    for c in range(total):
        beat = slots[c * width:(c + 1) * width]
        out.append(beat if any(s is not None for s in beat) else None)
    return out


def frames_from_cycles(cycles):
    """Reassemble (bytes, error) frames from cycles, checking the framing flags.

    Raises AssertionError on a byte outside a frame, a ``first`` inside a frame, or an
    error flag away from a ``last`` byte.
    """
    frames, current = [], None
    for beat in cycles:
        for slot in beat or ():
            if slot is None:
                continue
            if slot.first:
                assert current is None, "frame starts inside another frame"
                current = bytearray()
            assert current is not None, "byte outside any frame"
            assert not slot.error or slot.last, "error flag on a byte that is not last"
            current.append(slot.data)
            if slot.last:
                frames.append((bytes(current), slot.error))
                current = None
    assert current is None, "stream ended inside a frame"
    return frames


async def frame_ends(ctx, dut, cycles, lanes_of, tail=4):
    """Amaranth testbench helper: drive ``cycles`` into ``dut.i``, one per clock, then
    ``tail`` idle cycles; return ``dut.o``'s payload on every beat that ends a frame.

    ``lanes_of(payload)`` finds the beat lanes inside the output payload.
    """
    ends = []
    for c in range(len(cycles) + tail):
        valid, word = pack_beat(cycles[c] if c < len(cycles) else None)
        ctx.set(dut.i.valid, valid)
        ctx.set(dut.i.payload.as_value(), word)
        await ctx.tick()
        if ctx.get(dut.o.valid):
            out = ctx.get(dut.o.payload)
            lanes = lanes_of(out)
            if any(lanes[k].keep and lanes[k].last for k in range(len(lanes))):
                ends.append(out)
    return ends
