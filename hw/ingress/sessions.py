"""Session lookup: which configured OUCH session a frame belongs to, and what may pass.

Toward the exchange the gate is default-deny: ARP passes, frames of a configured session
pass (to be checked), frames a host pass rule names pass, and everything else is marked
for drop. Toward the clients nothing is dropped: exchange traffic is parsed, never changed.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import RegisterMap

from ..counters import LIVE_BITS, count_event, live_event
from ..stream import check_width
from ..tables import entry_layout, write_signature
from .headers import FrameKind, parsed_layout
from .session_search import KEY_FIELDS, SessionSearch

__all__ = ["SessionLookup", "session_beat_layout"]

# At one byte a beat, the beats from an IPv4 frame's addresses (its last address byte) to
# its ports (their last byte): the first 4 bytes after the IPv4 header, options or none;
# and from a TCP frame's ports to the end of its headers: the TCP header's other 16 bytes.
ADDRESSES_TO_PORTS = 4
PORTS_TO_HEADERS_END = 16
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17


def session_beat_layout(width: int, regmap: RegisterMap) -> data.StructLayout:
    """A parsed beat with the frame's session."""
    return data.StructLayout({
        "beat": parsed_layout(width),
        "session": range(regmap.n_sessions),
        "hit": 1,     # the frame belongs to ``session`` (valid from ``header.done``)
        "drop": 1,    # on the last beat: the frame must not reach the exchange
        # Toward the exchange: the frame may pass (ARP, a session's TCP, a pass rule), as far
        # as its headers tell; ``decided``: they tell enough (the 4-tuple is seen, or ARP, or
        # the frame ends here). Valid on the first beat with ``decided``.
        "admit": 1,
        "decided": 1,
    })


