"""Limit files: loading, exact conversion, located validation errors, and the CLI.

Expected integers are computed by hand in the comments (1 dollar = 10,000 price units,
durations in microseconds, IPv4 addresses as 32-bit integers), never by the code under test.
"""

import argparse
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wiregate.sw import limits_cmd
from wiregate.sw.cli import main
from wiregate.sw.limits import (
    OUCH_MAX_PRICE,
    PRICE_SCALE,
    Endpoint,
    GatewayLimits,
    Limits,
    LimitsError,
    Problem,
    RateLimit,
    SessionLimits,
    SymbolLimits,
    format_dollars,
    load_limits,
    parse_dollars,
    parse_duration,
    parse_limits,
    schema_paths,
)
from wiregate.sw.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "limits" / "default.yaml"
BROKEN_FILE = ROOT / "tests" / "data" / "limits" / "broken.yaml"
DOCS_FILE = ROOT / "docs" / "limits.md"


def ipv4(a: int, b: int, c: int, d: int) -> int:
    return a << 24 | b << 16 | c << 8 | d


VALID = """\
gateway:
  credit: 1_000_000.00
  heartbeat_timeout: 250ms
  reference_max_age: 5s
defaults:
  collar: 5%
  max_order_quantity: 1_000
  max_order_notional: 100_000.00
  max_long: 5_000
  max_short: 2_000
sessions:
  - name: desk-a
    client: 10.1.0.1:40001
    exchange: 10.2.0.1:15000
    max_order_quantity: 999_999
    max_order_notional: 250_000.50
    credit: 500_000.00
    rate: {burst: 100, refill: 250us, trip_after: 0}
  - name: desk-b
    client: 10.1.0.2:40002
    exchange: 10.2.0.1:15000
    max_order_quantity: 10
    max_order_notional: 0.0001
    credit: "1234.5678"
    rate:
      burst: 1
      refill: 1.5ms
      trip_after: 7
symbols:
  - symbol: AAPL
    reference_price: 189.50
  - symbol: GME
    reference_price: 22.37
    collar: 7.5%
    max_order_quantity: 200
    max_order_notional: 4.02
    max_long: 0
    max_short: 0
    restricted: yes
  - symbol: ON
    reference_price: 199_999.99
    collar: 0.25
  - symbol: NEW
"""

VALID_LIMITS = Limits(
    gateway=GatewayLimits(
        credit=10_000_000_000,            # $1,000,000.00
        heartbeat_timeout_us=250_000,
        reference_max_age_us=5_000_000,
    ),
    sessions=(
        SessionLimits(
            index=0, name="desk-a",
            client=Endpoint(ipv4(10, 1, 0, 1), 40001),
            exchange=Endpoint(ipv4(10, 2, 0, 1), 15000),
            max_order_quantity=999_999,
            max_order_notional=2_500_005_000,   # $250,000.50
            credit=5_000_000_000,               # $500,000.00
            rate=RateLimit(burst=100, refill_us=250, trip_after=0),
        ),
        SessionLimits(
            index=1, name="desk-b",
            client=Endpoint(ipv4(10, 1, 0, 2), 40002),
            exchange=Endpoint(ipv4(10, 2, 0, 1), 15000),
            max_order_quantity=10,
            max_order_notional=1,               # $0.0001
            credit=12_345_678,                  # "$1234.5678", quoted
            rate=RateLimit(burst=1, refill_us=1_500, trip_after=7),
        ),
    ),
    symbols=(
        # 5% of 1,895,000 = 94,750 exactly; the rest from defaults.
        SymbolLimits(index=0, symbol="AAPL", reference_price=1_895_000, collar=94_750,
                     max_order_quantity=1_000, max_order_notional=1_000_000_000,
                     max_long=5_000, max_short=2_000, restricted=False),
        # 7.5% of 223,700 = 16,777.5, rounded down; $4.02 = 40,200 (via float: 40,199).
        SymbolLimits(index=1, symbol="GME", reference_price=223_700, collar=16_777,
                     max_order_quantity=200, max_order_notional=40_200,
                     max_long=0, max_short=0, restricted=True),
        # YAML 1.1 reads a plain ON as a boolean; the loader keeps the ticker.
        SymbolLimits(index=2, symbol="ON", reference_price=1_999_999_900, collar=2_500,
                     max_order_quantity=1_000, max_order_notional=1_000_000_000,
                     max_long=5_000, max_short=2_000, restricted=False),
        # No reference price: 0 (fail closed), and 5% of nothing is a zero band.
        SymbolLimits(index=3, symbol="NEW", reference_price=0, collar=0,
                     max_order_quantity=1_000, max_order_notional=1_000_000_000,
                     max_long=5_000, max_short=2_000, restricted=False),
    ),
)


