"""The control stream's executor: each checked frame as word-bus transactions, and its answer.

Commands, payloads and statuses are :mod:`wiregate.sw.control`'s; every address and bit is
the :class:`~wiregate.sw.regmap.RegisterMap`'s. A frame is judged whole before the first
transaction (the deframer's checks, then the sequence, the command, its length and its
ranges), so a refused frame changes nothing and an accepted one is applied in full.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.control import (
    COMMANDS,
    HEADER_FIELDS,
    HEADER_SIZE,
    MAX_WORDS,
    VERSION,
    Command,
    Kind,
    Status,
)
from wiregate.sw.model import SCOPES
from wiregate.sw.regmap import WORD_BITS, Access, RegisterMap

from ..counters import LIVE_BITS, live_event
from ..stream import beat_signature
from .deframer import buffer_signature, frame_layout, header_field
from .register_file import bus_signature

__all__ = ["Executor"]

COUNTERS = sorted({s.counter for s in Status})


def _header(name):
    return next(f for f in HEADER_FIELDS if f.name == name)


def _bytes(fields, values):
    """Header bytes as one value, byte k at bits 8k..8k+7 (for ``word_select``)."""
    out = []
    for f in fields:
        value = values[f.name]
        out += [value[8 * (f.size - 1 - i):8 * (f.size - i)] for i in range(f.size)]
    return Cat(*out)


class Executor(wiring.Component):
    """Judge a received frame, run its command on the word bus, and send the response.

    Judgment: the deframer's status if not OK, else the first of OUT_OF_SEQUENCE,
    UNKNOWN_COMMAND, BAD_LENGTH, MALFORMED (a reserved field, or a SNAPSHOT ``clear``
    above 1), ADDRESS_RANGE, INDEX_RANGE that applies. A TABLE_WRITE's words are counted
    into entries first, one entry a cycle, as a table's ``used_words`` need not be a power
    of two.

    Execution: an accepted command advances the expected sequence number, then its words
    are written one at a time (each fetched from the buffer in six cycles), each waiting
    for the bus's ``write_ready``. COMMIT, HEARTBEAT, SNAPSHOT, KILL and RELEASE are one
    write each, to the register or the kill bitmap word the map gives. A READ reads a word,
    sends it, reads the next.

    The response (the header, then the words read or the expected sequence) leaves on
    ``response`` after the last write; the frame is released after its last byte.

    Parameters
    ----------
    regmap : RegisterMap

    Attributes
    ----------
    frame : In(stream of :func:`~wiregate.hw.control.deframer.frame_layout`)
    buffer : Out(:func:`~wiregate.hw.control.deframer.buffer_signature`)
    bus : Out(:func:`~wiregate.hw.control.register_file.bus_signature`)
    response : Out(beat stream, W = 1)
        The response frame without its CRC: ``first`` on the header's first byte, ``last``
        on the payload's last.
    count_control_commands, count_control_frame_errors, count_control_command_errors : Out
        Frames answered, by :attr:`wiregate.sw.control.Status.counter` (live counters,
        :data:`wiregate.hw.counters.LIVE_BITS` wide, wrapping).

    Latency
    -------
    The response's first byte is offered seven cycles after the frame (plus one per entry
    of a TABLE_WRITE, plus seven per word written).
    """

    def __init__(self, regmap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._regmap = regmap
        super().__init__({
            "frame": In(stream.Signature(frame_layout())),
            "buffer": Out(buffer_signature()),
            "bus": Out(bus_signature(regmap)),
            "response": Out(beat_signature(1, always_ready=False)),
            **{f"count_{name}": Out(LIVE_BITS) for name in COUNTERS},
        })

    @property
    def regmap(self):
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        regmap = self._regmap
        reg = regmap.register
        bus = self.bus
        head = self.frame.payload.head

        def get(name):
            f = _header(name)
            return header_field(head, f.offset, f.size)

        def arg(command, name):
            f = next(f for f in COMMANDS[command].fields if f.name == name)
            return header_field(head, HEADER_SIZE + f.offset, f.size)

        def bit(register, name):
            f = reg(register).field(name)
            assert f.offset < WORD_BITS
            return 1 << f.offset

        kind, length = get("kind"), get("length")
        expected = Signal(32)

        # --- judgment: every check as a register, at most one carry chain a cycle -----------
        in_sequence = Signal()
        known = Signal()
        length_ok = Signal()
        malformed = Signal()
        index_bad = Signal()
        words = Signal(range(1 << 14))            # (length - fixed) / 4 of a word command
        rest = Signal.like(words)                 # words of a TABLE_WRITE not yet in entries
        read_end = Signal(33)
        read_bad = Signal()
        write_end = Signal(33)
        table_end = Signal(33)                    # index + entries of a TABLE_WRITE
        write_bad = Signal()
        table_bad = Signal()
        whole = Signal()                          # a TABLE_WRITE's words are whole entries
        # The command, one-hot and registered: every later state decodes one local bit.
        op = {c: Signal(name=f"is_{c.name.lower()}") for c in COMMANDS}
        is_table = op[Command.TABLE_WRITE]

        tables = [t for t in regmap.tables if t.access is Access.RW]
        table = arg(Command.TABLE_WRITE, "table")
        match = Signal(len(tables))             # one-hot: the table a TABLE_WRITE names
        found = Signal()
        used = Signal(range(max(t.used_words for t in tables) + 1))
        shift = Signal(range(max(t.entry_words for t in tables).bit_length()))
        depth = Signal(range(max(t.depth for t in tables) + 1))

        # Fixed parts are whole words, so the words' count is one subtraction of the length.
        assert all(spec.fixed % 4 == 0 for spec in COMMANDS.values() if spec.words)
        words_in = {c: length[2:] - s.fixed // 4 for c, s in COMMANDS.items() if s.words}
        length_checks = []
        for command, spec in COMMANDS.items():
            if spec.words:
                good = ((length > spec.fixed) & (length[:2] == 0)
                        & (length <= spec.fixed + 4 * MAX_WORDS))
            else:
                good = length == spec.fixed
            if command == Command.READ:
                count = arg(command, "count")
                good = good & (count != 0) & (count <= MAX_WORDS)
            length_checks.append((kind == command) & good)

        scope, index = arg(Command.KILL, "scope"), arg(Command.KILL, "index")
        latch = (kind == Command.KILL) | (kind == Command.RELEASE)
        scope_depth = {"gateway": 1, "session": regmap.n_sessions, "symbol": regmap.n_symbols}
        index_ok = Cat((scope == SCOPES.index(s)) & (index < scope_depth[s]) for s in SCOPES)
        size = regmap.size_words
        per_word = WORD_BITS.bit_length() - 1        # bit i of bitmap word w: index 32 w + i

        # --- execution state -------------------------------------------------------------------
        status = Signal(max(Status).bit_length())
        address = Signal(regmap.address_bits)
        word = Signal(WORD_BITS)
        left = Signal(range(MAX_WORDS + 1))       # words still to write, or to send
        k = Signal(range(max(t.used_words for t in tables)))
        last_k = Signal.like(k)                   # used - 1: the entry's last word
        step = Signal(range(max(t.entry_words for t in tables) + 1))   # to the next entry
        table_address = Signal(regmap.address_bits)
        latch_address = Signal(regmap.address_bits)
        latch_scope = Signal.like(scope)          # the frame's, copied next to their use
        latch_index = Signal.like(index)
        latch_word = Signal(WORD_BITS)
        fetch = Signal(range(6))
        byte_address = Signal.like(self.buffer.addr)
        reply_length = Signal(16)
        h = Signal(range(HEADER_SIZE))
        j = Signal(2)
        m.d.comb += self.buffer.addr.eq(byte_address)
        data = Signal(8, reset_less=True)       # no reset: nothing between the RAM and it
        m.d.sync += data.eq(self.buffer.data)

        header = Signal(8 * HEADER_SIZE)
        m.d.comb += header.eq(_bytes(HEADER_FIELDS, {
            "version": Const(VERSION, 8),
            "kind": kind | Kind.RESPONSE,
            "sequence": get("sequence"),
            "status": Cat(status, Const(0, 8 - len(status))),
            "mac_length": Const(0, 8),
            "length": reply_length,
        }))
        lane = self.response.payload[0]
        m.d.comb += lane.keep.eq(1)

        with m.FSM():
            with m.State("IDLE"), m.If(self.frame.valid):
                m.d.sync += [
                    in_sequence.eq(get("sequence") == expected),
                    known.eq(Cat(kind == c for c in COMMANDS).any()),
                    length_ok.eq(Cat(length_checks).any()),
                    malformed.eq((latch & (arg(Command.KILL, "reserved") != 0))
                                 | ((kind == Command.SNAPSHOT)
                                    & (arg(Command.SNAPSHOT, "clear") > 1))),
                    read_end.eq(arg(Command.READ, "address") + arg(Command.READ, "count")),
                    index_bad.eq(latch & ~index_ok.any()),
                    *(op[c].eq(kind == c) for c in COMMANDS),
                    words.eq(Mux(kind == Command.TABLE_WRITE, words_in[Command.TABLE_WRITE],
                                 words_in[Command.WRITE])),
                    rest.eq(words_in[Command.TABLE_WRITE]),
                    table_end.eq(arg(Command.TABLE_WRITE, "index")),
                    match.eq(Cat(table == t.address for t in tables)),
                    latch_scope.eq(scope),
                    latch_index.eq(index),
                ]
                m.next = "CHECK"
            with m.State("CHECK"):
                # The word and address of a KILL or RELEASE (the register or bitmap word).
                for command, action in ((Command.KILL, "set"), (Command.RELEASE, "release")):
                    with m.If(op[command]), m.Switch(latch_scope):
                        with m.Case(SCOPES.index("gateway")):
                            name = f"kill_gateway_{action}"
                            m.d.sync += [latch_address.eq(reg(name).address),
                                         latch_word.eq(bit(name, "gateway"))]
                        for scope_name in ("session", "symbol"):
                            t = regmap.table(f"kill_{scope_name}_{action}")
                            offset = t.field("bits").offset
                            with m.Case(SCOPES.index(scope_name)):
                                m.d.sync += [
                                    # The bitmap is aligned to its size: OR, not add.
                                    latch_address.eq(t.address | (latch_index >> per_word)),
                                    latch_word.eq(Const(1 << offset, WORD_BITS)
                                                  << latch_index[:per_word]),
                                ]
                m.d.sync += [
                    read_bad.eq(read_end > size),
                    write_end.eq(arg(Command.WRITE, "address") + words),
                    found.eq(match.any()),
                ]
                with m.Switch(match):
                    for n, t in enumerate(tables):
                        with m.Case("".join("1" if k == n else "-"
                                            for k in reversed(range(len(tables))))):
                            m.d.sync += [used.eq(t.used_words),
                                         shift.eq(t.entry_words.bit_length() - 1),
                                         depth.eq(t.depth)]
                m.next = "PLACE"
            with m.State("PLACE"):
                m.d.sync += [
                    table_address.eq(table + (arg(Command.TABLE_WRITE, "index") << shift)),
                    last_k.eq(used - 1),
                    step.eq((Const(1, len(step)) << shift) - used + 1),
                ]
                m.next = "DIVIDE"
            with m.State("DIVIDE"):
                # Only a TABLE_WRITE of a known table needs it; the rest pass in one cycle.
                with m.If(is_table & found & (rest >= used)):
                    m.d.sync += [rest.eq(rest - used), table_end.eq(table_end + 1)]
                with m.Else():
                    m.next = "BOUNDS"
            with m.State("BOUNDS"):
                m.d.sync += [write_bad.eq(write_end > size), table_bad.eq(table_end > depth),
                             whole.eq(rest == 0)]
                m.next = "JUDGE"
            with m.State("JUDGE"):
                verdict = Signal.like(status)
                with m.If(self.frame.payload.status != Status.OK):
                    m.d.comb += verdict.eq(self.frame.payload.status)
                with m.Elif(~in_sequence):
                    m.d.comb += verdict.eq(Status.OUT_OF_SEQUENCE)
                with m.Elif(~known):
                    m.d.comb += verdict.eq(Status.UNKNOWN_COMMAND)
                with m.Elif(~length_ok | (is_table & found & ~whole)):
                    m.d.comb += verdict.eq(Status.BAD_LENGTH)
                with m.Elif(malformed):
                    m.d.comb += verdict.eq(Status.MALFORMED)
                with m.Elif((op[Command.READ] & read_bad)
                            | (op[Command.WRITE] & write_bad)
                            | (is_table & ~found)):
                    m.d.comb += verdict.eq(Status.ADDRESS_RANGE)
                with m.Elif(index_bad | (is_table & table_bad)):
                    m.d.comb += verdict.eq(Status.INDEX_RANGE)
                with m.Else():
                    m.d.comb += verdict.eq(Status.OK)
                m.d.sync += status.eq(verdict)
                m.next = "SETUP"
            with m.State("SETUP"):
                # Registered verdict first: its priority chain and the setup's wide muxes do
                # not fit one cycle together.
                ok = status == Status.OK
                m.d.sync += [h.eq(0), j.eq(0), k.eq(0), fetch.eq(0), left.eq(1),
                             reply_length.eq(Mux(ok & op[Command.READ],
                                                 4 * arg(Command.READ, "count"), 4))]
                with m.If(ok):
                    m.d.sync += expected.eq(expected + 1)
                m.next = "RESPOND"
                def case(command):
                    pattern = "".join("1" if c == command else "-" for c in reversed(op))
                    return m.Case(pattern)

                with m.If(ok), m.Switch(Cat(op.values())):
                    with case(Command.READ):
                        m.d.sync += [address.eq(arg(Command.READ, "address")),
                                     left.eq(arg(Command.READ, "count"))]
                    with case(Command.WRITE):
                        m.d.sync += [address.eq(arg(Command.WRITE, "address")), left.eq(words),
                                     last_k.eq(0), step.eq(1),
                                     byte_address.eq(HEADER_SIZE + COMMANDS[Command.WRITE].fixed)]
                        m.next = "FETCH"
                    with case(Command.TABLE_WRITE):
                        m.d.sync += [address.eq(table_address), left.eq(words),
                                     byte_address.eq(HEADER_SIZE
                                                     + COMMANDS[Command.TABLE_WRITE].fixed)]
                        m.next = "FETCH"
                    for command, register, name in ((Command.COMMIT, "commit", "swap"),
                                                    (Command.HEARTBEAT, "heartbeat", "beat")):
                        with case(command):
                            m.d.sync += [address.eq(reg(register).address),
                                         word.eq(bit(register, name))]
                            m.next = "WRITE"
                    with case(Command.SNAPSHOT):
                        m.d.sync += [address.eq(reg("counter_control").address),
                                     word.eq(bit("counter_control", "snapshot")
                                             | Mux(arg(Command.SNAPSHOT, "clear")[0],
                                                   bit("counter_control", "clear"), 0))]
                        m.next = "WRITE"
                    for command in (Command.KILL, Command.RELEASE):
                        with case(command):
                            m.d.sync += [address.eq(latch_address), word.eq(latch_word)]
                            m.next = "WRITE"
            with m.State("FETCH"):
                # A byte arrives two cycles after its address (the block RAM's output is
                # registered here, its clock-to-output alone is most of a cycle): four reads,
                # six cycles.
                with m.If(fetch < 4):
                    m.d.sync += byte_address.eq(byte_address + 1)
                with m.If(fetch >= 2):
                    m.d.sync += word.eq(Cat(data, word[:-8]))
                m.d.sync += fetch.eq(fetch + 1)
                with m.If(fetch == 5):
                    m.d.sync += fetch.eq(0)
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [bus.write_en.eq(1), bus.write_addr.eq(address),
                             bus.write_data.eq(word)]
                with m.If(bus.write_ready):
                    m.d.sync += left.eq(left - 1)
                    with m.If(k == last_k):
                        m.d.sync += [k.eq(0), address.eq(address + step)]
                    with m.Else():
                        m.d.sync += [k.eq(k + 1), address.eq(address + 1)]
                    with m.If(left == 1):
                        m.d.sync += left.eq(1)
                        m.next = "RESPOND"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("RESPOND"):
                m.d.comb += [self.response.valid.eq(1), lane.data.eq(header.word_select(h, 8)),
                             lane.first.eq(h == 0)]
                with m.If(self.response.ready):
                    m.d.sync += h.eq(h + 1)
                    with m.If(h == HEADER_SIZE - 1):
                        with m.If((status == Status.OK) & op[Command.READ]):
                            m.next = "READ"
                        with m.Else():
                            m.d.sync += word.eq(expected)
                            m.next = "SEND"
            with m.State("READ"):
                m.d.comb += [bus.read_en.eq(1), bus.read_addr.eq(address)]
                m.d.sync += address.eq(address + 1)
                m.next = "READ_WAIT"
            # A table read is answered some cycles later (the register file's table reads
            # wait for a cycle when the engine's read port is free).
            with m.State("READ_WAIT"), m.If(bus.read_valid):
                m.d.sync += word.eq(bus.read_data)
                m.next = "SEND"
            with m.State("SEND"):
                last = (j == 3) & (left == 1)
                m.d.comb += [self.response.valid.eq(1),
                             lane.data.eq(word.word_select(~j, 8)), lane.last.eq(last)]
                with m.If(self.response.ready):
                    m.d.sync += j.eq(j + 1)
                    with m.If(last):
                        m.next = "DONE"
                    with m.Elif(j == 3):
                        m.d.sync += left.eq(left - 1)
                        m.next = "READ"
            with m.State("DONE"):
                m.d.comb += self.frame.ready.eq(1)
                for name in COUNTERS:
                    codes = [s for s in Status if s.counter == name]
                    live_event(m, getattr(self, f"count_{name}"),
                               Cat(status == s for s in codes).any())
                m.next = "IDLE"
        return m
