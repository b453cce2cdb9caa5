"""The control port under the Amaranth simulator, with a real register file behind it.

The gateway here is :class:`wiregate.sim.control_gateway.ControlGateway`: the control port,
the register file, the drop-copy queue, the real kill latches and heartbeat watchdog, and a
few lines standing in for the engine's handling of control events. Commands are encoded
with :mod:`wiregate.sw.control`; everything that comes back is decoded here with ``struct``,
``zlib`` and a SLIP decoder of the test's own, and every response is compared byte for byte
with one built the same independent way. Register and table contents are checked through
the register file's read side and its table write ports, the latches through the Kill
block, the counters through SNAPSHOT and READ against the test's own tallies.
"""

import random
import struct
import zlib

import pytest
from amaranth.sim import Simulator

from wiregate.sim.control_gateway import ControlGateway
from wiregate.sw import control
from wiregate.sw.control import Command, Status, encode_command, stuff
from wiregate.sw.dropcopy import RECORD_FIELDS, Control, Kind, Record
from wiregate.sw.regmap import WORD_BITS, Access, RegisterMap

PARAMETERS = {"n_sessions": 37, "n_symbols": 40, "symbol_slots": 64, "n_orders": 16,
              "n_pass_rules": 2}
C0, DB = 0xC0, 0xDB      # the line code's END and ESC, as RFC 1055 numbers them


# --- the test's own view of the wire (independent of sw/control.py) --------------------------

def unslip(line: bytes) -> list[tuple[bytes, bool]]:
    """Frames between 0xC0 bytes, unescaped; False when an escape was invalid."""
    frames, frame, escape, bad = [], bytearray(), False, False
    for b in line:
        if b == C0:
            if frame or bad or escape:
                frames.append((bytes(frame), not (bad or escape)))
            frame, escape, bad = bytearray(), False, False
        elif escape:
            escape = False
            if b == 0xDC:
                frame.append(C0)
            elif b == 0xDD:
                frame.append(DB)
            else:
                bad = True
        elif b == DB:
            escape = True
        else:
            frame.append(b)
    return frames


