"""Every page of the multi-page dashboard in a real browser (Debian's chromium via Playwright)
over a hot store the REAL pipeline filled: events of four runs (three users, two models, two
projects, three zones, three hosts, three UTC days) go through Kafka and the Spark streaming
job into MongoDB; the test computes what each page must show from the events it sent.
Screenshots of every page go to tests/artifacts/pages/ (printed)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import REPO_ROOT, Settings
from carbonpipe.core.contracts import intensity_key
from carbonpipe.core.timeutil import utc_iso
from carbonpipe.query import fetch_pipeline, fetch_run
from carbonpipe.services import stack
from carbonpipe.services.apps import wait_http
from dashboard.cli import command
from spark_jobs.reference import load_fallback_table
from tests.conftest import _cleanup
from tests.dashboard.test_dashboard_browser import CHROMIUM, _free_port, launch
from tests.fault.scenario import job_settings
from tests.spark_jobs.pipeline_harness import StreamJob, produce, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install -y chromium"),
]
SHOTS = REPO_ROOT / "tests" / "artifacts" / "pages"
J = {"cpu": 360.0, "gpu": 720.0, "ram": 36.0}  # per event of a run with scale 1
EVENTS = 12  # per run: every 10 s, two epochs of six events, each epoch one 60 s window
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Run:
    run_id: str
    user: str
    model: str
    project: str
    zone: str
    host: str
    hours_ago: int
    scale: float
    reported_g_per_kwh: float | None  # None: the job charges the zone's cited fallback

    @property
    def start(self) -> datetime:
        return NOW - timedelta(hours=self.hours_ago)

    def kwh(self, dev: str = "") -> float:
        per = sum(J.values()) if not dev else J[dev]
        return EVENTS * per * self.scale / 3.6e6

    def events(self) -> list[dict[str, Any]]:
        out = []
        for i in range(EVENTS):
            e = {"timestamp": utc_iso(self.start + timedelta(seconds=10 * i)),
                 "run_id": self.run_id, "user_id": self.user, "model_name": self.model,
                 "host": self.host, "region": self.zone, "interval_s": 10, "seq": i,
                 "schema_version": 1, "epoch": i // 6, "step": i * 5,
                 "tags": {"project": self.project},
                 **{f"{d}_energy_j": j * self.scale for d, j in J.items()},
                 "cpu_method": "measured", "gpu_method": "measured", "ram_method": "estimated"}
            if self.reported_g_per_kwh is not None:
                e["grid_carbon_intensity_g_per_kwh"] = self.reported_g_per_kwh
            if GPUS.get(self.run_id):
                e["gpu_count"] = GPUS[self.run_id]
            out.append(e)
        return out


GPUS = {"vit-alice-1": 2, "bert-alice-2": 1, "vit-bob-1": 4}  # gpu_count of every event


def gpu_hours(runs: Any) -> float:
    """10 s per event x the GPUs it reports."""
    return sum(EVENTS * 10 * GPUS.get(r.run_id, 0) / 3600 for r in runs)


RUNS = (
    Run("vit-alice-1", "alice", "vit", "vision", "GB", "h1", 50, 1.0, 200.0),
    Run("bert-alice-2", "alice", "bert", "nlp", "FR", "h2", 27, 2.0, 50.0),
    Run("vit-bob-1", "bob", "vit", "vision", "GB", "h1", 3, 3.0, 200.0),
    Run("bert-carol-1", "carol", "bert", "nlp", "DE", "h3", 5, 0.5, None),
)


FEED_ZONE = "NO"  # a zone no run is in: its intensity changes no run's figures
HOUR = NOW.replace(minute=0)
GREEN_HOURS = (5, 6)  # hours after the current one with a low forecast: the greenest 2 h


def feed() -> list[tuple[str, dict[str, Any]]]:
    """Hourly intensity of FEED_ZONE from the hour before to a day ahead."""
    out = []
    for k in range(-1, 25):
        start = HOUR + timedelta(hours=k)
        out.append((intensity_key(FEED_ZONE, start), {
            "zone": FEED_ZONE, "start": utc_iso(start), "end": utc_iso(start + timedelta(hours=1)),
            "carbon_intensity_g_per_kwh": 50.0 if k in GREEN_HOURS else 300.0,
            "provider": "test-feed", "kind": "forecast" if k > 0 else "actual"}))
    return out


def g_per_kwh(run: Run) -> float:
    if run.reported_g_per_kwh is not None:
        return run.reported_g_per_kwh
    return load_fallback_table()[run.zone][0]


def co2(runs: Any) -> float:
    return sum(r.kwh() * g_per_kwh(r) for r in runs)


@pytest.fixture(scope="module")
def store(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The four runs through Kafka and the streaming job (plus three duplicates and one
    invalid event), on a database and topics of this module's own."""
    suffix = uuid.uuid4().hex[:10]
    s = services.model_copy(update={
        "metrics_topic": f"{services.metrics_topic}.p{suffix}",
        "intensity_topic": f"{services.intensity_topic}.p{suffix}",
        "dlq_topic": f"{services.dlq_topic}.p{suffix}",
        "mongo_db": f"{services.mongo_db}_p{suffix}",
    })  # fmt: skip
    stack.create_topics(s)
    tmp = tmp_path_factory.mktemp("pages")
    s = job_settings(s, tmp)
    events = [e for r in RUNS for e in r.events()]
    bad = {**events[0], "seq": 99, "cpu_energy_j": -1.0}  # negative energy: dead-lettered
    produce(s, s.intensity_topic, feed())
    produce(s, s.metrics_topic, [(e["run_id"], e) for e in [*events, *events[:3], bad]])
    job = StreamJob(s, tmp / "job.log")
    try:
        def done() -> bool:
            docs = [fetch_run(s, r.run_id) for r in RUNS]
            return all(d and d.get("n_events") == EVENTS for d in docs) and bool(
                fetch_pipeline(s).get("counts", {}).get("duplicate"))
        wait_for("the four runs counted", done, job, timeout_s=300)
    finally:
        job.stop()
    try:
        yield s
    finally:
        _cleanup(s)


