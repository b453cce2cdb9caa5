"""The core bench under Verilator (cocotb): the whole gateway against the model, both widths.

The random day races a share of its host actions with the traffic (``WG_RACE``, see
:mod:`wiregate.sim.core.plan`). Each cocotb test runs in its own simulator process
(``COCOTB_TEST_FILTER``): a reset does not clear the core's block RAM, and every test starts
from a fresh model.
"""

import os

import pytest

from wiregate.sim.core import bench_profile, core_for
from wiregate.sim.runner import run_bench
from wiregate.sw.profiles import PROFILES

# Client OUCH messages of the random day: 20,000 per width in `make test`; `make bench` sets
# WG_BENCH_MESSAGES for a longer run.
MESSAGES = int(os.environ.get("WG_BENCH_MESSAGES", "20000"))
TESTS = ("random_day", "line_rate", "every_reason_fires", "burst")
# The builds under test: at each width the smallest profile built for it in `make test`;
# every profile at each of its widths when WG_BENCH_PROFILES=all (`make bench`).
BUILDS = ([(p.name, w) for p in PROFILES.values() for w in p.widths]
          if os.environ.get("WG_BENCH_PROFILES") == "all"
          else [(bench_profile(w).name, w) for w in (1, 8)])


@pytest.mark.verilator
@pytest.mark.parametrize(("profile", "width"), BUILDS)
def test_core(profile, width, record_property, monkeypatch):
    # The model's evaluation code is compiled with -O1 (the wheel's default -Os takes four
    # times as long to build; -O0 runs twenty times slower); the rest stays at -O0.
    monkeypatch.setenv("MAKEFLAGS", f"{os.environ.get('MAKEFLAGS', '')} OPT_FAST=-O1".strip())
    monkeypatch.setenv("WG_PROFILE", profile)   # core_for's sizes; run_bench passes it on
    passed = 0
    for name in TESTS:
        tests, failed = run_bench(core_for(width), "core", {"width": width, "profile": profile},
                                  "wiregate.sim.core.test_core",
                                  extra_env={"WG_MESSAGES": str(MESSAGES), "WG_RACE": "1",
                                             "COCOTB_TEST_FILTER": rf"\.{name}$"})
        assert (tests, failed) == (1, 0), f"{name} at W={width}"
        passed += tests - failed
    record_property("cocotb_tests", passed)
