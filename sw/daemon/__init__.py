"""The host daemon: keeps the gateway alive and loaded, and watches it (docs/daemon.md)."""
