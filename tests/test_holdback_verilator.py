"""The holdback bench under Verilator (cocotb), at both widths and every delay tested."""

import pytest

from wiregate.hw.egress.holdback import Holdback
from wiregate.sim.runner import run_bench


@pytest.mark.verilator
@pytest.mark.parametrize("width", [1, 8])
@pytest.mark.parametrize("delay", [0, 1, 7, 8, 27, 64])
def test_holdback(width, delay, record_property):
    tests, failed = run_bench(Holdback(width, delay), "holdback",
                              {"width": width, "delay": delay},
                              "wiregate.sim.holdback.test_holdback")
    record_property("cocotb_tests", tests - failed)
    assert (tests, failed) == (2, 0)
