"""Kill under the Amaranth simulator, cycle by cycle against the model's latches.

The scoreboard is a model ``Gate``: every host bitmap write becomes one ``Kill`` or
``Release`` per bit it names, every trip a ``Kill`` of the session, applied in the order the
component documents (trip, then the host's write). The host's words are the ones the
register map encodes (``encode_kill`` / ``encode_release``), merged per word.
"""

import gc
import random
import warnings
from dataclasses import dataclass

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from wiregate.hw.risk.checks.kill import Kill
from wiregate.sw.model import Gate
from wiregate.sw.model import Kill as KillEvent
from wiregate.sw.model import Release as ReleaseEvent
from wiregate.sw.regmap import WORD_BITS, RegisterMap


def regmap(n_sessions, n_symbols):
    return RegisterMap(n_sessions=n_sessions, n_symbols=n_symbols,
                       symbol_slots=max(8, 1 << (n_symbols - 1).bit_length()))


@dataclass
class Write:
    """A host write: ``scope`` gateway, session or symbol; the indices it names."""

    scope: str
    release: bool
    indices: tuple = ()


@dataclass
class Cycle:
    write: Write | None = None
    trip: int | None = None                   # session
    judge: tuple = (0, 0, False)              # (session, symbol, symbol_valid)
    read: int = 0                             # symbol bitmap word to read back


def host_word(rmap, write):
    """(table word index, bits) of a write naming indices of one word, from the encoder."""
    encode = rmap.encode_release if write.release else rmap.encode_kill
    words = {}
    for index in write.indices:
        [(address, bits)] = encode(write.scope, index)
        words[address] = words.get(address, 0) | bits
    [(address, bits)] = words.items()
    table = rmap.table(f"kill_{write.scope}_{'release' if write.release else 'set'}")
    return (address - table.address) // table.entry_words, bits


def check_kill(cycles, n_sessions, n_symbols, label):
    rmap = regmap(n_sessions, n_symbols)
    dut = Kill(rmap)
    gate = Gate(n_sessions=n_sessions, n_symbols=n_symbols, n_orders=1, n_executions=1)
    symbol_words = rmap.table("kill_symbol_set").depth

    def bitmap_word(w):
        return sum(1 << i for i in range(WORD_BITS)
                   if 32 * w + i < n_symbols and gate.kill_symbol[32 * w + i])

    async def testbench(ctx):
        expected = None     # the judgment and read-back answers due this cycle
        # Finally the whole symbol bitmap is read back.
        for c, cycle in enumerate([*cycles, *(Cycle(read=w) for w in range(symbol_words)),
                                   Cycle()]):
            where = f"{label}: cycle {c}"
            w = cycle.write
            for scope in ("gateway", "session", "symbol"):
                port = getattr(dut, f"{scope}_write")
                ctx.set(port.en, w is not None and w.scope == scope)
                ctx.set(port.release, w is not None and w.release)
            if w is not None and w.scope != "gateway":
                index, bits = host_word(rmap, w)
                port = getattr(dut, f"{w.scope}_write")
                ctx.set(port.index, index)
                ctx.set(port.bits, bits)
            ctx.set(dut.trip.valid, cycle.trip is not None)
            ctx.set(dut.trip.session, cycle.trip or 0)
            session, symbol, symbol_valid = cycle.judge
            ctx.set(dut.judge.session, session)
            ctx.set(dut.judge.symbol, symbol)
            ctx.set(dut.judge.symbol_valid, symbol_valid)
            ctx.set(dut.symbol_read.index, cycle.read)

            assert ctx.get(dut.gateway) == gate.kill_gateway, where
            assert ctx.get(dut.sessions) == sum(1 << s for s in range(n_sessions)
                                                if gate.kill_session[s]), where
            if expected is not None:
                got = (ctx.get(dut.judge.kill_gateway), ctx.get(dut.judge.kill_session),
                       ctx.get(dut.judge.kill_symbol), ctx.get(dut.symbol_read.bits))
                assert got == expected, f"{where}: judgment and read-back"

            if cycle.trip is not None:
                gate.apply(KillEvent(0, "session", cycle.trip))
            if w is not None:
                event = ReleaseEvent if w.release else KillEvent
                for index in w.indices or (0,):
                    gate.apply(event(0, w.scope, index))
            expected = (gate.kill_gateway, gate.kill_session[session],
                        symbol_valid and gate.kill_symbol[symbol], bitmap_word(cycle.read))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    return gate


# --- Seeded random sequences ------------------------------------------------------------------


