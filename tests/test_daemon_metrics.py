"""The daemon's metrics counted a batch at a time are what counting record by record gives
(the expectation counted here from the records with ``collections.Counter``), and the lag in
the gateway's time is its timebase minus the last record's time while records wait."""

from collections import Counter

from wiregate.sim.shadow import Day, model_records
from wiregate.sim.trading import Sizes
from wiregate.sw.daemon.metrics import Metrics
from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.model import SCOPES
from wiregate.sw.profiles import PROFILES
from wiregate.sw.reasons import NO_PRIMARY, Reason

PROFILE = PROFILES["colorlight-5a75b"]


def samples(metrics: Metrics) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in metrics.registry.collect() for s in family.samples}


def test_batched_counts_match_the_records_one_by_one():
    records = model_records(Day(3, Sizes.of(PROFILE), 3000))
    metrics = Metrics()
    for start in range(0, len(records), 97):    # batches that split the day anywhere
        metrics.count(records[start:start + 97], agreed=len(records[start:start + 97]))
    got = samples(metrics)
    verdicts = [r for r in records if r.kind == Kind.VERDICT]
    orders = Counter((str(r.session), "accept" if r.accept else "reject") for r in verdicts)
    rejects = Counter((str(r.session), "NONE" if r.primary == NO_PRIMARY
                       else Reason(r.primary).name) for r in verdicts if not r.accept)
    kills = Counter(SCOPES[r.argument] for r in records if r.control == Control.KILL)
    assert {k: v for (name, k), v in got.items() if name == "wiregate_orders_total"} == {
        (("session", s), ("verdict", v)): n for (s, v), n in orders.items()}
    assert {k: v for (name, k), v in got.items() if name == "wiregate_rejects_total"} == {
        (("reason", reason), ("session", s)): n for (s, reason), n in rejects.items()}
    assert {k: v for (name, k), v in got.items() if name == "wiregate_kills_total"} == {
        (("scope", scope),): n for scope, n in kills.items()}
    assert got[("wiregate_dropcopy_records_total", ())] == len(records)
    assert got[("wiregate_shadow_checked_total", ())] == len(records)
    assert got[("wiregate_dropcopy_next_sequence", ())] == records[-1].sequence + 1
    assert got[("wiregate_dropcopy_lag_records", ())] == records[-1].queued


def _status(metrics: Metrics, timebase_us: int, made: int, next_sequence: int) -> float:
    state = {"limits_loaded": 1, "heartbeat_lost": 0, "kill_gateway": 0, "epoch": 1,
             "kill_sessions": 0, "in_sync": 0, "timebase_us": timebase_us}
    metrics.status(state, {"dropcopy_records": made, "dropcopy_overflow": 0}, next_sequence)
    return samples(metrics)[("wiregate_dropcopy_lag_us", ())]


def test_the_lag_in_gateway_time_counts_while_records_wait():
    records = model_records(Day(1, Sizes.of(PROFILE), 200))
    metrics = Metrics()
    # Before any record is read, everything the gateway made waits since its reset.
    assert _status(metrics, 5_000, made=3, next_sequence=0) == 5_000
    metrics.count(records[:10])
    last = records[9].time_us
    assert _status(metrics, last + 250, made=40, next_sequence=10) == 250
    assert _status(metrics, last + 900, made=10, next_sequence=10) == 0     # caught up
