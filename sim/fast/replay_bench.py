"""``python -m wiregate.sim.fast.replay_bench``: the replay rate of ``wiregate replay``.

A capture of N Enter Orders (session 0 of the limit file, every 20th frame answered by an
Order Accepted, built with the project's frame code for speed; as many orders a frame as the
drop copy can record in the frame's time, below) goes through both engines at one width;
the gateware engine's verdicts and output pcaps must equal the model engine's, and its own
check of every drop-copy record must find no mismatch. The figures (orders per second in
processor time of the replay loop, its wall clock, the harness's share, the latency
distributions) are appended to the results file as one line of text and one of JSON.
"""

import argparse
import dataclasses
import json
import random
import struct
import time
import warnings

from wiregate.sim.capture import replay_model
from wiregate.sim.results import report
from wiregate.sw.limits import RATE_BURST_MAX, load_limits
from wiregate.sw.profiles import PROFILES
from wiregate.sw.proto import pcap
from wiregate.sw.proto.frames import build_frame

from .capture import replay_gateware

__all__ = ["order_flow", "unlimited_rate"]

PROFILE = {1: "colorlight-5a75b", 8: "full"}
# The drop copy leaves the core a lane width a cycle: an 88-byte record a message takes 88
# cycles at W = 1 (8 ns) and 11 at W = 8 (6.4 ns). Each frame carries about as many orders
# as the drop copy takes out in the time to the next frame, so few more cycles are
# simulated than it needs: 17 orders (1,496 cycles) every 12 us (1,500 cycles) at W = 1;
# at W = 8, 7 orders every 1 us (156 cycles), where 12 and 14 lost records after about
# 1,400 (the core takes more than 11 cycles a record there when frames come this dense).
# Either frame is far below the MSS (50 bytes an order).
GAP_US = {1: 12, 8: 1}
PER_FRAME = {1: 17, 8: 7}
PRICES = {b"AAPL": 2_285_000, b"MSFT": 4_153_000, b"NVDA": 1_354_000, b"AMZN": 1_862_000,
          b"ZZZZ": 10_000}


def _soup(kind: bytes, messages) -> bytes:
    return b"".join(struct.pack(">Hc", 1 + len(m), kind) + m for m in messages)


def order_flow(limits, orders: int, per_frame: int, gap_us: int, seed: int = 1) -> list:
    """The capture's pcap records (see the module docstring): ``per_frame`` orders a frame,
    frames ``gap_us`` apart."""
    s = limits.sessions[0]
    client = {"src_mac": "02:00:00:00:01:01", "dst_mac": "02:00:00:00:00:fe",
              "src_ip": s.client.ip, "dst_ip": s.exchange.ip, "src_port": s.client.port,
              "dst_port": s.exchange.port}
    exchange = {"src_mac": client["dst_mac"], "dst_mac": client["src_mac"],
                "src_ip": s.exchange.ip, "dst_ip": s.client.ip, "src_port": s.exchange.port,
                "dst_port": s.client.port}
    rng, seq, records, t = random.Random(seed), {"c": 1_000, "e": 5_000_000}, [], 0

    def send(side, payload, flags="PA"):
        nonlocal t
        ends, other = (client, "e") if side == "c" else (exchange, "c")
        records.append(pcap.PcapRecord(t, build_frame(payload, seq=seq[side], ack=seq[other],
                                                      flags=flags, **ends)))
        seq[side] = (seq[side] + len(payload) + ("S" in flags)) % 2**32
        t += gap_us * 1_000

    seq["c"] -= 1
    seq["e"] -= 1
    send("c", b"", "S")
    send("e", b"", "SA")
    send("c", b"", "A")
    ref = 0
    for k, start in enumerate(range(0, orders, per_frame)):
        messages = []
        for _ in range(min(per_frame, orders - start)):
            ref += 1
            symbol = rng.choice(list(PRICES))
            price = max(1, PRICES[symbol] + rng.randint(-100_000, 100_000))
            messages.append(struct.pack(">cIcI8sQccccc14sH", b"O", ref,
                                        rng.choice((b"B", b"S")),
                                        rng.choice((1, 10, 100, 60_000)), symbol.ljust(8),
                                        price, b"0", b"Y", b"A", b"N", b"N",
                                        f"C{ref}".encode().ljust(14), 0))
        send("c", _soup(b"U", messages))
        if k % 20 == 0:
            send("e", _soup(b"S", [struct.pack(">cQIcI8sQccQcccc14sH", b"A", 1, ref, b"B", 1,
                                         b"AAPL".ljust(8), 2_285_000, b"0", b"Y", 77 + ref,
                                         b"A", b"N", b"N", b"L",
                                         f"C{ref}".encode().ljust(14), 0)]))
    return records


