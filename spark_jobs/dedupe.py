"""Duplicates counted once: which events of a micro-batch were counted before. Pure.

An event is identified by ``(host, run_id, seq)``: one collector per host and run numbers its
events 0, 1, 2, ... and never reuses a number (``collector.runner.RunLock``). Kafka delivers at
least once (a resend after a lost ack, a spool replayed after a crash), so the same event can
arrive twice, in one micro-batch or days apart.

What the job keeps per run and host is the set of seqs already counted, as sorted disjoint
ranges (one range for a run that was never interrupted), in the run's hot-store document.
A batch is checked cheaply from its window partials: each partial carries, per (host, run),
the count, minimum, maximum, sum and XOR of its seqs. A partial whose seqs are exactly the
range ``[min, max]`` (count = span, sum and XOR those of the range) and that does not touch an
already-counted range holds no duplicate; anything else is *suspect*, and only the suspect
(host, run) pairs are deduplicated event by event in Spark (``stream.BatchProcessor``). So the
common case, no duplicates, costs four extra aggregates and no extra pass over the batch.

The checksum test of "exactly the range" is exact for up to two duplicated-and-missing pairs
in one window partial (sum and XOR cannot both balance), and practically exact beyond; a
false "clean" would need a multiset that mimics a range under count, sum and XOR at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Range = tuple[int, int]  # inclusive


def xor_upto(n: int) -> int:
    """0 ^ 1 ^ ... ^ n (0 for n < 0): the closed form repeats with period 4."""
    if n < 0:
        return 0
    return (n, 1, n + 1, 0)[n % 4]


def xor_range(lo: int, hi: int) -> int:
    return xor_upto(hi) ^ xor_upto(lo - 1)


def is_exact_range(n: int, lo: int, hi: int, total: int, xor: int) -> bool:
    """Do ``n`` seqs with this min, max, sum and XOR form exactly ``lo..hi`` (no duplicate)?"""
    if n != hi - lo + 1:
        return False
    return total == (lo + hi) * n // 2 and xor == xor_range(lo, hi)


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, disjoint, with touching ranges joined (``[0,4]`` and ``[5,9]`` -> ``[0,9]``)."""
    out: list[Range] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def overlaps(ranges: Sequence[Range], lo: int, hi: int) -> bool:
    return any(a <= hi and lo <= b for a, b in ranges)


def islands(seqs: Iterable[int]) -> list[Range]:
    """Distinct seqs -> the ranges they form."""
    return merge_ranges((s, s) for s in set(seqs))


def suspect_pairs(
    partials: Iterable[Mapping[str, Any]], counted: Mapping[tuple[str, str], Sequence[Range]]
) -> set[tuple[str, str]]:
    """(host, run_id) pairs of this batch that may hold an event counted twice.

    ``partials``: window partials with ``n_seq``, ``min_seq``, ``max_seq``, ``seq_sum`` and
    ``seq_xor``; ``counted``: the ranges counted before this batch per (host, run_id).
    Two partials of one pair that overlap each other are suspect too (the same event in two
    windows cannot happen, but the same seq with two timestamps can).
    """
    suspects: set[tuple[str, str]] = set()
    seen_in_batch: dict[tuple[str, str], list[Range]] = {}
    for p in partials:
        if not p.get("n_seq"):
            continue  # events without a seq (older collectors) are not deduplicated
        pair = (str(p["host"]), str(p["run_id"]))
        lo, hi = int(p["min_seq"]), int(p["max_seq"])
        exact = is_exact_range(int(p["n_seq"]), lo, hi, int(p["seq_sum"]), int(p["seq_xor"]))
        mine = seen_in_batch.setdefault(pair, [])
        if not exact or overlaps(counted.get(pair, ()), lo, hi) or overlaps(mine, lo, hi):
            suspects.add(pair)
        mine.append((lo, hi))
    return suspects


def new_ranges(partials: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[Range]]:
    """The seq ranges a batch's (clean) partials add, per (host, run_id)."""
    out: dict[tuple[str, str], list[Range]] = {}
    for p in partials:
        if p.get("n_seq"):
            pair = (str(p["host"]), str(p["run_id"]))
            out.setdefault(pair, []).append((int(p["min_seq"]), int(p["max_seq"])))
    return {k: merge_ranges(v) for k, v in out.items()}
