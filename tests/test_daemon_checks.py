"""The daemon's software checks (wiregate.sw.daemon.checks) on hand-worked drop-copy days.

Each test is a worked example of docs/daemon-checks.md: a short sequence of drop-copy records
built here, and the actions expected, worked out by hand in the comments (dollars; a price
unit is $0.0001), not by the check's own arithmetic.
"""

import itertools
from pathlib import Path

import pytest
import yaml

from wiregate.sim.shadow import Day as TradingDay
from wiregate.sim.shadow import model_records
from wiregate.sim.trading import Sizes
from wiregate.sw.daemon.actions import Action
from wiregate.sw.daemon.checks import (
    CheckConfigError,
    Concentration,
    GrossNotional,
    Locate,
    NotionalVelocity,
    OrderVelocity,
    RepeatedExecutions,
    build_checks,
)
from wiregate.sw.dropcopy import Control, Kind, Record

DOLLAR = 10_000     # price units
MS = 1_000          # microseconds


class Day:
    """Builds a day's records in sequence order, numbering them and their orders."""

    def __init__(self):
        self._sequence = itertools.count()
        self._match = itertools.count(1)
        self.refs = {}

    def _record(self, **fields) -> Record:
        return Record(sequence=next(self._sequence), **fields)

    def enter(self, t, session, ref, side, quantity, symbol, dollars, accept=True,
              retransmit=False) -> Record:
        return self._record(time_us=t, kind=Kind.VERDICT, msg_type=ord("O"), session=session,
                            user_ref_num=ref, side=ord(side), quantity=quantity,
                            price=round(dollars * DOLLAR), symbol=symbol.encode().ljust(8),
                            accept=int(accept), retransmit=int(retransmit))

    def replace(self, t, session, orig, ref, quantity, dollars, accept=True) -> Record:
        return self._record(time_us=t, kind=Kind.VERDICT, msg_type=ord("U"), session=session,
                            orig_user_ref_num=orig, user_ref_num=ref, quantity=quantity,
                            price=round(dollars * DOLLAR), accept=int(accept))

    def executed(self, t, session, ref, quantity, dollars) -> Record:
        return self._record(time_us=t, kind=Kind.EXCHANGE, msg_type=ord("E"), session=session,
                            user_ref_num=ref, quantity=quantity, price=round(dollars * DOLLAR),
                            match_number=next(self._match))

    def broken(self, t, session, ref, match) -> Record:
        return self._record(time_us=t, kind=Kind.EXCHANGE, msg_type=ord("B"), session=session,
                            user_ref_num=ref, match_number=match)

    def revoke(self, t, session, ref) -> Record:
        return self._record(time_us=t, kind=Kind.CONTROL, control=Control.REVOKE,
                            session=session, user_ref_num=ref)


def fired(check, records) -> list[tuple[int, Action]]:
    """(index of the record, action) of every action the check asks for."""
    return [(k, action) for k, rec in enumerate(records) for action in check.observe(rec)]


def trades(day):
    """Entered and executed at once, so positions are easy to follow (one order each)."""
    def trade(t, session, ref, side, quantity, symbol, dollars):
        return [day.enter(t, session, ref, side, quantity, symbol, dollars),
                day.executed(t, session, ref, quantity, dollars)]
    return trade


def position_day():
    """The worked example of the position checks (docs/daemon-checks.md)."""
    day = Day()
    trade = trades(day)
    return [
        *trade(0, 0, 1, "B", 100, "AAPL", 50),      # 1: AAPL +100 x $50 = $5,000
        *trade(1, 1, 1, "S", 100, "MSFT", 40),      # 3: MSFT -100 x $40 = $4,000; $9,000
        *trade(2, 1, 2, "B", 50, "AAPL", 52),       # 5: AAPL +150 x $52 = $7,800; $11,800
        *trade(3, 0, 2, "B", 100, "MSFT", 40),      # 7: MSFT 0 (nets session 1's); $7,800
        *trade(4, 0, 3, "S", 100, "AAPL", 52),      # 9: AAPL +50 x $52 = $2,600; $2,600
        *trade(5, 2, 1, "B", 200, "AAPL", 60),      # 11: AAPL +250 x $60 = $15,000
        day.broken(6, 2, 1, 6),                     # 12: that one broken: AAPL +50 = $3,000
    ]


