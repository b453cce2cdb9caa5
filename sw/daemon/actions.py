"""What a daemon check asks the daemon to do."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    """One action a check asks for.

    Attributes
    ----------
    check : str
        Name of the check that asks.
    kind : str
        "alert", "kill_session", "kill_symbol", "kill_gateway" or "tighten".
    target : str or None
        What the action applies to (a session, a symbol), None for the whole gateway.
    detail : str
        Why, for the log and the audit trail.
    """

    check: str
    kind: str
    target: str | None
    detail: str
