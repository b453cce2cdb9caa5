"""The control port's register file: a 32-bit word bus in, every register and table out.

Everything is built from the :class:`~wiregate.sw.regmap.RegisterMap`: addresses, entry word
placements and field offsets are the map's, never retyped here.

Writes. A write is taken in a cycle with ``write_en & write_ready``. A multi-word item (a
64-bit RW register, a table entry of several words) is staged: each word lands in a staging
register and the item takes effect when its last word (the highest address among its used
words) is written, with every word as staged then. Staging is per register, and one
staging register serves every table (the register map's rule: the words of one entry are
written with no other table entry in between); the entry index is the last word's. Words
of an entry beyond ``used_words``, entries beyond a table's depth, writes of read-only
registers and set bits of a kill bitmap beyond the last session or symbol are ignored.

At most one write is taken in three cycles: a table port's entry is the staging register
itself, and the risk engine at half the byte clock (W = 1,
:mod:`wiregate.hw.risk.half_rate`) takes the entry at its first edge after the pulse's
crossing, up to two cycles after the pulse. The control port's words come four bytes
apart at the least, so nothing is slower for it.

Control events. A write that asks the engine for something (commit, heartbeat, a kill or a
release, a reference update) becomes one event on ``control``, or one per set bit of a kill
bitmap word, lowest index first. The events of one write wait in a single slot, and while
any wait, ``write_ready`` is low for every write: table writes then reach the engine in the
order the host issued them relative to the events (a table write after a commit never
overtakes it), and nothing is lost. A commit waiting in the slot reads as
``status.commit_pending``, so the host never sees a gap between its write and the engine's
own ``commit_pending``.

Requests. Every request is taken into registers first, its address decoded as it is taken
into one flag per place it writes or reads, and acted on in the next cycle: no cycle holds
both the address decode and what the request does (together, the block's slowest path).
Reads wait as long as writes, so a read right after a write sees it.

Reads. A register, a bitmap of flip-flops and an unbanked table are answered
:data:`READ_LATENCY` cycles after the read is taken, a counter a cycle later (see
Counters). The status bits, the kill registers and the session bitmaps read the state
(W1S and W1C alike: the map's access meaning, both "read the state"); a 64-bit status
register latches its high word when its low word is read (the register map's rule for the
status block); counters read their snapshot, which only a host write changes. The pass
rules and the write-only registers read 0.

The other tables live where the order path reads them: the shadow bank of the banked tables
and the exposure and open orders in the engine, the symbol kill latches in the kill block's
memory. A read of one of them is a *table read*: its entry index goes out on one shared
index register to every ``read_<table>`` port (:func:`~wiregate.hw.tables.read_signature`)
and the register file waits for that table's ``ok``, which its owner raises in a cycle when
no order needs the read port. Then the addressed word of the entry is answered. So a host
read never stalls or changes an order; it may take several cycles, and the bus takes no
other read before it is answered (``read_valid``). The per-session state (``session_state``)
is flip-flops in the engine, read here through the same path.

Counters. The blocks count in narrow live counters that wrap (:mod:`wiregate.hw.counters`);
the counts the host reads are kept here, in LUT RAM, not flip-flops. A sweep that never
stops visits one counter a cycle in index order, through a five-stage pipeline (select a
capture in each group of eight; select the group's and read the counter's row; subtract
the live count the total was last taken at; add, saturating; write), and adds to each
counter's total what its live counter moved since the last visit. A ``counter_control``
write that asks for a snapshot or a clear holds every capture at the live count of one
instant, two cycles after the write is taken; the next round of the sweep (one visit to
each counter) then also writes each total into the snapshot memory and, for a clear, sets
the total to zero, with ``write_ready`` low until it is done. A counter read waits for that
round to finish (``read_valid`` comes later), so every read after the write sees the
counts of one instant, as the map says.
"""

import operator
from functools import reduce
from itertools import pairwise

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from wiregate.sw.dropcopy import Control
from wiregate.sw.model import SCOPES
from wiregate.sw.regmap import WORD_BITS, Access, RegisterMap

from ..counters import COUNT_BITS, LIVE_BITS, LIVE_STEP
from ..ingress.ouch_extract import PRICE_BITS
from ..tables import entry_layout, read_signature, write_signature
from ..timebase import TIME_BITS

__all__ = ["READ_LATENCY", "TABLE_READS", "RegisterFile", "bus_signature", "control_layout"]

# The tables read through their owners' read ports (``read_<name>``); both symbol kill
# bitmaps read the one latch memory (``read_kill_symbols``).
TABLE_READS = ("session", "session_limits", "gateway_limits", "symbol_limits", "symbol_hash",
               "exposure", "order", "kill_symbols")

