"""The collector survives its own disk (reliability review H6, M8, "Seq reuse"; Tier A1-A4).

Faults are injected at the file operations the spool and RunLock use (``spool._write_all``,
``os.fsync``, ``os.replace``, ``Spool.peek``); crash points run in a forked child that
``os._exit``s at the k-th call. No services.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collector.spool as spool_mod
from collector.publish import MemorySink, Publisher
from collector.runner import RUN_ID_FILE, RunLock, safe_name
from collector.spool import Spool

ERRNOS = [errno.ENOSPC, errno.EIO, errno.EACCES, errno.EFBIG]


def ev(i: int) -> dict[str, Any]:
    return {"run_id": "r", "seq": i, "pad": "x" * 100}


def _wait(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


class Disk:
    """Makes the spool's writes fail with ``err``: ``times`` more calls, or until healed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.err = errno.ENOSPC
        self.left = 0
        real = spool_mod._write_all

        def write_all(fd: int, data: bytes) -> None:
            if self.left:
                self.left -= 1
                os.write(fd, data[: len(data) // 2])  # a short write first, as at a limit
                raise OSError(self.err, os.strerror(self.err))
            real(fd, data)

        monkeypatch.setattr(spool_mod, "_write_all", write_all)

    def fail(self, err: int, times: int = 10**9) -> None:
        self.err, self.left = err, times

    def heal(self) -> None:
        self.left = 0


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Publisher, "BACKOFF_MIN_S", 0.01)
    monkeypatch.setattr(Publisher, "BACKOFF_MAX_S", 0.05)


def _drain_events(directory: Path) -> list[dict[str, Any]]:
    sp = Spool(directory, 10**7)
    out: list[dict[str, Any]] = []
    while sp.pending:
        batch = sp.peek(100)
        out += batch
        sp.commit(len(batch))
    sp.close()
    return out


def _drain_spool(directory: Path) -> list[int]:
    return [e["seq"] for e in _drain_events(directory)]


@pytest.mark.parametrize("err", ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize("repeated", [False, True], ids=["once", "repeatedly"])
def test_publisher_survives_spool_io_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None, err: int, repeated: bool
) -> None:
    """A1: broker down, the disk fails; the thread lives, memory stays bounded, every seq is
    delivered, left in the spool (``close``'s number) or counted in ``dropped_events``."""
    disk = Disk(monkeypatch)
    sink = MemorySink()
    sink.down = True
    # one error must lose nothing: then memory may hold everything published meanwhile
    tail_max, batch_max = (40, 20) if repeated else (1000, 20)
    pub = Publisher(sink, Spool(tmp_path, 10**7), batch_max, tail_max_events=tail_max)
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], pub.in_memory)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    seq = 0
    for _ in range(10):  # spooled normally
        pub.publish(ev(seq))
        seq += 1
    _wait(lambda: pub.spool.pending == 10)
    disk.fail(err, times=10**9 if repeated else 1)
    for _ in range(150):  # far more than memory may hold when the disk stays bad
        pub.publish(ev(seq))
        seq += 1
        time.sleep(0.001)
    _wait(lambda: pub.in_memory == 0 or len(pub._tail) >= tail_max or not repeated)
    assert pub._thread.is_alive()
    if repeated:
        _wait(lambda: pub.dropped_events > 0)
    disk.heal()
    sink.down = False
    for _ in range(20):
        pub.publish(ev(seq))
        seq += 1
    _wait(lambda: pub._backlog() == 0 and pub.in_memory == 0)
    sink.down = True  # whatever comes now stays on disk: close() must count it
    for _ in range(5):
        pub.publish(ev(seq))
        seq += 1
    assert pub._thread.is_alive()
    left = pub.close(timeout_s=1.0)
    stop.set()
    watcher.join()

    delivered = [e["seq"] for e in sink.events]
    last = _drain_events(tmp_path)
    spooled = [e["seq"] for e in last]
    assert left == len(spooled) == 5
    assert len(delivered) == len(set(delivered)), "duplicates"
    assert set(delivered).isdisjoint(spooled)
    missing = set(range(seq)) - set(delivered) - set(spooled)
    assert len(missing) == pub.dropped_events
    assert (pub.dropped_events > 0) == repeated
    assert peak[0] <= 2 * tail_max + batch_max  # queue, tail, one batch in hand
    if repeated:  # events published after the loss say so
        assert all(e["dropped_events"] == pub.dropped_events for e in last)


