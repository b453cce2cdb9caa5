"""The reference model: scenarios with verdicts and state worked out by hand, and invariants
over random event streams.

Every expected number below is written out (shares, price units) rather than derived from
the model, so a wrong rule in the model shows up as a wrong number here.
"""

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wiregate.sim import orders
from wiregate.sim.orders import (
    P100,
    accepted,
    broken,
    cancel,
    canceled,
    corrected,
    enter,
    executed,
    modify,
    rejected,
    replace_order,
    replaced,
    session,
    symbol,
)
from wiregate.sw.limits import (
    OUCH_MAX_PRICE,
    RATE_TRIP_MAX,
    RateLimit,
)
from wiregate.sw.model import (
    ClientMessage,
    Commit,
    ExchangeMessage,
    Exposure,
    FrameVoid,
    Gate,
    Heartbeat,
    HostRead,
    Kill,
    Malformed,
    Release,
    Revoke,
    SessionSync,
    SetReference,
    Tick,
    order_set,
)
from wiregate.sw.proto import ouch
from wiregate.sw.reasons import Reason

R = Reason
P101 = 1_010_000
P99 = 990_000

AAPL, MSFT, BANNED, NOREF = 0, 1, 2, 3


def word(*reasons: Reason) -> int:
    w = 0
    for r in reasons:
        w |= 1 << int(r)
    return w


def limits(*, symbols=None, **options):
    return orders.limits(symbols or (
        symbol(AAPL, "AAPL"),
        symbol(MSFT, "MSFT", reference_price=2 * P100, collar=100_000),
        symbol(BANNED, "BANNED", restricted=True),
        symbol(NOREF, "NOREF", reference_price=0),
    ), **options)


class Bench:
    """A gate with a clock: ``c(msg)`` sends a client message, ``x(msg)`` an exchange one."""

    def __init__(self, gate=None, lim=None, t=0, commit=True):
        self.gate = gate or Gate(n_sessions=4, n_symbols=8, n_orders=16)
        self.t = t
        if commit:
            self.gate.apply(Commit(t, lim or limits()))

    def at(self, t):
        self.t = t
        return self

    def c(self, msg, s=0, retransmit=False):
        return self.gate.apply(ClientMessage(self.t, s, msg, retransmit))

    def x(self, msg, s=0):
        assert self.gate.apply(ExchangeMessage(self.t, s, msg)) is None

    def ctl(self, event_type, *args):
        assert self.gate.apply(event_type(self.t, *args)) is None

    def state(self, s=0):
        return self.gate.sessions[s]

    def exp(self, s=0, y=AAPL):
        return self.gate.exposure(s, y)


def assert_accept(v):
    assert v.accept and v.reasons == 0 and v.primary is None, v


def assert_reject(v, *reasons, first=None):
    assert not v.accept and v.reasons == word(*reasons), (v, reasons)
    assert v.primary == (first if first is not None else min(reasons))


# --- loading, heartbeat, sync --------------------------------------------------------------


def test_no_limits_loaded_rejects_new_orders_but_passes_cancels():
    b = Bench(commit=False)
    v = b.c(enter(1))
    # No limit tables: nothing to compare against, so only NOT_LOADED fires.
    assert_reject(v, R.NOT_LOADED)
    assert v.symbol_index is None and v.user_ref_num == 1 and v.msg_type == b"O"
    assert b.state().last_user_ref_num == 1
    assert b.exp() == Exposure(0, 0, 0)
    assert_accept(b.c(cancel(1)))
    assert_accept(b.c(ouch.AccountQuery()))
    assert not b.gate.loaded
    b.at(10).ctl(Commit, limits())
    assert b.gate.loaded and b.gate.last_heartbeat == 10
    assert_reject(b.c(enter(1)), R.DUPLICATE_REF)
    assert_accept(b.c(enter(2)))


def test_session_missing_from_limits_is_not_loaded():
    b = Bench(lim=limits(sessions=(session(0),)))
    assert_reject(b.c(enter(1), s=1), R.NOT_LOADED)
    assert b.gate.tokens(1) == 0
    assert_accept(b.c(enter(1), s=0))


def test_heartbeat_lost_and_regained():
    b = Bench(lim=limits(heartbeat_timeout_us=1_000), t=100)
    assert_accept(b.at(1_100).c(enter(1)))                    # exactly the timeout: alive
    assert_reject(b.at(1_101).c(enter(2)), R.HEARTBEAT)
    assert_accept(b.c(cancel(1)))                             # cancels never need the host
    b.at(1_500).ctl(Heartbeat)
    assert b.gate.last_heartbeat == 1_500
    assert_accept(b.at(2_500).c(enter(3)))
    assert_reject(b.at(2_501).c(enter(4)), R.HEARTBEAT)
    # A later Commit is not a heartbeat: only the first one counts as one.
    b.at(2_600).ctl(Commit, limits(heartbeat_timeout_us=1_000))
    assert_reject(b.c(enter(5)), R.HEARTBEAT)
    assert b.exp() == Exposure(0, 200, 0)


def test_out_of_sync_session_fails_closed_until_resynced():
    b = Bench()
    assert_accept(b.c(enter(1)))
    b.ctl(SessionSync, 0, False)
    v = b.c(enter(2))
    assert_reject(v, R.OUT_OF_SYNC)
    assert b.state().last_user_ref_num == 1                   # nothing changed
    assert_reject(b.c(cancel(1)), R.OUT_OF_SYNC)
    assert_reject(b.c(modify(1, "B", 10)), R.OUT_OF_SYNC)
    assert_reject(b.c(ouch.AccountQuery()), R.OUT_OF_SYNC)
    assert_reject(b.c(Malformed("bad length")), R.MALFORMED, R.OUT_OF_SYNC)
    assert_accept(b.c(enter(2), s=1))                         # other sessions unaffected
    b.ctl(SessionSync, 0, True)
    assert_accept(b.c(enter(2)))
    assert b.exp() == Exposure(0, 200, 0)


def test_malformed_runs_no_other_check_and_changes_nothing():
    b = Bench(commit=False)
    b.ctl(Kill, "gateway", 0)
    assert_reject(b.c(Malformed("truncated")), R.MALFORMED)
    v = b.c(enter(5, price=OUCH_MAX_PRICE + 1))
    assert_reject(v, R.MALFORMED)
    assert v.msg_type == b"O" and v.user_ref_num == 5
    assert_reject(b.c(enter(6, side="X")), R.MALFORMED)
    assert_reject(b.c(modify(6, "Z", 1)), R.MALFORMED)
    assert b.state().last_user_ref_num == 0


# --- working orders, executions, cancels ---------------------------------------------------


def test_working_orders_count_buys_and_sells_apart():
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100, price=P100)))
    assert_accept(b.c(enter(2, "S", 50, price=P101)))
    assert_accept(b.c(enter(3, "T", 30, price=P99)))
    assert_accept(b.c(enter(4, "E", 20, price=P100)))
    assert_accept(b.c(enter(5, "B", 10, "MSFT", 2 * P100)))
    assert b.exp(0, AAPL) == Exposure(0, 100, 100)
    assert b.exp(0, MSFT) == Exposure(0, 10, 0)
    # 100,000,000 + 50,500,000 + 29,700,000 + 20,000,000 + 20,000,000
    assert b.state().credit_used == 220_200_000
    assert b.gate.gateway_credit_used == 220_200_000
    snap = b.gate.snapshot()
    assert snap["exposure"] == {(0, AAPL): (0, 100, 100), (0, MSFT): (0, 10, 0)}
    assert snap["sessions"][0]["orders"][2] == (2, AAPL, "S", 50, P101, False, 0, 0, 0)
    assert snap["sessions"][0]["tokens"] == 95
    assert snap["sessions"][1]["orders"] == {}


def test_partial_then_full_execution():
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100, price=P100)))
    b.x(executed(1, 40, 999_900, match=11))
    assert b.exp() == Exposure(40, 60, 0)
    # working notional 60 x 100.0000 plus executed 40 x 99.9900
    assert b.state().credit_used == 60 * 1_000_000 + 40 * 999_900 == 99_996_000
    assert b.state().executed_notional == 39_996_000
    assert b.gate.order(0, 1).quantity == 60
    b.x(executed(1, 60, 1_000_000, match=12))
    assert b.exp() == Exposure(100, 0, 0)
    assert b.gate.order(0, 1) is None                         # open 0 frees the slot
    assert b.state().credit_used == 39_996_000 + 60_000_000 == 99_996_000
    assert b.gate.gateway_credit_used == 99_996_000
    # A sell fill moves the position down; executed notional is never released.
    assert_accept(b.c(enter(2, "S", 30, price=P100)))
    b.x(executed(2, 30, 1_000_100, match=13))
    assert b.exp() == Exposure(70, 0, 0)
    assert b.state().executed_notional == 99_996_000 + 30_003_000
    assert b.state().credit_used == 129_999_000               # 30 x 100.0000 released
    assert b.state().unmatched == 0


