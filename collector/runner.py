"""Wire settings to sources, sampler, spool and sink; run the sampling loop in a thread.

One collector per host and run: a lock file in the run's spool directory refuses a second
one (e.g. every DDP rank calling ``track``), so devices are counted once, never per rank.

Why one module of ~500 lines: the run's lifecycle (zone and intensity choice, the run lock and
seq reservation, the sampling loop, assembly from settings) is the collector's one
composition root; its parts are small and each is used only here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from carbonpipe.core.config import ConfigError, Settings
from carbonpipe.core.errors import UserError
from carbonpipe.core.fsutil import atomic_write_text
from collector import progress
from collector.devices.cpu import make_cpu_source
from collector.devices.gpu import GpuSource, make_gpu_source
from collector.devices.powercap import Opener, default_opener
from collector.devices.ram import make_ram_source
from collector.events import RunIdentity
from collector.observers import EventObserver
from collector.output import RunReport
from collector.procs import ProcessTree
from collector.publish import NullSink, Publisher, Sink, StdoutSink, kafka_sink
from collector.sampler import Sampler
from collector.spool import Spool
from collector.summary import Intensity, RunResult
from collector.tdp import cpu_model_name, lookup_tdp, sockets


def resolve_zone(flag: str | None, settings: Settings, isolate: bool = False) -> str:
    """The run's grid zone: ``carbonpipe.intensity.zones.default_zone`` (flag, settings, cloud
    region, the cloud runtime's region, allow_fallback_zone, else WORLD). ``isolate`` (the CLI,
    before any thread exists) runs it in a forked child: its imports (jsonschema and friends,
    ~5 MB) then never count against the long-lived collector."""
    return choose_intensity(flag, settings, isolate).zone


INTERVAL_RANGE_S = (0.1, 3600.0)  # below 0.1 s the collector's own CPU use dominates


def choose_intensity(flag: str | None, settings: Settings, isolate: bool = False) -> Intensity:
    """The zone of the run and the intensity its summary and prediction are charged at.

    A configured zone (``resolve_zone``: flag, settings, cloud region, allow_fallback_zone)
    gets its annual average from ``settings.zone_averages_path`` (country average for a
    sub-zone). With nothing configured the run still measures: the zone ``default_zone``
    guesses (a cloud runtime's region, else ``WORLD``, the table's cited world average),
    labelled a fallback.
    """
    if isolate and hasattr(os, "fork"):
        d = json.loads(_in_child(lambda: json.dumps(asdict(choose_intensity(flag, settings)))))
        return Intensity(**d)
    from carbonpipe.intensity.static import StaticProvider
    from carbonpipe.intensity.zones import WORLD, default_zone

    try:
        choice = default_zone(settings, flag)
    except Exception as exc:  # UnknownZone and friends: say how to fix it
        raise ConfigError(f"{exc}{'' if flag else ' (or pass --zone Z)'}") from None
    zone, configured = choice.zone, not choice.flagged

    static = StaticProvider(settings.zone_averages_path)
    try:
        avg, note = static.lookup(zone)
        fallback = not configured
    except Exception:  # NotCovered: a known zone without an annual average in the table
        avg, note = static.lookup(WORLD)
        note, fallback = f" (WORLD average: no annual average for {zone})", True
    return Intensity(
        zone=zone,
        g_per_kwh=avg.carbon_intensity_g_per_kwh,
        provider="static",
        source=f"{static.path.name}: {avg.year} annual average, {avg.source}{note}",
        fallback=fallback,
    )


def check_interval(value: float | None, name: str = "--interval") -> float | None:
    """None or a sampling interval in INTERVAL_RANGE_S; else ConfigError naming ``name``."""
    lo, hi = INTERVAL_RANGE_S
    if value is not None and not (lo <= value <= hi):  # also refuses NaN
        raise ConfigError(
            f"{name} {value:g} is out of range: give seconds between samples, "
            f"{lo:g} to {hi:g} (default 1)"
        )
    return value


def _in_child(fn: Callable[[], str]) -> str:
    """Run ``fn`` in a forked child; its result or ConfigError message comes back by pipe."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 0
        try:
            msg = "ok:" + fn()
        except ConfigError as exc:
            msg, code = "err:" + str(exc), 1
        except BaseException as exc:
            msg, code = f"err:{type(exc).__name__}: {exc}", 1
        os.write(wfd, msg.encode())
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        out = fh.read().decode()
    os.waitpid(pid, 0)
    kind, _, text = out.partition(":")
    if kind != "ok":
        raise ConfigError(text or "zone resolution failed")
    return text


