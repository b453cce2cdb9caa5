"""The demo's trading: client sessions and a small exchange, as frames on ``wiregate sim``'s
Ethernet sockets (``docs/demo.md``).

:func:`plan` writes the clients' day in advance, in the gateway's cycles: for each session
of the limit file, Enter Orders at its own pace (below its token bucket's refill), each
cancelled a little later, and the orders that break each limit (:data:`BREACHES`, a burst
that empties one session's bucket, a stack of large orders that uses up one session's
credit, a UserRefNum sent twice). :class:`Clients` logs every session in (TCP handshake,
SoupBinTCP Login) and sends the plan on the client socket, each frame asking for its planned
cycle; :class:`Exchange` reads what the gateway let through on the exchange socket and
answers: Accepted (or now and then Rejected), an execution in full or in part when the order
is marketable (a buy at or above the symbol's reference, a sell at or below), Canceled for
a Cancel of a resting order; it ignores the SoupBin ``+`` packets the gateway turned
rejected orders into.

The two ends' TCP are :class:`~wiregate.sw.proto.frames.TcpFlow` (one object keeps both
directions' sequence numbers): the gateway sees real handshakes, segments and
acknowledgements, but not a real stack's segmentation or retransmissions.
"""

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

from wiregate.sim.serve import FRAME_HEADER
from wiregate.sw.limits import PRICE_SCALE, Limits
from wiregate.sw.proto import ouch, soupbin
from wiregate.sw.proto.errors import ProtocolError
from wiregate.sw.proto.frames import Peer, TcpFlow, ip_to_int, parse_frame

__all__ = ["BREACHES", "KILL_SESSION", "Clients", "Connection", "Exchange", "Planned", "Side",
           "connect", "connections", "plan"]

CLIENT_MAC, EXCHANGE_MAC = "02:00:00:00:01:00", "02:00:00:00:00:02"
# Cycles per client order: the day's length is orders x PACE (at W = 1, 16 us per order).
PACE = 2_000
# The symbols ordinary orders trade, and how many shares per session index: small, so that
# executed notional (never released within the day) stays well inside each session's credit.
LIQUID = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "TSLA", "AMD", "JPM", "XOM", "KO",
          "INTC", "BAC", "SPY", "QQQ")
SHARES = {0: (10, 100), 1: (10, 100), 2: (5, 20), 3: (10, 30)}
# Share of the orders, per session index, each below what its bucket refills over the day
# (limits/default.yaml: 5, 5, 50 and 1 tokens a millisecond, 61 in all, and 1,450 to start
# with; a day of 3,000 orders is 48 ms of gateway time).
SHARE = {0: 0.07, 1: 0.07, 2: 0.85, 3: 0.005}
HOLD_CYCLES = (2_500, 25_000)          # how long an order may rest before its cancel
RATE_BURST = 60                        # orders back to back on the RATE session
CREDIT_STACK = 9                        # large orders on the CREDIT session


@dataclass(frozen=True)
class Breach:
    """One order that breaks a limit of limits/default.yaml."""

    reason: str
    session: int
    symbol: str
    side: str
    quantity: int
    price: str          # dollars


# Each against limits/default.yaml, by session index 0 (equities-desk-1).
BREACHES = (
    Breach("QUANTITY", 0, "GME", "B", 2_100, "22.40"),       # GME: at most 2,000 shares
    Breach("NOTIONAL", 0, "AAPL", "B", 9_000, "228.50"),     # AAPL: at most $2,000,000
    Breach("COLLAR", 0, "AAPL", "B", 100, "240.00"),         # AAPL: 3% around $228.50
    Breach("RESTRICTED", 0, "X", "B", 100, "38.50"),
    Breach("RESTRICTED", 0, "SIRI", "S", 100, "24.10"),
    Breach("UNKNOWN_SYMBOL", 0, "ZVZZT", "B", 100, "10.00"),
    Breach("POSITION", 0, "GME", "S", 100, "22.40"),         # GME: no shorting
)
DUPLICATE_SESSION, CREDIT_SESSION, KILL_SESSION, RATE_SESSION = 0, 1, 1, 3


def _price(dollars: str) -> int:
    whole, _, cents = dollars.partition(".")
    return int(whole) * PRICE_SCALE + int((cents + "0000")[:4])


@dataclass(order=True)
class Planned:
    """A client message at a planned cycle (relative to the start of trading).

    ``barrier``: instead of a message, the name of a host action the clients wait for
    before anything later is sent (``kill``, ``release``).
    """

    cycle: int
    order: int
    session: int = field(compare=False)
    message: object = field(compare=False, default=None)
    barrier: str | None = field(compare=False, default=None)


