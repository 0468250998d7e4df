"""FerretDB on PostgreSQL (``CARBONPIPE_MONGO_BACKEND=postgresql``): the setting, the commands
the service code builds, the error without PostgreSQL, and (integration) the real thing:
initdb, PostgreSQL and FerretDB started through the service code, documents written and read
through pymongo, everything stopped cleanly.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbonpipe.core.config import ConfigError, Settings, load_settings
from carbonpipe.services import build, mongo, postgres, stack
from carbonpipe.services.process import StackError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_backend_setting_is_checked_and_names_the_key() -> None:
    assert load_settings().mongo_backend == "sqlite"
    assert load_settings(mongo_backend="postgresql").mongo_backend == "postgresql"
    with pytest.raises(ConfigError, match=r"CARBONPIPE_MONGO_BACKEND.*sqlite, postgresql"):
        load_settings(mongo_backend="mysql")
    with pytest.raises(ConfigError, match="CARBONPIPE_POSTGRES_PORT"):
        load_settings(postgres_port=0)


def test_ferretdb_command_follows_the_backend(tmp_path: Path) -> None:
    binary = build.ferretdb_binary(load_settings(home=tmp_path).layout)
    binary.parent.mkdir(parents=True)
    binary.touch()
    sqlite = load_settings(home=tmp_path)
    cmd, _ = mongo._prepare(sqlite, sqlite.layout)
    assert "-handler=sqlite" in cmd and f"-dir={sqlite.layout.ferretdb}" in cmd
    pg = load_settings(home=tmp_path, mongo_backend="postgresql", postgres_port=27555)
    cmd, _ = mongo._prepare(pg, pg.layout)
    assert "-handler=postgresql" in cmd
    assert "-postgresql-url=postgres://ferretdb@127.0.0.1:27555/ferretdb" in cmd
    assert postgres.wanted(pg) and not postgres.wanted(sqlite)
    assert not postgres.wanted(pg.model_copy(update={"mongo_uri": "mongodb://elsewhere/"}))


def test_missing_postgresql_says_which_package(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres, "Path", lambda p: tmp_path / "no-postgresql")
    with pytest.raises(StackError, match=r"apt-get install -y postgresql.*postgresql-15"):
        postgres.binaries()


@pytest.fixture()
def pg_settings() -> Iterator[Settings]:
    """A private home (not under pytest's 0700 tmp folder: PostgreSQL's own user must reach
    it when we run as root) with the FerretDB binary built for this checkout."""
    if not postgres.available():
        pytest.skip(f"PostgreSQL server binaries not found: {postgres.PACKAGE_HINT}")
    default = load_settings()
    try:
        build.ensure_built(default, ["mongo"])
    except StackError as exc:
        pytest.fail(f"FerretDB could not be built: {exc}", pytrace=False)
    home = Path(tempfile.mkdtemp(prefix="carbonpipe-pg-test-"))
    home.chmod(0o755)
    (home / "bin").mkdir()
    binary = build.ferretdb_binary(default.layout)
    (home / "bin" / binary.name).symlink_to(binary.resolve())
    settings = load_settings(home=home, mongo_backend="postgresql", ferretdb_port=_free_port(),
                             postgres_port=_free_port())
    try:
        yield settings
    finally:
        stack.stop_service(settings, "mongo")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.integration
def test_postgresql_backend_round_trip(pg_settings: Settings) -> None:
    from pymongo import MongoClient, ReplaceOne

    s = pg_settings
    mongo.start_mongo(s, timeout_s=120)
    assert (s.layout.postgres / "PG_VERSION").exists()
    st = stack.status(s)
    assert st["postgres"].healthy and st["postgres"].pid
    assert st["mongo"].healthy and "ferretdb/postgresql" in st["mongo"].address

    client: MongoClient = MongoClient(s.mongo_uri, serverSelectionTimeoutMS=10_000,
                                      socketTimeoutMS=30_000)
    try:
        runs = client["carbonpipe_pg_test"]["runs"]
        runs.insert_many([{"_id": f"run-{i}", "user_id": f"u{i % 3}", "start": i}
                          for i in range(30)])  # fmt: skip
        runs.bulk_write([ReplaceOne({"_id": f"run-{i}"}, {"user_id": f"u{i % 3}", "start": i,
                                                          "v": 2}, upsert=True)
                         for i in range(25)], ordered=False)  # fmt: skip
        assert runs.find_one({"_id": "run-7"}) == {"_id": "run-7", "user_id": "u1", "start": 7,
                                                     "v": 2}  # fmt: skip
        newest = [d["start"] for d in runs.find({"user_id": "u0"}).sort("start", -1).limit(3)]
        assert newest == [27, 24, 21]
        assert runs.count_documents({"v": 2}) == 25
    finally:
        client.close()

    # a second start is a no-op; stopping "mongo" stops FerretDB, then PostgreSQL
    pids = (stack.running_pid(s, "postgres"), stack.running_pid(s, "mongo"))
    mongo.start_mongo(s)
    assert (stack.running_pid(s, "postgres"), stack.running_pid(s, "mongo")) == pids
    assert stack.stop_service(s, "mongo")
    assert stack.running_pid(s, "postgres") is None and stack.running_pid(s, "mongo") is None
    assert not postgres.healthy(s) and not mongo.healthy(s)
    assert "database system is shut down" in postgres.log_file(s.layout).read_text()

    # data survives a restart (initdb is not run again)
    mongo.start_mongo(s, timeout_s=120)
    client = MongoClient(s.mongo_uri, serverSelectionTimeoutMS=10_000)
    try:
        assert client["carbonpipe_pg_test"]["runs"].count_documents({}) == 30
    finally:
        client.close()
