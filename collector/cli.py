"""``carbonpipe collect``: wrap a command, or attach to a running pid.

    carbonpipe collect --run-id R --user U --model M [--zone Z] [--interval 1]
                       [--tag k=v ...] [--stdout] -- CMD ...     # returns CMD's exit code
    carbonpipe collect --run-id R --user U --model M --pid N    # until N exits or SIGTERM
    carbonpipe collect --flush-spool                            # send leftovers of past runs

SIGTERM/SIGINT stop the collection cleanly: a final ``end`` event, spool flushed. In wrap
mode SIGTERM is forwarded to CMD and collection ends when CMD does; SIGINT is not
forwarded, because the terminal already delivers Ctrl-C to CMD (same process group).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ACTIVE_ENV = "CARBONPIPE_COLLECTOR_ACTIVE"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "collect",
        help="measure energy of a training command or process",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run-id")
    p.add_argument("--user", dest="user_id")
    p.add_argument("--model", dest="model_name")
    p.add_argument("--zone", help="grid zone (else CARBONPIPE_ZONE / CARBONPIPE_CLOUD_REGION)")
    p.add_argument("--interval", type=float, help="seconds between samples (default 1)")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="K=V",
        help="extra event field, e.g. rank=0 or schedule_decision_id=abc",
    )
    p.add_argument("--stdout", action="store_true", help="JSON lines to stdout, not Kafka")
    p.add_argument("--pid", type=int, help="attach to a running process (and its children)")
    p.add_argument(
        "--flush-spool",
        action="store_true",
        help="send events left in the spool by earlier collectors, then exit",
    )
    # -- exporters (collector/exporters/): where teams already look ----------------------
    p.add_argument("--prometheus-port", metavar="[ADDR:]PORT",
                   help="serve /metrics (binds 127.0.0.1 unless ADDR, e.g. 0.0.0.0:9464)")
    p.add_argument("--mlflow", action="store_true",
                   help="log kWh/gCO2e to the MLflow run in MLFLOW_RUN_ID (else a new one, "
                        "exported to CMD so its mlflow.start_run() resumes it)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- command to run and measure")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from carbonpipe.core.config import ConfigError, get_settings
    from carbonpipe.core.errors import UserError
    from collector.events import parse_tags
    from collector.runner import build_collector, resolve_zone

    settings = get_settings()
    if args.flush_spool:
        return flush_spool(settings)
    cmd = list(args.cmd or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    missing = [n for n in ("run_id", "user_id", "model_name") if not getattr(args, n)]
    if missing:
        raise ConfigError("collect needs --run-id, --user and --model")
    if bool(cmd) == (args.pid is not None):
        raise ConfigError("collect needs exactly one of: -- CMD ...  or  --pid N")
    try:
        tags = parse_tags(args.tag)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    zone = resolve_zone(args.zone, settings, isolate=True)  # fail before starting anything
    common: dict[str, Any] = dict(
        run_id=args.run_id,
        user_id=args.user_id,
        model_name=args.model_name,
        zone=zone,
        interval_s=args.interval,
        tags=tags,
        stdout=args.stdout,
        zone_checked=True,
    )
    common.setdefault("observers", []).extend(_exporters(args))  # in place: others append too
    if args.pid is not None:
        if not os.path.exists(f"/proc/{args.pid}"):
            import psutil

            if not psutil.pid_exists(args.pid):
                raise UserError(f"--pid {args.pid}: no such process")
        collector = build_collector(settings, pid=args.pid, **common)
        _on_signals(lambda signum: collector.stop())
        collector.start().wait()
        return 0

    with tempfile.TemporaryDirectory(prefix="carbonpipe-") as tmp:
        progress_file = Path(tmp) / "progress"
        env = {
            **os.environ,
            "CARBONPIPE_PROGRESS_FILE": str(progress_file),
            ACTIVE_ENV: "1",
            "CARBONPIPE_RUN_ID": args.run_id,
        }
        try:
            child = subprocess.Popen(cmd, env=env)
        except OSError as exc:
            print(f"carbonpipe collect: cannot run {cmd[0]!r}: {exc}", file=sys.stderr)
            return 127
        try:
            collector = build_collector(
                settings,
                pid=child.pid,
                progress_file=progress_file,
                should_stop=lambda: child.poll() is not None,
                **common,
            )
        except BaseException:
            child.terminate()
            child.wait()
            raise

        def forward(signum: int) -> None:
            if signum == signal.SIGTERM and child.poll() is None:
                child.send_signal(signum)

        _on_signals(forward)
        collector.start()
        rc = child.wait()
        collector.stop()
    return 128 - rc if rc < 0 else rc


def _exporters(args: argparse.Namespace) -> list[Any]:
    """Started before CMD, so a bad port fails early and CMD inherits MLFLOW_RUN_ID."""
    from collector.exporters import build_exporters
    from collector.exporters.mlflow import MlflowLogger

    out: list[Any] = build_exporters(prometheus_port=getattr(args, "prometheus_port", None))
    if getattr(args, "mlflow", False):
        out.append(MlflowLogger.for_process(args.run_id))
    return out


def _on_signals(handler: Any) -> None:
    def _h(signum: int, frame: FrameType | None) -> None:
        handler(signum)

    signal.signal(signal.SIGTERM, _h)
    signal.signal(signal.SIGINT, _h)


def flush_spool(settings: Any) -> int:
    """Replay every unlocked run spool to Kafka; exit 0 when all were sent."""
    from carbonpipe.core.config import ConfigError
    from collector.publish import KafkaSink, Publisher
    from collector.runner import RunLock
    from collector.spool import Spool

    root = settings.spool_dir
    left = 0
    for run_dir in sorted(p for p in root.glob("*") if p.is_dir()) if root.exists() else []:
        try:
            lock = RunLock(run_dir)
        except ConfigError:
            continue  # a live collector owns it and replays it itself
        try:
            spool = Spool(run_dir / "segments", int(settings.spool_max_mb * 2**20))
            if spool.pending:
                sink = KafkaSink(settings.kafka_bootstrap_servers, settings.metrics_topic)
                n = Publisher(sink, spool).close(timeout_s=30.0)
                print(f"{run_dir.name}: {n} events left", file=sys.stderr)
                left += n
            else:
                spool.close()
        finally:
            lock.release()
    return 0 if left == 0 else 1
