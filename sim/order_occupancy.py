"""How full the open-order table gets before its first CAPACITY reject, by associativity.

Rule 12 of the reference model (:mod:`wiregate.sw.model`) places an order in one set of the
session's table; a new order is refused with CAPACITY when its set is full, however many
entries stand free elsewhere. This measures that loss through the model itself: a session
sends Enters that all rest (no exchange response frees any), each UserRefNum a random gap
above the last, until the first CAPACITY; the *occupancy* is how many orders rest then, as a
share of ``n_orders``.

``python -m wiregate.sim.order_occupancy`` prints, for each number of ways and each gap
pattern, the lowest, median and mean occupancy over the trials (``--out`` appends the table
to a file).
"""

import argparse
import random
import statistics

from wiregate.sim.orders import enter, limits, session, symbol
from wiregate.sw.limits import RateLimit
from wiregate.sw.model import ClientMessage, Commit, Gate
from wiregate.sw.reasons import Reason

__all__ = ["first_capacity"]

# Gap patterns: consecutive numbers, small random gaps, random numbers (a 16-bit gap is far
# wider than any set count), and a stride of n_orders (the direct-mapped table's worst case).
GAPS = {"consecutive": lambda rng, n: 1, "gap 1..16": lambda rng, n: rng.randint(1, 16),
        "gap 1..65536": lambda rng, n: rng.randint(1, 1 << 16), "stride n_orders": lambda rng, n: n}


def first_capacity(n_orders: int, ways: int, gap, rng: random.Random) -> int:
    """Resting orders when the first Enter is refused with CAPACITY (``n_orders`` if none is).

    ``gap(rng, n_orders)`` gives each UserRefNum's distance above the last.
    """
    burst = n_orders + 1
    gate = Gate(n_sessions=1, n_symbols=1, n_orders=n_orders, order_ways=ways)
    gate.apply(Commit(0, limits(
        (symbol(0, "AAPL", max_long=burst),),
        sessions=(session(0, rate=RateLimit(burst=burst, refill_us=0, trip_after=0)),))))
    ref = 0
    for resting in range(n_orders + 1):
        ref += gap(rng, n_orders)
        verdict = gate.apply(ClientMessage(0, 0, enter(ref, quantity=1)))
        if not verdict.accept:
            assert verdict.reasons == 1 << Reason.CAPACITY, verdict
            return resting
    raise AssertionError(f"{n_orders + 1} orders rested in a table of {n_orders}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-orders", type=int, default=256)
    parser.add_argument("--ways", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="append the table to this file")
    args = parser.parse_args(argv)
    lines = [f"first CAPACITY: resting orders / n_orders {args.n_orders}, "
             f"{args.trials} trials each (lowest, median, mean)"]
    for ways in args.ways:
        for name, gap in GAPS.items():
            rng = random.Random(f"{args.seed}-{ways}-{name}")
            found = [first_capacity(args.n_orders, ways, gap, rng) for _ in range(args.trials)]
            share = [f / args.n_orders for f in found]
            lines.append(f"  {ways:2d} ways  {name:16s} {min(share):6.1%} "
                         f"{statistics.median(share):6.1%} {statistics.mean(share):6.1%}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
