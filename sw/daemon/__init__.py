"""The host daemon: keeps the gateway alive and loaded, shadows every verdict, audits, counts
(docs/daemon.md)."""
