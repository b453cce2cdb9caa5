"""Build profiles: the sizes a gateway is built with, per FPGA part, declared once.

A profile names a part and every size the build takes: the register map's table sizes,
the engine's remembered executions and the drop-copy queue depth. The gateware, the host's
limit check (``wiregate limits check --profile NAME``) and the synthesis report
(``python -m wiregate.sim.synth core --profile NAME``) all take the sizes from here, and the
ID block reports the profile's id (``param_profile``), so a host knows what it talks to.

A profile *fits* its part when the core plus the allowance for the rest of the board build
(:data:`SHELL_LUT4`, :data:`SHELL_DP16KD`) uses at most 85 % of the part's
LUT4-equivalents and at most its block RAM (DP16KD), and the core uses at most the part's
multipliers (MULT18X18D) and flip-flops (one per LUT4 position). LUT4-equivalents count a
carry cell (CCU2C) as the two LUT4s of its slice and a distributed RAM (TRELLIS_DPR16X4) as
six.
"""

from dataclasses import dataclass

from wiregate.sw.regmap import RegisterMap

__all__ = ["PARTS", "PROFILES", "SHELL_DP16KD", "SHELL_LUT4", "Fit", "Part", "Profile", "by_id",
           "lut4_equivalents", "profile"]

# What a gateway's board build holds besides the core, measured (classic ABC, LUT4s only,
# as the rule counts the core) on the versa-ecp5 build of 6 December 2026: 40,609 LUT4-eq
# and 108 DP16KD in all, against the core's 35,828 and 106 synthesized alone. Of it: the
# control port (deframer, executor, outbound mux, framer) 2,156 LUT4-eq and its frame
# buffer, 1 DP16KD; the UART bridge 229 and its receive FIFO, 1 DP16KD; the two LiteEth
# RGMII MACs with their clock crossings, pacers and transmit FIFOs, the PLL's reset and
# the LEDs, the rest. (The first guess, 1,050 LUT4 and no block RAM, left out the
# control port and the block RAM.)
SHELL_LUT4 = 4_800
SHELL_DP16KD = 2
LUT_SHARE = (85, 100)         # the share of the part's LUT4-equivalents core and shell may use


@dataclass(frozen=True)
class Part:
    """An ECP5 part as nextpnr-ecp5 names it, with the resources it has.

    Attributes
    ----------
    name : str
        Lattice's name, e.g. ``LFE5U-25F``.
    family : str
        ``ECP5`` or ``ECP5-5G``.
    device : str
        nextpnr-ecp5's device option, e.g. ``--25k``.
    package : str
        nextpnr-ecp5's ``--package``.
    speed : int
        The slowest speed grade the part is sold in (nextpnr-ecp5's ``--speed``).
    lut4, dp16kd, mult18x18d : int
        LUT4s (as many flip-flops), 18 Kbit block RAMs and 18x18 multipliers (ECP5 and
        ECP5-5G family data sheet, FPGA-DS-02012).
    """

    name: str
    family: str
    device: str
    package: str
    speed: int
    lut4: int
    dp16kd: int
    mult18x18d: int


# The ECP5-5G parts are sold in the -8 grade only.
PARTS = {part.name: part for part in (
    Part("LFE5U-25F", "ECP5", "--25k", "CABGA256", 6, 24_288, 56, 28),
    Part("LFE5UM5G-45F", "ECP5-5G", "--um5g-45k", "CABGA381", 8, 43_848, 108, 72),
    Part("LFE5UM5G-85F", "ECP5-5G", "--um5g-85k", "CABGA381", 8, 83_640, 208, 156),
)}


def lut4_equivalents(counts: dict[str, int]) -> int:
    """LUT4 positions a design occupies: LUT4s, 2 per carry cell, 6 per distributed RAM.

    PFUMX and L6MUX21 combine LUTs already counted, so they add nothing.
    """
    return (counts.get("LUT4", 0) + 2 * counts.get("CCU2C", 0)
            + 6 * counts.get("TRELLIS_DPR16X4", 0))


@dataclass(frozen=True)
class Fit:
    """A synthesis count against a part, by the fit rule (see the module docstring).

    Attributes
    ----------
    rows : tuple[tuple[str, int, int, int], ...]
        (resource, the core's count, what the rule counts against the limit, the limit):
        ``LUT4-eq`` counts the core plus :data:`SHELL_LUT4` against 85 % of the part;
        ``DP16KD`` the core plus :data:`SHELL_DP16KD` against the part; ``MULT18X18D`` and
        ``TRELLIS_FF`` the core against the part.
    fits : bool
        Every row within its limit.
    """

    rows: tuple[tuple[str, int, int, int], ...]

    @property
    def fits(self) -> bool:
        return all(counted <= limit for _, _, counted, limit in self.rows)

    def over(self) -> list[str]:
        """The resources over their limit."""
        return [name for name, _, counted, limit in self.rows if counted > limit]


