"""Ingress: the receive path from the MAC to events (headers, sessions, TCP, SoupBinTCP, OUCH)."""
