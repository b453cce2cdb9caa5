"""The host driver: one async class that speaks the control stream over any transport.

:class:`Driver` encodes commands with :mod:`wiregate.sw.control`, keeps the sequence number,
matches each response to its command, and sets drop-copy frames aside for
:meth:`Driver.records`. The transport only moves bytes (:class:`Transport`):
:class:`SocketTransport` for ``wiregate sim`` (TCP on 127.0.0.1), the serial transport and
the ``--target`` URLs in :mod:`wiregate.sw.transports`; a UDP transport plugs in beside them
without touching the driver.

:meth:`Driver.push` loads a compiled limit file: every banked table into the shadow bank,
verified by read-back, committed, the new epoch confirmed.
"""

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

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
from wiregate.sw.tables import Reference, TableImage, keep_references

__all__ = ["CommandRefused", "Difference", "Driver", "GatewayTimeout", "PushRefused",
           "SocketTransport", "Transport"]

log = logging.getLogger(__name__)


class Transport(ABC):
    """A byte stream to the gateway's control port and back."""

    @abstractmethod
    async def send(self, data: bytes) -> None:
        """Send ``data`` whole."""

    @abstractmethod
    async def receive(self) -> bytes:
        """Wait for some bytes from the gateway (at least one)."""

    async def finish(self) -> None:  # noqa: B027 (a transport that cannot half-close)
        """Send nothing more; what the gateway sent before it saw that still arrives."""

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

    async def finish(self) -> None:
        # A half-close: ``wiregate sim`` stops sending at the end of file and closes, so
        # the drop copy it sent before arrives whole and the rest waits in its queue.
        self._writer.write_eof()

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


class PushRefused(Exception):
    """A push stopped before its commit: the active limits are unchanged.

    Attributes
    ----------
    differences : list[Difference]
        What the read-back found, when that was the reason.
    """

    def __init__(self, message: str, differences: Sequence["Difference"] = ()):
        self.differences = list(differences)
        super().__init__(message)


