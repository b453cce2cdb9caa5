"""The control stream's format (sw/control.py) against struct, zlib and RFC 1055 by hand."""

import random
import struct
import zlib

import pytest

from wiregate.sw import control, docgen
from wiregate.sw.control import (
    Command,
    FrameReader,
    Kind,
    Response,
    Status,
    decode_frame,
    decode_outbound,
    encode_command,
    stuff,
)
from wiregate.sw.dropcopy import Record
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.regmap import RegisterMap


def by_hand(kind, sequence, payload, status=0):
    body = struct.pack(">BBIBBH", 1, kind, sequence, status, 0, len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def test_commands_encode_as_the_document_says():
    assert encode_command(Command.READ, 7, address=0x1234, count=3) == by_hand(
        1, 7, struct.pack(">II", 0x1234, 3))
    assert encode_command(Command.WRITE, 0xFFFFFFFF, [1, 0xC0DB], address=14) == by_hand(
        2, 0xFFFFFFFF, struct.pack(">III", 14, 1, 0xC0DB))
    assert encode_command(Command.KILL, 2, scope=1, index=300) == by_hand(
        5, 2, struct.pack(">BBH", 1, 0, 300))
    assert control.latch_command(Command.RELEASE, 3, "symbol", 9) == by_hand(
        6, 3, struct.pack(">BBH", 2, 0, 9))
    assert encode_command(Command.HEARTBEAT, 4) == by_hand(7, 4, b"")
    assert encode_command(Command.SNAPSHOT, 5, clear=1) == by_hand(8, 5, struct.pack(">I", 1))


def test_table_write_packs_used_words_of_each_entry():
    regmap = RegisterMap()
    t = regmap.table("symbol_hash")
    entries = [{"symbol": 0x4142434420202020 + k, "index": k, "valid": 1} for k in range(3)]
    frame = control.table_write(regmap, 9, "symbol_hash", 10, entries)
    words = [w for k, e in enumerate(entries) for w in t.encode_entry(e)]
    assert frame == by_hand(3, 9, struct.pack(f">II{len(words)}I", t.address, 10, *words))
    with pytest.raises(ValueError, match="outside"):
        control.table_write(regmap, 9, "symbol_hash", t.depth - 2, entries)
    with pytest.raises(ValueError, match="not writable"):
        control.table_write(regmap, 9, "session_sync", 0, [{}])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: encode_command(Command.WRITE, 0, [], address=0), "1..240 words"),
    (lambda: encode_command(Command.WRITE, 0, [0] * 241, address=0), "1..240 words"),
    (lambda: encode_command(Command.READ, 0, [1], address=0, count=1), "takes no words"),
    (lambda: encode_command(Command.KILL, 0, scope=256), "does not fit"),
    (lambda: encode_command(Command.COMMIT, 0, epoch=1), "no field 'epoch'"),
])
def test_encoder_refuses_what_the_gateway_would(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_stuffing_is_rfc_1055():
    assert stuff(bytes([1, 0xC0, 2, 0xDB, 3])) == bytes(
        [0xC0, 1, 0xDB, 0xDC, 2, 0xDB, 0xDD, 3, 0xC0])


def test_reader_resynchronises_after_garbage_and_cut_frames():
    rng = random.Random(5)
    frames = [encode_command(Command.WRITE, k, [rng.getrandbits(32) for _ in range(k + 1)],
                             address=0xC0DB) for k in range(6)]
    line = b"\x01\x02garbage" + stuff(frames[0]) + stuff(frames[1])[:-7] + b"".join(
        stuff(f) for f in frames[2:]) + b"\xdb\x41\xc0"
    reader = FrameReader()
    got = []
    for k in range(0, len(line), 5):          # fed in pieces, as a socket delivers
        got += reader.feed(line[k:k + 5])
    assert got[0] == (b"\x01\x02garbage", True)
    assert got[1] == (frames[0], True)
    with pytest.raises(ProtocolError):
        decode_frame(got[2][0])               # the cut frame
    assert [f for f, _ in got[3:7]] == frames[2:]
    assert got[7] == (b"", False)             # the bad escape


def test_decoder_names_each_damage():
    good = by_hand(0x81, 1, struct.pack(">I", 2))
    assert decode_frame(good).payload == struct.pack(">I", 2)
    for frame, message in ((good[:10], "at least"), (good[:-1] + b"\0", "CRC"),
                           (good[:-4], "CRC")):
        with pytest.raises(ProtocolError, match=message):
            decode_frame(frame)
    body = struct.pack(">BBIBBH", 2, 0x81, 1, 0, 0, 0)
    with pytest.raises(ProtocolError, match="version 2"):
        decode_frame(body + struct.pack("<I", zlib.crc32(body)))
    body = struct.pack(">BBIBBH", 1, 0x81, 1, 0, 0, 8) + bytes(4)
    with pytest.raises(ProtocolError, match="says 8 payload"):
        decode_frame(body + struct.pack("<I", zlib.crc32(body)))


def test_responses_and_records_decode():
    read = Response.from_frame(decode_frame(by_hand(0x81, 4, struct.pack(">II", 5, 6))))
    assert (read.command, read.sequence, read.status, read.words) == (1, 4, Status.OK, (5, 6))
    refused = decode_outbound(decode_frame(by_hand(0x82, 4, struct.pack(">I", 9), status=9)))
    assert refused.status is Status.OUT_OF_SEQUENCE and refused.expected == 9
    record = Record(kind=1, sequence=3, quantity=100)
    assert decode_outbound(decode_frame(by_hand(Kind.DROP_COPY, 0, record.encode()))) == record


def test_status_counters_are_registers_of_the_map():
    regmap = RegisterMap()
    for status in Status:
        assert regmap.register(status.counter).group == "counters"
    assert set(control.STATUS_MEANING) == set(Status)


def test_control_doc_is_generated():
    assert docgen.CONTROL_OUTPUT.read_text() == docgen.render_control(), (
        "docs/control.md is stale: run python -m wiregate.sw.docgen")


def test_docgen_check_flags_a_stale_control_doc(tmp_path):
    regmap_doc, control_doc = tmp_path / "regmap.md", tmp_path / "control.md"
    args = ["--output", str(regmap_doc), "--control-output", str(control_doc)]
    assert docgen.main(args) == 0
    assert docgen.main([*args, "--check"]) == 0
    control_doc.write_text(control_doc.read_text().replace("SLIP", "COBS"))
    assert docgen.main([*args, "--check"]) == 1
