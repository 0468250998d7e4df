"""What every benchmark shares: interleaved rounds, median + range, machine and version
metadata, and one checked, atomic write of the results file.

Why: this machine's speed swings about 2x within an hour, so one run's figure misleads; only
ratios measured side by side in one run, repeated, mean something. Every bench script
therefore runs its sides interleaved (A, B, A, B, ...) for ``--rounds`` rounds, reports the
median and the range of each figure and of each per-round ratio, and refuses to write a
result that holds a NaN or misses a comparison (a peer that could not be measured is an
error, never a row of NaNs). The results file is replaced atomically, so a failed or
interrupted run leaves the committed file as it was.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_ROUNDS = 3
INSTALL_HINT = (
    "install the bench extra with `make bench-deps` (or `bash bench/install.sh`; every "
    "`make bench*` runs it first)"
)

Measure = Callable[[int], Mapping[str, float]]


class BenchError(RuntimeError):
    """A comparison could not be measured: the benchmark fails and writes nothing."""


def add_common_args(ap: argparse.ArgumentParser) -> None:
    """The options every benchmark takes (rounds, where results go)."""
    ap.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"interleaved rounds of the side-by-side measurement (default {DEFAULT_ROUNDS})",
    )
    ap.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where the results file is written (default bench/results)",
    )


def require_peer(module: str, env: Mapping[str, str] | None = None) -> str:
    """Version of ``module`` as a fresh interpreter imports it (the one the bench will run).

    Checked before any round so a missing peer fails in seconds with what to do, instead of
    after minutes of measurement with a row that cannot be compared.
    """
    code = f"import {module} as m, sys; sys.stdout.write(str(getattr(m, '__version__', '?')))"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=dict(env or os.environ), capture_output=True, text=True
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BenchError(f"{module} cannot be imported ({last}): {INSTALL_HINT}")
    return proc.stdout.strip()


Rows = dict[str, list[dict[str, float]]]


def interleave(rounds: int, sides: Sequence[tuple[str, Measure]], warmup: bool = False) -> Rows:
    """Runs every side once per round, in the given order: A, B, A, B, ...

    Interleaving spreads the machine's slow and fast minutes over all sides alike, so the
    per-round ratios compare like with like. A side returns its figures for that round.
    ``warmup`` first runs every side once unrecorded (round index -1), for in-process sides
    whose first call pays for caches and lazy imports that later calls do not.
    """
    if rounds < 1:
        raise BenchError(f"--rounds must be at least 1, got {rounds}")
    if warmup:
        for _, measure in sides:
            measure(-1)
    out: Rows = {name: [] for name, _ in sides}
    for r in range(rounds):
        for name, measure in sides:
            t = time.monotonic()
            out[name].append(dict(measure(r)))
            print(f"  round {r + 1}/{rounds}  {name:<28} {time.monotonic() - t:6.1f} s", flush=True)
    return out


def spread(values: Sequence[float], what: str) -> dict[str, Any]:
    """Median and range of one figure over the rounds; a NaN or missing round is an error."""
    vals = [float(v) for v in values]
    if not vals:
        raise BenchError(f"{what}: not measured")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise BenchError(f"{what}: not a finite number in some rounds ({vals})")
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "rounds": vals}


def ratio_spread(num: Sequence[float], den: Sequence[float], what: str) -> dict[str, Any]:
    """Median and range of the per-round ratio num/den (both sides from the same round)."""
    if len(num) != len(den) or not num:
        raise BenchError(f"{what}: sides measured in {len(num)} and {len(den)} rounds")
    if any(d == 0 for d in den):
        raise BenchError(f"{what}: the denominator is 0 in some round ({list(den)})")
    return spread([n / d for n, d in zip(num, den, strict=True)], what)


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        text = Path("/proc/meminfo").read_text(encoding="ascii")
    except OSError:
        return 0.0
    m = re.search(r"^MemTotal:\s*(\d+) kB", text, re.M)
    return round(int(m.group(1)) / 2**20, 1) if m else 0.0


def machine() -> dict[str, Any]:
    """The machine the figures belong to (load average is added before and after the run)."""
    return {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
    }


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def kafka_version() -> str:
    """The broker the stack runs: its built jar if present, else the version infra pins."""
    jars = sorted((ROOT / ".carbonpipe" / "jars" / "kafka").glob("kafka_2.13-*.jar"))
    for jar in jars:
        m = re.fullmatch(r"kafka_2\.13-([\d.]+)\.jar", jar.name)
        if m:
            return m.group(1)
    pom = ROOT / "infra" / "kafka" / "pom.xml"
    m = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom.read_text(encoding="utf-8"))
    return f"{m.group(1)} (pinned; jars not built)" if m else "unknown"


def versions(**measured: str) -> dict[str, str]:
    """Python, Spark, Kafka and CodeCarbon versions; ``measured`` overrides (e.g. the version
    the peer's import reported)."""
    found = {
        "python": platform.python_version(),
        "spark": _dist_version("pyspark"),
        "kafka": kafka_version(),
        "codecarbon": _dist_version("codecarbon"),
    }
    return {**found, **measured}


def _rel(path: str) -> str:
    p = Path(path).absolute()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that produced a result, paths relative to the repository when inside it."""
    script = sys.argv[0] if sys.argv and sys.argv[0] else "?"
    rest = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([_rel(sys.executable), _rel(script), *rest])


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Run:
    """One benchmark invocation: metadata taken at start, one checked atomic write at the end."""

    def __init__(self, name: str, args: argparse.Namespace, argv: Sequence[str] | None = None):
        self.name = name
        self.rounds: int = args.rounds
        self.out: Path = Path(args.results_dir) / f"{name}.json"
        self.command = command_line(argv)
        self.started = datetime.now(timezone.utc)
        self.load_before = _load()

    def result(
        self,
        *,
        order: Sequence[str],
        config: Mapping[str, Any],
        figures: Mapping[str, Sequence[float]],
        ratios: Mapping[str, tuple[Sequence[float], Sequence[float]]],
        targets: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        **version_overrides: str,
    ) -> dict[str, Any]:
        """The results document; raises BenchError if any figure or ratio is not measured."""
        if not ratios:
            raise BenchError(f"{self.name}: no comparison was measured")
        doc: dict[str, Any] = {
            "bench": self.name,
            "date": self.started.isoformat(timespec="seconds"),
            "command": self.command,
            "rounds": self.rounds,
            "order": "interleaved, each round: " + ", ".join(order),
            "machine": {
                **machine(),
                "load_avg_before": self.load_before,
                "load_avg_after": _load(),
            },
            "versions": versions(**version_overrides),
            "config": dict(config),
            "figures": {k: spread(v, k) for k, v in figures.items()},
            "ratios": {k: ratio_spread(n, d, k) for k, (n, d) in ratios.items()},
            "targets": dict(targets or {}),
            "details": dict(details or {}),
        }
        for k, s in {**doc["figures"], **doc["ratios"]}.items():
            if len(s["rounds"]) != self.rounds:
                raise BenchError(f"{k}: measured in {len(s['rounds'])} of {self.rounds} rounds")
        return doc

    def write(self, doc: Mapping[str, Any]) -> Path:
        """Writes the document atomically (temp file + rename); NaN anywhere is refused."""
        try:
            text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
        except ValueError as exc:
            raise BenchError(f"{self.name}: result holds a NaN or infinity ({exc})") from exc
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.out)
        return self.out


def fmt_spread(s: Mapping[str, Any], digits: int = 3) -> str:
    """``median [min–max]`` as the benches print it."""
    return f"{s['median']:.{digits}g} [{s['min']:.{digits}g}–{s['max']:.{digits}g}]"


def print_summary(doc: Mapping[str, Any]) -> None:
    """Prints every figure and ratio as median [range] over the rounds."""
    print(f"\n{doc['bench']}: median [min–max] over {doc['rounds']} interleaved rounds")
    for section in ("figures", "ratios"):
        for k, s in doc[section].items():
            print(f"  {k:<48} {fmt_spread(s)}")
    if doc.get("targets"):
        print(f"  targets: {json.dumps(doc['targets'])}")


def main_guard(name: str, body: Callable[[], int]) -> int:
    """Runs a bench's main; a BenchError becomes a clear message and exit status 2."""
    try:
        return body()
    except BenchError as exc:
        print(
            f"\nbench {name} FAILED: {exc}\nnothing was written to the results directory.",
            file=sys.stderr,
        )
        return 2
