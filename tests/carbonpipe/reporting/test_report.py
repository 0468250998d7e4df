"""The report (pure build) and its renderings: figures, groups, escaping, one-file HTML."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from carbonpipe.core.resources import resource
from carbonpipe.reporting.equivalents import Price, citations, load_equivalents
from carbonpipe.reporting.render import RENDERERS, md_text
from carbonpipe.reporting.report import Factors, build, check_by, group_of

EVIL = "<script>alert(1)</script>|**x** [a](https://e.vil) $x$ =cmd"


def run(rid: str, user: str, kwh: float, co2: float, **kw: Any) -> dict[str, Any]:
    return {"run_id": rid, "user_id": user, "model_name": "m", "energy_kwh": kwh, "co2_g": co2,
            "measured_kwh": kwh / 2, "estimated_kwh": kwh / 2, "fallback_kwh": 0.0,
            "cpu_kwh": kwh, "duration_s": 60.0, "zones": ["US-CA"], "method": "measured",
            "intensity_providers": ["trace"],
            "start": datetime(2026, 12, 1, 10, tzinfo=timezone.utc), **kw}  # fmt: skip


RUNS = [run("a", "alice", 1.0, 100.0, tags={"project": "vision"}),
        run("b", "alice", 2.0, 300.0, gpu_hours=1.5),
        run("c", EVIL, 1.0, 600.0, zones=["XX"])]  # fmt: skip
FACTORS = Factors(1.5, {"US-CA": Price("US-CA", 0.2, "USD", 2023, "EIA2023")},
                  load_equivalents(), citations(resource("data/electricity_prices.csv"),
                                                resource("data/equivalents.csv")))  # fmt: skip


def rep(by: str = "user") -> dict[str, Any]:
    return build(RUNS, since=None, until=None, by=by, factors=FACTORS, source="hot",
                 filters={"user": None})  # fmt: skip


def test_totals_groups_provenance_and_facility_figures() -> None:
    r = rep()
    t = r["totals"]
    assert (t["runs"], t["energy_kwh"], t["co2_g"]) == (3, pytest.approx(4.0), pytest.approx(1000))
    assert t["facility_co2_g"] == pytest.approx(1500) and t["facility_energy_kwh"] == 6.0
    assert t["cost"] == {"USD": pytest.approx(3.0 * 1.5 * 0.2)}  # XX has no price
    assert t["unpriced_kwh"] == {"XX": pytest.approx(1.5)}
    assert t["equivalents"]["car_km"] == pytest.approx(1500 / 251.03)
    assert [(g["group"], g["runs"]) for g in r["groups"]] == [(EVIL, 1), ("alice", 2)]
    assert t["gpu_hours"] == 1.5 and r["groups"][1]["gpu_hours"] == 1.5
    assert sum(g["share_of_co2"] for g in r["groups"]) == pytest.approx(1.0)
    assert r["provenance"]["measured_share"] == pytest.approx(0.5)
    assert r["factors"]["prices"]["US-CA"]["source"] == "EIA2023"
    sources = r["factors"]["sources"]  # the cited sources of the factors used, in full
    assert set(sources) == {"EIA2023", "EPA-GGEC"} and "Electric Power Annual" in sources["EIA2023"]
    assert "calculations-and-references" in sources["EPA-GGEC"]


def test_groups_by_tag_and_zone() -> None:
    assert [g["group"] for g in rep("tag:project")["groups"]] == ["(none)", "vision"]
    assert group_of({"zones": ["DE", "FR"]}, "zone") == "DE+FR"
    with pytest.raises(ValueError, match="--by"):
        check_by("team")


def test_user_strings_stay_text_in_every_format() -> None:
    r = rep()
    page = RENDERERS["html"](r)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<img") == 2 and "data:image/png;base64," in page  # charts inline
    assert "src='http" not in page and 'src="http' not in page  # nothing fetched
    md = RENDERERS["md"](r)
    assert md_text(EVIL) in md and "| " + EVIL not in md
    rows = list(csv.reader(io.StringIO(RENDERERS["csv"](r))))
    assert rows[0][:4] == ["group", "runs", "energy_kwh", "co2_g"] and rows[-1][0] == "TOTAL"
    assert float(rows[-1][3]) == pytest.approx(1000)
    assert json.loads(RENDERERS["json"](r))["totals"]["runs"] == 3
    assert "Greenhouse Gas Equivalencies Calculator" in page and "[`EIA2023`]" in md


def test_a_formula_like_group_is_defused_in_csv() -> None:
    r = build([run("x", "=HYPERLINK(1)", 1.0, 1.0)], since=None, until=None, by="user",
              factors=FACTORS, source="hot", filters={})  # fmt: skip
    rows = list(csv.reader(io.StringIO(RENDERERS["csv"](r))))
    assert rows[1][0] == "'=HYPERLINK(1)"


def test_md_text_outlasts_backticks() -> None:
    assert md_text("a``b") == "```a``b```" and md_text("`x") == "`` `x ``"
