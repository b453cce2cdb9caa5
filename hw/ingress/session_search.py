"""Session search: a frame's addresses (and ports) against the session table, walked."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import RegisterMap

from ..tables import entry_layout, write_signature

__all__ = ["KEY_FIELDS", "SessionSearch"]

KEY_FIELDS = ("client_ip", "exchange_ip", "client_port", "exchange_port")


class SessionSearch(wiring.Component):
    """Which sessions' entries hold a frame's key, walking the active bank's entries.

    Both banks of the session table's ``fields`` are one small memory (LUT RAM), a row per
    (bank, session): the host writes the shadow bank's row, ``swap`` makes the shadow bank
    active. ``start`` takes the key and the active bank, and in each of the next cycles
    ``per_cycle`` entries are read (a copy of the memory each) and compared with it.
    Compared at once, every entry of both banks is a compare of its own (a 97-bit 4-tuple
    is about 105 LUT4; 16 of them at 8 sessions); walked, ``per_cycle`` compares serve all.

    The bank is the one active at ``start``: a swap during the walk does not change the
    result. The host's next write after a commit (into the bank walked until then) comes
    dozens of cycles after it (the control port fetches each word in six cycles, and an
    entry is several), when every walk begun before the swap is over.

    Parameters
    ----------
    regmap : RegisterMap
        Gives ``n_sessions`` and the ``session`` entry layout.
    fields : tuple of str
        The key: which of :data:`KEY_FIELDS` are compared (an entry matches only if
        ``valid`` too).
    per_cycle : int
        Entries compared a cycle.

    Attributes
    ----------
    write : In(write port)
        The session table's shadow bank.
    swap : In(1)
        Make the shadow bank active.
    start : In(1)
        The key is in the ``fields`` inputs this cycle.
    client_ip, exchange_ip, client_port, exchange_port : In
        The frame's 4-tuple, its ends named as the entry names them (those not in
        ``fields`` are not read).
    matches : Out(n_sessions)
        Bit ``k``: entry ``k`` of the walked bank is valid and holds the key (an AND of
        registers).
    bank : Out(1)
        The walked bank.

    Latency
    -------
    ``matches`` is the last ``start``'s :attr:`latency` cycles after it (the walk, then its
    register) until the next ``start``.
    """

    def __init__(self, regmap, *, fields=KEY_FIELDS, per_cycle=1):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        if not fields or not set(fields) <= set(KEY_FIELDS):
            raise ValueError(f"fields must be some of {KEY_FIELDS}, not {fields!r}")
        if per_cycle < 1:
            raise ValueError(f"per_cycle must be at least 1, not {per_cycle!r}")
        self._regmap = regmap
        self._fields = tuple(fields)
        self._per_cycle = per_cycle
        n = regmap.n_sessions
        super().__init__({
            "write": In(write_signature(regmap, "session")),
            "swap": In(1),
            "start": In(1),
            "client_ip": In(32), "exchange_ip": In(32),
            "client_port": In(16), "exchange_port": In(16),
            "matches": Out(n),
            "bank": Out(1),
        })

    @property
    def latency(self):
        return -(-self._regmap.n_sessions // self._per_cycle) + 1

    def elaborate(self, platform):
        m = Module()
        n, p = self._regmap.n_sessions, self._per_cycle
        steps = -(-n // p)
        full = entry_layout(self._regmap, "session")
        row = data.StructLayout({name: full[name].shape for name in (*self._fields, "valid")})
        index_bits = max(1, (n - 1).bit_length())

        def address(index, b):
            return Cat(Cat(index, Const(0, index_bits))[:index_bits], b)

        active = Signal()
        with m.If(self.swap):
            m.d.sync += active.eq(~active)
        m.submodules.rows = rows = memory.Memory(shape=row, depth=2 << index_bits, init=[])
        write = rows.write_port()
        m.d.comb += [write.en.eq(self.write.en),
                     write.addr.eq(address(self.write.index.as_unsigned(), ~active)),
                     *(write.data[name].eq(self.write.entry[name]) for name in row.members)]

        wanted = Signal(data.StructLayout({name: full[name].shape for name in self._fields}))
        step = Signal(range(steps))
        walking = Signal()
        with m.If(self.start):
            m.d.sync += [*(wanted[name].eq(getattr(self, name)) for name in self._fields),
                         self.bank.eq(active), step.eq(0), walking.eq(1)]
        with m.Elif(walking):
            m.d.sync += step.eq(step + 1)
            with m.If(step == steps - 1):
                m.d.sync += walking.eq(0)
        # Each step's compares shift in at the top, a bit per field (and ``valid``) of each
        # entry read: when the walk ends, entry k's are the k-th group, ANDed on the way
        # out. The compare of a whole entry in one cycle, and a flip-flop per entry enabled
        # by its step (the step's decode behind the compare), were the block's slowest
        # paths.
        group = len(self._fields) + 1
        compares = []
        for j in range(p):
            read = rows.read_port(domain="comb")
            m.d.comb += read.addr.eq(address(step * p + j, self.bank))
            compares += [*(read.data[name] == wanted[name] for name in self._fields),
                         read.data.valid]
        walked = Signal(steps * p * group)
        with m.If(walking):
            m.d.sync += walked.eq(Cat(walked[p * group:], *compares))
        m.d.comb += self.matches.eq(Cat(walked.word_select(k, group).all() for k in range(n)))
        return m
