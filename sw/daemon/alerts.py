"""Alerts: logged at once (one structured line), written to the audit log, counted.

MiFID II RTS 6 asks for real-time alerts within seconds: an alert goes to the log before
anything else is done with it, as one line ``ALERT {json}`` that a log shipper can parse.
"""

import json
import logging

__all__ = ["Alerts"]

log = logging.getLogger("wiregate.daemon.alert")


def _plain(value):
    """A JSON value for ``value`` (model values may be enums, bytes or tuples)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class Alerts:
    """Raise alerts into the log, the audit trail and the metrics.

    Parameters
    ----------
    audit : AuditWriter
    metrics : Metrics
    """

    def __init__(self, audit, metrics):
        self._audit, self._metrics = audit, metrics

    def __call__(self, name: str, message: str, **fields) -> dict:
        """Raise alert ``name``; returns its body (as logged and audited)."""
        body = {"alert": name, "message": message, **{k: _plain(v) for k, v in fields.items()}}
        log.warning("ALERT %s", json.dumps(body, sort_keys=True))
        self._audit.append("alert", body)
        self._audit.flush()
        self._metrics.alerts.labels(name).inc()
        return body
