"""The stateless checks under the Amaranth simulator, each against its rule's model function.

Limits are real :class:`SymbolLimits` / :class:`SessionLimits` / :class:`GatewayLimits`,
compiled into table entries by the host's own :func:`compile_limits` and driven into the
entry ports; the model function gets the same objects (or None for a limit not loaded, whose
entry then holds random values that must be ignored). Random values are drawn around the
limits (limit - 1, limit, limit + 1), at 0 and at the ports' maxima; every vector also runs
through hand-picked edges.
"""

import gc
import itertools
import random
import warnings

import pytest
from amaranth.hdl import Shape, UnusedElaboratable, signed, unsigned
from amaranth.sim import Simulator

from wiregate.hw.risk.checks.collar import CollarCheck
from wiregate.hw.risk.checks.credit import CreditCheck
from wiregate.hw.risk.checks.notional import NotionalCheck
from wiregate.hw.risk.checks.position import PositionCheck
from wiregate.hw.risk.checks.quantity import QuantityCheck
from wiregate.hw.tables import entry_layout
from wiregate.sw.limits import (
    OUCH_MAX_PRICE,
    OUCH_MAX_QUANTITY,
    RATE_BURST_BITS,
    RATE_REFILL_BITS,
    RATE_TRIP_BITS,
    Endpoint,
    GatewayLimits,
    Limits,
    RateLimit,
    SessionLimits,
    SymbolLimits,
)
from wiregate.sw.model import (
    Exposure,
    collar_fires,
    credit_fires,
    notional_fires,
    position_fires,
    quantity_fires,
)
from wiregate.sw.regmap import RegisterMap
from wiregate.sw.tables import compile_limits

# One entry of each table is all a check sees; the entry layouts do not depend on sizes.
REGMAP = RegisterMap(n_sessions=1, n_symbols=1, symbol_slots=8)
U32, U64 = (1 << 32) - 1, (1 << 64) - 1
# The widest reference and band the symbol limits hold (an OUCH price fits 31 bits).
U31 = (1 << REGMAP.table("symbol_limits").field("collar").width) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1
N_RANDOM = 2500


def near(rng, pivots, lo=0, hi=U32):
    """A value in ``lo..hi``: mostly next to a pivot (-1, 0, +1), else an end or uniform."""
    roll = rng.random()
    if roll < 0.6:
        value = rng.choice(pivots) + rng.choice((-1, 0, 1))
    elif roll < 0.8:
        value = rng.choice((lo, hi, 0))
    else:
        value = rng.randint(lo, hi)
    return min(max(value, lo), hi)


def around(*pivots, lo=0, hi=U32):
    """Every pivot and its neighbours, within ``lo..hi``, for the hand-picked edges."""
    return sorted({min(max(p + d, lo), hi) for p in pivots for d in (-1, 0, 1)})


def symbol_limits(rng, **fields):
    values = {name: rng.choice((0, 1, U32, rng.getrandbits(32)))
              for name in ("max_order_quantity", "max_long", "max_short")}
    values |= {name: rng.choice((0, 1, U31, rng.getrandbits(31)))
               for name in ("reference_price", "collar")}
    values["max_order_notional"] = rng.choice((0, 1, U64, rng.getrandbits(64)))
    values |= fields
    return SymbolLimits(index=0, symbol="WG", restricted=rng.random() < 0.5, **values)


def session_limits(rng, **fields):
    values = {"max_order_quantity": rng.choice((0, 1, U32, rng.getrandbits(32))),
              "max_order_notional": rng.choice((0, 1, U64, rng.getrandbits(64))),
              "credit": rng.choice((0, 1, U64, rng.getrandbits(64)))} | fields
    return SessionLimits(index=0, name="s0", client=Endpoint(0x0A000001, 40001),
                         exchange=Endpoint(0x0A000002, 50001),
                         rate=RateLimit(burst=rng.getrandbits(RATE_BURST_BITS),
                                        refill_us=rng.getrandbits(RATE_REFILL_BITS),
                                        trip_after=rng.getrandbits(RATE_TRIP_BITS)), **values)


