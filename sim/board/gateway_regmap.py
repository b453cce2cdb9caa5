"""The register map of the board bench's gateway: sizes small enough for a quick Verilator
build (the profile's full tables take far longer to compile and change nothing the bench
checks on the board's paths)."""

from wiregate.hw.core import core_holdback
from wiregate.sim.control_server import SMALL
from wiregate.sw.regmap import RegisterMap

__all__ = ["bench_regmap"]


def bench_regmap() -> RegisterMap:
    """:data:`~wiregate.sim.control_server.SMALL` with small execution and drop-copy tables."""
    return RegisterMap(**SMALL, n_executions=16, dropcopy_depth=16, holdback=core_holdback(1))
