"""The register file under the Amaranth simulator, against a host model built on sw/regmap.py.

Every bus word comes from the register map's encoders (``encode_write``,
``encode_table_write``, ``encode_kill``, ``encode_release``, ``encode_reference_update``) or
from its address lists (``read_addresses``, ``entry_address``); every read is checked through
``decode_read`` and the ID block through ``expected_id`` / ``check_id``. No address or field
offset is typed here.

Table reads (the shadow banks, the engine's state, the symbol kill latches) are answered by
owners modelled here: each ``read_<table>`` port answers from a dictionary of random entries
in random cycles (``ok``), so the register file must wait for its table's owner, keep the
index, and place the entry's fields where the map says.

The scoreboard is one list, in bus order, of what the host's writes must produce: table writes
(the entry decoded by field name) and control events. The monitor records both as they leave,
in cycle order, under random ``control.ready`` backpressure, so a table write that overtook an
event would show as a reordering.
"""

import random
from dataclasses import dataclass, field

import pytest
from amaranth.sim import Simulator

from wiregate.hw.control.register_file import TABLE_READS, RegisterFile
from wiregate.hw.counters import COUNT_BITS, LIVE_BITS, LIVE_STEP
from wiregate.sw.dropcopy import Control
from wiregate.sw.model import SCOPES
from wiregate.sw.regmap import WORD_BITS, Access, RegisterMap

DEFAULT = {}
# Cycles a write, a read or a drain may wait before the bench calls it stuck (a sweep, a slow
# engine, a table owner whose random ``ok`` is rare: at 5 % a wait of 200 cycles came up).
WAIT_LIMIT = 5000
# Depths that are not powers of two, two session bitmap words with a partial last one; ID
# values other than the defaults.
ODD = {"n_sessions": 37, "n_symbols": 40, "symbol_slots": 64, "n_pass_rules": 3,
       "n_executions": 32, "dropcopy_depth": 8, "profile": 7}


def entry_write(regmap, table, index, fields):
    """(address, word) pairs writing one entry, by ``encode_table_write``.

    Except for a table with a field named like one of its parameters (symbol_hash's
    ``index``), which it cannot take as a keyword: then the table's own ``encode_entry`` at
    its ``entry_address``.
    """
    if {"table", "index"} & fields.keys():
        t = regmap.table(table)
        base = t.entry_address(index)
        return [(base + k, w) for k, w in enumerate(t.encode_entry(fields, index=index))]
    return regmap.encode_table_write(table, index, **fields)


def _event(code, scope=0, index=0, price=0, stamp=0):
    # Fields an event does not use are 0 (in_sync: the host never sends a sync change).
    return ("event", Control(code), scope, index, price, stamp, 0)


@dataclass
class Host:
    """What the gateway must do and hold after the host's writes so far."""

    regmap: RegisterMap
    expected: list = field(default_factory=list)     # table writes and events, in bus order
    staged: list = field(default_factory=list)       # the staging words every table shares
    rw: dict = field(default_factory=dict)           # RW register -> value as applied
    rw_staged: dict = field(default_factory=dict)    # RW register -> staged words
    live: dict = field(default_factory=dict)         # counter -> events since the reset
    total: dict = field(default_factory=dict)        # counter -> events since the last clear
    snapshot: dict = field(default_factory=dict)
    count_bits: int = COUNT_BITS                     # the totals saturate at its ones
    inputs: dict = field(default_factory=dict)       # status, bitmap and latch inputs
    owned: dict = field(default_factory=dict)        # read port -> index -> entry

    def __post_init__(self):
        self.staged = [0] * max(t.used_words for t in self.rw_tables())
        for r in self.regmap.registers:
            if r.access is Access.RW:
                self.rw[r.name] = 0
                self.rw_staged[r.name] = [0] * r.words
        for r in self.regmap.group("counters"):
            self.live[r.name] = self.total[r.name] = self.snapshot[r.name] = 0

    def rw_tables(self):
        return [t for t in self.regmap.tables if t.access is Access.RW]

    def table_words(self, table, address, word):
        """A word written into ``table``: staged, or the last used word, which writes."""
        offset = address - table.address
        index, k = divmod(offset, table.entry_words)
        if k < table.used_words - 1:
            self.staged[k] = word
        elif k == table.used_words - 1 and index < table.depth:
            self.staged[k] = word
            self.expected.append(("write", table.name, index,
                                  table.decode_entry(self.staged[:table.used_words])))

    def register_words(self, name, pairs):
        """Words written to RW register ``name``: applied with its last word."""
        reg = self.regmap.register(name)
        for address, word in pairs:
            k = reg.addresses.index(address)
            self.rw_staged[name][k] = word
            if k == reg.words - 1:
                self.rw[name] = reg.value(self.rw_staged[name])


