"""nextpnr-ecp5 place and route out of context, checked on a small holdback: its flip-flops
follow from its contract, the wrapper's from its port widths, and the report must agree
with Yosys' count and with nextpnr's own placement."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from wiregate.hw.egress.holdback import Holdback
from wiregate.sim.pnr import (
    BLOCKS,
    IN_PINS,
    XOR_FANIN,
    OutOfContext,
    format_summary,
    main,
    place_and_route,
    port_bits,
    summarize,
)
from wiregate.sim.synth import lut4_equivalents
from wiregate.sw.profiles import profile

from .test_synth import register_bits


def port_widths(component):
    """Input and output bits of ``component``, constants left out."""
    inputs, outputs = port_bits(component)
    return sum(len(v) for v in inputs), sum(len(v) for v in outputs)


def xor_tree_flops(bits):
    flops = 0
    while bits > 1:
        bits = -(-bits // XOR_FANIN)
        flops += bits
    return flops


def test_holdback_places_and_meets_timing(tmp_path):
    width, delay = 1, 1
    block = Holdback(width, delay)
    n_in, n_out = port_widths(block)
    result = place_and_route(block, "holdback", tmp_path, freq=125)
    summary = summarize(result, "25k", 125)

    # Flip-flops: the delay line's, one per input bit in the chains, the XOR tree's.
    expected_ff = register_bits(width, delay) + n_in + xor_tree_flops(n_out)
    assert summary["cells"]["FF"] == expected_ff, summary["cells"]
    # nextpnr placed what Yosys counted: a comb cell per LUT4 (two per CCU2C), and at
    # most one more that drives a constant.
    placed = result["report"]["utilization"]
    assert placed["TRELLIS_FF"]["used"] == expected_ff
    assert 0 <= placed["TRELLIS_COMB"]["used"] - lut4_equivalents(result["stat"]) <= 1
    assert summary["cells"]["LUT4-equivalents"] == lut4_equivalents(result["stat"])
    # Three pins: two chain inputs and the XOR output (and the clock and reset).
    assert placed["TRELLIS_IO"]["used"] == IN_PINS + 1 + 2
    assert summary["utilisation"]["FF"]["of"] == 24288

    # A delay line with flag gating: one clock, far above 125 MHz, every path from a
    # register to a register.
    (clock,) = summary["clocks"].values()
    assert clock["constraint_mhz"] == 125
    assert clock["fmax_mhz"] > 125 and clock["met"] and summary["met"]
    internal = [path for path in summary["critical_paths"]
                if path["from_clock"] and path["to_clock"]
                and "async" not in path["from_clock"] + path["to_clock"]]
    assert internal
    assert internal[0]["delay_ns"] <= 1000 / clock["fmax_mhz"] + 0.01
    assert internal[0]["from_cell"] and internal[0]["to_cell"]


class TwoClocks(wiring.Component):
    """A register of the byte clock into one of the engine's through an adder, and back;
    and a counter of the engine's own."""

    a: In(16)
    y: Out(16)
    count: Out(16)

    def elaborate(self, platform):
        m = Module()
        fast, slow = Signal(16), Signal(16)
        m.d.sync += [fast.eq(self.a), self.y.eq(slow)]
        m.d.engine += [slow.eq(fast + 1), self.count.eq(self.count + 1)]
        return m


def test_the_engine_clock_comes_from_a_pll_and_its_crossings_are_checked(tmp_path):
    # Both clocks from one EHXPLLL, as on the boards: nextpnr derives 125 and 62.5 MHz from
    # its input, and each path between them must settle in one byte-clock period.
    result = place_and_route(TwoClocks(), "two_clocks", tmp_path, freq=125, engine_clock=True)
    summary = summarize(result, "25k", 125)
    assert sorted(c["constraint_mhz"] for c in summary["clocks"].values()) == [62.5, 125], (
        summary["clocks"])
    crossings = summary["crossings"]
    assert {(c["from_clock"] == c["to_clock"]) for c in crossings} == {False}
    assert len(crossings) == 2 and all(c["budget_ns"] == 8 for c in crossings), crossings
    assert all(c["met"] == (c["delay_ns"] <= 8) for c in crossings) and summary["met"]


