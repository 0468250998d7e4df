"""``carbonpipe up | down | status | clean | kafka-grant | cluster``: the local services, a
secured cluster's ACLs and the local multi-process cluster from the command line."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from carbonpipe.core.config import Settings, get_settings
from carbonpipe.services import stack
from carbonpipe.services.service import home_layout, names_arg, say


def _cmd_up(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        stack.up(settings, args.services, args.timeout, spark_jars=not args.no_spark_jars)
    except stack.StackError as exc:
        print(f"carbonpipe up: {exc}", file=sys.stderr)
        return 1
    shown = {*args.services, *(["postgres"] if "mongo" in args.services else [])}
    for st in stack.status(settings).values():
        if st.name in shown:
            print(st.line())
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    settings = get_settings()
    stopped = stack.stop_all(settings, args.services)
    for service in args.services:
        if service not in stopped:
            say(f"{service}: not running (nothing started by carbonpipe)")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    sts = stack.status(get_settings())
    for st in sts.values():
        print(st.line())
    return 0 if all(s.healthy for s in sts.values()) else 1


def clean(settings: Settings, everything: bool = False) -> list[Path]:
    """Stop what carbonpipe runs, then remove the home folder's data (``Layout.data_dirs``).

    ``everything`` also removes the built jars and binary, and the home folder itself once
    nothing else is left in it. Returns the paths removed.
    """
    from carbonpipe.services import apps  # they write into the data folders: stop them first

    apps.stop_all(settings)
    stack.stop_all(settings)
    lay = home_layout(settings)
    doomed = [*lay.data_dirs, *((lay.jars, lay.bin) if everything else ())]
    removed = [p for p in doomed if p.exists()]
    for path in removed:
        shutil.rmtree(path)
    if everything and lay.home.is_dir() and not any(lay.home.iterdir()):
        lay.home.rmdir()
        removed.append(lay.home)
    return removed


def _cmd_clean(args: argparse.Namespace) -> int:
    settings = get_settings()
    removed = clean(settings, args.all)
    for path in removed:
        print(f"  removed {path}")
    lay = home_layout(settings)
    if args.all and lay.home.exists():
        left = ", ".join(sorted(p.name for p in lay.home.iterdir()))
        print(f"  kept {lay.home}: it holds files carbonpipe did not create ({left})")
    elif not removed:
        print(f"  nothing to remove in {lay.home}")
    return 0


def _cmd_kafka_grant(args: argparse.Namespace) -> int:
    """ACLs of the host-identity model, made with the configured (admin) credentials."""
    from carbonpipe.services import acls

    settings = get_settings()
    try:
        if args.role == "host":
            topic = acls.grant_collector(settings, args.name, args.principal)
            print(f"User:{args.principal or args.name} may write {topic} (and nothing else)")
        else:
            acls.grant_job(settings, args.name)
            print(f"User:{args.name} may read the host topics and {settings.intensity_topic}, "
                  f"and write {settings.dlq_topic}")
    except (stack.StackError, ValueError) as exc:
        print(f"carbonpipe kafka-grant: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    """The local multi-process cluster (``carbonpipe.services.cluster``)."""
    from carbonpipe.services import cluster

    settings = get_settings()
    if args.action == "env":
        print("\n".join(cluster.env_lines(settings)))
        return 0
    if args.action == "fs":
        res = cluster.fs_shell(settings, args.fs_args, s3a=True)
        print(res.stdout, end="")
        print("\n".join(ln for ln in res.stderr.splitlines() if not ln.startswith("SLF4J")),
              file=sys.stderr)
        return res.returncode
    if args.action == "down":
        stopped = cluster.down(settings)
        say(f"cluster: stopped {', '.join(stopped) if stopped else 'nothing (none running)'}")
        return 0
    if args.action == "up":
        try:
            cluster.up(settings, args.timeout)
        except stack.StackError as exc:
            print(f"carbonpipe cluster up: {exc}", file=sys.stderr)
            return 1
    rows = cluster.status(settings)
    for name, address, pid, ok in rows:
        state = "up" if ok else ("starting/unhealthy" if pid else "down")
        print(f"{name:15} {state:18} {address:32} {f'pid {pid}' if pid else '-'}")
    return 0 if all(ok for *_, ok in rows) else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``up``, ``down``, ``status``, ``clean`` and ``kafka-grant`` to ``carbonpipe``."""
    services = names_arg(stack.SERVICES, "service")
    up = sub.add_parser("up", help="build if needed and start Kafka + the embedded MongoDB")
    up.add_argument("--services", type=services, default=list(stack.SERVICES),
                    help="comma-separated subset of kafka,mongo (default: both)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait per service")
    up.add_argument("--no-spark-jars", action="store_true",
                    help="skip resolving Spark's Kafka connector jars")
    up.set_defaults(func=_cmd_up)

    down = sub.add_parser("down", help="stop the services `carbonpipe up` started")
    down.add_argument("--services", type=services, default=list(stack.SERVICES))
    down.set_defaults(func=_cmd_down)

    st = sub.add_parser("status", help="show whether Kafka and MongoDB answer (exit 1 if not)")
    st.set_defaults(func=_cmd_status)

    cl = sub.add_parser("clean", help="stop everything, then drop all data (Kafka log, "
                        "FerretDB, checkpoints, cold store, spool, logs)")
    cl.add_argument("--all", action="store_true",
                    help="also drop the built jars and FerretDB binary (next start rebuilds)")
    cl.set_defaults(func=_cmd_clean)

    cu = sub.add_parser("cluster", help="the local multi-process cluster: 3 Kafka brokers, "
                        "Spark master + workers, HDFS (state in <home>/cluster/)")
    cu.add_argument("action", choices=("up", "down", "status", "env", "fs"),
                    help="env: the exports that point carbonpipe and spark-submit at it; "
                    "fs: `hadoop fs` on its HDFS (e.g. cluster fs -ls -R /carbonpipe) or s3a://")
    cu.add_argument("fs_args", nargs=argparse.REMAINDER, help="fs: the FsShell arguments")
    cu.add_argument("--timeout", type=float, default=180.0, help="seconds to wait per process")
    cu.set_defaults(func=_cmd_cluster)

    kg = sub.add_parser("kafka-grant", help="create Kafka ACLs for a collector host or the "
                        "streaming job (CARBONPIPE_KAFKA_* must authenticate as a super user)")
    kg.add_argument("role", choices=("host", "job"),
                    help="host: create the host's topic, let its principal write it only; "
                    "job: let the job's principal read host topics and write dead letters")
    kg.add_argument("name", help="the host name (role host) or the job's principal (role job)")
    kg.add_argument("--principal", help="role host: the collector's SASL user (default: the "
                    "host name)")
    kg.set_defaults(func=_cmd_kafka_grant)