def response_bytes(kind: int, sequence: int, status: int, payload: bytes) -> bytes:
    """A response frame as the format's text describes it: header, payload, CRC LSB first."""
    body = struct.pack(">BBIBBH", 1, 0x80 | kind, sequence, status, 0, len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def head_of(frame: bytes) -> tuple[int, int]:
    """(kind, sequence) as the gateway captures them: missing bytes read 0."""
    padded = frame[:10] + bytes(max(0, 10 - len(frame)))
    return padded[1], struct.unpack_from(">I", padded, 2)[0]


# --- the bench -----------------------------------------------------------------------------

class Bench:
    """Sends line bytes, collects what comes back, and keeps the test's tallies."""

    def __init__(self, gateway, rng, ready_rate=1.0):
        self.ctx = None                  # the testbench's, once it runs
        self.gw, self.rng = gateway, rng
        self.ready_rng = random.Random(rng.getrandbits(32))    # the host's o.ready
        self.regmap = gateway.regmap
        self.ready_rate = ready_rate
        self.line = bytearray()          # every byte the gateway sent
        self.parsed = 0                  # frames of `line` already split off
        self.responses = []
        self.records = []
        self.sequence = 0                # what the gateway should expect next
        self.tally = {"control_commands": 0, "control_frame_errors": 0,
                      "control_command_errors": 0}
        self.writes = 0                  # bus writes seen (the monitor)
        self.table_writes = []           # (table, index, entry) from the write ports
        self.events = []                 # control codes executed, in order
        self.order = []                  # "R" response, "D" drop copy, as they came

    async def monitor(self, ctx):
        port = self.gw.port
        tables = [t for t in self.regmap.tables if t.access is Access.RW]
        ports = [getattr(self.gw.registers, f"write_{t.name}") for t in tables]
        control_port = self.gw.registers.control
        while True:
            ready = self.ready_rng.random() < self.ready_rate
            ctx.set(port.o.ready, ready)
            _, _, valid, byte, wen, wready, cvalid, cpayload, *writes = await ctx.tick().sample(
                port.o.valid, port.o.payload, port.bus.write_en, port.bus.write_ready,
                control_port.valid, control_port.payload,
                *(s for p in ports for s in (p.en, p.index, p.entry)))
            if valid and ready:
                self.line.append(byte)
            self.writes += wen and wready
            if cvalid:
                self.events.append(Control(cpayload.code))
            for k, t in enumerate(tables):
                en, index, entry = writes[3 * k:3 * k + 3]
                if en:
                    self.table_writes.append((t.name, index,
                                              {f.name: entry[f.name] for f in t.fields}))

    async def send_line(self, data: bytes, idle=(0, 0, 0, 1, 3)):
        i = self.gw.port.i
        for b in data:
            self.ctx.set(i.valid, 1)
            self.ctx.set(i.payload, b)
            while True:
                *_, ready = await self.ctx.tick().sample(i.ready)
                if ready:
                    break
            self.ctx.set(i.valid, 0)
            for _ in range(self.rng.choice(idle)):
                await self.ctx.tick()

    def _split(self):
        frames = unslip(bytes(self.line))
        # The last frame may still be arriving: take only those followed by their END.
        complete = self.line.count(C0) // 2
        for frame, ok in frames[self.parsed:complete]:
            assert ok, f"the gateway sent a bad escape: {frame.hex()}"
            if frame[1] == control.Kind.DROP_COPY:
                body = struct.pack(">BBIBBH", 1, 0x40, 0, 0, 0, 88)
                assert frame[:10] == body, f"drop-copy header {frame[:10].hex()}"
                assert struct.unpack("<I", frame[-4:])[0] == zlib.crc32(frame[:-4])
                self.records.append(frame[10:-4])
                self.order.append("D")
            else:
                self.responses.append(frame)
                self.order.append("R")
        self.parsed = max(self.parsed, complete)

    async def response(self, limit=20000):
        """The next response frame (drop-copy frames are set aside)."""
        for _ in range(limit):
            self._split()
            if self.responses:
                return self.responses.pop(0)
            await self.ctx.tick()
        raise AssertionError("no response")

    async def command(self, frame: bytes, status: Status, payload: bytes | None = None,
                      writes: int | None = None) -> bytes:
        """Send a frame, check its response byte for byte, and keep the tallies."""
        before = self.writes
        await self.send_line(stuff(frame))
        got = await self.response()
        kind, sequence = head_of(frame)
        if status is Status.OK:
            self.sequence = (self.sequence + 1) % (1 << 32)
        if payload is None:
            payload = struct.pack(">I", self.sequence)
        want = response_bytes(kind, sequence, status, payload)
        assert got == want, f"{Status(got[6]).name if len(got) > 6 else ''} {got.hex()} != " \
                            f"{status.name} {want.hex()}"
        self.tally[status.counter] += 1
        if writes is not None:
            assert self.writes - before == writes, f"{self.writes - before} bus writes"
        return got

    async def ok(self, command, words=(), **fields):
        return await self.command(encode_command(command, self.sequence, words, **fields),
                                  Status.OK)

    async def read(self, address, count):
        frame = encode_command(Command.READ, self.sequence, address=address, count=count)
        await self.send_line(stuff(frame))
        got = await self.response()
        body = struct.pack(">BBIBBH", 1, 0x81, self.sequence, 0, 0, 4 * count)
        assert got[:10] == body and len(got) == 14 + 4 * count, got.hex()
        assert struct.unpack("<I", got[-4:])[0] == zlib.crc32(got[:-4])
        self.sequence += 1
        self.tally["control_commands"] += 1
        return list(struct.unpack(f">{count}I", got[10:-4]))

    async def read_register(self, name, index=None):
        addresses = self.regmap.read_addresses(name, index)
        words = await self.read(addresses[0], len(addresses))
        assert addresses == list(range(addresses[0], addresses[0] + len(addresses)))
        return self.regmap.decode_read(name, words, index)

    async def counters(self):
        """Snapshot and read the three control counters."""
        await self.ok(Command.SNAPSHOT)
        return {name: (await self.read_register(name))["value"] for name in self.tally}


def simulate(body, seed, ready_rate=1.0, feed=None):
    """Run ``body(bench)`` against a gateway (and ``feed(ctx, gateway, rng)`` beside it)."""
    regmap = RegisterMap(**PARAMETERS)
    gateway = ControlGateway(regmap)
    bench = Bench(gateway, random.Random(seed), ready_rate)

    async def testbench(ctx):
        bench.ctx = ctx
        await body(bench)

    async def feeder(ctx):
        await feed(ctx, gateway, random.Random(seed + 1))

    sim = Simulator(gateway)
    sim.add_clock(1e-8)
    sim.add_testbench(bench.monitor, background=True)
    if feed is not None:
        sim.add_testbench(feeder, background=True)
    sim.add_testbench(testbench)
    sim.run()


# --- every command ---------------------------------------------------------------------------

def test_every_command_end_to_end():
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")

    async def body(b):
        regmap = b.regmap
        # A host that does not know the sequence learns it from its first answer.
        await b.command(encode_command(Command.HEARTBEAT, 1234), Status.OUT_OF_SEQUENCE,
                        writes=0)
        # The ID block, read in one command and checked as the driver will.
        ident = regmap.group("id")
        words = await b.read(ident[0].address, len(ident))
        observed = {r.name: words[r.address - ident[0].address] for r in ident}
        regmap.check_id(observed)
        # WRITE and READ back: a register, and a 64-bit one in one frame.
        scratch = regmap.register("scratch").address
        await b.command(encode_command(Command.WRITE, b.sequence, [0xDBC0C0DB],
                                       address=scratch), Status.OK, writes=1)
        assert await b.read(scratch, 1) == [0xDBC0C0DB]
        stamp = regmap.register("ref_stamp_us")
        await b.ok(Command.WRITE, [0x01234567, 0x89ABCDEF], address=stamp.address)
        assert (await b.read_register("ref_stamp_us"))["value"] == 0x89ABCDEF01234567
        # TABLE_WRITE: whole entries, stride and used words from the map, seen on the ports.
        for name, index, count in (("session_limits", 1, 3), ("symbol_hash", 60, 4),
                                   ("gateway_limits", 0, 1), ("pass_rule", 0, 2)):
            t = regmap.table(name)
            entries = [{f.name: b.rng.getrandbits(f.width) for f in t.fields}
                       for _ in range(count)]
            if name == "gateway_limits":
                entries[0]["heartbeat_timeout_us"] = 400
            del b.table_writes[:]
            await b.command(control.table_write(regmap, b.sequence, name, index, entries),
                            Status.OK, writes=count * t.used_words)
            assert b.table_writes == [(name, index + k, e) for k, e in enumerate(entries)]
        # COMMIT swaps the banks, loads the limits and starts the watchdog.
        before = await b.read_register("status")
        assert before["limits_loaded"] == 0 and before["active_bank"] == 0
        await b.ok(Command.COMMIT)
        status = await b.read_register("status")
        assert status["limits_loaded"] == 1 and status["active_bank"] == 1
        assert (await b.read_register("epoch"))["value"] == 1
        # KILL and RELEASE at every scope: the latches themselves.
        for scope, index in (("gateway", 0), ("session", 36), ("session", 3), ("symbol", 39),
                             ("symbol", 0)):
            await b.command(control.latch_command(Command.KILL, b.sequence, scope, index),
                            Status.OK, writes=1)
            # Both addresses of a scope read the latch (the symbol's, the kill block's memory).
            word = index // WORD_BITS
            for name in (f"kill_{scope}_set", f"kill_{scope}_release"):
                got = await b.read_register(name, None if scope == "gateway" else word)
                assert got == ({"gateway": 1} if scope == "gateway"
                               else {"bits": 1 << index % WORD_BITS}), name
            await b.command(control.latch_command(Command.RELEASE, b.sequence, scope, index),
                            Status.OK, writes=1)
            got = await b.read_register(f"kill_{scope}_set",
                                        None if scope == "gateway" else word)
            assert set(got.values()) == {0}
        # HEARTBEAT restarts the watchdog (timeout 400 us, one microsecond a cycle here).
        for _ in range(450):
            await b.ctx.tick()
        assert (await b.read_register("status"))["heartbeat_lost"] == 1
        await b.ok(Command.HEARTBEAT)
        assert (await b.read_register("status"))["heartbeat_lost"] == 0
        # SNAPSHOT copies the counters: the control ones against our tallies, and an input.
        # (A live counter, LIVE_BITS wide: a jump its width holds is summed whole.)
        b.ctx.set(b.gw.registers.count_frames_client_rx, 0x2A5)
        counted = dict(b.tally)
        await b.ok(Command.SNAPSHOT)
        assert (await b.read_register("frames_client_rx"))["value"] == 0x2A5
        for name, value in counted.items():
            assert (await b.read_register(name))["value"] == value, name
        await b.ok(Command.SNAPSHOT, clear=1)
        await b.ok(Command.SNAPSHOT)
        assert (await b.read_register("frames_client_rx"))["value"] == 0
        # Every control event reached the engine, each with its drop-copy record.
        for _ in range(400):
            await b.ctx.tick()
        b._split()
        records = [Record.decode(r) for r in b.records]
        assert [r.sequence for r in records] == list(range(len(records)))
        assert [r.control for r in records] == b.events
        assert b.events == [Control.COMMIT] + [Control.KILL, Control.RELEASE] * 5 \
            + [Control.HEARTBEAT]

    simulate(body, seed, ready_rate=0.7)


# --- every bad frame ---------------------------------------------------------------------------

def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_bad_frames_change_nothing_and_are_counted():
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")

    async def body(b):
        regmap = b.regmap
        scratch = regmap.register("scratch").address
        size = regmap.size_words
        await b.command(encode_command(Command.READ, 77, address=0, count=1),
                        Status.OUT_OF_SEQUENCE)
        await b.ok(Command.WRITE, [0x600DF00D], address=scratch)

        def write(sequence=None, words=(0xBAD0BAD0,), address=scratch):
            seq = b.sequence if sequence is None else sequence
            return encode_command(Command.WRITE, seq, words, address=address)

        def raw(kind, payload, *, version=1, status=0, mac=b"", length=None):
            length = len(payload) if length is None else length
            return _with_crc(struct.pack(">BBIBBH", version, kind, b.sequence, status,
                                         len(mac), length) + payload + mac)

        def flip(frame, at):
            return frame[:at] + bytes([frame[at] ^ 0x10]) + frame[at + 1:]

        session_sync = regmap.table("session_sync").address
        limits = regmap.table("session_limits")
        cases = [
            (flip(write(), 12), Status.BAD_CRC),
            (flip(write(), 15), Status.BAD_CRC),
            (write(b.sequence + 1), Status.OUT_OF_SEQUENCE),
            (write(b.sequence - 1), Status.OUT_OF_SEQUENCE),
            (bytes([1, 2, 0, 0, 7]), Status.SHORT_FRAME),
            (write()[:-5] + write()[-4:], Status.BAD_CRC),
            (raw(0x2A, b""), Status.UNKNOWN_COMMAND),
            (raw(0x81, bytes(8)), Status.UNKNOWN_COMMAND),
            (raw(Command.WRITE, struct.pack(">II", scratch, 1), length=12), Status.SHORT_FRAME),
            (raw(Command.WRITE, struct.pack(">II", scratch, 1), length=4), Status.LONG_FRAME),
            (bytes(control.BUFFER_BYTES + 1), Status.LONG_FRAME),
            (raw(Command.WRITE, struct.pack(">II", scratch, 1), version=2), Status.BAD_VERSION),
            (raw(Command.WRITE, struct.pack(">II", scratch, 1), mac=bytes(16)), Status.BAD_MAC),
            (raw(Command.WRITE, struct.pack(">II", scratch, 1), status=1), Status.MALFORMED),
            (raw(Command.WRITE, struct.pack(">I", scratch)), Status.BAD_LENGTH),
            (raw(Command.WRITE, struct.pack(">IH", scratch, 1)), Status.BAD_LENGTH),
            (raw(Command.WRITE, struct.pack(">I", scratch) + bytes(4 * control.MAX_WORDS + 4)),
             Status.BAD_LENGTH),
            (raw(Command.COMMIT, bytes(4)), Status.BAD_LENGTH),
            (raw(Command.READ, struct.pack(">II", 0, 0)), Status.BAD_LENGTH),
            (raw(Command.READ, struct.pack(">II", 0, control.MAX_WORDS + 1)), Status.BAD_LENGTH),
            (raw(Command.READ, struct.pack(">II", size - 1, 2)), Status.ADDRESS_RANGE),
            (raw(Command.READ, struct.pack(">II", 1 << 31, 1)), Status.ADDRESS_RANGE),
            (write(address=size - 1, words=(1, 2)), Status.ADDRESS_RANGE),
            (raw(Command.TABLE_WRITE, struct.pack(">III", scratch, 0, 1)), Status.ADDRESS_RANGE),
            (raw(Command.TABLE_WRITE, struct.pack(">III", session_sync, 0, 1)),
             Status.ADDRESS_RANGE),
            (raw(Command.TABLE_WRITE, struct.pack(">II", limits.address, 0) + bytes(4 * 7)),
             Status.BAD_LENGTH),
            (raw(Command.TABLE_WRITE, struct.pack(">II", limits.address, limits.depth - 1)
                 + bytes(4 * 16)), Status.INDEX_RANGE),
            (raw(Command.TABLE_WRITE, struct.pack(">II", limits.address + 8, 0) + bytes(32)),
             Status.ADDRESS_RANGE),
            (raw(Command.KILL, struct.pack(">BBH", 1, 0, regmap.n_sessions)), Status.INDEX_RANGE),
            (raw(Command.KILL, struct.pack(">BBH", 2, 0, regmap.n_symbols)), Status.INDEX_RANGE),
            (raw(Command.RELEASE, struct.pack(">BBH", 0, 0, 1)), Status.INDEX_RANGE),
            (raw(Command.KILL, struct.pack(">BBH", 3, 0, 0)), Status.INDEX_RANGE),
            (raw(Command.KILL, struct.pack(">BBH", 1, 1, 0)), Status.MALFORMED),
            (raw(Command.SNAPSHOT, struct.pack(">I", 2)), Status.MALFORMED),
        ]
        for frame, status in cases:
            await b.command(frame, status, writes=0)

        # A bad escape, an ESC cut by END, and garbage: each ends at the next END.
        for line, status in ((bytes([C0, 1, DB, 0x42, 2, C0]), Status.FRAMING),
                             (bytes([C0, 1, 2, DB, C0]), Status.FRAMING)):
            await b.send_line(line)
            got = await b.response()
            [(frame, clean)] = unslip(line)
            assert not clean
            assert got == response_bytes(*head_of(frame), status, struct.pack(">I", b.sequence))
            b.tally[status.counter] += 1
        garbage = bytes(b.rng.choice([x for x in range(256) if x not in (C0, DB)])
                        for _ in range(40))
        cut = stuff(write())[:-9]                       # a frame cut short, no END
        for junk in (garbage, cut):
            # The next frame's leading END ends the junk: the junk is answered, then it.
            await b.send_line(junk + stuff(encode_command(Command.HEARTBEAT, b.sequence)))
            [(frame, _)] = unslip(junk + bytes([C0]))
            damage = Status.SHORT_FRAME if len(frame) < 14 else Status.BAD_CRC
            assert zlib.crc32(frame[:-4]) != struct.unpack("<I", frame[-4:])[0]
            kind, sequence = head_of(frame)
            assert await b.response() == response_bytes(kind, sequence, damage,
                                                        struct.pack(">I", b.sequence))
            b.tally[damage.counter] += 1
            assert await b.response() == response_bytes(Command.HEARTBEAT, b.sequence,
                                                        Status.OK,
                                                        struct.pack(">I", b.sequence + 1))
            b.sequence += 1
            b.tally["control_commands"] += 1
        expected = dict(b.tally)        # the snapshot is counted after it has copied
        counted = await b.counters()
        assert counted == expected, (counted, expected)
        assert (await b.read(scratch, 1)) == [0x600DF00D]
        assert b.events == [Control.HEARTBEAT, Control.HEARTBEAT]

    simulate(body, seed, ready_rate=0.5)


# --- drop copy and responses on one line -----------------------------------------------------

def _random_record(rng, gateway) -> Record:
    # As wide as the gateway's record port takes each field (its session and price).
    layout = gateway.records.payload.shape()
    return Record(kind=Kind.VERDICT, cycle=rng.getrandbits(64), time_us=rng.getrandbits(64),
                  msg_type=ord(rng.choice("OUXM")), side=ord(rng.choice("BS")),
                  accept=rng.getrandbits(1),
                  session=rng.getrandbits(layout.members["session"]),
                  user_ref_num=rng.getrandbits(32), quantity=rng.getrandbits(32),
                  price=rng.getrandbits(layout.members["price"]), reasons=rng.getrandbits(19),
                  symbol=bytes(rng.choice(b"\xc0\xdbABC ") for _ in range(8)))


@pytest.mark.parametrize("ready_rate", [1.0, 0.25])
def test_dropcopy_frames_interleave_with_responses(ready_rate):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    injected = []

    async def feed(ctx, gateway, rng):
        # Records at random times, fewer than the queue holds in any stretch of the run.
        client = gateway.records
        for _ in range(20):
            for _ in range(rng.randrange(20, 500)):
                await ctx.tick()
            record = _random_record(rng, gateway)
            injected.append(record)
            for f in RECORD_FIELDS:
                if f.bits and f.name != "sequence":
                    value = getattr(record, f.name)
                    if f.raw:
                        value = int.from_bytes(value, "big")
                    ctx.set(client.payload[f.name], value)
            ctx.set(client.valid, 1)
            while not ctx.get(client.ready):     # a control event's record goes first
                await ctx.tick()
            await ctx.tick()
            ctx.set(client.valid, 0)

    async def body(b):
        scratch = b.regmap.register("scratch").address
        ident = b.regmap.group("id")
        await b.command(encode_command(Command.READ, 9, address=0, count=1),
                        Status.OUT_OF_SEQUENCE)
        for n in range(30):
            value = b.rng.getrandbits(32)
            await b.ok(Command.WRITE, [value], address=scratch)
            assert await b.read(scratch, 1) == [value]
            if n % 8 == 0:
                words = await b.read(ident[0].address, len(ident))
                assert words == [r.reset for r in ident]
        while len(b.records) < 20:
            await b.ctx.tick()
            b._split()
        records = [Record.decode(r) for r in b.records]
        assert records == [Record(**{**vars(r), "sequence": k}) for k, r in enumerate(injected)]
        kinds = "".join(b.order)
        assert "DR" in kinds and "RD" in kinds, kinds     # interleaved, frames whole

    simulate(body, seed, ready_rate=ready_rate, feed=feed)