@dataclass(frozen=True)
class Difference:
    """One field of one table entry that differs between the gateway and an image.

    Attributes
    ----------
    table, index, field : str, int, str
    gateway, image : int
        The value read back, and the image's.
    """

    table: str
    index: int
    field: str
    gateway: int
    image: int

    def __str__(self) -> str:
        return (f"{self.table}[{self.index}].{self.field}: gateway {self.gateway:#x}, "
                f"file {self.image:#x}")


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
    keep_records : bool
        Keep drop-copy records for :meth:`records`; a host that never reads them (a
        heartbeat all day long) drops them as they arrive instead of piling them up.

    Attributes
    ----------
    regmap : RegisterMap or None
        Set by :meth:`identify`.
    """

    def __init__(self, transport: Transport, regmap: RegisterMap | None = None,
                 timeout: float = 2.0, keep_records: bool = True):
        self._transport = transport
        self.regmap = regmap
        self._timeout = timeout
        self._keep_records = keep_records
        self._reader = FrameReader()
        self._responses: list[Response] = []
        self._records: asyncio.Queue[Record] = asyncio.Queue()
        self._sequence: int | None = None          # None until the gateway tells us
        self._next_record: int | None = None
        self._receiving: asyncio.Future[bytes] | None = None
        self._one_command = asyncio.Lock()          # one command outstanding (docs/control.md)

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
                    if self._keep_records:
                        self._records.put_nowait(Record.decode(decoded.payload))
                else:
                    self._responses.append(Response.from_frame(decoded))
            except ProtocolError as error:      # a lost record shows as a sequence gap
                log.warning("control stream: %s", error)

    async def _pump(self, done: Callable[[], bool]) -> None:
        """Read bytes until ``done()``.

        One read of the transport is outstanding at a time, shared by every waiter (a
        command's response and the drop copy may be awaited at once); it survives a waiter
        that gives up (a timeout), and the next waiter takes its bytes.
        """
        while not done():
            if self._receiving is None:
                self._receiving = asyncio.ensure_future(self._transport.receive())
            receiving = self._receiving
            await asyncio.wait({receiving})
            if self._receiving is receiving:
                self._receiving = None
                self._take(receiving.result())

    async def _exchange(self, frame: bytes) -> Response:
        await self._transport.send(stuff(frame))
        try:
            await asyncio.wait_for(self._pump(lambda: bool(self._responses)), self._timeout)
        except TimeoutError:
            raise GatewayTimeout(f"no answer from the gateway in {self._timeout} s: is the "
                                 "target right, and the gateway running?") from None
        return self._responses.pop(0)

    async def command(self, command: Command, words: Iterable[int] = (), *,
                      build: Callable[[int], bytes] | None = None, **fields: int) -> Response:
        """Send one command and return its OK response; raise :class:`CommandRefused`.

        The frame is ``encode_command(command, sequence, words, **fields)``, or
        ``build(sequence)``.

        A driver that does not know the gateway's sequence number, or holds a stale one
        (another host commanded since: ``wiregate heartbeat`` running while ``wiregate
        kill`` comes and goes), learns it from the answer (OUT_OF_SEQUENCE carries it) and
        sends the command again: a refused command changed nothing. Another host streaming
        commands (a push) takes the number again and again, each try a race with its next
        command; the driver keeps trying until it has been refused for its timeout.
        """
        words = list(words)
        async with self._one_command:
            return await self._command(command, words, build, **fields)

    async def _command(self, command: Command, words: list[int],
                       build: Callable[[int], bytes] | None, **fields: int) -> Response:
        deadline = None
        while True:
            sequence = self._sequence or 0
            data = build(sequence) if build else encode_command(command, sequence, words,
                                                                **fields)
            response = await self._exchange(data)
            if response.status is Status.OUT_OF_SEQUENCE and response.expected != sequence:
                self._sequence = response.expected
                now = asyncio.get_running_loop().time()
                deadline = deadline or now + self._timeout
                if now < deadline:
                    continue
                raise CommandRefused(command, Status.OUT_OF_SEQUENCE)
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

    async def read_table(self, name: str, index: int = 0,
                         count: int | None = None) -> list[dict[str, int]]:
        """Entries ``index`` on (``count`` of them, or to the end) of table ``name``; a
        banked table's shadow bank."""
        table = self._map().table(name)
        count = table.depth - index if count is None else count
        if count <= 0:
            return []
        table.entry_address(index + count - 1)              # validates the range
        words = await self.read(table.entry_address(index), count * table.entry_words)
        stride, used = table.entry_words, table.used_words
        return [table.decode_entry(words[k * stride:k * stride + used]) for k in range(count)]

    async def status(self) -> dict[str, int]:
        """The status block: flags, ``epoch``, ``timebase_us``, every kill latch (the
        session and symbol ones as bitmaps), the sessions in sync."""
        regmap = self._map()
        state = await self.read_register("status")
        state["epoch"] = (await self.read_register("epoch"))["value"]
        state["timebase_us"] = (await self.read_register("timebase_us"))["value"]
        state["kill_gateway"] = (await self.read_register("kill_gateway_set"))["gateway"]
        for name, key, depth in (("kill_session_set", "kill_sessions", regmap.n_sessions),
                                 ("kill_symbol_set", "kill_symbols", regmap.n_symbols),
                                 ("session_sync", "in_sync", regmap.n_sessions)):
            bits = 0
            for k, entry in enumerate(await self.read_table(name)):
                bits |= entry["bits"] << (32 * k)
            state[key] = bits & ((1 << depth) - 1)
        return state

    async def exposure(self, session: int, symbol_index: int) -> dict[str, int]:
        """``position`` (signed), ``working_buy`` and ``working_sell`` of (session, symbol)."""
        regmap = self._map()
        entry = await self.read_register("exposure", regmap.exposure_index(session,
                                                                            symbol_index))
        width = regmap.table("exposure").field("position").width
        position = entry["position"]
        entry["position"] = position - (1 << width) if position >> (width - 1) else position
        return entry

    async def order(self, session: int, user_ref_num: int) -> dict[str, int] | None:
        """The open order ``user_ref_num`` of ``session`` (its order-table slot), or None if
        its slot holds no order or another one."""
        entry = await self.read_register("order", self._map().order_index(session,
                                                                          user_ref_num))
        if not entry["valid"] or entry["user_ref_num"] != user_ref_num:
            return None
        return entry

    async def session_state(self, session: int) -> dict[str, int]:
        """A session's ``credit_used``, ``last_user_ref_num``, ``tokens``, ``throttled``,
        ``throttle_count``, and the gateway-wide ``gateway_credit_used``."""
        regmap = self._map()
        regmap.exposure_index(session, 0)      # validates the session
        state = await self.read_register("session_state", session)
        state["gateway_credit_used"] = (await self.read_register("gateway_credit_used"))[
            "value"]
        return state

    # -- limits ---------------------------------------------------------------------------

    async def load(self, image: TableImage,
                   progress: Callable[[int, int], None] | None = None) -> None:
        """Write every table of ``image`` into the shadow bank, whole.

        ``progress(done, total)`` is called with entries written after each frame.
        """
        if image.regmap.layout_crc != self._map().layout_crc \
                or image.regmap.parameters != self._map().parameters:
            raise ValueError("the image was compiled for another register map than the "
                             "gateway's")
        total = sum(len(rows) for rows in image.entries.values())
        done = 0
        for name in sorted(image.entries, key=lambda n: image.regmap.table(n).address):
            rows = image.entries[name]
            per_frame = max(1, MAX_WORDS // image.regmap.table(name).used_words)
            for start in range(0, len(rows), per_frame):
                chunk = rows[start:start + per_frame]
                await self.write_table(name, start, chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)

    async def differences(self, image: TableImage) -> list[Difference]:
        """Read the shadow bank back; every field that differs from ``image``."""
        out = []
        for name, rows in image.entries.items():
            for index, (read, wanted) in enumerate(zip(await self.read_table(name), rows,
                                                       strict=True)):
                out += [Difference(name, index, field, read[field], value)
                        for field, value in wanted.items() if read[field] != value]
        return out

    async def push(self, image: TableImage, *, held: Mapping[int, Reference] | None = None,
                   verify: bool = True, mirror: bool = True,
                   progress: Callable[[int, int], None] | None = None) -> int:
        """Load ``image``, verify it by read-back, commit it; return the new epoch.

        Parameters
        ----------
        image : TableImage
            The compiled limit file (:func:`~wiregate.sw.tables.compile_limits`).
        held : Mapping[int, Reference] or None
            The reference of every symbol index the gateway holds now. Required once limits
            are loaded: a symbol the push keeps keeps its reference and stamp (the model's
            rule, :func:`~wiregate.sw.tables.keep_references`), and the gateway cannot
            report them.
        verify : bool
            Read the shadow bank back and refuse to commit on any difference.
        mirror : bool
            After the commit, load the image into the new shadow bank too, so the shadow
            bank reads as the active one (what ``limits diff`` compares with).
        progress : callable or None
            ``progress(done, total)`` in entries, across the loads.

        Raises
        ------
        PushRefused
            Before the commit, with nothing committed: a commit already pending, limits
            loaded and no ``held``, or a read-back that differs.
        """
        state = await self.status()
        if state["commit_pending"]:
            raise PushRefused("a commit is already pending on the gateway; try again when "
                              "`wiregate status` shows none")
        if state["limits_loaded"]:
            if held is None:
                raise PushRefused(
                    f"the gateway holds limits (epoch {state['epoch']}): a re-commit must "
                    "write the current reference price and stamp of every symbol it keeps "
                    "(docs/limits.md), and the gateway cannot report them; give them "
                    "(`--references FILE`)")
            image = keep_references(image, held)
        total = sum(len(rows) for rows in image.entries.values()) * (1 + mirror)
        offset = 0

        def step(done: int, _: int) -> None:
            if progress is not None:
                progress(offset + done, total)

        await self.load(image, step)
        if verify:
            found = await self.differences(image)
            if found:
                raise PushRefused(f"read-back of the shadow bank differs in {len(found)} "
                                  f"fields, first {found[0]}; nothing committed", found)
        epoch = await self.commit()
        if epoch != state["epoch"] + 1:
            raise ProtocolError(f"epoch went from {state['epoch']} to {epoch} on one commit: "
                                "another host is committing", 0)
        if mirror:
            offset = total // 2
            await self.load(image, step)
        return epoch

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

    async def records(self, on_gap: Callable[[SequenceGap], None] | None = None
                      ) -> AsyncIterator[Record]:
        """Drop-copy records as they arrive.

        At a sequence gap, raise :class:`SequenceGap`, or with ``on_gap`` call it and go on.
        """
        index = 0
        while True:
            await self._pump(lambda: not self._records.empty())
            record = self._records.get_nowait()
            expected, self._next_record = self._next_record, record.sequence + 1
            if expected is not None and record.sequence != expected:
                gap = SequenceGap(expected, record.sequence, index)
                if on_gap is None:
                    raise gap
                on_gap(gap)
            index += 1
            yield record

    async def close(self) -> None:
        if self._receiving is not None:
            self._receiving.cancel()
        await self._transport.close()
