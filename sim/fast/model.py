"""The compiled harness (``harness.cpp``) from Python: ports by name, frames in, frames and
drop-copy bytes out, many cycles per call.

See :mod:`wiregate.sim.fast` for the cycle convention.
"""

import ctypes

import numpy as np

from wiregate.hw.stream import LANE_LAYOUT

__all__ = ["ALWAYS_READY", "Harness"]

ALWAYS_READY = (1 << 64) - 1    # a monitor's ready threshold: ready in every cycle

_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p
_SIGNATURES = {
    "wg_new": (_PTR, [ctypes.c_int, ctypes.c_int]),
    "wg_free": (None, [_PTR]),
    "wg_port_bytes": (ctypes.c_int, [_PTR, ctypes.c_int]),
    "wg_poke": (None, [_PTR, ctypes.c_int, ctypes.c_char_p]),
    "wg_peek": (None, [_PTR, ctypes.c_int, ctypes.c_char_p]),
    "wg_cycle": (_I64, [_PTR]),
    "wg_lanes": (None, [_PTR] + [ctypes.c_int] * 7),
    "wg_ingress": (None, [_PTR, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "wg_egress": (None, [_PTR] + [ctypes.c_int] * 5 + [ctypes.c_uint64] * 2),
    "wg_bus": (None, [_PTR] + [ctypes.c_int] * 4),
    "wg_send": (ctypes.c_int, [_PTR, ctypes.c_int, ctypes.c_char_p, ctypes.c_int32, _I64,
                               ctypes.c_int32]),
    "wg_feed": (None, [_PTR] + [ctypes.c_int] * 3),
    "wg_push": (_I64, [_PTR, ctypes.c_char_p, _I64]),
    "wg_write": (ctypes.c_int, [_PTR, _PTR, ctypes.c_int32, _I64]),
    "wg_write_done": (_I64, [_PTR]),
    "wg_run": (_I64, [_PTR, _I64, ctypes.c_int, _I64, ctypes.c_int]),
    "wg_collected": (None, [_PTR, ctypes.c_int, _PTR]),
    "wg_take": (None, [_PTR, ctypes.c_int, _PTR, _PTR]),
}


class Harness:
    """One instance of a Verilated design with the compiled harness.

    Parameters
    ----------
    library : Path
        The shared library :func:`wiregate.sim.fast.build.build_harness` made.
    ports : list of PortDecl
        Its top-level ports, in the library's order.
    width : int
        Lanes per beat of the beat streams.
    clock : str
        The clock port.

    Attributes
    ----------
    cycle : int
        The next cycle to run: its outputs can be read (:meth:`peek`) and its inputs set
        (:meth:`poke`).
    """

    def __init__(self, library, ports, width: int, clock: str = "clk"):
        self._lib = lib = ctypes.CDLL(str(library))
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
        self.ports = {p.name: k for k, p in enumerate(ports)}
        self._decl = ports
        # A core at W = 1 has the engine's clock too: toggled at every rising edge of
        # ``clock``, so that its rising edges are every other one of ``clock``'s.
        self._h = lib.wg_new(self.ports[clock], self.ports.get("engine_clk", -1))
        offsets = [LANE_LAYOUT[name].offset for name in ("data", "keep", "first", "last",
                                                         "error")]
        lib.wg_lanes(self._h, width, LANE_LAYOUT.size, *offsets)
        self._monitors = {}

    def close(self):
        if self._h:
            self._lib.wg_free(self._h)
            self._h = None

    def __del__(self):
        self.close()

    # --- single values --------------------------------------------------------------------

    def poke(self, name: str, value: int) -> None:
        """Set input ``name`` from this cycle on."""
        k = self.ports[name]
        self._lib.wg_poke(self._h, k, int(value).to_bytes(self._decl[k].nbytes, "little"))

    def peek(self, name: str) -> int:
        """Output (or input) ``name`` as the current cycle sees it."""
        k = self.ports[name]
        buffer = ctypes.create_string_buffer(self._decl[k].nbytes)
        self._lib.wg_peek(self._h, k, buffer)
        return int.from_bytes(buffer.raw, "little")

    @property
    def cycle(self) -> int:
        return self._lib.wg_cycle(self._h)

    # --- streams --------------------------------------------------------------------------

    def ingress(self, k: int, prefix: str) -> None:
        """Ingress port ``k`` drives the beat stream ``<prefix>__valid/payload``."""
        self._lib.wg_ingress(self._h, k, self.ports[f"{prefix}__valid"],
                             self.ports[f"{prefix}__payload"])

    def egress(self, k: int, prefix: str, *, frames=True, plain=False, ready_seed=0,
               ready_threshold=None):
        """Monitor ``k`` takes the beats of ``<prefix>__valid/payload``: frames (with the
        cycle of each first byte) or, ``frames=False``, the bytes; ``plain``: the payload is
        a byte, not a beat of lanes (then bytes). With ``ready_threshold`` it drives
        ``<prefix>__ready``, high in the cycles the hash of (``ready_seed``, cycle) is below
        it (:func:`wiregate.sim.core.plan.dropcopy_ready`), in every cycle at
        :data:`ALWAYS_READY`, in none at 0."""
        ready = -1 if ready_threshold is None else self.ports[f"{prefix}__ready"]
        self._lib.wg_egress(self._h, k, self.ports[f"{prefix}__valid"],
                            self.ports[f"{prefix}__payload"], ready,
                            2 if plain else int(frames),
                            ready_seed, ready_threshold or 0)
        self._monitors[k] = frames and not plain

    def bus(self, prefix: str) -> None:
        """The write side of the word bus ``<prefix>__write_en/addr/data/ready``."""
        self._lib.wg_bus(self._h, *(self.ports[f"{prefix}__write_{name}"]
                                    for name in ("en", "addr", "data", "ready")))

    def feed(self, prefix: str) -> None:
        """The byte stream ``<prefix>__valid/payload/ready`` takes the bytes :meth:`push`
        queues, one a cycle while the design is ready."""
        self._lib.wg_feed(self._h, *(self.ports[f"{prefix}__{name}"]
                                     for name in ("valid", "payload", "ready")))

    def push(self, data: bytes) -> int:
        """Queue ``data`` on the feed; return the bytes queued and not yet taken."""
        return self._lib.wg_push(self._h, data, len(data))

    def send(self, k: int, frame: bytes, start: int, error: bool = False) -> None:
        """Queue ``frame`` on ingress port ``k`` from cycle ``start``."""
        if self._lib.wg_send(self._h, k, frame, len(frame), start, int(error)):
            raise ValueError(f"frame not queued: start {start}, now {self.cycle}")

    def write(self, pairs, start: int) -> None:
        """Write (address, word) pairs from cycle ``start``, one per ready cycle."""
        words = np.ascontiguousarray(np.array(pairs, dtype=np.uint32).reshape(-1))
        if self._lib.wg_write(self._h, words.ctypes.data, len(words) // 2, start):
            raise ValueError("a write is still under way")

    def write_done(self) -> int:
        """The cycle after the last write was taken (-1: not yet)."""
        return self._lib.wg_write_done(self._h)

    def run(self, until: int, *, watch: int = -1, watch_bytes: int = 0,
            stop_on_write: bool = False) -> int:
        """Run to cycle ``until``, or until monitor ``watch`` has taken ``watch_bytes``
        bytes in all, or (``stop_on_write``) the writes are done; returns the cycle."""
        return self._lib.wg_run(self._h, until, watch, watch_bytes, int(stop_on_write))

    def take(self, k: int):
        """What monitor ``k`` completed since the last call: for frames, a list of (bytes,
        error, first-byte cycle); for bytes, the bytes."""
        sizes = np.zeros(3, dtype=np.int64)
        self._lib.wg_collected(self._h, k, sizes.ctypes.data)
        if sizes[2]:
            raise AssertionError(f"monitor {k}: {sizes[2]} beats outside the frame rules")
        data = np.empty(int(sizes[0]), dtype=np.uint8)
        info = np.empty(int(sizes[1]), dtype=np.int64)
        self._lib.wg_take(self._h, k, data.ctypes.data, info.ctypes.data)
        raw = data.tobytes()
        if not self._monitors[k]:
            return raw
        frames, begin = [], 0
        for start, end, error in info.reshape(-1, 3).tolist():
            frames.append((raw[begin:end], bool(error), start))
            begin = end
        return frames
