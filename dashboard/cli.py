"""``carbonpipe dashboard``: serves the Streamlit app.

It listens on ``CARBONPIPE_DASHBOARD_ADDRESS`` (loopback unless told otherwise) and never
sends exception details to the browser (``client.showErrorDetails none``): tracebacks stay in
the server's log (``dashboard.safe``).
"""

from __future__ import annotations

import argparse
import ipaddress
import subprocess
import sys
from pathlib import Path
from typing import Any

from carbonpipe.core.config import get_settings


def command(port: int, address: str | None = None) -> list[str]:
    app = Path(__file__).with_name("app.py")
    address = address or get_settings().dashboard_address
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.port", str(port), "--server.headless", "true",
        "--server.address", address, "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer", "--client.showErrorDetails", "none",
    ]  # fmt: skip


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _run(args: argparse.Namespace) -> int:
    if args.hash_password:
        from dashboard.auth import main

        return main()
    settings = get_settings()
    address = args.address or settings.dashboard_address
    if not is_loopback(address) and settings.dashboard_auth == "none":
        print(f"dashboard: listening on {address} without a login: anyone who reaches this "
              "port sees every run (set CARBONPIPE_DASHBOARD_AUTH=password or oidc)",
              file=sys.stderr)  # fmt: skip
    return subprocess.call(command(args.port or settings.dashboard_port, address))


def register(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="serve the Streamlit dashboard")
    p.add_argument("--port", type=int)
    p.add_argument("--address", help="interface to listen on (default "
                   "CARBONPIPE_DASHBOARD_ADDRESS, 127.0.0.1); 0.0.0.0 exposes it")
    p.add_argument("--hash-password", action="store_true",
                   help="print the hash of a password for CARBONPIPE_DASHBOARD_PASSWORDS_FILE")
    p.set_defaults(func=_run)