def test_cancel_passes_and_only_the_exchange_canceled_releases():
    b = Bench()
    assert_accept(b.c(enter(1, "S", 100, price=P100)))
    v = b.c(cancel(1, 0))
    assert_accept(v)
    assert v.user_ref_num == 1 and v.symbol_index == AAPL and v.msg_type == b"X"
    assert b.exp() == Exposure(0, 0, 100)                     # unchanged until Canceled
    b.x(canceled(1, 30))
    assert b.exp() == Exposure(0, 0, 70)
    assert b.state().credit_used == 70 * P100
    b.x(canceled(1, 500))                                     # never more than is open
    assert b.exp() == Exposure(0, 0, 0) and b.gate.order(0, 1) is None
    assert b.state().credit_used == 0 and b.gate.gateway_credit_used == 0
    v = b.c(cancel(99))                                       # unknown: the exchange ignores it
    assert_accept(v)
    assert v.symbol_index is None
    b.x(canceled(99, 5))
    assert b.state().unmatched == 1


def test_exchange_reject_and_dead_accept_release_the_order():
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100)))
    assert_accept(b.c(enter(2, "S", 40)))
    b.x(accepted(1))
    assert b.exp() == Exposure(0, 100, 40)                    # a live ack changes nothing
    b.x(rejected(2))
    assert b.exp() == Exposure(0, 100, 0)
    b.x(accepted(1, state="D"))                               # accepted dead: gone
    assert b.exp() == Exposure(0, 0, 0)
    assert b.state().credit_used == 0
    assert b.gate.snapshot()["sessions"][0]["orders"] == {}


# --- replace ---------------------------------------------------------------------------------


def test_replace_increase_reserves_at_once_and_confirm_settles():
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100, price=P100)))
    v = b.c(replace_order(1, 2, 150, P101))
    assert_accept(v)
    assert v.user_ref_num == 2 and v.symbol_index == AAPL and v.msg_type == b"U"
    # +50 shares and +(150 x 101 - 100 x 100) = 51,500,000 notional, at gate accept.
    assert b.exp() == Exposure(0, 150, 0)
    assert b.state().credit_used == 100_000_000 + 51_500_000
    assert b.gate.order(0, 1).quantity == 100                 # original still live
    assert b.gate.order(0, 2).pending
    b.x(replaced(1, 2, 150, P101))
    assert b.gate.order(0, 1) is None
    new = b.gate.order(0, 2)
    assert not new.pending and (new.quantity, new.price, new.side) == (150, P101, "B")
    assert b.exp() == Exposure(0, 150, 0)
    assert b.state().credit_used == 151_500_000 == b.gate.gateway_credit_used


def test_replace_decrease_waits_for_the_exchange():
    b = Bench()
    assert_accept(b.c(enter(1, "S", 100, price=P100)))
    assert_accept(b.c(replace_order(1, 2, 60, P99)))
    assert b.exp() == Exposure(0, 0, 100)                     # no decrease before the confirm
    assert b.state().credit_used == 100_000_000
    b.x(replaced(1, 2, 60, P99, side="S"))
    assert b.exp() == Exposure(0, 0, 60)
    assert b.state().credit_used == 60 * 990_000 == 59_400_000


def test_replace_rejected_by_the_exchange_undoes_the_increase():
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100, price=P100)))
    assert_accept(b.c(replace_order(1, 2, 300, P100)))
    assert b.exp() == Exposure(0, 300, 0)
    assert b.state().credit_used == 300_000_000
    b.x(rejected(2))
    assert b.exp() == Exposure(0, 100, 0)
    assert b.state().credit_used == 100_000_000
    assert b.gate.order(0, 1).quantity == 100 and b.gate.order(0, 2) is None


def test_replace_checks_use_the_new_size_and_the_increase():
    b = Bench(lim=limits(symbols=(symbol(AAPL, "AAPL", max_long=250),)))
    assert_accept(b.c(enter(1, "B", 200)))
    # QUANTITY looks at q2 itself, POSITION at the increase: 200 + 100 > 250.
    assert_reject(b.c(replace_order(1, 2, 1_100, P100)), R.QUANTITY, R.NOTIONAL, R.POSITION)
    assert_reject(b.c(replace_order(1, 3, 300, P100)), R.POSITION)
    assert_accept(b.c(replace_order(1, 4, 250, P100)))
    assert b.exp() == Exposure(0, 250, 0)


def test_replace_of_unknown_or_pending_order():
    b = Bench()
    v = b.c(replace_order(7, 8, 100, P100))
    assert_reject(v, R.UNKNOWN_ORDER)
    assert v.symbol_index is None
    assert_accept(b.c(enter(9)))
    assert_accept(b.c(replace_order(9, 10, 100, P100)))
    # 10 is not live until Order Replaced: replacing or modifying it is refused.
    assert_reject(b.c(replace_order(10, 11, 100, P100)), R.UNKNOWN_ORDER)
    assert_reject(b.c(modify(10, "B", 50)), R.UNKNOWN_ORDER)


def test_replace_onto_its_own_slot_is_a_capacity_reject():
    b = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=4))
    assert_accept(b.c(enter(1)))
    assert_reject(b.c(replace_order(1, 5, 100, P100)), R.CAPACITY)   # 5 % 4 == 1 % 4
    assert_accept(b.c(replace_order(1, 6, 100, P100)))


# --- where an order lives: sets and ways (rule 12) -------------------------------------------


def test_order_set_folds_the_user_ref_num():
    assert [order_set(r, 16, 1) for r in (1, 17, 33, 49)] == [1, 1, 1, 1]
    # 4 sets: 2-bit fields XORed, low first.
    assert [order_set(r, 16, 4) for r in (1, 17, 33, 49, 50, 55, 56, 61, 64)] == \
        [1, 0, 3, 2, 1, 1, 1, 1, 1]
    # 256 entries, 4 ways: 64 sets, 6-bit fields. 323 = 5 * 64 + 3; 4161 = 4096 + 64 + 1.
    assert order_set(323, 256, 4) == 5 ^ 3
    assert order_set(4161, 256, 4) == 1
    assert order_set(0xFFFF_FFFF, 256, 4) == 0x3F ^ 0x3F ^ 0x3F ^ 0x3F ^ 0x3F ^ 0x03
    assert order_set(12345, 16, 16) == 0                      # one set: fully associative


def test_associative_table_worked_example():
    # The worked example of rule 12, against the direct-mapped table of the same size.
    direct = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=16))
    ways = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=16, order_ways=4))
    for ref in (1, 17, 33, 49):
        assert_accept(ways.c(enter(ref)))
    assert_accept(direct.c(enter(1)))
    for ref in (17, 33, 49):
        assert_reject(direct.c(enter(ref)), R.CAPACITY)
    orders = ways.gate.snapshot()["sessions"][0]["orders"]
    assert {slot: e[0] for slot, e in orders.items()} == {4: 1, 0: 17, 12: 33, 8: 49}
    for ref in (50, 55, 56):
        assert_accept(ways.c(enter(ref)))
    assert_reject(ways.c(enter(61, quantity=7)), R.CAPACITY)  # set 1 full, 9 entries free
    assert ways.gate.order(0, 61) is None
    assert ways.exp() == Exposure(0, 700, 0)
    ways.x(executed(50, 100, P100, match=1))
    assert ways.gate.order(0, 50) is None
    assert_accept(ways.c(enter(64, quantity=5)))
    orders = ways.gate.snapshot()["sessions"][0]["orders"]
    assert {slot: e[0] for slot, e in orders.items() if slot // 4 == 1} == \
        {4: 1, 5: 64, 6: 55, 7: 56}
    assert ways.gate.order(0, 64).quantity == 5


def test_strides_of_n_orders_fill_every_way():
    # 16 orders 16 apart: one entry direct-mapped; with 4 ways the fold spreads them over
    # all 4 sets, 4 each, so all 16 rest and only the 17th finds its set full.
    b = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=16, order_ways=4))
    for ref in range(1, 16 * 16, 16):
        assert_accept(b.c(enter(ref, quantity=1)))
    assert b.exp() == Exposure(0, 16, 0)
    assert len(b.gate.snapshot()["sessions"][0]["orders"]) == 16
    assert_reject(b.c(enter(16 * 16 + 1, quantity=1)), R.CAPACITY)
    # Any order that leaves makes room for exactly one more in its own set.
    b.x(canceled(33, 1))                                      # 33 = 0b10_00_01: set 3
    assert_reject(b.c(enter(259, quantity=1)), R.CAPACITY)    # 0b1_00_00_00_11: set 2
    assert_accept(b.c(enter(263, quantity=1)))                # 0b1_00_00_01_11: set 3
    assert b.gate.snapshot()["sessions"][0]["orders"][12][0] == 263   # 33's way 0


