"""Reason words: bit order is priority order, and every fired reason is kept."""

from wiregate.sw.reasons import REASON_BITS, Reason, describe, primary, reason_word


def test_bits_are_dense_and_ordered():
    assert [int(r) for r in Reason] == list(range(REASON_BITS))


def test_word_primary_and_names():
    word = reason_word([Reason.CREDIT_GATEWAY, Reason.RATE, Reason.QUANTITY])
    assert word == (1 << 18) | (1 << 12) | (1 << 13)
    assert primary(word) is Reason.RATE
    assert describe(word) == ["RATE", "QUANTITY", "CREDIT_GATEWAY"]


def test_accept_has_no_primary():
    assert reason_word([]) == 0
    assert primary(0) is None
    assert describe(0) == []


def test_fail_closed_outranks_every_limit():
    # A malformed order rejected for quantity too reports MALFORMED first.
    assert primary(reason_word([Reason.QUANTITY, Reason.MALFORMED])) is Reason.MALFORMED
    assert primary(reason_word([Reason.COLLAR, Reason.KILL_SYMBOL])) is Reason.KILL_SYMBOL