def test_gross_notional_fires_once_per_crossing_and_nets_across_sessions():
    check = GrossNotional("gross", "kill_gateway", limit=10_000 * DOLLAR)
    records = position_day()
    assert fired(check, records) == [
        (5, Action("gross", "kill_gateway", None,
                   "gross notional $11,800.00 above $10,000.00 after session 1 bought 50 "
                   "AAPL at $52.00")),
        (11, Action("gross", "kill_gateway", None,
                    "gross notional $15,000.00 above $10,000.00 after session 2 bought 200 "
                    "AAPL at $60.00")),
    ]
    assert check.positions.gross == 3_000 * DOLLAR     # after the broken trade
    assert check.positions.position == {"AAPL": 50, "MSFT": 0}


def test_concentration_names_the_symbol_and_its_net_position():
    check = Concentration("conc", "kill_symbol", limit=7_000 * DOLLAR)
    assert fired(check, position_day()) == [
        (5, Action("conc", "kill_symbol", "AAPL", "AAPL: net position +150 across sessions, "
                   "$7,800.00 at $52.00, above $7,000.00")),
        (11, Action("conc", "kill_symbol", "AAPL", "AAPL: net position +250 across "
                    "sessions, $15,000.00 at $60.00, above $7,000.00")),
    ]


def test_a_kill_session_action_names_the_session_of_the_crossing_execution():
    check = Concentration("conc", "kill_session", limit=7_000 * DOLLAR)
    assert [(k, a.target) for k, a in fired(check, position_day())] == [(5, "1"), (11, "2")]


def test_an_execution_of_an_order_never_seen_accepted_is_counted_not_booked():
    day = Day()
    check = GrossNotional("gross", "alert", limit=1)
    records = [day.enter(0, 0, 1, "B", 10, "AAPL", 5, accept=False),
               day.executed(1, 0, 1, 10, 5)]
    assert fired(check, records) == []
    assert check.orders.unmatched == 1


def test_order_velocity_per_session_counts_rejects_and_reopens_when_the_window_slides():
    day = Day()
    check = OrderVelocity("orders", "kill_session", limit=3, window=1 * MS, per="session")
    records = [
        day.enter(0, 0, 1, "B", 1, "AAPL", 1),
        day.enter(100, 0, 2, "B", 1, "AAPL", 1, accept=False),
        day.enter(200, 1, 1, "B", 1, "AAPL", 1),            # another session
        day.enter(300, 0, 3, "B", 1, "AAPL", 1, retransmit=True),   # changes nothing
        day.enter(500, 0, 4, "B", 1, "AAPL", 1),
        day.enter(900, 0, 5, "B", 1, "AAPL", 1),    # 5: 0, 100, 500, 900: 4 in (-100, 900]
        day.enter(1000, 0, 6, "B", 1, "AAPL", 1),   # 100, 500, 900, 1000: still over, quiet
        day.enter(1600, 0, 7, "B", 1, "AAPL", 1),   # 900, 1000, 1600: 3, back at the limit
        day.enter(1700, 0, 8, "B", 1, "AAPL", 1),   # 8: 900, 1000, 1600, 1700: over again
    ]
    detail = "4 orders within 1ms in session 0, above 3"
    assert fired(check, records) == [(5, Action("orders", "kill_session", "0", detail)),
                                     (8, Action("orders", "kill_session", "0", detail))]