@dataclass(frozen=True)
class Profile:
    """One build: a part and every size the gateware is built with.

    Attributes
    ----------
    name : str
        What ``--profile`` takes.
    id : int
        What the ID block's ``param_profile`` reports (1..65535, never reused).
    description : str
    part : Part
    widths : tuple[int, ...]
        Beat widths W the profile is built for.
    n_sessions, n_symbols, symbol_slots, n_orders, n_pass_rules, n_executions, dropcopy_depth
    n_verdicts
        The :class:`~wiregate.sw.regmap.RegisterMap` parameters of the same names.
    """

    name: str
    id: int
    description: str
    part: Part
    widths: tuple[int, ...]
    n_sessions: int
    n_symbols: int
    symbol_slots: int
    n_orders: int
    n_pass_rules: int
    n_executions: int
    dropcopy_depth: int
    n_verdicts: int

    def sizes(self) -> dict[str, int]:
        """The register map parameters this profile sets, by name."""
        return {"n_sessions": self.n_sessions, "n_symbols": self.n_symbols,
                "symbol_slots": self.symbol_slots, "n_orders": self.n_orders,
                "n_pass_rules": self.n_pass_rules, "n_executions": self.n_executions,
                "dropcopy_depth": self.dropcopy_depth, "n_verdicts": self.n_verdicts}

    def regmap(self, width: int, holdback: int) -> RegisterMap:
        """The register map of this profile's build at ``width`` with holdback ``holdback``.

        ``holdback`` follows from the width (``wiregate.hw.core.core_holdback``).
        """
        if width not in self.widths:
            raise ValueError(f"profile {self.name} is built for W = "
                             f"{' or '.join(map(str, self.widths))}, not {width}")
        return RegisterMap(**self.sizes(), beat_bytes=width, holdback=holdback,
                           profile=self.id)

    def lut4_limit(self) -> int:
        """LUT4-equivalents core and shell may use together: 85 % of the part's."""
        share, whole = LUT_SHARE
        return self.part.lut4 * share // whole

    def fit(self, counts: dict[str, int]) -> Fit:
        """The fit of a core whose synthesis counted ``counts`` (cell type -> count)."""
        luts = lut4_equivalents(counts)
        part = self.part
        return Fit((
            ("LUT4-eq", luts, luts + SHELL_LUT4, self.lut4_limit()),
            ("DP16KD", counts.get("DP16KD", 0), counts.get("DP16KD", 0) + SHELL_DP16KD,
             part.dp16kd),
            ("MULT18X18D", counts.get("MULT18X18D", 0), counts.get("MULT18X18D", 0),
             part.mult18x18d),
            ("TRELLIS_FF", counts.get("TRELLIS_FF", 0), counts.get("TRELLIS_FF", 0),
             part.lut4),
        ))


def _index(profiles) -> dict[str, Profile]:
    """Profiles by name; a name or id declared twice is an error, not a silent overwrite."""
    by_name: dict[str, Profile] = {}
    ids: set[int] = set()
    for p in profiles:
        if p.name in by_name or p.id in ids:
            raise ValueError(f"profile {p.name!r} (id {p.id}): name or id declared twice")
        if not 1 <= p.id <= 0xFFFF:
            raise ValueError(f"profile {p.name!r}: id {p.id} outside 1..65535 (0 is 'none')")
        by_name[p.name] = p
        ids.add(p.id)
    return by_name


PROFILES = _index((
    # The Colorlight 5A-75B: the floor of 4 sessions, 256 symbols and 256 open
    # orders per session; 64 remembered executions per session keep that table at 256
    # entries (docs/risk-core.md, "Memory budget").
    Profile("colorlight-5a75b", 1, "Colorlight 5A-75B, two 1 GbE ports",
            PARTS["LFE5U-25F"], (1,), n_sessions=4, n_symbols=256, symbol_slots=512,
            n_orders=256, n_pass_rules=4, n_executions=64, dropcopy_depth=512,
            n_verdicts=256),
    # The ECP5-5G Versa: 8 sessions, 512 symbols (1,024 is the goal once the engine is
    # smaller), 256 open orders per session; 64 remembered executions per session, as on
    # the 25F: 512 entries fill one block RAM row (5 DP16KD, where 1,024 took 10); 128
    # remembered verdicts per session and memory: 7 DP16KD, where 256 took 14
    # (docs/risk-core.md, "Memory budget").
    Profile("versa-ecp5", 2, "Lattice ECP5-5G Versa, two 1 GbE ports",
            PARTS["LFE5UM5G-45F"], (1,), n_sessions=8, n_symbols=512, symbol_slots=1024,
            n_orders=256, n_pass_rules=4, n_executions=64, dropcopy_depth=512,
            n_verdicts=128),
    # The sizes of simulation and of larger parts, reported on the 85F.
    Profile("full", 3, "8 sessions x 1,024 symbols x 256 orders: simulation, larger parts",
            PARTS["LFE5UM5G-85F"], (1, 8), n_sessions=8, n_symbols=1024, symbol_slots=2048,
            n_orders=256, n_pass_rules=4, n_executions=256, dropcopy_depth=512,
            n_verdicts=256),
))


def profile(name: str) -> Profile:
    """The profile called ``name``; a ValueError lists the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known profiles: "
                         f"{', '.join(PROFILES)}") from None


def by_id(profile_id: int) -> Profile | None:
    """The profile an ID block's ``param_profile`` names; None for 0 (sizes by hand).

    Raises ValueError for an id no profile has (a gateway built from a newer profile list).
    """
    if profile_id == 0:
        return None
    for p in PROFILES.values():
        if p.id == profile_id:
            return p
    known = ", ".join(f"{p.name} = {p.id}" for p in PROFILES.values())
    raise ValueError(f"the gateway reports profile id {profile_id}, which this host does "
                     f"not know (known: {known})")
