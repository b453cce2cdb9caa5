"""``python -m wiregate.sim.fast``: the random day through the compiled harness, its rate."""

import argparse
import random

from ..results import report
from . import random_day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, choices=(1, 8), default=8)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", help="append the figures to this file")
    args = parser.parse_args()
    seed = random.randrange(1 << 32) if args.seed is None else args.seed
    bench, f = random_day(args.width, args.messages, seed)
    python_s = f["play_s"] - f["harness_s"]
    line = (f"W={args.width} fast harness random_day seed={seed}: {f['messages']} client "
            f"messages, {f['records']} records, {f['cycles']} cycles checked in "
            f"{f['play_s']:.1f} s of processor time = {f['messages'] / f['play_s']:,.0f} orders/s "
            f"(harness {f['harness_s']:.1f} s = {f['cycles'] / f['harness_s']:,.0f} cycles/s, "
            f"Python model and scoreboard {python_s:.1f} s; day generated in "
            f"{f['generate_s']:.1f} s; wall clock {f['wall_s']:.1f} s); "
            f"{bench.board.replay.accepted} accepted, {bench.board.replay.rejected} rejected")
    report(line, args.out)


if __name__ == "__main__":
    main()
