"""Egress: the holdback line and the in-place rewrite toward the exchange."""
