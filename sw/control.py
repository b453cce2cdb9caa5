# Ref: wiregate control stream 1.0 (this module is the specification; docs/control.md is generated)
"""The control stream: framed commands to the gateway, responses and the drop copy back.

One byte stream in, one out, the same bytes on every transport (a TCP socket into the
simulated gateway, a UART on a board, UDP later). Declared once, here, as data: the frame
header (:data:`HEADER_FIELDS`), the kinds (:class:`Kind`), the commands and their payloads
(:data:`COMMANDS`), the statuses (:class:`Status`). The gateware
(:mod:`wiregate.hw.control`) takes its constants from this module, the host encodes and
decodes with it, and ``docs/control.md`` is generated from it.

Line coding. A frame is sent SLIP-coded (RFC 1055): ``END`` (0xC0) before and after it,
``END`` and ``ESC`` (0xDB) inside it sent as ``ESC ESC_END`` (0xDB 0xDC) and ``ESC ESC_ESC``
(0xDB 0xDD). Why SLIP and not COBS or a sync pattern with a length: both ends code and
decode it a byte at a time with one bit of state, so the gateware sends a drop-copy record
as it leaves the queue with no frame buffer on the way out; a receiver resynchronises at
the next ``END`` whatever came before (garbage, a cut frame), which a sync pattern that can
also occur inside a frame does not guarantee. The cost is a variable overhead: one extra
byte per 0xC0 or 0xDB in the frame (0.8 % for random bytes; zero words, the most common
ones, cost nothing).

Frame. Between two ``END``, after unescaping: the header (``HEADER_FIELDS``, big-endian),
``length`` payload bytes, ``mac_length`` MAC bytes, and the CRC-32 of everything before it
(IEEE 802.3, ``zlib.crc32``) sent least significant byte first, as Ethernet's FCS, so that a
receiver may check the residue instead of finding the CRC's position first.

Sequence. Every command carries a 32-bit sequence number. The gateway executes a command
only when it carries the expected number, then expects the next one (modulo 2**32); after
reset it expects 0. Every response except a read's data carries the number expected next,
so a host that starts (or restarts) learns it from its first answer, and a host that lost
a response and sends the command again gets ``OUT_OF_SEQUENCE``, which says it was
executed. A command that is refused changes nothing: no register, no table, no sequence.

MAC. ``mac_length`` is 0 on every transport that a network cannot reach (the UART, the
simulation socket on 127.0.0.1). A gateway built with a key (for a UDP management port;
none is today) will refuse a frame without a MAC of its length (at most 32 bytes, so that
the longest command with its MAC fits the gateway's buffer) with ``MAC_REQUIRED``.
A gateway built without a key refuses any frame with a MAC (``BAD_MAC``): it cannot check
it, and a host that believes its commands are authenticated must learn that they are not.

Responses. Each command is answered by one frame of kind ``RESPONSE | command`` with the
command's sequence number and a status. Its payload is the words read for a successful
``READ`` and otherwise the sequence number the gateway expects next (4 bytes). A frame too
damaged to say what it was (bad CRC, short) is answered as well, with the kind and sequence
bytes as they arrived (0 for bytes that did not), so the host sees every refusal. The
gateway answers commands in the order they arrived and accepts the next one only after the
answer to the previous one has been sent; a host keeps one command outstanding (a UART
receiver in front of the gateway needs no more than one frame of buffer).

Drop copy. Each drop-copy record (:mod:`wiregate.sw.dropcopy`) travels as one frame of
kind ``DROP_COPY``, sequence 0 (the record carries its own gap-free sequence number), the
record as payload. Drop-copy frames and responses interleave whole frames, never bytes.
"""

import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from wiregate.sw.dropcopy import RECORD_SIZE, Record
from wiregate.sw.model import SCOPES
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.regmap import WORD_BITS, Access, RegisterMap