@dataclass(frozen=True)
class _Order:
    """An Enter Order before its UserRefNum is known (numbers follow the sending order);
    ``again``: send the UserRefNum of that earlier order again (DUPLICATE_REF)."""

    symbol: str
    side: str
    quantity: int
    price: int
    again: "_Order | None" = None


@dataclass(frozen=True)
class _Cancel:
    order: _Order


def plan(limits: Limits, orders: int, seed: int) -> list[Planned]:
    """The clients' day: about ``orders`` Enter Orders (and their cancels), sorted by
    cycle; see the module docstring."""
    rng = random.Random(seed)
    length = orders * PACE
    items: list[Planned] = []
    symbols = {s.symbol: s for s in limits.symbols}

    def add(cycle, session, what=None, barrier=None):
        items.append(Planned(cycle, len(items), session, what, barrier))
        return what

    def ordinary(cycle, session):
        name = rng.choice(LIQUID)
        reference = symbols[name].reference_price
        # Within 1% of the reference (inside every collar), in whole cents.
        price = reference + rng.randint(-100, 100) * reference // 10_000 // 100 * 100
        order = add(cycle, session, _Order(name, rng.choice("BS"),
                                           rng.randint(*SHARES.get(session, (10, 100))), price))
        # Cancelled a little later whatever became of it: a resting order keeps its slot of
        # the gate's open-order table (UserRefNum modulo its size) until the exchange's
        # Canceled, and a later UserRefNum on the same slot would fire CAPACITY.
        add(cycle + rng.randint(*HOLD_CYCLES), session, _Cancel(order))

    for session in limits.sessions:
        count = max(4, round(orders * SHARE.get(session.index, 0.0)))
        for k in range(count):
            ordinary(length * k // count + rng.randint(0, PACE), session.index)

    # Each limit broken once, spread over the first half of the day.
    for k, b in enumerate(BREACHES):
        add(length * (k + 1) // (2 * len(BREACHES) + 2), b.session,
            _Order(b.symbol, b.side, b.quantity, _price(b.price)))
    # A UserRefNum sent again: DUPLICATE_REF.
    at, msft = length * 3 // 5, symbols["MSFT"].reference_price
    first = add(at, DUPLICATE_SESSION, _Order("MSFT", "B", 100, msft))
    add(at + 200, DUPLICATE_SESSION, _Order("MSFT", "B", 100, msft, again=first))
    # A burst past one session's bucket: RATE (small orders, far inside its credit).
    at = length // 3
    for k in range(RATE_BURST):
        add(at + k, RATE_SESSION, _Order("KO", "B", 10, symbols["KO"].reference_price))
    # Large resting buys until the session's credit is used up (CREDIT_SESSION), then
    # cancelled, which gives the credit back.
    at, spy = length // 4, symbols["SPY"]
    price = spy.reference_price - spy.reference_price // 200      # below: it rests
    for k in range(CREDIT_STACK):
        order = add(at + k * 50, CREDIT_SESSION,
                    _Order("SPY", "B", spy.max_order_notional // 2 // price, price))
        add(at + 5_000 + k * 50, CREDIT_SESSION, _Cancel(order))
    # The operator kills one session, then releases it (wiregate kill / release --confirm);
    # the session's orders between them must be rejected, its cancels must pass.
    add(length // 2, KILL_SESSION, barrier="kill")
    for k in range(6):
        ordinary(length // 2 + 1 + 400 * k, KILL_SESSION)
    add(length // 2 + 10_000, KILL_SESSION, barrier="release")
    return _numbered(sorted(items))


def _numbered(items: list[Planned]) -> list[Planned]:
    """The OUCH messages, each session's UserRefNums rising in sending order."""
    last: Counter = Counter()
    refs: dict[int, int] = {}          # id of an _Order -> its UserRefNum
    for item in items:
        what = item.message
        if isinstance(what, _Order):
            if what.again is None:
                last[item.session] += 1
            ref = refs[id(what.again)] if what.again else last[item.session]
            refs[id(what)] = ref
            item.message = ouch.EnterOrder(
                user_ref_num=ref, side=what.side, quantity=what.quantity, symbol=what.symbol,
                price=what.price, time_in_force="0", display="Y", capacity="A",
                intermarket_sweep="N", cross_type="N", clordid=f"D{item.session}R{ref}")
        elif isinstance(what, _Cancel):
            item.message = ouch.CancelOrder(user_ref_num=refs[id(what.order)], quantity=0)
    return items


# --- Frames on a side's socket ---------------------------------------------------------------


class Side:
    """One Ethernet side of ``wiregate sim``: frames with their header, both ways."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.last_cycle = 0         # the latest cycle a frame left the gateway toward us

    def send(self, frame: bytes, cycle: int = 0) -> None:
        self.writer.write(FRAME_HEADER.pack(len(frame), 0, cycle) + frame)

    async def receive(self) -> tuple[bytes, int]:
        length, _flags, cycle = FRAME_HEADER.unpack(
            await self.reader.readexactly(FRAME_HEADER.size))
        self.last_cycle = max(self.last_cycle, cycle)
        return await self.reader.readexactly(length), cycle

    async def sessions(self, limits: Limits, toward_exchange: bool):
        """(session index, parsed frame) of every frame of a session of ``limits`` that
        arrives, until the connection closes."""
        while True:
            try:
                data, _ = await self.receive()
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            try:
                frame = parse_frame(data)
            except ProtocolError:       # ARP and the like
                continue
            s = _session_of(frame, limits, toward_exchange)
            if s is not None:
                yield s, frame


async def connect(port: int) -> Side:
    return Side(*await asyncio.open_connection("127.0.0.1", port))


@dataclass
class Connection:
    """One session's TCP connection: both ends' senders and its handshake's three frames."""

    flow: TcpFlow
    handshake: list


def connections(limits: Limits) -> dict[int, Connection]:
    """A connection per session of ``limits``, between its client and exchange endpoints."""
    out = {}
    for s in limits.sessions:
        client = Peer(CLIENT_MAC[:-2] + f"{s.index + 1:02x}", s.client.ip, s.client.port)
        flow = TcpFlow(client, Peer(EXCHANGE_MAC, s.exchange.ip, s.exchange.port),
                       client_isn=0x1000_0000 + (s.index << 20),
                       exchange_isn=0x2000_0000 + (s.index << 20))
        out[s.index] = Connection(flow, flow.handshake())
    return out


def _session_of(frame, limits: Limits, toward_exchange: bool) -> int | None:
    ends = (ip_to_int(frame.ip.src), frame.tcp.src_port, ip_to_int(frame.ip.dst),
            frame.tcp.dst_port)
    for s in limits.sessions:
        client, exchange = (s.client.ip, s.client.port), (s.exchange.ip, s.exchange.port)
        if ends == ((*client, *exchange) if toward_exchange else (*exchange, *client)):
            return s.index
    return None


# --- The clients ------------------------------------------------------------------------------


class Clients:
    """The broker's sessions on the client socket.

    Attributes
    ----------
    responses : Counter
        What the exchange sent the clients, by OUCH message name.
    sent : Counter
        Client messages sent, by name.
    """

    def __init__(self, side: Side, limits: Limits, links: dict[int, Connection]):
        self.side, self.limits, self.links = side, limits, links
        self.responses: Counter = Counter()
        self.sent: Counter = Counter()
        self._streams = {k: soupbin.PacketStream() for k in links}
        self._synack = {k: asyncio.Event() for k in links}
        self._login = {k: asyncio.Event() for k in links}

    async def listen(self) -> None:
        """Read what the gateway sends toward the clients until the connection closes."""
        async for s, frame in self.side.sessions(self.limits, toward_exchange=False):
            if frame.tcp.flags & 0x12 == 0x12:          # SYN+ACK
                self._synack[s].set()
            for packet in self._streams[s].feed(frame.payload):
                if isinstance(packet, soupbin.LoginAccepted):
                    self._login[s].set()
                elif isinstance(packet, soupbin.SequencedData):
                    self.responses[type(ouch.decode_server(packet.payload)).__name__] += 1

    async def login(self, timeout: float) -> None:
        """Each session: TCP handshake and SoupBinTCP Login, waiting for each answer."""
        for s, link in self.links.items():
            syn, _synack, ack = link.handshake
            self.side.send(syn)
            await asyncio.wait_for(self._synack[s].wait(), timeout)
            self.side.send(ack)
            self._send(s, soupbin.LoginRequest(username=f"desk{s}", password="demo",
                                               session="", sequence=1).encode())
            await asyncio.wait_for(self._login[s].wait(), timeout)

    def _send(self, s: int, payload: bytes, cycle: int = 0) -> None:
        for frame in self.links[s].flow.client.send(payload):
            self.side.send(frame, cycle)

    def send(self, item: Planned, cycle: int) -> None:
        """One planned message as a SoupBin Unsequenced Data packet, at ``cycle``."""
        self._send(item.session, soupbin.UnsequencedData(item.message.encode()).encode(),
                   cycle)
        self.sent[type(item.message).__name__] += 1


# --- The exchange -----------------------------------------------------------------------------


class Exchange:
    """A small exchange on the exchange socket (see the module docstring).

    Attributes
    ----------
    sent : Counter
        Messages sent to the clients, by OUCH name (executions split in ``full`` and
        ``partial``).
    debug : int
        SoupBin ``+`` packets received: orders the gateway rejected.
    """

    def __init__(self, side: Side, limits: Limits, links: dict[int, Connection], seed: int):
        self.side, self.limits, self.links = side, limits, links
        self.rng = random.Random(seed)
        self.reference = {s.symbol: s.reference_price for s in limits.symbols}
        self.sent: Counter = Counter()
        self.debug = 0
        self._streams = {k: soupbin.PacketStream() for k in links}
        self._books: dict[int, dict[int, int]] = {k: {} for k in links}   # ref -> open
        self._order_number = 1_000
        self._match = 5_000

    async def listen(self) -> None:
        """Answer what the gateway passes toward the exchange until the connection closes."""
        async for s, frame in self.side.sessions(self.limits, toward_exchange=True):
            if frame.tcp.flags & 0x02:                  # SYN
                self.side.send(self.links[s].handshake[1])
                continue
            for packet in self._streams[s].feed(frame.payload):
                self._packet(s, packet)

    def _reply(self, s: int, *messages) -> None:
        payload = b""
        for message in messages:
            payload += (soupbin.SequencedData(message.encode()) if hasattr(message, "LAYOUT")
                        else message).encode()
        for frame in self.links[s].flow.exchange.send(payload):
            self.side.send(frame)

    def _packet(self, s: int, packet) -> None:
        if isinstance(packet, soupbin.LoginRequest):
            self._reply(s, soupbin.LoginAccepted(session="DEMO", sequence=1))
        elif isinstance(packet, soupbin.Debug):
            self.debug += 1
        elif isinstance(packet, soupbin.UnsequencedData):
            message = ouch.decode_client(packet.payload)
            if isinstance(message, ouch.EnterOrder):
                self._enter(s, message)
            elif isinstance(message, ouch.CancelOrder):
                self._cancel(s, message)

    def _enter(self, s: int, order: ouch.EnterOrder) -> None:
        if self.rng.random() < 0.04:
            self.sent["OrderRejected"] += 1
            self._reply(s, ouch.OrderRejected(timestamp=0, user_ref_num=order.user_ref_num,
                                              reason=0x1F, clordid=order.clordid))
            return
        self._order_number += 1
        out = [ouch.OrderAccepted(
            timestamp=0, user_ref_num=order.user_ref_num, side=order.side,
            quantity=order.quantity, symbol=order.symbol, price=order.price,
            time_in_force=order.time_in_force, display="Y",
            order_reference_number=self._order_number, capacity="A", intermarket_sweep="N",
            cross_type="N", order_state="L", clordid=order.clordid)]
        open_quantity = order.quantity
        reference = self.reference.get(order.symbol, 0)
        marketable = order.price >= reference if order.side == "B" else order.price <= reference
        if marketable:
            filled = order.quantity if self.rng.random() < 0.5 else \
                self.rng.randint(1, order.quantity)
            self._match += 1
            out.append(ouch.OrderExecuted(timestamp=0, user_ref_num=order.user_ref_num,
                                          quantity=filled, price=order.price,
                                          liquidity_flag="R", match_number=self._match))
            self.sent["OrderExecuted (full)" if filled == order.quantity else
                      "OrderExecuted (partial)"] += 1
            open_quantity -= filled
        if open_quantity:
            self._books[s][order.user_ref_num] = open_quantity
        self.sent["OrderAccepted"] += 1
        self._reply(s, *out)

    def _cancel(self, s: int, cancel: ouch.CancelOrder) -> None:
        resting = self._books[s].pop(cancel.user_ref_num, 0)
        if not resting:             # filled already, or never accepted: nothing to cancel
            return
        self.sent["OrderCanceled"] += 1
        self._reply(s, ouch.OrderCanceled(timestamp=0, user_ref_num=cancel.user_ref_num,
                                          quantity=resting, reason="U"))
