"""The control port: the host's byte stream in, responses and the drop copy out.

Four stages, one per file: the deframer (SLIP decoding, buffer, frame checks), the executor
(the command as word-bus transactions, the response), the outbound mux (responses and
drop-copy records, whole frames each) and the framer (CRC-32, SLIP coding). The format is
:mod:`wiregate.sw.control`'s.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import RegisterMap

from ..counters import LIVE_BITS
from ..stream import beat_signature
from .deframer import Deframer
from .executor import COUNTERS, Executor
from .framer import Framer
from .outbound import Outbound
from .register_file import bus_signature

__all__ = ["ControlPort"]


class ControlPort(wiring.Component):
    """The framed control stream onto the register file's word bus (W = 1 byte streams).

    Parameters
    ----------
    regmap : RegisterMap

    Attributes
    ----------
    i : In(stream of bytes)
        From the host (a UART receiver, a socket). Not ready while a command executes
        and its response leaves.
    o : Out(stream of bytes)
        To the host. Honours ``ready``.
    bus : Out(:func:`~wiregate.hw.control.register_file.bus_signature`)
        To :class:`~wiregate.hw.control.register_file.RegisterFile`.
    dropcopy : In(beat stream, W = 1)
        The drop-copy records (:class:`~wiregate.hw.control.dropcopy.DropCopy` at W = 1).
    count_control_commands, count_control_frame_errors, count_control_command_errors : Out
        Live counters (:mod:`wiregate.hw.counters`) for the register file's counters of the
        same names.

    Latency
    -------
    See the stages; a HEARTBEAT's write reaches the bus about 20 cycles after its last byte.
    """

    def __init__(self, regmap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._regmap = regmap
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            "bus": Out(bus_signature(regmap)),
            "dropcopy": In(beat_signature(1, always_ready=False)),
            **{f"count_{name}": Out(LIVE_BITS) for name in COUNTERS},
        })

    @property
    def regmap(self):
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        m.submodules.deframer = deframer = Deframer()
        m.submodules.executor = executor = Executor(self._regmap)
        m.submodules.outbound = outbound = Outbound()
        m.submodules.framer = framer = Framer()

        wiring.connect(m, host=wiring.flipped(self.i), deframer=deframer.i)
        wiring.connect(m, deframer=deframer.frame, executor=executor.frame)
        wiring.connect(m, executor=executor.buffer, deframer=deframer.buffer)
        wiring.connect(m, executor=executor.bus, registers=wiring.flipped(self.bus))
        wiring.connect(m, executor=executor.response, outbound=outbound.response)
        wiring.connect(m, dropcopy=wiring.flipped(self.dropcopy), outbound=outbound.dropcopy)
        wiring.connect(m, outbound=outbound.o, framer=framer.i)
        wiring.connect(m, framer=framer.o, host=wiring.flipped(self.o))
        for name in COUNTERS:
            m.d.comb += getattr(self, f"count_{name}").eq(getattr(executor, f"count_{name}"))
        return m
