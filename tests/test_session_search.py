"""SessionSearch under the Amaranth simulator, against the table kept in Python.

The host writes random entries into the shadow bank, commits swap the banks (also in the
middle of a walk, which must keep the bank it began with), and keys are looked up: some
copied from an entry (in either bank), some near misses, some random. After each walk the
matches must be the entries of the walked bank that are valid and hold the key.
"""

import random

import pytest
from amaranth.sim import Simulator

from wiregate.hw.ingress.session_search import KEY_FIELDS, SessionSearch
from wiregate.sw.regmap import RegisterMap


def random_entry(rng, pool):
    """An entry whose fields come from small pools, so that keys often share some."""
    return {"client_ip": rng.choice(pool["ip"]), "exchange_ip": rng.choice(pool["ip"]),
            "client_port": rng.choice(pool["port"]), "exchange_port": rng.choice(pool["port"]),
            "valid": int(rng.random() < 0.8)}


@pytest.mark.parametrize(("n_sessions", "fields", "per_cycle"), [
    (8, KEY_FIELDS, 1),
    (8, ("client_ip", "exchange_ip"), 2),
    (5, ("client_ip", "exchange_ip"), 2),
    (7, ("exchange_port", "client_ip"), 3),
    (1, KEY_FIELDS, 1),
])
def test_walk_finds_the_entries_holding_the_key(n_sessions, fields, per_cycle):
    rng = random.Random(f"{n_sessions}{fields}{per_cycle}")
    regmap = RegisterMap(n_sessions=n_sessions, n_symbols=8, symbol_slots=8)
    dut = SessionSearch(regmap, fields=fields, per_cycle=per_cycle)
    assert dut.latency == -(-n_sessions // per_cycle) + 1
    pool = {"ip": [rng.getrandbits(32) for _ in range(3)],
            "port": [rng.getrandbits(16) for _ in range(3)]}
    empty = dict.fromkeys((*KEY_FIELDS, "valid"), 0)
    banks = [[dict(empty) for _ in range(n_sessions)] for _ in range(2)]
    checked = []

    def expected(bank, key):
        return sum(1 << k for k, e in enumerate(banks[bank])
                   if e["valid"] and all(e[f] == key[f] for f in fields))

    async def testbench(ctx):
        active = 0
        for _ in range(300):
            roll = rng.random()
            if roll < 0.35:
                index = rng.randrange(n_sessions)
                values = random_entry(rng, pool)
                banks[1 - active][index] = values
                ctx.set(dut.write.en, 1)
                ctx.set(dut.write.index, index)
                ctx.set(dut.write.entry, values)
                await ctx.tick()
                ctx.set(dut.write.en, 0)
                continue
            if roll < 0.45:
                ctx.set(dut.swap, 1)
                await ctx.tick()
                ctx.set(dut.swap, 0)
                active ^= 1
                continue
            source = rng.choice(banks[rng.randrange(2)])
            key = {**random_entry(rng, pool), **{f: source[f] for f in fields}}
            if rng.random() < 0.2:
                key[rng.choice(fields)] ^= 1 << rng.randrange(16)
            for name in KEY_FIELDS:
                ctx.set(getattr(dut, name), key[name])
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            walked = active
            swap_at = rng.randrange(dut.latency + 3) if rng.random() < 0.3 else None
            for c in range(dut.latency - 1):
                ctx.set(dut.swap, c == swap_at)
                await ctx.tick()
                if c == swap_at:
                    active ^= 1
            ctx.set(dut.swap, 0)
            assert ctx.get(dut.bank) == walked
            assert ctx.get(dut.matches) == expected(walked, key), key
            checked.append(expected(walked, key))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    assert any(checked) and not all(checked), "the keys must both hit and miss"