class Bench:
    """Drives the bus word by word and keeps the host model in step."""

    def __init__(self, ctx, dut, host, rng):
        self.ctx, self.dut, self.host, self.rng = ctx, dut, host, rng
        self.regmap = host.regmap

    async def write(self, pairs, idle=True):
        """Each word once ``write_ready`` takes it; then, if ``idle``, a few idle cycles."""
        bus = self.dut.bus
        for address, word in pairs:
            self.ctx.set(bus.write_en, 1)
            self.ctx.set(bus.write_addr, address)
            self.ctx.set(bus.write_data, word)
            for _ in range(WAIT_LIMIT):
                *_, ready = await self.ctx.tick().sample(bus.write_ready)
                if ready:
                    break
            else:
                raise AssertionError(f"write of {address:#x} not taken in {WAIT_LIMIT} cycles")
            self.ctx.set(bus.write_en, 0)
            for _ in range(self.rng.choice([0, 0, 0, 1, 3]) if idle else 0):
                await self.ctx.tick()

    async def read(self, addresses, cycles=None):
        """Words at ``addresses``, one read at a time; ``cycles`` collects each one's wait."""
        bus = self.dut.bus
        words = []
        for address in addresses:
            self.ctx.set(bus.read_en, 1)
            self.ctx.set(bus.read_addr, address)
            await self.ctx.tick()
            self.ctx.set(bus.read_en, 0)
            waited = 1
            while not self.ctx.get(bus.read_valid):
                await self.ctx.tick()
                waited += 1
                assert waited < WAIT_LIMIT, f"no answer to the read of {address:#x}"
            words.append(self.ctx.get(bus.read_data))
            if cycles is not None:
                cycles.append(waited)
        return words

    async def check_read(self, name, expected, index=None):
        words = await self.read(self.regmap.read_addresses(name, index))
        got = self.regmap.decode_read(name, words, index)
        where = name if index is None else f"{name}[{index}]"
        assert got == expected, f"read {where}: {got} != {expected}"

    async def drain(self):
        """Wait until every event has left (the slot is empty, writes are taken again)."""
        for _ in range(WAIT_LIMIT):
            if self.ctx.get(self.dut.bus.write_ready):
                return
            await self.ctx.tick()
        raise AssertionError(f"write_ready still low after {WAIT_LIMIT} cycles")

    def set_input(self, name, value):
        self.host.inputs[name] = value
        self.ctx.set(getattr(self.dut, name), value)

    # --- writes ------------------------------------------------------------------------------

    async def table_entry(self):
        t = self.rng.choice(self.host.rw_tables())
        index = self.rng.randrange(t.depth)
        fields = {f.name: self.rng.getrandbits(f.width) for f in t.fields}
        pairs = entry_write(self.regmap, t.name, index, fields)
        roll = self.rng.random()
        if roll < 0.15:
            # The last word alone: the entry is the staged words with this one, whichever
            # table staged them.
            pairs = pairs[-1:]
        elif roll < 0.25 and t.entry_words > t.used_words:
            # Padding words of the stride are ignored, staged words kept.
            base = t.entry_address(index)
            pairs = [(base + k, self.rng.getrandbits(WORD_BITS))
                     for k in range(t.used_words, t.entry_words)] + pairs
        elif roll < 0.35 and t.span // t.entry_words > t.depth:
            # An entry past the depth: its words stage, its last word writes nothing.
            index = self.rng.randrange(t.depth, t.span // t.entry_words)
            pairs = [(t.address + index * t.entry_words + k, w)
                     for k, (_, w) in enumerate(pairs)]
        for address, word in pairs:
            self.host.table_words(t, address, word)
        await self.write(pairs)

    async def command(self):
        name, flag, code = self.rng.choice([("commit", "swap", Control.COMMIT),
                                            ("heartbeat", "beat", Control.HEARTBEAT)])
        value = int(self.rng.random() < 0.85)
        if value:
            self.host.expected.append(_event(code))
        await self.write(self.regmap.encode_write(name, **{flag: value}))

    async def kill(self):
        scope = self.rng.choice(SCOPES)
        release = self.rng.random() < 0.45
        code = Control.RELEASE if release else Control.KILL
        encode = self.regmap.encode_release if release else self.regmap.encode_kill
        if scope == "gateway":
            self.host.expected.append(_event(code, SCOPES.index(scope)))
            await self.write(encode("gateway"))
            return
        depth = self.regmap.n_sessions if scope == "session" else self.regmap.n_symbols
        table = self.regmap.table(f"kill_{scope}_{'release' if release else 'set'}")
        k = self.rng.randrange(table.depth)
        present = [i for i in range(WORD_BITS * k, WORD_BITS * (k + 1)) if i < depth]
        chosen = sorted(self.rng.sample(present, min(len(present),
                                                     self.rng.choice([0, 1, 1, 2, 5, 32]))))
        bits = 0
        for index in chosen:
            [(address, word)] = encode(scope, index)
            assert address == table.entry_address(k)
            bits |= word
        if self.rng.random() < 0.3:
            # Bits past the last latch name nothing.
            bits |= self.rng.getrandbits(WORD_BITS) & ~sum(1 << (i % WORD_BITS)
                                                           for i in present)
        self.host.expected.extend(_event(code, SCOPES.index(scope), i) for i in chosen)
        await self.write(self.regmap.encode_table_write(table.name, k, bits=bits))

    async def reference(self):
        symbol = self.rng.randrange(self.regmap.n_symbols)
        if self.rng.random() < 0.4:
            price, stamp = self.rng.getrandbits(32), self.rng.getrandbits(64)
            pairs = self.regmap.encode_reference_update(symbol, price, stamp)
            self.host.register_words("ref_price", pairs[:1])
            self.host.register_words("ref_stamp_us", pairs[1:3])
            self.host.expected.append(_event(Control.SET_REFERENCE, 0, symbol, price, stamp))
            await self.write(pairs)
            return
        # Pieces: a price, a stamp or only its low word (staged, not applied), a trigger.
        pieces = []
        if self.rng.random() < 0.5:
            pieces.append(("ref_price", self.regmap.encode_write(
                "ref_price", self.rng.getrandbits(32))))
        if self.rng.random() < 0.5:
            pairs = self.regmap.encode_write("ref_stamp_us", self.rng.getrandbits(64))
            pieces.append(("ref_stamp_us", pairs[:self.rng.choice([1, 2])]))
        for name, pairs in pieces:
            self.host.register_words(name, pairs)
            await self.write(pairs)
        width = self.regmap.register("ref_update").field("symbol").width
        if self.rng.random() < 0.2 and 1 << width > self.regmap.n_symbols:
            symbol = self.rng.randrange(self.regmap.n_symbols, 1 << width)   # ignored
        else:
            self.host.expected.append(_event(Control.SET_REFERENCE, 0, symbol,
                                             self.host.rw["ref_price"],
                                             self.host.rw["ref_stamp_us"]))
        await self.write(self.regmap.encode_write("ref_update", symbol=symbol))

    def count(self, every=False):
        """Some live counters (or ``every`` one) move on, each by at most LIVE_STEP: the
        input is the count's low LIVE_BITS, wrapping as a live counter does."""
        host = self.host
        names = sorted(host.live)
        if not every:
            names = self.rng.sample(names, self.rng.randrange(len(names)))
        for name in names:
            step = self.rng.randint(0, LIVE_STEP)
            host.live[name] += step
            host.total[name] += step
            self.ctx.set(getattr(self.dut, f"count_{name}"),
                         host.live[name] % (1 << LIVE_BITS))

    async def counters(self):
        await self.counters_now(self.rng.getrandbits(1), self.rng.getrandbits(1))

    async def counters_now(self, snapshot, clear):
        """Counters move, a counter_control write, they move in each of the two cycles after
        it is taken (the copy is of the second), then they move again (which must not
        show)."""
        host = self.host
        self.count()
        await self.write(self.regmap.encode_write("counter_control", snapshot=snapshot,
                                                  clear=clear), idle=False)
        self.count()
        await self.ctx.tick()
        self.count()
        top = (1 << host.count_bits) - 1
        for name in host.live:
            if snapshot:
                host.snapshot[name] = min(host.total[name], top)
            if clear:
                host.total[name] = 0
        await self.ctx.tick()
        self.count()

    async def scratch(self):
        pairs = self.regmap.encode_write("scratch", self.rng.getrandbits(32))
        self.host.register_words("scratch", pairs)
        await self.write(pairs)

    async def read_only(self):
        # Writes of RO registers are ignored (the encoder refuses them: raw words).
        ro = [r for r in self.regmap.registers if r.access is Access.RO]
        name = self.rng.choice(ro).name
        await self.write([(a, self.rng.getrandbits(WORD_BITS))
                          for a in self.regmap.read_addresses(name)])

    # --- reads -------------------------------------------------------------------------------

    async def read_id(self):
        observed = {}
        for name, value in self.regmap.expected_id().items():
            reg = self.regmap.register(name)
            observed[name] = reg.value(await self.read(self.regmap.read_addresses(name)))
            assert observed[name] == value, f"ID {name}: {observed[name]:#x} != {value:#x}"
        self.regmap.check_id(observed)
        assert RegisterMap.from_id(observed).layout_crc == self.regmap.layout_crc

    async def read_status(self):
        await self.drain()      # no commit waiting in the register file
        for name in ("loaded", "active_bank", "heartbeat_lost", "commit_pending"):
            self.set_input(name, self.rng.getrandbits(1))
        self.set_input("epoch", self.rng.getrandbits(32))
        i = self.host.inputs
        await self.check_read("status", {
            "limits_loaded": i["loaded"], "active_bank": i["active_bank"],
            "heartbeat_lost": i["heartbeat_lost"], "commit_pending": i["commit_pending"]})
        await self.check_read("epoch", {"value": i["epoch"]})
        # The engine's commit_pending falls once it swaps; writes wait while it is high.
        self.set_input("commit_pending", 0)

    async def read_timebase(self):
        # The high word is latched by the low word's read: both reads see one value.
        before = self.rng.getrandbits(64)
        self.set_input("timebase_us", before)
        low, high = self.regmap.read_addresses("timebase_us")
        words = await self.read([low])
        self.set_input("timebase_us", (before + (1 << 32) + self.rng.getrandbits(40))
                       % (1 << 64))
        words += await self.read([high])
        assert self.regmap.decode_read("timebase_us", words) == {"value": before}

    async def read_latches(self):
        ns = self.regmap.n_sessions
        self.set_input("kill_gateway", self.rng.getrandbits(1))
        self.set_input("kill_sessions", self.rng.getrandbits(ns))
        self.set_input("in_sync", self.rng.getrandbits(ns))
        i = self.host.inputs
        for action in ("set", "release"):
            await self.check_read(f"kill_gateway_{action}", {"gateway": i["kill_gateway"]})
            t = self.regmap.table(f"kill_session_{action}")
            k = self.rng.randrange(t.depth)
            await self.check_read(t.name, {"bits": i["kill_sessions"] >> WORD_BITS * k
                                           & (1 << WORD_BITS) - 1}, k)
        t = self.regmap.table("session_sync")
        k = self.rng.randrange(t.depth)
        await self.check_read(t.name, {"bits": i["in_sync"] >> WORD_BITS * k
                                       & (1 << WORD_BITS) - 1}, k)

    async def read_registers(self):
        for name, value in self.host.rw.items():
            await self.check_read(name, {"value": value})
        for name in self.rng.sample(sorted(self.host.snapshot), 4):
            await self.check_read(name, {"value": self.host.snapshot[name]})
        # Write-only registers and table entries the host cannot read back read 0.
        for r in self.regmap.registers:
            if r.access is Access.WO:
                await self.check_read(r.name, {f.name: 0 for f in r.fields})
        t = self.regmap.table("pass_rule")
        await self.check_read(t.name, {f.name: 0 for f in t.fields}, self.rng.randrange(t.depth))

    async def read_table(self):
        """An entry of a table read through a port, or of ``session_state``: what its owner
        holds, every field where the map places it; the stride's padding words read 0."""
        port = self.rng.choice([*TABLE_READS, "session_state"])
        if port == "kill_symbols":
            name = self.rng.choice(["kill_symbol_set", "kill_symbol_release"])
        else:
            name = port
        t = self.regmap.table(name)
        index = self.rng.randrange(t.depth)
        cycles = []
        words = await self.read(self.regmap.read_addresses(name, index), cycles)
        expected = self.host.owned[port].get(index, {f.name: 0 for f in t.fields})
        got = self.regmap.decode_read(name, words, index)
        assert got == expected, f"read {name}[{index}]: {got} != {expected}"
        if port != "session_state":
            # The index is set a cycle after the read, the owner answers a cycle later at
            # the soonest, and read_valid follows a cycle after that.
            assert min(cycles) >= 3, f"{name}: answered before its owner could"
        if t.entry_words > t.used_words:
            base = t.entry_address(index)
            assert await self.read(range(base + t.used_words, base + t.entry_words)) == \
                [0] * (t.entry_words - t.used_words)


OPERATIONS = [
    (Bench.table_entry, 30), (Bench.command, 8), (Bench.kill, 14), (Bench.reference, 8),
    (Bench.counters, 4), (Bench.scratch, 2), (Bench.read_only, 2), (Bench.read_id, 1),
    (Bench.read_status, 3), (Bench.read_timebase, 2), (Bench.read_latches, 3),
    (Bench.read_registers, 2), (Bench.read_table, 12),
]


def _simulate(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def _pack(layout, entry):
    return sum(entry[name] << layout[name].offset for name in entry)


def owners(dut, host, rng, ok_rate):
    """Background testbench: every table read port's owner, and the session state input.

    Each port's entries are random (made when first asked for); ``ok`` is high in random
    cycles, and ``data`` is always the entry at the index of three cycles before (an owner
    may register its answer twice), so an answer taken earlier would be another entry's.
    """
    regmap = host.regmap
    state = dut.session_state
    states = {}
    for s in range(regmap.n_sessions):
        states[s] = {f.name: rng.getrandbits(f.width)
                     for f in regmap.table("session_state").fields}
    host.owned["session_state"] = states

    async def run(ctx):
        layout = state.shape()
        ctx.set(state.as_value(), sum(_pack(layout.elem_shape, states[s])
                                      << s * layout.elem_shape.size for s in states))
        ports = {name: getattr(dut, f"read_{name}") for name in TABLE_READS}
        fields = {name: regmap.table("kill_symbol_set" if name == "kill_symbols" else name)
                  .fields for name in TABLE_READS}
        for name in TABLE_READS:
            host.owned[name] = {}
        indices = [dict.fromkeys(TABLE_READS, 0)] * 3     # of the last three cycles
        while True:
            for name, port in ports.items():
                entries = host.owned[name]
                entry = entries.setdefault(indices[0][name], {
                    f.name: rng.getrandbits(f.width) for f in fields[name]})
                ctx.set(port.data.as_value(), _pack(port.data.shape(), entry))
                ctx.set(port.ok, rng.random() < ok_rate)
            indices = [*indices[1:], {name: ctx.get(port.index) for name, port in ports.items()}]
            await ctx.tick()
    return run


def check_register_file(parameters, seed, ready_rate, n_operations, ok_rate=0.3):
    """Run ``n_operations`` random host operations; compare what leaves with the model."""
    regmap = RegisterMap(**parameters)
    dut = RegisterFile(regmap)
    host = Host(regmap)
    rng = random.Random(seed)
    owner_rng = random.Random(seed + 2)
    ready_rng = random.Random(seed + 1)
    observed = []
    tables = host.rw_tables()

    async def monitor(ctx):
        ports = [getattr(dut, f"write_{t.name}") for t in tables]
        control = dut.control
        while True:
            ready = ready_rng.random() < ready_rate
            ctx.set(control.ready, ready)
            _, _, valid, payload, *writes = await ctx.tick().sample(
                control.valid, control.payload,
                *(s for p in ports for s in (p.en, p.index, p.entry)))
            for k, t in enumerate(tables):
                en, index, entry = writes[3 * k:3 * k + 3]
                if en:
                    observed.append(("write", t.name, index,
                                     {f.name: entry[f.name] for f in t.fields}))
            if valid and ready:
                observed.append(("event", Control(payload.code), payload.scope, payload.index,
                                 payload.price, payload.stamp, payload.in_sync))

    async def testbench(ctx):
        bench = Bench(ctx, dut, host, rng)
        operations, weights = zip(*OPERATIONS, strict=True)
        for _ in range(n_operations):
            await rng.choices(operations, weights)[0](bench)
        await bench.drain()
        for _ in range(2):
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(owners(dut, host, owner_rng, ok_rate), background=True)
    sim.add_testbench(testbench)
    sim.run()
    for n, (got, want) in enumerate(zip(observed, host.expected, strict=False)):
        assert got == want, f"seed {seed}: item {n}: {got} != {want}"
    assert len(observed) == len(host.expected), f"seed {seed}: {len(observed)} items left, " \
                                                f"{len(host.expected)} expected"
    return observed


@pytest.mark.parametrize(("parameters", "ready_rate", "ok_rate"), [
    (DEFAULT, 1.0, 1.0), (DEFAULT, 0.3, 0.3), (ODD, 0.6, 0.05), (ODD, 0.1, 0.5)])
def test_random_operations(parameters, ready_rate, ok_rate):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    observed = check_register_file(parameters, seed, ready_rate, 300, ok_rate)
    assert {item[0] for item in observed} == {"write", "event"}


def test_commit_waiting_reads_as_commit_pending():
    # Between the host's commit and the engine taking it, status.commit_pending is 1, and
    # every write waits (a table write must not reach the shadow bank before the swap).
    regmap = RegisterMap(**ODD)
    dut = RegisterFile(regmap)
    status = regmap.read_addresses("status")

    async def testbench(ctx):
        bench = Bench(ctx, dut, Host(regmap), random.Random(0))

        async def commit_pending():
            return regmap.decode_read("status", await bench.read(status))["commit_pending"]

        [(address, word)] = regmap.encode_write("commit", swap=1)
        ctx.set(dut.bus.write_en, 1)
        ctx.set(dut.bus.write_addr, address)
        ctx.set(dut.bus.write_data, word)
        await ctx.tick()
        [(address, word)] = regmap.encode_write("scratch", 0x5A5A5A5A)
        ctx.set(dut.bus.write_addr, address)
        ctx.set(dut.bus.write_data, word)
        # The commit's decode, then its slot: no event yet, but no write taken either.
        for _ in range(2):
            assert not ctx.get(dut.control.valid) and not ctx.get(dut.bus.write_ready)
            await ctx.tick()
        for _ in range(5):
            assert ctx.get(dut.control.valid) and not ctx.get(dut.bus.write_ready)
            assert await commit_pending() == 1
        ctx.set(dut.control.ready, 1)
        await ctx.tick()        # the engine takes the commit; the scratch write is taken after
        ctx.set(dut.control.ready, 0)
        assert not ctx.get(dut.control.valid) and not ctx.get(dut.bus.write_ready)
        await ctx.tick()        # (a cycle later: ``write_ready`` waits for an empty slot)
        assert ctx.get(dut.bus.write_ready)
        await ctx.tick()
        ctx.set(dut.bus.write_en, 0)
        assert await commit_pending() == 0
        await bench.check_read("scratch", {"value": 0x5A5A5A5A})

    _simulate(dut, testbench)


def test_no_write_while_the_engines_commit_is_in_flight():
    # Once the engine has taken a commit, the bank the host writes is the one the events
    # ahead of the commit still read: every write waits until the engine's commit_pending
    # falls, and is then taken.
    regmap = RegisterMap(**ODD)
    dut = RegisterFile(regmap)

    async def testbench(ctx):
        bench = Bench(ctx, dut, Host(regmap), random.Random(0))
        ctx.set(dut.commit_pending, 1)
        await ctx.tick()
        await ctx.tick()
        [(address, word)] = regmap.encode_write("scratch", 0x3C3C3C3C)
        ctx.set(dut.bus.write_en, 1)
        ctx.set(dut.bus.write_addr, address)
        ctx.set(dut.bus.write_data, word)
        for _ in range(6):
            assert not ctx.get(dut.bus.write_ready)
            await ctx.tick()
        await bench.check_read("scratch", {"value": 0})
        ctx.set(dut.commit_pending, 0)
        await ctx.tick()        # write_ready is a register: it rises a cycle later
        assert ctx.get(dut.bus.write_ready)
        await ctx.tick()
        ctx.set(dut.bus.write_en, 0)
        await bench.check_read("scratch", {"value": 0x3C3C3C3C})

    _simulate(dut, testbench)


def test_counter_reads_right_after_a_snapshot():
    # The snapshot reaches memory one counter a cycle, lowest first; reads that come at once,
    # highest first, while it is under way, must still see the copy of the write's cycle.
    regmap = RegisterMap(**ODD)
    dut = RegisterFile(regmap)
    host = Host(regmap)

    async def testbench(ctx):
        bench = Bench(ctx, dut, host, random.Random(3))
        names = [r.name for r in regmap.group("counters")]
        for clear in (1, 0, 0):
            await bench.counters_now(snapshot=1, clear=clear)
            for name in reversed(names):
                await bench.check_read(name, {"value": host.snapshot[name]})

    _simulate(dut, testbench)


def test_counters_sum_wrapping_live_counters_and_saturate():
    # Every live counter moves in every cycle for thousands of cycles, wrapping its
    # LIVE_BITS many times over; snapshots now and then, a clear at the start and near the
    # end. The totals are 12 bits here, so the uncleared run saturates them.
    regmap = RegisterMap(**ODD)
    dut = RegisterFile(regmap, count_bits=12)
    host = Host(regmap, count_bits=12)
    names = [r.name for r in regmap.group("counters")]

    async def testbench(ctx):
        rng = random.Random(5)
        bench = Bench(ctx, dut, host, rng)
        saturated = False
        for round_ in range(12):
            for _ in range(rng.randrange(400, 600)):
                bench.count(every=True)
                await ctx.tick()
            await bench.counters_now(snapshot=1, clear=round_ in (0, 10))
            saturated |= any(v == (1 << 12) - 1 for v in host.snapshot.values())
            for name in rng.sample(names, 8):
                await bench.check_read(name, {"value": host.snapshot[name]})
        assert saturated        # the run reached the totals' top, and they held there

    _simulate(dut, testbench)


def test_regmap_type_is_checked():
    with pytest.raises(TypeError, match="regmap must be a RegisterMap"):
        RegisterFile({"n_sessions": 8})
