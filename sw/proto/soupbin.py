# Ref: Nasdaq SoupBinTCP 3.00 (spec updated 2017-02-22); ASCII field justification as in
# paritytrading/nassau (SoupBinTCP.java, ASCII.java) and Wireshark packet-soupbintcp.c.
"""SoupBinTCP 3.00 logical packets and a stream decoder for them.

A logical packet is ``length(u16, big-endian) | type(1) | payload``, where ``length`` counts
the type byte and the payload (so it is at least 1). Packets do not align with TCP segments:
:class:`PacketStream` takes the byte stream in whatever chunks TCP delivers and yields whole
packets.

Login fields are ASCII. Username and password are alpha: left-justified, padded on the right
with spaces. Session and sequence numbers are right-justified, padded on the left with spaces:
the spec calls the sequence number numeric and says of Login Accepted's session "left padded
with spaces", and nassau writes both the requested and the accepted session that way. Decoding
strips spaces on both sides of a session, so a peer that left-justifies it still decodes; a
sequence number must be decimal digits once its spaces are stripped (0 asks for the most
recently generated message).

Packet-length bound: the length field allows up to 65535, but no packet on an OUCH session
comes near that (the longest OUCH 5.0 fixed part is 68 bytes; appendages carry a handful of
short options), and a reassembler must hold a whole packet. ``DEFAULT_MAX_LENGTH`` (4096) is
the bound both :func:`decode_packet` and :class:`PacketStream` enforce unless told otherwise;
a larger length is treated as a corrupt or hostile stream.
"""

import dataclasses
import struct
from typing import ClassVar, Self

from wiregate.sw.proto.errors import ProtocolError

HEADER_LENGTH = 3  # u16 length + type byte
MAX_PACKET_LENGTH = 0xFFFF  # what the u16 length field can express
DEFAULT_MAX_LENGTH = 4096  # sane bound for one packet's length field (see module docstring)

_USERNAME = 6
_PASSWORD = 10
_SESSION = 10
_SEQUENCE = 20


def _alpha(value: str, size: int, what: str, *, right: bool = False) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} is not ASCII") from None
    if len(raw) > size:
        raise ValueError(f"{what} {value!r} is longer than {size} characters")
    return raw.rjust(size, b" ") if right else raw.ljust(size, b" ")


