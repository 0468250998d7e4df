"""Spool: fsync'd appends, replay order, the full-spool rule; Publisher around it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from collector.publish import MemorySink, Publisher
from collector.spool import Spool


def ev(i: int) -> dict[str, Any]:
    return {"run_id": "r", "seq": i, "pad": "x" * 100}


def test_append_is_fsynced_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    sp = Spool(tmp_path, max_bytes=10**6)
    sp.append([ev(0), ev(1), ev(2)])
    sp.append([ev(3)])
    assert len(calls) == 2  # once per batch, not per event
    lines = [json.loads(x) for p in sorted(tmp_path.glob("*.jsonl")) for x in p.read_text().split()]
    assert [e["seq"] for e in lines] == [0, 1, 2, 3]


def test_replay_in_order_with_partial_commits_and_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10**6, segment_bytes=600)  # ~4 events per segment
    for i in range(0, 20, 3):
        sp.append([ev(j) for j in range(i, min(i + 3, 20))])
    assert sp.pending == 20 and len(list(tmp_path.glob("*.jsonl"))) > 2
    got = sp.peek(7)
    assert [e["seq"] for e in got] == list(range(7))
    sp.commit(5)  # only 5 acknowledged
    sp.close()
    sp2 = Spool(tmp_path, max_bytes=10**6, segment_bytes=600)  # crash/restart: cursor kept
    assert sp2.pending == 15
    seen = []
    while sp2.pending:
        batch = sp2.peek(4)
        seen += [e["seq"] for e in batch]
        sp2.commit(len(batch))
    assert seen == list(range(5, 20))
    assert not list(tmp_path.glob("*.jsonl"))  # delivered segments are deleted


def test_full_spool_drops_oldest_segment_loudly(tmp_path: Path, capsys: Any) -> None:
    sp = Spool(tmp_path, max_bytes=4000, segment_bytes=1000)
    for i in range(100):
        sp.append([ev(i)])
    err = capsys.readouterr().err
    assert "SPOOL FULL" in err and "dropped oldest segment" in err
    assert sp.size_bytes() <= 4000 + 1000
    assert sp.dropped_events > 0
    assert sp.pending + sp.dropped_events == 100
    left = []
    while sp.pending:
        b = sp.peek(50)
        left += [e["seq"] for e in b]
        sp.commit(len(b))
    assert left == list(range(100 - len(left), 100))  # the newest survive, contiguous


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10**6)
    sp.append([ev(0)])
    sp.close()
    seg = next(tmp_path.glob("*.jsonl"))
    with open(seg, "ab") as fh:
        fh.write(b'{"run_id": "r", "se')  # crash mid-write
    sp2 = Spool(tmp_path, max_bytes=10**6)
    sp2.append([ev(1)])
    out = []
    while sp2.pending:
        b = sp2.peek(10)
        out += [e["seq"] for e in b]
        sp2.commit(len(b))
    assert out == [0, 1] and sp2.corrupt == 1


def _wait(cond: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_publisher_spools_while_down_and_replays_in_order(tmp_path: Path) -> None:
    sink = MemorySink()
    pub = Publisher(sink, Spool(tmp_path, 10**6))
    pub.BACKOFF_MIN_S = 0.05
    for i in range(5):
        pub.publish(ev(i))
    _wait(lambda: len(sink.events) == 5)
    sink.down = True
    for i in range(5, 15):
        pub.publish(ev(i))
    _wait(lambda: pub.spool.pending == 10)
    sink.down = False
    for i in range(15, 20):
        pub.publish(ev(i))
    assert pub.close(timeout_s=10) == 0
    assert [e["seq"] for e in sink.events] == list(range(20))


def test_publisher_close_leaves_undeliverable_on_disk(tmp_path: Path, capsys: Any) -> None:
    sink = MemorySink()
    sink.down = True
    pub = Publisher(sink, Spool(tmp_path, 10**6))
    pub.publish(ev(0))
    assert pub.close(timeout_s=0.3) == 1
    assert "remain spooled" in capsys.readouterr().err
    assert Spool(tmp_path, 10**6).pending == 1


def test_flush_spool_sends_leftovers_of_dead_collectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.publish as publish
    from carbonpipe.core.config import load_settings
    from collector.cli import flush_spool

    settings = load_settings(home=tmp_path, zone="GB")
    left = Spool(settings.spool_dir / "run-a" / "segments", 10**6)
    left.append([ev(0), ev(1)])
    left.close()
    sink = MemorySink()
    monkeypatch.setattr(publish, "KafkaSink", lambda *a, **k: sink)
    assert flush_spool(settings) == 0
    assert [e["seq"] for e in sink.events] == [0, 1]
    assert Spool(settings.spool_dir / "run-a" / "segments", 10**6).pending == 0