def test_unreadable_spool_does_not_hold_back_what_memory_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    """Spool reads fail (EIO) and writes fail: the tail is sent from memory meanwhile, the
    spool when it reads again; nothing is lost."""
    disk = Disk(monkeypatch)
    sink = MemorySink()
    sink.down = True
    pub = Publisher(sink, Spool(tmp_path, 10**7))
    for i in range(10):
        pub.publish(ev(i))
    _wait(lambda: pub.spool.pending == 10)
    reading = {"ok": False}
    real_peek = Spool.peek

    def peek(self: Spool, n: int) -> list[dict[str, Any]]:
        if not reading["ok"]:
            raise OSError(errno.EIO, "Input/output error")
        return real_peek(self, n)

    monkeypatch.setattr(Spool, "peek", peek)
    disk.fail(errno.EIO)
    for i in range(10, 20):
        pub.publish(ev(i))
    sink.down = False
    _wait(lambda: sorted(e["seq"] for e in sink.events) == list(range(10, 20)))
    disk.heal()
    reading["ok"] = True
    assert pub.close(timeout_s=5) == 0
    assert sorted(e["seq"] for e in sink.events) == list(range(20))
    assert pub.dropped_events == 0


def test_failed_append_leaves_the_spool_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short write then an error is cut off again; the next batch starts a new segment (a
    per-file limit, EFBIG, costs one segment); a reopened spool counts what was written."""
    disk = Disk(monkeypatch)
    sp = Spool(tmp_path, 10**7)
    sp.append([ev(0), ev(1)])
    size = sp.size_bytes()
    disk.fail(errno.EFBIG, times=1)
    with pytest.raises(OSError):
        sp.append([ev(2), ev(3)])
    assert sp.size_bytes() == size and sp.pending == 2
    sp.append([ev(2), ev(3)])
    assert len(list(tmp_path.glob("*.jsonl"))) == 2
    sp.close()
    assert _drain_spool(tmp_path) == [0, 1, 2, 3]


def test_cursor_write_failure_does_not_resend_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.spool as mod

    sp = Spool(tmp_path, 10**7)
    sp.append([ev(i) for i in range(4)])
    real = mod.atomic_write_text

    def full(*a: Any, **k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mod, "atomic_write_text", full)
    assert [e["seq"] for e in sp.peek(2)] == [0, 1]
    sp.commit(2)  # says so on stderr, does not raise
    assert [e["seq"] for e in sp.peek(10)] == [2, 3]
    monkeypatch.setattr(mod, "atomic_write_text", real)


# ---------------------------------------------------------------------- crash points (A2, A3)


def _crash_child(target: str, k: int, body: Callable[[Callable[[str], None]], None]) -> bytes:
    """Run ``body(emit)`` in a forked child that ``os._exit(137)``s at the k-th call of
    ``os.<target>``; return what it emitted (lines through a pipe, unaffected by the patch)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        try:
            os.close(rfd)
            real = getattr(os, target)
            calls = [0]

            def crashing(*a: Any, **kw: Any) -> Any:
                calls[0] += 1
                if calls[0] == k:
                    os._exit(137)
                return real(*a, **kw)

            setattr(os, target, crashing)
            body(lambda line: os.write(wfd, line.encode() + b"\n") and None)
            os._exit(0)
        except BaseException:
            os._exit(3)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        out = fh.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) in (0, 137)
    return out


@pytest.mark.parametrize("target", ["fsync", "replace"])
def test_seq_never_reused_across_crashes(tmp_path: Path, target: str) -> None:
    """A3: three collectors of one run in a row, each killed at the k-th fsync/replace of its
    seq reservation (or finishing cleanly); no seq is emitted twice and the next start is
    above every seq emitted."""
    for k in range(1, 9):
        directory = tmp_path / f"{target}-{k}"
        emitted: list[int] = []

        def collector(emit: Callable[[str], None], d: Path = directory) -> None:
            lock = RunLock(d, "run")
            seq = lock.next_seq()
            for _ in range(130):  # crosses block renewals
                if lock.reserve(seq):
                    emit(str(seq))
                    seq += 1
            lock.save_seq(seq)

        for _ in range(3):
            emitted += [int(x) for x in _crash_child(target, k, collector).split()]
        assert len(emitted) == len(set(emitted)), f"seq reused (crash at {target} #{k})"
        lock = RunLock(directory, "run")
        assert lock.next_seq() > max(emitted, default=-1)
        lock.release()


def test_spool_crash_points_lose_nothing(tmp_path: Path) -> None:
    """A2: a child appends and delivers (peek, send, commit) until killed at the k-th
    fsync/replace/unlink; everything it appended is delivered or still pending, and
    re-sent events are at most one batch."""
    for target in ("fsync", "replace", "unlink"):
        for k in range(1, 12):
            directory = tmp_path / f"{target}-{k}"

            def work(emit: Callable[[str], None], d: Path = directory) -> None:
                sp = Spool(d, max_bytes=10**7, segment_bytes=600)
                for i in range(0, 30, 3):
                    sp.append([ev(j) for j in range(i, i + 3)])
                    emit(f"a {i} {i + 1} {i + 2}")
                    if i % 6 == 3:
                        batch = sp.peek(4)
                        emit("d " + " ".join(str(e["seq"]) for e in batch))  # the broker has them
                        sp.commit(len(batch))

            log = _crash_child(target, k, work).decode().splitlines()
            appended = {int(x) for line in log if line.startswith("a") for x in line.split()[1:]}
            delivered = [int(x) for line in log if line.startswith("d") for x in line.split()[1:]]
            pending = _drain_spool(directory)
            assert appended <= set(delivered) | set(pending), f"lost at {target} #{k}"
            assert len(set(delivered) & set(pending)) <= 4, f"over a batch again at {target} #{k}"


