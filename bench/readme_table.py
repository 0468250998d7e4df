"""The README's benchmark tables, generated from bench/results/ (never typed by hand).

Why: figures typed into the README drift from the results they claim to quote, and a NaN
once reached it. This prints the Markdown for each marked block from the committed results;
``--write`` replaces the blocks between the marker comments in README.md, and a test checks
that the README holds exactly what this prints.

Results written by bench/harness.py give median [min–max] over interleaved rounds; a file from
before the harness (one run, no rounds) is shown with its single figure and says so.

    python bench/readme_table.py            # print the tables
    python bench/readme_table.py --write    # put them into README.md
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
README = ROOT / "README.md"
BLOCKS = ("bench-table", "bench-pipeline-table")
POLICIES = ("threshold", "window", "interruptible", "multizone")


class TableError(ValueError):
    """A results file cannot be shown (missing, unknown shape, or a non-finite figure)."""


def _finite(x: Any, what: str) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise TableError(f"{what} is {v}: re-run the benchmark; no NaN goes into the README")
    return v


def _load(results: Path, name: str) -> dict[str, Any]:
    path = results / name
    if not path.is_file():
        raise TableError(f"{path} is missing: run make bench")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _harness(doc: Mapping[str, Any]) -> bool:
    return "figures" in doc


def _g(v: float, digits: int = 3) -> str:
    """Three significant digits, thousands as 'k' (rates)."""
    if abs(v) >= 10_000:
        return f"{v / 1000:.{max(digits - len(str(int(v // 1000))), 0)}f} k"
    return f"{v:.{digits}g}"


def _count(n: float) -> str:
    """1000000 -> '1 M', 20000 -> '20 k'."""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:g} {unit}"
    return f"{n:g}"


def _spread(doc: Mapping[str, Any], section: str, key: str, fmt: Callable[[float], str]) -> str:
    s = doc[section].get(key)
    if s is None:
        raise TableError(f"{doc.get('bench')}: {section}.{key} missing: re-run the benchmark")
    med, lo, hi = (_finite(s[k], f"{section}.{key}.{k}") for k in ("median", "min", "max"))
    return f"{fmt(med)} [{fmt(lo)}–{fmt(hi)}]"


def _when(doc: Mapping[str, Any], name: str, extra: str = "") -> str:
    date = str(doc.get("date", "undated"))[:10]
    if _harness(doc):
        return f"{date}, median [range] of {doc['rounds']} rounds{extra} (`{name}`)"
    return f"{date}, single run, before the repeated harness (`{name}`)"


def _ratio(x: float) -> str:
    return f"{x:.2f}"


def pipeline_row(doc: Mapping[str, Any]) -> str:
    what = f"pipeline, {_count(doc.get('config', doc)['events'])} events from Kafka to MongoDB"
    what += " + Parquet window partials"
    if _harness(doc):
        job = _spread(doc, "figures", "job.events_per_s", _g)
        bare = _spread(doc, "figures", "bare_files.events_per_s", _g)
        arch = _spread(doc, "figures", "job_with_event_archive.events_per_s", _g)
        ratio = _spread(doc, "ratios", "job_vs_bare_files.rate_ratio", _ratio)
        ratio_med = _finite(doc["ratios"]["job_vs_bare_files.rate_ratio"]["median"], "ratio")
        rate_med = _finite(doc["figures"]["job.events_per_s"]["median"], "rate")
    else:
        job, bare = _g(doc["pipeline"]["events_per_s"]), _g(doc["bare"]["events_per_s"])
        arch = _g(doc["pipeline_with_event_archive"]["events_per_s"])
        ratio_med = _finite(doc["ratio_to_bare"], "ratio_to_bare")
        rate_med = _finite(doc["pipeline"]["events_per_s"], "rate")
        ratio = _ratio(ratio_med)
    t = doc["targets"]
    t_rate = t.get("events_per_s_min", t.get("events_per_s"))
    t_ratio = t.get("job_vs_bare_files_min", t.get("ratio_to_bare"))
    met = "met" if rate_med >= t_rate and ratio_med >= t_ratio else "**not met**"
    result = (
        f"{job} events/s, {ratio} of Spark's bare rate on the same JSON from files ({bare}/s) "
        f"measured in the same run; with the per-event archive {arch}/s. Design targets "
        f"(≥ {_g(t_rate)}/s, ≥ {t_ratio:.2f} of bare): {met}"
    )
    topic = "job_vs_bare_kafka.rate_ratio"
    if _harness(doc) and topic in doc["ratios"]:  # issue 12: against the bare query on the topic
        k_ratio = _spread(doc, "ratios", topic, _ratio)
        k_med = _finite(doc["ratios"][topic]["median"], "ratio")
        k_target = doc["targets"].get("job_vs_bare_kafka_min", 0.8)
        result += (
            f"; {k_ratio} of the same bare query reading the topic (target ≥ {k_target:.2f}: "
            f"{'met' if k_med >= k_target else '**not met**'})"
        )
    return f"| {what} | {result} | {_when(doc, 'pipeline.json')} |"


def collector_rows(doc: Mapping[str, Any]) -> list[str]:
    if not _harness(doc):
        raise TableError("collector.json predates bench/harness.py: run make bench-collector")
    cfg = doc["config"]
    rows = []
    window = f" of {cfg['window_s']:g} s"
    for w in cfg["workloads"]:

        def fig(tool: str, f: str, fmt: Callable[[float], str] = _g, w: str = w) -> str:
            return _spread(doc, "figures", f"{tool}.{w}.{f}", fmt)

        ratio = _spread(doc, "ratios", f"carbonpipe_vs_codecarbon.{w}.cpu_ratio", _ratio)
        rss = _spread(doc, "ratios", f"carbonpipe_vs_codecarbon.{w}.peak_rss_ratio", _ratio)
        verdict = doc.get("verdict", {}).get(w, {})
        met = "met" if verdict.get("cpu_target_met") else "**not met**"
        rss_met = "met" if verdict.get("rss_target_met_peak") else "**not met**"
        rows.append(
            f"| collector overhead at {cfg['interval_s']:g} s sampling, {w} workload | "
            f"carbonpipe {fig('carbonpipe', 'cpu_s_per_h_steady')} CPU s per hour, "
            f"{fig('carbonpipe', 'peak_rss_mb')} MB peak RSS; CodeCarbon "
            f"{doc['versions']['codecarbon']}: {fig('codecarbon', 'cpu_s_per_h_steady')} CPU s "
            f"per hour, {fig('codecarbon', 'peak_rss_mb')} MB; ratio CPU {ratio} (target ≤ "
            f"{doc['targets']['cpu_ratio_max']:.2f}: {met}), peak RSS {rss} (target ≤ "
            f"{doc['targets']['rss_mb_max']:g} MB: {rss_met}) | "
            f"{_when(doc, 'collector.json', window)} |"
        )
    return rows


def schedule_row(doc: Mapping[str, Any]) -> str:
    if not _harness(doc):
        raise TableError("schedule_bench.json predates bench/harness.py: run make bench-schedule")
    parts = [
        f"{p} {_spread(doc, 'figures', f'{p}.err0.ms', _g)}"
        for p in POLICIES
        if f"{p}.err0.ms" in doc["figures"]
    ]
    return (
        f"| scheduler, a year of 30-min data, one job per hour | ms per policy, perfect "
        f"forecast: {', '.join(parts)} | {_when(doc, 'schedule_bench.json')} |"
    )


def scale_row(doc: Mapping[str, Any]) -> str:
    """Readers and the dashboard over the fleet-scale hot store (``bench_scale.py``)."""
    sc, targets = doc["scenario"], doc["targets"]

    def fig(key: str) -> str:
        s = _spread(doc, "figures", key, lambda v: f"{v:.2f}")
        met = "met" if doc["figures"][key]["median"] <= targets[key] else "**not met**"
        return f"{s} s (target ≤ {targets[key]:g} s: {met})"

    return (
        f"| fleet scale: {sc['runs']:,} runs, {_count(doc['load']['window_docs'])} window "
        f"documents loaded through Kafka and the streaming job | `carbonpipe runs --json "
        f"--limit 50` "
        f"{fig('cli_runs_limit50_s')}; `carbonpipe users --json` {fig('cli_users_s')}; "
        f"dashboard Overview complete in headless chromium {fig('dashboard_complete_s')}"
        + (f" (Streamlit's floor, a page of the same elements without reads, same rounds: "
           f"{_spread(doc, 'figures', 'streamlit_floor_s', lambda v: f'{v:.2f}')} s)"
           if "streamlit_floor_s" in doc["figures"] else "")
        + " | "
        f"{str(doc['date'])[:10]}, median [range] of {sc['rounds']} rounds (`scale.json`) |"
    )


def study_row(doc: Mapping[str, Any]) -> str:
    """Let's Wait Awhile reproduced: nightly +-8 h at 5 % error, ML jobs semi-weekly
    interrupting at 5 % error, per region (the study's strategy, not the smoothed one)."""
    def pct(v: Any, what: str) -> str:
        return f"{_finite(v, what):.1f} %"

    nightly = {r["zone"]: pct(r["saving_pct"][r["window_slots"].index(16)], "nightly saving")
               for r in doc["nightly"] if r["policy"] == "study" and r["error"] == 0.05}
    ml = {r["zone"]: pct(r["saving_pct"], "ML saving") for r in doc["ml"]
          if r["policy"] == "study" and r["error"] == 0.05 and r["scenario"] == "semi-weekly"
          and r["interruptible"]}  # fmt: skip
    zones = sorted(nightly)
    return (
        "| Let's Wait Awhile reproduced (DE, GB, FR 2020) | nightly job, window ±8 h, 5 % "
        f"forecast error: {', '.join(f'{z} {nightly[z]}' for z in zones)}; ML jobs, "
        f"semi-weekly deadline, interrupting, 5 % error: "
        f"{', '.join(f'{z} {ml[z]}' for z in sorted(ml))} (all cases in "
        "`bench/results/lets_wait_awhile.md`) | "
        f"{_finite(doc['seconds'], 'study seconds'):.0f} s, mean over seeds 0-9 "
        "(`lets_wait_awhile.json`, `make bench-study`) |"
    )


def pipeline_paths(doc: Mapping[str, Any]) -> str:
    """The pipeline's paths (job, bare, Kafka alone) with their rates and seconds."""
    names = [
        ("job", "pipeline", "streaming job, default (MongoDB + Parquet window partials)"),
        ("job_with_event_archive", "pipeline_with_event_archive",
         "streaming job with the per-event Parquet archive"),
        ("bare_files", "bare",
         "bare: same JSON from files, `from_json` + same windows, no-op sink"),
        ("bare_kafka", "bare_query_from_kafka", "bare query reading the topic instead of files"),
        ("kafka_only", "kafka_source_only", "Kafka source alone, no-op sink"),
    ]  # fmt: skip
    lines = ["| path | events/s | s |", "|---|---|---|"]
    for side, legacy, label in names:
        if _harness(doc):
            rate = _spread(doc, "figures", f"{side}.events_per_s", lambda v: f"{v:,.0f}")
            secs = _spread(doc, "figures", f"{side}.s", lambda v: f"{v:.1f}")
        else:
            d = doc[legacy]
            rate = f"{_finite(d['events_per_s'], legacy):,.0f}"
            secs = f"{_finite(d.get('busy_s', d['wall_s']), legacy):.1f}"
        lines.append(f"| {label} | {rate} | {secs} |")
    lines.append("")
    lines.append(f"Source: {_when(doc, 'bench/results/pipeline.json')}.")
    return "\n".join(lines)


def render(results: Path = RESULTS_DIR) -> dict[str, str]:
    """Each README block's Markdown, from the results files in ``results``."""
    pipe = _load(results, "pipeline.json")
    main = [
        "| what | result | measured |",
        "|---|---|---|",
        pipeline_row(pipe),
        *collector_rows(_load(results, "collector.json")),
        schedule_row(_load(results, "schedule_bench.json")),
        scale_row(_load(results, "scale.json")),
        study_row(_load(results, "lets_wait_awhile.json")),
    ]
    return {"bench-table": "\n".join(main), "bench-pipeline-table": pipeline_paths(pipe)}


def _pattern(block: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {block}:begin[^>]*-->\n)(.*?)(<!-- {block}:end -->)", re.S)


def readme_blocks(text: str) -> dict[str, str]:
    """The current content of each marked block in the README text."""
    out = {}
    for block in BLOCKS:
        m = _pattern(block).search(text)
        if m is None:
            raise TableError(f"README.md lacks the <!-- {block}:begin/end --> markers")
        out[block] = m.group(2).removesuffix("\n")
    return out


def write(readme: Path = README, results: Path = RESULTS_DIR) -> bool:
    """Replaces the README's blocks; returns whether anything changed."""
    text = readme.read_text(encoding="utf-8")
    new = text
    readme_blocks(text)  # raises if a marker pair is missing
    for block, body in render(results).items():
        m = _pattern(block).search(new)
        assert m is not None
        new = new[: m.start(2)] + body + "\n" + new[m.end(2) :]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--write", action="store_true", help="replace the blocks in README.md")
    ap.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    try:
        if args.write:
            changed = write(README, args.results_dir)
            print(f"README.md benchmark tables {'updated' if changed else 'already current'}")
        else:
            for block, body in render(args.results_dir).items():
                print(f"<!-- {block} -->\n{body}\n")
    except TableError as exc:
        print(f"readme_table: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
