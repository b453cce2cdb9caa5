"""A gateway for the control stream's benches: the control port and what sits behind it.

The control port (:class:`~wiregate.hw.control.control_port.ControlPort`), the register file,
the drop-copy queue, the real kill latches and heartbeat watchdog, and a few lines standing in
for the engine's handling of control events: the bank and epoch on a commit, the latch
writes, the watchdog's heartbeat and commit, and a CONTROL drop-copy record per event. Small
beside the core, so the Amaranth simulator runs it fast; the core itself wires the control
port in its own way.

It also keeps a copy of what the host writes into each bank of every banked table and
answers the register file's table reads of the shadow bank from it, where the core's engine
answers from its own tables, so the host's push is verified by read-back here too. The
symbol kill latches read from the kill block; the engine's state (exposure, orders, session
state) reads 0: there is no engine here.
"""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.utils import ceil_log2

from wiregate.hw.control.control_port import ControlPort
from wiregate.hw.control.dropcopy import DropCopy, record_layout
from wiregate.hw.control.register_file import RegisterFile
from wiregate.hw.risk.checks.fail_closed import FailClosed
from wiregate.hw.risk.checks.kill import Kill
from wiregate.sw.dropcopy import NO_PRIMARY, Control, Kind
from wiregate.sw.model import SCOPES
from wiregate.sw.regmap import WORD_BITS

__all__ = ["ControlGateway"]


class ControlGateway(Elaboratable):
    """The control port, the register file, the drop copy, Kill and FailClosed, wired.

    Attributes
    ----------
    port : ControlPort
        ``port.i`` and ``port.o`` are the line.
    registers, dropcopy, kill, fail_closed
        The blocks behind it.
    records : stream
        Drop-copy records from a bench, taken in the cycles no control event takes the queue's
        one input.
    epoch, bank : Signal
        What the engine would count and swap on a commit.
    """

    def __init__(self, regmap):
        self.regmap = regmap
        self.port = ControlPort(regmap)
        self.registers = RegisterFile(regmap)
        self.dropcopy = DropCopy(1, regmap, depth=16)
        self.records = stream.Signature(record_layout(regmap)).flip().create()
        self.kill = Kill(regmap)
        self.fail_closed = FailClosed(regmap)
        self.epoch = Signal(32)
        self.bank = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.port = port = self.port
        m.submodules.registers = registers = self.registers
        m.submodules.dropcopy = dropcopy = self.dropcopy
        m.submodules.kill = kill = self.kill
        m.submodules.fail_closed = fail_closed = self.fail_closed
        m.d.comb += [
            registers.bus.write_en.eq(port.bus.write_en),
            registers.bus.write_addr.eq(port.bus.write_addr),
            registers.bus.write_data.eq(port.bus.write_data),
            port.bus.write_ready.eq(registers.bus.write_ready),
            registers.bus.read_en.eq(port.bus.read_en),
            registers.bus.read_addr.eq(port.bus.read_addr),
            port.bus.read_valid.eq(registers.bus.read_valid),
            port.bus.read_data.eq(registers.bus.read_data),
            port.dropcopy.valid.eq(dropcopy.o.valid),
            port.dropcopy.payload.eq(dropcopy.o.payload),
            dropcopy.o.ready.eq(port.dropcopy.ready),
        ]
        self._shadow_reads(m)
        for name in ("control_commands", "control_frame_errors", "control_command_errors"):
            m.d.comb += getattr(registers, f"count_{name}").eq(getattr(port, f"count_{name}"))

        # The engine's part, as small as the checks here need.
        event, fire = registers.control.payload, registers.control.valid
        m.d.comb += registers.control.ready.eq(1)
        code = event.code
        gateway_entry = Signal.like(fail_closed.commit.gateway)
        with m.If(registers.write_gateway_limits.en):
            m.d.sync += gateway_entry.eq(registers.write_gateway_limits.entry)
        commit = fire & (code == Control.COMMIT)
        with m.If(commit):
            m.d.sync += [self.epoch.eq(self.epoch + 1), self.bank.eq(~self.bank)]
        latch = fire & ((code == Control.KILL) | (code == Control.RELEASE))
        release = code == Control.RELEASE
        m.d.comb += [
            fail_closed.tick.eq(1),
            fail_closed.commit.valid.eq(commit),
            fail_closed.commit.gateway.eq(gateway_entry),
            fail_closed.heartbeat.eq(fire & (code == Control.HEARTBEAT)),
            fail_closed.in_sync.eq(-1),
            kill.gateway_write.en.eq(latch & (event.scope == SCOPES.index("gateway"))),
            kill.gateway_write.release.eq(release),
            registers.loaded.eq(fail_closed.loaded),
            registers.heartbeat_lost.eq(fail_closed.heartbeat_lost),
            registers.active_bank.eq(self.bank),
            registers.epoch.eq(self.epoch),
            registers.kill_gateway.eq(kill.gateway),
            registers.kill_sessions.eq(kill.sessions),
            registers.in_sync.eq(-1),
        ]
        for scope in ("session", "symbol"):
            write = getattr(kill, f"{scope}_write")
            m.d.comb += [write.en.eq(latch & (event.scope == SCOPES.index(scope))),
                         write.release.eq(release), write.index.eq(event.index[5:]),
                         write.bits.eq(Const(1, WORD_BITS) << event.index[:5])]
        # The queue has one input, as in the core: a control event's record first, the
        # bench's when there is none.
        record = dropcopy.i.payload
        m.d.comb += [self.records.ready.eq(~fire),
                     dropcopy.i.valid.eq(fire | self.records.valid)]
        with m.If(fire):
            m.d.comb += self._control_record(record, code, commit, event)
        with m.Else():
            m.d.comb += record.eq(self.records.payload)
        return m

    def _shadow_reads(self, m):
        """Answer the register file's table reads: a banked table's from the copy of its
        shadow bank (each copy holds both banks, the bank bit on top), the symbol kill latches
        from the kill block, the engine's state as 0."""
        registers = self.registers
        for t in self.regmap.tables:
            if not t.banked:
                continue
            bits = ceil_log2(t.depth)
            written = getattr(registers, f"write_{t.name}")
            reading = getattr(registers, f"read_{t.name}")
            m.submodules[f"shadow_{t.name}"] = copy = Memory(
                shape=reading.data.shape(), depth=2 << bits, init=[])
            write, read = copy.write_port(), copy.read_port()
            m.d.comb += [write.en.eq(written.en), write.data.eq(written.entry),
                         write.addr.eq(Cat(written.index, Const(0, bits - len(written.index)),
                                           ~self.bank)),
                         read.addr.eq(Cat(reading.index, Const(0, bits - len(reading.index)),
                                          ~self.bank)),
                         reading.data.eq(read.data), reading.ok.eq(1)]
        kills = registers.read_kill_symbols
        m.d.comb += [self.kill.symbol_read.index.eq(kills.index),
                     kills.data.bits.eq(self.kill.symbol_read.bits), kills.ok.eq(1),
                     registers.read_exposure.ok.eq(1), registers.read_order.ok.eq(1)]

    def _control_record(self, record, code, commit, event):
        return [
            record.kind.eq(Kind.CONTROL),
            record.control.eq(code),
            record.primary.eq(NO_PRIMARY),
            record.argument.eq(Mux(commit, self.epoch + 1, event.scope)),
            record.session.eq(Mux(event.scope == SCOPES.index("session"), event.index, 0)),
            record.symbol_index.eq(Mux(event.scope == SCOPES.index("symbol"), event.index, 0)),
            record.symbol_known.eq(event.scope == SCOPES.index("symbol")),
        ]
