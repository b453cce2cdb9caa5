"""Header parser: Ethernet II (optional 802.1Q), IPv4 and TCP, at any beat width.

# Ref: IEEE 802.3 (Ethernet II framing), IEEE 802.1Q (tag), RFC 791 (IPv4), RFC 9293 (TCP),
# RFC 1071 (the Internet checksum).

The parser never stalls: it sees every beat the receive MAC delivers and hands the same
beats on :data:`LATENCY` cycles later, with the TCP payload lanes marked, the header record
of the frame and, on the frame's last beat, its error flags.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..counters import LIVE_BITS, count_event, live_event
from ..stream import beat_layout, beat_signature, check_width

__all__ = ["ERRORS", "LATENCY", "FrameKind", "HeaderParser", "header_layout", "parsed_layout"]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
IP_PROTO_TCP = 6
OFFSET_BITS = 16   # frame byte offsets; a jumbo frame is below 16 KiB
LATENCY = 6        # cycles from a beat in to the same beat out (see HeaderParser)


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
        "addresses": 1,        # unfragmented IPv4 whose addresses are seen
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
        The same beats in :func:`parsed_layout`, :data:`LATENCY` cycles later
        (``always_ready``).
    count_<error> : Out(32)
        How many frames raised each error in :data:`ERRORS` (saturating).
    count_frames : Out(:data:`~wiregate.hw.counters.LIVE_BITS`)
        Frames seen (a live counter: it wraps).

    Latency
    -------
    :data:`LATENCY` cycles (:attr:`latency`): the header bytes are captured into
    registers as they pass, and the offsets, compares, checksum folds and errors are derived
    from those registers over the following stages, none of them from the current byte.
    ``header.done`` is high on the output beat that carries the last TCP header byte and
    after, so before the first payload byte. The TCP checksum is known only on the last
    beat.
    """

    latency = LATENCY

    def __init__(self, width):
        self._width = check_width(width)
        members = {
            "i": In(beat_signature(width)),
            "o": Out(stream.Signature(parsed_layout(width), always_ready=True)),
            "count_frames": Out(LIVE_BITS),
        }
        for name in ERRORS:
            members[f"count_{name}"] = Out(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        width = self._width
        lane_bits = (width - 1).bit_length()
        lanes = self.i.payload

        def later(value, name):
            """``value`` one cycle later, in a register named ``name``."""
            reg = Signal(Value.cast(value).shape(), name=name)
            m.d.sync += reg.eq(value)
            return reg

        # Stage 0, the input beat: where it is, and the header bytes it carries captured.
        in_frame = Signal()
        start = self.i.valid & lanes[0].keep & lanes[0].first
        beat_offset = Signal(OFFSET_BITS)
        offset = Signal(OFFSET_BITS)
        m.d.comb += offset.eq(Mux(start, 0, beat_offset))
        ends = Signal()
        m.d.comb += ends.eq(self.i.valid & Cat(lane.keep & lane.last for lane in lanes).any())
        active = self.i.valid & (in_frame | start)
        with m.If(active):
            m.d.sync += beat_offset.eq(offset + width)
        with m.If(start):
            m.d.sync += in_frame.eq(1)
        with m.If(ends):
            m.d.sync += in_frame.eq(0)
        # Bytes of the frame seen up to and including this beat (the frame length at its end).
        seen = Signal(OFFSET_BITS + 1)
        m.d.comb += seen.eq(offset + sum(lane.keep for lane in lanes))

        beat_offset_no = beat_offset >> lane_bits if lane_bits else beat_offset

        def at_beat(beat_sel):
            """The input beat is the frame's beat ``beat_sel`` (an int, or a register). The
            frame's start enters last, not through ``offset``'s select ahead of the compare
            (that path, into the capture enables, was the whole ingress's longest, seed 1)."""
            first_beat = Const(beat_sel == 0) if isinstance(beat_sel, int) else beat_sel == 0
            return active & Mux(start, first_beat, beat_offset_no == beat_sel)

        def capture(index, register):
            """Load ``register`` with the frame's byte ``index`` (int, or a Value that is a
            register) when the input beat carries it."""
            if isinstance(index, int):
                lane_sel, beat_sel = index % width, index // width
                here_data = lanes[lane_sel].data
            else:
                lane_sel = index[:lane_bits] if lane_bits else 0
                beat_sel = index >> lane_bits if lane_bits else index
                here_data = Cat(lane.data for lane in lanes).word_select(lane_sel, 8) \
                    if lane_bits else lanes[0].data
            with m.If(at_beat(beat_sel)):
                m.d.sync += register.eq(here_data)

        def field(base, size, name):
            """A big-endian field of ``size`` bytes at frame ``base``, from registers loaded
            from the input beat: it holds this frame's bytes one cycle after they pass."""
            parts = []
            for k in range(size):
                reg = Signal(8, name=f"{name}_b{k}")
                capture(base + k, reg)
                parts.append(reg)
            return Cat(*reversed(parts))

        # Every IPv4 field is captured twice, at its place behind an untagged and behind a
        # tagged Ethernet header, so that no capture waits for the tag to be decoded.
        ethertype_outer = field(12, 2, "ethertype_outer")
        ethertype_inner = field(16, 2, "ethertype_inner")
        ip_fields = {}
        for ip_base in (14, 18):
            ip_fields[ip_base] = {
                "ver_ihl": field(ip_base, 1, f"ver_ihl_{ip_base}"),
                "total_length": field(ip_base + 2, 2, f"total_length_{ip_base}"),
                "frag": field(ip_base + 6, 2, f"frag_{ip_base}"),
                "proto": field(ip_base + 9, 1, f"proto_{ip_base}"),
                "ip_src": field(ip_base + 12, 4, f"ip_src_{ip_base}"),
                "ip_dst": field(ip_base + 16, 4, f"ip_dst_{ip_base}"),
            }
        # Where the TCP header starts (stage 1's register): settled from the IPv4 header,
        # which ends at least 20 bytes (two beats at W = 8) before the TCP header does.
        f_tcp_base = Signal(8)   # f["tcp_base"] below
        data_offset = field(f_tcp_base + 12, 1, "data_offset")[4:8]

        # Stage 1: the frame's values from the captured bytes, registered. The registers of
        # stage 1 reflect the frame up to and including the beat that is in stage 2, and a
        # value k stages further down, the beat in stage 2 + k. The next frame's bytes cannot
        # reach them sooner: its first captured byte (12) is at least one beat behind.
        vlan = ethertype_outer == ETHERTYPE_VLAN
        ethertype = Mux(vlan, ethertype_inner, ethertype_outer)

        def behind(ip_base, ip):
            """The frame's values if its IPv4 header starts at ``ip_base``."""
            ihl = ip["ver_ihl"][0:4]
            total_length = ip["total_length"]
            frag = ip["frag"]
            return {
                "ip_shape_ok": (ip["ver_ihl"][4:8] == 4) & (ihl >= 5) &
                               (total_length >= Cat(Const(0, 2), ihl)),
                "fragment": frag[13] | (frag[0:13] != 0),    # MF, or an offset
                "tcp": ip["proto"] == IP_PROTO_TCP,
                "ip_end": ip_base + total_length,
                "tcp_base": ip_base + Cat(Const(0, 2), ihl),
                "payload_start": ip_base + Cat(Const(0, 2), ihl + data_offset),
                # The TCP pseudo-header's one's-complement sum, in three stages (a, b, c).
                "pseudo_src": ip["ip_src"][0:16] + ip["ip_src"][16:32],
                "pseudo_dst": ip["ip_dst"][0:16] + ip["ip_dst"][16:32],
                "pseudo_length": total_length + IP_PROTO_TCP - Cat(Const(0, 2), ihl),
            }

        # Both candidates are derived side by side and the tag picks one at the end, so that
        # decoding the tag does not come before the adders.
        untagged, tagged = behind(14, ip_fields[14]), behind(18, ip_fields[18])
        f = {}
        for name, value in {
            "vlan": vlan,
            "arp": ethertype_outer == ETHERTYPE_ARP,
            "ipv4": ethertype == ETHERTYPE_IPV4,
            "ip_base": Mux(vlan, 18, 14),
            **{name: Mux(vlan, tagged[name], untagged[name]) for name in untagged},
            "data_offset_ok": data_offset >= 5,
        }.items():
            f[name] = later(value, f"f_{name}")
        m.d.comb += f_tcp_base.eq(f["tcp_base"])
        pseudo_b = later(f["pseudo_src"] + f["pseudo_dst"] + f["pseudo_length"][:16],
                         "pseudo_b")
        pseudo = later(pseudo_b[0:16] + pseudo_b[16:], "pseudo_c")    # at stage 4

        # The beat itself, stage by stage, down to the output.
        beats = {0: (self.i.valid, lanes.as_value(), offset, seen, start, active, ends)}
        for stage in range(1, LATENCY):
            beats[stage] = tuple(later(value, f"s{stage}_{name}") for value, name in zip(
                beats[stage - 1],
                ("valid", "lanes", "offset", "seen", "start", "active", "ends"), strict=True))

        def beat_at(stage):
            valid, raw, offset, seen, start, active, ends = beats[stage]
            return (valid, beat_layout(width)(raw), offset, seen, start, active, ends)

        # Stage 2: the beat against the frame's values: compares, registered.
        _, lanes2, offset2, seen2, _, _, _ = beat_at(2)
        tcp_base2 = f_tcp_base
        c = {}
        for name, value in {
            "have_eth": seen2 >= f["ip_base"],
            "seen_eth_type": seen2 >= 14,
            "have_ip": seen2 >= f["ip_base"] + 20,
            "have_ip_header": seen2 >= tcp_base2,
            "have_ip_end": seen2 >= f["ip_end"],
            "have_tcp": seen2 >= tcp_base2 + 20,
            "have_ports": seen2 >= tcp_base2 + 4,
            "have_payload_start": seen2 >= f["payload_start"],
            # The TCP header must fit inside the IPv4 total length, or its fields are not
            # its own.
            "tcp_shape_ok": (f["ip_end"] >= tcp_base2 + 20) & f["data_offset_ok"] &
                            (f["ip_end"] >= f["payload_start"]),
            **{name: f[name] for name in ("vlan", "arp", "ipv4", "ip_shape_ok", "fragment",
                                          "tcp", "payload_start")},
            "payload_len": f["ip_end"] - f["payload_start"],
            "tcp_base": tcp_base2,
        }.items():
            c[name] = later(value, f"c_{name}")
        # Per lane: a byte of the IPv4 header, of the TCP segment, of the payload.
        in_ip, in_tcp, in_payload = [], [], []
        for lane_no, lane in enumerate(lanes2):
            pos = offset2 + lane_no
            in_ip.append(lane.keep & (pos >= f["ip_base"]) & (
                (pos < f["ip_base"] + 20) | (pos < tcp_base2)))
            in_tcp.append(lane.keep & (pos >= tcp_base2) & (pos < f["ip_end"]) &
                          (pos >= f["ip_base"] + 20))
            in_payload.append(lane.keep & (pos >= f["payload_start"]) & (pos < f["ip_end"]))
        in_ip = later(Cat(in_ip), "c_in_ip")
        in_tcp = later(Cat(in_tcp), "c_in_tcp")
        in_payload = later(Cat(in_payload), "c_in_payload")

        # Stage 3: what the frame is so far, and the checksums.
        _, lanes3, offset3, _, start3, active3, _ = beat_at(3)
        is_arp = c["seen_eth_type"] & c["arp"]
        is_ipv4 = c["have_eth"] & c["ipv4"]
        have_ip = is_ipv4 & c["have_ip"]
        ip_shape_ok = c["ip_shape_ok"]
        is_tcp = have_ip & ip_shape_ok & c["tcp"] & ~c["fragment"]
        have_tcp = is_tcp & c["have_tcp"]
        tcp_shape_ok = c["tcp_shape_ok"]
        done = have_tcp & tcp_shape_ok & c["have_payload_start"]
        # The IPv4 total length bounds the packet; bytes past it are Ethernet padding.
        truncated = ~c["have_eth"] | (is_ipv4 & ~have_ip) | (have_ip & ip_shape_ok & (
            ~c["have_ip_header"] | ~c["have_ip_end"]))
        kind = Signal(2)
        with m.If(is_arp):
            m.d.comb += kind.eq(FrameKind.ARP)
        with m.Elif(have_tcp & tcp_shape_ok):
            m.d.comb += kind.eq(FrameKind.TCP)
        with m.Elif(have_ip & ip_shape_ok & ~c["fragment"] & ~c["tcp"]):
            m.d.comb += kind.eq(FrameKind.IPV4)
        with m.Else():
            m.d.comb += kind.eq(FrameKind.OTHER)
        header3 = {
            "done": done,
            "addresses": have_ip & ip_shape_ok & ~c["fragment"],
            "ports": have_ip & ip_shape_ok & ~c["fragment"] & c["have_ports"],
            "kind": kind,
            "vlan": c["vlan"],
            "payload_start": c["payload_start"],
            "payload_len": c["payload_len"],
        }
        judged3 = {
            "truncated": truncated,
            "ip_due": have_ip & ip_shape_ok & c["have_ip_header"],
            "tcp_due": is_tcp & tcp_shape_ok & ~truncated,
            "fragment": have_ip & c["fragment"],
            "unsupported": have_ip & ~c["fragment"] & ~truncated & ~(
                ip_shape_ok & (~c["tcp"] | tcp_shape_ok)),
        }
        payload3 = Mux(done, in_payload, 0)

        # One's-complement sums over 16-bit words, kept short: each cycle adds the carries
        # out of bit 15 back in (end-around carry), which keeps the sum's value modulo
        # 0xFFFF. Words start at even frame offsets (every header starts at an even offset),
        # so lanes pair up as (high, low) at W = 8; at W = 1 each byte is added in place as
        # high or low by its offset's parity.
        sum_bits = (0x1FFFF + width * 0xFFFF).bit_length()
        ip_sum = Signal(sum_bits)
        tcp_sum = Signal(sum_bits)
        ip_add, tcp_add = [], []
        for lane_no, lane in enumerate(lanes3):
            odd = (offset3 + lane_no)[0] if width == 1 else lane_no % 2
            weight = Mux(odd, lane.data, Cat(Const(0, 8), lane.data))
            ip_add.append(Mux(in_ip[lane_no], weight, 0))
            tcp_add.append(Mux(in_tcp[lane_no], weight, 0))
        with m.If(active3):
            m.d.sync += [
                ip_sum.eq(Mux(start3, 0, ip_sum[:16] + ip_sum[16:]) + sum(ip_add)),
                tcp_sum.eq(Mux(start3, 0, tcp_sum[:16] + tcp_sum[16:]) + sum(tcp_add)),
            ]
        header4 = {name: later(value, f"h4_{name}") for name, value in header3.items()}
        judged4 = {name: later(value, f"j4_{name}") for name, value in judged3.items()}
        payload4 = later(payload3, "payload4")
        tcp_base4 = later(c["tcp_base"], "tcp_base4")

        # Stage 4: the sums (with this beat, if it is the frame's last) folded once, the
        # pseudo header added. Stage 5: whether each is a non-zero multiple of 0xFFFF: then,
        # and only then, folding it to 16 bits gives 0xFFFF, a valid checksum.
        ip_folded = later(ip_sum[:16] + ip_sum[16:], "ip_folded")
        tcp_folded = later(tcp_sum[:16] + tcp_sum[16:] + pseudo, "tcp_folded")

        def valid_sum(total):
            return Cat(total == k * 0xFFFF
                       for k in range(1, ((1 << len(total)) - 1) // 0xFFFF + 1)).any()

        header5 = {name: later(value, f"h5_{name}") for name, value in header4.items()}
        judged5 = {name: later(value, f"j5_{name}") for name, value in judged4.items()}
        payload5 = later(payload4, "payload5")
        error_now = {
            "truncated": judged5["truncated"],
            "bad_ip_checksum": judged5["ip_due"] & ~valid_sum(ip_folded),
            "bad_tcp_checksum": judged5["tcp_due"] & ~valid_sum(tcp_folded),
            "fragment": judged5["fragment"],
            "unsupported": judged5["unsupported"],
        }

        # Output, stage 6: the beat, its payload lanes, the header and the errors. The
        # header's fields are captured again from the beat in stage 5, so that they follow
        # the output beats as they did the input.
        valid5, lanes5, offset5, _, _, active5, ends5 = beat_at(LATENCY - 1)
        o = self.o.payload
        hdr = o.header
        m.d.sync += self.o.valid.eq(valid5)
        m.d.sync += o.lanes.eq(lanes5)
        with m.If(valid5):
            m.d.sync += o.offset.eq(offset5)
        with m.If(active5):
            m.d.sync += o.payload.eq(payload5)
            m.d.sync += [getattr(hdr, name).eq(value) for name, value in header5.items()]
        # Which beat and lane each header byte is in is decided on the beat in stage 4 and
        # registered, so that the capture in stage 5 is a plain load.
        _, _, offset4, _, _, active4, _ = beat_at(4)
        ip_base4 = Mux(header4["vlan"], 18, 14)
        for name, base, size in (
                ("proto", ip_base4 + 9, 1), ("ip_src", ip_base4 + 12, 4),
                ("ip_dst", ip_base4 + 16, 4), ("src_port", tcp_base4, 2),
                ("dst_port", tcp_base4 + 2, 2), ("seq", tcp_base4 + 4, 4),
                ("ack", tcp_base4 + 8, 4), ("flags", tcp_base4 + 13, 1)):
            value = getattr(hdr, name)
            for k in range(size):
                index = Signal(8, name=f"{name}_at_b{k}")
                m.d.comb += index.eq(base + k)
                beat_no = offset4 >> lane_bits if lane_bits else offset4
                beat_sel = index >> lane_bits if lane_bits else index
                here = later(active4 & (beat_no == beat_sel), f"{name}_here_b{k}")
                byte = lanes5[0].data
                if lane_bits:
                    lane_sel = later(index[:lane_bits], f"{name}_lane_b{k}")
                    byte = Cat(lane.data for lane in lanes5).word_select(lane_sel, 8)
                with m.If(here):
                    m.d.sync += value[8 * (size - 1 - k):8 * (size - k)].eq(byte)
        m.d.sync += o.errors.eq(0)
        with m.If(ends5):
            m.d.sync += o.errors.eq(Cat(error_now[name] for name in ERRORS))

        live_event(m, self.count_frames, ends)
        out_ends = self.o.valid & Cat(lane.keep & lane.last for lane in o.lanes).any()
        for bit, name in enumerate(ERRORS):
            count_event(m, getattr(self, f"count_{name}"), out_ends & o.errors[bit])
        return m