def test_long_resting_orders_block_no_later_order():
    # Three orders rest all day while a thousand come and go; direct-mapped, every number
    # on a resting order's entry is refused, with 4 ways none is.
    blocked = {}
    for ways in (1, 4):
        b = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=16, order_ways=ways),
                  lim=limits(sessions=(session(0, rate=RateLimit(2_000, 0, 0)),)))
        for ref in (1, 2, 3):
            assert_accept(b.c(enter(ref, quantity=1)))
        blocked[ways] = []
        for ref in range(4, 1004):
            v = b.c(enter(ref, quantity=1))
            if v.accept:
                b.x(canceled(ref, 1))
            else:
                assert v.reasons == word(R.CAPACITY)
                blocked[ways].append(ref)
        assert [b.gate.order(0, r).quantity for r in (1, 2, 3)] == [1, 1, 1]
        assert b.exp() == Exposure(0, 3, 0)
    assert blocked[1] == [r for r in range(4, 1004) if r % 16 in (1, 2, 3)]
    assert blocked[4] == []


def test_replace_and_order_replaced_in_a_full_set():
    b = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=16, order_ways=4))
    for ref in (1, 50, 55, 56):                               # set 1 full
        assert_accept(b.c(enter(ref, quantity=10)))
    # A Replace's new number in its original's full set is refused: both must be tracked.
    assert_reject(b.c(replace_order(1, 61, 20)), R.CAPACITY)
    assert_accept(b.c(replace_order(1, 65, 20)))              # 0b01_00_00_01: set 0, way 0
    assert b.gate.order(0, 65).pending and b.exp() == Exposure(0, 50, 0)
    assert b.gate.snapshot()["sessions"][0]["orders"][0][0] == 65
    b.x(replaced(1, 65, 20))
    assert b.gate.order(0, 1) is None and b.gate.order(0, 65).quantity == 20
    # An Order Replaced the gate holds no pending entry for takes the original's symbol and
    # side when the new number has a way once the original has left: here the original's.
    b.x(replaced(50, 64, 30, side="S"))                       # 64: set 1, lowest free way
    assert b.gate.order(0, 50) is None
    assert b.gate.order(0, 64).side == "B" and b.gate.order(0, 64).quantity == 30
    assert b.gate.snapshot()["sessions"][0]["orders"][4][0] == 64     # 1's way 0
    # With the set full after the original left, it is unmatched and the original is gone.
    assert_accept(b.c(enter(66, quantity=10)))                # 0b01_00_00_10: set 3
    assert_accept(b.c(enter(79, quantity=10)))                # 0b01_00_11_11: set 1, way 1
    b.x(replaced(66, 81, 30))                                 # 0b01_01_00_01: set 1, full
    assert b.state().unmatched == 1
    assert b.gate.order(0, 66) is None and b.gate.order(0, 81) is None
    assert b.exp() == Exposure(0, 80, 0)                      # 65, 64, 79, 55, 56 remain


def test_order_ways_must_divide_n_orders_into_power_of_two_sets():
    for n_orders, ways in ((16, 3), (16, 0), (24, 2), (16, 32)):
        with pytest.raises(ValueError, match="order_ways"):
            Gate(n_orders=n_orders, order_ways=ways)
    assert Gate(n_orders=24).order_ways == 1                  # direct-mapped: any size
    assert Gate(n_orders=16, order_ways=16).order_ways == 16


def test_modify_reduce_or_sell_side_change_passes_like_a_cancel():
    b = Bench()
    assert_accept(b.c(enter(1, "S", 100)))
    assert_accept(b.c(enter(2, "B", 100)))
    b.ctl(Kill, "gateway", 0)
    assert_accept(b.c(modify(1, "T", 80)))                    # passes the kill
    assert_accept(b.c(modify(1, "S", 100)))
    assert_reject(b.c(modify(1, "S", 101)), R.QUANTITY)
    assert_reject(b.c(modify(1, "B", 50)), R.POSITION)
    assert_reject(b.c(modify(2, "S", 50)), R.POSITION)
    assert_reject(b.c(modify(2, "T", 150)), R.QUANTITY, R.POSITION)
    assert_reject(b.c(modify(3, "B", 1)), R.UNKNOWN_ORDER)
    assert b.exp() == Exposure(0, 100, 100)                   # modify changes nothing itself
    b.x(ouch.OrderModified(timestamp=1, user_ref_num=1, side="T", quantity=80))
    assert b.exp() == Exposure(0, 100, 80)
    assert b.gate.order(0, 1).side == "T"
    assert b.state().credit_used == 180 * P100


# --- user reference numbers and capacity -----------------------------------------------------


def test_stale_and_repeated_user_ref_num():
    b = Bench()
    assert_accept(b.c(enter(5)))
    assert_reject(b.c(enter(5)), R.DUPLICATE_REF)
    assert_reject(b.c(enter(3)), R.DUPLICATE_REF)
    assert b.state().last_user_ref_num == 5
    # A rejected number is still used up.
    assert_reject(b.c(enter(10, quantity=0)), R.QUANTITY)
    assert b.state().last_user_ref_num == 10
    assert_reject(b.c(enter(10)), R.DUPLICATE_REF)
    assert_accept(b.c(enter(11)))
    assert b.exp() == Exposure(0, 200, 0)


def test_capacity_slot_collision_then_freed():
    b = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=4))
    assert_accept(b.c(enter(1, quantity=10)))
    v = b.c(enter(5, quantity=20))                            # 5 % 4 == 1
    assert_reject(v, R.CAPACITY)
    assert b.gate.order(0, 1).quantity == 10
    assert_accept(b.c(enter(6)))
    b.x(executed(1, 10, P100, match=1))
    assert_accept(b.c(enter(9, quantity=30)))                 # slot 1 is free again
    assert b.gate.snapshot()["sessions"][0]["orders"][1][:4] == (9, AAPL, "B", 30)


# --- symbols and collar ----------------------------------------------------------------------


def test_unknown_and_restricted_symbol():
    b = Bench()
    v = b.c(enter(1, name="ZZZZ", quantity=999_999, price=P100))
    # Only UNKNOWN_SYMBOL among the symbol checks; session checks still run (999,999 > 5,000).
    assert_reject(v, R.UNKNOWN_SYMBOL, R.QUANTITY)
    assert v.symbol_index is None
    v = b.c(enter(2, name="BANNED"))
    assert_reject(v, R.RESTRICTED)
    assert v.symbol_index == BANNED
    assert b.gate.snapshot()["exposure"] == {}


def test_collar_without_reference_and_with_a_stale_one():
    b = Bench(lim=limits(reference_max_age_us=1_000))
    assert_reject(b.c(enter(1, name="NOREF")), R.COLLAR)      # no reference: fail closed
    b.at(100).ctl(SetReference, NOREF, P100)
    assert b.gate.reference(NOREF) == (P100, 100)
    assert_accept(b.c(enter(2, name="NOREF", price=P100 + 50_000)))   # on the band edge
    assert_reject(b.c(enter(3, name="NOREF", price=P100 + 50_001)), R.COLLAR)
    assert_reject(b.c(enter(4, name="NOREF", price=P100 - 50_001)), R.COLLAR)
    assert_accept(b.at(1_100).c(enter(5, name="NOREF")))      # age exactly the maximum
    assert_reject(b.at(1_101).c(enter(6, name="NOREF")), R.COLLAR)
    # AAPL's reference came with the Commit at t=0: also stale now.
    assert_reject(b.c(enter(7)), R.COLLAR)
    b.ctl(SetReference, AAPL, P101)
    assert_accept(b.c(enter(8, price=P101)))