PLAIN_RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}")
RUN_ID_FILE = "run_id"  # in each run's spool folder: the real run id (UTF-8)
SEQ_FILE = "seq"
DROPPED_FILE = "dropped_events"


def safe_name(run_id: str) -> str:
    """The run's spool folder name: one path component, never hidden, distinct per run id.

    A plain id (ASCII letters, digits and ``._-``, not starting with ``.``, at most 120
    characters) is its own name, as it always was, so folders of older collectors still match.
    Any other id (``.``, ``..``, ``a/b``, 130 characters, Cyrillic) gets a readable prefix,
    ``+`` and 16 hex digits of its SHA-256: ``+`` never occurs in a plain id, so the two kinds
    never meet, and the hash separates ids that read alike (``a/b`` and ``a_b``; ids sharing
    their first 120 characters). The folder's ``run_id`` file keeps the real id
    (``RunLock``), for ``--flush-spool`` and to catch a collision.
    """
    if PLAIN_RUN_ID.fullmatch(run_id):
        return run_id
    prefix = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:40].lstrip(".") or "run"
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{prefix}+{digest}"


def check_new_run(settings: Settings, run_id: str, resume: bool) -> None:
    """Unless ``resume``: refuse a run id this host already collected (its spool folder holds
    a seq file). Re-using one used to continue the earlier run silently (seq went on)."""
    run_dir = settings.spool_dir / safe_name(run_id)
    if not resume and ((run_dir / SEQ_FILE).exists() or (run_dir / "segments").exists()):
        raise UserError(
            f"run id {run_id!r} was already collected on this host ({run_dir}); pass "
            "--resume (track: resume=True) to continue it, or another --run-id (or none, "
            "for a generated one)"
        )