def test_the_pipeline_counted_what_the_test_sent(store: Settings) -> None:
    """The ground truth the pages are checked against (else a page check could pass on bad
    data): every run's energy and CO2e as computed from its events."""
    for r in RUNS:
        doc = fetch_run(store, r.run_id)
        assert doc is not None
        assert doc["energy_kwh"] == pytest.approx(r.kwh())
        assert doc["co2_g"] == pytest.approx(r.kwh() * g_per_kwh(r))
        assert doc["last_epoch"] == 1 and doc["last_step"] == 55
        assert doc["gpu_hours"] == pytest.approx(gpu_hours([r]))
    counts = fetch_pipeline(store)["counts"]
    assert counts["duplicate"] == 3 and counts["valid"] == len(RUNS) * EVENTS + 3
    assert sum(v for k, v in counts.items() if k not in ("valid", "duplicate")) == 1


@pytest.fixture(scope="module")
def browser_page(store: Settings) -> Iterator[tuple[Any, str]]:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPIPE_DASHBOARD")}
    env.update({"CARBONPIPE_MONGO_DB": store.mongo_db, "CARBONPIPE_DASHBOARD_REFRESH_S": "30",
                "CARBONPIPE_HOME": str(store.home)})  # fmt: skip
    if store.mongo_uri:
        env["CARBONPIPE_MONGO_URI"] = store.mongo_uri
    proc = subprocess.Popen(command(port, "127.0.0.1"), cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {SHOTS}")
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90), "dashboard not up"
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1500, "height": 1900})
            yield page, f"http://127.0.0.1:{port}/"
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)


def metric(page: Any, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    box.wait_for(timeout=60_000)
    return str(box.get_by_test_id("stMetricValue").inner_text()).strip()


def wait_metric(page: Any, label: str, want: str) -> None:
    """The metric shows ``want`` (Streamlit re-runs the script after each widget change)."""
    for _ in range(120):
        if metric(page, label) == want:
            return
        page.wait_for_timeout(500)
    assert metric(page, label) == want


def choose(page: Any, label: str, option: str) -> None:
    label_el = page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True)
    page.get_by_test_id("stSelectbox").filter(has=label_el).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def shot(page: Any, name: str) -> None:
    page.wait_for_timeout(1_500)  # charts finish drawing
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert (SHOTS / f"{name}.png").stat().st_size > 10_000


def test_overview_totals_follow_the_filters(browser_page: tuple[Any, str]) -> None:
    page, url = browser_page
    page.goto(url)  # the default page: Overview, last 7 days
    page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
    wait_metric(page, "CO₂e (g)", f"{co2(RUNS):.3f}")
    assert metric(page, "energy (kWh)") == f"{sum(r.kwh() for r in RUNS):.6f}"
    assert metric(page, "runs") == "4"
    assert metric(page, "GPU energy (kWh)") == f"{sum(r.kwh('gpu') for r in RUNS):.6f}"
    assert metric(page, "GPU-hours") == f"{gpu_hours(RUNS):.3f}"
    body = page.inner_text("body")
    fallback = 100 * RUNS[3].kwh() / sum(r.kwh() for r in RUNS)
    estimated = 100 * sum(r.kwh("ram") for r in RUNS) / sum(r.kwh() for r in RUNS)
    assert f"estimated {estimated:.1f} %" in body and f"fallback intensity {fallback:.1f} %" in body
    assert "daily rollups" in body
    shot(page, "overview")
    page.get_by_text("last 365 days").click()  # charted per month, whole months from `months`
    page.get_by_text("monthly and daily rollups", exact=False).wait_for(timeout=60_000)
    wait_metric(page, "CO₂e (g)", f"{co2(RUNS):.3f}")
    assert metric(page, "runs") == "4"
    assert "stack emissions per month by" in page.inner_text("body")
    page.get_by_text("last 7 days").click()
    wait_metric(page, "CO₂e (g)", f"{co2(RUNS):.3f}")

    choose(page, "user", "alice")
    alice = [r for r in RUNS if r.user == "alice"]
    wait_metric(page, "CO₂e (g)", f"{co2(alice):.3f}")
    assert metric(page, "runs") == "2"
    assert metric(page, "GPU-hours") == f"{gpu_hours(alice):.3f}"
    assert "summed from the 2 runs" in page.inner_text("body")
    choose(page, "model", "vit")  # two filters: alice AND vit (the rollups cannot)
    wait_metric(page, "CO₂e (g)", f"{co2(RUNS[:1]):.3f}")
    assert metric(page, "runs") == "1"
    shot(page, "overview-filtered")

    page.goto(url)
    choose(page, "tag", "project=nlp")
    nlp = [r for r in RUNS if r.project == "nlp"]
    wait_metric(page, "CO₂e (g)", f"{co2(nlp):.3f}")
    page.get_by_text("last 24 h").click()  # only bob's and carol's runs started in it
    wait_metric(page, "CO₂e (g)", f"{co2([r for r in nlp if r.hours_ago < 24]):.3f}")