def test_notional_velocity_sums_the_notional_accepted_orders_add():
    day = Day()
    check = NotionalVelocity("notional", "alert", limit=10_000 * DOLLAR, window=1_000 * MS,
                             per="gateway")
    records = [
        day.enter(0, 0, 1, "B", 100, "AAPL", 40),           # $4,000
        day.enter(1, 0, 2, "B", 1000, "AAPL", 40, accept=False),    # rejected: nothing
        day.replace(500 * MS, 0, 1, 3, 200, 40),            # 200x40 - 100x40: $4,000 more
        day.enter(900 * MS, 1, 1, "S", 60, "MSFT", 50),     # 3: $3,000: $11,000 in 1s
        day.enter(1_000 * MS, 1, 2, "S", 10, "MSFT", 10),   # t=0 left: 4,000+3,000+100
        day.enter(1_400 * MS, 1, 3, "S", 100, "MSFT", 30),  # 5: 7,100 + 3,000 = $10,100
    ]
    assert fired(check, records) == [
        (3, Action("notional", "alert", None,
                   "$11,000.00 of new notional within 1s, above $10,000.00")),
        (5, Action("notional", "alert", None,
                   "$10,100.00 of new notional within 1s, above $10,000.00")),
    ]
    # Built to tighten, the same check leads each detail with the limit to lower.
    tighten = build_checks([{"check": "notional_velocity", "name": "notional", "limit": 10_000,
                             "window": "1s", "action": "tighten",
                             "tighten": "credit = 1000"}])[0]
    assert fired(tighten, records) == [
        (3, Action("notional", "tighten", None,
                   "credit=1000; $11,000.00 of new notional within 1s, above $10,000.00")),
        (5, Action("notional", "tighten", None,
                   "credit=1000; $10,100.00 of new notional within 1s, above $10,000.00")),
    ]


def test_order_velocity_per_symbol_follows_a_replace_to_its_original_symbol():
    day = Day()
    check = OrderVelocity("orders", "kill_symbol", limit=2, window=1_000 * MS, per="symbol")
    records = [day.enter(0, 0, 1, "B", 10, "AAPL", 1),
               day.enter(1, 1, 1, "B", 10, "MSFT", 1),
               day.replace(2, 0, 1, 2, 20, 1),              # AAPL's second
               day.replace(3, 0, 99, 100, 20, 1),           # unknown original: no symbol
               day.enter(4, 1, 2, "S", 10, "AAPL", 1)]      # AAPL's third
    assert fired(check, records) == [
        (4, Action("orders", "kill_symbol", "AAPL", "3 orders within 1s in symbol AAPL, "
                   "above 2"))]


def test_repeated_executions_fire_on_the_nth_of_one_session_symbol_and_side():
    day = Day()
    check = RepeatedExecutions("runaway", "kill_session", count=3, window=1_000 * MS)
    records = [
        day.enter(0, 2, 1, "B", 1000, "AAPL", 10),
        day.enter(0, 2, 2, "S", 1000, "AAPL", 10),
        day.enter(0, 3, 1, "B", 1000, "AAPL", 10),
        day.executed(0, 2, 1, 10, 10),                  # 3: first
        day.executed(100 * MS, 2, 2, 10, 10),           # the other side
        day.executed(200 * MS, 3, 1, 10, 10),           # another session
        day.executed(400 * MS, 2, 1, 10, 10),           # second
        day.executed(900 * MS, 2, 1, 10, 10),           # 7: third within (-100ms, 900ms]
        day.executed(1_500 * MS, 2, 1, 10, 10),         # 900, 1500: 2, rearmed
        day.executed(2_400 * MS, 2, 1, 10, 10),         # 1500, 2400 (900 left): 2
        day.executed(2_450 * MS, 2, 1, 10, 10),         # 10: 1500, 2400, 2450
    ]
    detail = "session 2: 3 executions on AAPL side B within 1s (limit 3)"
    assert fired(check, records) == [(7, Action("runaway", "kill_session", "2", detail)),
                                     (10, Action("runaway", "kill_session", "2", detail))]


def test_executions_spread_wider_than_the_window_never_fire():
    day = Day()
    check = RepeatedExecutions("runaway", "alert", count=3, window=1_000 * MS)
    records = [day.enter(0, 0, 1, "S", 100, "MSFT", 10)] + [
        day.executed(k * 600 * MS, 0, 1, 1, 10) for k in range(10)]
    assert fired(check, records) == []      # at most 2 in any (t - 1s, t]


