"""The gateway as the host sees it: the core with the control port on top.

The core (:class:`~wiregate.hw.core.Core`) brings out the register file's word bus and the
drop copy as beats of its width; here the control port
(:class:`~wiregate.hw.control.control_port.ControlPort`) drives the bus from the host's byte
stream and sends the drop copy back in the same outbound byte stream, a record a frame. At
W = 8 the drop copy's 8-byte beats go through :class:`~wiregate.hw.narrow.Narrow` to the
port's one byte a cycle. The Ethernet beat streams pass through to the core unchanged.

A separate top rather than a core option, so that the core's benches, which drive the word
bus directly, keep the core's interface as it is.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .control.control_port import ControlPort
from .control.executor import COUNTERS
from .core import Core
from .narrow import Narrow

__all__ = ["Gateway"]

_BEATS = ("client_rx", "exchange_tx", "exchange_rx", "client_tx")


class Gateway(wiring.Component):
    """The core, the control port, and the width adapter between the drop copy and the port.

    Parameters
    ----------
    width, regmap, backlog_high, backlog_low
        As :class:`~wiregate.hw.core.Core`.

    Attributes
    ----------
    client_rx, exchange_rx : In(stream)
        Beats from the receive MACs (the core's).
    exchange_tx, client_tx : Out(stream)
        Beats to the transmit MACs (the core's).
    control_in : In(stream of bytes)
        The host's byte stream: SLIP-coded command frames (:mod:`wiregate.sw.control`).
        Not ready while a command executes and its response leaves.
    control_out : Out(stream of bytes)
        Responses and drop-copy frames, SLIP-coded. Honours ``ready``; while it is low the
        drop copy waits in the core's queue (and BACKLOG guards it, model rule 11).
    kill_gateway : Out(1)
        The core's gateway kill latch (for a board's LED).

    Latency
    -------
    The core's on the Ethernet paths; the control port's on the control stream. A drop-copy
    record reaches the port a cycle after it leaves the core (the adapter's register).
    """

    def __init__(self, width, regmap, *, backlog_high=None, backlog_low=None):
        self._core = Core(width, regmap, backlog_high=backlog_high, backlog_low=backlog_low)
        self._port = ControlPort(regmap)
        members = self._core.signature.members
        super().__init__({
            **{name: members[name] for name in _BEATS},
            "control_in": In(stream.Signature(8)),
            "control_out": Out(stream.Signature(8)),
            "kill_gateway": members["kill_gateway"],
        })

    @property
    def width(self):
        return self._core.width

    @property
    def holdback(self):
        return self._core.holdback

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.port = port = self._port
        m.submodules.narrow = narrow = Narrow(core.width)

        for name in _BEATS:
            outer, inner = getattr(self, name), getattr(core, name)
            if name.endswith("_rx"):
                wiring.connect(m, mac=wiring.flipped(outer), core=inner)
            else:
                wiring.connect(m, core=inner, mac=wiring.flipped(outer))
        wiring.connect(m, host=wiring.flipped(self.control_in), port=port.i)
        wiring.connect(m, port=port.o, host=wiring.flipped(self.control_out))
        wiring.connect(m, port=port.bus, core=core.control)
        wiring.connect(m, core=core.dropcopy, narrow=narrow.i)
        wiring.connect(m, narrow=narrow.o, port=port.dropcopy)
        m.d.comb += self.kill_gateway.eq(core.kill_gateway)
        for name in COUNTERS:
            m.d.comb += getattr(core, f"count_{name}").eq(getattr(port, f"count_{name}"))
        return m
