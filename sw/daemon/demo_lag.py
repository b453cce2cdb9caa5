"""The daemon's drop-copy lag under the demo's load: ``python -m wiregate.sw.daemon.demo_lag``.

``make demo`` (:mod:`wiregate.sim.demo`) trades a day through ``wiregate sim`` and reads its
drop copy with a monitor of its own. Here every record the monitor reads also goes through
the daemon's path (:meth:`~wiregate.sw.daemon.service.Daemon.take`: shadow check, audit
batch, metrics), and every ``--status-s`` the gateway's status and counters are read, as the
daemon's status task does, for ``wiregate_dropcopy_lag_us`` (the gateway's timebase minus
the last record's time while records wait) and ``wiregate_dropcopy_behind_records``; and
between reads, each record's ``queued`` (the records ahead of it in the gateway's queue when
it was made). The monitor's own shadow check runs too, in the same process: the lag is an
upper bound.

With ``--checks FILE`` (a YAML file with a ``checks:`` section, as in the daemon's
configuration; ``examples/demo-checks.yaml``) every record also goes to those software
checks, and what each asked for (count, first action) is printed. Only their actions are
collected, none is carried out, so the demo's day is the same with or without them.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from wiregate.sim.demo import Demo
from wiregate.sw.audit import AuditWriter
from wiregate.sw.driver import CommandRefused
from wiregate.sw.profiles import profile
from wiregate.sw.shadow import ShadowCheck

from .alerts import Alerts
from .bench import report
from .config import DaemonConfig
from .service import Daemon, configured_checks

__all__ = ["LagDemo"]


class _Tap:
    """A driver whose records pass through ``take`` on their way to the monitor."""

    def __init__(self, driver, take):
        self._driver, self._take = driver, take

    async def records(self):
        async for record in self._driver.records():
            self._take(record)
            yield record


class LagDemo(Demo):
    """The demo, with the daemon's path on the drop copy and its lag sampled.

    Attributes
    ----------
    samples : list of tuple
        (lag_us, behind_records) at each status read.
    """

    def __init__(self, out: Path, orders: int, status_s: float, audit: Path, checks=()):
        super().__init__(out, orders)
        self.status_s = status_s
        self.samples: list[tuple[float, float]] = []
        self.checks = list(checks)
        self.actions: dict[str, list] = {check.name: [] for check in self.checks}
        # The demo's command lines are control hosts too: the reads wait while one runs
        # (the gateway refuses a command whose sequence number another host just used).
        self._quiet = asyncio.Lock()
        self.daemon = daemon = Daemon(DaemonConfig(limits=None, audit_path=audit), checks=[])
        daemon.shadow = ShadowCheck.for_profile(profile(self.profile_name), [self.limits])
        daemon.audit = AuditWriter(audit, batch=daemon.config.audit_batch)
        daemon.alert = Alerts(daemon.audit, daemon.metrics)

    async def _monitor(self, driver) -> None:
        sampling = asyncio.ensure_future(self._sample(driver))
        try:
            await super()._monitor(_Tap(driver, self._take))
        finally:
            if sampling.done():
                sampling.result()       # raises what stopped the sampling
            sampling.cancel()

    def _take(self, record) -> None:
        self.daemon.take(record)
        for check in self.checks:
            self.actions[check.name].extend(check.observe(record))

    async def _cli(self, *arguments: str) -> None:
        async with self._quiet:
            await super()._cli(*arguments)

    async def _sample(self, driver) -> None:
        metrics = self.daemon.metrics
        await driver.identify()         # the status block's layout
        while True:
            await asyncio.sleep(self.status_s)
            try:
                async with self._quiet:
                    state, counters = await driver.status(), await driver.counters()
            except CommandRefused:      # a command line took the sequence number: again
                continue
            self.daemon.settle()
            metrics.status(state, counters, self.daemon.shadow.next_sequence)
            value = metrics.registry.get_sample_value
            self.samples.append((value("wiregate_dropcopy_lag_us"),
                                 value("wiregate_dropcopy_behind_records")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wiregate.sw.daemon.demo_lag",
                                     description="The daemon's lag under the demo's load.")
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--status-s", type=float, default=0.5,
                        help="host seconds between status reads (the daemon's default is 1)")
    parser.add_argument("--out", type=Path, default=Path("build", "demo-lag"))
    parser.add_argument("--results", help="append the result line to this file")
    parser.add_argument("--checks", type=Path,
                        help="a YAML file whose checks: section the records also go through")
    args = parser.parse_args(argv)
    checks = []
    if args.checks is not None:
        checks = configured_checks(yaml.safe_load(args.checks.read_text()).get("checks"))
    with tempfile.TemporaryDirectory() as audit:
        demo = LagDemo(args.out, args.orders, args.status_s, Path(audit), checks)
        summary = asyncio.run(demo.run())
        demo.daemon.audit.close()
    lags = [lag for lag, _ in demo.samples]
    behind = [b for _, b in demo.samples]
    daemon = demo.daemon
    line = (f"daemon lag under the demo ({args.orders} orders, {len(demo.records)} records, "
            f"{len(lags)} status reads): lag_us median {statistics.median(lags or [0]):,.0f}, "
            f"max {max(lags or [0]):,.0f} (gateway us); behind_records max "
            f"{max(behind or [0]):,.0f}; records queued ahead of a record when it was made: max "
            f"{max((r.queued for r in demo.records), default=0)}; daemon shadow "
            f"{'agreed' if daemon.mismatch is None else daemon.mismatch} on "
            f"{daemon.shadow.checked} records; demo shadow "
            f"{summary['shadow']['mismatch'] or 'agreed'} ({time.strftime('%Y-%m-%d %H:%M')})")
    report(line, args.results)
    for name, actions in demo.actions.items():
        first = f"; first: {actions[0].kind} {actions[0].target} ({actions[0].detail})" \
            if actions else ""
        print(f"check {name}: {len(actions)} action(s){first}")
    return 0 if daemon.mismatch is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
