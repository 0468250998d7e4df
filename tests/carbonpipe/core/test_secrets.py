"""Credentials never reach a message."""

from __future__ import annotations


def test_credentials_in_uris_are_masked_wherever_they_appear() -> None:
    from carbonpipe.core.secrets import redact_uri

    assert redact_uri("mongodb://u:hunter2@db:27017/") == "mongodb://***@db:27017/"
    text = "failed: https://me:tok@mlflow.example/api and mongodb://a:b@h/x"
    assert "hunter2" not in redact_uri("mongodb://u:hunter2@db/") and "tok" not in redact_uri(text)
    assert redact_uri("mongodb://127.0.0.1:27018/") == "mongodb://127.0.0.1:27018/"
