"""``wiregate daemon``: keep a gateway alive and loaded, shadow it, audit it (docs/daemon.md)."""

import argparse
import asyncio
import logging
import signal
import sys

from wiregate.sw.audit import AuditError
from wiregate.sw.daemon.config import ConfigError, load_config
from wiregate.sw.daemon.service import Daemon
from wiregate.sw.regmap import RegmapMismatch
from wiregate.sw.transports import TARGET_FORMS, TargetError, open_target

__all__ = ["register"]

log = logging.getLogger("wiregate.daemon")

# Exit codes: 0 stopped by a signal, 1 the gateway could not be served, 2 bad configuration.
STOPPED, FAILED, BAD_CONFIG = 0, 1, 2


def register(commands: argparse._SubParsersAction) -> None:
    daemon = commands.add_parser(
        "daemon", help="keep a gateway alive and loaded, shadow every verdict, audit",
        description="Push the configured limit file, heartbeat, re-push the file when it "
                    "changes and passes the check, replay the drop copy through the model "
                    "and kill on a disagreement, write the audit log and serve metrics. "
                    "SIGTERM or SIGINT stops it after reading the drop copy to its end.")
    daemon.add_argument("--config", required=True, metavar="FILE",
                        help="the daemon's YAML configuration (docs/daemon.md)")
    daemon.add_argument("--target", metavar="URL",
                        help=f"the gateway, overriding the configuration's: {TARGET_FORMS}")
    daemon.set_defaults(handler=daemon_command)


def daemon_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return BAD_CONFIG
    target = args.target or config.target
    if target is None:
        print(f"{args.config}: no target: give --target ({TARGET_FORMS})", file=sys.stderr)
        return BAD_CONFIG
    return asyncio.run(_serve(config, target))


async def _serve(config, target: str) -> int:
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, daemon.stop)
    if config.metrics_port is not None:
        port = daemon.metrics.serve(config.metrics_host, config.metrics_port)
        # The first line on stdout names the endpoint (a script reads the port from it).
        print(f"wiregate daemon: metrics on http://{config.metrics_host}:{port}/metrics",
              flush=True)
    try:
        transport = await open_target(target)
        await daemon.run(transport)
    except (TargetError, ConnectionError, TimeoutError, RegmapMismatch) as error:
        log.error("%s: %s", target, error)
        return FAILED
    except AuditError as error:     # a writer never extends a broken chain
        log.error("the audit log is not intact; nothing was sent to the gateway: %s", error)
        return FAILED
    finally:
        daemon.metrics.close()
    return STOPPED