def test_runs_page_lists_the_runs_and_compares_two(browser_page: tuple[Any, str]) -> None:
    page, url = browser_page
    page.goto(url + "runs")
    page.get_by_text("page 1: runs 1–4").wait_for(timeout=60_000)
    grid = page.get_by_test_id("stDataFrame").first
    grid.wait_for()
    shot(page, "runs")
    ms = page.get_by_test_id("stMultiSelect").first
    for rid in ("vit-alice-1", "vit-bob-1"):
        ms.click()
        page.get_by_role("option", name=rid, exact=True).click()
    table = page.get_by_test_id("stTable")
    table.wait_for(timeout=60_000)
    text = table.inner_text()
    assert "vit-alice-1" in text and "vit-bob-1" in text and "bert-carol-1" not in text
    for r in (RUNS[0], RUNS[2]):
        assert f"{r.kwh():.6g}" in text and f"{r.kwh() / 2:.6g}" in text  # kWh per epoch
    page.keyboard.press("Escape")
    shot(page, "compare")


def test_run_page_shows_power_per_device_and_epochs(
    browser_page: tuple[Any, str], store: Settings
) -> None:
    page, url = browser_page
    r = RUNS[1]
    doc = fetch_run(store, r.run_id)
    assert doc is not None
    page.goto(url + f"?run={r.run_id}")  # the deep link
    page.get_by_text(f"{r.run_id} ({r.user}, {r.model})").wait_for(timeout=60_000)
    power = page.get_by_text("mean power per device").first
    power.wait_for()
    text = power.inner_text()
    for dev, joules in J.items():  # 6 events of 10 s in a 60 s window: energy / 60 s
        assert f"{dev.upper()} {joules * r.scale / 10:.1f} W" in text, text
    charts = page.get_by_test_id("stVegaLiteChart")
    charts.nth(2).wait_for(timeout=30_000)  # power, intensity, cumulative
    table = page.locator(".st-key-epochs").get_by_test_id("stTable")
    try:  # waits for the per-epoch table itself, not the first table on the page
        table.wait_for(timeout=30_000)
    except Exception as exc:
        raise AssertionError(f"no per-epoch table: {page.inner_text('body')}") from exc
    epochs = table.inner_text()
    per_epoch_kwh = r.kwh() / 2
    assert epochs.count(f"{per_epoch_kwh:.6f}") == 2, epochs
    assert f"{per_epoch_kwh * g_per_kwh(r):.4f}" in epochs
    body = page.inner_text("body")
    providers = ", ".join(doc["intensity_providers"])
    assert "duplicates dropped" in body and f"providers {providers}" in body, body
    shot(page, "run")


def test_grid_health_and_budgets_pages_load(browser_page: tuple[Any, str]) -> None:
    page, url = browser_page
    page.goto(url + "health")
    page.get_by_role("heading", name="Pipeline health").wait_for(timeout=60_000)
    assert metric(page, "duplicates dropped") == "3"
    assert metric(page, "valid (all time)") == str(len(RUNS) * EVENTS + 3)
    assert metric(page, "dead-lettered") == "1"
    assert "last batch" in page.inner_text("body")
    shot(page, "health")
    page.goto(url + "grid")
    page.get_by_role("heading", name="Grid & scheduling").wait_for(timeout=60_000)
    page.get_by_text("Realised savings of scheduled runs").wait_for()
    grid = page.get_by_test_id("stTable").first
    grid.wait_for(timeout=30_000)
    text = grid.inner_text()  # the scheduler's best 2 h window over the feed's forecast
    green = HOUR + timedelta(hours=GREEN_HOURS[0])
    assert FEED_ZONE in text and f"{green:%Y-%m-%d %H:%M}" in text and "test-feed" in text, text
    shot(page, "grid")
    page.goto(url + "budgets")
    page.get_by_role("heading", name="Budgets").wait_for(timeout=60_000)
    shot(page, "budgets")
    assert "incident" not in page.inner_text("body")
