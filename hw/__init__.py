"""Gateware: Amaranth components of the gateway, one per file."""