def test_reference_age_counts_from_the_hosts_stamp():
    # A daemon stamps a price with when it was observed, before its write lands.
    b = Bench(lim=limits(reference_max_age_us=1_000))
    b.gate.apply(SetReference(500, NOREF, P100, stamp_us=300))
    assert b.gate.reference(NOREF) == (P100, 300)
    assert_accept(b.at(1_300).c(enter(1, name="NOREF")))      # 1,300 - 300: the maximum
    assert_reject(b.at(1_301).c(enter(2, name="NOREF")), R.COLLAR)
    # A stamp after the event's time is a negative age: fresh, as the gateware compares.
    b.gate.apply(SetReference(1_400, NOREF, P100, stamp_us=1_450))
    assert_accept(b.at(1_420).c(enter(3, name="NOREF")))


def test_recommit_keeps_references_their_age_and_positions():
    b = Bench()
    assert_accept(b.c(enter(1)))
    b.x(executed(1, 100, P100, match=1))
    b.at(10).ctl(SetReference, AAPL, 3 * P100)
    b.at(50).ctl(Commit, limits())
    assert b.gate.reference(AAPL) == (3 * P100, 10)     # not the file's price, not restamped
    assert b.exp() == Exposure(100, 0, 0)
    assert b.state().credit_used == 100 * P100


def test_recommit_never_makes_a_stale_reference_fresh():
    b = Bench(lim=limits(reference_max_age_us=100))       # AAPL's reference stamped at t=0
    b.at(200).ctl(Commit, limits(reference_max_age_us=100))
    assert_reject(b.c(enter(1)), R.COLLAR)                # 200 - 0 > 100: still stale
    b.ctl(SetReference, AAPL, P100)
    assert_accept(b.c(enter(2)))


def test_recommit_loads_a_new_symbol_with_a_fresh_reference():
    b = Bench(lim=limits(symbols=(symbol(AAPL, "AAPL"),)))
    b.at(70).ctl(Commit, limits(symbols=(symbol(AAPL, "AAPL"),
                                         symbol(MSFT, "MSFT", reference_price=2 * P100))))
    assert b.gate.reference(MSFT) == (2 * P100, 70)
    assert b.gate.reference(AAPL) == (P100, 0)


# --- exposure limits -------------------------------------------------------------------------


def test_position_limit_projects_working_orders_per_side():
    b = Bench(lim=limits(symbols=(symbol(AAPL, "AAPL", max_long=150, max_short=100),)))
    assert_accept(b.c(enter(1, "B", 100)))
    assert_reject(b.c(enter(2, "B", 60)), R.POSITION)         # 0 + 100 + 60 > 150
    assert_accept(b.c(enter(3, "B", 50)))                     # exactly 150
    assert_accept(b.c(enter(4, "S", 80)))                     # buys do not offset sells
    assert_reject(b.c(enter(5, "T", 30)), R.POSITION)         # 80 + 30 - 0 > 100
    b.x(executed(1, 100, P100, match=1))                      # position +100
    assert_accept(b.c(enter(6, "E", 120)))                    # 80 + 120 - 100 = 100
    assert_reject(b.c(enter(7, "B", 1)), R.POSITION)          # 100 + 50 + 1 > 150
    assert b.exp() == Exposure(100, 50, 200)


def test_credit_session_and_gateway():
    lim = limits(sessions=(session(0, credit=150 * P100), session(1)), credit=250 * P100)
    b = Bench(lim=lim)
    assert_accept(b.c(enter(1, "B", 100)))
    assert_reject(b.c(enter(2, "S", 51)), R.CREDIT_SESSION)   # sells count too: gross
    assert_accept(b.c(enter(3, "S", 50)))
    assert_accept(b.c(enter(1, "B", 100), s=1))
    assert_reject(b.c(enter(2, "B", 1), s=1), R.CREDIT_GATEWAY)
    assert b.gate.gateway_credit_used == 250 * P100
    # An execution below the order price frees the difference: executed notional counts.
    b.x(executed(1, 100, P99, match=1))
    assert b.state().credit_used == 150 * P100 - 100 * (P100 - P99)
    assert_accept(b.c(enter(4, "B", 1, price=P100)))
    assert_reject(b.c(enter(5, "B", 1, price=P100)), R.CREDIT_SESSION, R.CREDIT_GATEWAY)


def test_quantity_and_notional_limits():
    lim = limits(sessions=(session(0, max_order_quantity=800,
                                   max_order_notional=600 * P100),))
    b = Bench(lim=lim)
    assert_reject(b.c(enter(1, quantity=0)), R.QUANTITY)
    assert_reject(b.c(enter(2, quantity=1_000_000)), R.QUANTITY, R.NOTIONAL, R.POSITION)
    assert_reject(b.c(enter(3, quantity=801)), R.QUANTITY, R.NOTIONAL)   # session qty 800
    assert_accept(b.c(enter(4, quantity=500)))                          # 500 x 100 = symbol max
    assert_reject(b.c(enter(5, quantity=501)), R.NOTIONAL)
    assert_reject(b.c(enter(6, quantity=400, name="MSFT", price=2 * P100)), R.NOTIONAL)


def test_exposure_checks_never_block_a_replace_that_adds_nothing():
    b = Bench(lim=limits(symbols=(symbol(AAPL, "AAPL", max_long=300),)))
    assert_accept(b.c(enter(1, "B", 300)))
    b.ctl(Commit, limits(symbols=(symbol(AAPL, "AAPL", max_long=100),)))
    assert_reject(b.c(enter(2, "B", 1)), R.POSITION)
    assert_accept(b.c(replace_order(1, 3, 200, P100)))       # shrinks: no increase


# --- rate ------------------------------------------------------------------------------------


def test_rate_limit_throttles_then_trips_and_refills():
    rate = RateLimit(burst=2, refill_us=1_000, trip_after=3)
    b = Bench(lim=limits(sessions=(session(0, rate=rate),)))
    assert_accept(b.at(10).c(enter(1)))
    assert_accept(b.at(20).c(enter(2)))
    assert b.gate.tokens(0) == 0
    v = b.at(30).c(enter(3))
    assert_reject(v, R.RATE)
    assert (b.state().throttled, b.state().throttle_count) == (True, 1)
    # A message failing another check does not take a token but still counts when empty.
    assert_reject(b.at(40).c(enter(4, quantity=0)), R.RATE, R.QUANTITY)
    assert b.state().throttle_count == 2
    assert_accept(b.at(1_000).c(enter(5)))                   # one token at Commit + 1,000
    assert (b.state().throttled, b.state().throttle_count) == (False, 0)
    assert_reject(b.at(1_999).c(enter(6)), R.RATE)
    assert_reject(b.c(enter(7)), R.RATE)
    assert not b.gate.kill_session[0]
    assert_reject(b.c(enter(8)), R.RATE)                      # third in a row: trip
    assert b.gate.kill_session[0] and b.state().throttle_count == 3
    assert_reject(b.at(5_000).c(enter(9)), R.KILL_SESSION)    # tokens back, latch holds
    assert_accept(b.c(cancel(1)))
    b.ctl(Release, "session", 0)
    assert_accept(b.c(enter(10)))
    assert b.state().throttle_count == 0
    assert b.gate.tokens(0) == 1                              # refilled to the burst of 2
    assert b.exp() == Exposure(0, 400, 0)


def test_rate_bucket_refills_on_a_grid_from_the_commit_and_caps():
    rate = RateLimit(burst=3, refill_us=100, trip_after=0)
    b = Bench(lim=limits(sessions=(session(0, rate=rate),)), t=50)
    for ref in (1, 2, 3):
        assert_accept(b.c(enter(ref)))
    b.at(149).ctl(Tick)
    assert b.gate.tokens(0) == 0
    b.at(150).ctl(Tick)
    assert b.gate.tokens(0) == 1
    b.at(10_000).ctl(Tick)
    assert b.gate.tokens(0) == 3
    assert b.gate.snapshot()["sessions"][0]["tokens"] == 3
    b.ctl(Commit, limits(sessions=(session(0, rate=RateLimit(5, 100, 0)),)))
    assert b.gate.tokens(0) == 3                              # a re-commit does not refill
    b.at(10_049).ctl(Tick)
    assert b.gate.tokens(0) == 3                              # grid kept: 50 + 100k
    b.at(10_050).ctl(Tick)
    assert b.gate.tokens(0) == 4                              # the new, larger burst applies