def gateway_limits(rng, **fields):
    values = {"credit": rng.getrandbits(64), "heartbeat_timeout_us": rng.getrandbits(32),
              "reference_max_age_us": rng.getrandbits(32)} | fields
    return GatewayLimits(**values)


def entries(rng, symbol=None, session=None, gateway=None, stamp=0):
    """The three limit entries as the host compiles them: (symbol, session, gateway)."""
    image = compile_limits(Limits(gateway=gateway or gateway_limits(rng),
                                  sessions=(session or session_limits(rng),),
                                  symbols=(symbol or symbol_limits(rng),)),
                           REGMAP, reference_stamp_us=stamp)
    return (image.entries["symbol_limits"][0], image.entries["session_limits"][0],
            image.entries["gateway_limits"][0])


def limit_ports(rng, symbol, session):
    """Entry ports of a check that reads symbol and session entries; None is not loaded,
    and its entry then holds the limits of an unrelated random object."""
    symbol_entry, session_entry, _ = entries(rng, symbol, session)
    return {"symbol": symbol_entry, "symbol_known": symbol is not None,
            "session": session_entry, "session_loaded": session is not None}


def simulate(dut, inputs, latency):
    """Drive one input set per cycle, back to back; ``fire`` for each, in order."""
    fires = []

    async def testbench(ctx):
        for c in range(len(inputs) + latency):
            for name, value in (inputs[c].items() if c < len(inputs) else ()):
                port = getattr(dut, name)
                if isinstance(value, dict):
                    for field, field_value in value.items():
                        ctx.set(getattr(port, field), field_value)
                else:
                    ctx.set(port, value)
            if c >= latency:
                fires.append(bool(ctx.get(dut.fire)))
            if latency:
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(8e-9, if_exists=True)
    sim.add_testbench(testbench)
    sim.run()
    return fires


def check(dut, cases, seed, balanced=True):
    """Compare ``fire``, ``dut.latency`` cycles on, with the model for every (inputs,
    expected) case, one case per cycle."""
    inputs = [inputs for inputs, _ in cases]
    expected = [fires for _, fires in cases]
    got = simulate(dut, inputs, dut.latency)
    wrong = [(i, inputs[i], expected[i]) for i in range(len(cases)) if got[i] != expected[i]]
    assert not wrong, f"seed {seed}: {len(wrong)} of {len(cases)} differ, first {wrong[:3]}"
    if balanced:
        # The vectors must exercise both outcomes, or a stuck output would pass.
        fired = sum(expected)
        assert 0.1 * len(cases) < fired < 0.9 * len(cases), f"seed {seed}: {fired} fired"


def new_seed():
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    return seed


# --- QUANTITY ----------------------------------------------------------------------------


def quantity_case(rng, q, symbol, session):
    inputs = {"quantity": q} | limit_ports(rng, symbol, session)
    return inputs, quantity_fires(q, symbol, session)


def check_quantity(seed, latency, n=N_RANDOM):
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        symbol = symbol_limits(rng, max_order_quantity=near(rng, (OUCH_MAX_QUANTITY, 1000)))
        session = session_limits(rng, max_order_quantity=near(rng, (OUCH_MAX_QUANTITY, 1000)))
        q = near(rng, (symbol.max_order_quantity, session.max_order_quantity,
                       OUCH_MAX_QUANTITY, 1))
        cases.append(quantity_case(rng, q, symbol if rng.random() < 0.8 else None,
                                   session if rng.random() < 0.8 else None))
    check(QuantityCheck(REGMAP, latency), cases, seed)


@pytest.mark.parametrize("latency", [0, 1])
def test_quantity_random(latency):
    check_quantity(new_seed(), latency)


