"""The one configuration object, loaded once from env (prefix ``CARBONPIPE_``) and .env.

Every part (collector, feeder, Spark job, dashboard, CLI) reads its settings from here, and
nothing else reads the environment for carbonpipe's own settings: a setting has exactly one
name, ``CARBONPIPE_<FIELD>``. ``MONGO_URI`` (no prefix) is honoured too, because that is what
users of MongoDB expect. Path defaults are filled from the home folder's ``Layout`` once, so
``settings.cold_store_uri`` is always the value in force. Numeric values are range-checked.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic import model_validator as _model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from carbonpipe.core.errors import ConfigError
from carbonpipe.core.layout import Layout
from carbonpipe.core.resources import REPO_ROOT, in_checkout, resource
from carbonpipe.core.secrets import redact_uri


def _default_home() -> Path:
    """State beside the checkout (``make demo``), else the user's state folder (a pip install
    must not write into site-packages): ``$XDG_STATE_HOME/carbonpipe``, ``~/.local/state/...``.
    """
    if in_checkout():
        return REPO_ROOT / ".carbonpipe"
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "carbonpipe"


PROVIDER_NAMES = ("uk", "electricitymaps", "watttime", "trace", "static")
# Where a test may make the streaming job die (``CARBONPIPE_FAULT_EXIT_AT``), in the order a
# micro-batch reaches them: after the window partials are in Parquet, after the dead letters
# are in Kafka, inside the MongoDB write (versions written, read models not), after MongoDB
# holds the batch, after the job's own state records it. Every point is before Spark commits
# the batch, so a restart must replay it (``tests/fault``).
BATCH_FAULT_POINTS = ("after_dead_letters", "in_mongo", "after_mongo", "after_windows_parquet",
                      "after_state")  # fmt: skip
# ... and half-way through ``stream --rebuild`` (hot store dropped, cold store not yet moved),
# and after each day a rebuild counted from the per-event archive.
FAULT_POINTS = (*BATCH_FAULT_POINTS, "in_rebuild", "in_seed")
MONGO_BACKENDS = ("sqlite", "postgresql")  # what the embedded FerretDB stores into
SECRET_WORDS = ("TOKEN", "PASSWORD", "KEY", "SECRET", "WEBHOOK")

__all__ = ["REPO_ROOT", "ConfigError", "Settings", "get_settings", "load_settings"]

PositiveS = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARBONPIPE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- where state lives -------------------------------------------------------------
    home: Path = Field(default_factory=_default_home, description="all local state")
    shared_dir: Path = Field(
        default=REPO_ROOT.parent / "shared",
        description="the workplace's shared data (traces, provider bodies); may be absent",
    )

    # --- Kafka (log of record) ---------------------------------------------------------
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    metrics_topic: str = Field(default="training.metrics", min_length=1)
    intensity_topic: str = Field(default="grid.intensity", min_length=1)
    dlq_topic: str = Field(default="training.metrics.dlq", min_length=1)
    # Budget alerts (``carbonpipe alerts``): one record per crossing, keyed by its id.
    alerts_topic: str = Field(default="carbon.alerts", min_length=1)
    metrics_partitions: int = Field(default=3, ge=1, le=10_000)
    # Copies of every pipeline topic and how many must have a write before the broker acks it
    # (producers use acks=all): 1/1 on the single local broker, 3/2 on a cluster, so one
    # broker may be down without losing or refusing a write (README "On a cluster").
    kafka_replication_factor: int = Field(default=1, ge=1, le=32)
    kafka_min_insync_replicas: int = Field(default=1, ge=1, le=32)
    # Kappa: the log is the record, so ``training.metrics`` keeps everything unless told
    # otherwise (-1 = unlimited). A finite value must leave the job time to catch up after an
    # outage (at least an hour); `stream --rebuild` refuses once history has been deleted.
    metrics_retention_ms: int = Field(default=-1, ge=-1)
    # How every Kafka client (collector, feeder, job, CLI, bench) authenticates and encrypts:
    # mapped once by ``carbonpipe.core.kafka_security`` to kafka-python and Spark options.
    # PLAINTEXT (the default) is for the loopback stack only.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = Field(default=None, min_length=1)
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None  # PEM CA bundle; unset: the system's trust store
    kafka_ssl_certfile: Path | None = None  # PEM client certificate (mutual TLS)
    kafka_ssl_keyfile: Path | None = None  # PEM private key of that certificate (PKCS#8)
    kafka_ssl_key_password: SecretStr | None = None
    # Host identity (README "Security"): each collector writes ``<metrics_topic>.host.<host>``
    # (ACLs: its principal may write that topic only), the job reads them all by pattern and
    # dead-letters an event whose ``host`` is not its topic's (``host_mismatch``).
    kafka_host_topics: bool = False

    # --- MongoDB (hot store). Unset -> the embedded FerretDB started by infra/ ------------
    # May hold a password (``mongodb://user:pw@host/?tls=true``): never in ``repr``, shown only
    # through ``carbonpipe.core.secrets.redact_uri``; every client is built from it as given
    # (``carbonpipe.core.mongo.mongo_client``), so credentials and TLS options apply everywhere.
    mongo_uri: str = Field(
        default="", repr=False,
        validation_alias=AliasChoices("CARBONPIPE_MONGO_URI", "MONGO_URI", "mongo_uri"),
    )
    mongo_db: str = Field(default="carbonpipe", min_length=1)
    ferretdb_port: Port = 27018
    # What the embedded FerretDB stores into: SQLite files in <home>/ferretdb (the default,
    # nothing else to run), or a PostgreSQL server carbonpipe initialises in <home>/postgres
    # and runs on 127.0.0.1:``postgres_port`` (needs Debian's postgresql package; see
    # bench/results/mongo_backends.json for the two side by side).
    mongo_backend: str = "sqlite"
    postgres_port: Port = 27019

    # --- Spark (streaming job) ----------------------------------------------------------
    spark_master: str = "local[2]"
    cold_store_uri: str = ""  # default: <home>/cold
    checkpoint_uri: str = ""  # default: <home>/checkpoints
    # How far behind its own host's newest event an event may arrive and still be counted
    # (older: dead letter ``late``, replayable). A week: longer than the collector's spool
    # holds at its default size; late partials merge into windows closed long ago.
    lateness_s: int = Field(default=7 * 86_400, ge=0)
    window_s: int = Field(default=60, ge=1, le=86_400)
    trigger_s: PositiveS = 2.0
    max_offsets_per_trigger: int = Field(default=2_000_000, ge=1)
    shuffle_partitions: int = Field(default=2, ge=1)
    spark_driver_memory: str = "2g"
    # Per-event Parquet archive beside the window partials. On by default: with a finite
    # retention it is the only complete record of the valid events; it costs ~35 % more time
    # per event (bench/results/pipeline.json).
    cold_events: bool = True
    # How a micro-batch's read of the log is split into Spark tasks. By default a log
    # partition is split only into pieces of at most ``kafka_records_per_task`` events: a
    # small batch (second-fresh figures) runs one task per partition, a big one spreads over
    # every core. Splitting every batch into partitions x cores (7 tasks for 3,500 events)
    # cost ~1.2 s of a 4.8 s micro-batch at 1,000 events/s (bench/bench_latency.py, issue 12).
    # ``kafka_min_partitions`` > 0: at least that many tasks per batch instead.
    kafka_records_per_task: int = Field(default=200_000, ge=1_000)
    kafka_min_partitions: int = Field(default=0, ge=0)
    spark_jars_dir: Path = Path()  # default: <home>/jars/spark
    # A failed micro-batch (MongoDB down or hung, say) restarts the query after a back-off that
    # doubles from ``stream_retry_initial_s``, capped at ``stream_retry_max_s``; it resets
    # after a batch succeeds. 0 consecutive failures allowed = retry for ever (job stays up).
    stream_retry_initial_s: float = Field(default=2.0, gt=0, le=3600)
    stream_retry_max_s: float = Field(default=60.0, gt=0, le=86_400)
    stream_max_consecutive_failures: int = Field(default=0, ge=0)
    # Every MongoDB call of the job gives up after this (server selection, connect, socket
    # reads, write concern): a hung server fails the batch, which is retried, instead of
    # wedging the job.
    mongo_timeout_s: float = Field(default=30.0, ge=0.1, le=3600)
    # Test only: the job exits (status 137, as if SIGKILLed) at this point (of the first
    # micro-batch that reaches it, or of a rebuild); one of FAULT_POINTS, or "" (never).
    # Crash-recovery tests use it to prove that a replay counts nothing twice.
    fault_exit_at: str = Field(default="", description="test only")

    # --- the local multi-process cluster (``carbonpipe cluster up``, README "On a cluster") --
    # Three Kafka brokers on ``cluster_kafka_port`` + 0, 1, 2 (their controllers + 100), the
    # Spark master on ``cluster_spark_port`` (its web UI + 1, the workers' + 2, + 3) and the
    # HDFS NameNode on ``cluster_hdfs_port`` (its web UI + 1): clear of the single stack's.
    cluster_kafka_port: int = Field(default=19092, ge=1, le=65_000)
    cluster_spark_port: int = Field(default=17077, ge=1, le=65_000)
    cluster_hdfs_port: int = Field(default=19020, ge=1, le=65_000)
    cluster_workers: int = Field(default=2, ge=1, le=8)
    cluster_worker_cores: int = Field(default=1, ge=1, le=64)

    # --- collector ------------------------------------------------------------------------
    sample_interval_s: float = Field(default=1.0, ge=0.05, le=3600)
    sysfs_root: Path = Path("/sys")
    spool_dir: Path = Path()  # default: <home>/spool
    spool_max_mb: PositiveS = 256.0
    cpu_tdp_w: float | None = Field(default=None, gt=0)  # override the TDP table
    ram_w_per_gb: float | None = Field(default=None, ge=0)  # override the RAM power model
    zone: str | None = None  # grid zone of this host (e.g. GB, DE, US-CAL-CISO)
    cloud_region: str | None = None  # e.g. aws:eu-west-1, mapped to a zone
    allow_fallback_zone: str | None = None
    # Multizone plans: how to start a job in another zone, ``DE=ssh gpu-de,FR=kubectl ...``
    # (``carbonpipe.scheduling.zone_launch``); without one such plans only advise.
    zone_launchers: str = ""

    # --- carbon intensity providers ----------------------------------------------------
    providers: str = "trace,static"  # chain order, names from PROVIDER_NAMES
    http_timeout_s: PositiveS = 10.0
    http_retries: int = Field(default=3, ge=0, le=20)
    cache_ttl_s: float = Field(default=300.0, ge=0)
    uk_base_url: str = "https://api.carbonintensity.org.uk"
    electricitymaps_base_url: str = "https://api.electricitymap.org/v3"
    electricitymaps_token: SecretStr | None = None
    watttime_base_url: str = "https://api.watttime.org"
    watttime_username: str | None = Field(default=None, repr=False)
    watttime_password: SecretStr | None = None
    trace_paths: str = ""  # comma-separated extra trace files (CSV or Parquet)
    feeder_interval_s: PositiveS = 300.0
    http_backoff_s: float = Field(default=0.5, ge=0)  # first retry delay; doubles per retry
    intensity_cache_dir: Path | None = None  # on-disk TTL cache; None = in-memory only
    # static fallback table; default: the bundled one (carbonpipe.core.resources)
    zone_averages_path: Path = Field(default_factory=lambda: resource("data/zone_averages.csv"))

    # --- dashboard -------------------------------------------------------------------------
    dashboard_port: Port = 8501
    # Interface the dashboard listens on: loopback, because the page names people and their
    # emissions. ``0.0.0.0`` exposes it (in a container, or behind a login or a proxy).
    dashboard_address: str = Field(default="127.0.0.1", min_length=1)
    # Who may open the page: "none" (whoever reaches the port), "password" (users and password
    # hashes in ``dashboard_passwords_file``) or "oidc" (Streamlit's ``st.login``, configured in
    # ``.streamlit/secrets.toml`` ``[auth]``).
    dashboard_auth: Literal["none", "password", "oidc"] = "none"
    # ``user:pbkdf2_sha256$...`` lines, made by ``carbonpipe dashboard --hash-password``.
    dashboard_passwords_file: Path | None = None
    # "all": a viewer sees every run; "own": a signed-in viewer sees only runs of their user id.
    dashboard_scope: Literal["all", "own"] = "all"
    # With "oidc": the identity claim that is the viewer's user id (matched against user_id).
    dashboard_oidc_user_claim: str = Field(default="email", min_length=1)
    dashboard_refresh_s: PositiveS = 5.0
    # Per-user budgets in gCO2e, ``alice=500,bob=1200``: all-time budgets (period "all"),
    # shown and alerted on beside the ones ``carbonpipe budget set`` keeps in the hot store.
    budgets_g: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)

    # --- reports, budgets and alerts ------------------------------------------------------
    # Data-centre overhead (power usage effectiveness): facility energy = IT energy x PUE.
    # Applied to energy and CO2e in reports, budgets and the dashboard (shown when not 1.0);
    # ``carbonpipe runs`` shows what was measured (IT only).
    pue: float = Field(default=1.0, ge=1.0, le=3.0)
    # Electricity prices per zone (CSV: zone,price_per_kwh,currency,year,source); default:
    # the bundled, cited table (carbonpipe.core.resources).
    electricity_prices_path: Path = Field(
        default_factory=lambda: resource("data/electricity_prices.csv"))
    # Slack-compatible incoming webhook for budget alerts (its path is the secret: never
    # logged in full, see ``carbonpipe.reporting.webhook``). Unset: alerts go to Kafka only.
    alert_webhook_url: SecretStr | None = None
    alert_webhook_retries: int = Field(default=4, ge=0, le=20)
    alert_webhook_backoff_s: float = Field(default=1.0, ge=0, le=300)
    alerts_interval_s: float = Field(default=60.0, ge=1.0, le=86_400)  # the alerts loop

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

    @field_validator("metrics_retention_ms")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v != -1 and v < 3_600_000:
            raise ValueError(
                "CARBONPIPE_METRICS_RETENTION_MS is -1 (keep the log for ever, the default) or "
                "at least 3600000 (1 h): a shorter log loses events whenever the job is down"
            )
        return v

    @field_validator("mongo_backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v not in MONGO_BACKENDS:
            raise ValueError(f"unknown backend {v!r}; CARBONPIPE_MONGO_BACKEND is one of "
                             f"{', '.join(MONGO_BACKENDS)}")
        return v

    @field_validator("fault_exit_at")
    @classmethod
    def _known_fault_point(cls, v: str) -> str:
        if v and v not in FAULT_POINTS:
            raise ValueError(f"unknown fault point {v!r}; one of {', '.join(FAULT_POINTS)}")
        return v

    @_model_validator(mode="after")
    def _dashboard_login(self) -> Settings:
        if self.dashboard_auth == "password" and not self.dashboard_passwords_file:
            raise ValueError(
                "CARBONPIPE_DASHBOARD_AUTH=password needs CARBONPIPE_DASHBOARD_PASSWORDS_FILE "
                "(user:hash lines; make a hash with `carbonpipe dashboard --hash-password`)"
            )
        if self.dashboard_scope == "own" and self.dashboard_auth == "none":
            raise ValueError(
                "CARBONPIPE_DASHBOARD_SCOPE=own needs a signed-in viewer: set "
                "CARBONPIPE_DASHBOARD_AUTH to password or oidc"
            )
        return self

    @_model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        """Credentials that the protocol would ignore are an error, not a silent downgrade."""
        from carbonpipe.core.kafka_security import check_settings

        check_settings(self)
        return self

    @field_validator("budgets_g", mode="before")
    @classmethod
    def _parse_budgets(cls, v: Any) -> Any:
        return parse_budgets(v) if isinstance(v, str) else v

    @_model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        """Path defaults from the home folder, filled once: each setting keeps one name."""
        lay = Layout(Path(self.home))
        if not self.mongo_uri:
            self.mongo_uri = self.embedded_mongo_uri
        self.cold_store_uri = self.cold_store_uri or str(lay.cold)
        self.checkpoint_uri = self.checkpoint_uri or str(lay.checkpoints)
        if self.spark_jars_dir == Path():
            self.spark_jars_dir = lay.jars / "spark"
        if self.spool_dir == Path():
            self.spool_dir = lay.spool
        return self

    # ------------------------------------------------------------------ derived values
    @property
    def embedded_mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.ferretdb_port}/"

    @property
    def uses_embedded_mongo(self) -> bool:
        """No other MongoDB was named: the stack starts (and the job uses) the embedded FerretDB."""
        return self.mongo_uri == self.embedded_mongo_uri

    @property
    def layout(self) -> Layout:
        return Layout(Path(self.home))

    @property
    def provider_chain(self) -> list[str]:
        return [p for p in self.providers.split(",") if p]


def parse_budgets(text: str) -> dict[str, float]:
    """``alice=500,bob=1200`` -> {"alice": 500.0, "bob": 1200.0} (gCO2e per user)."""
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        user, sep, value = item.partition("=")
        try:
            grams = float(value)
        except ValueError:
            grams = -1.0
        if not sep or not user.strip() or not grams >= 0:
            raise ValueError(f"bad budget {item!r}: use user=grams, e.g. alice=500,bob=1200")
        out[user.strip()] = grams
    return out


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's error into one that names the env key and the fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across settings: the message names the keys (the
                lines.append(str(err["msg"]).removeprefix("Value error, "))  # input, every
                continue  # setting with its secrets, is not shown)
            key = "CARBONPIPE_" + "_".join(str(p) for p in err["loc"]).upper()
            secret = any(w in key for w in SECRET_WORDS)
            got = "<redacted>" if secret else redact_uri(repr(err.get("input")))
            lines.append(f"{key}: {err['msg']} (got {got})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
