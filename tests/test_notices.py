"""Reject notices over real UDP sockets on the loopback: each client gets exactly its own
session's rejects, the desk gets all, and every field is what the drop-copy record says."""

import json
import socket

import pytest

from wiregate.sw.dropcopy import Control, Kind, Record
from wiregate.sw.notices import NoticePublisher, notice
from wiregate.sw.reasons import Reason, reason_word


def verdict(sequence, session, ref, reasons=(), **fields):
    word = reason_word(reasons)
    first = min(reasons) if reasons else None
    return Record(sequence=sequence, cycle=10 * sequence, time_us=sequence, kind=Kind.VERDICT,
                  session=session, user_ref_num=ref, accept=int(not reasons), reasons=word,
                  **({"primary": first} if first is not None else {}), **fields)


def day():
    enter = dict(msg_type=ord("O"), side=ord("B"), quantity=500, price=1_234_500,
                 symbol=b"AAPL    ", symbol_index=2, symbol_known=1)
    return [
        verdict(0, 0, 1, **enter),                                          # accepted
        verdict(1, 0, 2, [Reason.NOTIONAL, Reason.QUANTITY], **enter),     # client 0 reject
        verdict(2, 1, 7, [Reason.KILL_SESSION], msg_type=ord("U"),          # client 1 reject
                orig_user_ref_num=6, quantity=10, price=99, retransmit=1),
        Record(sequence=3, kind=Kind.EXCHANGE, msg_type=ord("E"), session=0, user_ref_num=1),
        Record(sequence=4, kind=Kind.CONTROL, control=Control.HEARTBEAT),
        verdict(5, 0, 3, [Reason.MALFORMED]),                               # undecodable
        verdict(6, 2, 9, [Reason.RATE], msg_type=ord("O")),                # no destination
    ]


@pytest.fixture
def receivers():
    socks = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        socks.append(s)
    yield socks
    for s in socks:
        s.close()


def received(sock, count):
    out = []
    for _ in range(count):
        data = sock.recv(65536)
        assert data.endswith(b"\n")
        out.append(json.loads(data))
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(65536)
    return out


def test_each_client_gets_its_own_rejects_and_the_desk_all(receivers):
    client0, client1, desk = receivers
    port = {s: s.getsockname()[1] for s in receivers}
    with NoticePublisher({0: [("127.0.0.1", port[client0])],
                          1: [("127.0.0.1", port[client1])]},
                         desk=[("127.0.0.1", port[desk])], gateway="gw-a",
                         session_names={0: "alpha", 1: "beta"}) as pub:
        sent = [pub.publish(r) for r in day()]
    assert sent == [0, 2, 2, 0, 0, 2, 1]
    got0 = received(client0, 2)
    got1 = received(client1, 1)
    got_desk = received(desk, 4)
    assert [n["sequence"] for n in got0] == [1, 5]
    assert [n["sequence"] for n in got1] == [2]
    assert [n["sequence"] for n in got_desk] == [1, 2, 5, 6]
    # The per-destination count runs from 0 with no gap.
    assert [n["notice"] for n in got0] == [0, 1]
    assert [n["notice"] for n in got_desk] == [0, 1, 2, 3]
    first = got0[0]
    assert first == {
        "v": 1, "gateway": "gw-a", "notice": 0, "sequence": 1, "time_us": 1, "session": 0,
        "session_name": "alpha", "msg_type": "O", "user_ref_num": 2, "orig_user_ref_num": 0,
        "side": "B", "quantity": 500, "price": 1_234_500, "symbol": "AAPL",
        # Priority order, as the reason word is read; QUANTITY outranks NOTIONAL.
        "reasons": ["QUANTITY", "NOTIONAL"], "primary": "QUANTITY",
        "ouch_reason": 0x1E, "retransmit": False,
    }
    replace = got1[0]
    assert (replace["msg_type"], replace["orig_user_ref_num"], replace["retransmit"],
            replace["primary"], replace["ouch_reason"]) == ("U", 6, True, "KILL_SESSION", 0)
    assert got0[1]["msg_type"] == "" and got0[1]["reasons"] == ["MALFORMED"]
    assert got_desk[3]["session_name"] is None


def test_only_rejected_verdicts_have_notices():
    kinds = [notice(r, gateway="g") is not None for r in day()]
    assert kinds == [False, True, True, False, False, True, True]


def test_a_refused_datagram_is_counted_and_its_number_skipped(receivers, caplog):
    client0 = receivers[0]
    port = client0.getsockname()[1]
    # Port 0 cannot be sent to: the operating system refuses the datagram at once.
    with NoticePublisher({0: [("127.0.0.1", 0), ("127.0.0.1", port)]}) as pub:
        assert pub.publish(day()[1]) == 1
        assert pub.publish(day()[5]) == 1
        bad, good = pub.destinations
    assert (bad.sent, bad.failed, good.sent, good.failed) == (2, 2, 2, 0)
    assert [n["notice"] for n in received(client0, 2)] == [0, 1]
    assert "not sent" in caplog.text