__all__ = [
    "ARGUMENT_BYTES",
    "BUFFER_BYTES",
    "COMMANDS",
    "CRC_SIZE",
    "END",
    "ESC",
    "ESC_END",
    "ESC_ESC",
    "HEADER_FIELDS",
    "HEADER_SIZE",
    "MAX_MAC",
    "MAX_WORDS",
    "MIN_FRAME",
    "STATUS_MEANING",
    "VERSION",
    "Command",
    "CommandSpec",
    "Frame",
    "FrameReader",
    "Kind",
    "PayloadField",
    "Response",
    "Status",
    "decode_frame",
    "decode_outbound",
    "encode_command",
    "encode_frame",
    "header",
    "latch_command",
    "max_frame",
    "stuff",
    "table_write",
]

VERSION = 1

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD

# The gateway's frame buffer: one ECP5 block RAM holds it, and the longest command with the
# longest MAC fits it (checked below).
BUFFER_BYTES = 1024
MAX_WORDS = 240         # words in one READ, WRITE or TABLE_WRITE
MAX_MAC = 32            # the longest MAC a keyed gateway will take (an HMAC-SHA256)
CRC_SIZE = 4


@dataclass(frozen=True)
class PayloadField:
    """A field of the frame header or of a command's payload: big-endian unsigned.

    Attributes
    ----------
    name : str
        ``reserved`` fields must be zero.
    offset : int
        First byte (from the start of the header, or of the payload).
    size : int
        Bytes.
    description : str
    """

    name: str
    offset: int
    size: int
    description: str

    @property
    def bits(self) -> int:
        return 8 * self.size


def _check_contiguous(declared: Sequence[PayloadField], where: str) -> int:
    end = 0
    for f in declared:
        if f.offset != end or f.size not in (1, 2, 4):
            raise ValueError(f"{where}.{f.name}: at byte {f.offset} with {f.size} bytes, "
                             f"expected byte {end} and 1, 2 or 4 bytes")
        end += f.size
    return end


HEADER_FIELDS = (
    PayloadField("version", 0, 1, f"frame format version, {VERSION}"),
    PayloadField("kind", 1, 1, "a command; RESPONSE (0x80) plus the command answered; or "
                               "DROP_COPY (0x40)"),
    PayloadField("sequence", 2, 4, "command sequence number; a response carries its "
                                   "command's, a drop-copy frame 0"),
    PayloadField("status", 6, 1, "a response's Status; 0 in commands and drop-copy frames"),
    PayloadField("mac_length", 7, 1, "bytes of MAC after the payload; 0 today"),
    PayloadField("length", 8, 2, "payload bytes"),
)
HEADER_SIZE = _check_contiguous(HEADER_FIELDS, "header")
MIN_FRAME = HEADER_SIZE + CRC_SIZE
_HEADER = struct.Struct(">BBIBBH")
if _HEADER.size != HEADER_SIZE:
    raise ValueError("the header struct does not match HEADER_FIELDS")


class Kind(IntEnum):
    """The ``kind`` byte: commands (host to gateway), responses and the drop copy."""

    READ = 0x01
    WRITE = 0x02
    TABLE_WRITE = 0x03
    COMMIT = 0x04
    KILL = 0x05
    RELEASE = 0x06
    HEARTBEAT = 0x07
    SNAPSHOT = 0x08
    DROP_COPY = 0x40
    RESPONSE = 0x80     # ORed with the command answered


Command = Kind          # the commands are the kinds below DROP_COPY


class Status(IntEnum):
    """A response's status. ``counter`` names the register-map counter it increments."""

    OK = 0
    BAD_CRC = 1            # the CRC-32 does not match
    FRAMING = 2            # an ESC followed by neither ESC_END nor ESC_ESC
    SHORT_FRAME = 3        # shorter than a header and a CRC, or than its length field says
    LONG_FRAME = 4         # longer than its length field says, or than the gateway's buffer
    BAD_VERSION = 5        # version is not VERSION
    MAC_REQUIRED = 6       # (future) a keyed gateway got a frame without its MAC
    BAD_MAC = 7            # a MAC the gateway cannot check (today: any MAC)
    MALFORMED = 8          # status byte of a command, or a reserved field, not zero
    OUT_OF_SEQUENCE = 9    # not the expected sequence number (the payload says which is)
    UNKNOWN_COMMAND = 10   # kind is not a command
    BAD_LENGTH = 11        # payload length wrong for the command (or no words, or too many)
    ADDRESS_RANGE = 12     # address or address + count outside the map, or not an RW table
    INDEX_RANGE = 13       # a table entry, kill scope or latch index out of range

    @property
    def counter(self) -> str:
        """The counter that counts a frame answered with this status."""
        if self is Status.OK:
            return "control_commands"
        if self < Status.MALFORMED:
            return "control_frame_errors"
        return "control_command_errors"


