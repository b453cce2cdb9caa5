"""Transports for the driver beyond the socket, and the ``--target`` URLs that name them.

``sim://HOST:PORT``
    TCP to ``wiregate sim`` (or any gateway that serves its control port on a socket):
    :class:`~wiregate.sw.driver.SocketTransport`.
``serial:///dev/ttyUSB1?baud=3000000``
    A UART (the board's control bridge), 8N1, no flow control: :class:`SerialTransport`.
    ``baud`` defaults to :data:`DEFAULT_BAUD`.
"""

import asyncio
from urllib.parse import parse_qs, urlsplit

import serial

from wiregate.sw.driver import SocketTransport, Transport

__all__ = ["DEFAULT_BAUD", "SerialTransport", "TargetError", "open_target", "parse_target"]

DEFAULT_BAUD = 3_000_000
TARGET_FORMS = "sim://HOST:PORT or serial:///dev/ttyUSB1?baud=3000000"


class TargetError(ValueError):
    """A ``--target`` that names no transport."""


class SerialTransport(Transport):
    """A serial port, through pyserial, its blocking calls on the loop's executor.

    Parameters
    ----------
    port : serial.Serial
        Open, with a read timeout (``receive`` waits in slices of it).
    """

    def __init__(self, port: serial.Serial):
        self._port = port

    @classmethod
    async def open(cls, device: str, baud: int = DEFAULT_BAUD) -> "SerialTransport":
        try:
            port = serial.Serial(device, baud, timeout=0.05)
        except (serial.SerialException, ValueError) as error:
            raise ConnectionError(f"cannot open {device} at {baud} baud ({error}); is the "
                                  "board plugged in, and the device yours to open?") from None
        return cls(port)

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._port.write, data)

    def _read(self) -> bytes:
        first = self._port.read(1)              # waits up to the timeout
        return first + self._port.read(self._port.in_waiting) if first else b""

    async def receive(self) -> bytes:
        loop = asyncio.get_running_loop()
        while not (data := await loop.run_in_executor(None, self._read)):
            pass
        return data

    async def close(self) -> None:
        self._port.close()


def parse_target(target: str) -> tuple[str, dict]:
    """(scheme, arguments) of a ``--target``; raise :class:`TargetError` with the forms."""
    url = urlsplit(target)
    if url.scheme == "sim":
        try:
            host, port = url.hostname, url.port
        except ValueError:
            host = port = None
        if not host or port is None or url.path not in ("", "/"):
            raise TargetError(f"target {target!r}: give the host and port, as "
                              "sim://127.0.0.1:5555")
        return "sim", {"host": host, "port": port}
    if url.scheme == "serial":
        query = parse_qs(url.query)
        if url.netloc or not url.path or set(query) - {"baud"}:
            raise TargetError(f"target {target!r}: give the device path and at most a baud "
                              "rate, as serial:///dev/ttyUSB1?baud=3000000")
        try:
            baud = int(query["baud"][-1]) if "baud" in query else DEFAULT_BAUD
        except ValueError:
            raise TargetError(f"target {target!r}: baud must be a number") from None
        return "serial", {"device": url.path, "baud": baud}
    raise TargetError(f"target {target!r}: expected {TARGET_FORMS}")


async def open_target(target: str) -> Transport:
    """Open the transport a ``--target`` URL names."""
    scheme, arguments = parse_target(target)
    if scheme == "sim":
        return await SocketTransport.connect(**arguments)
    return await SerialTransport.open(**arguments)