def test_unreadable_seq_file_is_refused_not_read_as_zero(tmp_path: Path) -> None:
    from carbonpipe.core.errors import UserError

    lock = RunLock(tmp_path, "run")
    lock.reserve(0)
    lock.release()
    (tmp_path / "seq").write_text("")  # damaged outside the collector
    lock = RunLock(tmp_path, "run")
    with pytest.raises(UserError, match="highest seq in Kafka"):
        lock.next_seq()
    lock.release()


def test_dropped_events_stay_cumulative_across_collectors(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, "run")
    lock.save_seq(10, dropped_events=7)
    lock.release()
    lock = RunLock(tmp_path, "run")
    pub = Publisher(MemorySink(), Spool(tmp_path / "segments", 10**6),
                    dropped_before=lock.dropped_before())
    event = ev(10)
    pub.publish(event)
    assert event["dropped_events"] == 7
    pub.close()
    lock.release()


# ------------------------------------------------------------------------- run-id paths (A4)

CLASHES = [".", "..", "a/b", "a_b", "x" * 130, "x" * 120 + "Y", "эксперимент", "компьютеры!",
           "../../etc", "", "a\x00b", "run+0123456789abcdef"]


def _assert_folders(root: Path, ids: list[str]) -> None:
    names = [safe_name(r) for r in ids]
    assert len(set(names)) == len(ids), "two run ids share a spool folder"
    for name in names:
        assert name not in ("", ".", "..") and not name.startswith(".")
        assert "/" not in name and "\x00" not in name and len(name.encode()) <= 255
        assert (root / name).resolve().parent == root.resolve()


def test_run_id_folder_examples(tmp_path: Path) -> None:
    _assert_folders(tmp_path, CLASHES)
    assert safe_name("exp-42_v1.0") == "exp-42_v1.0"  # plain ids: folders of older collectors


@given(st.lists(st.text(max_size=200), unique=True, max_size=20))
@settings(max_examples=150, deadline=None)
def test_run_id_folders_stay_inside_the_root_and_are_distinct(ids: list[str]) -> None:
    _assert_folders(Path(tempfile.gettempdir()) / "spool-root", ids)


@pytest.fixture
def flush_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemorySink]:
    import collector.publish as publish

    sink = MemorySink()
    monkeypatch.setattr(publish, "KafkaSink", lambda *a, **k: sink)
    yield sink


def _spool_runs(root: Path, ids: list[str]) -> None:
    for rid in ids:
        lock = RunLock(root / safe_name(rid), rid)
        sp = Spool(lock.dir / "segments", 10**6)
        sp.append([{"run_id": rid, "seq": 0}])
        sp.close()
        lock.release()


def test_flush_spool_finds_every_run(tmp_path: Path, flush_sink: MemorySink) -> None:
    from carbonpipe.core.config import load_settings
    from collector.cli import flush_spool

    s = load_settings(home=tmp_path, zone="GB")
    _spool_runs(s.spool_dir, CLASHES)
    live = RunLock(s.spool_dir / safe_name("live"), "live")  # a running collector's: skipped
    assert flush_spool(s) == 0
    live.release()
    assert sorted(e["run_id"] for e in flush_sink.events) == sorted(CLASHES)
    assert (s.spool_dir / safe_name("..") / RUN_ID_FILE).read_text(encoding="utf-8") == ".."


@given(st.lists(st.text(min_size=1, max_size=150), unique=True, min_size=1, max_size=6))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_flush_spool_finds_arbitrary_run_ids(flush_sink: MemorySink, ids: list[str]) -> None:
    from carbonpipe.core.config import load_settings
    from collector.cli import flush_spool

    flush_sink.events.clear()
    with tempfile.TemporaryDirectory() as home:
        s = load_settings(home=home, zone="GB")
        _spool_runs(s.spool_dir, ids)
        assert flush_spool(s) == 0
    assert sorted(e["run_id"] for e in flush_sink.events) == sorted(ids)


def test_a_folder_of_another_run_is_refused(tmp_path: Path) -> None:
    from carbonpipe.core.errors import UserError

    RunLock(tmp_path / "f", "one").release()
    with pytest.raises(UserError, match="belongs to run 'one'"):
        RunLock(tmp_path / "f", "two")