def test_quantity_edges():
    rng = random.Random(1)
    cases = []
    for q in around(0, 1, 1000, OUCH_MAX_QUANTITY, U32):
        limits = [None, *around(q)]
        for symbol_max, session_max in itertools.product(limits, limits):
            symbol = None if symbol_max is None else symbol_limits(
                rng, max_order_quantity=symbol_max)
            session = None if session_max is None else session_limits(
                rng, max_order_quantity=session_max)
            cases.append(quantity_case(rng, q, symbol, session))
    check(QuantityCheck(REGMAP), cases, seed=1, balanced=False)


# --- NOTIONAL ----------------------------------------------------------------------------


def notional_case(rng, q, p, symbol, session):
    inputs = {"quantity": q, "price": p} | limit_ports(rng, symbol, session)
    return inputs, notional_fires(q, p, symbol, session)


def check_notional(seed, latency, n=N_RANDOM):
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        q = near(rng, (1, OUCH_MAX_QUANTITY, rng.getrandbits(20)))
        p = near(rng, (1, OUCH_MAX_PRICE, rng.getrandbits(31)))
        symbol = symbol_limits(rng, max_order_notional=near(rng, (q * p,), hi=U64))
        session = session_limits(rng, max_order_notional=near(rng, (q * p,), hi=U64))
        cases.append(notional_case(rng, q, p, symbol if rng.random() < 0.8 else None,
                                   session if rng.random() < 0.8 else None))
    dut = NotionalCheck(REGMAP, latency)
    assert dut.latency == latency
    check(dut, cases, seed)


@pytest.mark.parametrize("latency", [0, 1, 2, 4, 6])
def test_notional_random(latency):
    check_notional(new_seed(), latency, n=N_RANDOM if latency == 4 else 800)


@pytest.mark.parametrize("latency", [1, 4])
def test_notional_with_the_limits_late(latency):
    # The engine's use: operands first, the limits when the product is ready. The limits of
    # each order go in latency - 1 cycles after its operands, the bit comes out 1 later.
    seed = new_seed()
    rng = random.Random(seed)
    dut = NotionalCheck(REGMAP, latency, limits_late=True)
    orders = []
    for _ in range(400):
        q = near(rng, (1, OUCH_MAX_QUANTITY, rng.getrandbits(20)))
        p = near(rng, (1, OUCH_MAX_PRICE, rng.getrandbits(31)))
        symbol = symbol_limits(rng, max_order_notional=near(rng, (q * p,), hi=U64))
        session = session_limits(rng, max_order_notional=near(rng, (q * p,), hi=U64))
        orders.append(notional_case(rng, q, p, symbol if rng.random() < 0.8 else None,
                                    session if rng.random() < 0.8 else None))
    lag = latency - 1
    seen = []

    async def testbench(ctx):
        for cycle in range(len(orders) + latency):
            if cycle < len(orders):
                inputs = orders[cycle][0]
                ctx.set(dut.quantity, inputs["quantity"])
                ctx.set(dut.price, inputs["price"])
            if 0 <= cycle - lag < len(orders):
                for name, value in orders[cycle - lag][0].items():
                    if name not in ("quantity", "price"):
                        ctx.set(getattr(dut, name), value)
            await ctx.tick()
            if cycle + 1 - latency >= 0:
                seen.append(ctx.get(dut.fire))

    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()
    expected = [int(fires) for _, fires in orders]
    assert seen[:len(orders)] == expected, f"seed {seed}"


def test_notional_edges():
    rng = random.Random(2)
    cases = []
    for q, p in itertools.product((0, 1, OUCH_MAX_QUANTITY, U32), (0, 1, OUCH_MAX_PRICE, U32)):
        limits = [None, *around(0, q * p, U64, hi=U64)]
        for symbol_max, session_max in itertools.product(limits, limits):
            symbol = None if symbol_max is None else symbol_limits(
                rng, max_order_notional=symbol_max)
            session = None if session_max is None else session_limits(
                rng, max_order_notional=session_max)
            cases.append(notional_case(rng, q, p, symbol, session))
    check(NotionalCheck(REGMAP), cases, seed=2, balanced=False)