# Cycles from a register read taken on the bus to its answer (``read_valid``): the request's
# register, then the answer's.
READ_LATENCY = 2

_ONES = (1 << WORD_BITS) - 1
# Readable register words per registered part of the read answer: each part is one
# compare per address and an OR of this many words, not a decode of the whole map.
ANSWER_GROUP = 8
# Counter captures per first-stage select of the counter sweep (a power of two).
SWEEP_GROUP = 8


def bus_signature(regmap: RegisterMap) -> wiring.Signature:
    """The host's word bus, from the host's side: one write and one read per cycle.

    A write is taken in a cycle with ``write_en & write_ready``. A read is taken in a cycle
    with ``read_en`` and answered with ``read_valid`` and ``read_data``:
    :data:`READ_LATENCY` cycles later, or for a counter or a table read (see the module
    docstring) some cycles more; no read is issued while a counter or table read waits for
    its answer (register reads may follow one another in every cycle).
    """
    return wiring.Signature({
        "write_en": Out(1),
        "write_addr": Out(regmap.address_bits),
        "write_data": Out(WORD_BITS),
        "write_ready": In(1),
        "read_en": Out(1),
        "read_addr": Out(regmap.address_bits),
        "read_data": In(WORD_BITS),
        "read_valid": In(1),
    })


def _case(table, address_bits: int) -> str:
    """A Switch pattern matching every word address of ``table`` (its span is aligned)."""
    span_bits = table.span.bit_length() - 1
    return f"{table.address >> span_bits:0{address_bits - span_bits}b}" + "-" * span_bits


def _read_table(name: str) -> str:
    """The register map's table whose layout ``read_<name>`` carries."""
    return "kill_symbol_set" if name == "kill_symbols" else name


def _placed(table, entry) -> tuple:
    """``entry`` (dense, by field name) placed as the map places it, in a signal of the
    table's ``entry_words`` words, and the assignments that place it."""
    words = Signal(table.entry_words * WORD_BITS, name=f"{table.name}_placed")
    placed = [words[f.offset:f.offset + f.width].eq(entry[f.name]) for f in table.fields]
    return words, placed


def _sums_layout(count_bits: int) -> data.StructLayout:
    """A counter's row of sums: its total since the last clear, and the live count the
    total was taken at."""
    return data.StructLayout({"total": count_bits, "seen": LIVE_BITS})


def _words(value) -> list:
    return [value[k:k + WORD_BITS] for k in range(0, len(value), WORD_BITS)]


def control_layout(regmap: RegisterMap) -> data.StructLayout:
    """A control event for the engine (the register file queues them, one per host action).

    ``code`` is a :class:`wiregate.sw.dropcopy.Control`; ``scope`` the index of the kill
    scope in :data:`wiregate.sw.model.SCOPES`; ``index`` the session or symbol; ``price`` and
    ``stamp`` a reference update's; ``in_sync`` a session sync change's.
    """
    return data.StructLayout({
        "code": 4,
        "scope": 2,
        "index": range(max(regmap.n_sessions, regmap.n_symbols)),
        "price": PRICE_BITS,
        "stamp": TIME_BITS,
        "in_sync": 1,
    })


