"""PostgreSQL under the embedded FerretDB, when ``CARBONPIPE_MONGO_BACKEND=postgresql``.

carbonpipe initialises a cluster in ``<home>/postgres`` on first start (one database,
``ferretdb``, trust authentication, TCP on 127.0.0.1 only, no Unix socket) and runs the
server from Debian's binaries (``/usr/lib/postgresql/<version>/bin``) under the process
supervisor like Kafka and FerretDB. PostgreSQL refuses to run as root: as root, the server,
``initdb`` and the data directory belong to the unprivileged ``postgres`` user (the one the
Debian package creates), and the server is run through ``runuser -u postgres --``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
from pathlib import Path

from carbonpipe.core.config import Settings
from carbonpipe.core.layout import Layout
from carbonpipe.services.process import StackError
from carbonpipe.services.service import Service, say

DATABASE = "ferretdb"  # the one database FerretDB stores into
ROLE = "ferretdb"  # the superuser initdb creates (trust auth on 127.0.0.1)
RUN_AS = "postgres"  # who runs the server when carbonpipe runs as root
PACKAGE_HINT = ("apt-get install -y postgresql (Debian's postgresql-15 package provides "
                "/usr/lib/postgresql/15/bin/initdb and postgres)")


def binaries() -> dict[str, str]:
    """``initdb`` and ``postgres``: from PATH, else the newest ``/usr/lib/postgresql/*/bin``."""
    found = {n: shutil.which(n) for n in ("initdb", "postgres")}
    if all(found.values()):
        return {n: str(p) for n, p in found.items()}
    def version(p: Path) -> int:
        m = re.match(r"\d+", p.parent.name)
        return int(m.group()) if m else 0
    for bin_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True):
        if (bin_dir / "initdb").exists() and (bin_dir / "postgres").exists():
            return {n: str(bin_dir / n) for n in ("initdb", "postgres")}
    raise StackError(f"PostgreSQL server binaries (initdb, postgres) not found, needed by "
                     f"CARBONPIPE_MONGO_BACKEND=postgresql: {PACKAGE_HINT}; or set "
                     "CARBONPIPE_MONGO_BACKEND=sqlite")


def available() -> bool:
    try:
        binaries()
        return True
    except StackError:
        return False


def data_dir(layout: Layout) -> Path:
    return layout.postgres


def log_file(layout: Layout) -> Path:
    """The server logs to stderr: its output file is the log to read."""
    return layout.logs / "postgres.log"


def url(settings: Settings) -> str:
    """What FerretDB's ``-postgresql-url`` gets."""
    return f"postgres://{ROLE}@127.0.0.1:{settings.postgres_port}/{DATABASE}"


def _as_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """(command prefix, user) that runs PostgreSQL's programs: ourselves unless we are root."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam(RUN_AS)
    except KeyError:
        raise StackError(
            f"PostgreSQL refuses to run as root and there is no '{RUN_AS}' user to run it as: "
            f"{PACKAGE_HINT} creates one (or `useradd --system {RUN_AS}`), or run carbonpipe "
            "as a normal user") from None
    runuser = shutil.which("runuser")
    if not runuser:
        raise StackError("running PostgreSQL as root needs runuser: apt-get install -y util-linux")
    return [runuser, "-u", RUN_AS, "--"], user


def healthy(settings: Settings, timeout_s: float = 2.0) -> bool:
    """The server accepts a login to the ``ferretdb`` database (not just an open port): sends
    the protocol's startup message and wants an authentication answer (``R``), not an error
    such as "the database system is starting up" (``E``)."""
    params = f"user\0{ROLE}\0database\0{DATABASE}\0\0".encode()
    startup = struct.pack("!ii", 8 + len(params), 196608) + params  # protocol 3.0
    try:
        with socket.create_connection(("127.0.0.1", settings.postgres_port),
                                      timeout=timeout_s) as sock:
            sock.sendall(startup)
            ok = sock.recv(1) == b"R"
            with contextlib.suppress(OSError):
                sock.sendall(b"X\0\0\0\4")  # Terminate
            return ok
    except OSError:
        return False


def _initdb(layout: Layout) -> None:
    """A fresh cluster with the ``ferretdb`` role and database, once (PG_VERSION marks it)."""
    data = data_dir(layout)
    if (data / "PG_VERSION").exists():
        return
    exe = binaries()
    prefix, user = _as_user()
    data.mkdir(parents=True, exist_ok=True)
    if user is not None:
        os.chown(data, user.pw_uid, user.pw_gid)
    os.chmod(data, 0o700)
    say(f"postgres: initdb {data}")
    steps = [
        ([*prefix, exe["initdb"], "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8",
          "--locale=C", "--no-instructions"], None),
        ([*prefix, exe["postgres"], "--single", "-D", str(data), "-c", "fsync=off", "postgres"],
         f"CREATE DATABASE {DATABASE};\n"),
    ]
    for cmd, stdin in steps:
        res = subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd="/")
        if res.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)  # half a cluster: start over next time
            hint = (f" (the '{RUN_AS}' user must be able to reach {data.parent})"
                    if user is not None else "")
            raise StackError(f"postgres: {Path(cmd[len(prefix)]).name} failed{hint}: "
                             f"{(res.stdout + res.stderr).strip()[-1500:]}")


def _prepare(settings: Settings, layout: Layout) -> tuple[list[str], Path]:
    _initdb(layout)
    prefix, _ = _as_user()
    cmd = [*prefix, binaries()["postgres"], "-D", str(data_dir(layout)),
           "-c", "listen_addresses=127.0.0.1", "-c", f"port={settings.postgres_port}",
           "-c", "unix_socket_directories=", "-c", "logging_collector=off"]
    return cmd, Path("/")  # a cwd the server's user can enter


POSTGRES = Service(
    name="postgres", program="PostgreSQL", healthy=lambda s: healthy(s, timeout_s=1.0),
    address=lambda s: f"127.0.0.1:{s.postgres_port}",
    ports=lambda s: [("127.0.0.1", s.postgres_port)], port_setting="CARBONPIPE_POSTGRES_PORT",
    log=log_file, output=log_file, prepare=_prepare,
)


def wanted(settings: Settings) -> bool:
    """FerretDB stores into a PostgreSQL of ours: the embedded MongoDB on that backend."""
    return settings.uses_embedded_mongo and settings.mongo_backend == "postgresql"


def start_postgres(settings: Settings, wait: bool = True, timeout_s: float = 60.0) -> int | None:
    return POSTGRES.start(settings, wait, timeout_s)


def stop_postgres(settings: Settings) -> bool:
    return POSTGRES.stop(settings)
