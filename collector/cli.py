"""``carbonpipe collect``: wrap a command, or attach to a running pid.

    carbonpipe collect -- python train.py                        # no set-up needed
    carbonpipe collect [--run-id R] [--user U] [--model M] [--zone Z] [--interval 1]
                       [--tag k=v ...] [--events FILE] [--output FILE.csv|FILE.json]
                       [--epochs N] [--resume] [--no-kafka] -- CMD ...  # returns CMD's exit code
    carbonpipe collect ... --pid N [--stdout]                    # until N exits or SIGTERM
    carbonpipe collect --flush-spool                             # send leftovers of past runs

Defaults: a generated run id (printed), the OS user, the model named after the command's
script; with no zone configured, the cited WORLD average intensity, labelled a fallback.
At the end a summary goes to stderr (kWh per device and method, gCO2e and the intensity
used, what stayed in the spool). Events never go to stdout while CMD shares it: --stdout
needs --pid; --events FILE writes JSON lines to a file as well as to Kafka.
With Kafka away (checked in ~1 s) events go to the spool and the collector still exits
within seconds of CMD; `--flush-spool` sends them later.

SIGTERM/SIGINT stop the collection cleanly: a final ``end`` event, spool flushed. In wrap
mode SIGTERM is forwarded to CMD and collection ends when CMD does; SIGINT is not
forwarded, because the terminal already delivers Ctrl-C to CMD (same process group).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ACTIVE_ENV = "CARBONPIPE_COLLECTOR_ACTIVE"
MAX_EPOCHS = 10**6


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "collect",
        help="measure energy of a training command or process",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run-id", help="default: generated from the model name and the time")
    p.add_argument("--user", dest="user_id", help="default: the OS user")
    p.add_argument("--model", dest="model_name", help="default: the command's script name")
    p.add_argument("--zone", help="grid zone (else CARBONPIPE_ZONE / CARBONPIPE_CLOUD_REGION)")
    p.add_argument("--interval", type=float, help="seconds between samples, 0.1-3600 (default 1)")
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="K=V",
        help="extra event field, e.g. rank=0 or schedule_decision_id=abc",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue a run id this host already collected"
    )
    p.add_argument(
        "--events", metavar="FILE", help="also write events as JSON lines to FILE (- = stdout, "
        "with --pid only)"
    )
    p.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="FILE",
        help="at the end: FILE.csv appends a CodeCarbon emissions.csv row, FILE.json writes "
        "the summary (repeatable)",
    )
    p.add_argument(
        "--epochs", type=int, dest="total_epochs", metavar="N",
        help="epochs the job will run (else from the framework callback): for the prediction",
    )
    p.add_argument(
        "--predict-after", type=int, default=1, metavar="N",
        help="predict the run's total after N epochs (default 1)",
    )
    p.add_argument(
        "--no-kafka", action="store_true", help="measure and report only: nothing to Kafka"
    )
    p.add_argument(
        "--stdout", action="store_true", help="JSON lines to stdout, not Kafka (--pid only)"
    )
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


def model_from_command(cmd: list[str]) -> str:
    """``python train.py`` -> train, ``python -m pkg.mod`` -> pkg.mod, ``./run.sh`` -> run."""
    if not cmd:
        return "unknown"
    args = cmd[1:] if Path(cmd[0]).name.startswith("python") else cmd[:1]
    it = iter(args)
    for arg in it:
        if arg == "-m":
            return next(it, "python")
        if arg == "-c":
            return "python-c"
        if not arg.startswith("-"):
            return Path(arg).stem or arg
    return Path(cmd[0]).name


def generated_run_id(model_name: str) -> str:
    import re
    import secrets
    import time

    slug = re.sub(r"[^A-Za-z0-9._-]", "-", model_name)[:40].strip("-") or "run"
    return f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def check_args(args: argparse.Namespace, cmd: list[str]) -> None:
    """Every flag checked before anything starts; each message names the flag and the fix."""
    from carbonpipe.core.errors import ConfigError
    from collector.runner import check_interval

    if bool(cmd) == (args.pid is not None):
        raise ConfigError("collect needs exactly one of: -- CMD ...  or  --pid N")
    check_interval(args.interval)
    if args.pid is not None and args.pid <= 0:
        raise ConfigError(f"--pid {args.pid}: give the id of a running process (> 0)")
    if args.total_epochs is not None and not 1 <= args.total_epochs <= MAX_EPOCHS:
        raise ConfigError(f"--epochs {args.total_epochs}: give 1 to {MAX_EPOCHS}")
    if not 1 <= args.predict_after <= MAX_EPOCHS:
        raise ConfigError(f"--predict-after {args.predict_after}: give 1 to {MAX_EPOCHS}")
    if cmd and args.stdout:
        raise ConfigError(
            "--stdout would mix event JSON into the command's own output; use "
            "--events FILE (JSON lines to a file; add --no-kafka to skip Kafka), or --stdout "
            "with --pid N"
        )
    if cmd and args.events == "-":
        raise ConfigError("--events - (stdout) is for --pid N only; give a file: --events FILE")
    if args.stdout and args.events == "-":
        raise ConfigError("--stdout already writes events to stdout; drop --events -")
    for out in args.output:
        if Path(out).suffix.lower() not in (".csv", ".json"):
            raise ConfigError(f"--output {out}: name a .csv (CodeCarbon row) or .json file")


def _say(text: str) -> None:
    print(f"carbonpipe collect: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import getpass

    from carbonpipe.core.config import ConfigError, get_settings
    from carbonpipe.core.errors import UserError
    from collector.events import parse_tags
    from collector.runner import build_collector, check_new_run, choose_intensity
    from collector.summary import intensity_line

    settings = get_settings()
    if args.flush_spool:
        return flush_spool(settings)
    cmd = list(args.cmd or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    check_args(args, cmd)
    try:
        tags = parse_tags(args.tag)
    except ValueError as exc:
        raise ConfigError(f"--tag: {exc}") from None
    model_name = (args.model_name or model_from_command(cmd)) if cmd else args.model_name
    if args.pid is not None and not model_name:
        model_name = _model_of_pid(args.pid)
    user_id = args.user_id or getpass.getuser()
    run_id = args.run_id
    if not run_id:
        run_id = generated_run_id(model_name)
        _say(f"run id {run_id} (generated; --run-id R to choose one)")
    intensity = choose_intensity(args.zone, settings, isolate=True)  # before anything starts
    if intensity.fallback:
        _say(
            f"charging {intensity_line(intensity)}; set --zone Z or CARBONPIPE_ZONE for "
            "your grid"
        )
    observers: list[Any] = []
    common: dict[str, Any] = dict(
        run_id=run_id,
        user_id=user_id,
        model_name=model_name,
        zone=intensity.zone,
        intensity=intensity,
        interval_s=args.interval,
        tags=tags,
        stdout=args.stdout,
        no_kafka=args.no_kafka,
        zone_checked=True,
        resume=args.resume,
        total_epochs=args.total_epochs,
        predict_after_epochs=args.predict_after,
        observers=observers,
    )
    if args.events:
        from collector.output import EventsFile

        try:
            observers.append(EventsFile(args.events))
        except OSError as exc:
            raise ConfigError(f"--events {args.events}: {exc}") from None
    observers.extend(_exporters(args))  # started before CMD: a bad port fails early
    if args.pid is not None:
        if not os.path.exists(f"/proc/{args.pid}"):
            import psutil

            if not psutil.pid_exists(args.pid):
                raise UserError(f"--pid {args.pid}: no such process")
        collector = build_collector(settings, pid=args.pid, **common)
        _on_signals(lambda signum: collector.stop())
        collector.start().wait()
        _finish(collector, args, settings)
        return 0

    with tempfile.TemporaryDirectory(prefix="carbonpipe-") as tmp:
        progress_file = Path(tmp) / "progress"
        env = {
            **os.environ,
            "CARBONPIPE_PROGRESS_FILE": str(progress_file),
            ACTIVE_ENV: "1",
            "CARBONPIPE_RUN_ID": run_id,
        }
        check_new_run(settings, run_id, args.resume)  # refuse before the job starts
        try:
            child = subprocess.Popen(cmd, env=env)
        except OSError as exc:
            for obs in observers:
                obs.close()
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
    _finish(collector, args, settings)
    return 128 - rc if rc < 0 else rc


def _model_of_pid(pid: int) -> str:
    import psutil

    try:
        return model_from_command(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return "unknown"


def _finish(collector: Any, args: argparse.Namespace, settings: Any) -> None:
    """The summary on stderr and the --output files: the result without the stack."""
    from collector.output import host_info, write_outputs
    from collector.summary import format_summary

    result = collector.result()
    if result is None:
        return
    print(format_summary(result), file=sys.stderr, flush=True)
    if args.output:
        host = host_info(settings.cloud_region)
        for err in write_outputs([Path(o) for o in args.output], result, host):
            _say(err)


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
    """Replay every unlocked run spool to Kafka; exit 0 when all were sent.

    Every folder under the spool root is a run's (``runner.safe_name``: never hidden, one
    level), including folders of older collectors without a ``run_id`` file; a folder a live
    collector holds is skipped (that collector replays it), one that cannot be read is said
    and skipped. The lost-event count of the run is kept cumulative (``RunLock``).
    """
    from carbonpipe.core.errors import CarbonpipeError
    from collector.publish import Publisher, kafka_sink
    from collector.runner import RunLock
    from collector.spool import Spool

    root = settings.spool_dir
    left = 0
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        try:
            lock = RunLock(run_dir)
        except CarbonpipeError:
            continue  # a live collector owns it and replays it itself
        label = lock.stored_run_id() or run_dir.name
        try:
            spool = Spool(run_dir / "segments", int(settings.spool_max_mb * 2**20))
            if spool.pending:
                sink = kafka_sink(settings, socket.gethostname())  # as build_collector
                pub = Publisher(sink, spool, dropped_before=lock.dropped_before())
                n = pub.close(timeout_s=30.0)
                with contextlib.suppress(OSError):  # the count only; the events are sent
                    lock.save_dropped(pub.dropped_events)
                print(f"{label}: {n} events left", file=sys.stderr)
                left += n
            else:
                spool.close()
        except OSError as exc:
            print(f"{label}: cannot read {run_dir} ({exc}); fix its permissions or disk and "
                  "run --flush-spool again", file=sys.stderr)
            left += 1
        finally:
            lock.release()
    return 0 if left == 0 else 1
