"""Config errors name the environment key and the fix, and never echo a secret."""

from __future__ import annotations

import pytest

from carbonpipe.config import ConfigError, load_settings


def test_a_bad_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONPIPE_LATENESS_S", "fifteen minutes")
    with pytest.raises(ConfigError, match="CARBONPIPE_LATENESS_S"):
        load_settings()


def test_an_unknown_provider_lists_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONPIPE_PROVIDERS", "trace,geoip")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "CARBONPIPE_PROVIDERS" in str(err.value) and "electricitymaps" in str(err.value)


def test_secrets_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONPIPE_WATTTIME_PASSWORD", "hunter2-very-secret")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    with pytest.raises(ConfigError) as err:
        load_settings(watttime_password=["hunter2-very-secret"])
    assert "hunter2" not in str(err.value) and "CARBONPIPE_WATTTIME_PASSWORD" in str(err.value)


def test_mongo_uri_without_prefix_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARBONPIPE_MONGO_URI", raising=False)
    monkeypatch.setenv("MONGO_URI", "mongodb://db.example:27017/")
    s = load_settings()
    assert s.effective_mongo_uri == "mongodb://db.example:27017/" and not s.uses_embedded_mongo
