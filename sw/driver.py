"""The host driver: one async class that speaks the control stream over any transport.

:class:`Driver` encodes commands with :mod:`wiregate.sw.control`, keeps the sequence number,
matches each response to its command, and sets drop-copy frames aside for
:meth:`Driver.records`. The transport only moves bytes (:class:`Transport`):
:class:`SocketTransport` for ``wiregate sim`` (TCP on 127.0.0.1); a serial or UDP transport
plugs in beside it without touching the driver.
"""

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

from wiregate.sw.control import (
    MAX_WORDS,
    Command,
    FrameReader,
    Kind,
    Response,
    Status,
    decode_frame,
    encode_command,
    latch_command,
    stuff,
    table_write,
)
from wiregate.sw.dropcopy import Record, SequenceGap
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.regmap import RegisterMap

__all__ = ["CommandRefused", "Driver", "GatewayTimeout", "SocketTransport", "Transport"]

log = logging.getLogger(__name__)


class Transport(ABC):
    """A byte stream to the gateway's control port and back."""

    @abstractmethod
    async def send(self, data: bytes) -> None:
        """Send ``data`` whole."""

    @abstractmethod
    async def receive(self) -> bytes:
        """Wait for some bytes from the gateway (at least one)."""

    async def close(self) -> None:  # noqa: B027 (a transport with nothing to close)
        """Release the transport."""