def test_recommit_keeps_an_empty_bucket_empty_and_caps_a_smaller_burst():
    rate = RateLimit(burst=3, refill_us=1_000, trip_after=0)
    b = Bench(lim=limits(sessions=(session(0, rate=rate),)))
    for ref in (1, 2, 3):
        assert_accept(b.c(enter(ref)))
    b.at(10).ctl(Commit, limits(sessions=(session(0, rate=rate),)))
    assert_reject(b.c(enter(4)), R.RATE)                  # a flooding session gets nothing back
    b.at(5_000).ctl(Commit, limits(sessions=(session(0, rate=RateLimit(2, 1_000, 0)),)))
    assert b.gate.tokens(0) == 2                          # 3 refilled by t=3000, capped at 2


def test_recommit_with_a_new_refill_interval_starts_it_at_the_commit():
    rate = RateLimit(burst=3, refill_us=100, trip_after=0)
    b = Bench(lim=limits(sessions=(session(0, rate=rate),)))
    for ref in (1, 2, 3):
        assert_accept(b.c(enter(ref)))
    # t=250: two refills credited (100, 200), 50 us into the third interval.
    b.at(250).ctl(Commit, limits(sessions=(session(0, rate=RateLimit(3, 30, 0)),)))
    assert b.gate.tokens(0) == 2
    b.at(279).ctl(Tick)
    assert b.gate.tokens(0) == 2        # the old 50 us are not credited at the new 30 us rate
    b.at(280).ctl(Tick)
    assert b.gate.tokens(0) == 3


# --- kill latches ----------------------------------------------------------------------------


@pytest.mark.parametrize(("scope", "index", "reason"), [
    ("gateway", 0, R.KILL_GATEWAY),
    ("session", 0, R.KILL_SESSION),
    ("symbol", AAPL, R.KILL_SYMBOL),
])
def test_kill_latch_blocks_new_risk_only_and_only_release_clears(scope, index, reason):
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100)))
    b.ctl(Kill, scope, index)
    assert_reject(b.c(enter(2)), reason)
    assert_reject(b.c(replace_order(1, 3, 100, P100)), reason)
    assert_accept(b.c(cancel(1)))
    assert_accept(b.c(modify(1, "B", 50)))
    assert_accept(b.c(ouch.AccountQuery()))
    b.ctl(Commit, limits())
    b.ctl(Heartbeat)
    b.ctl(SessionSync, 0, True)
    assert_reject(b.c(enter(4)), reason)
    b.ctl(Release, scope, index)
    assert_accept(b.c(enter(5)))
    kill = b.gate.snapshot()["kill"]
    assert kill == {"gateway": False, "session": (), "symbol": ()}


def test_symbol_kill_leaves_other_symbols_and_sessions_alone():
    b = Bench()
    b.ctl(Kill, "symbol", MSFT)
    b.ctl(Kill, "session", 1)
    assert b.gate.snapshot()["kill"] == {"gateway": False, "session": (1,), "symbol": (MSFT,)}
    assert_accept(b.c(enter(1)))
    assert_reject(b.c(enter(2, name="MSFT", price=2 * P100)), R.KILL_SYMBOL)
    assert_reject(b.c(enter(1), s=1), R.KILL_SESSION)


def test_bad_kill_scope_is_refused():
    b = Bench()
    with pytest.raises(ValueError, match="scope"):
        b.ctl(Kill, "desk", 0)


# --- drop-copy backlog (rule 11) --------------------------------------------------------------


def backlog_bench(high=3, low=1):
    return Bench(Gate(n_sessions=4, n_symbols=8, n_orders=16, backlog_high=high,
                      backlog_low=low))


def test_backlog_worked_example_of_the_rule():
    b = backlog_bench()                         # record 0: the Commit
    assert_accept(b.c(enter(1)))                # record 1, fill 1
    assert_accept(b.c(enter(2)))                # record 2, fill 2
    assert_reject(b.c(enter(3)), R.BACKLOG)     # record 3, fill 3: the high mark
    b.ctl(HostRead, 2)
    assert_accept(b.c(cancel(1)))               # record 4, fill 2: cancels pass
    assert_reject(b.c(enter(4)), R.BACKLOG)     # record 5, fill 3
    b.ctl(HostRead, 5)
    assert_reject(b.c(enter(5)), R.BACKLOG)     # record 6, fill 1: not below the low mark
    b.ctl(HostRead, 7)
    assert_accept(b.c(enter(6)))                # record 7, fill 0: drained, judged as usual
    assert b.gate.records == 8 and b.gate.host_read == 7 and not b.gate.backlogged
    assert b.gate.snapshot()["kill"] == {"gateway": False, "session": (), "symbol": ()}


def test_backlog_refuses_new_risk_only_and_sets_no_latch():
    b = backlog_bench(high=3, low=3)
    assert_accept(b.c(enter(1, "B", 100)))      # record 1, fill 1
    assert_accept(b.c(enter(9, "B", 100)))      # record 2, fill 2
    assert_reject(b.c(replace_order(1, 10, 200, P100)), R.BACKLOG)     # fill 3
    assert b.gate.backlogged
    assert_accept(b.c(modify(1, "B", 50)))
    assert_accept(b.c(cancel(1)))
    assert_accept(b.c(ouch.AccountQuery()))
    b.x(canceled(9, 100))                       # exchange events change state as usual
    assert b.exp() == Exposure(0, 100, 0)
    # A retransmission gets the verdict remembered from the first copy, accept included.
    assert_accept(b.c(enter(9, "B", 100), retransmit=True))
    # BACKLOG is a rule 5 check: every other one that fires is reported with it, the
    # primary reason is the other one, last_user_ref_num still moves, no token is taken.
    assert_reject(b.c(enter(11, name="BANNED")), R.RESTRICTED, R.BACKLOG)
    assert b.state().last_user_ref_num == 11
    tokens = b.gate.tokens(0)
    assert_reject(b.c(enter(12)), R.BACKLOG)
    assert b.gate.tokens(0) == tokens
    assert not b.gate.kill_gateway and not any(b.gate.kill_session)
    b.ctl(HostRead, b.gate.records)             # all read: fill 0
    assert_accept(b.c(enter(13)))


def test_backlog_hysteresis_needs_the_fill_below_the_low_mark():
    b = backlog_bench(high=4, low=2)
    for ref in range(1, 4):
        assert_accept(b.c(enter(ref, quantity=1)))      # records 1..3
    assert_reject(b.c(enter(4, quantity=1)), R.BACKLOG)  # fill 4
    b.ctl(HostRead, 3)
    assert_reject(b.c(enter(5, quantity=1)), R.BACKLOG)  # fill 5 - 3 = 2: kept
    b.ctl(HostRead, 5)
    assert_accept(b.c(enter(6, quantity=1)))             # fill 6 - 5 = 1: cleared
    assert_accept(b.c(enter(7, quantity=1)))             # fill 2, not yet high again
    assert_accept(b.c(enter(8, quantity=1)))             # fill 3
    assert_reject(b.c(enter(9, quantity=1)), R.BACKLOG)  # fill 4


def test_backlog_counts_a_record_for_every_event_but_tick_and_host_read():
    b = backlog_bench(high=100, low=1)
    assert b.gate.records == 1                  # the Commit
    for event in (Heartbeat, Tick):
        b.ctl(event)
    b.ctl(SetReference, AAPL, P100)
    b.ctl(Kill, "session", 2)
    b.ctl(Release, "session", 2)
    b.ctl(SessionSync, 1, True)
    b.c(enter(1))
    b.x(accepted(1))
    b.ctl(HostRead, 3)
    assert (b.gate.records, b.gate.host_read) == (8, 3)


def test_host_read_cannot_go_back_or_past_the_records_made():
    b = backlog_bench()
    b.c(enter(1))
    b.ctl(HostRead, 2)
    with pytest.raises(ValueError, match="cannot have read"):
        b.ctl(HostRead, 1)
    with pytest.raises(ValueError, match="cannot have read"):
        b.ctl(HostRead, 3)


@pytest.mark.parametrize(("high", "low"), [(None, 1), (3, None), (3, 4), (3, 0), (0, 0)])
def test_backlog_marks_are_validated(high, low):
    with pytest.raises(ValueError, match="backlog marks"):
        Gate(backlog_high=high, backlog_low=low)


