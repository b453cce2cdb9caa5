"""The daemon's per-record throughput: ``python -m wiregate.sw.daemon.bench``.

Each drop-copy record the daemon reads is written to the audit log (its fields, its wire
bytes and the hash chain), counted in the metrics and replayed through the shadow check
(:meth:`~wiregate.sw.daemon.service.Daemon.take`). This times that path on the drop copy of a
trading day that agrees with the model (:func:`wiregate.sim.shadow.model_records`), in this
process's CPU time on one core, and each part alone: the shadow check, and the audit entry.
The transport (decoding the frames) is left out: it is the driver's, the same for every host.
"""

import argparse
import gc
import tempfile
import time

from wiregate.sim.shadow import Day, model_records
from wiregate.sim.trading import Sizes
from wiregate.sw.audit import AuditWriter, record_body
from wiregate.sw.profiles import PROFILES
from wiregate.sw.shadow import ShadowCheck

from .alerts import Alerts
from .config import DaemonConfig
from .service import Daemon

__all__ = ["bench"]


def _timed(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def bench(n_messages: int, seed: int = 1, profile: str = "colorlight-5a75b") -> dict:
    """Records per second of the daemon's path, of the shadow check alone and of the audit
    entry alone, on one trading day of ``n_messages`` client messages."""
    day = Day(seed, Sizes.of(PROFILES[profile]), n_messages)
    records = model_records(day)
    gc.collect()
    gc.freeze()         # the day made ahead stays out of the collector's passes
    with tempfile.TemporaryDirectory() as folder:
        daemon = Daemon(DaemonConfig(limits=None, audit_path=folder), checks=[])
        daemon.shadow = ShadowCheck.for_profile(PROFILES[profile], day.commits)
        with AuditWriter(f"{folder}/daemon") as daemon.audit:
            daemon.alert = Alerts(daemon.audit, daemon.metrics)
            daemon_s = _timed(lambda: [daemon.take(r) for r in records])
        if daemon.mismatch is not None:
            raise AssertionError(f"the model's own drop copy disagrees: {daemon.mismatch}")
        shadow = ShadowCheck.for_profile(PROFILES[profile], day.commits)
        shadow_s = _timed(lambda: shadow.run(records))
        with AuditWriter(f"{folder}/audit") as audit:
            audit_s = _timed(lambda: [audit.append("dropcopy", {**record_body(r),
                                                                "raw": r.encode().hex()})
                                      for r in records])
    gc.unfreeze()
    n = len(records)
    return {"records": n, "daemon_per_s": n / daemon_s, "shadow_per_s": n / shadow_s,
            "audit_per_s": n / audit_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wiregate.sw.daemon.bench", description=(
        "Records per second the daemon takes: audit entry, metrics and shadow check."))
    parser.add_argument("--events", type=int, default=100_000,
                        help="client messages in the trading day (more records in all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", default="colorlight-5a75b", choices=sorted(PROFILES))
    parser.add_argument("--out", help="append the result line to this file")
    args = parser.parse_args(argv)
    r = bench(args.events, args.seed, args.profile)
    line = (f"daemon, {args.profile}: {r['records']} records; daemon path (audit, metrics, "
            f"shadow) {r['daemon_per_s']:,.0f} records/s; shadow check alone "
            f"{r['shadow_per_s']:,.0f}; audit entry alone {r['audit_per_s']:,.0f} (one core, "
            f"CPU time, {time.strftime('%Y-%m-%d %H:%M')})")
    print(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
