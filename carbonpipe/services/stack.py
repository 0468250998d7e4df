"""The local stack as a whole: both services by name, their status, and bringing them up.

What callers outside this package use (the CLI, the test fixtures, the benchmarks): the
single-service modules (``kafka``, ``mongo``, ``topics``, ``build``) hold the details.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from carbonpipe.core.config import Settings
from carbonpipe.core.secrets import redact_uri
from carbonpipe.services.build import ensure_built, kafka_jars
from carbonpipe.services.kafka import KAFKA, start_kafka, stop_kafka
from carbonpipe.services.kafka import healthy as kafka_healthy
from carbonpipe.services.mongo import MONGO, start_mongo, stop_mongo
from carbonpipe.services.mongo import healthy as mongo_healthy
from carbonpipe.services.postgres import POSTGRES
from carbonpipe.services.postgres import wanted as postgres_wanted
from carbonpipe.services.process import StackError
from carbonpipe.services.service import Service, home_layout, say
from carbonpipe.services.topics import create_topics, topic_specs

__all__ = [
    "SERVICES", "ServiceStatus", "StackError", "create_topics", "ensure_built", "healthy",
    "kafka_healthy", "kafka_jars", "mongo_healthy", "running_pid", "start_kafka", "start_mongo",
    "status", "stop_all", "stop_kafka", "stop_mongo", "stop_service", "topic_specs", "up",
    "wait_ready",
]  # fmt: skip

_BY_NAME: dict[str, Service] = {s.name: s for s in (KAFKA, MONGO)}
SERVICES = tuple(_BY_NAME)  # start order; stopped in reverse
# PostgreSQL is part of "mongo" when CARBONPIPE_MONGO_BACKEND=postgresql: started before
# FerretDB, stopped after it, shown by status; not a name of its own on the command line.
_BY_NAME[POSTGRES.name] = POSTGRES


def healthy(settings: Settings, service: str) -> bool:
    return _BY_NAME[service].healthy(settings)


def running_pid(settings: Settings, service: str) -> int | None:
    """Pid of the service we started, or None (stale pid files are removed)."""
    return _BY_NAME[service].running_pid(settings)


def wait_ready(settings: Settings, services: Iterable[str] = SERVICES,
               timeout_s: float = 90.0) -> None:
    """Block until each service answers; fail fast if its process dies, naming the log."""
    for service in services:
        if service == "mongo" and postgres_wanted(settings):
            POSTGRES.wait_ready(settings, timeout_s)
        _BY_NAME[service].wait_ready(settings, timeout_s)


def stop_service(settings: Settings, service: str, timeout_s: float = 30.0) -> bool:
    """SIGTERM the process group we started, SIGKILL after ``timeout_s``; True if one ran.
    "mongo" also stops the PostgreSQL under FerretDB, if we run one."""
    stopped = _BY_NAME[service].stop(settings, timeout_s)
    if service == "mongo":
        POSTGRES.stop(settings, timeout_s)
    return stopped


def stop_all(settings: Settings, services: Iterable[str] = SERVICES) -> list[str]:
    """Stop the given services (in reverse start order); returns those that were running."""
    return [s for s in reversed(SERVICES) if s in set(services) and stop_service(settings, s)]


def up(settings: Settings, services: Iterable[str] = SERVICES, timeout_s: float = 120.0,
       spark_jars: bool = True) -> None:
    """Build what is missing, start the services and create the pipeline's topics."""
    wanted = list(services)
    # A service that already answers (e.g. docker compose's Kafka) needs no local build.
    parts = [s for s in wanted if not healthy(settings, s)]
    ensure_built(settings, [*parts, "spark"] if spark_jars else parts)
    if "kafka" in wanted:
        start_kafka(settings, timeout_s=timeout_s)
        created = create_topics(settings)
        if created:
            say(f"kafka: created topics {', '.join(created)}")
    if "mongo" in wanted:
        start_mongo(settings, timeout_s=timeout_s)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None  # ours; None when not running or run by someone else
    healthy: bool
    log: Path | None

    def line(self) -> str:
        state = "up" if self.healthy else ("starting/unhealthy" if self.pid else "down")
        who = f"pid {self.pid}" if self.pid else ("external" if self.healthy else "-")
        log = f"  log {self.log}" if self.log else ""
        return f"{self.name:8} {state:18} {self.address:32} {who}{log}"


def status(settings: Settings) -> dict[str, ServiceStatus]:
    """Per service: where it should answer, whether it does, and whether we run it."""
    lay = home_layout(settings)
    out = {s.name: ServiceStatus(s.name, s.address(settings), s.running_pid(settings),
                                 s.healthy(settings), s.log(lay))
           for s in _BY_NAME.values() if s is not MONGO or settings.uses_embedded_mongo
           if s is not POSTGRES or postgres_wanted(settings) or s.running_pid(settings)}
    if "mongo" in out:
        out["mongo"] = replace(out["mongo"], address=f"ferretdb/{settings.mongo_backend} "
                                                     f"{out['mongo'].address}")
    else:  # someone else's MongoDB (MONGO_URI): no pid, no log of ours
        out["mongo"] = ServiceStatus("mongo", redact_uri(settings.mongo_uri), None,
                                     mongo_healthy(settings), None)
    return out