class SocketTransport(Transport):
    """A TCP connection (``wiregate sim`` listens on 127.0.0.1)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int) -> "SocketTransport":
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as error:
            raise ConnectionError(f"no gateway at {host}:{port} ({error.strerror or error}); "
                                  f"is `wiregate sim` running there?") from None
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self) -> bytes:
        data = await self._reader.read(65536)
        if not data:
            raise ConnectionError("the gateway closed the connection")
        return data

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


class CommandRefused(Exception):
    """The gateway answered a command with a status other than OK.

    Attributes
    ----------
    command : Command
    status : Status
    """

    def __init__(self, command: Command, status: Status):
        self.command, self.status = command, status
        super().__init__(f"gateway refused {command.name}: {status.name}")


class GatewayTimeout(TimeoutError):
    """No response in time."""


class Driver:
    """Commands to one gateway and its drop copy, over ``transport``.

    Parameters
    ----------
    transport : Transport
    regmap : RegisterMap or None
        The map the host expects; :meth:`identify` checks the gateway against it (or, if
        None, adopts the map the gateway's ID block describes).
    timeout : float
        Seconds to wait for a response.

    Attributes
    ----------
    regmap : RegisterMap or None
        Set by :meth:`identify`.
    """

    def __init__(self, transport: Transport, regmap: RegisterMap | None = None,
                 timeout: float = 2.0):
        self._transport = transport
        self.regmap = regmap
        self._timeout = timeout
        self._reader = FrameReader()
        self._responses: list[Response] = []
        self._records: asyncio.Queue[Record] = asyncio.Queue()
        self._sequence: int | None = None          # None until the gateway tells us
        self._next_record: int | None = None

    # -- the stream -----------------------------------------------------------------------

    def _take(self, data: bytes) -> None:
        """Sort the frames ``data`` completes: responses, and drop-copy records."""
        for frame, clean in self._reader.feed(data):
            if not clean:
                log.warning("control stream: a frame with a bad escape, dropped")
                continue
            try:
                decoded = decode_frame(frame)
                if decoded.kind == Kind.DROP_COPY:
                    self._records.put_nowait(Record.decode(decoded.payload))
                else:
                    self._responses.append(Response.from_frame(decoded))
            except ProtocolError as error:      # a lost record shows as a sequence gap
                log.warning("control stream: %s", error)

    async def _pump(self, done) -> None:
        """Read bytes until ``done()``."""
        while not done():
            self._take(await self._transport.receive())

    async def _exchange(self, frame: bytes) -> Response:
        await self._transport.send(stuff(frame))
        try:
            await asyncio.wait_for(self._pump(lambda: self._responses), self._timeout)
        except TimeoutError:
            raise GatewayTimeout(f"no answer from the gateway in {self._timeout} s: is the "
                                 "target right, and the gateway running?") from None
        return self._responses.pop(0)

    async def command(self, command: Command, words: Iterable[int] = (), *,
                      build: Callable[[int], bytes] | None = None, **fields: int) -> Response:
        """Send one command and return its OK response; raise :class:`CommandRefused`.

        The frame is ``encode_command(command, sequence, words, **fields)``, or
        ``build(sequence)``.

        A driver that does not know the gateway's sequence number yet learns it from the
        first answer (OUT_OF_SEQUENCE carries it) and sends the command again.
        """
        words = list(words)
        for _ in range(2):
            sequence = self._sequence or 0
            data = build(sequence) if build else encode_command(command, sequence, words,
                                                                **fields)
            response = await self._exchange(data)
            if response.status is Status.OUT_OF_SEQUENCE and self._sequence is None:
                self._sequence = response.expected
                continue
            if response.sequence != sequence or response.command != command:
                raise ProtocolError(f"response to {Command(response.command).name} "
                                    f"#{response.sequence}, expected {command.name} "
                                    f"#{sequence}", 0)
            if response.status is not Status.OK:
                if response.expected is not None:
                    self._sequence = response.expected
                raise CommandRefused(command, response.status)
            self._sequence = (sequence + 1) % (1 << 32)
            return response
        raise CommandRefused(command, Status.OUT_OF_SEQUENCE)

    # -- words ----------------------------------------------------------------------------

    async def read(self, address: int, count: int) -> list[int]:
        """``count`` words from ``address`` (several commands if more than MAX_WORDS)."""
        words: list[int] = []
        while count:
            n = min(count, MAX_WORDS)
            words += (await self.command(Command.READ, address=address, count=n)).words
            address, count = address + n, count - n
        return words

    async def write(self, address: int, words: Sequence[int]) -> None:
        for start in range(0, len(words), MAX_WORDS):
            await self.command(Command.WRITE, words[start:start + MAX_WORDS],
                               address=address + start)

    def _map(self) -> RegisterMap:
        if self.regmap is None:
            raise RuntimeError("identify() the gateway first")
        return self.regmap

    async def identify(self) -> RegisterMap:
        """Read the ID block, check it against :attr:`regmap` (or adopt it), return the map.

        Raises :class:`~wiregate.sw.regmap.RegmapMismatch` on a mismatch.
        """
        ident = RegisterMap().group("id")     # its layout does not depend on the parameters
        words = await self.read(ident[0].address, len(ident))
        observed = {r.name: words[r.address - ident[0].address] for r in ident}
        if self.regmap is None:
            self.regmap = RegisterMap.from_id(observed)
        else:
            self.regmap.check_id(observed)
        return self.regmap

    async def read_register(self, name: str, index: int | None = None) -> dict[str, int]:
        """Fields of register ``name``, or of entry ``index`` of table ``name``."""
        regmap = self._map()
        addresses = regmap.read_addresses(name, index)
        return regmap.decode_read(name, await self.read(addresses[0], len(addresses)), index)

    async def write_register(self, name: str, value: int | None = None, **fields: int) -> None:
        pairs = self._map().encode_write(name, value, **fields)
        await self.write(pairs[0][0], [word for _, word in pairs])

    async def write_table(self, name: str, index: int, entries: Sequence[Mapping]) -> None:
        """Entries ``index`` on of table ``name`` (the shadow bank of a banked table)."""
        regmap = self._map()
        per_frame = max(1, MAX_WORDS // regmap.table(name).used_words)
        for start in range(0, len(entries), per_frame):
            chunk = list(entries[start:start + per_frame])
            await self.command(Command.TABLE_WRITE, build=lambda seq, s=start, c=chunk: (
                table_write(regmap, seq, name, index + s, c)))

    # -- commands -------------------------------------------------------------------------

    async def commit(self) -> int:
        """Swap the banks; return the new epoch once the gateway has swapped."""
        before = (await self.read_register("epoch"))["value"]
        await self.command(Command.COMMIT)
        while (epoch := (await self.read_register("epoch"))["value"]) == before:
            await asyncio.sleep(0)
        return epoch

    async def kill(self, scope: str, index: int = 0) -> None:
        await self.command(Command.KILL, build=lambda seq: latch_command(
            Command.KILL, seq, scope, index))

    async def release(self, scope: str, index: int = 0) -> None:
        await self.command(Command.RELEASE, build=lambda seq: latch_command(
            Command.RELEASE, seq, scope, index))

    async def heartbeat(self) -> None:
        await self.command(Command.HEARTBEAT)

    async def counters(self, clear: bool = False) -> dict[str, int]:
        """Snapshot every counter (and zero them, with ``clear``) and read them."""
        await self.command(Command.SNAPSHOT, clear=int(clear))
        registers = self._map().group("counters")
        words = await self.read(registers[0].address,
                                registers[-1].addresses[-1] - registers[0].address + 1)
        return {r.name: r.value([words[a - registers[0].address] for a in r.addresses])
                for r in registers}

    # -- drop copy --------------------------------------------------------------------------

    async def records(self) -> AsyncIterator[Record]:
        """Drop-copy records as they arrive; raise :class:`SequenceGap` at a gap."""
        index = 0
        while True:
            await self._pump(lambda: not self._records.empty())
            record = self._records.get_nowait()
            if self._next_record is not None and record.sequence != self._next_record:
                raise SequenceGap(self._next_record, record.sequence, index)
            self._next_record = record.sequence + 1
            index += 1
            yield record

    async def _pump_records(self) -> None:
        while self._records.empty():
            data = await self._transport.receive()
            for frame, clean in self._reader.feed(data):
                if clean:
                    decoded = decode_frame(frame)
                    if decoded.kind == Kind.DROP_COPY:
                        self._records.put_nowait(Record.decode(decoded.payload))
                    else:
                        self._responses.append(Response.from_frame(decoded))

    async def close(self) -> None:
        await self._transport.close()