def _numeric(value: int, size: int, what: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0 or len(str(value)) > size:
        raise ValueError(f"{what} {value} does not fit {size} decimal digits")
    return str(value).encode("ascii").rjust(size, b" ")


def _text(raw: bytes, at: int, what: str) -> str:
    for i, byte in enumerate(raw):
        if byte >= 0x80:
            raise ProtocolError(f"non-ASCII byte 0x{byte:02x} in {what}", at + i)
    return raw.decode("ascii")


def _parse_numeric(raw: bytes, at: int, what: str) -> int:
    digits = raw.strip(b" ")
    if not digits or not digits.isdigit():
        raise ProtocolError(f"{what} {raw!r} is not a space-padded decimal number", at)
    return int(digits)


class _Packet:
    """Base of every SoupBinTCP packet: framing shared by all types."""

    TYPE: ClassVar[bytes]
    PAYLOAD_LENGTH: ClassVar[int | None] = 0  # None: variable length

    def _payload(self) -> bytes:
        return b""

    def encode(self) -> bytes:
        """Encode the whole logical packet, 2-byte length prefix included.

        Raises
        ------
        ValueError
            A field does not fit, or the packet exceeds the 65535-byte length field.
        TypeError
            A field has the wrong Python type.
        """
        payload = self._payload()
        if 1 + len(payload) > MAX_PACKET_LENGTH:
            raise ValueError(f"{type(self).__name__} payload of {len(payload)} bytes exceeds "
                             f"the length field ({MAX_PACKET_LENGTH - 1} bytes at most)")
        return struct.pack(">Hc", 1 + len(payload), self.TYPE) + payload

    @classmethod
    def _decode(cls, payload: bytes, at: int) -> Self:
        """Build the packet from its payload, which starts at buffer offset ``at``."""
        return cls()


@dataclasses.dataclass(frozen=True)
class LoginRequest(_Packet):
    """Login Request ``L`` (client): credentials, session ("" = current) and next sequence."""

    TYPE: ClassVar[bytes] = b"L"
    PAYLOAD_LENGTH: ClassVar[int | None] = _USERNAME + _PASSWORD + _SESSION + _SEQUENCE
    username: str
    password: str
    session: str
    sequence: int

    def _payload(self) -> bytes:
        return (_alpha(self.username, _USERNAME, "username")
                + _alpha(self.password, _PASSWORD, "password")
                + _alpha(self.session, _SESSION, "session", right=True)
                + _numeric(self.sequence, _SEQUENCE, "sequence number"))

    @classmethod
    def _decode(cls, payload: bytes, at: int) -> Self:
        p, s = _USERNAME, _USERNAME + _PASSWORD
        q = s + _SESSION
        return cls(username=_text(payload[:p], at, "username").rstrip(" "),
                   password=_text(payload[p:s], at + p, "password").rstrip(" "),
                   session=_text(payload[s:q], at + s, "session").strip(" "),
                   sequence=_parse_numeric(payload[q:], at + q, "requested sequence number"))


@dataclasses.dataclass(frozen=True)
class LoginAccepted(_Packet):
    """Login Accepted ``A`` (server): the session and the next sequence number it will send."""

    TYPE: ClassVar[bytes] = b"A"
    PAYLOAD_LENGTH: ClassVar[int | None] = _SESSION + _SEQUENCE
    session: str
    sequence: int

    def _payload(self) -> bytes:
        return (_alpha(self.session, _SESSION, "session", right=True)
                + _numeric(self.sequence, _SEQUENCE, "sequence number"))

    @classmethod
    def _decode(cls, payload: bytes, at: int) -> Self:
        return cls(session=_text(payload[:_SESSION], at, "session").strip(" "),
                   sequence=_parse_numeric(payload[_SESSION:], at + _SESSION,
                                           "sequence number"))


@dataclasses.dataclass(frozen=True)
class LoginRejected(_Packet):
    """Login Rejected ``J`` (server): ``A`` not authorised, ``S`` session not available."""

    TYPE: ClassVar[bytes] = b"J"
    PAYLOAD_LENGTH: ClassVar[int | None] = 1
    reason: str

    def _payload(self) -> bytes:
        raw = _alpha(self.reason, 1, "reject reason")
        if len(self.reason) != 1:
            raise ValueError(f"reject reason must be one character, not {self.reason!r}")
        return raw

    @classmethod
    def _decode(cls, payload: bytes, at: int) -> Self:
        return cls(reason=_text(payload, at, "reject reason"))


class _Opaque(_Packet):
    """A packet whose whole payload is its one bytes field, carried as is."""

    PAYLOAD_LENGTH: ClassVar[int | None] = None

    def _payload(self) -> bytes:
        return bytes(getattr(self, dataclasses.fields(self)[0].name))

    @classmethod
    def _decode(cls, payload: bytes, at: int) -> Self:
        return cls(payload)


@dataclasses.dataclass(frozen=True)
class SequencedData(_Opaque):
    """Sequenced Data ``S`` (server): one OUCH message; each counts one sequence number."""

    TYPE: ClassVar[bytes] = b"S"
    payload: bytes


@dataclasses.dataclass(frozen=True)
class UnsequencedData(_Opaque):
    """Unsequenced Data ``U`` (client): one OUCH message, carrying no sequence number."""

    TYPE: ClassVar[bytes] = b"U"
    payload: bytes


@dataclasses.dataclass(frozen=True)
class Debug(_Opaque):
    """Debug ``+`` (either side): free text the receiver ignores; not sequenced."""

    TYPE: ClassVar[bytes] = b"+"
    text: bytes


@dataclasses.dataclass(frozen=True)
class ClientHeartbeat(_Packet):
    """Client Heartbeat ``R``."""

    TYPE: ClassVar[bytes] = b"R"


@dataclasses.dataclass(frozen=True)
class ServerHeartbeat(_Packet):
    """Server Heartbeat ``H``."""

    TYPE: ClassVar[bytes] = b"H"


@dataclasses.dataclass(frozen=True)
class LogoutRequest(_Packet):
    """Logout Request ``O`` (client)."""

    TYPE: ClassVar[bytes] = b"O"


@dataclasses.dataclass(frozen=True)
class EndOfSession(_Packet):
    """End of Session ``Z`` (server): no more sequenced data will follow."""

    TYPE: ClassVar[bytes] = b"Z"


Packet = (LoginRequest | LoginAccepted | LoginRejected | SequencedData | UnsequencedData
          | ClientHeartbeat | ServerHeartbeat | LogoutRequest | EndOfSession | Debug)

PACKET_TYPES: dict[bytes, type[_Packet]] = {cls.TYPE: cls for cls in (
    LoginRequest, LoginAccepted, LoginRejected, SequencedData, UnsequencedData,
    ClientHeartbeat, ServerHeartbeat, LogoutRequest, EndOfSession, Debug)}


def _check_header(buf: bytes | bytearray, offset: int, max_length: int) -> int | None:
    """Check as much of the header at ``offset`` as ``buf`` holds; return the length field.

    Returns None while fewer than 2 bytes are present. Checking the length and type as soon
    as they arrive lets a stream fail before it waits for a payload that will never be valid.
    """
    if len(buf) - offset < 2:
        return None
    length = (buf[offset] << 8) | buf[offset + 1]
    if length == 0:
        raise ProtocolError("zero packet length (the length counts the type byte, so it is at "
                            "least 1)", offset)
    if length > max_length:
        raise ProtocolError(f"packet length {length} exceeds the maximum {max_length}", offset)
    if len(buf) - offset >= HEADER_LENGTH:
        packet_type = bytes(buf[offset + 2:offset + 3])
        cls = PACKET_TYPES.get(packet_type)
        if cls is None:
            raise ProtocolError(f"unknown packet type {packet_type!r}", offset + 2)
        if cls.PAYLOAD_LENGTH is not None and length != 1 + cls.PAYLOAD_LENGTH:
            raise ProtocolError(f"{cls.__name__} packet length must be "
                                f"{1 + cls.PAYLOAD_LENGTH}, not {length}", offset)
    return length


def decode_packet(buf: bytes, offset: int = 0, *,
                  max_length: int = DEFAULT_MAX_LENGTH) -> tuple[Packet, int]:
    """Decode the packet starting at ``buf[offset]``.

    Parameters
    ----------
    buf : bytes
        Buffer holding at least one whole packet from ``offset`` on.
    offset : int
        Where the packet's length field starts.
    max_length : int
        Largest acceptable length field.

    Returns
    -------
    tuple
        The packet and the number of bytes it occupied (2 + its length field).

    Raises
    ------
    ProtocolError
        Zero or oversized length, unknown type, a fixed-size packet of the wrong length,
        malformed login fields, or a truncated packet; ``offset`` is into ``buf``.
    """
    if not 0 <= offset <= len(buf):
        raise ValueError(f"offset {offset} is outside the {len(buf)}-byte buffer")
    length = _check_header(buf, offset, max_length)
    if length is None or len(buf) - offset < HEADER_LENGTH:
        raise ProtocolError(f"truncated packet header: {len(buf) - offset} of "
                            f"{HEADER_LENGTH} bytes", len(buf))
    end = offset + 2 + length
    if end > len(buf):
        raise ProtocolError(f"truncated packet: length {length} needs {2 + length} bytes, "
                            f"{len(buf) - offset} present", len(buf))
    cls = PACKET_TYPES[bytes(buf[offset + 2:offset + 3])]
    packet = cls._decode(bytes(buf[offset + HEADER_LENGTH:end]), offset + HEADER_LENGTH)
    return packet, 2 + length  # type: ignore[return-value]


class StreamError(ProtocolError):
    """A malformed packet in a :class:`PacketStream`.

    Attributes
    ----------
    message : str
        What was wrong.
    offset : int
        Offset of the problem from the start of the stream.
    packets : list
        Whole packets the failing ``feed`` call decoded before the malformed one, so a caller
        that wants them (to log, to replay) does not lose them.
    """

    def __init__(self, message: str, offset: int, packets: list[Packet]) -> None:
        super().__init__(message, offset)
        self.packets = packets


class PacketStream:
    """Reassemble SoupBinTCP packets from a byte stream delivered in arbitrary chunks.

    Parameters
    ----------
    max_length : int
        Largest acceptable length field (default ``DEFAULT_MAX_LENGTH``).

    Attributes
    ----------
    pending : int
        Bytes held: the start of a packet not yet complete.

    Notes
    -----
    The stream fails closed: the first malformed packet raises :class:`StreamError` (a
    :class:`ProtocolError`) whose offset counts from the first byte ever fed, and every later
    ``feed`` raises the same error. A length field or type byte is checked as soon as it
    arrives, before the rest of its packet.
    """

    def __init__(self, *, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        if not 1 <= max_length <= MAX_PACKET_LENGTH:
            raise ValueError(f"max_length must be in 1..{MAX_PACKET_LENGTH}, not {max_length}")
        self._max_length = max_length
        self._buf = bytearray()
        self._base = 0  # stream offset of self._buf[0]
        self._error: StreamError | None = None

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a packet."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Packet]:
        """Add ``chunk`` to the stream and return the packets it completed, in order.

        Raises
        ------
        StreamError
            The stream holds a malformed packet (now or from an earlier call).
        """
        if self._error is not None:
            raise self._error
        self._buf += chunk
        packets: list[Packet] = []
        pos = 0
        try:
            while True:
                length = _check_header(self._buf, pos, self._max_length)
                if length is None or len(self._buf) - pos < 2 + length:
                    break
                packet, size = decode_packet(self._buf, pos, max_length=self._max_length)
                packets.append(packet)
                pos += size
        except ProtocolError as exc:
            del self._buf[:pos]
            self._base += pos
            self._error = StreamError(exc.message, exc.offset - pos + self._base, packets)
            raise self._error from None
        del self._buf[:pos]
        self._base += pos
        return packets
