"""FerretDB 1.24 on SQLite vs on PostgreSQL, side by side (issue 12).

Starts two private embedded MongoDBs through the service code (``carbonpipe.services``), each
with its own home under /tmp and free ports: FerretDB on SQLite, and PostgreSQL + FerretDB on
PostgreSQL; the shared FerretDB on 27018 is never touched (the 100-replacement bulk below
wedges a SQLite database). Both get the same ``runs``-like collection (``--docs``
documents, one per run, ``_id`` = run id, index on ``user_id``), then, in interleaved rounds
(the backend order alternates), times:
  a. ``find_one({"_id": ...})`` and ``replace_one({"_id": ...}, ...)`` of random existing runs;
  b. one ``bulk_write`` of ``ReplaceOne`` of existing, changed documents, 25 and 50 per bulk
     (what the hot store sends) and 100 per bulk (SQLite: tried once, last, with a timeout);
  c. ``find({"user_id": X}).sort("start", -1).limit(50)``;
then (d) runs ``bench/bench_readers.py --runs N`` against each (load through the hot store's
write path, ``carbonpipe runs --json --limit 50``, ``carbonpipe users --json``).

    python bench/bench_mongo_backends.py [--docs 10000] [--rounds 5] [--readers-runs 10000]
Writes bench/results/mongo_backends.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKENDS = ("sqlite", "postgresql")
T0 = 1_767_225_600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_mongo(backend: str, binary: Path) -> Iterator[Any]:
    """An embedded MongoDB of our own on ``backend``, started and stopped by the service code."""
    from carbonpipe.core.config import load_settings
    from carbonpipe.services import mongo

    home = Path(tempfile.mkdtemp(prefix=f"cp-bench-{backend}-"))
    home.chmod(0o755)  # PostgreSQL's own user must reach <home>/postgres
    (home / "bin").mkdir()
    (home / "bin" / binary.name).symlink_to(binary)
    settings = load_settings(home=home, mongo_backend=backend, ferretdb_port=free_port(),
                             postgres_port=free_port())
    try:
        mongo.start_mongo(settings, timeout_s=120)
        yield settings
    finally:
        mongo.stop_mongo(settings)
        subprocess.run(["rm", "-rf", str(home)], check=False)


def run_doc(i: int, version: int = 0) -> dict[str, Any]:
    start = T0 + i * 517
    return {
        "_id": f"run-{i}", "run_id": f"run-{i}", "user_id": f"user-{i % 200}",
        "model_name": f"model-{i % 40}", "host": f"h{i % 50}", "zone": "GB",
        "start": start, "end": start + 360 + version, "batch_id": version,
        "energy_kwh": 0.006 + version * 1e-4, "co2_g": 1.2 + version * 0.02, "gpu_kwh": 0.0,
        "cpu_kwh": 0.006, "ram_kwh": 0.0, "n_windows": 6 + version, "ended": False,
        "tags": {"project": f"p{i % 20}", "team": f"t{i % 5}"},
        "hardware": {"cpu": "bench cpu", "gpus": [], "ram_gb": 64},
        "intensity_providers": ["bench"],
    }  # fmt: skip


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Target:
    def __init__(self, backend: str, settings: Any, n_docs: int) -> None:
        from carbonpipe.core.mongo import mongo_client

        self.backend, self.settings, self.n = backend, settings, n_docs
        self.client: Any = mongo_client(settings.mongo_uri, timeout_s=120)
        self.db_name = f"bench_backends_{uuid.uuid4().hex[:8]}"
        self.coll = self.client[self.db_name]["runs"]
        self.version = 0

    def load(self) -> float:
        t = time.perf_counter()
        for b in range(0, self.n, 1000):
            self.coll.insert_many([run_doc(i) for i in range(b, min(b + 1000, self.n))])
        self.coll.create_index("user_id")
        return time.perf_counter() - t

    def ids(self, rng: random.Random, k: int) -> list[int]:
        return rng.sample(range(self.n), k)

    def lookups(self, rng: random.Random, k: int) -> list[float]:
        out = []
        for i in self.ids(rng, k):
            t = time.perf_counter()
            doc = self.coll.find_one({"_id": f"run-{i}"})
            out.append(time.perf_counter() - t)
            assert doc and doc["run_id"] == f"run-{i}"
        return out

    def replaces(self, rng: random.Random, k: int) -> list[float]:
        self.version += 1
        out = []
        for i in self.ids(rng, k):
            t = time.perf_counter()
            res = self.coll.replace_one({"_id": f"run-{i}"}, run_doc(i, self.version),
                                        upsert=True)
            out.append(time.perf_counter() - t)
            assert res.matched_count == 1
        return out

    def bulk(self, rng: random.Random, size: int, timeout_s: float | None = None) -> float | None:
        """Seconds for one bulk of ``size`` replacements of existing documents; None: no
        answer within ``timeout_s`` (a client of its own, so the hang is bounded)."""
        from pymongo import ReplaceOne
        from pymongo.errors import PyMongoError

        from carbonpipe.core.mongo import mongo_client

        self.version += 1
        ops = [ReplaceOne({"_id": f"run-{i}"}, run_doc(i, self.version), upsert=True)
               for i in self.ids(rng, size)]  # fmt: skip
        client: Any = (mongo_client(self.settings.mongo_uri, timeout_s=timeout_s)
                       if timeout_s else self.client)  # fmt: skip
        try:
            t = time.perf_counter()
            res = client[self.db_name]["runs"].bulk_write(ops, ordered=False)
            took = time.perf_counter() - t
            assert res.matched_count == size, res.bulk_api_result
            return took
        except PyMongoError as exc:
            print(f"[bench] {self.backend}: bulk of {size} failed after "
                  f"{time.perf_counter() - t:.1f} s: {type(exc).__name__}", flush=True)
            return None
        finally:
            if client is not self.client:
                client.close()

    def by_user(self, rng: random.Random, k: int) -> list[float]:
        out = []
        for _ in range(k):
            u = rng.randrange(200)
            user = f"user-{u}"
            t = time.perf_counter()
            docs = list(self.coll.find({"user_id": user}).sort("start", -1).limit(50))
            out.append(time.perf_counter() - t)
            starts = [d["start"] for d in docs]
            assert len(docs) == min(50, len(range(u, self.n, 200))), (self.backend, user)
            assert starts == sorted(starts, reverse=True), (self.backend, user, starts)
        return out

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.drop_database(self.db_name)
        self.client.close()


def stats(xs: list[float], scale: float = 1000.0) -> dict[str, float | int]:
    """Median and range in ms (``scale``)."""
    return {"median": round(statistics.median(xs) * scale, 2), "min": round(min(xs) * scale, 2),
            "max": round(max(xs) * scale, 2), "n": len(xs)}  # fmt: skip


def readers(settings: Any, backend: str, runs: int, timeout_s: float) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp()) / "readers.json"
    env = {**os.environ, "CARBONPIPE_MONGO_URI": settings.mongo_uri,
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    cmd = [sys.executable, str(ROOT / "bench" / "bench_readers.py"), "--runs", str(runs),
           "--out", str(out), "--store", f"private embedded FerretDB ({backend})"]
    print(f"[bench] {backend}: bench_readers --runs {runs} ...", flush=True)
    t = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout_s, capture_output=True,
                             text=True)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        tail = raw.decode() if isinstance(raw, bytes) else raw
        return {"completed": False, "gave_up_after_s": round(time.perf_counter() - t),
                "progress": tail.strip().splitlines()[-3:]}
    if res.returncode != 0:
        return {"completed": False, "exit": res.returncode,
                "stderr_tail": res.stderr.strip().splitlines()[-5:]}
    return {"completed": True, **json.loads(out.read_text())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ops", type=int, default=10, help="lookups/replaces/queries per round")
    ap.add_argument("--readers-runs", type=int, default=10_000, help="0: skip bench_readers")
    ap.add_argument("--readers-timeout-s", type=float, default=1800)
    ap.add_argument("--hang-timeout-s", type=float, default=60)
    ap.add_argument("--binary", type=Path, default=ROOT / ".carbonpipe" / "bin"
                    / "ferretdb-embedded")  # fmt: skip
    ap.add_argument("--out", type=Path,
                    default=ROOT / "bench" / "results" / "mongo_backends.json")
    args = ap.parse_args()
    rng = random.Random(12)
    result: dict[str, Any] = {"scenario": {k: str(v) if isinstance(v, Path) else v
                                           for k, v in vars(args).items()},
                              "backends": {}}  # fmt: skip
    with private_mongo("sqlite", args.binary) as s_sqlite, \
            private_mongo("postgresql", args.binary) as s_pg:
        settings = {"sqlite": s_sqlite, "postgresql": s_pg}
        targets = {b: Target(b, settings[b], args.docs) for b in BACKENDS}
        res: dict[str, dict[str, Any]] = {b: {} for b in BACKENDS}
        for b, tgt in targets.items():
            res[b]["load_docs_s"] = round(tgt.load(), 2)
            print(f"[bench] {b}: {args.docs} docs loaded in {res[b]['load_docs_s']} s",
                  flush=True)
        raw: dict[str, dict[str, list[float]]] = {b: {} for b in BACKENDS}
        for r in range(args.rounds):
            order = BACKENDS if r % 2 == 0 else BACKENDS[::-1]
            for b in order:
                tgt, acc = targets[b], raw[b]
                acc.setdefault("id_lookup_ms", []).extend(tgt.lookups(rng, args.ops))
                acc.setdefault("id_replace_ms", []).extend(tgt.replaces(rng, args.ops))
                acc.setdefault("user_sort_limit50_ms", []).extend(tgt.by_user(rng, args.ops))
                for size in (25,):  # what the hot store sends
                    took = tgt.bulk(rng, size, timeout_s=args.hang_timeout_s)
                    if took is not None:
                        acc.setdefault(f"bulk{size}_replace_ms", []).append(took)
                        acc.setdefault(f"bulk{size}_per_doc_ms", []).append(took / size)
            print(f"[bench] round {r + 1}/{args.rounds} done", flush=True)
        for b in BACKENDS:
            res[b].update({k: stats(v) for k, v in raw[b].items()})
        for tgt in targets.values():
            tgt.drop()
        result["backends"] = res
        result["micro_unit"] = "ms per operation (bulk: per bulk_write, or per doc)"
        if args.readers_runs:
            for b in ("postgresql", "sqlite"):
                res[b]["bench_readers"] = readers(settings[b], b, args.readers_runs,
                                                  args.readers_timeout_s)  # fmt: skip
                print(f"[bench] {b}: {json.dumps(res[b]['bench_readers'])[:400]}", flush=True)
        # Last: a bulk that never answers wedges FerretDB (the private homes go afterwards)
        for b in BACKENDS:
            tgt = Target(b, settings[b], 1000)
            tgt.load()
            for size in (50, 100):
                took = tgt.bulk(rng, size, timeout_s=args.hang_timeout_s)
                res[b][f"bulk{size}_replace_once"] = (
                    {"answered_s": round(took, 3)} if took is not None else
                    {"answered": False, "gave_up_after_s": args.hang_timeout_s})  # fmt: skip
                if took is None:
                    break
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["machine"] = f"{os.cpu_count()} CPUs (shared), FerretDB 1.24.2, PostgreSQL 15"
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