def test_locate_list_fires_on_each_uncovered_short_sale_and_a_revoke_gives_back():
    day = Day()
    check = Locate("locate", "kill_session", locates={"AAPL": 300}, sides="TE")
    records = [
        day.enter(0, 0, 1, "T", 200, "AAPL", 10),       # 200 of 300 located
        day.enter(1, 0, 2, "S", 500, "AAPL", 10),       # a long sale needs none
        day.enter(2, 1, 1, "E", 150, "AAPL", 10, accept=False),     # rejected: never sent
        day.enter(3, 1, 2, "E", 150, "AAPL", 10),       # 3: 350 > 300
        day.enter(4, 0, 3, "T", 10, "MSFT", 10),        # 4: no locate at all
        day.revoke(5, 0, 1),                            # the 200 withdrawn: 150 used
        day.enter(6, 0, 4, "T", 100, "AAPL", 10),       # 250: covered
        day.replace(7, 0, 4, 5, 160, 10),               # +60 shares: 310 > 300
        day.revoke(8, 0, 5),                            # the +60 withdrawn: 250
        day.enter(9, 1, 3, "T", 50, "AAPL", 10),        # 300: covered, just
        day.enter(10, 1, 4, "T", 1, "AAPL", 10),        # 10: 301
    ]
    assert fired(check, records) == [
        (3, Action("locate", "kill_session", "1", "short sale of 150 AAPL by session 1: "
                   "350 sold short, a locate for 300")),
        (4, Action("locate", "kill_session", "0", "short sale of 10 MSFT by session 0: "
                   "10 sold short, no locate")),
        (7, Action("locate", "kill_session", "0", "short sale of 160 AAPL by session 0: "
                   "310 sold short, a locate for 300")),
        (10, Action("locate", "kill_session", "1", "short sale of 1 AAPL by session 1: "
                    "301 sold short, a locate for 300")),
    ]


def test_a_locate_check_for_sell_short_only_lets_short_exempt_pass():
    day = Day()
    check = Locate("locate", "alert", locates={}, sides="T")
    records = [day.enter(0, 0, 1, "E", 10, "AAPL", 10), day.enter(1, 0, 2, "T", 10, "AAPL", 10)]
    assert [(k, a.target) for k, a in fired(check, records)] == [(1, "AAPL")]


CONFIG = """
checks:
  - {check: gross_notional, limit: 5e7, action: kill_gateway}
  - {check: concentration, limit: 1_000_000.50, action: kill_symbol}
  - {check: order_velocity, limit: 500, window: 1s, per: session, action: kill_session}
  - {check: notional_velocity, name: fast_money, limit: 2000000, window: 100ms,
     action: tighten, tighten: credit=500000000000}
  - {check: repeated_executions, count: 20, window: 500ms, action: kill_session}
  - check: locate
    action: alert
    sides: T
    locates: {AAPL: 10000, MSFT: 0}
"""


@pytest.mark.parametrize("entry, message", [
    ({"check": "gross_notional", "limit": 1, "action": "tighten"}, "goes with action tighten"),
    ({"check": "gross_notional", "limit": 1, "action": "alert", "tighten": "credit=1"},
     "goes with action tighten"),
    ({"check": "gross_notional", "limit": 1, "action": "tighten", "tighten": "halve it"},
     "expected FIELD=VALUE"),
])
def test_a_tighten_entry_names_its_limit_and_value(entry, message):
    with pytest.raises(CheckConfigError, match=message):
        build_checks([entry])


