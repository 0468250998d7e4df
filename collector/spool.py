"""Bounded on-disk spool: events wait here while Kafka is unreachable or slow.

Append-only JSON-lines segment files ``<n>.jsonl`` in one directory, fsync'd once per
appended batch, so an event the collector accepted survives a crash of the collector or
host. Replay reads from a persisted cursor (segment, byte offset) in order; committed
segments are deleted.

Full-spool rule (keep the newest data): when the segments exceed ``max_bytes``, the OLDEST
whole segment (at most 1/8 of the budget) is deleted, even if unsent; every such drop is
printed to stderr and added to ``dropped_events``. The newest segment is never dropped.
A line that does not parse (torn write at a crash) is skipped and counted in ``corrupt``.

Disk errors (ENOSPC, EIO, EACCES, EFBIG): ``append`` raises ``OSError`` and leaves the spool as
it was (the failed batch is cut off again with ``ftruncate``, so it is never half in the spool
and half in the caller's hands); the caller keeps the batch (``Publisher``'s in-memory tail)
and tries again later. After a failed write the next batch goes to a new segment, so a
per-file limit (RLIMIT_FSIZE, EFBIG) costs one segment, not the spool. Bookkeeping after a
write that did land (cursor, segment deletion, size bound) never raises: the in-memory state
is authoritative and the file catches up at the next commit; a crash in between replays
events already sent (a duplicate, never a loss).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

from carbonpipe.core.fsutil import atomic_write_text

CURSOR = "cursor"
MIN_SEGMENT_BYTES = 4096


class Spool:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.segment_bytes = segment_bytes or max(MIN_SEGMENT_BYTES, self.max_bytes // 8)
        self.dropped_events = 0
        self.corrupt = 0
        self._fh: IO[bytes] | None = None
        self._active: Path | None = None
        self._cursor = self._load_cursor()
        self._peeked: list[tuple[str, int]] = []
        self.pending = self._count_pending()

    # ------------------------------------------------------------------ segments
    def _segments(self) -> list[Path]:
        return sorted(self.dir.glob("*.jsonl"), key=lambda p: int(p.stem))

    def _new_segment(self) -> Path:
        segs = self._segments()
        n = int(segs[-1].stem) + 1 if segs else 0
        return self.dir / f"{n:012d}.jsonl"

    def _load_cursor(self) -> tuple[str, int]:
        try:
            name, off = (self.dir / CURSOR).read_text(encoding="ascii").split()
            return name, int(off)
        except (OSError, ValueError):
            segs = self._segments()
            return (segs[0].name if segs else "", 0)

    def _save_cursor(self) -> None:
        atomic_write_text(self.dir / CURSOR, f"{self._cursor[0]} {self._cursor[1]}\n", fsync=True)

    def _unread(self) -> list[tuple[Path, int]]:
        """(segment, start offset) pairs from the cursor on."""
        name, off = self._cursor
        out = []
        for seg in self._segments():
            if name and int(seg.stem) < int(Path(name).stem):
                continue
            out.append((seg, off if seg.name == name else 0))
        return out

    def _count_pending(self) -> int:
        n = 0
        for seg, off in self._unread():
            with open(seg, "rb") as fh:
                fh.seek(off)
                n += sum(1 for line in fh if line.strip())
        return n

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._segments())

    # ------------------------------------------------------------------ writing
    def append(self, events: list[dict[str, Any]]) -> None:
        """Write a batch and fsync it; then enforce the size bound (drop oldest).

        Raises ``OSError`` when the batch could not be made durable; nothing of it then stays
        in the spool (see the module doc), so the caller may keep and retry all of it.
        """
        if not events:
            return
        data = b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events)
        if self._fh is None or self._active is None or not self._active.exists():
            self._open_new()
        assert self._fh is not None
        fd = self._fh.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            self._undo_write(fd, start, exc)
            raise
        self.pending += len(events)
        self._after_write(start + len(data))

    def _undo_write(self, fd: int, start: int, error: OSError) -> None:
        """Cut a failed batch off again (truncating frees space, so it works on a full disk)
        and start the next batch in a new segment unless this one is empty (said once per
        segment; the caller says what it does with the batch)."""
        try:
            os.ftruncate(fd, start)
        except OSError as exc:  # a torn tail stays: replay skips it as corrupt
            self._warn(f"could not cut a failed write off {self._active} ({exc})")
        if start > 0:
            self._warn(f"spool write failed in {self._active} ({error}); the next batch goes "
                       "to a new segment")
            self._close_active()

    def _after_write(self, end: int) -> None:
        """Rotation and the size bound: the batch is durable, so these must not raise."""
        try:
            if end >= self.segment_bytes:
                self._close_active()
            self._enforce_bound()
        except OSError as exc:
            self._warn(f"spool bookkeeping failed in {self.dir} ({exc}); retried later")

    def _warn(self, text: str) -> None:
        print(f"carbonpipe collector: {text}", file=sys.stderr, flush=True)

    def _open_new(self) -> None:
        self._close_active()
        self.dir.mkdir(parents=True, exist_ok=True)  # deleted under us: make it again
        active = self._new_segment()
        # unbuffered: a failed write must not stay in a buffer and land with the next batch
        self._fh = open(active, "ab", buffering=0)  # noqa: SIM115 - kept open across batches
        self._active = active
        if not self._cursor[0]:
            self._cursor = (self._active.name, 0)

    def _close_active(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):  # unbuffered: nothing is lost by a failed close
                self._fh.close()
        self._fh = None

    def _enforce_bound(self) -> None:
        segs = self._segments()
        total = sum(p.stat().st_size for p in segs)
        while total > self.max_bytes and len(segs) > 1:
            oldest = segs.pop(0)
            size = oldest.stat().st_size
            lost = self._unsent_in(oldest)
            oldest.unlink()
            total -= size
            self.pending -= lost
            self.dropped_events += lost
            if self._cursor[0] == oldest.name or not (self.dir / self._cursor[0]).exists():
                self._cursor = (segs[0].name, 0)
                self._save_cursor()
            print(
                f"carbonpipe collector: SPOOL FULL ({self.max_bytes} bytes at {self.dir}): "
                f"dropped oldest segment {oldest.name} with {lost} unsent events "
                f"(total dropped {self.dropped_events}); raise CARBONPIPE_SPOOL_MAX_MB",
                file=sys.stderr,
                flush=True,
            )

    def _unsent_in(self, seg: Path) -> int:
        for s, off in self._unread():
            if s == seg:
                with open(s, "rb") as fh:
                    fh.seek(off)
                    return sum(1 for line in fh if line.strip())
        return 0

    # ------------------------------------------------------------------ replay
    def peek(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` oldest unsent events, in order (nothing is removed until commit)."""
        out: list[dict[str, Any]] = []
        self._peeked = []
        for seg, off in self._unread():
            with open(seg, "rb") as fh:
                fh.seek(off)
                while len(out) < n:
                    line = fh.readline()
                    if not line:
                        break
                    if not line.strip():
                        continue
                    try:
                        if not line.endswith(b"\n") and seg == self._active:
                            break  # cannot happen (whole batches are written), but be safe
                        out.append(json.loads(line))
                        self._peeked.append((seg.name, fh.tell()))
                    except ValueError:
                        if out:  # stop before it; the next peek starts here and skips it
                            return out
                        self._skip_corrupt(seg.name, fh.tell())
            if len(out) >= n:
                break
        return out

    def _skip_corrupt(self, name: str, end: int) -> None:
        self.corrupt += 1
        self.pending = max(0, self.pending - 1)
        self._cursor = (name, end)
        self._save_cursor()
        print(
            f"carbonpipe collector: skipped a torn line in spool {self.dir / name}",
            file=sys.stderr,
            flush=True,
        )

    def commit(self, n: int) -> None:
        """Mark the first ``n`` peeked events as delivered; delete consumed segments.

        The in-memory cursor moves first and is what this process replays from; a failure to
        persist it (full disk) is said and retried at the next commit. A crash before that
        replays the batch again (duplicates, which the job removes by (host, run_id, seq)).
        """
        if n <= 0 or not self._peeked:
            return
        n = min(n, len(self._peeked))
        self._cursor = self._peeked[n - 1]
        self.pending = max(0, self.pending - n)
        self._peeked = []
        try:
            self._gc()
            self._save_cursor()
        except OSError as exc:
            self._warn(f"could not persist the spool cursor in {self.dir} ({exc}); retried "
                       "at the next commit (a crash before then re-sends these events)")

    def _gc(self) -> None:
        name, off = self._cursor
        for seg in self._segments():
            consumed = int(seg.stem) < int(Path(name).stem) or (
                seg.name == name and off >= seg.stat().st_size and seg != self._active
            )
            if consumed:
                seg.unlink()
        if self.pending == 0:
            self._close_active()
            for seg in self._segments():
                seg.unlink()
            self._cursor = ("", 0)
            self._active = None

    def close(self) -> None:
        self._close_active()


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may be short near a limit)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