def mutate(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def line_of(text: str, fragment: str) -> int:
    """1-based line of the only line holding ``fragment``."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(lines) == 1, f"{fragment!r} must be on exactly one line"
    return lines[0]


def problems_of(text: str, **kwargs) -> list[Problem]:
    with pytest.raises(LimitsError) as info:
        parse_limits(text, "t.yaml", **kwargs)
    return info.value.problems


def check_single_problem(text: str, field: str, marker: str, message: str, **kwargs) -> None:
    problems = problems_of(text, **kwargs)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.file, problem.line, problem.field) == ("t.yaml", line_of(text, marker), field)
    assert message in problem.message
    assert str(problem) == f"t.yaml:{problem.line}: {field}: {problem.message}"


# -- a valid file --------------------------------------------------------------------------

def test_valid_file_round_trips_to_hand_computed_integers():
    assert parse_limits(VALID) == VALID_LIMITS


def test_load_limits_reads_a_file(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(VALID)
    assert load_limits(path) == VALID_LIMITS


def test_defaults_fill_only_what_a_symbol_omits():
    text = mutate(VALID, "  - symbol: NEW\n", "  - symbol: NEW\n    max_long: 123\n")
    new = parse_limits(text).symbols[3]
    assert (new.max_long, new.max_short, new.max_order_quantity) == (123, 2_000, 1_000)


def test_restricted_defaults_to_false_and_can_be_defaulted_true():
    text = mutate(VALID, "  max_short: 2_000\n", "  max_short: 2_000\n  restricted: on\n")
    assert [s.restricted for s in parse_limits(text).symbols] == [True, True, True, True]


def test_anchors_and_aliases_are_followed():
    text = mutate(VALID, "    collar: 0.25\n", "    collar: &band 0.25\n")
    text = mutate(text, "  - symbol: NEW\n", "  - symbol: NEW\n    collar: *band\n")
    assert parse_limits(text).symbols[3].collar == 2_500


# -- exact money and durations ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "units"), [
    ("0.0001", 1),
    ("199999.99", 1_999_999_900),
    ("199_999.99", OUCH_MAX_PRICE),
    ("1_000_000.00", 10_000_000_000),
    ("0.3", 3_000),
    ("4.35", 43_500),
    ("0.29", 2_900),
    ("0.57", 5_700),
    ("1", 10_000),
    ("010", 100_000),                 # decimal, not YAML 1.1 octal
    ("123456789.1234", 1_234_567_891_234),
    ("-2.5", -25_000),
])
def test_dollars_convert_exactly(text, units):
    assert parse_dollars(text) == units


def test_point_one_plus_point_two_is_point_three():
    assert 0.1 + 0.2 != 0.3          # the float trap this format avoids
    assert parse_dollars("0.1") + parse_dollars("0.2") == parse_dollars("0.3") == 3_000


@pytest.mark.parametrize(("text", "units"), [("0.57", 5_700), ("1.13", 11_300), ("4.02", 40_200)])
def test_plain_yaml_floats_do_not_round(text, units):
    # The value a float-based loader would produce differs from the exact one...
    assert int(float(text) * PRICE_SCALE) != units
    # ...while the loader, reading the same plain scalar from YAML, gets it exactly.
    doc = mutate(VALID, "reference_price: 189.50", f"reference_price: {text}")
    assert parse_limits(doc).symbols[0].reference_price == units


@pytest.mark.parametrize("text", ["1e6", "$5.00", "1,000.00", ".5", "5.", "0x10", "five", "1__0"])
def test_dollars_reject_other_notations(text):
    with pytest.raises(ValueError, match="expected dollars"):
        parse_dollars(text)


def test_dollars_reject_more_than_four_decimals():
    with pytest.raises(ValueError, match="5 decimals; dollar amounts carry at most 4"):
        parse_dollars("0.00001")


@pytest.mark.parametrize(("units", "text"), [
    (1, "$0.0001"), (10_000_000_000, "$1,000,000.00"), (12_345, "$1.2345"), (-25_000, "-$2.50"),
])
def test_format_dollars(units, text):
    assert format_dollars(units) == text


@pytest.mark.parametrize(("text", "us"), [
    ("1s", 1_000_000), ("500ms", 500_000), ("250us", 250), ("250µs", 250), ("1.5ms", 1_500),
    ("0.000001s", 1), ("2 s", 2_000_000), ("1_000us", 1_000), ("1.000s", 1_000_000),
    ("0s", 0),
])
def test_durations(text, us):
    assert parse_duration(text) == us


@pytest.mark.parametrize(("text", "message"), [
    ("5", "with a unit"), ("1m", "with a unit"), ("1e3us", "with a unit"),
    ("0.5us", "not a whole number of microseconds"),
    ("1.0000005s", "not a whole number of microseconds"),
])
def test_bad_durations(text, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


# -- collars ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("reference", "collar", "band"), [
    ("189.50", "5%", 94_750),              # 1,895,000 x 0.05
    ("22.37", "7.5%", 16_777),             # 16,777.5 rounded down
    ("4.85", "0.01%", 4),                  # 48,500 x 0.0001 = 4.85 -> 4
    ("199_999.99", "100%", 1_999_999_900),
    ("0.0003", "50%", 1),                  # 1.5 -> 1
    ("100", "0.0001%", 1),                 # 1,000,000 x 0.000001
    ("22.37", "0.75", 7_500),              # an absolute band ignores the reference
])
def test_collar_bands(reference, collar, band):
    doc = mutate(VALID, "reference_price: 189.50", f"reference_price: {reference}")
    doc = mutate(doc, "  - symbol: AAPL\n", f"  - symbol: AAPL\n    collar: {collar}\n")
    assert parse_limits(doc).symbols[0].collar == band


# -- one test per error class ----------------------------------------------------------------

# (old, new, field, line marker, message fragment): each turns VALID into a file with exactly
# one problem, located at the line holding the marker.
ONE_PROBLEM = {
    "unknown key": ("    max_long: 0\n", "    max_lnog: 0\n",
                    "symbols[1].max_lnog", "max_lnog", "did you mean 'max_long'?"),
    "unknown top-level key": ("symbols:\n", "limits: 1\nsymbols:\n",
                              "limits", "limits: 1", "expected one of gateway, defaults"),
    "missing key": ("    client: 10.1.0.2:40002\n", "",
                    "sessions[1].client", "- name: desk-b", "missing required key"),
    "missing section": ("    rate: {burst: 100, refill: 250us, trip_after: 0}\n", "",
                        "sessions[0].rate", "- name: desk-a", "missing required key"),
    "duplicate key": ("    max_long: 0\n", "    max_long: 0\n    max_long: 1\n",
                      "symbols[1].max_long", "max_long: 1", "duplicate key (first given at line"),
    "list for a number": ("    max_long: 0\n", "    max_long: [0]\n",
                          "symbols[1].max_long", "max_long: [0]", "got a list"),
    "text for a number": ("burst: 100", "burst: lots",
                          "sessions[0].rate.burst", "burst: lots", "expected a whole number"),
    "fraction of a share": ("max_order_quantity: 200", "max_order_quantity: 200.5",
                            "symbols[1].max_order_quantity", "200.5", "expected a whole number"),
    "not a bool": ("restricted: yes", "restricted: 1",
                   "symbols[1].restricted", "restricted: 1", "expected true or false"),
    "quoted bool": ("restricted: yes", 'restricted: "true"',
                    "symbols[1].restricted", "restricted:", "expected true or false"),
    "no value": ("  max_short: 2_000\n", "  max_short:\n",
                 "defaults.max_short", "max_short:\n", "no value"),
    "number for a mapping": ("    rate:\n      burst: 1\n      refill: 1.5ms\n"
                             "      trip_after: 7\n", "    rate: 5\n",
                             "sessions[1].rate", "rate: 5", "expected a mapping"),
    "negative": ("max_long: 5_000", "max_long: -5",
                 "defaults.max_long", "max_long: -5", "must not be negative, got -5"),
    "zero money": ("credit: 500_000.00", "credit: 0",
                   "sessions[0].credit", "credit: 0", "must be greater than zero, got $0.00"),
    "zero burst": ("burst: 100", "burst: 0",
                   "sessions[0].rate.burst", "burst: 0", "must be greater than zero"),
    "zero refill": ("refill: 250us", "refill: 0us",
                    "sessions[0].rate.refill", "refill: 0us", "must be greater than zero"),
    "zero quantity": ("max_order_quantity: 10\n", "max_order_quantity: 0\n",
                      "sessions[1].max_order_quantity", "max_order_quantity: 0",
                      "must be greater than zero"),
    "quantity above OUCH": ("max_order_quantity: 999_999", "max_order_quantity: 1_000_000",
                            "sessions[0].max_order_quantity", "max_order_quantity: 1_000_000",
                            "1,000,000 is above the OUCH maximum quantity (999,999)"),
    "above the table field": ("max_long: 5_000", "max_long: 4_294_967_296",
                              "defaults.max_long", "max_long: 4_294_967_296",
                              "above the largest value the gateway's 32-bit table field holds"),
    "price above OUCH": ("199_999.99", "200_000.00",
                         "symbols[2].reference_price", "200_000.00",
                         "$200,000.00 is above the largest OUCH price ($199,999.99)"),
    "zero price": ("reference_price: 22.37", "reference_price: 0",
                   "symbols[1].reference_price", "reference_price: 0",
                   "must be greater than zero"),
    "more than 4 decimals": ("4.02", "4.02001", "symbols[1].max_order_notional", "4.02001",
                             "has 5 decimals; dollar amounts carry at most 4"),
    "float notation": ("credit: 1_000_000.00", "credit: 1e6",
                       "gateway.credit", "1e6", "expected dollars as decimal text"),
    "duration without unit": ("heartbeat_timeout: 250ms", "heartbeat_timeout: 250",
                              "gateway.heartbeat_timeout", "heartbeat_timeout",
                              "expected a duration with a unit"),
    "duration below a microsecond": ("refill: 1.5ms", "refill: 1.5us", "sessions[1].rate.refill",
                                     "1.5us", "not a whole number of microseconds"),
    "negative duration": ("reference_max_age: 5s", "reference_max_age: -5s",
                          "gateway.reference_max_age", "-5s", "must not be negative, got -5s"),
    "collar above 100%": ("collar: 7.5%", "collar: 150%",
                          "symbols[1].collar", "150%", "above 100%"),
    "zero collar": ("collar: 0.25", "collar: 0.00",
                    "symbols[2].collar", "collar: 0.00", "must be greater than zero"),
    "collar not a band": ("collar: 0.25", "collar: wide",
                          "symbols[2].collar", "wide",
                          "a dollar band such as 0.50 or a percentage"),
    "collar rounds to zero": ("  - symbol: NEW\n", "  - symbol: NEW\n    reference_price: 0.0001\n",
                              "symbols[3].collar", "collar: 5%", "rounds down to a zero band"),
    "duplicate symbol": ("symbol: NEW", "symbol: AAPL  # again", "symbols[3].symbol", "# again",
                         "duplicate symbol 'AAPL' (also symbols[0], line 30)"),
    "symbol too long": ("symbol: NEW", "symbol: NEWSYMBOL",
                        "symbols[3].symbol", "NEWSYMBOL",
                        "is 9 characters; OUCH symbols are 1 to 8"),
    "symbol with a space": ("symbol: NEW", 'symbol: "N W"',
                            "symbols[3].symbol", "N W", "only printable ASCII"),
    "symbol not ASCII": ("symbol: NEW", "symbol: NÉW",
                         "symbols[3].symbol", "NÉW", "only printable ASCII"),
    "same 4-tuple": ("client: 10.1.0.2:40002", "client: 10.1.0.1:40001  # copy",
                     "sessions[1].client", "# copy",
                     "same 4-tuple as sessions[0] (line 13)"),
    "same client, other exchange": (
        "client: 10.1.0.2:40002\n    exchange: 10.2.0.1:15000",
        "client: 10.1.0.1:40001  # copy\n    exchange: 10.2.0.9:15000",
        "sessions[1].client", "# copy",
        "same client endpoint as sessions[0] (line 13)"),
    "duplicate session name": ("name: desk-b", "name: desk-a  # copy", "sessions[1].name",
                               "# copy", "duplicate session name 'desk-a'"),
    "bad IP": ("10.1.0.2:40002", "10.1.0.256:40002",
               "sessions[1].client", "10.1.0.256", "bad IPv4 address"),
    "multicast IP": ("10.1.0.2:40002", "224.0.0.1:40002",
                     "sessions[1].client", "224.0.0.1", "not a unicast host address"),
    "bad port": ("10.1.0.2:40002", "10.1.0.2:70000",
                 "sessions[1].client", "70000", "bad port"),
    "no port": ("10.1.0.2:40002", "10.1.0.2",
                "sessions[1].client", "client: 10.1.0.2", "expected IP:port"),
}


@pytest.mark.parametrize("case", ONE_PROBLEM.values(), ids=ONE_PROBLEM.keys())
def test_one_problem_is_located(case):
    old, new, field, marker, message = case
    text = mutate(VALID, old, new)
    assert text.count(marker) == 1
    line = text[:text.index(marker)].count("\n") + 1
    problems = problems_of(text)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.file, problem.line, problem.field) == ("t.yaml", line, field)
    assert message in problem.message
    assert str(problem) == f"t.yaml:{line}: {field}: {problem.message}"


def test_missing_default_is_reported_for_every_symbol_that_needs_it():
    text = mutate(VALID, "  max_short: 2_000\n", "")
    problems = problems_of(text)
    # GME gives its own max_short; the three others relied on defaults.
    assert [(p.line, p.field) for p in problems] == [
        (line_of(text, "symbol: AAPL"), "symbols[0].max_short"),
        (line_of(text, "symbol: ON"), "symbols[2].max_short"),
        (line_of(text, "symbol: NEW"), "symbols[3].max_short"),
    ]
    assert all("give it here or in defaults" in p.message for p in problems)


def test_bad_default_is_reported_once_at_its_line():
    text = mutate(VALID, "  max_long: 5_000\n", "  max_long: many\n")
    problems = problems_of(text)
    assert [(p.line, p.field) for p in problems] == [(line_of(text, "many"), "defaults.max_long")]


def test_too_many_sessions_for_the_table():
    check_single_problem(VALID, "sessions", "sessions:",
                         "2 sessions, but the gateway's session table holds 1", max_sessions=1)


def test_too_many_symbols_for_the_table():
    check_single_problem(VALID, "symbols", "symbols:",
                         "4 symbols, but the gateway's symbol table holds 3", max_symbols=3)
    assert parse_limits(VALID, max_sessions=2, max_symbols=4) == VALID_LIMITS


def test_empty_lists():
    text = VALID[:VALID.index("symbols:")] + "symbols: []\n"
    check_single_problem(text, "symbols", "symbols:", "needs at least one symbol")


def test_yaml_syntax_error_is_located():
    text = mutate(VALID, "    max_long: 0\n", "\tmax_long: 0\n")
    problems = problems_of(text)
    assert len(problems) == 1
    assert (problems[0].line, problems[0].field) == (line_of(text, "\tmax_long"), "")
    assert problems[0].message.startswith("YAML syntax error: found character '\\t'")
    assert str(problems[0]) == f"t.yaml:{problems[0].line}: {problems[0].message}"


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("- gateway\n", "expected a mapping of keys, got a list"),
])
def test_file_that_is_no_mapping(text, message):
    assert [(p.line, p.field, p.message) for p in problems_of(text)] == [(1, "", message)]


def test_missing_file_is_a_problem_not_a_traceback(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(LimitsError) as info:
        load_limits(path)
    assert info.value.problems == [
        Problem(str(path), 0, "", "cannot read file: No such file or directory")]
    assert str(info.value) == f"{path}: cannot read file: No such file or directory"


def test_non_utf8_file_is_located(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"gateway:\n  credit: 1\nsymbols:\n  - symbol: CAF\xc9\n")
    with pytest.raises(LimitsError) as info:
        load_limits(path)
    assert [(p.line, p.message) for p in info.value.problems] == [(4, "not UTF-8 text")]


def test_every_problem_is_reported_at_once_in_line_order():
    text = mutate(VALID, "heartbeat_timeout: 250ms", "heartbeat_timeout: soon")
    text = mutate(text, "max_order_quantity: 999_999", "max_order_quantity: 1_000_000")
    text = mutate(text, "symbol: NEW", "symbol: AAPL")
    text = mutate(text, "    max_long: 0\n", "    max_lnog: 0\n")
    problems = problems_of(text)
    assert [(p.line, p.field) for p in problems] == [
        (line_of(text, "soon"), "gateway.heartbeat_timeout"),
        (line_of(text, "max_order_quantity: 1_000_000"), "sessions[0].max_order_quantity"),
        (line_of(text, "max_lnog"), "symbols[1].max_lnog"),
        (len(text.splitlines()), "symbols[3].symbol"),   # the renamed last symbol
    ]


def test_problem_reads_like_a_compiler_error():
    assert str(Problem("a.yaml", 3, "symbols[0].max_long", "bad")) == \
        "a.yaml:3: symbols[0].max_long: bad"
    assert str(Problem("a.yaml", 7, "", "YAML syntax error: x")) == "a.yaml:7: YAML syntax error: x"
    assert str(Problem("a.yaml", 0, "", "cannot read file")) == "a.yaml: cannot read file"


# -- the example file ------------------------------------------------------------------------

def test_default_file_is_the_documented_example():
    limits = load_limits(DEFAULT_FILE)
    assert len(limits.sessions) == 4
    assert {s.exchange for s in limits.sessions} == {Endpoint(ipv4(10, 2, 0, 1), 15000)}
    assert [s.client.ip for s in limits.sessions] == [ipv4(10, 1, 0, n) for n in (1, 2, 3, 4)]
    assert 18 <= len(limits.symbols) <= 24
    assert [s.symbol for s in limits.symbols if s.restricted] == ["X", "SIRI"]
    by_symbol = {s.symbol: s for s in limits.symbols}
    # AAPL: $228.50 with a 3% collar = 2,285,000 x 0.03 = 68,550.
    assert (by_symbol["AAPL"].reference_price, by_symbol["AAPL"].collar) == (2_285_000, 68_550)
    # INTC: an absolute $0.75 band.
    assert by_symbol["INTC"].collar == 7_500
    # AMD takes every limit from defaults: 5% of 1,523,000 = 76,150.
    assert by_symbol["AMD"] == SymbolLimits(
        index=by_symbol["AMD"].index, symbol="AMD", reference_price=1_523_000, collar=76_150,
        max_order_quantity=10_000, max_order_notional=10_000_000_000, max_long=100_000,
        max_short=50_000, restricted=False)
    assert "ON" in by_symbol
    assert limits.gateway == GatewayLimits(credit=500_000_000_000,
                                           heartbeat_timeout_us=1_000_000,
                                           reference_max_age_us=60_000_000)


# -- the command line ------------------------------------------------------------------------

def test_cli_check_default_file(capsys):
    assert main(["limits", "check", str(DEFAULT_FILE)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "sessions: 4\n" in out
    assert "symbols: 21 (2 restricted)\n" in out
    assert "gateway credit: $50,000,000.00\n" in out


def test_cli_script_in_a_subprocess():
    script = Path(sys.executable).with_name("wiregate")
    result = subprocess.run([str(script), "limits", "check", str(DEFAULT_FILE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{DEFAULT_FILE}: ok\n")


def test_cli_broken_file_lists_every_located_problem(capsys):
    name = str(BROKEN_FILE)
    assert main(["limits", "check", name]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{name}:4: gateway.heartbeat_timeout: expected a duration with a unit (s, ms, us) "
        "such as 500ms, got '1'",
        f"{name}:10: sessions[0].max_order_quantity: 1,000,000 is above the OUCH maximum "
        "quantity (999,999)",
        f"{name}:15: sessions[1].client: same 4-tuple as sessions[0] (line 8): sessions overlap",
        f"{name}:23: symbols[0].reference_price: '228.50505' has 5 decimals; dollar amounts "
        "carry at most 4 ($0.0001, the OUCH price unit)",
        f"{name}:28: symbols[0].max_short: must not be negative, got -1",
        f"{name}:29: symbols[1].collar: missing required key (give it here or in defaults)",
        f"{name}:29: symbols[1].symbol: duplicate symbol 'AAPL' (also symbols[0], line 22)",
        f"{name}:30: symbols[1].colar: unknown key 'colar'; did you mean 'collar'?",
        f"{name}: 8 problems; nothing may be pushed",
    ]


def test_cli_broken_copy_of_default_exits_nonzero(tmp_path, capsys):
    text = DEFAULT_FILE.read_text()
    text = mutate(text, "client: 10.1.0.3:40001", "client: 10.1.0.3:99999")
    broken = tmp_path / "default.yaml"
    broken.write_text(text)
    assert main(["limits", "check", str(broken)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"{broken}:{line_of(text, '99999')}: sessions[2].client: "
                      "bad port in '10.1.0.3:99999': must be 1 to 65535")
    assert len(err) == 2


def test_cli_table_sizes(capsys):
    assert main(["limits", "check", "--max-sessions", "3", str(DEFAULT_FILE)]) == 1
    err = capsys.readouterr().err
    line = line_of(DEFAULT_FILE.read_text(), "sessions:")
    assert f"{DEFAULT_FILE}:{line}: sessions: 4 sessions, but the gateway's session table " \
           "holds 3\n" in err
    assert main(["limits", "check", "--max-sessions", "4", "--max-symbols", "21",
                 str(DEFAULT_FILE)]) == 0


@pytest.mark.parametrize(("content", "expected"), [
    (None, r"^{f}: cannot read file: No such file or directory$"),
    ("gateway: [\n", r"^{f}:2: YAML syntax error: "),
])
def test_cli_unreadable_or_unparseable_file_is_located(tmp_path, capsys, content, expected):
    path = tmp_path / "x.yaml"
    if content is not None:
        path.write_text(content)
    assert main(["limits", "check", str(path)]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert re.match(expected.format(f=re.escape(str(path))), first), first


# -- the documentation -----------------------------------------------------------------------

def test_schema_lists_the_keys_the_loader_reads():
    paths = schema_paths()
    # Spot checks against the data classes, so an empty schema cannot pass the doc test.
    for path in ("gateway.credit", "gateway.heartbeat_timeout", "gateway.reference_max_age",
                 "sessions[].client", "sessions[].rate.refill", "symbols[].collar",
                 "symbols[].max_short", "defaults.collar", "defaults.restricted"):
        assert path in paths
    assert len(paths) == len(set(paths)) == 31


def test_docs_mention_every_key():
    docs = DOCS_FILE.read_text()
    missing = [path for path in schema_paths() if f"`{path}`" not in docs]
    assert missing == []


def test_cli_checks_against_the_default_gateway_tables(tmp_path, capsys):
    # Nine sessions do not fit the default build's eight: located, before anything is pushed.
    from wiregate.sw.regmap import RegisterMap
    text = Path("limits/default.yaml").read_text()
    sessions = "".join(
        f"  - name: extra-{k}\n    client: 10.1.1.{k + 1}:40001\n    exchange: 10.2.0.1:15000\n"
        "    max_order_quantity: 10\n    max_order_notional: 10.00\n    credit: 10.00\n"
        "    rate: {burst: 1, refill: 1ms, trip_after: 0}\n"
        for k in range(RegisterMap().n_sessions + 1 - 4))
    path = tmp_path / "many.yaml"
    path.write_text(text.replace("sessions:\n", "sessions:\n" + sessions, 1))
    assert main(["limits", "check", str(path)]) == 1
    assert f"table holds {RegisterMap().n_sessions}" in capsys.readouterr().err


# -- against a build profile -----------------------------------------------------------------

SIX_DESKS_FILE = ROOT / "tests" / "data" / "limits" / "six-desks.yaml"


@pytest.mark.parametrize(("name", "part", "sizes"), [
    ("colorlight-5a75b", "LFE5U-25F", "4 sessions, 256 symbols in 512 hash slots"),
    ("versa-ecp5", "LFE5UM5G-45F", "8 sessions, 512 symbols in 1024 hash slots"),
    ("full", "LFE5UM5G-85F", "8 sessions, 1024 symbols in 2048 hash slots")])
def test_cli_default_file_fits_every_profile(capsys, name, part, sizes):
    # 4 sessions and 21 symbols: within even the 25F build.
    assert main(["limits", "check", "--profile", name, str(DEFAULT_FILE)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.endswith(f"\n  checked against: profile {name} ({part}): {sizes}\n")


def test_cli_file_too_large_for_a_profile_names_the_ones_it_fits(capsys):
    name = str(SIX_DESKS_FILE)
    text = SIX_DESKS_FILE.read_text()
    assert main(["limits", "check", "--profile", "colorlight-5a75b", name]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{name}:{line_of(text, 'sessions:')}: sessions: 6 sessions, but the gateway's "
        "session table holds 4",
        f"{name}:{line_of(text, 'symbols:')}: symbols: 300 symbols, but the gateway's symbol "
        "table holds 256",
        f"{name}: 2 problems; nothing may be pushed",
        f"{name}: 6 sessions and 300 symbols do not fit profile colorlight-5a75b (4 sessions, "
        "256 symbols); they fit versa-ecp5, full",
    ]
    assert main(["limits", "check", "--profile", "versa-ecp5", name]) == 0
    assert "sessions: 6\n  symbols: 300 (0 restricted)\n" in capsys.readouterr().out


def test_cli_symbol_hash_table_of_the_profile(capsys):
    # A build whose hash table has fewer slots than the file has symbols cannot place them:
    # the first symbol left over is named by its field.
    tiny = dataclasses.replace(PROFILES["colorlight-5a75b"], name="tiny", symbol_slots=16)
    args = argparse.Namespace(file=str(DEFAULT_FILE), profile=tiny, max_sessions=None,
                              max_symbols=None)
    assert limits_cmd.check_command(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert re.fullmatch(rf"{re.escape(str(DEFAULT_FILE))}: symbols\[(\d+)\]\.symbol: symbol "
                        r"table full: cannot place '\S+' \(symbol \d+ of 21\) in 16 slots .*",
                        err[0]), err[0]
    assert err[1:] == [f"{DEFAULT_FILE}: 1 problem; nothing may be pushed",
                       f"{DEFAULT_FILE}: 4 sessions and 21 symbols do not fit profile tiny (4 "
                       "sessions, 256 symbols); they fit colorlight-5a75b, versa-ecp5, full"]


def test_cli_profile_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["limits", "check", "--profile", "colorlight", str(DEFAULT_FILE)])
    assert info.value.code == 2
    assert ("unknown profile 'colorlight'; known profiles: colorlight-5a75b, versa-ecp5, full"
            in capsys.readouterr().err)
    assert main(["limits", "check", "--profile", "full", "--max-sessions", "3",
                 str(DEFAULT_FILE)]) == 2
    assert "--profile gives the table sizes" in capsys.readouterr().err