class SessionLookup(wiring.Component):
    """Match each frame's 4-tuple against the host-loaded session table.

    The session table is banked: the host writes the shadow bank and ``swap`` (a commit)
    makes it active. A frame keeps the session it matched when its 4-tuple was seen, and its
    pass decision is that match's, so a swap in mid-frame never splits one.

    Parameters
    ----------
    width : int
        Bytes per beat.
    regmap : RegisterMap
        Gives the table sizes and entry layouts (``session``, ``pass_rule``).
    toward_exchange : bool
        The direction of this port: client frames toward the exchange (source = client) or
        exchange frames toward the clients (source = exchange).

    Attributes
    ----------
    i : In(stream)
        Parser output (:func:`wiregate.hw.ingress.headers.parsed_layout`).
    o : Out(stream)
        :func:`session_beat_layout`, :attr:`latency` cycles later.
    write_session, write_pass_rule : In(write port)
        Table writes (session: shadow bank; pass rules: unbanked).
    swap : In(1)
        Make the shadow session bank active.
    count_dropped : Out(:data:`~wiregate.hw.counters.LIVE_BITS`)
        Frames marked for drop (a live counter: it wraps).
    count_passed_by_rule : Out(32)
        Frames let through by a pass rule (saturating).

    At one byte a beat part of the match walks the table (:class:`SessionSearch`) instead of
    comparing every entry at once: see ``elaborate``.

    Latency
    -------
    Two cycles: the compares, then the frame's session and verdict.
    """

    latency = 2

    def __init__(self, width, regmap, *, toward_exchange):
        self._width = check_width(width)
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._regmap = regmap
        self._toward_exchange = bool(toward_exchange)
        # How stage 1 finds the frame's session (see ``elaborate``).
        self._find = "compare"
        if self._width == 1:
            self._find = "walk addresses" if self._toward_exchange else "walk"
            if not self._toward_exchange and regmap.n_sessions + 1 > PORTS_TO_HEADERS_END:
                raise ValueError(f"{regmap.n_sessions} sessions take longer to walk than a "
                                 f"TCP frame's headers last after its ports")
        super().__init__({
            "i": In(stream.Signature(parsed_layout(width), always_ready=True)),
            "o": Out(stream.Signature(session_beat_layout(width, regmap), always_ready=True)),
            "write_session": In(write_signature(regmap, "session")),
            "write_pass_rule": In(write_signature(regmap, "pass_rule")),
            "swap": In(1),
            "count_dropped": Out(LIVE_BITS),
            "count_passed_by_rule": Out(32),
        })

    def _compare(self, m, local_ip, local_port, remote_ip, remote_port, pick=None):
        """Stage 1 at once: the 4-tuple against every entry of a bank (``pick``, or the active
        one), registered with the beat, an address match and a port match per session."""
        regmap = self._regmap
        session_entry = entry_layout(regmap, "session")
        banks = [[Signal(session_entry, name=f"session_bank{b}_{k}")
                  for k in range(regmap.n_sessions)] for b in range(2)]
        active = Signal()
        with m.If(self.swap):
            m.d.sync += active.eq(~active)
        write = self.write_session
        for k in range(regmap.n_sessions):
            for b in range(2):
                with m.If(write.en & (write.index == k) & (active != b)):
                    m.d.sync += banks[b][k].eq(write.entry)
        # Both banks are compared and the active one's result picked: ``active`` then
        # selects one bit per entry, not every entry bit ahead of the compare (its fan-out
        # there was the whole ingress's longest path). The addresses and the ports are
        # compared in registers of their own and the two halves taken together in stage 2:
        # the whole 4-tuple in one cycle was the whole ingress's longest path after the bank
        # select's (seed 1, 8.2 ns).
        ip_matches, port_matches = Signal(regmap.n_sessions), Signal(regmap.n_sessions)
        for k in range(regmap.n_sessions):
            ip_match = [entry.valid & (entry.client_ip == local_ip) &
                        (entry.exchange_ip == remote_ip)
                        for entry in (banks[0][k], banks[1][k])]
            port_match = [(entry.client_port == local_port) &
                          (entry.exchange_port == remote_port)
                          for entry in (banks[0][k], banks[1][k])]
            bank = active if pick is None else pick
            m.d.sync += [ip_matches[k].eq(Mux(bank, ip_match[1], ip_match[0])),
                         port_matches[k].eq(Mux(bank, port_match[1], port_match[0]))]
        return ip_matches, port_matches

    def elaborate(self, platform):
        m = Module()
        regmap = self._regmap
        beat = self.i.payload
        hdr = beat.header
        if self._toward_exchange:
            local_ip, local_port, remote_ip, remote_port = (
                hdr.ip_src, hdr.src_port, hdr.ip_dst, hdr.dst_port)
        else:
            local_ip, local_port, remote_ip, remote_port = (
                hdr.ip_dst, hdr.dst_port, hdr.ip_src, hdr.src_port)

        # Stage 1: which entries hold the frame's 4-tuple, in two halves ANDed in stage 2,
        # the addresses' and the ports'. Toward the exchange the frame's pass decision waits
        # for them at its ports (and with it the holdback, every frame's delay); toward the
        # clients only the session does, at the end of the headers.
        # - "compare": every entry at once (at eight bytes a beat the ports come in the
        #   addresses' beat or the next);
        # - "walk addresses": the addresses walked (SessionSearch) from the beat that
        #   completes them, ADDRESSES_TO_PORTS beats or more before the ports, the ports
        #   compared at once in the walked bank's entries;
        # - "walk": the whole 4-tuple walked from the ports, over before the headers end.
        if self._find == "compare":
            ip_matches, port_matches = self._compare(m, local_ip, local_port, remote_ip,
                                                     remote_port)
        else:
            walk_addresses = self._find == "walk addresses"
            fields = ("client_ip", "exchange_ip") if walk_addresses else KEY_FIELDS
            per_cycle = -(-regmap.n_sessions // ADDRESSES_TO_PORTS) if walk_addresses else 1
            m.submodules.search = search = SessionSearch(regmap, fields=fields,
                                                         per_cycle=per_cycle)
            assert not walk_addresses or search.latency <= ADDRESSES_TO_PORTS + 1
            walked = Signal()       # this frame's walk has begun
            starts = Cat(lane.keep & lane.first for lane in beat.lanes).any()
            complete_key = hdr.addresses if walk_addresses else hdr.ports
            start = self.i.valid & complete_key & (~walked | starts)
            with m.If(self.i.valid & starts):
                m.d.sync += walked.eq(start)
            with m.Elif(start):
                m.d.sync += walked.eq(1)
            wiring.connect(m, host=wiring.flipped(self.write_session), table=search.write)
            m.d.comb += [search.swap.eq(self.swap), search.start.eq(start),
                         search.client_ip.eq(local_ip), search.exchange_ip.eq(remote_ip),
                         search.client_port.eq(local_port),
                         search.exchange_port.eq(remote_port)]
            ip_matches = search.matches
            port_matches = Const((1 << regmap.n_sessions) - 1, regmap.n_sessions)
            if walk_addresses:
                _, port_matches = self._compare(m, local_ip, local_port, remote_ip,
                                                remote_port, pick=search.bank)

        # Pass rules: unbanked registers.
        rule_entry = entry_layout(regmap, "pass_rule")
        rules = [Signal(rule_entry, name=f"pass_rule_{k}") for k in range(regmap.n_pass_rules)]
        for k, rule in enumerate(rules):
            with m.If(self.write_pass_rule.en & (self.write_pass_rule.index == k)):
                m.d.sync += rule.eq(self.write_pass_rule.entry)
        # The protocol byte (23, or 27 behind a tag) is in the headers a beat or more before
        # the ports (34 to 37) and before the end of the IPv4 header that makes a frame an
        # IP frame, the first beats at which a rule's hit counts: its compare is registered a
        # beat ahead, off the rules' one-cycle path.
        has_ports = Signal()
        m.d.sync += has_ports.eq((hdr.proto == IP_PROTO_TCP) | (hdr.proto == IP_PROTO_UDP))
        # Each rule's address and port compares are registered apart, with the beat, and
        # its hit and their OR are taken in stage 2: the compares and the OR in one cycle
        # were the whole ingress's longest path (seed 2, 8.6 ns). Both ends are compared and
        # the end the rule names picked after the compares, not ahead of them.
        ip_oks = Signal(len(rules))
        ports_oks = Signal(len(rules))
        for k, rule in enumerate(rules):
            ip_ok = Mux(rule.match_source, (hdr.ip_src ^ rule.ip) & rule.ip_mask == 0,
                        (hdr.ip_dst ^ rule.ip) & rule.ip_mask == 0)
            port_ok = Mux(rule.match_source, (hdr.src_port ^ rule.port) & rule.port_mask == 0,
                          (hdr.dst_port ^ rule.port) & rule.port_mask == 0)
            m.d.sync += [ip_oks[k].eq(rule.valid & ip_ok),
                         ports_oks[k].eq((rule.port_mask == 0) | (has_ports & port_ok))]

        valid = Signal()
        beat = Signal(parsed_layout(self._width))
        m.d.sync += [valid.eq(self.i.valid), beat.eq(self.i.payload)]
        any_rule = (ip_oks & ports_oks).any()
        hits = ip_matches & port_matches
        hdr = beat.header

        # Stage 2: the frame's session and what may pass.
        hit_now = hits.any()
        index_now = Signal(range(regmap.n_sessions))
        for k in reversed(range(regmap.n_sessions)):     # lowest index wins; limits forbid two
            with m.If(hits[k]):
                m.d.comb += index_now.eq(k)
        ip_frame = (hdr.kind == FrameKind.TCP) | (hdr.kind == FrameKind.IPV4)
        by_rule = ip_frame & any_rule

        # Per frame: the session matched when the 4-tuple is seen (or, for a frame without
        # one, and for every frame where the 4-tuple is walked, when the headers complete).
        # The pass decision (``admit``) is taken then too, so a commit's swap between the
        # 4-tuple and the headers' end cannot give the frame one table's decision and the
        # other's session (a pass unjudged, or a judged drop).
        # A frame is a session's only once its headers are complete (``complete``).
        latched = Signal()
        hit = Signal()
        complete = Signal()
        index = Signal(range(regmap.n_sessions))
        first = Cat(lane.keep & lane.first for lane in beat.lanes).any()
        last = valid & Cat(lane.keep & lane.last for lane in beat.lanes).any()
        with m.If(valid):
            with m.If(first):
                m.d.sync += [latched.eq(0), hit.eq(0), complete.eq(0)]
            found = hdr.done if self._find == "walk" else hdr.ports | hdr.done
            with m.If(found & (~latched | first)):
                m.d.sync += [latched.eq(1), hit.eq(hit_now), index.eq(index_now)]
            with m.If(hdr.done):
                m.d.sync += complete.eq(1)
        frame_hit = Mux(latched & ~first, hit & (complete | hdr.done), hdr.done & hit_now)
        frame_index = Mux(latched & ~first, index, index_now)

        drop = 0
        if self._toward_exchange:
            clean = beat.errors == 0
            session_ok = (hdr.kind == FrameKind.TCP) & frame_hit
            drop = ~((hdr.kind == FrameKind.ARP) | (clean & (session_ok | by_rule)))
            # The 4-tuple decides: a frame that is not well-formed TCP after all ends void.
            early_hit = hdr.ports & (hdr.proto == IP_PROTO_TCP) & Mux(latched & ~first, hit,
                                                                      hit_now)
            m.d.sync += [
                self.o.payload.admit.eq((hdr.kind == FrameKind.ARP) | early_hit
                                        | ((ip_frame | hdr.ports) & any_rule)),
                self.o.payload.decided.eq(hdr.ports | (hdr.kind == FrameKind.ARP) | last),
            ]

        o = self.o.payload
        m.d.sync += [
            self.o.valid.eq(valid),
            o.beat.eq(beat),
            o.session.eq(frame_index),
            o.hit.eq(frame_hit),
            o.drop.eq(last & drop),
        ]

        if self._toward_exchange:
            # Counted a cycle later, from registers: the counters' enables behind the session
            # match were the whole ingress's longest path (9.1 ns, seed 1).
            by_rule_only = ~((hdr.kind == FrameKind.ARP) |
                             ((hdr.kind == FrameKind.TCP) & frame_hit))
            passed_by_rule = Signal()
            m.d.sync += passed_by_rule.eq(last & ~drop & by_rule_only)
            live_event(m, self.count_dropped, o.drop)
            count_event(m, self.count_passed_by_rule, passed_by_rule)
        return m