def random_indices(rng, depth, words):
    """Indices of one bitmap word: a word from the few ``words`` (so writes collide),
    one bit, several, or all the word has."""
    word = rng.choice(words)
    present = [i for i in range(32 * word, 32 * word + 32) if i < depth]
    count = rng.choice([1, 1, 1, 2, 5, len(present)])
    return tuple(rng.sample(present, min(count, len(present))))


def random_cycles(rng, n_sessions, n_symbols, n_cycles):
    """Host writes of every scope (often back to back, to the same words), trips, and a
    judgment and a read-back every cycle, biased toward the symbols being written."""
    symbol_words = list(range(-(-n_symbols // 32)))
    session_words = list(range(-(-n_sessions // 32)))
    hot_words = rng.sample(symbol_words, min(3, len(symbol_words)))
    cycles = []
    recent = [0]
    for _ in range(n_cycles):
        cycle = Cycle()
        roll = rng.random()
        release = rng.random() < 0.45
        if roll < 0.08:
            cycle.write = Write("gateway", release)
        elif roll < 0.2:
            cycle.write = Write("session", release,
                                random_indices(rng, n_sessions, session_words))
        elif roll < 0.5:
            cycle.write = Write("symbol", release, random_indices(rng, n_symbols, hot_words))
            recent = list(cycle.write.indices)
        if rng.random() < 0.1:
            cycle.trip = rng.randrange(n_sessions)
        symbol = rng.choice(recent) if rng.random() < 0.6 else rng.randrange(n_symbols)
        cycle.judge = (rng.randrange(n_sessions), symbol, rng.random() < 0.85)
        cycle.read = rng.choice(hot_words) if rng.random() < 0.7 else rng.choice(symbol_words)
        cycles.append(cycle)
    return cycles


@pytest.mark.parametrize(("n_sessions", "n_symbols"), [(8, 1024), (40, 100), (1, 1)])
def test_random_sequences(n_sessions, n_symbols):
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    check_kill(random_cycles(random.Random(seed), n_sessions, n_symbols, 5000), n_sessions,
               n_symbols, f"seed {seed}")


# --- Hand-picked cases -------------------------------------------------------------------------


def test_write_is_seen_by_the_judgment_presented_in_its_cycle():
    # Symbol 37 set in cycle 0 and judged in cycle 0: the answer (cycle 1) has it; the
    # release in cycle 2 shows from the judgment presented in cycle 2.
    judge = (0, 37, True)
    gate = check_kill([Cycle(write=Write("symbol", False, (37,)), judge=judge),
                       Cycle(judge=judge),
                       Cycle(write=Write("symbol", True, (37,)), judge=judge),
                       Cycle(judge=judge, read=1)], 8, 1024, "visible")
    assert not any(gate.kill_symbol)


def test_back_to_back_writes_to_one_word():
    # Four writes in four cycles to word 1: none is lost to the read-modify-write.
    cycles = [Cycle(write=Write("symbol", False, (32, 33, 63))),
              Cycle(write=Write("symbol", True, (33,))),
              Cycle(write=Write("symbol", False, (40,))),
              Cycle(write=Write("symbol", True, (63,)), judge=(0, 40, True), read=1),
              Cycle(judge=(0, 32, True), read=1)]
    gate = check_kill(cycles, 8, 1024, "back to back")
    assert [i for i, k in enumerate(gate.kill_symbol) if k] == [32, 40]


def test_trip_then_release_in_one_cycle():
    # The trip applies before the host's write: a release in the same cycle wins, a set
    # by trip alone stays until released.
    cycles = [Cycle(trip=3, write=Write("session", True, (3,)), judge=(3, 0, False)),
              Cycle(trip=5, judge=(5, 0, False)),
              Cycle(judge=(5, 0, False))]
    gate = check_kill(cycles, 8, 1024, "trip")
    assert [s for s, k in enumerate(gate.kill_session) if k] == [5]


def test_symbol_valid_low_never_kills():
    cycles = [Cycle(write=Write("symbol", False, tuple(range(32))), judge=(0, 5, False)),
              Cycle(judge=(0, 5, False)), Cycle(judge=(0, 5, True))]
    check_kill(cycles, 8, 1024, "no symbol")


def test_gateway_latch():
    cycles = [Cycle(write=Write("gateway", False)), Cycle(), Cycle(write=Write("gateway", True)),
              Cycle(write=Write("gateway", False)), Cycle(write=Write("gateway", False))]
    assert check_kill(cycles, 8, 1024, "gateway").kill_gateway


def test_parameter_errors():
    with pytest.raises(TypeError) as info:
        Kill(None)
    assert str(info.value) == "regmap must be a RegisterMap, not None"
    del info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()