STATUS_MEANING = {
    Status.OK: "executed",
    Status.BAD_CRC: "the CRC-32 does not match: the frame was damaged on the way",
    Status.FRAMING: "an ESC followed by neither ESC_END nor ESC_ESC",
    Status.SHORT_FRAME: "shorter than a header and a CRC, or than its length and "
                        "mac_length say",
    Status.LONG_FRAME: "longer than its length and mac_length say, or than the gateway's "
                       f"{BUFFER_BYTES}-byte buffer",
    Status.BAD_VERSION: f"version is not {VERSION}",
    Status.MAC_REQUIRED: "(future) a gateway built with a key got a frame without its MAC",
    Status.BAD_MAC: "a MAC the gateway cannot check: today any mac_length but 0",
    Status.MALFORMED: "a command's status byte, or a reserved field, is not zero",
    Status.OUT_OF_SEQUENCE: "not the sequence number expected (the response carries it)",
    Status.UNKNOWN_COMMAND: "kind is not a command",
    Status.BAD_LENGTH: "payload length wrong for the command (a word count of 0, more than "
                       f"{MAX_WORDS}, or not whole entries)",
    Status.ADDRESS_RANGE: "the words would reach past the register map, or TABLE_WRITE does "
                          "not name the base of a writable table",
    Status.INDEX_RANGE: "an entry past the table's depth, an unknown kill scope, or a latch "
                        "index past the scope's count",
}


@dataclass(frozen=True)
class CommandSpec:
    """A command's payload: fixed fields, then (``words``) 1..MAX_WORDS 32-bit words."""

    fields: tuple[PayloadField, ...]
    words: bool
    description: str

    @property
    def fixed(self) -> int:
        return _check_contiguous(self.fields, "command")


def _u32(name, offset, description):
    return PayloadField(name, offset, 4, description)


COMMANDS = {
    Command.READ: CommandSpec(
        (_u32("address", 0, "first word address"),
         _u32("count", 4, f"words to read, 1..{MAX_WORDS}")), False,
        "read `count` consecutive words; the response's payload is the words"),
    Command.WRITE: CommandSpec(
        (_u32("address", 0, "first word address"),), True,
        "write the words to consecutive addresses, low address first"),
    Command.TABLE_WRITE: CommandSpec(
        (_u32("table", 0, "base address of a writable table (RegisterMap)"),
         _u32("index", 4, "first entry")), True,
        "write whole entries from `index` on: each entry's `used_words` words, in address "
        "order (the banked tables' shadow bank)"),
    Command.COMMIT: CommandSpec((), False, "write `commit.swap`: swap the limit banks"),
    Command.KILL: CommandSpec(
        (PayloadField("scope", 0, 1, "0 gateway, 1 session, 2 symbol (model.SCOPES)"),
         PayloadField("reserved", 1, 1, "0"),
         PayloadField("index", 2, 2, "session or symbol index; 0 for the gateway")), False,
        "set one kill latch: `kill_gateway_set` or the scope's `kill_*_set` bitmap"),
    Command.RELEASE: CommandSpec(
        (PayloadField("scope", 0, 1, "as KILL"),
         PayloadField("reserved", 1, 1, "0"),
         PayloadField("index", 2, 2, "as KILL")), False,
        "release one kill latch: `kill_gateway_release` or the `kill_*_release` bitmap"),
    Command.HEARTBEAT: CommandSpec((), False, "write `heartbeat.beat`: restart the watchdog"),
    Command.SNAPSHOT: CommandSpec(
        (_u32("clear", 0, "0, or 1 to also zero the live counters (other values: MALFORMED)"),),
        False,
        "write `counter_control`: copy every counter into the readable snapshot"),
}
# The gateway keeps the fixed fields in registers as they arrive; the words stay in its buffer.
ARGUMENT_BYTES = max(spec.fixed for spec in COMMANDS.values())


