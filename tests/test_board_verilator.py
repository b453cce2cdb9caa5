"""The board shell bench under Verilator (cocotb): LiteEth MACs over RGMII, receive FIFOs,
the pass-through core; the saturated burst with the far ends' clocks ±100 ppm off; and the
shell with the gateway core and the UART control bridge."""

import pytest

from wiregate.hw.board.shell import RX_FIFO_DEPTH
from wiregate.hw.gateway import Gateway
from wiregate.sim.board.bench_top import BoardBench, bench_sources
from wiregate.sim.board.gateway_regmap import bench_regmap
from wiregate.sim.runner import run_bench

# The burst: 200 frames of 1514 bytes, 0.31 MB on the wire: at 100 ppm the far end gains 31
# bytes on the core clock, visibly above the FIFO's resting fill.
BURST = 200
# The bitstream's receive FIFO depths.
FIFO_DEPTH = RX_FIFO_DEPTH["pass-through"]
GATEWAY_FIFO_DEPTH = RX_FIFO_DEPTH["gateway"]


def _run(tests: str, env: dict) -> tuple[int, int]:
    return run_bench(BoardBench(FIFO_DEPTH), "board_bench", {"fifo": FIFO_DEPTH},
                     "wiregate.sim.board.test_board",
                     extra_env={"COCOTB_TEST_FILTER": tests, **env},
                     extra_sources=bench_sources(), timescale=("1ps", "1fs"))


# The runs share one Verilator build and its results file, so they run one after the other
# in one test (under xdist two tests would build into the same folder at once).
RUNS = [
    ("frames_both_ways|bad_fcs_is_stomped|back_to_back_minimum_frames", {}, 3),
    ("saturated_burst", {"WG_PPM": "100", "WG_BURST": str(BURST)}, 1),
    ("saturated_burst", {"WG_PPM": "-100", "WG_BURST": str(BURST)}, 1),
]


@pytest.mark.verilator
def test_board(record_property):
    passed = 0
    for tests, env, expected in RUNS:
        result = _run(tests, env)
        assert result == (expected, 0), f"{tests} {env}: (tests, failed) = {result}"
        passed += expected
    record_property("cocotb_tests", passed)


@pytest.mark.verilator
def test_board_gateway(record_property):
    bench = BoardBench(GATEWAY_FIFO_DEPTH, core=Gateway(1, bench_regmap()))
    result = run_bench(bench, "board_gateway", {"fifo": GATEWAY_FIFO_DEPTH},
                       "wiregate.sim.board.test_gateway", extra_sources=bench_sources(),
                       timescale=("1ps", "1fs"))
    assert result == (2, 0), f"(tests, failed) = {result}"
    record_property("cocotb_tests", result[0])
