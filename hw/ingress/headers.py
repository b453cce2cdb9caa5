"""Header parser: Ethernet II (optional 802.1Q), IPv4 and TCP, at any beat width.

# Ref: IEEE 802.3 (Ethernet II framing), IEEE 802.1Q (tag), RFC 791 (IPv4), RFC 9293 (TCP),
# RFC 1071 (the Internet checksum).

The parser never stalls: it sees every beat the receive MAC delivers and hands the same
beats on one cycle later, with the TCP payload lanes marked, the header record of the frame
and, on the frame's last beat, its error flags.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..counters import count_event
from ..stream import beat_layout, beat_signature, check_width

__all__ = ["ERRORS", "FrameKind", "HeaderParser", "header_layout", "parsed_layout"]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
IP_PROTO_TCP = 6
OFFSET_BITS = 16   # frame byte offsets; a jumbo frame is below 16 KiB


class FrameKind:
    """What the parser recognised (``header.kind``)."""

    OTHER = 0   # anything else: toward the exchange it is dropped unless a pass rule names it
    ARP = 1
    TCP = 2     # IPv4 carrying TCP, headers complete and well formed
    IPV4 = 3    # any other unfragmented IPv4 (UDP, ICMP, ...): only a pass rule lets it through


# The error flags reported on a frame's last beat, each counted. A frame can raise several.
ERRORS = (
    "truncated",        # ended before its headers or before the IPv4 total length
    "bad_ip_checksum",
    "bad_tcp_checksum",
    "fragment",         # MF set or a non-zero fragment offset: never reassembled, never passed
    "unsupported",      # IPv4 version or header length, or TCP header length, out of range
)


def header_layout():
    """The header record of a frame, valid from ``header.done`` until the frame ends."""
    return data.StructLayout({
        "done": 1,             # every header field below has been seen
        "ports": 1,            # unfragmented IPv4 whose addresses and first 4 L4 bytes are seen
        "kind": 2,             # FrameKind
        "vlan": 1,
        "proto": 8,            # IPv4 protocol
        "ip_src": 32,
        "ip_dst": 32,
        "src_port": 16,
        "dst_port": 16,
        "seq": 32,
        "ack": 32,
        "flags": 8,            # TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10)
        "payload_start": OFFSET_BITS,   # frame offset of the first TCP payload byte
        "payload_len": OFFSET_BITS,
    })


def parsed_layout(width):
    """A beat after the parser: the lanes, which of them are TCP payload, and the frame."""
    return data.StructLayout({
        "lanes": beat_layout(width),
        "payload": width,                 # lane holds a TCP payload byte
        "offset": OFFSET_BITS,            # frame offset of lane 0
        "header": header_layout(),
        "errors": len(ERRORS),            # on the beat holding the frame's last byte
    })


class HeaderParser(wiring.Component):
    """Parse Ethernet II / 802.1Q / IPv4 / TCP headers of frames aligned to lane 0.

    Parameters
    ----------
    width : int
        Bytes per beat (1 or 8).

    Attributes
    ----------
    i : In(stream)
        Frames from the receive MAC: each frame starts in lane 0 and only its last beat may
        be partial (``always_ready``).
    o : Out(stream)
        The same beats in :func:`parsed_layout`, one cycle later (``always_ready``).
    count_<error> : Out(32)
        How many frames raised each error in :data:`ERRORS` (saturating).
    count_frames : Out(32)
        Frames seen (saturating).

    Latency
    -------
    One cycle. ``header.done`` rises on the output beat after the one that carries the
    last TCP header byte, which is always before the first payload byte. The TCP checksum
    is known only on the last beat.
    """

    def __init__(self, width):
        self._width = check_width(width)
        members = {
            "i": In(beat_signature(width)),
            "o": Out(stream.Signature(parsed_layout(width), always_ready=True)),
            "count_frames": Out(32),
        }
        for name in ERRORS:
            members[f"count_{name}"] = Out(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        width = self._width
        lane_bits = (width - 1).bit_length()
        lanes = self.i.payload

        # Where we are: the frame offset of lane 0 of the current input beat.
        in_frame = Signal()
        start = self.i.valid & lanes[0].keep & lanes[0].first
        beat_offset = Signal(OFFSET_BITS)
        offset = Mux(start, 0, beat_offset)
        ends = Signal()
        m.d.comb += ends.eq(self.i.valid & Cat(lane.keep & lane.last for lane in lanes).any())
        active = self.i.valid & (in_frame | start)
        with m.If(active):
            m.d.sync += beat_offset.eq(offset + width)
        with m.If(start):
            m.d.sync += in_frame.eq(1)
        with m.If(ends):
            m.d.sync += in_frame.eq(0)
        beat_no = offset >> lane_bits if lane_bits else offset

        # Bytes of the frame seen up to and including this beat (the frame length at its end).
        keep_count = sum(lane.keep for lane in lanes)
        seen_now = Signal(OFFSET_BITS + 1)
        m.d.comb += seen_now.eq(offset + keep_count)

        def byte_now(index, register):
            """The byte at frame ``index``: from this beat if it is here, else ``register``.

            ``register`` is updated when the byte passes, so later beats read it there.
            ``index`` may be a Value (its lane is then chosen by a multiplexer).
            """
            if isinstance(index, int):
                lane_sel, beat_sel = index % width, index // width
                here_data = lanes[lane_sel].data
            else:
                lane_sel = index[:lane_bits] if lane_bits else 0
                beat_sel = index >> lane_bits if lane_bits else index
                here_data = Cat(lane.data for lane in lanes).word_select(lane_sel, 8) \
                    if lane_bits else lanes[0].data
            here = active & (beat_no == beat_sel)
            with m.If(here):
                m.d.sync += register.eq(here_data)
            return Mux(here, here_data, register)

        def field_now(base, size, name):
            """A big-endian field of ``size`` bytes at frame ``base`` (int or Value)."""
            parts = []
            for k in range(size):
                reg = Signal(8, name=f"{name}_b{k}")
                parts.append(byte_now(base + k, reg))
            return Cat(*reversed(parts))

        # Ethernet and the optional 802.1Q tag.
        ethertype_outer = field_now(12, 2, "ethertype_outer")
        vlan = Signal()
        m.d.comb += vlan.eq(ethertype_outer == ETHERTYPE_VLAN)
        ip_base = Mux(vlan, 18, 14)
        ethertype = Mux(vlan, field_now(16, 2, "ethertype_inner"), ethertype_outer)

        # IPv4.
        ver_ihl = field_now(ip_base, 1, "ver_ihl")
        ihl = ver_ihl[0:4]
        total_length = field_now(ip_base + 2, 2, "total_length")
        frag = field_now(ip_base + 6, 2, "frag")
        proto = field_now(ip_base + 9, 1, "proto")
        ip_src = field_now(ip_base + 12, 4, "ip_src")
        ip_dst = field_now(ip_base + 16, 4, "ip_dst")
        ip_header_len = Cat(Const(0, 2), ihl)
        tcp_base = Signal(OFFSET_BITS)
        m.d.comb += tcp_base.eq(ip_base + ip_header_len)

        # TCP. Its fields follow the IPv4 header by at least 20 bytes, so ``tcp_base`` is
        # settled from registers by the time they pass.
        src_port = field_now(tcp_base, 2, "src_port")
        dst_port = field_now(tcp_base + 2, 2, "dst_port")
        seq = field_now(tcp_base + 4, 4, "seq")
        ack = field_now(tcp_base + 8, 4, "ack")
        data_offset = field_now(tcp_base + 12, 1, "data_offset")[4:8]
        flags = field_now(tcp_base + 13, 1, "flags")
        tcp_header_len = Cat(Const(0, 2), data_offset)
        payload_start = Signal(OFFSET_BITS)
        ip_end = Signal(OFFSET_BITS + 1)
        m.d.comb += [
            payload_start.eq(tcp_base + tcp_header_len),
            ip_end.eq(ip_base + total_length),
        ]

        # Well-formedness. A field register holds a byte of an earlier frame until this
        # frame's byte passes, so every judgement is gated on the bytes seen so far.
        have_eth = seen_now >= Mux(vlan, 18, 14)
        is_arp = (seen_now >= 14) & (ethertype_outer == ETHERTYPE_ARP)
        is_ipv4 = have_eth & (ethertype == ETHERTYPE_IPV4)
        have_ip = is_ipv4 & (seen_now >= ip_base + 20)
        ip_shape_ok = (ver_ihl[4:8] == 4) & (ihl >= 5) & (total_length >= ip_header_len)
        is_fragment = frag[13] | (frag[0:13] != 0)    # MF, or an offset
        is_tcp = have_ip & ip_shape_ok & (proto == IP_PROTO_TCP) & ~is_fragment
        have_tcp = is_tcp & (seen_now >= tcp_base + 20)
        # The TCP header must fit inside the IPv4 total length, or its fields are not its own.
        tcp_shape_ok = (ip_end >= tcp_base + 20) & (data_offset >= 5) & (ip_end >= payload_start)
        done = Signal()
        m.d.comb += done.eq(have_tcp & tcp_shape_ok & (seen_now >= payload_start))

        # One's-complement sums over 16-bit words. Words start at even frame offsets (every
        # header starts at an even offset), so lanes pair up as (high, low) at W = 8; at
        # W = 1 each byte is added in place as high or low by its offset's parity.
        ip_sum = Signal(32)
        tcp_sum = Signal(32)
        ip_add = []
        tcp_add = []
        for lane_no, lane in enumerate(lanes):
            pos = offset + lane_no
            in_ip = lane.keep & (pos >= ip_base) & (
                (pos < ip_base + 20) | (pos < ip_base + ip_header_len))
            in_tcp = lane.keep & (pos >= tcp_base) & (pos < ip_end) & (pos >= ip_base + 20)
            weight = Mux(pos[0], lane.data, Cat(Const(0, 8), lane.data))
            ip_add.append(Mux(in_ip, weight, 0))
            tcp_add.append(Mux(in_tcp, weight, 0))
        ip_sum_next = Signal(32)
        tcp_sum_next = Signal(32)
        m.d.comb += [
            ip_sum_next.eq(Mux(start, 0, ip_sum) + sum(ip_add)),
            tcp_sum_next.eq(Mux(start, 0, tcp_sum) + sum(tcp_add)),
        ]
        with m.If(active):
            m.d.sync += [ip_sum.eq(ip_sum_next), tcp_sum.eq(tcp_sum_next)]

        # Output, one cycle later: the beat, its payload lanes, the header and the errors.
        o = self.o.payload
        hdr = o.header
        m.d.sync += self.o.valid.eq(self.i.valid)
        m.d.sync += o.lanes.eq(lanes)
        with m.If(self.i.valid):
            m.d.sync += o.offset.eq(offset)
        payload_lanes = []
        for lane_no, lane in enumerate(lanes):
            pos = offset + lane_no
            payload_lanes.append(lane.keep & (pos >= payload_start) & (pos < ip_end))
        with m.If(active):
            m.d.sync += [
                o.payload.eq(Mux(done, Cat(payload_lanes), 0)),
                hdr.done.eq(done),
                hdr.ports.eq(is_ipv4 & (seen_now >= ip_base + 20) & ip_shape_ok & ~is_fragment
                             & (seen_now >= tcp_base + 4)),
                hdr.vlan.eq(vlan),
                hdr.proto.eq(proto),
                hdr.ip_src.eq(ip_src),
                hdr.ip_dst.eq(ip_dst),
                hdr.src_port.eq(src_port),
                hdr.dst_port.eq(dst_port),
                hdr.seq.eq(seq),
                hdr.ack.eq(ack),
                hdr.flags.eq(flags),
                hdr.payload_start.eq(payload_start),
                hdr.payload_len.eq(ip_end - payload_start),
            ]
            with m.If(is_arp):
                m.d.sync += hdr.kind.eq(FrameKind.ARP)
            with m.Elif(have_tcp & tcp_shape_ok):
                m.d.sync += hdr.kind.eq(FrameKind.TCP)
            with m.Elif(have_ip & ip_shape_ok & ~is_fragment & (proto != IP_PROTO_TCP)):
                m.d.sync += hdr.kind.eq(FrameKind.IPV4)
            with m.Else():
                m.d.sync += hdr.kind.eq(FrameKind.OTHER)

        # Errors, judged when the frame's last byte has gone past.
        def folded(total):
            # A valid one's-complement sum folds to all ones.
            once = total[0:16] + total[16:]
            return (once[0:16] + once[16:]) == 0xFFFF

        tcp_length = total_length - ip_header_len
        pseudo = (ip_src[0:16] + ip_src[16:32] + ip_dst[0:16] + ip_dst[16:32] +
                  IP_PROTO_TCP + tcp_length)
        # The IPv4 total length bounds the packet; bytes past it are Ethernet padding.
        truncated = ~have_eth | (is_ipv4 & ~have_ip) | (have_ip & ip_shape_ok & (
            (seen_now < ip_base + ip_header_len) | (seen_now < ip_end)))
        error_now = {
            "truncated": truncated,
            "bad_ip_checksum": have_ip & ip_shape_ok &
                               (seen_now >= ip_base + ip_header_len) & ~folded(ip_sum_next),
            "bad_tcp_checksum": is_tcp & tcp_shape_ok & ~truncated &
                                ~folded(tcp_sum_next + pseudo),
            "fragment": have_ip & is_fragment,
            "unsupported": have_ip & ~is_fragment & ~truncated & ~(
                ip_shape_ok & ((proto != IP_PROTO_TCP) | tcp_shape_ok)),
        }
        m.d.sync += o.errors.eq(0)
        with m.If(ends):
            m.d.sync += o.errors.eq(Cat(error_now[name] for name in ERRORS))

        count_event(m, self.count_frames, ends)
        out_ends = self.o.valid & Cat(lane.keep & lane.last for lane in o.lanes).any()
        for bit, name in enumerate(ERRORS):
            count_event(m, getattr(self, f"count_{name}"), out_ends & o.errors[bit])
        return m
