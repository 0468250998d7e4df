"""Config errors name the environment key and the fix, and never echo a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonpipe.core.config import ConfigError, load_settings


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
    assert s.mongo_uri == "mongodb://db.example:27017/" and not s.uses_embedded_mongo


def test_mongo_uri_prefixed_wins_and_default_is_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGO_URI", "mongodb://a/")
    monkeypatch.setenv("CARBONPIPE_MONGO_URI", "mongodb://b/")
    assert load_settings().mongo_uri == "mongodb://b/"
    monkeypatch.delenv("MONGO_URI")
    monkeypatch.delenv("CARBONPIPE_MONGO_URI")
    s = load_settings(ferretdb_port=27999)
    assert s.mongo_uri == "mongodb://127.0.0.1:27999/" and s.uses_embedded_mongo


def test_path_defaults_are_filled_from_home_once(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    assert s.cold_store_uri == str(tmp_path / "cold")
    assert s.checkpoint_uri == str(tmp_path / "checkpoints")
    assert s.spool_dir == tmp_path / "spool" and s.spark_jars_dir == tmp_path / "jars" / "spark"
    assert load_settings(home=tmp_path, cold_store_uri="hdfs://nn/c").cold_store_uri == "hdfs://nn/c"


def test_secrets_are_secret_str_and_not_dumped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONPIPE_ELECTRICITYMAPS_TOKEN", "tok-very-secret")
    s = load_settings()
    assert s.electricitymaps_token is not None
    assert s.electricitymaps_token.get_secret_value() == "tok-very-secret"
    assert "tok-very-secret" not in repr(s) and "tok-very-secret" not in str(s.model_dump())


@pytest.mark.parametrize(
    ("key", "value"),
    [("WINDOW_S", "0"), ("TRIGGER_S", "-1"), ("SAMPLE_INTERVAL_S", "0"), ("SPOOL_MAX_MB", "-5"),
     ("DASHBOARD_PORT", "70000"), ("METRICS_PARTITIONS", "0"), ("LATENESS_S", "-1")],
)  # fmt: skip
def test_numeric_settings_are_range_checked(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(f"CARBONPIPE_{key}", value)
    with pytest.raises(ConfigError, match=f"CARBONPIPE_{key}"):
        load_settings()


def test_budgets_parse_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONPIPE_BUDGETS_G", "alice=500, bob=1200.5")
    assert load_settings().budgets_g == {"alice": 500.0, "bob": 1200.5}
    for bad in ("alice:500", "alice=-3", "=4", "alice=lots"):
        monkeypatch.setenv("CARBONPIPE_BUDGETS_G", bad)
        with pytest.raises(ConfigError, match="CARBONPIPE_BUDGETS_G"):
            load_settings()


def test_the_fault_point_is_one_the_job_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt test-only fault point would make a crash test pass without any crash."""
    monkeypatch.setenv("CARBONPIPE_FAULT_EXIT_AT", "after_mongo")
    assert load_settings().fault_exit_at == "after_mongo"
    monkeypatch.setenv("CARBONPIPE_FAULT_EXIT_AT", "after_sinks")
    with pytest.raises(ConfigError, match=r"CARBONPIPE_FAULT_EXIT_AT.*after_windows_parquet"):
        load_settings()