def test_no_marks_no_backlog_rule():
    b = Bench()
    for ref in range(1, 16):        # as many as the order table holds
        assert_accept(b.c(enter(ref, quantity=1)))
    assert b.gate.records == 16 and not b.gate.backlogged


# --- retransmission and multiple reasons ------------------------------------------------------


def test_retransmission_repeats_the_verdict_and_counts_nothing_twice():
    b = Bench(lim=limits(sessions=(session(0, rate=RateLimit(1, 10**6, 0)),)))
    first = b.c(enter(1, "B", 100))
    assert_accept(first)
    before = b.gate.snapshot()
    again = b.at(5).c(enter(1, "B", 100), retransmit=True)
    assert again == first
    after = b.gate.snapshot()
    assert after.pop("now") == 5 and before.pop("now") == 0
    assert after == before
    # A rejected first copy is rejected again with the same word and no new throttle count.
    denied = b.c(enter(2))
    assert_reject(denied, R.RATE)
    assert b.state().throttle_count == 1
    assert b.c(enter(2), retransmit=True) == denied
    assert b.state().throttle_count == 1
    # Modify verdicts are remembered too, even after the order changed under them.
    assert_accept(b.c(modify(1, "B", 100)))
    b.x(canceled(1, 50))
    assert_accept(b.c(modify(1, "B", 100), retransmit=True))
    assert_reject(b.c(modify(1, "B", 100)), R.QUANTITY)
    # Never seen: fail closed.
    assert_reject(b.c(enter(77), retransmit=True), R.OUT_OF_SYNC)
    assert b.state().last_user_ref_num == 2
    assert b.exp() == Exposure(0, 50, 0)


def test_retransmission_compares_the_fixed_part_only():
    b = Bench()
    first = b.c(enter(1))
    assert_accept(first)
    # The appendage arrives after the verdict is due: the gate cannot compare it.
    tagged = replace(enter(1), appendage=(ouch.TagValue(2, b"FIRM"),))
    assert b.c(tagged, retransmit=True) == first
    # Every field of the fixed part counts, those the extractor does not carry too.
    assert_reject(b.c(replace(enter(1), clordid="OTHER"), retransmit=True), R.OUT_OF_SYNC)
    assert_reject(b.c(replace(enter(1), display="N"), retransmit=True), R.OUT_OF_SYNC)
    # The first copy sent with an appendage: its retransmission without one matches.
    second = b.c(replace(enter(2), appendage=(ouch.TagValue(2, b"FIRM"),)))
    assert b.c(enter(2), retransmit=True) == second


def test_retransmission_after_a_later_duplicate_never_gains_an_accept():
    b = Bench()
    assert_accept(b.c(enter(1)))
    dup = b.c(enter(1, quantity=5))
    assert_reject(dup, R.DUPLICATE_REF)
    # The memory now holds the later message: the first one's copy cannot be matched.
    assert_reject(b.c(enter(1), retransmit=True), R.OUT_OF_SYNC)
    assert b.c(enter(1, quantity=5), retransmit=True) == dup
    # The same message twice: its retransmission gets the later verdict, a reject.
    assert_accept(b.c(enter(2)))
    again = b.c(enter(2))
    assert_reject(again, R.DUPLICATE_REF)
    assert b.c(enter(2), retransmit=True) == again
    assert b.gate.snapshot()["sessions"][0]["order_verdicts"] == {
        1: (b"O", 1, 1 << 10), 2: (b"O", 2, 1 << 10)}
    assert b.exp() == Exposure(0, 200, 0)


def test_many_reasons_in_one_word_with_the_right_primary():
    b = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=4),
              lim=limits(sessions=(session(0, max_order_quantity=50),)))
    assert_accept(b.c(enter(4, quantity=10)))
    b.ctl(Kill, "session", 0)
    b.ctl(Kill, "symbol", BANNED)
    v = b.c(enter(8, name="BANNED", quantity=60, price=P100 + 60_000))
    assert_reject(v, R.KILL_SESSION, R.KILL_SYMBOL, R.RESTRICTED, R.CAPACITY, R.QUANTITY,
                  R.COLLAR)
    assert v.primary == R.KILL_SESSION
    assert v.reasons == (1 << 5) | (1 << 6) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15)


# --- exchange-side corrections ----------------------------------------------------------------


def test_broken_trade_reverses_a_remembered_execution():
    b = Bench(gate=Gate(n_sessions=2, n_symbols=8, n_orders=16, n_executions=4))
    assert_accept(b.c(enter(1, "S", 100)))
    b.x(executed(1, 60, P101, match=21))
    assert b.exp() == Exposure(-60, 0, 40)
    assert b.state().credit_used == 40 * P100 + 60 * P101
    b.x(broken(1, 21))
    assert b.exp() == Exposure(0, 0, 40)                      # working is not restored
    assert b.state().credit_used == 40 * P100
    assert b.state().executed_notional == 0
    b.x(broken(1, 21))                                        # a break is final: once only
    assert b.state().unmatched == 1
    b.x(executed(1, 10, P100, match=30))
    b.x(executed(1, 10, P100, match=34))                      # 34 % 4 == 30 % 4: evicts 30
    b.x(broken(1, 30))
    assert b.state().unmatched == 2
    assert b.exp() == Exposure(-20, 0, 20)


def test_trade_correction_rebooks_the_execution():
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100)))
    b.x(executed(1, 100, P100, match=5))
    b.x(corrected(1, 5, 80, P99))
    assert b.exp() == Exposure(80, 0, 0)
    assert b.state().executed_notional == 80 * P99
    assert b.state().credit_used == 80 * P99


def test_events_must_be_in_time_order():
    b = Bench(t=100)
    with pytest.raises(ValueError, match="earlier"):
        b.gate.apply(Tick(99))


def test_commit_refuses_limits_larger_than_the_tables():
    g = Gate(n_sessions=1, n_symbols=2, n_orders=4)
    with pytest.raises(ValueError, match="session index 1"):
        g.apply(Commit(0, limits()))
    assert not g.loaded


# --- invariants over random streams ----------------------------------------------------------

SYMBOL_NAMES = ("AAPL", "MSFT", "BANNED", "NOREF", "ZZZZ")


