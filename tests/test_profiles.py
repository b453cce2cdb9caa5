"""Build profiles: the register maps they build, the ID block, and the fit rule by hand."""

import dataclasses
import gc
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

from wiregate.hw.core import Core, core_holdback
from wiregate.sw import profiles
from wiregate.sw.profiles import PARTS, PROFILES, SHELL_DP16KD, SHELL_LUT4, by_id, profile
from wiregate.sw.regmap import RegisterMap

CASES = [(p, w) for p in PROFILES.values() for w in p.widths]


@pytest.mark.parametrize(("chosen", "width"), CASES, ids=lambda c: getattr(c, "name", c))
def test_profile_builds_its_register_map(chosen, width):
    regmap = chosen.regmap(width, core_holdback(width))
    assert regmap.parameters == {
        "n_sessions": chosen.n_sessions, "n_symbols": chosen.n_symbols,
        "symbol_slots": chosen.symbol_slots, "n_orders": chosen.n_orders,
        "beat_bytes": width, "holdback": core_holdback(width),
        "n_pass_rules": chosen.n_pass_rules, "n_executions": chosen.n_executions,
        "dropcopy_depth": chosen.dropcopy_depth, "n_verdicts": chosen.n_verdicts,
        "profile": chosen.id}
    # The host reads the ID block, rebuilds the same map and finds the profile by its id.
    observed = regmap.expected_id()
    assert observed["param_profile"] == chosen.id
    host = RegisterMap.from_id(observed)
    assert host.layout_crc == regmap.layout_crc
    assert by_id(host.profile) is chosen
    # The core takes every size from the map (the engine checks the powers of two).
    core = Core(width, regmap)
    assert core.width == width
    del core
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()


def test_profiles_meet_the_issue_sizes():
    # Issue 12, decision 1: the least sizes per profile, on the named parts.
    floors = {"colorlight-5a75b": ("LFE5U-25F", 4, 256, 256, {1}),
              "versa-ecp5": ("LFE5UM5G-45F", 8, 512, 256, {1}),
              "full": ("LFE5UM5G-85F", 8, 1024, 256, {1, 8})}
    assert set(floors) <= set(PROFILES)
    for name, (part, sessions, symbols, orders, widths) in floors.items():
        p = PROFILES[name]
        assert p.part.name == part, name
        assert p.n_sessions >= sessions and p.n_symbols >= symbols, name
        assert p.n_orders >= orders and set(p.widths) == widths, name
    # full is today's default build.
    full = RegisterMap().parameters
    assert {k: full[k] for k in PROFILES["full"].sizes()} == PROFILES["full"].sizes()


def test_parts_by_hand():
    # Slowest speed grades: -6 for the ECP5, -8 (the only one) for the ECP5-5G.
    assert [(p.name, p.device, p.speed) for p in PARTS.values()] == [
        ("LFE5U-25F", "--25k", 6), ("LFE5UM5G-45F", "--um5g-45k", 8),
        ("LFE5UM5G-85F", "--um5g-85k", 8)]


def test_names_and_ids_unique():
    names = [p.name for p in PROFILES.values()]
    ids = [p.id for p in PROFILES.values()]
    assert len(set(names)) == len(names) and len(set(ids)) == len(ids)
    assert 0 not in ids
    twin = dataclasses.replace(PROFILES["full"], name="other")
    with pytest.raises(ValueError, match=r"'other' \(id 3\): name or id declared twice"):
        profiles._index([PROFILES["full"], twin])


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        profile("colorlight")
    assert str(info.value) == ("unknown profile 'colorlight'; known profiles: "
                               "colorlight-5a75b, versa-ecp5, full")
    assert profile("versa-ecp5") is PROFILES["versa-ecp5"]


def test_by_id():
    assert by_id(0) is None
    assert by_id(2) is PROFILES["versa-ecp5"]
    with pytest.raises(ValueError, match="profile id 99, which this host does not know "
                                         r"\(known: colorlight-5a75b = 1, versa-ecp5 = 2"):
        by_id(99)


def test_width_outside_the_profile_refused():
    with pytest.raises(ValueError, match="profile colorlight-5a75b is built for W = 1, not 8"):
        PROFILES["colorlight-5a75b"].regmap(8, 119)


def test_fit_rule_by_hand():
    colorlight = PROFILES["colorlight-5a75b"]
    # 85 % of the 25F's 24,288 LUT4 is 20,644.8: 20,644 positions for core and shell.
    assert colorlight.lut4_limit() == 20_644
    assert (SHELL_LUT4, SHELL_DP16KD) == (4_800, 2)
    # 11,250 LUT4 + 2 x 2,297 CCU2C = 15,844 LUT4-eq; with the shell 20,644: fits, just.
    # 54 DP16KD and the shell's 2 are the part's 56.
    edge = {"LUT4": 11_250, "CCU2C": 2_297, "TRELLIS_FF": 24_288, "DP16KD": 54,
            "MULT18X18D": 28}
    fit = colorlight.fit(edge)
    assert fit.fits and fit.over() == []
    assert fit.rows[0] == ("LUT4-eq", 15_844, 20_644, 20_644)
    assert fit.rows[1] == ("DP16KD", 54, 56, 56)
    # One more LUT4, or a distributed RAM (six positions), or one more of any block: out.
    for more, over in [({"LUT4": 11_251}, "LUT4-eq"), ({"TRELLIS_DPR16X4": 1}, "LUT4-eq"),
                       ({"DP16KD": 55}, "DP16KD"), ({"MULT18X18D": 29}, "MULT18X18D"),
                       ({"TRELLIS_FF": 24_289}, "TRELLIS_FF")]:
        fit = colorlight.fit(edge | more)
        assert not fit.fits and fit.over() == [over], more
    # The measured 4 / 256 / 64 core (AREA-AUDIT: 33,802 LUT4, 3,906 CCU2C, 62 distributed
    # RAMs = 41,986 LUT4-eq, 26,592 FF, 114 DP16KD) fits neither the 25F nor the 45F.
    small = {"LUT4": 33_802, "CCU2C": 3_906, "TRELLIS_DPR16X4": 62, "TRELLIS_FF": 26_592,
             "DP16KD": 114, "MULT18X18D": 0}
    assert colorlight.fit(small).rows[0][1] == 41_986
    assert colorlight.fit(small).over() == ["LUT4-eq", "DP16KD", "TRELLIS_FF"]
    # On the 45F: 43,848 x 0.85 = 37,270.8; 41,986 + 4,800 = 46,786 is over, 116 > 108 too.
    assert PROFILES["versa-ecp5"].fit(small).over() == ["LUT4-eq", "DP16KD"]
    # The versa-ecp5 core of 6 December 2026 (35,828 LUT4-eq, 106 DP16KD): with the shell
    # 40,628 LUT4-eq, over; 108 DP16KD, the part's.
    versa = {"LUT4": 28_596, "CCU2C": 2_674, "TRELLIS_DPR16X4": 314, "TRELLIS_FF": 24_657,
             "DP16KD": 106, "MULT18X18D": 12}
    assert PROFILES["versa-ecp5"].fit(versa).rows[:2] == (
        ("LUT4-eq", 35_828, 40_628, 37_270), ("DP16KD", 106, 108, 108))
    assert PROFILES["versa-ecp5"].fit(versa).over() == ["LUT4-eq"]
    # On the 85F: 83,640 x 0.85 = 71,094 exactly.
    assert PROFILES["full"].lut4_limit() == 71_094
    assert PROFILES["full"].fit(small).fits
