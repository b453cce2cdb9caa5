"""A block-RAM table read early and written at one execute stage, with every hazard forwarded.

The risk engine reads its state tables (exposure, open orders) some cycles before the one
cycle where it decides and writes (the *execute* stage), because the key is known early and a
block RAM answers a cycle late. Between the read and the execute, the events ahead in the
pipeline execute too and may write the same key, so the value read is stale. The classic
answer is to stall; the order path must never stall, so this table forwards instead:

A read issued in cycle ``r`` sees every write up to cycle ``r`` (the memory is written at
the end of the write cycle and the read port is transparent to it). The event reaches the
execute stage in cycle ``r + distance``; the writes it missed are those of cycles ``r + 1``
.. ``r + distance - 1``. So the value travels to the execute stage in registers, one a stage,
and each write is applied *as it happens* to every travelling value of its address: a stage
register takes the write of its cycle instead of the value before it when their addresses
match. No key pattern can defeat it and nothing waits, and the execute stage reads a
register: no write history is kept and no forwarding multiplexer sits before execute.

Block RAM (an ECP5 DP16KD) has two ports: the engine's read takes one and the execute
stage's write the other. The host's *peek* has no port of its own: it borrows the read port
in the cycles whose read nobody uses (``read_en`` low: no event at the reading stage), so a
table with a peek port is one memory. (A third port, even one sharing the write's address,
makes Yosys build the table twice.) The read is transparent to the write for the same reason:
a read port that must see the old data during a write is kept apart from that write.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["RmwTable"]


class RmwTable(wiring.Component):
    """A table whose reads are answered ``distance`` cycles later, forwarded to that moment.

    Parameters
    ----------
    shape : shape-castable
        One entry.
    depth : int
        Entries; the table starts all zeros.
    distance : int
        Cycles from a read's address to the execute stage that uses its value, >= 1.

    Attributes
    ----------
    read_addr : In(range(depth))
        Address read this cycle (a read every cycle; an unused one costs nothing).
    value : Out(shape)
        In cycle ``c``: the entry at the address read in ``c - distance`` as it stands in
        cycle ``c`` (every write up to ``c - 1`` applied).
    write_en, write_addr, write_data : In
        The execute stage's write; it lands at the end of the cycle.
    read_en, peek_addr : In(1), In(range(depth))
    peek_data : Out(shape)
        With ``peek``: an unforwarded read for the host on the read port. In a cycle with
        ``read_en`` low the port reads ``peek_addr`` instead of ``read_addr`` (whose value is
        then meaningless), and in the next cycle ``peek_data`` is the entry at ``peek_addr``
        with every write up to the read's cycle applied. After a cycle with ``read_en`` high,
        ``peek_data`` is meaningless: the host peeks while the engine is idle.
    tap<d> : Out(shape)
        For each ``d`` in ``taps``: in cycle ``c``, the entry at the address read in
        ``c - d`` with every write up to ``c - 1`` applied, for a stage that needs part of
        the entry (a key for another table) before the execute stage.
    lands<d> : Out(1)
        For each ``d`` in ``lands`` (2 to ``distance``): in cycle ``c``, this cycle's write is
        at the address that ``tap<d>`` (``value`` at ``distance``) shows in cycle ``c + 1``,
        which is then ``write_data``, else what ``tap<d - 1>`` shows now. A stage can
        register a test of the entry a cycle early, the test made on both and chosen by
        ``lands``: the write's data, late in its cycle, then goes through the test and not
        through a multiplexer before it.

    Latency
    -------
    ``distance`` cycles from ``read_addr`` to ``value``.
    """

    def __init__(self, shape, depth, distance, taps=(), *, lands=(), peek=False):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"Depth must be a positive integer, not {depth!r}")
        if not isinstance(distance, int) or distance < 1:
            raise ValueError(f"Distance must be an integer of at least 1, not {distance!r}")
        taps = tuple(taps)
        for tap in taps:
            if not isinstance(tap, int) or not 1 <= tap < distance:
                raise ValueError(f"A tap must be between 1 and distance - 1, not {tap!r}")
        lands = tuple(lands)
        for d in lands:
            if not isinstance(d, int) or not 2 <= d <= distance:
                raise ValueError(f"A lands distance must be between 2 and distance, not {d!r}")
        self._lands = lands
        self._shape = shape
        self._depth = depth
        self._distance = distance
        self._taps = taps
        self._peek = bool(peek)
        peek_members = {"read_en": In(1), "peek_addr": In(range(depth)),
                        "peek_data": Out(shape)} if peek else {}
        super().__init__({
            **{f"tap{tap}": Out(shape) for tap in taps},
            **{f"lands{d}": Out(1) for d in lands},
            "read_addr": In(range(depth)),
            "value": Out(shape),
            "write_en": In(1),
            "write_addr": In(range(depth)),
            "write_data": In(shape),
            **peek_members,
        })

    def elaborate(self, platform):
        m = Module()
        depth, distance = self._depth, self._distance
        m.submodules.memory = memory = Memory(shape=self._shape, depth=depth, init=[])
        write = memory.write_port()
        read = memory.read_port(transparent_for=(write,))
        m.d.comb += [
            write.en.eq(self.write_en),
            write.data.eq(self.write_data),
            write.addr.eq(self.write_addr),
        ]
        if self._peek:
            m.d.comb += [read.addr.eq(Mux(self.read_en, self.read_addr, self.peek_addr)),
                         self.peek_data.eq(read.data)]
        else:
            m.d.comb += read.addr.eq(self.read_addr)

        # The address and the value travel to the execute stage, the value joining one cycle
        # after the read; each stage takes the write of its cycle when the addresses match.
        addrs = [self.read_addr]
        for k in range(distance - 1):
            stage = Signal(range(depth), name=f"addr{k + 1}")
            m.d.sync += stage.eq(addrs[-1])
            addrs.append(stage)
        value = read.data
        values = {1: value}      # the value at each stage, by distance, every write applied
        for k in range(1, distance):
            stage = Signal(self._shape, name=f"data{k + 1}")
            lands = Signal(name=f"lands{k + 1}")
            m.d.comb += lands.eq(self.write_en & (self.write_addr == addrs[k]))
            m.d.sync += stage.eq(Mux(lands, self.write_data, value))
            if k + 1 in self._lands:
                m.d.comb += getattr(self, f"lands{k + 1}").eq(lands)
            value = stage
            values[k + 1] = value
        m.d.comb += self.value.eq(values[distance])
        for tap in self._taps:
            m.d.comb += getattr(self, f"tap{tap}").eq(values[tap])
        return m
