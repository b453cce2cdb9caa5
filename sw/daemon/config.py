"""The daemon's configuration file (YAML; docs/daemon.md lists every key).

Durations are host seconds: a number, or text with a unit (``250ms``, ``2s``). Paths are
relative to the configuration file's folder. Every problem is reported at once, with its
key, and nothing starts from a file with problems.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from wiregate.sw.transports import TargetError, parse_target

__all__ = ["KILL_SCOPES", "REFERENCE_RATE", "ConfigError", "DaemonConfig", "ReferencesConfig",
           "load_config"]

# What the daemon does on a shadow mismatch: kill the whole gateway, only the session of the
# record that disagrees (a control record has none: the gateway then), or only alert.
KILL_SCOPES = ("gateway", "session", "alert")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(KiB|MiB|GiB)?\s*$")
_SIZES = {None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


class ConfigError(ValueError):
    """Every problem of a configuration file, one a line."""

    def __init__(self, path, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass(frozen=True)
class DaemonConfig:
    """What the daemon runs with.

    Attributes
    ----------
    target : str or None
        ``sim://HOST:PORT`` or ``serial://...``; ``--target`` overrides it.
    limits : Path
        The limit file pushed at start and watched for changes.
    heartbeat_interval : float
        Host seconds between heartbeats (keep it well under the limit file's
        ``heartbeat_timeout`` in the gateway's time; docs/sim.md for a simulated gateway).
    status_interval : float
        Host seconds between reads of the status block and the counters (for the metrics).
    watch_interval : float
        Host seconds between looks at the limit file.
    verify_push : bool
        Read the shadow bank back before each commit. A gateway that reads its banked
        tables back as 0 (the simulated core, for now) needs False.
    kill_scope : str
        One of :data:`KILL_SCOPES`: what a shadow mismatch kills.
    kill_within : float
        Host seconds a mismatch may take to become a kill; slower raises an alert.
    audit_path : Path
        The audit log's folder (``wiregate audit``).
    audit_max_bytes : int
        Rotation size of an audit file.
    audit_batch : int
        Drop-copy records per audit entry at most; the metrics count them once per batch
        too. Whatever is pending is written at every heartbeat.
    audit_key_file : Path or None
        HMAC key of the audit chain.
    metrics_host, metrics_port : str, int or None
        The Prometheus endpoint; no port, no endpoint; 0 picks a free port.
    timeout : float
        Host seconds to wait for a command's answer.
    checks : dict
        The richer checks' own section, given as it is to ``build_checks``.
    references : ReferencesConfig or None
        The reference price feed; None: the daemon writes no references.
    """

    limits: Path
    audit_path: Path
    target: str | None = None
    heartbeat_interval: float = 0.2
    status_interval: float = 1.0
    watch_interval: float = 1.0
    verify_push: bool = True
    kill_scope: str = "gateway"
    kill_within: float = 1.0
    audit_max_bytes: int = 64 << 20
    audit_batch: int = 512
    audit_key_file: Path | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    timeout: float = 5.0
    checks: dict = field(default_factory=dict)
    references: "ReferencesConfig | None" = None


# What one reference update costs on the control stream (docs/daemon.md): two WRITE
# commands, 56 bytes to the gateway; their two answers and the SET_REFERENCE record, 136
# bytes back. At 3 Mbaud (300,000 bytes a second each way) the way back carries about 2,200
# of them a second with nothing else on it: the default keeps the feed under a tenth of it.
REFERENCE_RATE = 200.0
REFERENCE_SOURCES = ("file", "udp", "pcap")


@dataclass(frozen=True)
class ReferencesConfig:
    """The reference price feed (:mod:`wiregate.sw.daemon.references`).

    Attributes
    ----------
    source : str
        One of :data:`REFERENCE_SOURCES`.
    path : Path or None
        The file (CSV or JSON Lines) or the capture.
    host, port : str, int
        The UDP socket the datagrams come to (``udp``), or the capture's UDP port to keep
        (``pcap``; None: every one).
    speed : float or None
        A capture replayed this many times faster than its timestamps; None: at once.
    max_rate : float
        Reference writes per second at most (coalesced per symbol while they wait).
    burst : int
        Writes that may go back to back after a quiet spell.
    interval : float
        Host seconds between two looks at the feed: due writes, then stale symbols.
    """

    source: str
    path: Path | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    speed: float | None = None
    max_rate: float = REFERENCE_RATE
    burst: int = 8
    interval: float = 0.05


class _Reader:
    def __init__(self, base: Path):
        self.base, self.problems = base, []

    def section(self, data: dict, name: str, known: set[str]) -> dict:
        value = data.get(name) or {}
        if not isinstance(value, dict):
            self.problems.append(f"{name}: expected a mapping")
            return {}
        for key in sorted(set(value) - known):
            self.problems.append(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
        return value

    def duration(self, where: str, value, default: float) -> float:
        if value is None:
            return default
        match = _DURATION.match(str(value))
        if not match or float(match[1]) <= 0:
            self.problems.append(f"{where}: expected a duration above 0 (0.2, 200ms, 2s), "
                                 f"got {value!r}")
            return default
        return float(match[1]) / (1000 if match[2] == "ms" else 1)

    def path(self, where: str, value) -> Path | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.problems.append(f"{where}: expected a path, got {value!r}")
            return None
        return self.base / Path(value).expanduser()


_TOP = {"target", "limits", "heartbeat", "push", "shadow", "audit", "metrics", "checks",
        "timeout", "references"}


def _references(r: _Reader, data: dict) -> ReferencesConfig | None:
    if data.get("references") is None:
        return None
    section = r.section(data, "references", {"source", "path", "host", "port", "speed",
                                             "max_rate", "burst", "interval"})
    source = section.get("source")
    if source not in REFERENCE_SOURCES:
        r.problems.append(f"references.source: one of {', '.join(REFERENCE_SOURCES)}, got "
                          f"{source!r}")
        return None
    path = r.path("references.path", section.get("path"))
    if source != "udp" and path is None:
        r.problems.append(f"references.path: the {source} to read is required")
    port = section.get("port")
    if (source == "udp" or port is not None) and (
            not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 65536):
        r.problems.append(f"references.port: a UDP port, got {port!r}")
    rate = section.get("max_rate", REFERENCE_RATE)
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not rate > 0:
        r.problems.append(f"references.max_rate: writes per second above 0, got {rate!r}")
        rate = REFERENCE_RATE
    burst = section.get("burst", 8)
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
        r.problems.append(f"references.burst: at least 1, got {burst!r}")
        burst = 8
    speed = section.get("speed")
    if speed is not None and (not isinstance(speed, int | float) or not speed > 0):
        r.problems.append(f"references.speed: above 0, got {speed!r}")
        speed = None
    return ReferencesConfig(
        source=source, path=path, host=str(section.get("host", "127.0.0.1")), port=port,
        speed=speed, max_rate=float(rate), burst=burst,
        interval=r.duration("references.interval", section.get("interval"), 0.05))


def load_config(path) -> DaemonConfig:
    """Read and check a daemon configuration file; raise :class:`ConfigError`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(path, [f"cannot read it: {error}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, ["expected a mapping of the keys in docs/daemon.md"])
    r = _Reader(path.parent)
    r.problems += [f"{key}: unknown key (known: {', '.join(sorted(_TOP))})"
                   for key in sorted(set(data) - _TOP)]
    heartbeat = r.section(data, "heartbeat", {"interval", "status_interval"})
    push = r.section(data, "push", {"verify", "watch_interval"})
    shadow = r.section(data, "shadow", {"kill_scope", "kill_within"})
    audit = r.section(data, "audit", {"path", "max_bytes", "key_file", "batch"})
    metrics = r.section(data, "metrics", {"host", "port"})
    checks = data.get("checks") or {}
    if not isinstance(checks, dict):
        r.problems.append("checks: expected a mapping")
        checks = {}

    target = data.get("target")
    if target is not None:
        try:
            parse_target(str(target))
        except TargetError as error:
            r.problems.append(f"target: {error}")
    limits = r.path("limits", data.get("limits"))
    if limits is None:
        r.problems.append("limits: the limit file to push is required")
    audit_path = r.path("audit.path", audit.get("path"))
    if audit_path is None:
        r.problems.append("audit.path: the audit log's folder is required")
    scope = shadow.get("kill_scope", "gateway")
    if scope not in KILL_SCOPES:
        r.problems.append(f"shadow.kill_scope: one of {', '.join(KILL_SCOPES)}, got {scope!r}")
    verify = push.get("verify", True)
    if not isinstance(verify, bool):
        r.problems.append(f"push.verify: true or false, got {verify!r}")
    size = _SIZE.match(str(audit.get("max_bytes", "64MiB")))
    max_bytes = int(size[1]) * _SIZES[size[2]] if size else 0
    if max_bytes < 1024:
        r.problems.append(f"audit.max_bytes: at least 1024 (or 1KiB, 64MiB), got "
                          f"{audit.get('max_bytes')!r}")
    batch = audit.get("batch", 512)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        r.problems.append(f"audit.batch: records per entry, at least 1, got {batch!r}")
    port = metrics.get("port")
    if port is not None and (not isinstance(port, int) or not 0 <= port < 65536):
        r.problems.append(f"metrics.port: a TCP port (0 picks one), got {port!r}")
    config = DaemonConfig(
        target=None if target is None else str(target), limits=limits, audit_path=audit_path,
        heartbeat_interval=r.duration("heartbeat.interval", heartbeat.get("interval"), 0.2),
        status_interval=r.duration("heartbeat.status_interval",
                                   heartbeat.get("status_interval"), 1.0),
        watch_interval=r.duration("push.watch_interval", push.get("watch_interval"), 1.0),
        verify_push=verify, kill_scope=scope,
        kill_within=r.duration("shadow.kill_within", shadow.get("kill_within"), 1.0),
        audit_max_bytes=max_bytes, audit_batch=batch,
        audit_key_file=r.path("audit.key_file", audit.get("key_file")),
        metrics_host=str(metrics.get("host", "127.0.0.1")), metrics_port=port,
        timeout=r.duration("timeout", data.get("timeout"), 5.0), checks=checks,
        references=_references(r, data))
    if r.problems:
        raise ConfigError(path, r.problems)
    return config