# --------------------------------------------------------------------------- encoding

def header(kind: int, sequence: int, *, status: int = 0, mac_length: int = 0,
           length: int = 0) -> bytes:
    """A frame's header bytes (:data:`HEADER_FIELDS`)."""
    return _HEADER.pack(VERSION, kind, sequence, status, mac_length, length)


def encode_frame(kind: int, sequence: int, payload: bytes = b"", *, status: int = 0,
                 mac: bytes = b"") -> bytes:
    """A frame's bytes before line coding: header, payload, MAC, CRC-32 (LSB first)."""
    body = header(kind, sequence, status=status, mac_length=len(mac),
                  length=len(payload)) + payload + mac
    return body + zlib.crc32(body).to_bytes(CRC_SIZE, "little")


def stuff(frame: bytes) -> bytes:
    """SLIP-code one frame, with an ``END`` before and after it."""
    out = bytearray([END])
    for byte in frame:
        if byte == END:
            out += bytes([ESC, ESC_END])
        elif byte == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(byte)
    out.append(END)
    return bytes(out)


def _field_bytes(spec: CommandSpec, values: dict, command: Command) -> bytes:
    out = bytearray()
    for f in spec.fields:
        value = values.pop(f.name, 0)
        if not isinstance(value, int) or not 0 <= value < 1 << f.bits:
            raise ValueError(f"{command.name}.{f.name} = {value!r} does not fit {f.size} bytes")
        out += value.to_bytes(f.size, "big")
    if values:
        raise ValueError(f"{command.name} has no field {sorted(values)[0]!r}")
    return bytes(out)


def encode_command(command: Command, sequence: int, words: Iterable[int] = (),
                   **fields: int) -> bytes:
    """A command frame (before line coding); fields not named are 0."""
    command = Command(command)
    spec = COMMANDS[command]
    words = list(words)
    if words and not spec.words:
        raise ValueError(f"{command.name} takes no words")
    if spec.words and not 1 <= len(words) <= MAX_WORDS:
        raise ValueError(f"{command.name} takes 1..{MAX_WORDS} words, not {len(words)}")
    payload = _field_bytes(spec, dict(fields), command)
    payload += b"".join(w.to_bytes(4, "big") for w in words)
    return encode_frame(command, sequence, payload)


def table_write(regmap: RegisterMap, sequence: int, table: str, index: int,
                entries: Sequence[dict]) -> bytes:
    """A TABLE_WRITE of whole entries of ``table`` from ``index`` on (fields by name)."""
    t = regmap.table(table)
    if t.access is not Access.RW:
        raise ValueError(f"table {table} is not writable")
    if index < 0 or index + len(entries) > t.depth:
        raise ValueError(f"{table} entries {index}..{index + len(entries) - 1} outside "
                         f"0..{t.depth - 1}")
    words = [w for k, e in enumerate(entries) for w in t.encode_entry(e, index=index + k)]
    return encode_command(Command.TABLE_WRITE, sequence, words, table=t.address, index=index)


def latch_command(command: Command, sequence: int, scope: str, index: int = 0) -> bytes:
    """KILL or RELEASE of the latch of ``scope`` (one of model.SCOPES)."""
    return encode_command(command, sequence, scope=SCOPES.index(scope), index=index)


# --------------------------------------------------------------------------- decoding

class FrameReader:
    """Split a SLIP-coded byte stream into frames, resynchronising at every ``END``.

    :meth:`feed` returns the frames completed by the bytes given, each as ``(bytes, ok)``:
    ``ok`` is False when the frame held an invalid escape. Empty frames (two ``END`` in a
    row) are skipped.
    """

    def __init__(self):
        self._frame = bytearray()
        self._escaped = False
        self._bad = False

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        done = []
        for byte in data:
            if byte == END:
                if self._frame or self._bad or self._escaped:
                    done.append((bytes(self._frame), not (self._bad or self._escaped)))
                self._frame.clear()
                self._escaped = self._bad = False
            elif self._escaped:
                self._escaped = False
                if byte in (ESC_END, ESC_ESC):
                    self._frame.append(END if byte == ESC_END else ESC)
                else:
                    self._bad = True
            elif byte == ESC:
                self._escaped = True
            else:
                self._frame.append(byte)
        return done


