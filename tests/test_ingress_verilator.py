"""The ingress bench under Verilator (cocotb): both widths, both directions."""

import os

import pytest

from wiregate.hw.ingress.ingress import Ingress
from wiregate.sim.runner import run_bench
from wiregate.sw.regmap import RegisterMap

# OUCH messages per random test: 20,000 per width and direction in `make test`; `make bench`
# sets WG_BENCH_MESSAGES for a longer run.
MESSAGES = int(os.environ.get("WG_BENCH_MESSAGES", "20000"))


@pytest.mark.verilator
@pytest.mark.parametrize("direction", ["client", "exchange"])
@pytest.mark.parametrize("width", [1, 8])
def test_ingress(width, direction, record_property):
    dut = Ingress(width, RegisterMap(), toward_exchange=direction == "client")
    tests, failed = run_bench(dut, "ingress", {"width": width, "direction": direction},
                              "wiregate.sim.ingress.test_ingress",
                              extra_env={"WG_MESSAGES": str(MESSAGES)})
    record_property("cocotb_tests", tests - failed)
    assert (tests, failed) == (3, 0)
