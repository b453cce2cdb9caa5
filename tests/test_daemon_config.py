"""The daemon's configuration file, and where the richer checks come from."""

import sys
import types

import pytest
import yaml

from wiregate.sw.daemon.actions import Action
from wiregate.sw.daemon.config import ConfigError, ReferencesConfig, load_config
from wiregate.sw.daemon.service import configured_checks


def write(tmp_path, data) -> str:
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_full_configuration(tmp_path):
    config = load_config(write(tmp_path, {
        "target": "sim://127.0.0.1:5555", "limits": "l.yaml", "timeout": "250ms",
        "heartbeat": {"interval": 0.05, "status_interval": "2s"},
        "push": {"verify": False, "watch_interval": "500ms"},
        "shadow": {"kill_scope": "session", "kill_within": "100ms"},
        "audit": {"path": "log", "max_bytes": "2MiB", "key_file": "key"},
        "metrics": {"host": "0.0.0.0", "port": 9464},
        "checks": {"velocity": {"window": "1s"}}}))
    assert (config.target, config.limits, config.audit_path, config.audit_key_file) == (
        "sim://127.0.0.1:5555", tmp_path / "l.yaml", tmp_path / "log", tmp_path / "key")
    assert (config.timeout, config.heartbeat_interval, config.status_interval,
            config.watch_interval, config.kill_within) == (0.25, 0.05, 2.0, 0.5, 0.1)
    assert (config.verify_push, config.kill_scope, config.audit_max_bytes) == (
        False, "session", 2 << 20)
    assert (config.metrics_host, config.metrics_port) == ("0.0.0.0", 9464)
    assert config.checks == {"velocity": {"window": "1s"}}


def test_the_defaults(tmp_path):
    config = load_config(write(tmp_path, {"limits": "l.yaml", "audit": {"path": "a"}}))
    assert (config.target, config.heartbeat_interval, config.verify_push, config.kill_scope,
            config.audit_max_bytes, config.audit_batch, config.metrics_port, config.checks) == (
        None, 0.2, True, "gateway", 64 << 20, 512, None, {})


def test_every_problem_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, {
            "target": "tcp://x", "heartbeat": {"interval": "-1s", "every": 1},
            "shadow": {"kill_scope": "session-and-symbol"}, "push": {"verify": "yes"},
            "audit": {"max_bytes": 100, "batch": 0}, "metrics": {"port": 70000}, "extra": 1}))
    text = str(error.value)
    for key in ("extra: unknown key", "target:", "limits: the limit file",
                "audit.path: the audit", "heartbeat.every: unknown key",
                "heartbeat.interval: expected a duration", "shadow.kill_scope:",
                "push.verify:", "audit.max_bytes:", "audit.batch:", "metrics.port:"):
        assert key in text, key
    assert len(error.value.problems) == 11


def test_a_reference_feed(tmp_path):
    base = {"limits": "l.yaml", "audit": {"path": "a"}}
    assert load_config(write(tmp_path, base)).references is None
    config = load_config(write(tmp_path, {**base, "references": {
        "source": "pcap", "path": "day.pcap", "port": 26400, "speed": 10, "max_rate": 500,
        "burst": 4, "interval": "20ms"}}))
    assert config.references == ReferencesConfig(
        source="pcap", path=tmp_path / "day.pcap", port=26400, speed=10, max_rate=500.0,
        burst=4, interval=0.02)
    udp = load_config(write(tmp_path, {**base, "references": {"source": "udp", "port": 0}}))
    assert udp.references == ReferencesConfig(source="udp", port=0)
    assert udp.references.max_rate == 200.0     # under a tenth of what 3 Mbaud carries back
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, {**base, "references": {
            "source": "file", "max_rate": 0, "burst": 0, "speed": -1, "port": "x",
            "colour": 1}}))
    for key in ("references.colour: unknown key", "references.path: the file",
                "references.max_rate:", "references.burst:", "references.speed:",
                "references.port:"):
        assert key in str(error.value), key
    with pytest.raises(ConfigError, match=r"references\.source: one of file, udp, pcap"):
        load_config(write(tmp_path, {**base, "references": {"source": "tcp"}}))


def test_an_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml")


def test_checks_are_built_only_from_a_non_empty_section(monkeypatch):
    calls = []
    module = types.ModuleType("wiregate.sw.daemon.checks")
    module.build_checks = lambda section: calls.append(section) or ["built"]
    monkeypatch.setitem(sys.modules, "wiregate.sw.daemon.checks", module)
    assert configured_checks({}) == [] and calls == []
    assert configured_checks({"gross": {"limit": 1}}) == ["built"]
    assert calls == [{"gross": {"limit": 1}}]


@pytest.mark.parametrize("kind,target", [("kill_session", None), ("kill_symbol", ""),
                                         ("halt", "x")])
def test_an_action_is_checked(kind, target):
    with pytest.raises(ValueError, match=r"kind|target"):
        Action("c", kind, target, "why")