def _check_invariants(gate: Gate) -> None:
    snap = gate.snapshot()
    working = {}
    gateway_credit = 0
    for s, st_ in enumerate(snap["sessions"]):
        charged = 0
        for slot, (ref, y, side, qty, price, pending, _orig, rq, rn) in st_["orders"].items():
            # Each order in a way of its own set, once (rule 12).
            assert slot // gate.order_ways == order_set(ref, gate.n_orders, gate.order_ways)
            assert [r[0] for r in st_["orders"].values()].count(ref) == 1
            assert qty >= 0 and rq >= 0 and rn >= 0
            if not pending:
                assert qty > 0
            q, n = (rq, rn) if pending else (qty, qty * price)
            key = (s, y, side == "B")
            working[key] = working.get(key, 0) + q
            charged += n
        assert st_["executed_notional"] >= 0
        assert st_["credit_used"] == charged + st_["executed_notional"]
        gateway_credit += st_["credit_used"]
        assert st_["tokens"] >= 0
    assert snap["gateway_credit_used"] == gateway_credit
    for s in range(gate.n_sessions):
        for y in range(gate.n_symbols):
            e = gate.exposure(s, y)
            assert e.working_buy == working.get((s, y, True), 0) >= 0
            assert e.working_sell == working.get((s, y, False), 0) >= 0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_invariants_hold_over_random_event_streams(data):
    gate = Gate(n_sessions=2, n_symbols=4, n_orders=8, n_executions=4, n_verdicts=4,
                order_ways=data.draw(st.sampled_from((1, 2, 8))))
    rate = RateLimit(burst=4, refill_us=50, trip_after=3)
    lim = limits(sessions=(session(0, rate=rate, credit=2_000 * P100),
                           session(1, rate=rate)),
                 symbols=(symbol(AAPL, "AAPL", max_long=400, max_short=300),
                          symbol(MSFT, "MSFT", reference_price=2 * P100, collar=100_000),
                          symbol(BANNED, "BANNED", restricted=True),
                          symbol(NOREF, "NOREF", reference_price=0)),
                 credit=3_000 * P100, heartbeat_timeout_us=400)
    t = 0
    if data.draw(st.booleans()):
        gate.apply(Commit(0, lim))
    next_ref = [1, 1]
    match = 0
    for _ in range(data.draw(st.integers(10, 60))):
        t += data.draw(st.integers(0, 40))
        s = data.draw(st.integers(0, 1))
        kind = data.draw(st.sampled_from(
            ["enter", "enter", "enter", "replace", "cancel", "modify", "exec", "exec",
             "canceled", "replaced", "rejected", "broken", "correct", "accepted", "control"]))
        orders = [e for e in gate.sessions[s].orders if e is not None]
        live = [e for e in orders if not e.pending]
        pending = [e for e in orders if e.pending]
        ref = next_ref[s] + data.draw(st.integers(-2, 3))
        next_ref[s] = max(next_ref[s], ref + 1)
        msg = None
        if kind == "enter":
            msg = enter(max(ref, 0), data.draw(st.sampled_from("BSTE")),
                        data.draw(st.integers(0, 300)), data.draw(st.sampled_from(SYMBOL_NAMES)),
                        data.draw(st.sampled_from((P99, P100, P101, 2 * P100))))
        elif kind == "replace":
            orig = data.draw(st.sampled_from(live)).user_ref_num if live else 3
            msg = replace_order(orig, max(ref, 0), data.draw(st.integers(0, 300)),
                                data.draw(st.sampled_from((P99, P100, P101))))
        elif kind == "cancel":
            msg = cancel(data.draw(st.integers(0, 12)))
        elif kind == "modify":
            target = data.draw(st.sampled_from(live)) if live else None
            msg = modify(target.user_ref_num if target else 5,
                         data.draw(st.sampled_from("BST")), data.draw(st.integers(0, 200)))
        if msg is not None:
            v = gate.apply(ClientMessage(t, s, msg))
            assert v.accept == (v.reasons == 0)
            if v.reasons:
                assert v.primary == Reason((v.reasons & -v.reasons).bit_length() - 1)
            before = gate.snapshot()
            assert gate.apply(ClientMessage(t, s, msg, retransmit=True)) == v
            assert gate.snapshot() == before
        elif kind in ("exec", "canceled", "accepted") and live:
            e = data.draw(st.sampled_from(live))
            q = data.draw(st.integers(1, e.quantity + 20))
            if kind == "exec":
                match += 1
                gate.apply(ExchangeMessage(t, s, executed(e.user_ref_num, q,
                                                          data.draw(st.sampled_from(
                                                              (P99, P100, P101))), match)))
            elif kind == "canceled":
                gate.apply(ExchangeMessage(t, s, canceled(e.user_ref_num, q)))
            else:
                gate.apply(ExchangeMessage(t, s, accepted(
                    e.user_ref_num, data.draw(st.sampled_from("LD")))))
        elif kind == "replaced" and pending:
            e = data.draw(st.sampled_from(pending))
            gate.apply(ExchangeMessage(t, s, replaced(
                e.orig_user_ref_num, e.user_ref_num, data.draw(st.integers(0, e.quantity)),
                e.price, e.side, data.draw(st.sampled_from("LD")))))
        elif kind == "rejected" and orders:
            e = data.draw(st.sampled_from(orders))
            gate.apply(ExchangeMessage(t, s, rejected(e.user_ref_num)))
        elif kind in ("broken", "correct") and match:
            x = data.draw(st.sampled_from([x for x in gate.sessions[s].executions
                                           if x is not None] or [None]))
            if x is not None:
                if kind == "broken":
                    gate.apply(ExchangeMessage(t, s, broken(x.user_ref_num, x.match_number)))
                else:
                    gate.apply(ExchangeMessage(t, s, corrected(
                        x.user_ref_num, x.match_number, data.draw(st.integers(0, 100)), P100)))
        elif kind == "control":
            event = data.draw(st.sampled_from([
                Kill(t, "session", s), Release(t, "session", s), Kill(t, "symbol", AAPL),
                Release(t, "symbol", AAPL), Heartbeat(t), SessionSync(t, s, False),
                SessionSync(t, s, True), Commit(t, lim), Tick(t),
                SetReference(t, NOREF, P100)]))
            gate.apply(event)
        _check_invariants(gate)
    # Give every remaining order back: working and credit fall to executed notional alone.
    for s in range(2):
        for e in [e for e in gate.sessions[s].orders if e is not None]:
            if gate.order(s, e.user_ref_num) is not None:
                gate.apply(ExchangeMessage(t, s, rejected(e.user_ref_num)))
        assert gate.sessions[s].credit_used == gate.sessions[s].executed_notional
    for s in range(2):
        for y in range(4):
            e = gate.exposure(s, y)
            assert (e.working_buy, e.working_sell) == (0, 0)


def test_gate_sizes_are_validated():
    with pytest.raises(ValueError, match="n_orders"):
        Gate(n_orders=0)


def test_snapshot_is_plain_data():
    b = Bench()
    assert_accept(b.c(enter(1, "T", 10, price=P99)))
    b.x(executed(1, 4, P99, match=3))
    snap = b.gate.snapshot()
    assert snap["sessions"][0]["orders"] == {1: (1, AAPL, "T", 6, P99, False, 0, 0, 0)}
    assert snap["sessions"][0]["executions"] == {3: (3, 1, AAPL, "T", 4, P99)}
    assert snap["exposure"] == {(0, AAPL): (-4, 0, 6)}
    assert snap["references"][AAPL] == (P100, 0)
    assert snap["loaded"] is True and snap["last_heartbeat"] == 0


# --- rules the scenarios above leave open (each written to fail on a one-line model bug) -----


def test_no_reference_rejects_a_price_the_band_would_hold():
    # NOREF: reference 0, band 50,000. A price of 50,000 ($5) is within the band of 0, so
    # only the "no reference" rule can reject it.
    b = Bench()
    assert_reject(b.c(enter(1, name="NOREF", price=50_000)), R.COLLAR)
    assert b.exp(0, NOREF) == Exposure(0, 0, 0)


def test_zero_price_is_a_collar_reject_whatever_the_band():
    # A band as wide as the reference (a 100% collar) holds a price of 0; an order priced 0
    # has notional 0, so NOTIONAL and CREDIT could never fire on it. COLLAR rejects it.
    wide = symbol(AAPL, "AAPL", collar=P100)
    b = Bench(lim=limits(sessions=(session(0, credit=1),), symbols=(wide,)))
    assert_reject(b.c(enter(1, "S", 1_000, price=0)), R.COLLAR)
    # One price unit higher the order has notional (1,000) and the session's credit of 1 is
    # what stops it; the band holds it.
    assert_reject(b.c(enter(2, "S", 1_000, price=1)), R.CREDIT_SESSION)
    assert b.exp() == Exposure(0, 0, 0)


def test_the_largest_ouch_price_is_not_malformed():
    b = Bench()
    v = b.c(enter(1, price=OUCH_MAX_PRICE))
    # $199,999.99 x 100 is far above AAPL's $50,000 notional and outside its collar.
    assert_reject(v, R.NOTIONAL, R.COLLAR)


def test_credit_never_blocks_a_replace_that_adds_no_notional():
    b = Bench(lim=limits(sessions=(session(0, credit=300 * P100),)))
    assert_accept(b.c(enter(1, "B", 300)))                    # credit used 300 x 100.0000
    b.ctl(Commit, limits(sessions=(session(0, credit=100 * P100),)))
    assert_reject(b.c(enter(2, "B", 1)), R.CREDIT_SESSION)
    assert_accept(b.c(replace_order(1, 3, 200, P100)))        # shrinks: no increase
    # No more shares but a higher price still adds notional: 300 x 101 > 300 x 100.
    assert_reject(b.c(replace_order(1, 4, 300, P101)), R.CREDIT_SESSION)
    assert b.state().credit_used == 300 * P100


def test_replace_of_an_order_whose_symbol_left_the_limits():
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100)))
    b.ctl(Commit, limits(symbols=(symbol(MSFT, "MSFT", reference_price=2 * P100,
                                         collar=100_000),)))
    v = b.c(replace_order(1, 2, 100, P100))
    assert_reject(v, R.UNKNOWN_SYMBOL)
    assert v.symbol_index == AAPL
    assert_reject(b.c(replace_order(1, 3, 50, P100)), R.UNKNOWN_SYMBOL)   # even a shrink
    assert_accept(b.c(modify(1, "B", 50)))                    # reducing needs no limits
    assert_accept(b.c(cancel(1)))
    assert b.exp() == Exposure(0, 100, 0)


