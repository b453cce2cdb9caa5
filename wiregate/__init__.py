"""wiregate: an open FPGA pre-trade risk gateway for OUCH 5.0 over SoupBinTCP."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wiregate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
