"""The compiled harness (wiregate.sim.fast) against the model, and against the cocotb bench.

The replay test plays the cocotb bench's random day through the harness: every drop-copy
record through the model, every frame byte for byte, the counters and the final state (any
difference raises). The agreement test runs the cocotb bench and the harness on one seed:
the same frames must leave the core on both ports, the same records in the drop copy, in the
same cycles.
"""

import os
import pickle

import pytest

from wiregate.sim.core import bench_profile, core_for
from wiregate.sim.fast import random_day
from wiregate.sim.fast.build import top_ports
from wiregate.sim.runner import run_bench

MESSAGES = int(os.environ.get("WG_FAST_MESSAGES", "3000"))
AGREE_MESSAGES = 600        # the cocotb side runs at a few hundred messages a second


def test_top_ports_from_verilog():
    verilog = ("module other(a);\n  input [7:0] a;\nendmodule\n"
               "module core(clk, x__payload, y);\n  input clk;\n  wire w;\n"
               "  input [95:0] x__payload;\n  output [3:0] y;\n  reg [3:0] r;\nendmodule\n")
    ports = top_ports(verilog, "core")
    assert [(p.name, p.width, p.output, p.nbytes) for p in ports] == [
        ("clk", 1, False, 1), ("x__payload", 96, False, 12), ("y", 4, True, 1)]


@pytest.mark.verilator
@pytest.mark.parametrize("width", [1, 8])
def test_fast_random_day(width):
    bench, figures = random_day(width, MESSAGES, seed=1000 + width)
    replay = bench.board.replay
    assert figures["messages"] >= MESSAGES
    assert replay.kinds["VERDICT"] >= MESSAGES // 2 and replay.accepted and replay.rejected
    assert not any(replay.waiting.values())


@pytest.mark.verilator
@pytest.mark.parametrize("width", [1, 8])
def test_fast_agrees_with_cocotb(width, tmp_path, monkeypatch):
    seed = 77 + width
    dump = tmp_path / "cocotb.pickle"
    monkeypatch.setenv("MAKEFLAGS", f"{os.environ.get('MAKEFLAGS', '')} OPT_FAST=-O1".strip())
    # The build the core bench and the harness use (the same folder, built once).
    params = {"width": width, "profile": bench_profile(width).name}
    tests, failed = run_bench(core_for(width), "core", params,
                              "wiregate.sim.core.test_core",
                              extra_env={"WG_MESSAGES": str(AGREE_MESSAGES),
                                         "WG_SEED": str(seed), "WG_DUMP": str(dump),
                                         "COCOTB_TEST_FILTER": r"\.random_day$"})
    assert (tests, failed) == (1, 0)
    with open(dump, "rb") as f:
        cocotb = pickle.load(f)
    bench, _ = random_day(width, AGREE_MESSAGES, seed)
    fast = bench.outcome()
    assert len(fast["records"]) == len(cocotb["records"]) > AGREE_MESSAGES // 2
    for key in ("egress", "client_tx", "client_starts", "egress_starts"):
        assert fast[key] == cocotb[key], f"W={width} seed {seed}: {key} differ"
    # Every field, ``queued`` too: both benches pace the drop-copy host by the same hash of
    # the same cycle numbers, so they read each record in the same cycle.
    assert fast["records"] == cocotb["records"], f"W={width} seed {seed}: records differ"