def test_order_replaced_dead_frees_both_and_unannounced_replace_keeps_the_original_context():
    b = Bench()
    assert_accept(b.c(enter(1, "S", 100)))
    assert_accept(b.c(replace_order(1, 2, 150, P100)))
    assert b.exp() == Exposure(0, 0, 150)
    b.x(replaced(1, 2, 150, P100, side="S", state="D"))       # replaced, then dead at once
    assert b.gate.order(0, 1) is None and b.gate.order(0, 2) is None
    assert b.exp() == Exposure(0, 0, 0) and b.state().credit_used == 0
    # An Order Replaced for a number the gate holds no pending entry for: the original's
    # symbol and side carry over to the new number.
    assert_accept(b.c(enter(3, "T", 40, "MSFT", 2 * P100)))
    b.x(replaced(3, 4, 30, 2 * P100, side="B"))               # exchange side is not trusted
    new = b.gate.order(0, 4)
    assert (new.symbol_index, new.side, new.quantity, new.pending) == (MSFT, "T", 30, False)
    assert b.exp(0, MSFT) == Exposure(0, 0, 30)
    assert b.state().unmatched == 0


def test_order_modified_never_grows_the_order():
    b = Bench()
    assert_accept(b.c(enter(1, "S", 100)))
    b.x(ouch.OrderModified(timestamp=1, user_ref_num=1, side="S", quantity=500))
    assert b.gate.order(0, 1).quantity == 100
    assert b.exp() == Exposure(0, 0, 100)


def test_canceled_naming_a_pending_replace_is_unmatched():
    b = Bench()
    assert_accept(b.c(enter(1, "B", 100)))
    assert_accept(b.c(replace_order(1, 2, 150, P100)))
    b.x(canceled(2, 150))
    assert b.state().unmatched == 1
    assert b.gate.order(0, 2).pending and b.exp() == Exposure(0, 150, 0)


def test_modify_and_order_verdicts_are_kept_in_separate_memories():
    b = Bench()
    first = b.c(enter(1, "B", 100))
    assert_accept(first)
    assert_accept(b.c(modify(1, "B", 50)))                    # same UserRefNum, same slot
    assert b.c(enter(1, "B", 100), retransmit=True) == first
    assert_accept(b.c(modify(1, "B", 50), retransmit=True))


def test_release_does_not_reset_the_throttle_count():
    rate = RateLimit(burst=1, refill_us=10**6, trip_after=2)
    b = Bench(lim=limits(sessions=(session(0, rate=rate),)))
    assert_accept(b.c(enter(1)))
    assert_reject(b.c(enter(2)), R.RATE)
    assert_reject(b.c(enter(3)), R.RATE)                      # second in a row: trip
    assert b.gate.kill_session[0]
    b.ctl(Release, "session", 0)
    assert b.state().throttle_count == 2
    assert_reject(b.c(enter(4)), R.RATE)                      # still at trip_after: trips again
    assert b.gate.kill_session[0] and b.state().throttle_count == 3


def test_throttle_count_holds_at_the_largest_trip_after():
    # The gateway's field is RATE_TRIP_BITS wide; the count stops there, and a session
    # whose trip_after is that largest value still trips on every later throttle.
    rate = RateLimit(burst=1, refill_us=10**6, trip_after=RATE_TRIP_MAX)
    b = Bench(lim=limits(sessions=(session(0, rate=rate),)))
    assert_accept(b.c(enter(1)))
    for ref in range(2, RATE_TRIP_MAX + 1):
        b.c(enter(ref))
    assert b.state().throttle_count == RATE_TRIP_MAX - 1 and not b.gate.kill_session[0]
    assert_reject(b.c(enter(RATE_TRIP_MAX + 1)), R.RATE)
    assert b.state().throttle_count == RATE_TRIP_MAX and b.gate.kill_session[0]
    b.ctl(Release, "session", 0)
    assert_reject(b.c(enter(RATE_TRIP_MAX + 3)), R.RATE)     # + 2: order 1's slot
    assert b.state().throttle_count == RATE_TRIP_MAX and b.gate.kill_session[0]


def test_out_of_sync_verdict_still_names_the_symbol():
    b = Bench()
    b.ctl(SessionSync, 0, False)
    v = b.c(enter(1, name="MSFT", price=2 * P100))
    assert_reject(v, R.OUT_OF_SYNC)
    assert (v.symbol_index, v.user_ref_num, v.msg_type) == (MSFT, 1, b"O")


def test_verdicts_name_the_user_ref_num_a_message_carries():
    b = Bench()
    assert b.c(ouch.AccountQuery()).user_ref_num is None
    assert b.c(cancel(7)).user_ref_num == 7
    v = b.c(ouch.DisableOrderEntry(user_ref_num=9, firm="WGTE"))
    assert_accept(v)
    assert (v.user_ref_num, v.msg_type) == (9, b"D")


# --- rule 10: void client frames ------------------------------------------------------------


def test_void_frame_restores_refs_tokens_and_throttle_and_revokes_its_orders():
    b = Bench(lim=limits(sessions=(session(0, rate=RateLimit(burst=3, refill_us=0,
                                                             trip_after=0)),)))
    assert_accept(b.c(enter(1)))                        # a good frame: stays
    # A frame of three orders: two accepted (2 tokens), one over the bucket's last token.
    b.gate.apply(ClientMessage(b.t, 0, enter(2, quantity=200), opens_frame=True))
    assert_accept(b.c(enter(3, side="S", quantity=50)))
    assert_reject(b.c(enter(4)), R.RATE)
    assert b.state().last_user_ref_num == 4 and b.gate.tokens(0) == 0
    assert b.state().throttle_count == 1 and b.state().throttled
    assert b.exp() == Exposure(0, 300, 50)

    b.at(5).ctl(FrameVoid, 0)
    # Back to the checkpoint taken before order 2: ref 1, one token used (3 - 1), unthrottled.
    assert b.state().last_user_ref_num == 1 and b.gate.tokens(0) == 2
    assert b.state().throttle_count == 0 and not b.state().throttled
    # The frame's accepted orders are still held until revoked, one by one.
    assert b.exp() == Exposure(0, 300, 50)
    b.ctl(Revoke, 0, 2)
    assert b.exp() == Exposure(0, 100, 50) and b.gate.order(0, 2) is None
    b.ctl(Revoke, 0, 3)
    assert b.exp() == Exposure(0, 100, 0) and b.state().credit_used == 100 * P100
    assert b.state().unmatched == 0
    # The client resends the frame as new data: the same numbers are usable again.
    assert_accept(b.c(enter(2, quantity=200)))


def test_void_frame_keeps_a_kill_latch_it_tripped_and_caps_tokens_at_burst():
    b = Bench(lim=limits(sessions=(session(0, rate=RateLimit(burst=1, refill_us=10,
                                                             trip_after=1)),)))
    b.gate.apply(ClientMessage(b.t, 0, enter(1), opens_frame=True))   # takes the token
    assert_reject(b.c(enter(2)), R.RATE)                 # trips the session latch
    assert b.gate.kill_session[0]
    b.at(100).ctl(FrameVoid, 0)                          # 10 refills since: full anyway
    assert b.gate.tokens(0) == 1 and b.gate.kill_session[0]
    assert b.state().last_user_ref_num == 0 and b.state().throttle_count == 0


def test_frame_void_without_an_open_frame_of_that_session_is_an_error():
    b = Bench()
    with pytest.raises(ValueError, match="FrameVoid for session 1"):
        b.ctl(FrameVoid, 1)
    b.gate.apply(ClientMessage(b.t, 0, enter(1), opens_frame=True))
    with pytest.raises(ValueError, match="FrameVoid for session 1"):
        b.ctl(FrameVoid, 1)


def test_revoke_of_a_replace_frees_the_pending_entry_and_keeps_the_original():
    b = Bench()
    assert_accept(b.c(enter(1, quantity=100)))
    b.gate.apply(ClientMessage(b.t, 0, replace_order(1, 2, 150, P100), opens_frame=True))
    assert b.exp() == Exposure(0, 150, 0)
    b.ctl(FrameVoid, 0)
    b.ctl(Revoke, 0, 2)
    assert b.exp() == Exposure(0, 100, 0) and b.gate.order(0, 1).quantity == 100
    assert b.gate.order(0, 2) is None and b.state().last_user_ref_num == 1