def unlimited_rate(limits):
    """``limits`` with session 0's order rate unlimited in practice: the gateware engine
    judges at the core's times, a few microseconds after the capture's, so a verdict at
    the rate bucket's edge could differ from the model engine's (each engine is right at its
    own times; the gateware engine checks every record against the model at the core's).
    Without it nothing in the capture depends on time, and the engines must agree."""
    first = limits.sessions[0]
    rate = dataclasses.replace(first.rate, burst=RATE_BURST_MAX, refill_us=1, trip_after=0)
    return dataclasses.replace(limits, sessions=(dataclasses.replace(first, rate=rate),
                                                 *limits.sessions[1:]))


def run(width: int, orders: int, limits_path: str) -> dict:
    """Both engines over the capture; the figures, or AssertionError on any difference."""
    profile = PROFILES[PROFILE[width]]
    limits = unlimited_rate(load_limits(limits_path, max_sessions=profile.n_sessions,
                                        max_symbols=profile.n_symbols))
    records = order_flow(limits, orders, PER_FRAME[width], GAP_US[width])
    model = replay_model(records, limits, profile, width, max_gap_us=GAP_US[width],
                         progress=False)
    wall = time.perf_counter()
    gateware, latency = replay_gateware(records, limits, profile, width,
                                        max_gap_us=GAP_US[width], progress=False)
    wall = time.perf_counter() - wall
    assert not gateware.mismatches, gateware.mismatches[0]
    assert len(gateware.entries) == len(model.entries) == orders
    for got, want in zip(gateware.entries, model.entries, strict=True):
        assert got.as_json() | {"t_us": 0} == want.as_json() | {"t_us": 0}, (got, want)
    for side in ("to_exchange", "to_client"):
        assert getattr(gateware, side) == getattr(model, side), f"{side} differs"
    run_ = latency["run"]
    return {"width": width, "profile": profile.name, "orders": orders,
            "frames": len(records), "max_gap_us": GAP_US[width],
            "orders_per_frame": PER_FRAME[width],
            "accepted": gateware.summary()["verdicts"]["accept"],
            "replay_s": round(gateware.seconds, 1),
            "orders_per_s": round(orders / gateware.seconds),
            "replay_wall_s": round(run_["wall_s"], 1), "total_wall_s": round(wall, 1),
            "harness_s": round(run_["harness_s"], 1), "cycles": run_["cycles"],
            "cycles_per_s": round(run_["cycles"] / run_["harness_s"]),
            "model_engine_orders_per_s": round(orders / model.seconds),
            "latency": {k: latency[k] for k in ("first_byte", "verdict")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, choices=(1, 8), required=True)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--limits", default="limits/default.yaml")
    parser.add_argument("--out", help="append the figures to this file")
    args = parser.parse_args()
    from amaranth.hdl import UnusedElaboratable

    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    f = run(args.width, args.orders, args.limits)
    lat = {k: f["latency"][k]["cycles"] for k in ("first_byte", "verdict")}
    line = (f"W={f['width']} replay --engine gateware ({f['profile']}, --max-gap-us "
            f"{f['max_gap_us']}): {f['orders']} orders in {f['frames']} frames "
            f"({f['orders_per_frame']} a frame), "
            f"{f['accepted']} accepted, verdicts and pcaps equal to the model engine's; "
            f"{f['replay_s']} s of processor time = {f['orders_per_s']:,} orders/s (wall "
            f"clock {f['replay_wall_s']} s, {f['total_wall_s']} s with the build check and the "
            f"final checks; harness {f['harness_s']} s for {f['cycles']} cycles = "
            f"{f['cycles_per_s']:,} cycles/s; model engine alone "
            f"{f['model_engine_orders_per_s']:,} orders/s); latency in cycles: first byte "
            f"{lat['first_byte']}, verdict {lat['verdict']}")
    report(line, args.out, json.dumps(f))


if __name__ == "__main__":
    main()
