"""The board top: PLL, resets, pins and LEDs around :class:`BoardShell`."""

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from wiregate.sw.profiles import profile

from ..core import core_holdback
from ..gateway import Gateway
from .shell import BoardShell

__all__ = ["CORES", "BoardTop", "board_core"]

# What can sit between the ports: ``pass-through`` (no checks, proves the board flow) or
# ``gateway`` (the core of the board's profile with its control port, W = 1).
CORES = ("pass-through", "gateway")

CORE_HZ = 125e6
# The PHYs want their reset held for at least 10 ms after power is good: 2**21 core cycles
# are 16.8 ms.
PHY_RESET_CYCLES_LOG2 = 21
# Half a second per LED blink phase.
BLINK_LOG2 = 26


def board_core(board, core: str):
    """The core ``BoardShell`` takes for ``board``: None (the pass-through) or the
    :class:`~wiregate.hw.gateway.Gateway` built with the sizes of the board's profile."""
    if core not in CORES:
        raise ValueError(f"unknown core {core!r}; known: {', '.join(CORES)}")
    if core == "pass-through":
        return None
    return Gateway(1, profile(board.name).regmap(1, core_holdback(1)))


class BoardTop(Elaboratable):
    """Everything a bitstream holds, for one :class:`constraints.Board`.

    Clocks: the board oscillator feeds an ECP5 PLL (EHXPLLL) that makes the 125 MHz core
    clock (``sync``), which also clocks both transmitters, so TX keeps running when a link
    drops, and, with the gateway core, the risk engine's 62.5 MHz clock (``engine``, the
    PLL's second output: the same VCO divided twice as far, with the same phase, so that
    its rising edges fall on the core clock's; :mod:`wiregate.hw.risk.half_rate`). Both
    domains are held in reset until the PLL locks. Each RXC clocks its own port's receive
    side (constrained to 125 MHz here).

    LEDs (as many as the board has; the 5A-75B has one):

    - LED 0: on when both ports have a 1 Gb/s link, blinking when only one has, off when none;
    - LED 1, LED 2: port 0 (clients), port 1 (exchange) link;
    - LED 3: fail closed: a FIFO overflowed and a frame was failed closed (sticky until
      reset);
    - LED 4: (gateway) the kill latch is set.

    With the gateway core the control UART is the board's ``uart`` 0 resource; an LED on one
    of its pins (the 5A-75B's only LED is on its UART TX pin) is left to the UART.

    Parameters
    ----------
    board : constraints.Board
    mac_file : pathlib.Path
        The generated LiteEth Verilog (:func:`liteeth_gen.generate`).
    mac_module : str
        Its module name.
    core : str
        One of :data:`CORES`.
    """

    def __init__(self, board, mac_file, mac_module, core: str = "pass-through"):
        self.board = board
        self.mac_file = mac_file
        self.mac_module = mac_module
        self.core = board_core(board, core)

    def _pll(self, m, platform):
        m.submodules.clki = clki = io.Buffer("i", platform.request(self.board.clock, 0, dir="-"))
        clki_div, clkfb_div, clkop_div = self.board.pll
        assert self.board.clock_hz / clki_div * clkfb_div == CORE_HZ
        clkop, clkos = Signal(), Signal()
        locked = Signal()
        # The engine's clock only where a core has it: the pass-through has one clock.
        engine = self.core is not None
        second = {"a_FREQUENCY_PIN_CLKOS": str(CORE_HZ / 2e6),
                  "p_CLKOS_ENABLE": "ENABLED", "p_CLKOS_DIV": 2 * clkop_div,
                  "p_CLKOS_CPHASE": 2 * clkop_div - 1, "p_CLKOS_FPHASE": 0,
                  "i_ENCLKOS": 0, "o_CLKOS": clkos} if engine else {}
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(int(self.board.clock_hz / 1e6)),
            a_FREQUENCY_PIN_CLKOP=str(int(CORE_HZ / 1e6)),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_FEEDBK_PATH="CLKOP",
            p_CLKI_DIV=clki_div, p_CLKFB_DIV=clkfb_div,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=clkop_div,
            p_CLKOP_CPHASE=clkop_div - 1, p_CLKOP_FPHASE=0,
            i_CLKI=clki.i, i_CLKFB=clkop, i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0,
            i_PHASEDIR=0, i_PHASESTEP=0, i_PHASELOADREG=0, i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clkop, o_LOCK=locked, **second,
        )
        for name, clock in (("sync", clkop), ("engine", clkos))[:1 + engine]:
            m.domains += ClockDomain(name)
            m.d.comb += ClockSignal(name).eq(clock)
            m.submodules[f"reset_{name}"] = ResetSynchronizer(~locked, domain=name)

    def elaborate(self, platform):
        m = Module()
        platform.add_file(self.mac_file.name, self.mac_file.read_text())
        self._pll(m, platform)

        m.submodules.shell = shell = BoardShell(self.core, mac_module=self.mac_module)
        if self.core is not None:
            uart = platform.request("uart", 0, dir="-")
            m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
            m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
            m.d.comb += [shell.uart_rx.eq(rx.i), tx.o.eq(shell.uart_tx)]
        for n, pins in enumerate((shell.rgmii0, shell.rgmii1)):
            pads = platform.request("eth_rgmii", n, dir="-")
            for name, direction in (("rx_clk", "i"), ("rx_ctl", "i"), ("rx_data", "i"),
                                    ("tx_clk", "o"), ("tx_ctl", "o"), ("tx_data", "o")):
                # Plain buffers: the DDR registers and delays are inside the LiteEth PHY.
                m.submodules[f"rgmii{n}_{name}"] = buffer = io.Buffer(direction,
                                                                     getattr(pads, name))
                if direction == "i":
                    m.d.comb += getattr(pins, name).eq(buffer.i)
                else:
                    m.d.comb += buffer.o.eq(getattr(pins, name))
            if hasattr(pads, "rst"):
                self._phy_reset(m, pads, n)

        blink = Signal(BLINK_LOG2)
        m.d.sync += blink.eq(blink + 1)
        both, either = shell.link.all(), shell.link.any()
        leds = [both | (either & blink[-1]), shell.link[0], shell.link[1],
                shell.fail_closed, shell.kill]
        for n, value in enumerate(leds):
            if ("led", n) not in platform.resources:
                break
            try:
                pins = platform.request("led", n, dir="-")
            except ResourceError:
                continue        # its pin is the UART's
            m.submodules[f"led{n}"] = led = io.Buffer("o", pins)
            m.d.comb += led.o.eq(value)
        return m

    @staticmethod
    def _phy_reset(m, pads, n):
        # Hold the PHY in reset for its power-up time once the core clock runs; the
        # management interface is not used (the PHYs come up from their straps).
        hold = Signal(PHY_RESET_CYCLES_LOG2 + 1)
        with m.If(~hold[-1]):
            m.d.sync += hold.eq(hold + 1)
        m.submodules[f"phy{n}_rst"] = rst = io.Buffer("o", pads.rst)
        m.submodules[f"phy{n}_mdc"] = mdc = io.Buffer("o", pads.mdc)
        m.submodules[f"phy{n}_mdio"] = mdio = io.Buffer("io", pads.mdio)
        m.d.comb += [rst.o.eq(~hold[-1]), mdc.o.eq(0), mdio.oe.eq(0)]
