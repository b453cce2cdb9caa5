"""What a daemon check asks the daemon to do.

A check (the shadow check, or one of the richer software checks) never touches the gateway
itself: it returns `Action` values and the daemon's service loop carries them out through the
`Driver`, records each in the audit log and counts it in the metrics. One place executes, so
every action is audited and counted the same way whichever check raised it.
"""

from __future__ import annotations

from dataclasses import dataclass

# The kinds of action, in rising order of severity: an alert only logs and counts; a kill
# closes the gate for one session, one symbol or the whole gateway; "tighten" re-commits a
# limit (the check's detail says which and to what).
KINDS = ("alert", "kill_session", "kill_symbol", "kill_gateway", "tighten")


@dataclass(frozen=True)
class Action:
    """One thing a check wants done.

    Parameters
    ----------
    check : str
        Name of the check that raised it (the audit log and the metrics label).
    kind : str
        One of `KINDS`.
    target : str or None
        Session name (``kill_session``), symbol (``kill_symbol``, and ``tighten`` of a
        per-symbol limit), or None where the action has no target (``kill_gateway``, a
        gateway-wide alert).
    detail : str
        Human-readable reason, written to the log and the audit entry as it is.
    """

    check: str
    kind: str
    target: str | None
    detail: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"action kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in ("kill_session", "kill_symbol") and not self.target:
            raise ValueError(f"action {self.kind} needs a target")
