"""A check's tighten: the limits in effect with one limit lowered, never raised."""

from pathlib import Path

import pytest

from wiregate.sw.daemon.service import tightened
from wiregate.sw.limits import load_limits

LIMITS = load_limits(Path(__file__).resolve().parent.parent / "limits" / "default.yaml")


def test_a_symbol_a_session_and_the_gateway_tightened_in_order():
    got = tightened(LIMITS, [("AAPL", "max_order_quantity", 100),
                             ("retail-flow", "credit", 1_000_000),
                             (None, "credit", 5),
                             ("AAPL", "max_order_quantity", 50)])
    assert got.symbols[0].max_order_quantity == 50
    assert got.sessions[3].credit == 1_000_000 and got.gateway.credit == 5
    # Nothing else moved.
    assert got.symbols[1:] == LIMITS.symbols[1:] and got.sessions[:3] == LIMITS.sessions[:3]
    assert got.symbols[0].collar == LIMITS.symbols[0].collar


@pytest.mark.parametrize("change,message", [
    (("AAPL", "max_order_quantity", 10_000_000), "never loosens"),
    (("AAPL", "restricted", 0), "cannot be tightened"),
    (("ZZZZ", "max_long", 1), "no session or symbol"),
    ((None, "heartbeat_timeout_us", 1), "cannot be tightened"),
])
def test_what_a_tighten_refuses(change, message):
    with pytest.raises(ValueError, match=message):
        tightened(LIMITS, [change])
