"""The MongoDB the pipeline writes to: the embedded FerretDB (SQLite underneath by default,
PostgreSQL with ``CARBONPIPE_MONGO_BACKEND=postgresql``), or any real MongoDB named by
``MONGO_URI``, which carbonpipe then uses and never starts.
"""

from __future__ import annotations

from pathlib import Path

from carbonpipe.core.config import Settings
from carbonpipe.core.layout import Layout
from carbonpipe.core.secrets import redact_uri
from carbonpipe.services import build, postgres
from carbonpipe.services.process import StackError
from carbonpipe.services.service import Service, say


def log_file(layout: Layout) -> Path:
    """FerretDB logs to stdout: its output file is the log to read."""
    return layout.logs / "ferretdb.log"


def healthy(settings: Settings, timeout_s: float = 2.0) -> bool:
    """A MongoDB ``ping`` succeeds against ``settings.mongo_uri``."""
    from carbonpipe.core.mongo import mongo_client

    client = mongo_client(settings.mongo_uri, timeout_s)
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def _prepare(settings: Settings, layout: Layout) -> tuple[list[str], Path]:
    binary = build.ferretdb_binary(layout)
    if not binary.exists():
        raise StackError(f"{binary} missing: run `carbonpipe up` or `make setup`")
    cmd = [str(binary), f"-listen=127.0.0.1:{settings.ferretdb_port}",
           "-log-level=error"]  # warn logs every endSessions
    if settings.mongo_backend == "postgresql":
        cmd += ["-handler=postgresql", f"-postgresql-url={postgres.url(settings)}"]
    else:
        layout.ferretdb.mkdir(parents=True, exist_ok=True)
        cmd += ["-handler=sqlite", f"-dir={layout.ferretdb}"]
    return cmd, layout.home


MONGO = Service(
    name="mongo", program="FerretDB", healthy=lambda s: healthy(s, timeout_s=1.0),
    address=lambda s: f"127.0.0.1:{s.ferretdb_port}",
    ports=lambda s: [("127.0.0.1", s.ferretdb_port)], port_setting="CARBONPIPE_FERRETDB_PORT",
    log=log_file, output=log_file, prepare=_prepare,
)


def start_mongo(settings: Settings, wait: bool = True, timeout_s: float = 60.0) -> int | None:
    """Start the embedded FerretDB (PostgreSQL first, on that backend), or do nothing when
    MONGO_URI points at a real MongoDB."""
    if not settings.uses_embedded_mongo:
        say(f"mongo: using external MongoDB {redact_uri(settings.mongo_uri)} (MONGO_URI is set)")
        return None
    if postgres.wanted(settings):
        postgres.start_postgres(settings, timeout_s=timeout_s)
    return MONGO.start(settings, wait, timeout_s)


def stop_mongo(settings: Settings) -> bool:
    """Stop FerretDB, then the PostgreSQL under it if we run one (whatever the backend setting
    says now); True if FerretDB ran."""
    stopped = MONGO.stop(settings)
    postgres.stop_postgres(settings)
    return stopped
