"""The one configuration object, loaded once from env (prefix ``CARBONPIPE_``) and .env.

Every part (collector, feeder, Spark job, dashboard, CLI) reads its settings from here, so a
setting has exactly one name everywhere: ``CARBONPIPE_<FIELD>`` in the environment.
``MONGO_URI`` (no prefix) is honoured too, because that is what users of MongoDB expect.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMAS_DIR = REPO_ROOT / "schemas"

PROVIDER_NAMES = ("uk", "electricitymaps", "watttime", "trace", "static")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and the fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARBONPIPE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- where state lives -------------------------------------------------------------
    home: Path = Field(default=REPO_ROOT / ".carbonpipe", description="all local state")

    # --- Kafka (log of record) ---------------------------------------------------------
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    metrics_topic: str = "training.metrics"
    intensity_topic: str = "grid.intensity"
    dlq_topic: str = "training.metrics.dlq"
    metrics_partitions: int = 3

    # --- MongoDB (hot store). None -> the embedded FerretDB started by infra/ ------------
    mongo_uri: str | None = Field(default=None)
    mongo_db: str = "carbonpipe"
    ferretdb_port: int = 27018

    # --- Spark (streaming job) ----------------------------------------------------------
    spark_master: str = "local[2]"
    cold_store_uri: str | None = None  # default: <home>/cold
    checkpoint_uri: str | None = None  # default: <home>/checkpoints
    lateness_s: int = 900
    window_s: int = 60
    trigger_s: float = 2.0
    max_offsets_per_trigger: int = 2_000_000
    shuffle_partitions: int = 2
    spark_driver_memory: str = "2g"
    # Per-event Parquet archive beside the window partials. Off by default: it costs ~35 % more
    # time per event (bench/results/pipeline.json), and Kafka, the log of record, keeps them.
    cold_events: bool = False
    # Spark tasks per micro-batch read of the log; 0 = Kafka partitions x Spark's default
    # parallelism, so every core gets an equal share (3 partitions on 2 cores otherwise leave
    # one core idle for a third of each batch).
    kafka_min_partitions: int = 0
    spark_jars_dir: Path | None = None  # default: <home>/jars/spark

    # --- collector ------------------------------------------------------------------------
    sample_interval_s: float = 1.0
    sysfs_root: Path = Path("/sys")
    spool_dir: Path | None = None  # default: <home>/spool
    spool_max_mb: float = 256.0
    cpu_tdp_w: float | None = None  # override the TDP table
    ram_w_per_gb: float | None = None  # override the RAM power model
    zone: str | None = None  # grid zone of this host (e.g. GB, DE, US-CAL-CISO)
    cloud_region: str | None = None  # e.g. aws:eu-west-1, mapped to a zone
    allow_fallback_zone: str | None = None

    # --- carbon intensity providers ----------------------------------------------------
    providers: str = "trace,static"  # chain order, names from PROVIDER_NAMES
    http_timeout_s: float = 10.0
    http_retries: int = 3
    cache_ttl_s: float = 300.0
    uk_base_url: str = "https://api.carbonintensity.org.uk"
    electricitymaps_base_url: str = "https://api.electricitymap.org/v3"
    electricitymaps_token: str | None = Field(default=None, repr=False)
    watttime_base_url: str = "https://api.watttime.org"
    watttime_username: str | None = Field(default=None, repr=False)
    watttime_password: str | None = Field(default=None, repr=False)
    trace_paths: str = ""  # comma-separated extra trace files (CSV or Parquet)
    feeder_interval_s: float = 300.0
    http_backoff_s: float = 0.5  # first retry delay; doubles per retry, within http_timeout_s
    intensity_cache_dir: Path | None = None  # on-disk TTL cache; None = in-memory only
    zone_averages_path: Path = REPO_ROOT / "data" / "zone_averages.csv"  # static fallback table

    # --- dashboard -------------------------------------------------------------------------
    dashboard_port: int = 8501
    dashboard_refresh_s: float = 5.0

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, v: str) -> str:
        names = [p.strip() for p in v.split(",") if p.strip()]
        bad = [p for p in names if p not in PROVIDER_NAMES]
        if bad:
            raise ValueError(
                f"unknown provider(s) {bad}; CARBONPIPE_PROVIDERS takes a comma-separated "
                f"list of {', '.join(PROVIDER_NAMES)}"
            )
        return ",".join(names)

    # ------------------------------------------------------------------ derived values
    @property
    def effective_mongo_uri(self) -> str:
        uri = self.mongo_uri or os.environ.get("MONGO_URI")
        return uri or f"mongodb://127.0.0.1:{self.ferretdb_port}/"

    @property
    def uses_embedded_mongo(self) -> bool:
        return not (self.mongo_uri or os.environ.get("MONGO_URI"))

    @property
    def cold_uri(self) -> str:
        return self.cold_store_uri or str(self.home / "cold")

    @property
    def checkpoints(self) -> str:
        return self.checkpoint_uri or str(self.home / "checkpoints")

    @property
    def jars_dir(self) -> Path:
        return self.spark_jars_dir or (self.home / "jars" / "spark")

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or (self.home / "spool")

    @property
    def provider_chain(self) -> list[str]:
        return [p for p in self.providers.split(",") if p]


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's error into one that names the env key and the fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = "CARBONPIPE_" + "_".join(str(p) for p in err["loc"]).upper()
            secret = any(w in key for w in ("TOKEN", "PASSWORD", "KEY", "SECRET"))
            got = "<redacted>" if secret else repr(err.get("input"))
            lines.append(f"{key}: {err['msg']} (got {got})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