class RunLock:
    """flock on <spool>/lock, and the run's next seq so a restarted collector continues it.

    The seq file holds the end of the block of seqs reserved for use (written before the
    first seq of the block is emitted), and the exact next seq after a clean stop: after a
    crash the next collector starts at the block's end (a gap, never a repeated seq) without a
    file write every sample. Writes are atomic and fsync'd (``atomic_write_text``): a crash
    at any point leaves the old reservation or the new one, both at or above every seq
    emitted. A seq file that exists but holds no number is refused, never read as 0.

    ``run_id`` (the collector; ``--flush-spool`` passes none) is written to the folder's
    ``run_id`` file, and a folder that names another run is refused (a folder-name
    collision). The count of events lost so far (``dropped_events``) is kept beside the seq,
    so it stays cumulative across collectors of the run.
    """

    SEQ_BLOCK = 100

    def __init__(self, directory: Path, run_id: str | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self._fh: IO[str] = open(directory / "lock", "a+", encoding="ascii")  # noqa: SIM115
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise UserError(
                f"another collector already runs for this run on this host ({directory}); "
                "one collector per host counts each device once"
            ) from None
        self._reserved = -1
        self._write_error: str | None = None
        self._dropped_saved = self.dropped_before()
        if run_id is not None:
            try:
                self._claim(run_id)
            except BaseException:
                self.release()
                raise

    def _claim(self, run_id: str) -> None:
        known = self.stored_run_id()
        if known is None:
            try:
                atomic_write_text(self.dir / RUN_ID_FILE, run_id, fsync=True)
            except OSError as exc:  # a full disk must not stop the measurement
                _warn(f"could not record the run id in {self.dir}", exc)
        elif known != run_id:
            raise UserError(
                f"spool folder {self.dir} belongs to run {known!r}, not {run_id!r}; pass "
                "another --run-id (or move that folder away after `carbonpipe collect "
                "--flush-spool`)"
            )

    def stored_run_id(self) -> str | None:
        """The run id this folder was made for; None for folders of older collectors."""
        try:
            return (self.dir / RUN_ID_FILE).read_text(encoding="utf-8")
        except (OSError, ValueError):
            return None

    def next_seq(self) -> int:
        """The first seq this collector may emit: 0 for a new run, else the seq file's."""
        path = self.dir / SEQ_FILE
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            text = f"<unreadable: {exc}>"
        if text.strip().isdigit():
            return int(text)
        raise UserError(
            f"{path} holds {text[:40]!r}, not the run's next seq: starting again at 0 would "
            "re-use seqs the pipeline already has (and then drops as duplicates). Write a "
            "number above every seq this run sent into that file (e.g. the highest seq in "
            "Kafka + 1), or collect under another --run-id"
        )

    def dropped_before(self) -> int:
        """``dropped_events`` of earlier collectors of this run (0 when unknown)."""
        try:
            return max(0, int((self.dir / DROPPED_FILE).read_text(encoding="ascii")))
        except (OSError, ValueError):
            return 0

    def save_dropped(self, dropped_events: int) -> None:
        if dropped_events != self._dropped_saved:
            atomic_write_text(self.dir / DROPPED_FILE, str(dropped_events), fsync=True)
            self._dropped_saved = dropped_events

    def _write_seq(self, value: int) -> None:
        atomic_write_text(self.dir / SEQ_FILE, str(value), fsync=True)

    def reserve(self, seq: int, dropped_events: int = 0) -> bool:
        """Called before emitting ``seq``; True when it may be emitted.

        The reservation is renewed half a block early, so a write that fails (full disk) is
        retried for SEQ_BLOCK/2 samples while seqs already reserved on disk are used. Once
        they run out it says False: the sample waits (the next one covers its interval, so
        its energy is not lost) rather than emit a seq a crash could hand out again.
        """
        if seq + self.SEQ_BLOCK // 2 >= self._reserved:
            try:
                self._write_seq(seq + self.SEQ_BLOCK)
                self._reserved = seq + self.SEQ_BLOCK
                self.save_dropped(dropped_events)
            except OSError as exc:
                if str(exc) != self._write_error:
                    _warn(
                        f"could not reserve seqs in {self.dir / SEQ_FILE} (once the reserved "
                        "ones run out, samples wait for it; free space on that disk)",
                        exc,
                    )
                self._write_error = str(exc)
            else:
                self._write_error = None
        return seq < self._reserved

    def save_seq(self, next_seq: int, dropped_events: int = 0) -> None:
        """Clean stop: the exact next seq (on a failed write the reservation stays: a gap)."""
        try:
            self._write_seq(next_seq)
            self.save_dropped(dropped_events)
        except OSError as exc:
            _warn(f"could not save the next seq in {self.dir / SEQ_FILE}", exc)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()


def _warn(what: str, exc: BaseException) -> None:
    print(f"carbonpipe collector: {what}: {type(exc).__name__}: {exc}", file=sys.stderr,
          flush=True)


class Collector:
    """The sampling loop; ``stop`` sends the final ``end`` event and flushes."""

    def __init__(
        self,
        sampler: Sampler,
        publisher: Publisher,
        interval_s: float,
        lock: RunLock | None = None,
        should_stop: Callable[[], bool] | None = None,
        gpu: GpuSource | None = None,
        observers: Sequence[EventObserver] = (),
    ) -> None:
        self.sampler = sampler
        self.observers = list(observers)
        self.publisher = publisher
        self.interval_s = interval_s
        self.lock = lock
        self.should_stop = should_stop
        self.left_in_spool = 0
        self.report: RunReport | None = None
        self._annotations: dict[str, Any] = {}
        self._gpu = gpu
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="carbonpipe-sample", daemon=True)

    def start(self) -> Collector:
        self._thread.start()
        return self

    def _safe_sample(self, event_type: str) -> None:
        try:
            dropped = self.publisher.dropped_events
            if self.lock and not self.lock.reserve(self.sampler.seq, dropped):
                return  # no durable seq reservation (RunLock.reserve): the next sample covers it
            events = self.sampler.samples(event_type)  # several after a long freeze
            # A split beyond the reserved block (a freeze of ~50 h) needs its own reservation.
            if self.lock and not self.lock.reserve(events[-1]["seq"], dropped):
                return
            for event in events:
                event.update(self._annotations)
                self.publisher.publish(event)
        except Exception as exc:  # a bad sample must not end the collection
            _warn("sample failed", exc)
            return
        for event in events:
            for obs in self.observers:
                try:
                    obs.on_event(event)
                except Exception as exc:  # an observer must not end the collection either
                    _warn(f"{type(obs).__name__} failed", exc)

    def annotate(self, fields: Mapping[str, Any]) -> None:
        """Fields added to every later event (the prediction, once made)."""
        self._annotations = {**self._annotations, **fields}

    def sample_now(self) -> None:
        """Take a sample at once (an epoch boundary), off the regular schedule."""
        self._wake.set()

    def _loop(self) -> None:
        next_t = time.monotonic() + self.interval_s
        try:
            while True:
                woken = self._wake.wait(max(0.0, next_t - time.monotonic()))
                if self._stop.is_set():
                    break
                self._wake.clear()
                self._safe_sample("sample")
                if not woken:
                    next_t += self.interval_s
                if next_t < time.monotonic():  # fell behind (suspended host): do not burst
                    next_t = time.monotonic() + self.interval_s
                if self.should_stop and self.should_stop():
                    break
        finally:
            self._safe_sample("end")
            self.left_in_spool = self.publisher.close()
            if self.lock:
                self.lock.save_seq(self.sampler.seq, self.publisher.dropped_events)
            for obs in self.observers:
                try:
                    obs.close()
                except Exception as exc:  # closing one must not skip the others
                    _warn(f"{type(obs).__name__} close failed", exc)
            if self._gpu is not None:
                self._gpu.close()
            if self.lock:
                self.lock.release()
            self._done.set()

    def stop(self, timeout_s: float | None = None) -> int:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return self.left_in_spool

    def result(self) -> RunResult | None:
        """The run's figures so far (complete after ``stop``/``wait``)."""
        if self.report is None:
            return None
        return self.report.result(self.left_in_spool, self.publisher.dropped_events)

    def wait(self) -> None:
        """Block until the loop ended by itself (watched process gone) or was stopped."""
        while not self._done.wait(5.0):  # signals interrupt the wait (POSIX)
            pass