@dataclass(frozen=True)
class Frame:
    """A decoded frame (the CRC and the lengths checked)."""

    kind: int
    sequence: int
    status: int
    payload: bytes
    mac: bytes


def decode_frame(frame: bytes) -> Frame:
    """Decode one unescaped frame.

    Raises
    ------
    ProtocolError
        Shorter than a header and a CRC, a CRC mismatch, a length field that does not match
        the frame's size, or another version.
    """
    if len(frame) < MIN_FRAME:
        raise ProtocolError(f"control frame of {len(frame)} bytes, at least {MIN_FRAME}",
                            len(frame))
    body, crc = frame[:-CRC_SIZE], int.from_bytes(frame[-CRC_SIZE:], "little")
    if zlib.crc32(body) != crc:
        raise ProtocolError(f"control frame CRC {crc:#010x}, computed "
                            f"{zlib.crc32(body):#010x}", len(body))
    version, kind, sequence, status, mac_length, length = _HEADER.unpack_from(body)
    if version != VERSION:
        raise ProtocolError(f"control frame version {version}, expected {VERSION}", 0)
    if HEADER_SIZE + length + mac_length != len(body):
        raise ProtocolError(f"control frame says {length} payload and {mac_length} MAC bytes "
                            f"but holds {len(body) - HEADER_SIZE}", 8)
    payload = body[HEADER_SIZE:HEADER_SIZE + length]
    return Frame(kind, sequence, status, payload, body[HEADER_SIZE + length:])


@dataclass(frozen=True)
class Response:
    """A response: the command answered, its sequence, the status, and what it carries.

    Attributes
    ----------
    words : tuple[int, ...]
        The words read (a successful READ), else empty.
    expected : int or None
        The sequence number the gateway expects next (every response but a READ's data).
    """

    command: int
    sequence: int
    status: Status
    words: tuple[int, ...]
    expected: int | None

    @classmethod
    def from_frame(cls, frame: Frame) -> "Response":
        if not frame.kind & Kind.RESPONSE:
            raise ProtocolError(f"kind {frame.kind:#04x} is not a response", 1)
        command = frame.kind & ~Kind.RESPONSE
        status = Status(frame.status)
        if len(frame.payload) % 4:
            raise ProtocolError(f"response payload of {len(frame.payload)} bytes", 8)
        words = struct.unpack(f">{len(frame.payload) // 4}I", frame.payload)
        if status is Status.OK and command == Command.READ:
            return cls(command, frame.sequence, status, words, None)
        if len(words) != 1:
            raise ProtocolError(f"a {status.name} response carries 4 bytes, not "
                                f"{len(frame.payload)}", 8)
        return cls(command, frame.sequence, status, (), words[0])


def decode_outbound(frame: Frame) -> Response | Record:
    """A response or, for a DROP_COPY frame, the drop-copy record."""
    if frame.kind == Kind.DROP_COPY:
        if len(frame.payload) != RECORD_SIZE:
            raise ProtocolError(f"drop-copy frame of {len(frame.payload)} bytes", 8)
        return Record.decode(frame.payload)
    return Response.from_frame(frame)


def max_frame(mac_length: int = 0) -> int:
    """Bytes of the longest command frame (before line coding)."""
    longest = max(spec.fixed + (4 * MAX_WORDS if spec.words else 0)
                  for spec in COMMANDS.values())
    return HEADER_SIZE + longest + mac_length + CRC_SIZE


if max_frame(MAX_MAC) > BUFFER_BYTES:
    raise ValueError("the longest frame with the longest MAC does not fit the buffer")
if WORD_BITS != 32:
    raise ValueError("the control stream carries 32-bit words")
