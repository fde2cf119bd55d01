"""Run the broker double in the foreground: ``python -m adapters.testing --port 1026``.

Handy for trying an adapter by hand without Orion-LD and MongoDB. It binds loopback unless
``--host`` is given explicitly, prints its URL, and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from adapters.testing.broker_double import BrokerDouble

_LOOPBACK = "127.0.0.1"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until a signal arrives, return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m adapters.testing",
        description="Strict in-memory NGSI-LD broker double (behaves like Orion-LD).",
    )
    parser.add_argument("--port", type=int, default=1026, help="port to listen on (0: any free one)")
    parser.add_argument(
        "--host",
        default=None,
        help=f"address to bind; default {_LOOPBACK}. Anything else must be asked for here: "
        "the double has no security and keeps whatever it is sent",
    )
    parser.add_argument(
        "--max-payload-bytes",
        type=int,
        default=1_048_576,
        help="largest request body accepted before answering 413 (Orion-LD's default: 1 MiB)",
    )
    args = parser.parse_args(argv)
    host = args.host if args.host is not None else _LOOPBACK
    if not _is_loopback(host):
        print(f"warning: listening on {host}, reachable beyond this machine", file=sys.stderr)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    broker = BrokerDouble(host, args.port, max_payload_bytes=args.max_payload_bytes)
    try:
        broker.start()
    except OSError as exc:
        print(f"error: cannot listen on {host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        print(broker.url, flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        broker.stop()
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
