"""The report (``report.build``'s dict) as Markdown, HTML, CSV or JSON.

Every user-supplied string (users, models, tags, zones, hosts) is text in every format: HTML
escaped, Markdown in code spans (inside which nothing is markup), CSV cells that a
spreadsheet would run as a formula prefixed with ``'``, matplotlib labels without mathtext.
The HTML is one file: styles inline, charts as PNG in ``data:`` URIs.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

FORMATS = ("md", "html", "csv", "json")
GROUP_COLS = ("group", "runs", "energy_kwh", "co2_g", "facility_co2_g", "share_of_co2")


def _num(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.6g}"
    return str(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def md_text(value: object) -> str:
    """A user string as a Markdown code span (the fence longer than any backtick run in it;
    ``|`` escaped so a table cell stays one cell)."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    if not text:
        return ""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


Rows = list[tuple[str, str]]


def _lines(rep: Mapping[str, Any], esc: Callable[[object], str]) -> dict[str, Rows]:
    """The report's key figures as (label, value) sections, shared by Markdown and HTML."""
    t, p = rep["totals"], rep["provenance"]
    totals = [("runs", _num(t["runs"])), ("energy (IT, measured)", f"{_num(t['energy_kwh'])} kWh"),
              ("emissions", f"{_num(t['co2_g'])} gCO2e"),
              ("GPU-hours (GPUs reported x time)", _num(t.get("gpu_hours", 0.0))),
              ("mean intensity", f"{_num(t['mean_intensity_g_per_kwh'])} gCO2e/kWh")]
    if t["pue"] != 1.0:
        totals += [(f"facility energy (PUE {t['pue']:g})", f"{_num(t['facility_energy_kwh'])} kWh"),
                   (f"facility emissions (PUE {t['pue']:g})", f"{_num(t['facility_co2_g'])} gCO2e")]
    for cur, v in sorted(t["cost"].items()):
        totals.append((f"electricity cost ({esc(cur)})", f"{v:,.2f}"))
    if t["unpriced_kwh"]:
        totals.append(("kWh without a price (zones)", ", ".join(
            f"{esc(z)}: {_num(v)}" for z, v in sorted(t["unpriced_kwh"].items()))))
    units = {e["name"]: e["unit"] for e in rep["factors"]["equivalents"]}
    equiv = [(units.get(k, k), f"{v:,.3g}") for k, v in t["equivalents"].items()]
    prov = [("measured energy", _pct(p["measured_share"])),
            ("estimated energy (models)", _pct(p["estimated_share"])),
            ("energy on fallback intensity", _pct(p["fallback_intensity_share"])),
            ("runs by method", ", ".join(f"{esc(k)}: {v}" for k, v in
                                         sorted(p["runs_by_method"].items())) or "n/a"),
            ("runs by intensity provider", ", ".join(
                f"{esc(k)}: {v}" for k, v in sorted(p["runs_by_intensity_provider"].items()))
             or "n/a"),
            ("energy by device", ", ".join(f"{d}: {_num(v)} kWh"
                                           for d, v in p["device_kwh"].items()))]
    f = rep["factors"]
    factors = [("PUE", f"{f['pue']:g}" + (" (IT figures as measured)" if f["pue"] == 1.0 else ""))]
    factors += [(e["unit"], f"{e['g_co2e_per_unit']:g} gCO2e each [{esc(e['source'])}]")
                for e in f["equivalents"]]
    factors += [(f"price {esc(z)}", f"{pr['price_per_kwh']:g} {esc(pr['currency'])}/kWh "
                 f"({pr['year']}) [{esc(pr['source'])}]") for z, pr in sorted(f["prices"].items())]
    factors += [(f"[{esc(k)}]", esc(v)) for k, v in sorted(f.get("sources", {}).items())]
    return {"Totals": totals, "Equivalents (facility emissions)": equiv,
            "Methods and provenance": prov, "Factors used": factors}  # fmt: skip


def _header(rep: Mapping[str, Any], esc: Callable[[object], str]) -> list[str]:
    r = rep["range"]
    filt = ", ".join(f"{k}={esc(v)}" for k, v in rep["filters"].items()) or "none"
    return [f"range: {r['since'] or 'beginning'} to {r['until'] or 'now'} ({r['rule']})",
            f"source: {rep['source']} store; filters: {filt}; generated {rep['generated_at']}"]


