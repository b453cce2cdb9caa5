"""The host's shadow check (wiregate.sw.shadow) on the drop copy the model itself writes for a
trading day (wiregate.sim.shadow): a clean stream agrees, every altered record or gap is named."""

import dataclasses

import pytest

from wiregate.sim.shadow import Day, bench, model_records
from wiregate.sim.trading import Sizes
from wiregate.sw.dropcopy import Control, Kind
from wiregate.sw.reasons import NO_PRIMARY, Reason
from wiregate.sw.shadow import ShadowCheck

SIZES = Sizes(backlog_high=10, backlog_low=4)   # the host reads in batches of 16: BACKLOG fires


@pytest.fixture(scope="module")
def day():
    return Day(7, SIZES, 4000)


@pytest.fixture(scope="module")
def records(day):
    return model_records(day)


def check_of(day):
    return ShadowCheck(day.sizes.gate(), day.commits)


def first(records, predicate):
    return next(k for k, rec in enumerate(records) if predicate(rec))


def altered(records, index, **values):
    out = list(records)
    out[index] = dataclasses.replace(records[index], **values)
    return out


def test_a_clean_day_agrees_record_for_record_and_ends_in_the_days_state(day, records):
    kinds = {rec.kind for rec in records} | {rec.control for rec in records}
    # The day exercises what the check must rebuild: void frames and their revokes,
    # retransmissions, backlog, commits, kills.
    assert {Control.VOID_UNDO, Control.REVOKE, Control.COMMIT, Control.KILL} <= kinds
    assert any(rec.retransmit for rec in records)
    assert any(rec.reasons >> Reason.BACKLOG & 1 for rec in records)
    check = check_of(day)
    assert check.run(records) is None
    assert check.checked == len(records) == check.next_sequence
    reference = SIZES.gate()
    assert model_records(day, gate=reference) == records
    assert check.gate.snapshot() == reference.snapshot()


def test_an_accept_turned_reject_is_caught_at_its_record(day, records):
    k = first(records, lambda r: r.kind == Kind.VERDICT and r.accept and r.msg_type == ord("O"))
    bit = 1 << Reason.NOTIONAL
    bad = altered(records, k, accept=0, reasons=bit, primary=int(Reason.NOTIONAL))
    mismatch = check_of(day).run(bad)
    assert (mismatch.sequence, mismatch.field, mismatch.gateway, mismatch.model) == (
        records[k].sequence, "accept", 0, 1)


def test_a_changed_reason_word_is_caught_with_both_words(day, records):
    k = first(records, lambda r: r.kind == Kind.VERDICT and not r.accept and not r.retransmit
              and r.reasons != 1 << Reason.CAPACITY)
    word = records[k].reasons | 1 << Reason.CAPACITY
    mismatch = check_of(day).run(altered(records, k, reasons=word))
    assert (mismatch.sequence, mismatch.field, mismatch.gateway, mismatch.model) == (
        records[k].sequence, "reasons", word, records[k].reasons)


def test_a_wrong_symbol_index_is_caught(day, records):
    k = first(records, lambda r: r.kind == Kind.VERDICT and r.symbol_known)
    wrong = (records[k].symbol_index + 1) % SIZES.n_symbols
    mismatch = check_of(day).run(altered(records, k, symbol_index=wrong))
    assert (mismatch.sequence, mismatch.field, mismatch.gateway, mismatch.model) == (
        records[k].sequence, "symbol_index", wrong, records[k].symbol_index)


def test_a_retransmission_that_gains_an_accept_is_caught(day, records):
    # The check takes an OUT_OF_SYNC reject or the remembered verdict for a retransmission
    # (the record lacks the digested fields); never an accept the model did not give.
    k = first(records, lambda r: r.retransmit and r.reasons == 1 << Reason.OUT_OF_SYNC
              and r.msg_type in b"OU")
    bad = altered(records, k, accept=1, reasons=0, primary=NO_PRIMARY)
    mismatch = check_of(day).run(bad)
    assert (mismatch.sequence, mismatch.field, mismatch.gateway) == (
        records[k].sequence, "accept", 1)


def test_a_lost_record_is_a_sequence_gap(day, records):
    k = len(records) // 2
    check = check_of(day)
    mismatch = check.run(records[:k] + records[k + 1:])
    assert (mismatch.sequence, mismatch.field, mismatch.gateway, mismatch.model) == (
        k + 1, "sequence", k + 1, k)
    assert check.checked == k
    # The check stays failed: the model no longer follows the gateway.
    assert check.check(records[k]) is mismatch


def test_a_revoke_of_another_order_is_caught(day, records):
    k = first(records, lambda r: r.kind == Kind.CONTROL and r.control == Control.REVOKE)
    wrong = records[k].user_ref_num + 1
    mismatch = check_of(day).run(altered(records, k, user_ref_num=wrong))
    assert (mismatch.sequence, mismatch.field, mismatch.gateway, mismatch.model) == (
        records[k].sequence, "user_ref_num", wrong, records[k].user_ref_num)


def test_a_void_undo_of_too_many_verdicts_is_caught(day, records):
    k = first(records, lambda r: r.kind == Kind.CONTROL and r.control == Control.VOID_UNDO)
    n = records[k].argument
    mismatch = check_of(day).run(altered(records, k, argument=n + 40))
    assert (mismatch.sequence, mismatch.field, mismatch.gateway) == (
        records[k].sequence, "argument", n + 40)


def test_a_commit_without_its_limits_is_caught(day, records):
    check = ShadowCheck(day.sizes.gate(), day.commits[:1])
    k = [r.sequence for r in records if r.control == Control.COMMIT][1]
    mismatch = check.run(records)
    assert (mismatch.sequence, mismatch.field, mismatch.gateway, mismatch.model) == (
        k, "argument", 2, 2)


def test_the_bench_reports_both_rates():
    result = bench(300)
    assert result["records"] >= result["events"] > 300
    assert result["model_events_per_s"] > 0 and result["shadow_records_per_s"] > 0


def test_a_record_earlier_than_the_one_before_is_caught(day, records):
    k = first(records, lambda r: r.sequence > 0 and r.time_us > records[r.sequence - 1].time_us)
    early = records[k - 1].time_us - 1
    mismatch = check_of(day).run(altered(records, k, time_us=early))
    assert (mismatch.sequence, mismatch.field, mismatch.gateway, mismatch.model) == (
        records[k].sequence, "time_us", early, records[k - 1].time_us)


def test_a_reference_takes_the_hosts_stamp_not_the_records_time(day, records):
    # A daemon stamps a price with when it saw it, before its write lands: the check takes
    # that stamp, and the model's age of the reference counts from it.
    k = first(records, lambda r: r.kind == Kind.CONTROL and r.control == Control.SET_REFERENCE)
    rec = records[k]
    earlier = altered(records, k, argument=rec.time_us - 7)
    check = check_of(day)
    assert check.run(earlier[:k + 1]) is None
    assert check.gate.reference(rec.symbol_index) == (rec.price, rec.time_us - 7)
