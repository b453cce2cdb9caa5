"""Export Amaranth components to Verilog for Verilator, once per parameter set."""

import contextlib
import fcntl
import logging
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Const, Signal, Value
from amaranth.lib import wiring

__all__ = ["BUILD_ROOT", "build_lock", "component_ports", "export_verilog"]

log = logging.getLogger(__name__)

BUILD_ROOT = Path(__file__).resolve().parent.parent / "build" / "sim"


def component_ports(component: wiring.Component) -> list:
    """The component's signature members that are real signals.

    Members fixed by the signature (the ``ready`` of an ``always_ready`` stream is a
    constant 1) are not ports, and ``verilog.convert`` refuses constants in its port list.
    """
    ports = []
    for _path, _member, value in component.signature.flatten(component):
        value = Value.cast(value)   # a View (structured payload) is backed by one signal
        if isinstance(value, Const):
            continue
        assert isinstance(value, Signal), value
        ports.append(value)
    return ports


def export_verilog(component: wiring.Component, name: str, build_dir: Path) -> Path:
    """Write ``component`` as ``<build_dir>/<name>.v``; leave the file alone if unchanged.

    Keeping an unchanged file's timestamp is what lets the Verilator build be reused.
    """
    text = verilog.convert(component, name=name, ports=component_ports(component))
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / f"{name}.v"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        log.info("wrote %s", path)
    return path


@contextlib.contextmanager
def build_lock(build_dir: Path):
    """Hold ``build_dir``'s lock: one build at a time in a folder, whichever pytest worker
    asks (the cocotb bench and the compiled harness of one core share its export)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
