"""The control stream's receiver: SLIP decoding, the frame buffer and the frame checks.

The format is :mod:`wiregate.sw.control`'s; every constant here comes from it. A frame is
stored whole in a buffer (one block RAM) while its CRC is computed a byte per cycle, and
only then handed to the executor, so a frame is judged before any of it acts: a write's
words are applied only after its CRC checked. The buffer is the executor's until it takes
the frame descriptor, and no byte is taken meanwhile (the host keeps one command
outstanding, see the format).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import crc, data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.control import (
    ARGUMENT_BYTES,
    BUFFER_BYTES,
    CRC_SIZE,
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    HEADER_FIELDS,
    HEADER_SIZE,
    MIN_FRAME,
    VERSION,
    Status,
)

__all__ = ["Deframer", "buffer_signature", "frame_layout", "header_field"]

_CAPTURED = HEADER_SIZE + ARGUMENT_BYTES     # bytes kept in registers as they arrive


def frame_layout() -> data.StructLayout:
    """A received frame: its status so far, the header fields and the payload's first bytes.

    ``status`` is OK or the first frame-level refusal (damage, lengths, version, MAC, a
    command's status byte). ``head`` holds the frame's first bytes, byte 0 most
    significant (:func:`header_field` reads a field of it); bytes the frame did not have
    are 0.
    """
    return data.StructLayout({
        "status": max(Status).bit_length(),
        "head": 8 * _CAPTURED,
    })


def header_field(head, offset: int, size: int):
    """The big-endian field of ``size`` bytes at byte ``offset`` of ``head``."""
    top = 8 * (_CAPTURED - offset)
    return head[top - 8 * size:top]


def _field(name: str):
    return next(f for f in HEADER_FIELDS if f.name == name)


def buffer_signature() -> wiring.Signature:
    """A read port of the frame buffer, from the reader's side: data one cycle after addr."""
    return wiring.Signature({"addr": Out(range(BUFFER_BYTES)), "data": In(8)})


class Deframer(wiring.Component):
    """Decode SLIP, store each frame, check it, and hand it to the executor.

    An ``END`` ends a frame; an empty one (two ``END`` in a row) is nothing. A frame ends
    with a status, the first that applies of: FRAMING (an ``ESC`` not followed by
    ``ESC_END`` or ``ESC_ESC``), LONG_FRAME (past the buffer), SHORT_FRAME (less than a
    header and a CRC), BAD_CRC, SHORT_FRAME or LONG_FRAME (its length fields disagree with
    its size), BAD_VERSION, BAD_MAC (any MAC: this build has no key), MALFORMED (status byte
    not 0), else OK. Whatever the status, the frame is handed on, to be answered.

    Attributes
    ----------
    i : In(stream of bytes)
        The line, SLIP-coded. Not ready while a frame waits for the executor.
    frame : Out(stream of :func:`frame_layout`)
        One per frame; taking it (``ready``) releases the buffer.
    buffer : In(:func:`buffer_signature`)
        The frame's bytes, byte 0 at address 0.

    Latency
    -------
    ``frame`` is valid the cycle after the ``END`` that closes the frame is taken.
    """

    i: In(stream.Signature(8))
    frame: Out(stream.Signature(frame_layout()))
    buffer: In(buffer_signature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = memory = Memory(shape=8, depth=BUFFER_BYTES, init=[])
        write, read = memory.write_port(), memory.read_port()
        m.d.comb += [read.addr.eq(self.buffer.addr), self.buffer.data.eq(read.data)]
        m.submodules.crc = checker = crc.catalog.CRC32_ETHERNET(data_width=8).create()

        count = Signal(range(BUFFER_BYTES + 1))
        escaped = Signal()
        bad_escape = Signal()
        overflow = Signal()
        head = Signal(8 * _CAPTURED)

        m.d.comb += self.i.ready.eq(~self.frame.valid)
        with m.If(self.frame.valid & self.frame.ready):
            m.d.sync += self.frame.valid.eq(0)

        take = self.i.valid & self.i.ready
        byte = self.i.payload
        stored = Signal()       # a frame byte (after unescaping) arrives this cycle
        value = Signal(8)
        with m.If(take):
            with m.If(byte == END):
                m.d.sync += [count.eq(0), escaped.eq(0), bad_escape.eq(0), overflow.eq(0),
                             head.eq(0)]
                with m.If((count != 0) | bad_escape | escaped):
                    m.d.sync += [self.frame.valid.eq(1), self.frame.payload.head.eq(head)]
            with m.Elif(escaped):
                m.d.sync += escaped.eq(0)
                with m.If((byte == ESC_END) | (byte == ESC_ESC)):
                    m.d.comb += [stored.eq(1), value.eq(Mux(byte == ESC_END, END, ESC))]
                with m.Else():
                    m.d.sync += bad_escape.eq(1)
            with m.Elif(byte == ESC):
                m.d.sync += escaped.eq(1)
            with m.Else():
                m.d.comb += [stored.eq(1), value.eq(byte)]

        with m.If(stored):
            with m.If(count == BUFFER_BYTES):
                m.d.sync += overflow.eq(1)
            with m.Else():
                m.d.sync += count.eq(count + 1)
            for k in range(_CAPTURED):
                with m.If(count == k):
                    m.d.sync += header_field(head, k, 1).eq(value)
        m.d.comb += [
            write.en.eq(stored & (count != BUFFER_BYTES)),
            write.addr.eq(count),
            write.data.eq(value),
            checker.valid.eq(stored),
            checker.data.eq(value),
            checker.start.eq(stored & (count == 0)),
        ]

        # The status, from the flags and the header as the END finds them.
        def get(name):
            f = _field(name)
            return header_field(head, f.offset, f.size)

        # The size the header announces, a cycle behind the header bytes (the adder stays out
        # of the path to the status): it is current at the END of any frame long enough to
        # be judged by it, whose header ends at least a CRC's four bytes before the END.
        size = Signal(range(HEADER_SIZE + (1 << 16) + (1 << 8) + CRC_SIZE))
        m.d.sync += size.eq(HEADER_SIZE + get("length") + get("mac_length") + CRC_SIZE)
        status = Signal.like(self.frame.payload.status)
        checks = [
            (bad_escape | escaped, Status.FRAMING),
            (overflow, Status.LONG_FRAME),
            (count < MIN_FRAME, Status.SHORT_FRAME),
            (~checker.match_detected, Status.BAD_CRC),
            (count < size, Status.SHORT_FRAME),
            (count > size, Status.LONG_FRAME),
            (get("version") != VERSION, Status.BAD_VERSION),
            (get("mac_length") != 0, Status.BAD_MAC),
            (get("status") != 0, Status.MALFORMED),
        ]
        m.d.comb += status.eq(Status.OK)
        for condition, refusal in reversed(checks):      # the first that applies wins
            with m.If(condition):
                m.d.comb += status.eq(refusal)
        with m.If(take & (byte == END)):
            m.d.sync += self.frame.payload.status.eq(status)
        return m
