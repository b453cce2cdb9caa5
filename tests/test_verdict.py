"""The verdict under the Amaranth simulator against :mod:`wiregate.sw.reasons`."""

import random

from amaranth.sim import Simulator

from wiregate.hw.risk.verdict import Verdict
from wiregate.sw.reasons import NO_PRIMARY, REASON_BITS, Reason, primary, reason_word


def check_verdict(reason_sets, seed):
    """Drive each set of firing reasons as the ``fires`` word; compare every output."""
    dut = Verdict()
    assert len(dut.fires) == len(dut.reasons) == REASON_BITS

    async def testbench(ctx):
        for reasons in reason_sets:
            word = reason_word(reasons)
            ctx.set(dut.fires, word)
            expected_primary = primary(word)
            expected = (word, int(not reasons),
                        NO_PRIMARY if expected_primary is None else int(expected_primary))
            got = (ctx.get(dut.reasons), ctx.get(dut.accept), ctx.get(dut.primary))
            assert got == expected, f"seed {seed}: {sorted(reasons)}: {got} != {expected}"

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()


def test_accept_and_every_single_reason():
    # The accept's primary (NO_PRIMARY) coming out intact also shows the port can hold it.
    check_verdict([set(), *({r} for r in Reason)], seed=None)


def test_every_pair_of_reasons():
    # The lower bit must win whichever the other is, above or below it.
    check_verdict([{a, b} for a in Reason for b in Reason], seed=None)


def test_random_words():
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    sets = [{r for r in Reason if rng.random() < density}
            for density in (0.05, 0.2, 0.5, 0.9) for _ in range(600)]
    check_verdict([set(Reason), *sets], seed)