def test_a_crossing_longer_than_a_byte_clock_period_fails():
    # The report's crossings, from a nextpnr report of two clocks that both meet their own
    # constraints: an 8.5 ns path between them fails the whole report, an 8 ns one passes.
    def report(delay):
        step = {"from": {"cell": "a", "port": "Q"}, "to": {"cell": "b", "port": "DI"},
                "type": "routing", "net": "n", "delay": delay}
        return {"stat": {}, "report": {
            "fmax": {"$glbnet$clk": {"achieved": 200.0, "constraint": 125.0},
                     "$glbnet$engine_clk": {"achieved": 100.0, "constraint": 62.5}},
            "critical_paths": [{"from": "posedge $glbnet$engine_clk",
                                "to": "posedge $glbnet$clk", "path": [step]},
                               {"from": "<async>", "to": "posedge $glbnet$clk",
                                "path": [{**step, "delay": 20.0}]}]}}

    failed, passed = summarize(report(8.5)), summarize(report(8.0))
    assert [c["met"] for c in failed["crossings"]] == [False] and not failed["met"]
    assert [c["met"] for c in passed["crossings"]] == [True] and passed["met"]
    assert ("crossing posedge $glbnet$engine_clk -> posedge $glbnet$clk: 8.5 ns against "
            "8.0 ns: FAILED") in format_summary(failed)


def test_command_fails_when_timing_fails(capsys):
    # 2 GHz is beyond any ECP5 path: the command reports it and exits 1.
    assert main(["holdback", "--width", "1", "--delay", "3", "--freq", "2000"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "Fmax" in out


def test_wrapper_folds_every_output_into_the_pin():
    # The pin is the XOR of every output bit of the block, a fixed number of cycles later.
    block = Holdback(1, 0)
    dut = OutOfContext(block)
    _, outputs = port_bits(block)
    depth, bits = 0, sum(len(value) for value in outputs)
    while bits > 1:
        bits = -(-bits // XOR_FANIN)
        depth += 1
    parities, pins = [], []

    async def testbench(ctx):
        for cycle in range(80):
            ctx.set(dut.din, cycle * 7 % 4)
            parities.append(sum(bin(ctx.get(value)).count("1") for value in outputs) & 1)
            pins.append(ctx.get(dut.dout))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    assert depth >= 2
    assert parities[:-depth] == pins[depth:]
    assert 0 < sum(parities) < len(parities)


def test_control_blocks_take_the_profiles_sizes():
    # The control plane is placed at the part's sizes, not the simulation defaults.
    chosen = profile("colorlight-5a75b")
    for name in ("register_file", "control_port", "dropcopy"):
        factory, options = BLOCKS[name]
        assert options == ("profile",)
        block = factory(profile=chosen)
        if name == "dropcopy":
            assert block.depth == chosen.dropcopy_depth
        else:
            assert (block.regmap.n_sessions, block.regmap.n_symbols) == \
                (chosen.n_sessions, chosen.n_symbols)


def test_ingress_stages_take_the_profiles_sessions():
    # An ingress stage alone is placed with as many sessions as the profile's part holds:
    # the session its output names ranges over the profile's, not the simulation default.
    chosen = profile("colorlight-5a75b")
    paths = {"sessions": (), "tcp_tracker": ("beat",), "soupbin": ("beat", "beat"),
             "ouch_extract": ("event",)}
    for name, path in paths.items():
        factory, options = BLOCKS[name]
        assert "profile" in options
        layout = factory(width=1, profile=chosen).o.payload.shape()
        for member in path:
            layout = layout[member].shape
        assert layout["session"].shape == range(chosen.n_sessions), name
