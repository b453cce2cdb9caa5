"""A stand-in for the core on the board: every frame crosses to the other port unchanged."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.stream import Signature
from amaranth.lib.wiring import In, Out

from ..stream import beat_layout

__all__ = ["PassThrough"]


class PassThrough(wiring.Component):
    """The board flow's placeholder core: no checks, client frames to the exchange and back.

    It has the core's port names (``client_rx`` to ``exchange_tx``, ``exchange_rx`` to
    ``client_tx``) at ``W = 1`` so the board shell is proven before the board's profile core
    replaces it. Unlike the core's ``always_ready`` streams these carry ``ready``: here the
    transmit MAC's stalls (preamble, FCS, gap) reach back into the receive FIFO, which is
    where the slack for clock offsets sits. A core that cannot stall needs the pacing
    described in ``docs/boards.md`` instead.

    Attributes
    ----------
    client_rx, exchange_rx : In(stream of beat_layout(1))
    exchange_tx, client_tx : Out(stream of beat_layout(1))

    Latency
    -------
    0 cycles (wires).
    """

    client_rx: In(Signature(beat_layout(1)))
    exchange_tx: Out(Signature(beat_layout(1)))
    exchange_rx: In(Signature(beat_layout(1)))
    client_tx: Out(Signature(beat_layout(1)))

    def elaborate(self, platform):
        m = Module()
        wiring.connect(m, client=wiring.flipped(self.client_rx),
                       exchange=wiring.flipped(self.exchange_tx))
        wiring.connect(m, exchange=wiring.flipped(self.exchange_rx),
                       client=wiring.flipped(self.client_tx))
        return m
