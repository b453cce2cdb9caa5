# Ref: RFC 1071 (computing the Internet checksum), RFC 1624 (incremental update), RFC 9293
#      (TCP checksum), Nasdaq SoupBinTCP 3.00 (Unsequenced Data ``U``, Debug ``+``).
"""Reject in place: a client's SoupBin ``U`` packet becomes a ``+`` Debug packet in flight.

This is the reference for the egress rewrite (hw/egress/rewrite.py) and the scoreboards' model
of it.

Why in place. A ``U`` packet carries no sequence number and the exchange ignores ``+``, so a
packet of the same length with the type byte changed leaves the TCP sequence space and the
SoupBin state of both ends untouched. The frame's TCP checksum has already left by the time the
verdict exists, so the two bytes after the type byte (inside the same packet and segment: the
core only rejects in place when the extractor's ``room`` is set) are rewritten so that the
checksum stays right.

The arithmetic. The TCP checksum is the one's complement of the one's-complement sum of the
pseudo-header, header and payload read as big-endian 16-bit words (an odd last byte padded with
a zero). One's-complement addition with end-around carry is addition modulo 0xFFFF (as
2**16 = 1 modulo 0xFFFF), except that a folded sum is 0x0000 only when every word is zero, and
the pseudo-header always holds the nonzero protocol word. So the folded sum is determined by its
residue modulo 0xFFFF, and a rewrite that keeps the residue keeps the sum bit for bit.

A byte at even segment offset is a high byte (weight 256), at odd offset a low byte (weight 1).
TCP payload starts at an even frame offset (14, +4 with VLAN, +4*IHL, +4*data offset), so frame
offset parity is segment offset parity. Let the type byte be at ``x`` with weight ``w``, and
``a``, ``b`` the bytes at ``x + 1`` and ``x + 2``. Since ``256 * 256 = 1`` modulo 0xFFFF,
``b`` has weight ``w`` too and ``a`` has weight ``w * 256`` whatever the parity, so the three
bytes contribute ``w * (t + u)`` with ``u = 256 * a + b`` (``a, b`` read big-endian). Turning
``t = 0x55`` into ``0x2B`` takes ``0x2A * w`` away; adding 0x2A to ``u`` modulo 0xFFFF puts it
back. Parity drops out: the rule is the same at odd and even offsets::

    u' = u + 0x2A            if u + 0x2A <= 0xFFFF
    u' = u + 0x2A - 0xFFFF   otherwise (the end-around carry)

The +0/-0 question. 0x0000 and 0xFFFF are both zero in one's complement, and either keeps the
residue. The rule above never yields 0x0000 (``u = 0xFFD5`` gives 0xFFFF, ``u = 0xFFD6`` gives
0x0001), and the choice cannot matter to a receiver: the segment's folded sum is unchanged bit
for bit, so the check passes whether the receiver sums everything to 0xFFFF or recomputes the
checksum and compares it with the field. The one place RFC 1624 worries about -0, the checksum
field itself, is not touched. When ``b`` is the last byte of an odd-length segment it is still a
high byte padded with a zero low byte, so the weights, and the rule, hold.
"""

__all__ = ["DATA_TYPE", "DEBUG_TYPE", "compensate", "reject_in_place"]

DATA_TYPE = ord("U")     # SoupBin Unsequenced Data: a client's OUCH message
DEBUG_TYPE = ord("+")    # SoupBin Debug: ignored by the receiver, not sequenced
_DELTA = DATA_TYPE - DEBUG_TYPE


def compensate(pair: int) -> int:
    """The new value of the two bytes after the type byte, given them as a big-endian u16."""
    if not 0 <= pair <= 0xFFFF:
        raise ValueError(f"byte pair {pair:#x} is not a 16-bit value")
    total = pair + _DELTA
    return (total & 0xFFFF) + (total >> 16)


def reject_in_place(frame: bytes, type_offset: int) -> bytes:
    """Return ``frame`` with the ``U`` packet whose type byte is at ``type_offset`` made ``+``.

    The frame's TCP checksum stays valid (see the module docstring); the caller guarantees
    that the two bytes after the type byte lie in the same SoupBin packet and TCP segment.

    Raises
    ------
    ValueError
        The offset leaves fewer than two bytes after it in the frame, or the byte there is
        not ``U``.
    """
    if not 0 <= type_offset <= len(frame) - 3:
        raise ValueError(f"type byte offset {type_offset} needs two more bytes after it in a "
                         f"frame of {len(frame)} bytes")
    if frame[type_offset] != DATA_TYPE:
        raise ValueError(f"byte {frame[type_offset]:#04x} at offset {type_offset} is not a "
                         "SoupBin 'U' type byte")
    pair = int.from_bytes(frame[type_offset + 1:type_offset + 3], "big")
    out = bytearray(frame)
    out[type_offset] = DEBUG_TYPE
    out[type_offset + 1:type_offset + 3] = compensate(pair).to_bytes(2, "big")
    return bytes(out)
