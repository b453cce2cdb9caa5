"""The core's Verilator model driven from compiled code, many cycles per call.

cocotb costs a Python call per signal per cycle; here a small C++ harness
(``harness.cpp``), built into one shared library with the model
(:func:`~wiregate.sim.fast.build.build_harness`) and loaded with ctypes
(:class:`~wiregate.sim.fast.model.Harness`), streams frames into the beat ports, collects
frames, drop-copy bytes and first-byte cycles, and runs the word bus's write handshake.
Python keeps the scoreboard and the model, batch by batch
(:class:`~wiregate.sim.fast.bench.FastBench`).

Cycle convention (the cocotb benches'): in cycle ``c`` the outputs are sampled first, as the
falling edge before rising edge ``c`` sees them, then the inputs of cycle ``c`` are set,
then the clock rises and falls.

``python -m wiregate.sim.fast --width 8 --messages 100000`` replays a random day and prints
the rate.
"""

import time

from wiregate.sim.core.plan import DROPCOPY_READY, STRETCH, TIME_SCALE
from wiregate.sim.trading import Trading

__all__ = ["random_day"]


def random_day(width: int, messages: int, seed: int):
    """The cocotb bench's ``random_day`` through the harness, every check included.

    Returns
    -------
    (bench, figures) : (FastBench, dict)
        ``figures``: client messages, processor seconds to generate the day, to play and
        check it, of which in the harness, the wall-clock seconds of play and check
        (processor time is what the rate is given in: the machine may be shared), cycles
        simulated and records.
    """
    from .bench import FastBench

    bench = FastBench(width, seed, scale=TIME_SCALE[width],
                      dropcopy_ready=DROPCOPY_READY[width])
    begin = time.process_time()
    trading = Trading(seed, bench.sizes)
    items = trading.generate(messages)
    generated, wall = time.process_time(), time.perf_counter()
    bench.start()
    bench.play(items, stretch=STRETCH)
    bench.finish()
    done, wall = time.process_time(), time.perf_counter() - wall
    lost = [s for s in bench.board.sessions
            if s in bench.connected and not bench.board.in_sync(s)]
    assert not lost, f"seed {seed}: the bench lost the streams of sessions {lost}"
    latencies = bench.latencies()
    assert latencies == {bench.expected_latency()}, \
        f"seed {seed}: latency {sorted(latencies)}, expected {bench.expected_latency()}"
    return bench, {"messages": trading.messages, "generate_s": generated - begin,
                   "play_s": done - generated, "harness_s": bench.timing["harness"], "wall_s": wall,
                   "cycles": bench.sim.cycle, "records": len(bench.record_log)}
