"""The daemon's per-record throughput: ``python -m wiregate.sw.daemon.bench``.

Each drop-copy record the daemon reads is written to the audit log (its wire bytes, a batch
of records to an entry, hash-chained), counted in the metrics (once per batch) and replayed
through the shadow check (:meth:`~wiregate.sw.daemon.service.Daemon.take`, then
:meth:`~wiregate.sw.daemon.service.Daemon.settle`). This times that path on the drop copy of
a trading day that agrees with the model (:func:`wiregate.sim.shadow.model_records`), in this
process's CPU time on one core, and each part alone: the shadow check, the audit entries
and the metrics. The transport is left out of the path (it is the driver's, the same for
every host); the decoding of each record from its frame's payload
(:meth:`~wiregate.sw.dropcopy.Record.decode`, as the driver does it) is timed alone.
"""

import argparse
import gc
import tempfile
import time

from wiregate.sim.shadow import Day, model_records
from wiregate.sim.trading import Sizes
from wiregate.sw.audit import AuditWriter
from wiregate.sw.dropcopy import Record
from wiregate.sw.profiles import PROFILES
from wiregate.sw.shadow import ShadowCheck

from .alerts import Alerts
from .config import DaemonConfig
from .metrics import Metrics
from .service import Daemon

__all__ = ["bench", "report"]


def _timed(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def bench(n_messages: int, seed: int = 1, profile: str = "colorlight-5a75b") -> dict:
    """Records per second of the daemon's path and of each of its parts alone, on one
    trading day of ``n_messages`` client messages."""
    day = Day(seed, Sizes.of(PROFILES[profile]), n_messages)
    records = model_records(day)
    gc.collect()
    gc.freeze()         # the day made ahead stays out of the collector's passes
    config = DaemonConfig(limits=None, audit_path=None)
    with tempfile.TemporaryDirectory() as folder:
        daemon = Daemon(config, checks=[])
        daemon.shadow = ShadowCheck.for_profile(PROFILES[profile], day.commits)
        with AuditWriter(f"{folder}/daemon", batch=config.audit_batch) as daemon.audit:
            daemon.alert = Alerts(daemon.audit, daemon.metrics)

            def path():
                for r in records:
                    daemon.take(r)
                daemon.settle()
            daemon_s = _timed(path)
        if daemon.mismatch is not None:
            raise AssertionError(f"the model's own drop copy disagrees: {daemon.mismatch}")
        shadow = ShadowCheck.for_profile(PROFILES[profile], day.commits)
        shadow_s = _timed(lambda: shadow.run(records))
        with AuditWriter(f"{folder}/audit", batch=config.audit_batch) as audit:
            def log():
                for r in records:
                    audit.record(r)
                audit.flush()
            audit_s = _timed(log)
        metrics = Metrics()
        step = config.audit_batch
        metrics_s = _timed(lambda: [metrics.count(records[i:i + step], step)
                                    for i in range(0, len(records), step)])
        payloads = [r.encode() for r in records]
        decode_s = _timed(lambda: [Record.decode(p) for p in payloads])
    gc.unfreeze()
    n = len(records)
    return {"records": n, "daemon_per_s": n / daemon_s, "shadow_per_s": n / shadow_s,
            "audit_per_s": n / audit_s, "metrics_per_s": n / metrics_s,
            "decode_per_s": n / decode_s}


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
            f"{r['shadow_per_s']:,.0f}; audit entries alone {r['audit_per_s']:,.0f}; metrics "
            f"alone {r['metrics_per_s']:,.0f}; decoding alone {r['decode_per_s']:,.0f} "
            f"(one core, CPU time, "
            f"{time.strftime('%Y-%m-%d %H:%M')})")
    report(line, args.out)
    return 0


def report(line: str, path: str | None) -> None:
    """Print a result line, and append it to ``path`` if given."""
    print(line)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
