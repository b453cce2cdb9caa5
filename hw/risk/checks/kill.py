"""Kill: the gateway, per-session and per-symbol kill latches (model rule 5, Kill / Release)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import WORD_BITS, RegisterMap

__all__ = ["Kill", "latch_write_signature"]


def latch_write_signature(regmap: RegisterMap, scope: str) -> wiring.Signature:
    """One host write to the ``scope`` (session or symbol) kill bitmap.

    The word the host wrote to ``kill_<scope>_set`` (or, with ``release``, to
    ``kill_<scope>_release``) at entry ``index``: each 1 in ``bits`` sets (clears) the
    latch of index ``32 * index + bit``. One port carries both, so a set and a release can
    never arrive together and need ordering.
    """
    table = regmap.table(f"kill_{scope}_set")
    return wiring.Signature({
        "en": Out(1),
        "release": Out(1),
        "index": Out(range(table.depth)),
        "bits": Out(table.field("bits").width),
    })


class Kill(wiring.Component):
    """The kill latches: set by the host or by the rate trip, cleared only by the host.

    The gateway latch and the ``n_sessions`` session latches are flip-flops; the
    ``n_symbols`` symbol latches are a memory of 32-bit words laid out as the host's bitmap
    (bit ``i`` of word ``w`` is symbol ``32 w + i``), so 1024 symbols cost 32 words.

    A host write to the symbol bitmap is a read-modify-write of one word: the word is read
    in the write's cycle and written back in the next. A write every cycle, to any words,
    is taken: the memory's read ports are transparent to its write port, so a write's read
    sees the word the previous write is storing at that moment. No write is lost and the
    host side is never busy.

    In one cycle the trip applies before the host's write (the model's order: a judgment
    before a control event at the same ``t``), so a release in the trip's cycle clears
    the latch.

    Parameters
    ----------
    regmap : RegisterMap
        Gives ``n_sessions``, ``n_symbols`` and the kill bitmap tables.

    Attributes
    ----------
    gateway_write : In(en, release)
        Host write of ``kill_gateway_set`` (``release`` 0) or ``kill_gateway_release``
        (``release`` 1) with the ``gateway`` bit set.
    session_write, symbol_write : In(:func:`latch_write_signature`)
        Host writes of the session and symbol bitmaps.
    trip : In(valid, session)
        The rate trip (:class:`wiregate.hw.risk.checks.rate.Rate`): set that session's latch.
    judge : In(session, symbol, symbol_valid; kill_gateway, kill_session, kill_symbol)
        The order's session and symbol index (``symbol_valid`` 0: the order has none);
        the outputs follow one cycle later, for the inputs of the cycle before.
    gateway : Out(1)
    sessions : Out(n_sessions)
        Read-back of the gateway and session latches.
    symbol_read : In(index; bits)
        Read-back of the symbol bitmap: word ``index``, ``bits`` one cycle later.

    Latency
    -------
    One cycle for every ``judge`` output and for ``symbol_read.bits``: inputs presented in
    cycle ``p`` are answered in cycle ``p + 1`` with the latches as every write and trip up
    to and including cycle ``p`` left them. So a judgment presented in the cycle of a write,
    or any later one, sees it. ``gateway`` and ``sessions`` are registers, showing every
    write before the current cycle.
    """

    def __init__(self, regmap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._regmap = regmap
        super().__init__({
            "gateway_write": In(wiring.Signature({"en": Out(1), "release": Out(1)})),
            "session_write": In(latch_write_signature(regmap, "session")),
            "symbol_write": In(latch_write_signature(regmap, "symbol")),
            "trip": In(wiring.Signature({
                "valid": Out(1),
                "session": Out(range(regmap.n_sessions)),
            })),
            "judge": In(wiring.Signature({
                "session": Out(range(regmap.n_sessions)),
                "symbol": Out(range(regmap.n_symbols)),
                "symbol_valid": Out(1),
                "kill_gateway": In(1),
                "kill_session": In(1),
                "kill_symbol": In(1),
            })),
            "gateway": Out(1),
            "sessions": Out(regmap.n_sessions),
            "symbol_read": In(wiring.Signature({
                "index": Out(range(regmap.table("kill_symbol_set").depth)),
                "bits": In(WORD_BITS),
            })),
        })

    @property
    def regmap(self):
        return self._regmap

    def elaborate(self, platform):
        m = Module()
        regmap = self._regmap

        # Gateway and session latches: set (trip first, then the host), then release.
        gw = self.gateway_write
        with m.If(gw.en):
            m.d.sync += self.gateway.eq(~gw.release)
        sw = self.session_write
        for s in range(regmap.n_sessions):
            word, bit = divmod(s, WORD_BITS)
            with m.If(self.trip.valid & (self.trip.session == s)):
                m.d.sync += self.sessions[s].eq(1)
            with m.If(sw.en & (sw.index == word) & sw.bits[bit]):
                m.d.sync += self.sessions[s].eq(~sw.release)

        # Symbol latches: the bitmap in a memory, host writes as read-modify-write.
        depth = regmap.table("kill_symbol_set").depth
        m.submodules.symbols = symbols = memory.Memory(shape=WORD_BITS, depth=depth, init=[])
        store = symbols.write_port()
        modify = symbols.read_port(transparent_for=(store,))
        lookup = symbols.read_port(transparent_for=(store,))
        readback = symbols.read_port(transparent_for=(store,))

        # Stage 1 (the write's cycle): read the word. Stage 2: store the modified word.
        host = self.symbol_write
        release = Signal()
        bits = Signal.like(host.bits)
        m.d.sync += [
            store.en.eq(host.en),
            store.addr.eq(host.index),
            release.eq(host.release),
            bits.eq(host.bits),
        ]
        m.d.comb += [
            modify.addr.eq(host.index),
            store.data.eq(Mux(release, modify.data & ~bits, modify.data | bits)),
        ]

        def forwarded(port, index):
            """The word a read port returns, with the write being stored this cycle."""
            read_index = Signal.like(index)
            m.d.sync += read_index.eq(index)
            m.d.comb += port.addr.eq(index)
            return Mux(store.en & (store.addr == read_index), store.data, port.data)

        m.d.comb += self.symbol_read.bits.eq(forwarded(readback, self.symbol_read.index))

        judge = self.judge
        offset_bits = (WORD_BITS - 1).bit_length()      # symbol = 32 * word + bit
        word = forwarded(lookup, judge.symbol[offset_bits:])
        bit = Signal(offset_bits)
        session = Signal.like(judge.session)
        symbol_valid = Signal()
        m.d.sync += [
            bit.eq(judge.symbol[:offset_bits]),
            session.eq(judge.session),
            symbol_valid.eq(judge.symbol_valid),
        ]
        # The latch registers already hold the writes of the cycle the judgment was
        # presented in, as the forwarded symbol word does.
        m.d.comb += [
            judge.kill_gateway.eq(self.gateway),
            judge.kill_session.eq(self.sessions.bit_select(session, 1)),
            judge.kill_symbol.eq(symbol_valid & word.bit_select(bit, 1)),
        ]
        return m
