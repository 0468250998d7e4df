"""``MONGO_URI`` is honoured by every MongoDB client (credentials, TLS) and never shown."""

from __future__ import annotations

import re

from carbonpipe.core.config import REPO_ROOT, load_settings
from carbonpipe.core.mongo import mongo_client
from carbonpipe.core.secrets import redact_uri

URI = ("mongodb://carbon:S3cr3tPw@db.example:27017/?authSource=admin&tls=true"
       "&tlsAllowInvalidHostnames=true&replicaSet=rs0")  # fmt: skip


def test_credentials_and_tls_from_the_uri_reach_the_client() -> None:
    client = mongo_client(URI, timeout_s=1.0)  # pymongo connects lazily: no server needed
    try:
        creds = client.options.pool_options._credentials
        assert (creds.username, creds.password, creds.source) == ("carbon", "S3cr3tPw", "admin")
        assert client.options.pool_options._ssl_context is not None  # TLS on
        assert client.options.replica_set_name == "rs0"
        assert client.options.write_concern.document.get("w") == "majority"
    finally:
        client.close()


def test_every_production_client_is_built_by_the_one_helper() -> None:
    """A ``MongoClient(`` elsewhere could drop the URI's options or log it unredacted."""
    helper = REPO_ROOT / "carbonpipe" / "core" / "mongo.py"
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for pkg in ("carbonpipe", "collector", "spark_jobs", "dashboard", "bench")
        for path in (REPO_ROOT / pkg).rglob("*.py")
        if path != helper and re.search(r"\bMongoClient\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_uri_password_is_never_in_the_settings_repr() -> None:
    s = load_settings(mongo_uri=URI)
    assert s.mongo_uri == URI and "S3cr3tPw" not in repr(s) and "S3cr3tPw" not in str(s)


def test_secret_query_options_are_masked_too() -> None:
    uri = "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=pw1&authMechanismProperties=T:x"
    assert redact_uri(uri) == ("mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***"
                               "&authMechanismProperties=***")  # fmt: skip