def markdown(rep: Mapping[str, Any]) -> str:
    out = [f"# {rep['title']}", "", *(f"- {h}" for h in _header(rep, md_text)), ""]
    for title, rows in _lines(rep, md_text).items():
        out += [f"## {title}", "", "| | |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in rows] + [""]
    out += [f"## By {md_text(rep['by'])}", "", "| " + " | ".join(GROUP_COLS) + " |",
            "|" + "---|" * len(GROUP_COLS)]
    for g in rep["groups"]:
        out.append(f"| {md_text(g['group'])} | {g['runs']} | {_num(g['energy_kwh'])} | "
                   f"{_num(g['co2_g'])} | {_num(g['facility_co2_g'])} | "
                   f"{_pct(g['share_of_co2'])} |")  # fmt: skip
    return "\n".join(out) + "\n"


def safe_cell(v: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (user strings are anyone's)."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def to_csv(rep: Mapping[str, Any]) -> str:
    """The per-group table and a ``TOTAL`` row (the same columns)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(GROUP_COLS)
    for g in rep["groups"]:
        w.writerow([safe_cell(g[c]) for c in GROUP_COLS])
    t = rep["totals"]
    w.writerow(["TOTAL", t["runs"], t["energy_kwh"], t["co2_g"], t["facility_co2_g"],
                1.0 if t["runs"] else None])  # fmt: skip
    return buf.getvalue()


def to_json(rep: Mapping[str, Any]) -> str:
    return json.dumps(rep, indent=1, default=str)


def _png(draw: Callable[[Any], None]) -> str | None:
    """A chart as a base64 PNG (None without matplotlib: the HTML then has the tables only)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    with matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):  # "$" is text
        fig, ax = plt.subplots(figsize=(7, 3), dpi=110)
        try:
            draw(ax)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
        finally:
            plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _charts(rep: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    groups = rep["groups"][:12]
    if groups:
        def bars(ax: Any) -> None:
            ax.barh([str(g["group"])[:40] for g in reversed(groups)],
                    [g["co2_g"] for g in reversed(groups)], color="#4a7")
            ax.set_xlabel("gCO2e")

        png = _png(bars)
        if png:
            out.append((f"Emissions by {rep['by']} (top {len(groups)})", png))
    daily = rep["daily_co2_g"]
    if daily:
        def days(ax: Any) -> None:
            ax.bar(list(daily), list(daily.values()), color="#47a")
            ax.set_ylabel("gCO2e (runs started that day)")
            ax.tick_params(axis="x", labelrotation=60, labelsize=7)

        png = _png(days)
        if png:
            out.append(("Emissions per day", png))
    return out


def to_html(rep: Mapping[str, Any]) -> str:
    e = html.escape

    def esc(v: object) -> str:
        return e(str(v))

    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>{e(rep['title'])}</title><style>body{{font-family:sans-serif;"
             "max-width:60em;margin:2em auto}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
             "td.n{text-align:right}</style></head><body>",
             f"<h1>{e(rep['title'])}</h1>"]  # fmt: skip
    parts += [f"<p>{esc(h)}</p>" for h in _header(rep, str)]
    for title, rows in _lines(rep, str).items():
        parts.append(f"<h2>{e(title)}</h2><table>")
        parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows]
        parts.append("</table>")
    for title, png in _charts(rep):
        parts.append(f"<h2>{e(title)}</h2><img alt='{e(title)}' "
                     f"src='data:image/png;base64,{png}'>")  # fmt: skip
    parts.append(f"<h2>By {e(rep['by'])}</h2><table><tr>"
                 + "".join(f"<th>{c}</th>" for c in GROUP_COLS) + "</tr>")
    for g in rep["groups"]:
        parts.append(f"<tr><td>{esc(g['group'])}</td><td class=n>{g['runs']}</td>"
                     f"<td class=n>{_num(g['energy_kwh'])}</td><td class=n>{_num(g['co2_g'])}"
                     f"</td><td class=n>{_num(g['facility_co2_g'])}</td>"
                     f"<td class=n>{_pct(g['share_of_co2'])}</td></tr>")  # fmt: skip
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "md": markdown, "html": to_html, "csv": to_csv, "json": to_json}