def build_collector(
    settings: Settings,
    *,
    run_id: str,
    user_id: str,
    model_name: str,
    pid: int | None = None,
    zone: str | None = None,
    interval_s: float | None = None,
    tags: dict[str, Any] | None = None,
    sink: Sink | None = None,
    stdout: bool = False,
    no_kafka: bool = False,
    progress_file: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    opener: Opener = default_opener,
    env: Mapping[str, str] | None = None,
    zone_checked: bool = False,
    observers: Sequence[EventObserver] = (),
    intensity: Intensity | None = None,
    resume: bool = True,
    total_epochs: int | None = None,
    predict_after_epochs: int = 1,
) -> Collector:
    """Everything from settings; ``sink``/``opener``/``env`` are injectable for tests.

    ``intensity``: the zone and its intensity, already chosen (``choose_intensity``; the CLI
    does it first, in a forked child); ``zone_checked`` is kept for older callers. ``resume=False``
    refuses a run id this host already collected (its spool folder has a seq file): re-using
    one silently continued the earlier run. ``total_epochs`` (else what a callback reports)
    and ``predict_after_epochs``: the prediction (``collector.predict``).
    """
    check_interval(interval_s, "interval_s")
    if intensity is None:
        intensity = choose_intensity(zone, settings)
    region = intensity.zone
    pid = os.getpid() if pid is None else pid
    tree = ProcessTree(pid)
    check_new_run(settings, run_id, resume)
    lock = RunLock(settings.spool_dir / safe_name(run_id), run_id)
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    tdp = lookup_tdp(cpu_model_name(), settings.cpu_tdp_w, threads, sockets())
    try:
        cpu = make_cpu_source(settings.sysfs_root, tdp, opener)
        ram = make_ram_source(settings.sysfs_root, settings.ram_w_per_gb, opener)
        gpu = make_gpu_source(env)
        ident = RunIdentity(run_id, user_id, model_name, socket.gethostname(), region)
        sampler = Sampler(
            ident,
            tree,
            cpu,
            ram,
            tdp,
            gpu=gpu,
            tags={"pid": pid, **(tags or {})},
            progress_file=progress_file,
            seq_start=lock.next_seq(),
        )
        if sink is None:
            if no_kafka:
                sink = NullSink()
            elif stdout:
                sink = StdoutSink()
            else:
                sink = kafka_sink(settings, ident.host)
        spool = Spool(lock.dir / "segments", int(settings.spool_max_mb * 2**20))
        publisher = Publisher(sink, spool, dropped_before=lock.dropped_before())
    except BaseException:
        lock.release()
        raise
    report = RunReport(
        intensity,
        total_epochs=lambda: total_epochs or progress.total_epochs(progress_file),
        predict_after_epochs=predict_after_epochs,
    )
    collector = Collector(
        sampler,
        publisher,
        settings.sample_interval_s if interval_s is None else interval_s,
        lock=lock,
        should_stop=should_stop or (lambda: not tree.alive()),
        gpu=gpu,
        observers=[report, *observers],
    )
    collector.report = report
    report.annotate = collector.annotate
    return collector
