"""The boards wiregate builds for: Amaranth platforms and what the shell needs to know of them.

Both boards come from ``amaranth-boards``; what differs from its definitions is said where it
is changed. Port 0 of each board faces the clients, port 1 the exchange.
"""

from dataclasses import dataclass

from amaranth.build import Clock, Pins, PinsN, Resource, Subsignal
from amaranth.build.dsl import Attrs
from amaranth_boards.colorlight_5a75b_r7_0 import Colorlight_5A75B_R70Platform
from amaranth_boards.versa_ecp5 import VersaECP5Platform

__all__ = ["BOARDS", "Board", "ColorlightPlatform", "Versa5GPlatform", "board"]


# RXC is constrained at the pin (``Clock``), which amaranth-boards does not declare: a
# constraint on the signal inside the design names a net that synthesis renames.
RXC = Clock(125e6)


def _with_rxc_clock(resource: Resource, drop=()) -> Resource:
    """``resource`` with a 125 MHz clock on ``rx_clk`` and without the subsignals ``drop``."""
    ios = []
    for sub in resource.ios:
        if sub.name in drop:
            continue
        if sub.name == "rx_clk":
            sub = Subsignal("rx_clk", *sub.ios, RXC, sub.attrs)
        ios.append(sub)
    return Resource(resource.name, resource.number, *ios, resource.attrs)


def _colorlight_ports() -> list:
    # Both PHYs share MDC/MDIO (P3/T2) and the reset line (P5), and amaranth-boards lists
    # those pins in both ``eth_rgmii`` resources, so the second request would fail on pins
    # already in use: port 1 is declared without them (port 0's drive both PHYs).
    ports = [r for r in Colorlight_5A75B_R70Platform.resources if r.name == "eth_rgmii"]
    return [_with_rxc_clock(r, drop=("rst", "mdc", "mdio") if r.number == 1 else ())
            for r in ports]


class ColorlightPlatform(Colorlight_5A75B_R70Platform):
    """Colorlight 5A-75B v7.0 (LFE5U-25F-6BG256C, two Broadcom B50612D PHYs).

    As declared by amaranth-boards, but with RXC constrained and port 1 without the shared
    management and reset pins (see ``_colorlight_ports``). The one LED (P11) is also the TX pin of
    amaranth-boards' UART resource on the J19 header: a design uses one or the other.
    """

    resources = [r for r in Colorlight_5A75B_R70Platform.resources
                 if r.name != "eth_rgmii"] + _colorlight_ports()


def _versa_port1() -> Resource:
    # amaranth-boards names port 1's control pins ``tx_ctrl``/``rx_ctrl`` where port 0 (and
    # every other RGMII resource) says ``tx_ctl``/``rx_ctl``; redeclared with the usual names
    # on the same pins so both ports are requested alike.
    return Resource(
        "eth_rgmii", 1,
        Subsignal("rst", PinsN("F20", dir="o")),
        Subsignal("mdc", Pins("G19", dir="o")),
        Subsignal("mdio", Pins("H20", dir="io")),
        Subsignal("tx_clk", Pins("C20", dir="o")),
        Subsignal("tx_ctl", Pins("E19", dir="o")),
        Subsignal("tx_data", Pins("J17 J16 D19 D20", dir="o")),
        Subsignal("rx_clk", Pins("J19", dir="i"), RXC),
        Subsignal("rx_ctl", Pins("F19", dir="i")),
        Subsignal("rx_data", Pins("G18 G16 H18 H17", dir="i")),
        Attrs(IO_TYPE="LVCMOS25"),
    )


class Versa5GPlatform(VersaECP5Platform):
    """Lattice ECP5-5G Versa (LFE5UM5G-45F-8BG381C, two Marvell 88E1512 PHYs).

    amaranth-boards declares the Versa as the older LFE5UM-45F; the ECP5-5G Versa carries
    the LFE5UM5G-45F (another IDCODE, so a bitstream for one is refused by the other). Port 1
    is redeclared with consistent pin names (see ``_versa_port1``), and RXC constrained.
    """

    device = "LFE5UM5G-45F"
    resources = [r for r in VersaECP5Platform.resources if r.name != "eth_rgmii"] + [
        _with_rxc_clock(r) for r in VersaECP5Platform.resources
        if r.name == "eth_rgmii" and r.number == 0] + [_versa_port1()]


@dataclass(frozen=True)
class Board:
    """What the board top needs beyond the platform.

    Attributes
    ----------
    name : str
        The ``BOARD=`` name (also the profile name and the ``build/<board>/`` folder).
    platform : type
        The Amaranth platform class.
    clock, clock_hz : str, float
        The oscillator resource the PLL runs from, and its frequency.
    pll : tuple of int
        ``(CLKI_DIV, CLKFB_DIV, CLKOP_DIV)`` of the ECP5 EHXPLLL for 125 MHz: the VCO runs
        at 125 MHz * CLKOP_DIV = 625 MHz, inside the 400-800 MHz range.
    tx_delay, rx_delay : float
        RGMII delays added in the FPGA (``DELAYG``), seconds: LiteEth's defaults, as its
        ECP5 targets use. Not verified on hardware.
    program_args : tuple of str
        openFPGALoader's cable or board arguments for ``make program``.
    """

    name: str
    platform: type
    clock: str
    clock_hz: float
    pll: tuple
    tx_delay: float = 2e-9
    rx_delay: float = 2e-9
    program_args: tuple = ()


BOARDS = {b.name: b for b in (
    Board("colorlight-5a75b", ColorlightPlatform, "clk25", 25e6, (1, 5, 5),
          program_args=("-c", "ft232")),
    Board("versa-ecp5", Versa5GPlatform, "clk100", 100e6, (4, 5, 5),
          program_args=("-c", "ft2232")),
)}


def board(name: str) -> Board:
    """The board called ``name``, or a ValueError listing the known ones."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"Unknown board {name!r}; known: {', '.join(sorted(BOARDS))}") \
            from None