class RegisterFile(wiring.Component):
    """The register file behind the host's control port (see the module docstring).

    Parameters
    ----------
    regmap : RegisterMap
        Every address, table and field.
    count_bits : int
        The totals' width: the map's :data:`~wiregate.sw.regmap.COUNT_BITS` (a test makes
        them narrow enough to saturate soon).

    Attributes
    ----------
    bus : In(:func:`bus_signature`)
        The host's word bus.
    write_<table> : Out(:func:`wiregate.hw.tables.write_signature`)
        For each RW table (``session``, ``pass_rule``, ``symbol_hash``, ``symbol_limits``,
        ``session_limits``, ``gateway_limits``): a one-cycle ``en`` pulse when an entry's
        last word is written; ``entry`` (dense, by field name) is valid with the pulse only.
    control : Out(stream of :func:`control_layout`)
        Control events in the order of the writes that caused them. ``scope`` is the index
        in :data:`wiregate.sw.model.SCOPES`. Fields an event does not use are 0, ``in_sync``
        always (session sync changes do not come from the host).
    loaded, active_bank, heartbeat_lost, commit_pending : In(1)
        The ``status`` fields (``loaded`` is ``limits_loaded``).
    epoch, timebase_us : In
        Read as the registers of the same names.
    in_sync : In(n_sessions)
        Read as the ``session_sync`` bitmap.
    kill_gateway, kill_sessions : In
        The latches, read at ``kill_gateway_*`` and ``kill_session_*``.
    read_<table> : Out(:func:`wiregate.hw.tables.read_signature`)
        For each of :data:`TABLE_READS`: a table read of the engine's state, of the shadow
        bank of a banked table, or (``read_kill_symbols``, of ``kill_symbol_set``'s layout)
        of the symbol kill latches. Every port's ``index`` is the one shared index.
    reading : Out(1)
        A table read waits for its answer: a read port shared with another user (the core's
        bench peeks) is the register file's meanwhile.
    session_state : In(array of the ``session_state`` entry, n_sessions)
        Read as the ``session_state`` table.
    gateway_credit_used : In(64)
        Read as the register of the same name.
    count_<counter> : In(:data:`wiregate.hw.counters.LIVE_BITS`)
        Every register of the ``counters`` block: a live counter (it wraps, and moves by at
        most :data:`~wiregate.hw.counters.LIVE_STEP` a cycle). Reads return its total as
        of the last ``counter_control.snapshot``: the events since the last
        ``counter_control.clear`` (or the reset), saturating at ``count_bits`` ones,
        zero-extended to the register's 64 bits. The snapshot's and the clear's instant is
        two cycles after the write is taken.

    Latency
    -------
    Reads: :data:`READ_LATENCY` (two) cycles; a counter three, more while a sweep runs (it
    waits for the sweep's end); a table read at least five, one more than its port's ``ok``
    waits. A table write port pulses two cycles after the write that causes it is taken, a
    control event becomes valid three cycles after (it leaves from a register), the events
    of a kill bitmap word one a bit position. ``write_ready`` is low in the cycle after a
    write that may queue events or copy the counters (by its address); after a
    ``counter_control`` write with a bit set, for one cycle per counter and six more (the
    decode, the instant, then a round of the sweep and its pipeline). Other writes may
    follow one another in every cycle.
    """

    def __init__(self, regmap, *, count_bits=COUNT_BITS):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._regmap = regmap
        self._count_bits = count_bits
        reg = regmap.register
        super().__init__({
            "bus": In(bus_signature(regmap)),
            **{f"write_{t.name}": Out(write_signature(regmap, t.name))
               for t in regmap.tables if t.access is Access.RW},
            "control": Out(stream.Signature(control_layout(regmap))),
            **{name: In(reg("status").field(field).width) for name, field in (
                ("loaded", "limits_loaded"), ("active_bank", "active_bank"),
                ("heartbeat_lost", "heartbeat_lost"), ("commit_pending", "commit_pending"))},
            "epoch": In(reg("epoch").width),
            "timebase_us": In(reg("timebase_us").width),
            "in_sync": In(regmap.n_sessions),
            "kill_gateway": In(reg("kill_gateway_set").field("gateway").width),
            "kill_sessions": In(regmap.n_sessions),
            **{f"read_{name}": Out(read_signature(regmap, _read_table(name)))
               for name in TABLE_READS},
            "session_state": In(data.ArrayLayout(entry_layout(regmap, "session_state"),
                                                 regmap.n_sessions)),
            "gateway_credit_used": In(reg("gateway_credit_used").width),
            "reading": Out(1),
            **{f"count_{r.name}": In(LIVE_BITS) for r in regmap.group("counters")},
        })

    @property
    def regmap(self):
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        regmap = self._regmap
        reg = regmap.register
        bus = self.bus
        address_bits = regmap.address_bits

        # --- the bus's requests, decoded as they are taken (see Requests) -------------------
        write = Signal()
        m.d.comb += write.eq(bus.write_en & bus.write_ready)
        data = Signal(WORD_BITS, name="wrote_data")
        wrote_addr = Signal(address_bits)
        read_en = Signal()
        read_addr = Signal(address_bits)
        m.d.sync += [data.eq(bus.write_data), wrote_addr.eq(bus.write_addr),
                     read_en.eq(bus.read_en), read_addr.eq(bus.read_addr)]

        written = {}        # a flag's name -> its address patterns

        def wrote(name, *patterns):
            """A flag: the write taken a cycle ago was at one of ``patterns``."""
            flag = Signal(name=f"wrote_{name}")
            m.d.sync += flag.eq(write & bus.write_addr.matches(*patterns))
            written[flag.name] = patterns
            return flag

        def asked(name, condition):
            """A flag: the read taken a cycle ago met ``condition`` (of the bus's address)."""
            flag = Signal(name=f"asked_{name}")
            m.d.sync += flag.eq(bus.read_en & condition)
            return flag

        def field(register, name):
            f = reg(register).field(name)
            return data[f.offset:f.offset + f.width]

        # --- control events: one slot, one event per set bit of ``pending`` ------------------
        # ``pending`` moves down a bit a cycle, ``event.index`` up one, and bit 0's event goes
        # into ``control``'s register when that is free: no pick of the lowest set bit and no
        # sum in any cycle. A kill bitmap word's events leave in index order, bit k's at least
        # k cycles after the write's first.
        event = Signal(control_layout(regmap))     # the events' code, scope, price, stamp
        referenced = Signal()                       # ...and whether they carry the last two
        pending = Signal(WORD_BITS)                 # bit i: an event for index event.index + i
        # Only ``valid`` and the index are registers of their own: the rest is the slot's,
        # which no write changes while an event of it waits.
        out = self.control
        out_index = Signal.like(event.index)
        free = Signal()
        m.d.comb += [
            free.eq(~out.valid | out.ready),
            out.payload.code.eq(event.code), out.payload.scope.eq(event.scope),
            out.payload.index.eq(out_index),
            # Only a reference update carries a price and a stamp (the others' are 0).
            out.payload.price.eq(Mux(referenced, event.price, 0)),
            out.payload.stamp.eq(Mux(referenced, event.stamp, 0)),
        ]
        with m.If(free):        # loaded whenever free, an event or not: only ``valid`` says
            m.d.sync += [out.valid.eq(pending[0]), out_index.eq(event.index)]
        # ``pending_next`` is ``pending`` of the next cycle.
        pending_next = Signal(WORD_BITS)
        advances = Signal()
        m.d.comb += [advances.eq(free | ~pending[0]),
                     pending_next.eq(Mux(advances, pending >> 1, pending))]
        m.d.sync += pending.eq(pending_next)
        with m.If(advances):
            m.d.sync += event.index.eq(event.index + 1)
        waits = pending.any() | out.valid           # events of a write not yet taken

        queueing = Signal()     # this cycle's write queues events (maybe none: no bit set)
        # The writes that queue events, by their flags (one a cycle at most): the slot takes
        # an AND-OR of their events, not a chain of choices.
        queued = []

        def queue(flag, code, scope=0, index=0, bits=1):
            queued.append((flag, {"code": code, "scope": scope, "index": index, "bits": bits}))

        # --- RW registers, staged below their last word --------------------------------------
        rw = [r for r in regmap.registers if r.access is Access.RW]
        value = {r.name: Signal(r.width, name=r.name) for r in rw}
        staged = {r.name: Signal(r.width - WORD_BITS, name=f"{r.name}_staged")
                  for r in rw if r.words > 1}

        # --- counters: live counters summed into LUT RAM (see the module docstring) ---------
        group = regmap.group("counters")
        n = len(group)
        first = group[0].address
        if any(r.addresses != tuple(range(first + 2 * k, first + 2 * k + 2))
               or r.width != 2 * WORD_BITS for k, r in enumerate(group)):
            raise ValueError("the counters must be 64-bit registers at consecutive addresses")
        # A counter is summed every n cycles; across a copy its capture stands still for n
        # more, so the live count moves at most this much between two sums of it, which the
        # live counters' width must hold for the difference to be the count's.
        if n < 4:       # a visit writes its row three cycles after it reads it
            raise ValueError(f"{n} counters: the sweep needs four at least")
        if (2 * n + 2) * LIVE_STEP >= 1 << LIVE_BITS:
            raise ValueError(f"{n} counters: a live counter of {LIVE_BITS} bits may wrap "
                             "between two sums")
        width = self._count_bits
        # ``capture`` follows the live count a cycle behind, and stands still from the copy's
        # instant until the copy has summed it.
        capture = [Signal(LIVE_BITS, name=f"{r.name}_capture") for r in group]
        lut_ram = {"ram_style": "distributed"}
        # Per counter: its total since the last clear (saturating) and the live count that
        # total was taken at (``seen``); and the snapshot the host reads.
        m.submodules.counter_sums = sums = Memory(shape=_sums_layout(width), depth=n,
                                                  init=[], attrs=lut_ram)
        m.submodules.counter_snapshot = snapshots = Memory(shape=width, depth=n, init=[],
                                                           attrs=lut_ram)
        # The sweep is a pipeline that never stops, one counter a cycle in index order:
        # ``now`` picks a capture in each group of SWEEP_GROUP (a register per group), the
        # next cycle picks the group's register and reads the counter's sums, then the
        # difference from ``seen``, then the saturating add, then the write. No stage holds
        # more than one narrow mux or one carry chain (the 36-to-1 select in one cycle, and
        # a carry chain with the LUT RAM's write, were each once the block's slowest path).
        # A copy (``copying``, n cycles, every counter once) also writes the snapshot and,
        # for a clear, a zero total.
        sums_read, sums_write = sums.read_port(), sums.write_port()
        snapshot_write, snapshot_read = snapshots.write_port(), snapshots.read_port()
        snapshot, clear = Signal(), Signal()     # what the copy does, from the write's bits
        request = Signal()                       # a copy is asked for (the write's decode)
        capturing = Signal()                     # the captures stand still from now
        copy_left = Signal(range(n + 1))         # counters the copy has still to pick
        copying = Signal()                       # stage 1: ``now`` is picked for the copy
        now = Signal(range(n))
        member_bits = SWEEP_GROUP.bit_length() - 1
        picked = Signal(range(n))                # stage 2
        groups = [Signal(LIVE_BITS, name=f"sweep_group{g}")
                  for g in range(-(-n // SWEEP_GROUP))]
        in_group = [Signal(name=f"sweep_in_group{g}") for g in range(len(groups))]
        at_diff, live = Signal(range(n)), Signal(LIVE_BITS)   # stage 3: less ``seen``
        at_sum, moved, total = Signal(range(n)), Signal(LIVE_BITS), Signal(width)   # stage 4
        at_write, summed = Signal(range(n)), Signal(width)                          # stage 5
        seen_sum, seen_write = Signal(LIVE_BITS), Signal(LIVE_BITS)
        copy_stage = [copying, *(Signal(name=f"copy_stage{k}") for k in range(2, 6))]
        more = Signal(width + 1)
        m.d.comb += [copying.eq(copy_left != 0), more.eq(total + moved)]
        m.d.sync += [
            picked.eq(now), at_diff.eq(picked), at_sum.eq(at_diff), at_write.eq(at_sum),
            *(later.eq(earlier) for earlier, later in pairwise(copy_stage)),
            live.eq(reduce(operator.or_, (
                r & in_group[g].replicate(LIVE_BITS) for g, r in enumerate(groups)))),
            moved.eq(live - sums_read.data.seen), total.eq(sums_read.data.total),
            seen_sum.eq(live), seen_write.eq(seen_sum),
            summed.eq(Mux(more[-1], (1 << width) - 1, more[:-1])),
        ]
        # Stage 2 picks the group by a flag a group, each driving that group's bits only.
        m.d.sync += [in_group[g].eq(now[member_bits:] == g) for g in range(len(groups))]
        wraps = Signal()
        m.d.comb += wraps.eq(now == n - 1)
        m.d.sync += now.eq(Mux(wraps, 0, now + 1))
        # Each group's select takes the member from a copy of ``now``'s low bits of its own:
        # one register drove hundreds of multiplexers across the block (its slowest path).
        # Each copy counts for itself, so synthesis keeps them apart.
        for g, group_register in enumerate(groups):
            member = Signal(member_bits, name=f"sweep_member{g}")
            m.d.sync += [member.eq(Mux(wraps, 0, member + 1)),
                         group_register.eq(Array(capture[g * SWEEP_GROUP:
                                                         (g + 1) * SWEEP_GROUP])[member])]
        copy_write = copy_stage[-1]
        m.d.comb += [
            sums_read.addr.eq(picked),
            sums_write.addr.eq(at_write),
            sums_write.data.total.eq(Mux(copy_write & clear, 0, summed)),
            sums_write.data.seen.eq(seen_write),
            sums_write.en.eq(1),
            snapshot_write.addr.eq(at_write),
            snapshot_write.data.eq(summed),
            snapshot_write.en.eq(copy_write & snapshot),
        ]
        # ``busy``: a copy is under way, a flip-flop of its own whose input is the next
        # cycle's stages (``capturing``'s own net reaches dozens of enables). Writes wait
        # while it is high (``write_ready``).
        busy = Signal()
        m.d.sync += busy.eq(request | capturing | Cat(copy_stage[:-1]).any())
        # The write only raises ``capturing``; the captures stand still from the next
        # cycle, so the enables of the capture flip-flops start at flip-flops, not at the
        # bus's address decode (that path was the block's slowest). Each counter's capture
        # has a ``held`` of its own: one net to every enable took 11 ns of wire alone.
        copy_asked = wrote("counter_control", reg("counter_control").address)
        m.d.comb += request.eq(copy_asked & (field("counter_control", "snapshot")
                                             | field("counter_control", "clear")))
        m.d.sync += capturing.eq(request)
        with m.If(request):
            m.d.sync += [snapshot.eq(field("counter_control", "snapshot")),
                         clear.eq(field("counter_control", "clear"))]
        with m.If(capturing):
            m.d.sync += copy_left.eq(n)
        with m.Elif(copying):
            m.d.sync += copy_left.eq(copy_left - 1)
        released = Signal()
        m.d.sync += released.eq(copy_left == 1)
        for c, r in zip(capture, group, strict=True):
            held = Signal(name=f"{r.name}_held")
            with m.If(capturing):
                m.d.sync += held.eq(1)
            with m.Elif(released):
                m.d.sync += held.eq(0)
            with m.If(~held):
                m.d.sync += c.eq(getattr(self, f"count_{r.name}"))
        queues = Signal()       # this cycle's write may queue events or copy the counters
        # The next counter_control write must not capture before this sweep is done, and no
        # write is taken while events wait in the slot or in ``control``, in the cycle after
        # one that may queue some is taken, or while that one queues them (even if its bits
        # name none, or the last event leaves now: a cycle later, but each flip-flop's input
        # is a few gates, not the queue's next state). Nor while the engine's commit is in
        # flight: the bank the host writes has just become the one the events ahead of the
        # commit still read (the engine's symbol limits rely on it). Three registers (with
        # ``busy``), ANDed after them: no one flip-flop's input gathers every term.
        no_events, no_commit = (Signal(init=1, name=f"ready_{n}") for n in ("events",
                                                                             "commit"))
        m.d.sync += [no_events.eq(~waits & ~queueing & ~queues),
                     no_commit.eq(~self.commit_pending)]
        # One write in three cycles (Writes, in the module docstring): the two after a write
        # are its flag's and its staging's, so a table entry stays as its pulse wrote it for
        # two cycles after the pulse.
        took = Signal(2)
        m.d.sync += took.eq(Cat(write, took[0]))
        m.d.comb += bus.write_ready.eq(no_events & ~busy & no_commit & ~took.any())

        # --- tables: one staging register, the last used word writes the entry -----------
        # The ports' entries are the staging register itself, not a registered copy of it:
        # the next word can only land after the pulse, and the copy would double the
        # flip-flops. One register for every table: an entry's words come together (the
        # host's encoders emit them in one command), so no table needs its own.
        tables = [t for t in regmap.tables if t.access is Access.RW]
        table_staged = Signal(max(t.used_words for t in tables) * WORD_BITS, name="table_staged")
        for t in tables:
            port = getattr(self, f"write_{t.name}")
            m.d.sync += port.en.eq(0)
            m.d.comb += [port.entry[f.name].eq(table_staged[f.offset:f.offset + f.width])
                         for f in t.fields]

        for r in rw:
            for k, address in enumerate(r.addresses):
                with m.If(wrote(f"{r.name}_{k}", address)):
                    if k < r.words - 1:
                        m.d.sync += staged[r.name].word_select(k, WORD_BITS).eq(data)
                    elif r.words > 1:
                        m.d.sync += value[r.name].eq(Cat(staged[r.name], data))
                    else:
                        m.d.sync += value[r.name].eq(data)

        queue(wrote("commit", reg("commit").address), Control.COMMIT,
              bits=field("commit", "swap"))
        queue(wrote("heartbeat", reg("heartbeat").address), Control.HEARTBEAT,
              bits=field("heartbeat", "beat"))
        for action, code in (("set", Control.KILL), ("release", Control.RELEASE)):
            name = f"kill_gateway_{action}"
            queue(wrote(name, reg(name).address), code, scope=SCOPES.index("gateway"),
                  bits=field(name, "gateway"))
        symbol = field("ref_update", "symbol")
        referencing = wrote("ref_update", reg("ref_update").address)
        queue(referencing, Control.SET_REFERENCE, index=symbol,
              bits=symbol < regmap.n_symbols)
        # The price and the stamp load on their own write's flag, not on the OR of every
        # queueing write's (fanned out to a hundred flip-flops, a slowest path).
        with m.If(referencing):
            m.d.sync += [event.price.eq(value["ref_price"]),
                         event.stamp.eq(value["ref_stamp_us"])]

        for t in tables:
            word_bits = t.entry_words.bit_length() - 1
            span_bits = t.span.bit_length() - 1
            word = wrote_addr[:word_bits]
            index = wrote_addr[word_bits:span_bits]
            port = getattr(self, f"write_{t.name}")
            last = t.used_words - 1
            with m.If(wrote(t.name, _case(t, address_bits))):
                for k in range(last):
                    with m.If(word == k):
                        m.d.sync += table_staged.word_select(k, WORD_BITS).eq(data)
                with m.If((word == last) & (index < t.depth)):
                    m.d.sync += [table_staged.word_select(last, WORD_BITS).eq(data),
                                 port.en.eq(1), port.index.eq(index)]

        for scope in ("session", "symbol"):
            depth = regmap.n_sessions if scope == "session" else regmap.n_symbols
            last, tail = divmod(depth - 1, WORD_BITS)
            for action, code in (("set", Control.KILL), ("release", Control.RELEASE)):
                t = regmap.table(f"kill_{scope}_{action}")
                k = wrote_addr[:t.span.bit_length() - 1]
                # Bits past the last latch name nothing: no event for them.
                valid = Mux(k < last, _ONES, Mux(k == last, (2 << tail) - 1, 0))
                queue(wrote(t.name, _case(t, address_bits)), code, scope=SCOPES.index(scope),
                      index=Cat(Const(0, WORD_BITS.bit_length() - 1), k), bits=data & valid)

        def chosen(name, width):
            """``name`` of the queueing write's events: an AND-OR over the flags."""
            terms = []
            for flag, values in queued:
                term = Signal(width, name=f"queue_{name}")
                m.d.comb += term.eq(Mux(flag, values[name], 0))
                terms.append(term)
            return reduce(operator.or_, terms)

        m.d.comb += queueing.eq(Cat(flag for flag, _ in queued).any())
        # The writes that queue events or ask for a counter copy, known by their addresses
        # (those of the flags above) as they are taken.
        m.d.comb += queues.eq(write & bus.write_addr.matches(*(
            pattern for flag in [*(flag for flag, _ in queued), copy_asked]
            for pattern in written[flag.name])))
        with m.If(queueing):
            m.d.sync += [*(event[name].eq(chosen(name, len(Value.cast(event[name]))))
                           for name in ("code", "scope", "index")),
                         referenced.eq(referencing)]
            m.d.comb += pending_next.eq(chosen("bits", WORD_BITS))

        # --- reads ---------------------------------------------------------------------------
        def place(register, values):
            word = Signal(reg(register).width, name=f"{register}_read")
            for f in reg(register).fields:
                m.d.comb += word[f.offset:f.offset + f.width].eq(values[f.name])
            return word

        commit_queued = ((pending.any() & (event.code == Control.COMMIT))
                         | (out.valid & (out.payload.code == Control.COMMIT)))
        readable = {}       # word address -> value
        for r in regmap.group("id"):
            readable.update(zip(r.addresses, _words(Const(r.reset, r.width)), strict=True))
        for r in rw:
            readable.update(zip(r.addresses, _words(value[r.name]), strict=True))
        readable[reg("status").address] = place("status", {
            "limits_loaded": self.loaded, "active_bank": self.active_bank,
            "heartbeat_lost": self.heartbeat_lost,
            "commit_pending": self.commit_pending | commit_queued})
        readable[reg("epoch").address] = self.epoch
        for action in ("set", "release"):
            readable[reg(f"kill_gateway_{action}").address] = place(
                f"kill_gateway_{action}", {"gateway": self.kill_gateway})
        for name, bitmap in (("session_sync", self.in_sync),
                             ("kill_session_set", self.kill_sessions),
                             ("kill_session_release", self.kill_sessions)):
            t = regmap.table(name)
            words = _words(Cat(bitmap, Const(0, t.depth * WORD_BITS - len(bitmap))))
            readable.update({t.entry_address(k): w for k, w in enumerate(words)})

        # The high word of a wide status register is latched when its low word is read, so
        # the two reads see one value even though the register keeps moving.
        latched = {}
        for r in regmap.group("status"):
            if r.words > 1:
                source = getattr(self, r.name)
                latched[r.address] = (Signal(r.width - WORD_BITS, name=f"{r.name}_high"),
                                      source[WORD_BITS:])
                readable[r.address] = source[:WORD_BITS]
                readable.update(zip(r.addresses[1:], _words(latched[r.address][0]), strict=True))

        # Table reads: the entry index on the shared index register until the table's owner
        # says ``ok``, not before the third cycle after the index is set (an owner may
        # register its answer twice: the symbol hash's is, raw and rebuilt).
        sources = {}        # table -> (entry, ok)
        waited = Signal()
        waits = Signal(2)
        index = Signal(max(t.depth for t in regmap.tables).bit_length())
        for name in TABLE_READS:
            port = getattr(self, f"read_{name}")
            m.d.comb += port.index.eq(index)
            for table in ((f"kill_symbol_{a}" for a in ("set", "release"))
                          if name == "kill_symbols" else (name,)):
                sources[table] = (port.data, port.ok)
        # The session's state in a register: like an owner's port, it answers a cycle after
        # the index is set, within ``waited``'s wait. It is picked by a flag a session,
        # loaded only by a read of it, each flag driving that session's bits only: the
        # shared index's fan-out into a select of every session's state was the block's
        # slowest path (9.0 ns, 8.0 ns routing), and an index of its own still 8.6 ns.
        state = Signal(entry_layout(regmap, "session_state"))
        state_pick = Signal(regmap.n_sessions)
        m.d.sync += state.eq(reduce(operator.or_, (
            self.session_state[s].as_value() & state_pick[s].replicate(len(state.as_value()))
            for s in range(regmap.n_sessions))))
        sources["session_state"] = (state, Const(1))
        reads = [regmap.table(name) for name in sources]
        waiting = Signal(len(reads))
        # The addressed word, a flag per word of each table, loaded only by a read of its
        # table; each flag drives its word's bits only. One index register for all drove
        # every table's word select (the block's slowest path), and a word index per table
        # into its select was still the slowest (8.5 ns, 11 steps).
        word = [Signal(t.entry_words, name=f"{t.name}_word") for t in reads]
        chosen = []
        for t, at in zip(reads, word, strict=True):
            words, placed = _placed(t, sources[t.name][0])
            m.d.comb += placed
            chosen.append(reduce(operator.or_, (
                w & at[k].replicate(WORD_BITS) for k, w in enumerate(_words(words)))))
        # ``waiting`` is a flag per table, so the answer is an AND-OR of the owners' ``ok``
        # (``answers``, one-hot), not a pick by the table's number.
        answers = Signal(len(reads))
        answered = Signal()
        m.d.comb += [answers.eq(Cat(waited & w & ok for w, (_, ok) in zip(
                         waiting, sources.values(), strict=True))),
                     answered.eq(answers.any())]
        m.d.sync += [waits.eq(Cat(waiting.any(), waits[0])), waited.eq(waits[1])]
        m.d.comb += self.reading.eq(waiting.any())
        with m.If(answered):
            m.d.sync += waiting.eq(0)
        table_read = Signal()       # the read taken a cycle ago is a table read
        for k, t in enumerate(reads):
            word_bits = t.entry_words.bit_length() - 1
            span_bits = t.span.bit_length() - 1
            entry = bus.read_addr[word_bits:span_bits]
            with m.If(asked(t.name, bus.read_addr.matches(_case(t, address_bits))
                            & (entry < t.depth))):
                m.d.comb += table_read.eq(1)
                m.d.sync += [waiting[k].eq(1), waits.eq(0), waited.eq(0),
                             index.eq(read_addr[word_bits:span_bits]),
                             word[k].eq(Cat(read_addr[:word_bits] == w
                                            for w in range(t.entry_words)))]
                if t.name == "session_state":
                    m.d.sync += state_pick.eq(Cat(read_addr[word_bits:span_bits] == s
                                                  for s in range(regmap.n_sessions)))

        # A counter read waits for the sweep to finish (``counter_wait``), then reads the
        # snapshot memory, whose read register answers the next cycle: the other registers'
        # answer is registered beside it and the two are chosen after.
        offset = read_addr - first
        reads_counter = asked("counter", (bus.read_addr >= first)
                              & (bus.read_addr < first + 2 * n))
        counter_wait = Signal()
        counter_go = Signal()
        counter_index = Signal(range(n))
        counter_word = Signal()
        high_word = Signal()
        m.d.comb += [counter_go.eq(counter_wait & ~busy), snapshot_read.addr.eq(counter_index)]
        with m.If(reads_counter):
            m.d.sync += [counter_wait.eq(1), counter_index.eq(offset[1:]),
                         high_word.eq(offset[0])]
        with m.If(counter_go):
            m.d.sync += counter_wait.eq(0)
        # The answer is registered in parts, each 0 unless it answers: the register words in
        # groups of ANSWER_GROUP addresses, the table read beside them; the bus ORs the parts
        # (and picks the counter). No cycle decodes every readable address into one word.
        # A table read's answer in two steps: each table's addressed word into a register,
        # then the table's pick (the two selects in one cycle were the block's slowest path).
        table_answer = Signal(WORD_BITS)
        table_words = [Signal(WORD_BITS, name=f"table_word{k}") for k in range(len(reads))]
        answers_1 = Signal(len(reads))
        answered_1 = answers_1.any()
        m.d.sync += [*(w.eq(c) for w, c in zip(table_words, chosen, strict=True)),
                     answers_1.eq(answers),
                     table_answer.eq(reduce(operator.or_, (
                         w & a.replicate(WORD_BITS) for w, a in zip(
                             table_words, answers_1, strict=True))))]
        parts = [table_answer]
        words = sorted(readable.items())
        for g in range(0, len(words), ANSWER_GROUP):
            part = Signal(WORD_BITS, name=f"answer{g // ANSWER_GROUP}")
            hits = []
            for address, read_word in words[g:g + ANSWER_GROUP]:
                hit = asked(f"{address:#x}", bus.read_addr == address)
                hits.append(read_word & hit.replicate(WORD_BITS))
                if address in latched:
                    high, source = latched[address]
                    with m.If(hit):
                        m.d.sync += high.eq(source)
            m.d.sync += part.eq(reduce(operator.or_, hits))
            parts.append(part)
        m.d.comb += bus.read_data.eq(Mux(counter_word,
                                         Cat(snapshot_read.data, Const(0, 2 * WORD_BITS - width))
                                         .word_select(high_word, WORD_BITS),
                                         reduce(operator.or_, parts)))
        m.d.sync += counter_word.eq(counter_go)
        m.d.sync += bus.read_valid.eq(read_en & ~table_read & ~reads_counter | answered_1
                                      | counter_go)
        return m
