"""nextpnr-ecp5's timing report, read the same way by the board builds and the out-of-context
place-and-route report (:mod:`wiregate.sim.pnr`).

nextpnr times each clock against its own constraint. A path from one clock to another it
only reports, whatever the two clocks' relation. The byte clock and the risk engine's come
from one PLL, the engine's at half the frequency with its rising edges on the byte clock's
(:mod:`wiregate.hw.risk.half_rate`): a path between them has one period of the faster
clock to settle, and is checked here against it. Every other pair is held to the same
bound: between a port's RXC and the core clock only the receive FIFOs' Gray-coded
pointers cross, and a pointer's bits must arrive within a period of each other (the usual
max-delay rule for such a crossing).
"""

__all__ = ["crossings"]


def _clock(end):
    """The clock net of a path's end as nextpnr names it (``posedge $glbnet$clk``)."""
    return (end or "").split(" ")[-1]


def crossings(report: dict) -> list[dict]:
    """Every reported path between two clocks with a constraint (at least one end's: a clock
    with no path of its own has no Fmax entry), its delay against one period of the faster
    one: ``from_clock``, ``to_clock`` (as the report has them), ``from_net``, ``to_net``
    (the clock nets), ``delay_ns``, ``budget_ns``, ``met``."""
    constraints = {clock: figures["constraint"]
                   for clock, figures in report.get("fmax", {}).items()}
    found = []
    for path in report.get("critical_paths", []):
        ends = [_clock(path.get(end)) for end in ("from", "to")]
        known = [constraints[end] for end in ends if end in constraints]
        if not path.get("path") or ends[0] == ends[1] or "<async>" in ends or not known:
            continue
        delay = sum(step["delay"] for step in path["path"])
        budget = 1000 / max(known)
        found.append({"from_clock": path.get("from"), "to_clock": path.get("to"),
                      "from_net": ends[0], "to_net": ends[1],
                      "delay_ns": round(delay, 3), "budget_ns": round(budget, 3),
                      "met": delay <= budget})
    return found
