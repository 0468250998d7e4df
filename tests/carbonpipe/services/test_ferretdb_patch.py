"""The embedded FerretDB is built with ``infra/ferretdb/patches.json``: an ``_id`` lookup is an
index search, not a scan of the collection (FerretDB 1.24 as released scans: its SQLite
backend filters on a different expression than the one its ``_id`` index is built on). Every
read model is addressed by ``_id`` (``spark_jobs/rollups.py``), so this is what keeps their
reads and replacements from growing with the history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.mongo import mongo_client
from carbonpipe.services.build import INFRA

pytestmark = pytest.mark.integration


def test_every_patch_names_its_reason_and_matches_go_mod() -> None:
    patches = json.loads((INFRA / "ferretdb" / "patches.json").read_text())
    go_mod = (INFRA / "ferretdb" / "go.mod").read_text()
    assert patches
    for p in patches:
        assert p["module"] in go_mod and p["old"] != p["new"] and len(p["why"]) > 40


def test_id_lookups_use_the_index(unique_topics: Settings) -> None:
    if unique_topics.mongo_uri != unique_topics.embedded_mongo_uri:
        pytest.skip("MONGO_URI names another server: the patch is the embedded FerretDB's")
    db: Any = mongo_client(unique_topics.mongo_uri)[unique_topics.mongo_db]
    db["runs"].insert_many([{"_id": f"r{i}", "n": i} for i in range(50)])
    plan = db.command("explain", {"find": "runs", "filter": {"_id": "r7"}})
    detail = " ".join(plan["queryPlanner"]["Plan"])
    assert "USING INDEX" in detail and "SCAN" not in detail, detail
    assert db["runs"].find_one({"_id": "r7"})["n"] == 7
