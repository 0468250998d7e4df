"""``carbonpipe dashboard``: serves the Streamlit app."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from carbonpipe.core.config import get_settings


def command(port: int) -> list[str]:
    app = Path(__file__).with_name("app.py")
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.port", str(port), "--server.headless", "true",
        "--server.address", "0.0.0.0", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    port = args.port or get_settings().dashboard_port
    return subprocess.call(command(port))


def register(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="serve the Streamlit dashboard")
    p.add_argument("--port", type=int)
    p.set_defaults(func=_run)
