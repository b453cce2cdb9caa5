"""The system bench of the whole core (:class:`wiregate.hw.core.Core`) under Verilator."""

from wiregate.hw.core import Core, core_holdback
from wiregate.sim.trading import Sizes
from wiregate.sw.regmap import RegisterMap

__all__ = ["DROPCOPY_DEPTH", "SIZES", "SYMBOL_SLOTS", "core_for", "regmap_for"]

# The table sizes of the trading day (sim.trading) and of the core under test, and the
# drop-copy queue (records) with its marks (model rule 11): the core's default marks, three
# quarters and a quarter of the queue.
DROPCOPY_DEPTH = 64
SIZES = Sizes(backlog_high=48, backlog_low=16)
SYMBOL_SLOTS = 64


def regmap_for(width: int) -> RegisterMap:
    """The register map of the core under test at ``width`` bytes per beat."""
    return RegisterMap(n_sessions=SIZES.n_sessions, n_symbols=SIZES.n_symbols,
                       symbol_slots=SYMBOL_SLOTS, n_orders=SIZES.n_orders, beat_bytes=width,
                       holdback=core_holdback(width))


def core_for(width: int) -> Core:
    """The core under test at ``width`` bytes per beat."""
    return Core(width, regmap_for(width), n_executions=SIZES.n_executions,
                dropcopy_depth=DROPCOPY_DEPTH, backlog_high=SIZES.backlog_high,
                backlog_low=SIZES.backlog_low)
