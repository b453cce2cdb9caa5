"""The system bench of the whole core (:class:`wiregate.hw.core.Core`) under Verilator."""

import os

from wiregate.hw.core import Core, core_holdback
from wiregate.sim.trading import Sizes
from wiregate.sw.profiles import PROFILES, Profile, profile
from wiregate.sw.regmap import RegisterMap

__all__ = ["bench_profile", "core_for", "regmap_for", "sizes_for"]


def bench_profile(width: int) -> Profile:
    """The build profile of the core under test at ``width`` bytes per beat.

    ``WG_PROFILE`` names it (the runner passes it to the bench); otherwise the profile of the
    smallest part built for ``width``.
    """
    name = os.environ.get("WG_PROFILE")
    if name:
        return profile(name)
    return min((p for p in PROFILES.values() if width in p.widths), key=lambda p: p.part.lut4)


def sizes_for(width: int) -> Sizes:
    """The table sizes of the trading day and of the model, the core under test's."""
    return Sizes.of(bench_profile(width))


def regmap_for(width: int) -> RegisterMap:
    """The register map of the core under test at ``width`` bytes per beat."""
    return bench_profile(width).regmap(width, core_holdback(width))


def core_for(width: int) -> Core:
    """The core under test at ``width`` bytes per beat."""
    return Core(width, regmap_for(width))
