# Ref: libpcap file format (draft-ietf-opsawg-pcap-04), LINKTYPE_ETHERNET = 1
"""pcap files of Ethernet frames, read and written through scapy's raw reader and writer.

Raw bytes go in and out (no scapy dissection), so large captures stay fast. Frames are
stored without FCS, as capture tools store them. Timestamps are integer nanoseconds;
files are written with nanosecond resolution so simulated cycle times survive exactly.
Classic pcap files with microsecond or nanosecond resolution and pcapng files are read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from os import PathLike

from scapy.utils import RawPcapNgReader, RawPcapReader, RawPcapWriter

__all__ = ["LINKTYPE_ETHERNET", "PcapRecord", "iter_pcap", "read_pcap", "write_pcap"]

LINKTYPE_ETHERNET = 1

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PcapRecord:
    """One captured frame.

    Attributes
    ----------
    timestamp_ns : int
        Capture time in nanoseconds (since the epoch for real captures; any origin for
        simulated ones).
    data : bytes
        The frame, from destination MAC, without FCS.
    """

    timestamp_ns: int
    data: bytes


def write_pcap(path: str | PathLike[str], frames: Iterable[PcapRecord | bytes], *,
               start_ns: int = 0, interval_ns: int = 1_000) -> int:
    """Write Ethernet frames to a nanosecond-resolution pcap file; return the frame count.

    Parameters
    ----------
    path : str or path-like
        File to create (overwritten).
    frames : iterable of PcapRecord or bytes
        Records keep their own timestamps; bare frames are stamped ``interval_ns`` after
        the previous frame (the first at ``start_ns``), so output is reproducible.
    start_ns, interval_ns : int
        Timestamps for bare frames.
    """
    if start_ns < 0 or interval_ns < 0:
        raise ValueError("start_ns and interval_ns must not be negative")
    count = 0
    next_ns = start_ns
    # The writer is told the link type and the largest jumbo-frame snap length explicitly,
    # so it never guesses from the first packet and never truncates.
    writer = RawPcapWriter(str(path), linktype=LINKTYPE_ETHERNET, nano=True, snaplen=65535)
    with writer:
        writer.write_header(None)
        for frame in frames:
            if isinstance(frame, PcapRecord):
                timestamp, data = frame.timestamp_ns, frame.data
            else:
                timestamp, data = next_ns, frame
            if timestamp < 0:
                raise ValueError(f"frame {count} has a negative timestamp {timestamp}")
            seconds, nanoseconds = divmod(timestamp, 1_000_000_000)
            writer.write_packet(bytes(data), sec=seconds, usec=nanoseconds)
            next_ns = timestamp + interval_ns
            count += 1
    logger.debug("wrote %d frames to %s", count, path)
    return count


def iter_pcap(path: str | PathLike[str]) -> Iterator[PcapRecord]:
    """Yield the records of a pcap or pcapng file of Ethernet frames, in file order.

    Raises ``ValueError`` if the file's link type is not Ethernet.
    """
    with RawPcapReader(str(path)) as reader:
        if isinstance(reader, RawPcapNgReader):
            for data, meta in reader:
                if meta.linktype != LINKTYPE_ETHERNET:
                    raise ValueError(f"{path}: link type {meta.linktype} is not Ethernet")
                ticks = (meta.tshigh << 32) | meta.tslow
                yield PcapRecord(ticks * 1_000_000_000 // meta.tsresol, data)
            return
        if reader.linktype != LINKTYPE_ETHERNET:
            raise ValueError(f"{path}: link type {reader.linktype} is not Ethernet")
        scale = 1 if reader.nano else 1_000
        for data, meta in reader:
            yield PcapRecord(meta.sec * 1_000_000_000 + meta.usec * scale, data)


def read_pcap(path: str | PathLike[str]) -> list[PcapRecord]:
    """Return every record of a pcap or pcapng file of Ethernet frames."""
    return list(iter_pcap(path))
