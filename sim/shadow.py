"""The drop copy a gateway that agrees with the model would write, and the shadow check's speed.

:func:`model_records` plays a trading day (:class:`wiregate.sim.trading.Trading`) through a
model and writes the :class:`~wiregate.sw.dropcopy.Record` of every event as the drop-copy
module specifies it (with a REVOKE for each order a void frame had accepted, and a host that
reads the queue in batches), so the host's :class:`~wiregate.sw.shadow.ShadowCheck` can be
tested and timed without gateware.

``python -m wiregate.sim.shadow --events N`` prints events per second of the model alone on
the day's events and of the shadow check on its records (one core, this process).
"""

import argparse
import gc
import time

from wiregate.sim.results import report
from wiregate.sim.trading import Sizes, Trading
from wiregate.sw.dropcopy import Control, Kind, Record
from wiregate.sw.model import (
    ClientMessage,
    Commit,
    ExchangeMessage,
    FrameVoid,
    HostRead,
    Revoke,
)
from wiregate.sw.profiles import PROFILES
from wiregate.sw.shadow import ShadowCheck, control_fields, verdict_fields

__all__ = ["Day", "model_records"]

_CODES = {"Commit": Control.COMMIT, "Kill": Control.KILL, "Release": Control.RELEASE,
          "Heartbeat": Control.HEARTBEAT, "SetReference": Control.SET_REFERENCE,
          "SessionSync": Control.SESSION_SYNC}
_FIELDS = ("user_ref_num", "orig_user_ref_num", "quantity", "price", "match_number")


def _message_fields(msg) -> dict:
    """The record fields a message carries (its own values, as on the wire)."""
    out = {name: getattr(msg, name) for name in _FIELDS if hasattr(msg, name)}
    for name in ("side", "order_state"):
        if hasattr(msg, name):
            out[name] = ord(getattr(msg, name))
    if hasattr(msg, "symbol"):
        out["symbol"] = msg.symbol.encode("ascii").ljust(8, b" ")
    return out


class Day:
    """A trading day and the limits it committed, in commit order.

    Parameters
    ----------
    seed : int
    sizes : Sizes
    n_messages : int
        Client messages in the day (at least).

    Attributes
    ----------
    events : list
        The model events, in order.
    commits : list of Limits
    """

    def __init__(self, seed: int, sizes: Sizes, n_messages: int):
        self.sizes = sizes
        items = Trading(seed, sizes).generate(n_messages)
        self.events = [item.event for item in items if item.event is not None]
        self.commits = [e.limits for e in self.events if isinstance(e, Commit)]


def model_records(day: Day, *, batch: int = 16, gate=None) -> list[Record]:
    """The drop copy of ``day`` as the model decides it; the host reads every ``batch``
    records (so ``queued`` runs from 0 to ``batch - 1``). ``gate``: the model to play it
    through (a fresh one of the day's sizes by default)."""
    gate = day.sizes.gate() if gate is None else gate
    records: list[Record] = []
    frame: list = []        # (verdict, retransmit) of the client frame opened last
    epoch = 0

    def emit(event, kind, values):
        sequence = len(records)
        read = sequence - sequence % batch
        gate.apply(HostRead(event.t, read))
        verdict = gate.apply(event)
        if verdict is not None:
            values = {**values, **verdict_fields(verdict, event.retransmit)}
        records.append(Record(sequence=sequence, time_us=event.t, kind=kind,
                              queued=sequence - read, **values))
        return verdict

    for event in day.events:
        if isinstance(event, ClientMessage):
            if event.opens_frame:
                frame = []
            fields = _message_fields(event.msg) if hasattr(event.msg, "TYPE") else {}
            frame.append((emit(event, Kind.VERDICT, fields), event.retransmit))
        elif isinstance(event, ExchangeMessage):
            fields = _message_fields(event.msg)
            fields.pop("symbol", None)      # an EXCHANGE record carries no symbol
            emit(event, Kind.EXCHANGE, {**fields, "session": event.session,
                                        "msg_type": event.msg.TYPE[0]})
        elif isinstance(event, FrameVoid):
            emit(event, Kind.CONTROL, {"control": Control.VOID_UNDO, "session": event.session,
                                       "argument": len(frame)})
            for verdict, retransmit in frame:
                if verdict.accept and not retransmit and verdict.msg_type in (b"O", b"U"):
                    emit(Revoke(event.t, event.session, verdict.user_ref_num), Kind.CONTROL,
                         {"control": Control.REVOKE, "session": event.session,
                          "user_ref_num": verdict.user_ref_num})
            frame = []
        else:
            if isinstance(event, Commit):
                epoch += 1
            emit(event, Kind.CONTROL, {"control": _CODES[type(event).__name__],
                                       **control_fields(event, event.t, epoch)})
    return records


def bench(n_messages: int, seed: int = 1, profile: str = "colorlight-5a75b") -> dict:
    """Events per second of the model alone and of the shadow check, on one trading day of
    ``n_messages`` client messages at a build profile's sizes; in this process's CPU time
    (the machine's other load left out)."""
    day = Day(seed, Sizes.of(PROFILES[profile]), n_messages)
    records = model_records(day)
    # The day and its records, made ahead for the bench, are kept out of the collector's
    # passes (a daemon holds only the model and the records in flight).
    gc.collect()
    gc.freeze()
    gate = day.sizes.gate()
    start = time.process_time()
    for event in day.events:
        gate.apply(event)
    model_s = time.process_time() - start
    check = ShadowCheck.for_profile(PROFILES[profile], day.commits)
    start = time.process_time()
    mismatch = check.run(records)
    shadow_s = time.process_time() - start
    if mismatch is not None:
        raise AssertionError(f"the model's own drop copy disagrees with it: {mismatch}")
    gc.unfreeze()
    return {"events": len(day.events), "records": len(records),
            "model_events_per_s": len(day.events) / model_s,
            "shadow_records_per_s": len(records) / shadow_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wiregate.sim.shadow", description=(
        "Events per second of the reference model and of the host's shadow check."))
    parser.add_argument("--events", type=int, default=100_000,
                        help="client messages in the trading day (more events in all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", default="colorlight-5a75b", choices=sorted(PROFILES),
                        help="the build profile whose table sizes the model has")
    parser.add_argument("--out", help="append the result line to this file")
    args = parser.parse_args(argv)
    result = bench(args.events, args.seed, args.profile)
    line = (f"shadow check, {args.profile}: {result['events']} model events, "
            f"{result['records']} records; "
            f"model {result['model_events_per_s']:,.0f} events/s, shadow check "
            f"{result['shadow_records_per_s']:,.0f} records/s (one core, CPU time, "
            f"{time.strftime('%Y-%m-%d %H:%M')})")
    report(line, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