def test_build_checks_reads_a_configuration_section():
    checks = build_checks(yaml.safe_load(CONFIG)["checks"])
    assert [type(c) for c in checks] == [GrossNotional, Concentration, OrderVelocity,
                                         NotionalVelocity, RepeatedExecutions, Locate]
    assert [c.name for c in checks] == ["gross_notional", "concentration", "order_velocity",
                                        "fast_money", "repeated_executions", "locate"]
    assert [c.action for c in checks] == ["kill_gateway", "kill_symbol", "kill_session",
                                          "tighten", "kill_session", "alert"]
    gross, conc, orders, notional, runaway, locate = checks
    assert gross.limit == 50_000_000 * DOLLAR
    assert conc.limit == 1_000_000 * DOLLAR + 5_000
    assert (orders.limit, orders._window.window_us, orders.per) == (500, 1_000_000, "session")
    assert (notional.limit, notional._window.window_us) == (2_000_000 * DOLLAR, 100_000)
    assert (runaway.count, runaway._window.window_us) == (20, 500_000)
    assert (locate.locates, locate.sides) == ({"AAPL": 10_000, "MSFT": 0}, "T")
    assert build_checks(None) == []


@pytest.mark.parametrize("entry, message", [
    ("gross_notional", r"checks\[0\]: expected a mapping"),
    ({"limit": 1, "action": "alert"}, r"checks\[0\]: check None is not one of gross_notional"),
    ({"check": "gross", "action": "alert"}, r"check 'gross' is not one of"),
    ({"check": "gross_notional", "limit": 1}, r"\(gross_notional\): action None is not one"),
    ({"check": "gross_notional", "action": "kill"}, r"action 'kill' is not one of alert"),
    ({"check": "gross_notional", "action": "alert"}, r"\(gross_notional\): limit is required"),
    ({"check": "gross_notional", "action": "alert", "limit": 1, "windw": "1s"},
     r"unknown key 'windw' \(known: check, action, name, tighten, limit\)"),
    ({"check": "gross_notional", "action": "alert", "limit": "lots"},
     r"\(gross_notional\)\.limit: expected dollars"),
    ({"check": "gross_notional", "action": "alert", "limit": 0.00001},
     r"\.limit: 1e-05 is not a positive whole number of \$0.0001"),
    ({"check": "gross_notional", "action": "alert", "limit": -5}, r"\.limit: -5 is not"),
    ({"check": "order_velocity", "action": "alert", "limit": 5, "window": 5},
     r"\.window: expected a duration with its unit"),
    ({"check": "order_velocity", "action": "alert", "limit": 5, "window": "5 parsecs"},
     r"\.window: expected a duration"),
    ({"check": "order_velocity", "action": "alert", "limit": 2.5, "window": "1s"},
     r"\.limit: expected a whole number above 0, got 2.5"),
    ({"check": "order_velocity", "action": "alert", "limit": 5, "window": "1s", "per": "desk"},
     r"\.per: expected gateway, session or symbol"),
    ({"check": "order_velocity", "action": "kill_symbol", "limit": 5, "window": "1s"},
     r"action kill_symbol needs a symbol, and this check does not always name one "
     r"\(it names: session\)"),
    ({"check": "repeated_executions", "action": "alert", "count": 0, "window": "1s"},
     r"\.count: expected a whole number above 0"),
    ({"check": "locate", "action": "alert", "locates": ["AAPL"]},
     r"\.locates: expected a mapping of symbol to shares"),
    ({"check": "locate", "action": "alert", "locates": {"AAPL": -1}},
     r"\.locates: AAPL: expected a whole number of shares"),
    ({"check": "locate", "action": "alert", "locates": {"TOOLONGSYM": 1}},
     r"\.locates: symbol 'TOOLONGSYM'"),
    ({"check": "locate", "action": "alert", "locates": {}, "sides": "S"},
     r"\.sides: expected short-sale sides T and/or E"),
])
def test_build_checks_names_the_bad_entry_and_key(entry, message):
    with pytest.raises(CheckConfigError, match=message):
        build_checks([entry])


def test_build_checks_refuses_a_section_that_is_not_a_list_and_duplicate_names():
    with pytest.raises(CheckConfigError, match=r"checks: expected a list of checks"):
        build_checks({"check": "locate"})
    entry = {"check": "locate", "action": "alert", "locates": {}}
    with pytest.raises(CheckConfigError, match=r"checks\[1\]: name 'locate' is already used "
                                               r"by checks\[0\]"):
        build_checks([entry, entry])
    assert [c.name for c in build_checks([entry, {**entry, "name": "locate_2"}])] == [
        "locate", "locate_2"]


