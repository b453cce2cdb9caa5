"""The occupancy measurement of sim/order_occupancy.py, on patterns worked out by hand."""

import random

from wiregate.sim.order_occupancy import GAPS, first_capacity, main


def test_direct_mapped_table_fills_with_consecutive_numbers_and_not_with_a_stride():
    rng = random.Random(0)
    assert first_capacity(16, 1, GAPS["consecutive"], rng) == 16
    # 16, 32, ...: all on entry 0, so the second order is refused.
    assert first_capacity(16, 1, GAPS["stride n_orders"], rng) == 1


def test_associative_table_takes_a_stride_of_n_orders():
    # 16 entries, 4 ways: 16 * j for j = 1.. folds to (j & 3) ^ (j >> 2) ^ (j >> 4): sets
    # 1, 2, 3, 1, 0, 3, 2, 2, 3, 0, 1, 3, 2, 1, 0, 1 for j = 1..16; set 1 takes its fifth
    # order at j = 16, so 15 rest first.
    assert first_capacity(16, 4, GAPS["stride n_orders"], random.Random(0)) == 15
    # Fully associative: every entry is used whatever the numbers.
    assert first_capacity(16, 16, GAPS["gap 1..65536"], random.Random(0)) == 16


def test_main_prints_and_appends_the_table(tmp_path, capsys):
    out = tmp_path / "occupancy.txt"
    main(["--n-orders", "16", "--ways", "1", "16", "--trials", "3", "--out", str(out)])
    text = out.read_text()
    assert text == capsys.readouterr().out
    rows = {tuple(line.split("  ")[1:3]): line.split()[-3:]
            for line in text.splitlines()[1:]}
    rows = {(ways.strip(), name.strip()): shares for (ways, name), shares in rows.items()}
    assert len(rows) == 2 * len(GAPS)
    assert rows["1 ways", "consecutive"] == ["100.0%"] * 3
    assert rows["1 ways", "stride n_orders"] == ["6.2%"] * 3       # 1 of 16
    assert all(rows["16 ways", name] == ["100.0%"] * 3 for name in GAPS)