# --- COLLAR ------------------------------------------------------------------------------


def collar_case(rng, price, symbol, gateway, stamp, now):
    symbol_entry, _, gateway_entry = entries(rng, symbol=symbol, gateway=gateway, stamp=stamp)
    inputs = {"price": price, "reference": symbol_entry["reference_price"],
              "collar": symbol_entry["collar"],
              "reference_stamp": symbol_entry["reference_stamp_us"], "now": now,
              "max_age": gateway_entry["reference_max_age_us"]}
    # As Gate._judge calls it: age is the order's time less the reference's stamp.
    return inputs, collar_fires(price, symbol.reference_price, now - stamp,
                                gateway.reference_max_age_us, symbol.collar)


def check_collar(seed, latency, n=N_RANDOM):
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        reference = near(rng, (1, OUCH_MAX_PRICE, rng.getrandbits(31)), hi=U31)
        band = near(rng, (1, reference // 20, reference), hi=U31)
        symbol = symbol_limits(rng, reference_price=reference, collar=band)
        price = near(rng, (reference - band, reference + band, reference))
        gateway = gateway_limits(rng, reference_max_age_us=near(rng, (1, 1_000_000)))
        max_age = gateway.reference_max_age_us
        stamp = near(rng, (rng.getrandbits(40),), hi=U64)
        now = min(max(stamp + near(rng, (max_age, -1), lo=-U64, hi=U64), 0), U64)
        cases.append(collar_case(rng, price, symbol, gateway, stamp, now))
    check(CollarCheck(latency), cases, seed)


@pytest.mark.parametrize("latency", [0, 1])
def test_collar_random(latency):
    check_collar(new_seed(), latency)


def test_collar_edges():
    rng = random.Random(3)
    cases = []
    for reference, band in itertools.product((0, 1, 100, OUCH_MAX_PRICE, U31), (0, 1, 5, U31)):
        symbol = symbol_limits(rng, reference_price=reference, collar=band)
        for price in around(0, reference - band, reference, reference + band):
            gateway = gateway_limits(rng, reference_max_age_us=0)
            cases.append(collar_case(rng, price, symbol, gateway, 10, 10))
    # Age around the limit, a stamp in the future, and the times' extremes.
    symbol = symbol_limits(rng, reference_price=100, collar=5)
    for max_age in (0, 1, 1000, U32):
        gateway = gateway_limits(rng, reference_max_age_us=max_age)
        for stamp, now in [(0, 0), (0, U64), (U64, 0), (U64, U64), (1 << 63, (1 << 63) - 1),
                           *((5000, 5000 + age) for age in around(max_age, hi=U64))]:
            cases.append(collar_case(rng, 100, symbol, gateway, stamp, now))
    check(CollarCheck(), cases, seed=3, balanced=False)


# --- POSITION ----------------------------------------------------------------------------


def released_share(rng, increase, top):
    """What a Replace's original releases beside an ``increase`` of at most ``top`` in all:
    nothing (an Enter) half the time, else a random share, or one above the order's own
    (no increase) a tenth of the time. Returns (brought, released)."""
    roll = rng.random()
    if roll < 0.5:
        return increase, 0
    if roll < 0.6:
        released = rng.randint(1, top)
        return rng.randint(0, released - 1), released
    released = rng.randint(0, top - increase)
    return increase + released, released


def position_case(rng, side, add, exposure, symbol, released=0):
    """``add`` the shares the order brings, ``released`` those its original releases."""
    symbol_entry = entries(rng, symbol=symbol)[0]
    inputs = {"is_buy": side == "B", "add_quantity": add, "released": released,
              "position": exposure.position,
              "working_buy": exposure.working_buy, "working_sell": exposure.working_sell,
              "max_long": symbol_entry["max_long"], "max_short": symbol_entry["max_short"]}
    increase = max(0, add - released)
    return inputs, position_fires(side, increase, exposure, symbol.max_long, symbol.max_short)


def check_position(seed, latency, n=N_RANDOM):
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        symbol = symbol_limits(rng, max_long=near(rng, (1000, 1 << 31)),
                               max_short=near(rng, (1000, 1 << 31)))
        exposure = Exposure(position=near(rng, (0, 500, -500), lo=S32_MIN, hi=S32_MAX),
                            working_buy=near(rng, (0, 300)), working_sell=near(rng, (0, 300)))
        side = rng.choice("BSTE")
        # The share increase that lands exactly on the limit, on the order's side.
        if side == "B":
            room = symbol.max_long - exposure.position - exposure.working_buy
        else:
            room = symbol.max_short + exposure.position - exposure.working_sell
        add, released = released_share(rng, near(rng, (room, 1)), U32)
        cases.append(position_case(rng, side, add, exposure, symbol, released))
    check(PositionCheck(latency), cases, seed)


@pytest.mark.parametrize("latency", [0, 1])
def test_position_random(latency):
    check_position(new_seed(), latency)


def test_position_edges():
    rng = random.Random(4)
    cases = []
    for side, position, working, limit in itertools.product(
            "BS", (S32_MIN, -1, 0, 1, S32_MAX), (0, U32), (0, U32)):
        symbol = symbol_limits(rng, max_long=limit, max_short=limit)
        exposure = Exposure(position, working, working)
        room = limit - position - working if side == "B" else limit + position - working
        for add in around(0, room, U32):
            cases.append(position_case(rng, side, add, exposure, symbol))
            # A Replace releasing the most or all but one of the shares it brings.
            for released in around(U32 - 1, 1, lo=1):
                cases.append(position_case(rng, side, add, exposure, symbol, released))
    check(PositionCheck(), cases, seed=4, balanced=False)


# --- CREDIT ------------------------------------------------------------------------------


def credit_case(rng, add, used, owner, released=0):
    """``owner`` is the SessionLimits or GatewayLimits whose cap applies, or None (the port
    then holds a random cap that must be ignored); ``add`` the notional the order brings,
    ``released`` the charge its original releases."""
    if isinstance(owner, GatewayLimits):
        entry = entries(rng, gateway=owner)[2]
    else:
        entry = entries(rng, session=owner)[1]
    inputs = {"add_notional": add, "released": released, "used": used,
              "limit": entry["credit"], "limit_loaded": owner is not None}
    increase = max(0, add - released)
    return inputs, credit_fires(increase, used, owner.credit if owner is not None else None)


def credit_owner(rng, credit):
    """A session's or the gateway's limits with this cap (the core checks both ways)."""
    if rng.random() < 0.5:
        return session_limits(rng, credit=credit)
    return gateway_limits(rng, credit=credit)


def check_credit(seed, latency, n=N_RANDOM):
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        owner = credit_owner(rng, near(rng, (1 << 40, U64 >> 1), hi=U64))
        used = near(rng, (owner.credit, 1 << 39), hi=U64)
        add, released = released_share(rng, near(rng, (owner.credit - used, 1), hi=U64), U64)
        cases.append(credit_case(rng, add, used, owner if rng.random() < 0.85 else None,
                                 released))
    check(CreditCheck(latency), cases, seed)


@pytest.mark.parametrize("latency", [0, 1])
def test_credit_random(latency):
    check_credit(new_seed(), latency)


def test_credit_edges():
    rng = random.Random(5)
    cases = []
    for credit, used in itertools.product((0, 1, 1 << 63, U64), (0, 1, 1 << 63, U64)):
        owner = credit_owner(rng, credit)
        for add in around(0, credit - used, U64, hi=U64):
            cases.append(credit_case(rng, add, used, owner))
            cases.append(credit_case(rng, add, used, None))
            for released in around(U64 - 1, 1, lo=1, hi=U64):
                cases.append(credit_case(rng, add, used, owner, released))
    check(CreditCheck(), cases, seed=5, balanced=False)


# --- Ports -------------------------------------------------------------------------------


def look(make, read):
    """``read(make())`` for a component built only to be looked at; it is collected here,
    where its "created but never used" warning is expected, not inside a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        seen = read(make())
        gc.collect()
    return seen


def port_shapes(make):
    return look(make, lambda c: {name: Shape.cast(member.shape)
                                 for name, member in c.signature.members.items()})


def test_scalar_limit_ports_match_the_regmap():
    # The core wires these from table entries: a port narrower than its field would drop
    # high bits silently.
    symbol = entry_layout(REGMAP, "symbol_limits")
    session = entry_layout(REGMAP, "session_limits")
    gateway = entry_layout(REGMAP, "gateway_limits")
    collar, position, credit = (port_shapes(CollarCheck), port_shapes(PositionCheck),
                                port_shapes(CreditCheck))
    # The reference port takes the committed reference or a host's update, the wider.
    assert collar["reference"].width == REGMAP.register("ref_price").width \
        >= Shape.cast(symbol["reference_price"].shape).width
    pairs = [(collar["collar"], symbol["collar"]),
             (collar["reference_stamp"], symbol["reference_stamp_us"]),
             (collar["max_age"], gateway["reference_max_age_us"]),
             (position["max_long"], symbol["max_long"]),
             (position["max_short"], symbol["max_short"]),
             (credit["limit"], session["credit"]), (credit["limit"], gateway["credit"])]
    for port, field in pairs:
        assert port == Shape.cast(field.shape), (port, field)


def test_value_ports_hold_every_order():
    # Widths the model's values need: any wire quantity and price, their product, a signed
    # position.
    notional = port_shapes(lambda: NotionalCheck(REGMAP))
    assert notional["quantity"] == notional["price"] == unsigned(32)
    assert 1 << notional["price"].width > OUCH_MAX_PRICE
    assert port_shapes(PositionCheck)["position"] == signed(32)
    assert port_shapes(CreditCheck)["add_notional"] == unsigned(64)


def test_default_latencies():
    # What ECP5 needs at 156.25 MHz: the compares registered, the multiplier's 3 cycles.
    for make, latency in [(lambda: QuantityCheck(REGMAP), 1), (lambda: NotionalCheck(REGMAP), 4),
                          (CollarCheck, 1), (PositionCheck, 1), (CreditCheck, 1)]:
        assert look(make, lambda c: c.latency) == latency


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: QuantityCheck(None), TypeError, "regmap must be a RegisterMap, not None"),
    (lambda: NotionalCheck("map"), TypeError, "regmap must be a RegisterMap, not 'map'"),
    (lambda: NotionalCheck(REGMAP, -1), ValueError, "Latency must be at least 0, not -1"),
    (lambda: NotionalCheck(REGMAP, 2.0), TypeError, "Latency must be an integer, not 2.0"),
    (lambda: QuantityCheck(REGMAP, 2), ValueError, "Latency must be 0 or 1, not 2"),
    (lambda: CollarCheck(-1), ValueError, "Latency must be at least 0, not -1"),
    (lambda: PositionCheck(True), TypeError, "Latency must be an integer, not True"),
    (lambda: CreditCheck("1"), TypeError, "Latency must be an integer, not '1'"),
])
def test_parameter_errors(make, error, message):
    def attempt():
        try:
            make()
        except (TypeError, ValueError) as exc:
            return type(exc), str(exc)
        return None

    assert look(attempt, lambda outcome: outcome) == (error, message)