def test_an_order_replaced_keeps_the_symbol_and_takes_the_exchanges_side():
    day = Day()
    check = Concentration("conc", "alert", limit=1_000 * DOLLAR)
    replaced = Record(sequence=90, time_us=3, kind=Kind.EXCHANGE, msg_type=ord("U"),
                      session=0, orig_user_ref_num=1, user_ref_num=2, side=ord("S"),
                      quantity=300, price=10 * DOLLAR, order_state=ord("L"))
    records = [day.enter(0, 0, 1, "B", 100, "AAPL", 10),
               day.replace(1, 0, 1, 2, 300, 10),
               replaced,                                # the exchange reports a sale
               day.executed(4, 0, 2, 150, 10)]          # AAPL -150 x $10 = $1,500
    assert fired(check, records) == [(3, Action(
        "conc", "alert", "AAPL", "AAPL: net position -150 across sessions, $1,500.00 at "
        "$10.00, above $1,000.00"))]
    assert check.orders.unmatched == 0


def test_every_check_reads_a_whole_model_day_and_order_velocity_counts_its_orders():
    """A day of the trading generator, its drop copy written by the model: every record kind
    the gateway sends. Order velocity over a window longer than the day, with a limit one
    below the day's Enters and Replaces (counted here from the records), fires at the last."""
    records = model_records(TradingDay(7, Sizes(), 3000))
    orders = [k for k, rec in enumerate(records) if rec.kind == Kind.VERDICT
              and rec.msg_type in (ord("O"), ord("U")) and not rec.retransmit]
    span = records[-1].time_us - records[0].time_us + 1
    window = f"{span + 1}us"
    checks = build_checks(yaml.safe_load(CONFIG)["checks"] + [
        {"check": "order_velocity", "name": "day", "limit": len(orders) - 1,
         "window": window, "action": "alert"}])
    actions = [(k, a) for k, rec in enumerate(records) for c in checks
               for a in c.observe(rec)]
    assert [(k, a.check) for k, a in actions if a.check == "day"] == [(orders[-1], "day")]
    assert all(a.kind == c.action for _, a in actions for c in checks if c.name == a.check)
    # Built together the checks share one order book; each alone has its own: same actions.
    alone = [build_checks([entry])[0] for entry in yaml.safe_load(CONFIG)["checks"]]
    assert [(k, a) for k, rec in enumerate(records) for c in alone
            for a in c.observe(rec)] == [(k, a) for k, a in actions if a.check != "day"]


def test_a_replace_of_an_order_the_daemon_never_saw_counts_without_a_symbol():
    """Started mid-day: the gate accepts a Replace of an order the checks never saw. It adds
    its whole q2 * p2 (q1 = p1 = 0, as the model counts an unknown original) and has no
    symbol or side, so the locate check cannot judge it."""
    day = Day()
    records = [day.replace(0, 0, 7, 8, 100, 30)]          # 100 x $30 = $3,000
    velocity = NotionalVelocity("n", "alert", limit=2_999 * DOLLAR, window=1_000 * MS,
                                per="gateway")
    locate = Locate("locate", "alert", locates={}, sides="TE")
    assert fired(velocity, records) == [(0, Action(
        "n", "alert", None, "$3,000.00 of new notional within 1s, above $2,999.00"))]
    assert fired(locate, records) == []


def test_the_demo_checks_file_builds_one_alerting_check_of_each_kind():
    """examples/demo-checks.yaml (the demo-load run's ``--checks``) declares every check the
    daemon has, each only alerting, so the demo trades the same day with them."""
    section = yaml.safe_load(Path(__file__).parent.parent.joinpath(
        "examples", "demo-checks.yaml").read_text())["checks"]
    checks = build_checks(section)
    assert {type(check) for check in checks} == {
        GrossNotional, Concentration, OrderVelocity, NotionalVelocity, RepeatedExecutions,
        Locate}
    assert {entry["action"] for entry in section} == {"alert"}
