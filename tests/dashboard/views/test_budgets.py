"""The Budgets page over a real hot store: progress, forecast and alerts; the viewer's scope;
user text shown as text. Streamlit's AppTest runs the page's script in-process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.reporting import store
from carbonpipe.reporting.budgets import Budget, Scope, crossings, evaluate, parse_scope
from dashboard.views.budgets import progress_line, visible
from spark_jobs.hot_store import HotStore
from tests.spark_jobs.test_hot_store_mongo import part

NOW = datetime.now(timezone.utc)
EVIL = "**bold** [x](https://e.vil)"


def test_visible_follows_the_dashboard_scope() -> None:
    now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    mine = evaluate(Budget(Scope("user", "dora"), "month", "co2_g", 10), [], now)
    org = evaluate(Budget(Scope("all", "all"), "month", "co2_g", 10), [], now)
    assert visible([mine, org], "dora", "all") == [mine, org]
    assert visible([mine, org], "dora", "own") == [mine]
    assert visible([mine, org], None, "own") == []
    assert progress_line(mine).startswith("0 of 10 gCO2e (0 %) · forecast 0")


@pytest.fixture()
def filled(unique_topics: Settings) -> Iterator[Settings]:
    """This month (today): dora 3 kWh (600 g at 200 g/kWh), the user named EVIL 1 kWh; their
    budgets, and dora's 80 % alert recorded as the alerts loop records it."""
    hot = HotStore(unique_topics.mongo_uri, unique_topics.mongo_db)
    t = int(NOW.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    hot.write_batch(0, [{**part("r1", t, 3.0, 0), "user_id": "dora"},
                        {**part("r2", t + 60, 1.0, 0), "user_id": EVIL}], {"valid": 2})
    hot.close()
    store.put_budget(unique_topics, Budget(parse_scope("user:dora"), "month", "co2_g", 700))
    store.put_budget(unique_topics, Budget(Scope("user", EVIL), "month", "energy_kwh", 2))
    dora = evaluate(Budget(parse_scope("user:dora"), "month", "co2_g", 700),
                    [{"_id": NOW.strftime("%Y-%m"), "by": [
                        {"dim": "user", "value": "dora", "co2_g": 600.0}]}], NOW)
    for c in crossings(dora, NOW):
        store.record_crossing(unique_topics, c)
    yield unique_topics


def page(settings: Settings, viewer: str | None, scope: str) -> object:
    from streamlit.testing.v1 import AppTest

    script = (
        "from carbonpipe.core.config import load_settings\n"
        "from dashboard.views.budgets import render\n"
        f"render(load_settings(mongo_uri={settings.mongo_uri!r}, "
        f"mongo_db={settings.mongo_db!r}, dashboard_scope={scope!r}, "
        f"dashboard_auth={'password' if scope == 'own' else 'none'!r}, "
        f"dashboard_passwords_file='/dev/null'), {viewer!r})\n"
    )
    at = AppTest.from_string(script, default_timeout=60)
    return at.run()


@pytest.mark.integration
def test_the_page_shows_progress_forecast_and_alerts(filled: Settings) -> None:
    at = page(filled, None, "all")
    assert not at.exception
    assert sorted(p.value for p in at.get("progress")) == [50, 85]  # percent: 1/2, 600/700
    labels = [m.value for m in at.markdown]
    assert any("`user:dora`" in v for v in labels)
    assert any(f"`user:{EVIL}`" in v for v in labels)  # a code span: shown, not rendered
    evil = evaluate(Budget(Scope("user", EVIL), "month", "energy_kwh", 2), [{
        "_id": NOW.strftime("%Y-%m"), "by": [{"dim": "user", "value": EVIL,
                                                 "energy_kwh": 1.0}]}], datetime.now(timezone.utc))
    ahead = (evil.forecast_fraction or 0) > 1  # at 50 %: over by the end if before mid-month
    assert sorted(w.value for w in at.warning) == ["Above 80 % of the budget."] + (  # dora
        ["On course to exceed the budget by the period's end."] if ahead else [])
    assert all("forecast" in p.text for p in at.get("progress"))
    alerts = at.dataframe[0].value
    assert list(alerts["threshold_pct"]) == [80] and list(alerts["scope"]) == ["user:dora"]
    own = page(filled, "dora", "own")
    assert [p.value for p in own.get("progress")] == [85]
