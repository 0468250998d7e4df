"""Wire settings to sources, sampler, spool and sink; run the sampling loop in a thread.

One collector per host and run: a lock file in the run's spool directory refuses a second
one (e.g. every DDP rank calling ``track``), so devices are counted once, never per rank.
"""

from __future__ import annotations

import contextlib
import fcntl
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
from collector.publish import KafkaSink, NullSink, Publisher, Sink, StdoutSink
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


def safe_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:120] or "run"


def check_new_run(settings: Settings, run_id: str, resume: bool) -> None:
    """Unless ``resume``: refuse a run id this host already collected (its spool folder holds
    a seq file). Re-using one used to continue the earlier run silently (seq went on)."""
    run_dir = settings.spool_dir / safe_name(run_id)
    if not resume and ((run_dir / "seq").exists() or (run_dir / "segments").exists()):
        raise UserError(
            f"run id {run_id!r} was already collected on this host ({run_dir}); pass "
            "--resume (track: resume=True) to continue it, or another --run-id (or none, "
            "for a generated one)"
        )


class RunLock:
    """flock on <spool>/lock, and the run's next seq so a restarted collector continues it.

    The seq file is written once per SEQ_BLOCK samples, holding the end of the block being
    used, and exactly at a clean stop: after a crash the next collector skips to the block's
    end (a gap, never a repeated seq) without a file write every sample.
    """

    SEQ_BLOCK = 100

    def __init__(self, directory: Path) -> None:
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

    def next_seq(self) -> int:
        try:
            return int((self.dir / "seq").read_text(encoding="ascii"))
        except (OSError, ValueError):
            return 0

    def _write_seq(self, value: int) -> None:
        atomic_write_text(self.dir / "seq", str(value), fsync=True)

    def reserve(self, seq: int) -> None:
        """Called before emitting ``seq``: persist a new block end when ``seq`` reaches it."""
        if seq >= self._reserved:
            self._reserved = seq + self.SEQ_BLOCK
            self._write_seq(self._reserved)

    def save_seq(self, next_seq: int) -> None:
        """Clean stop: the exact next seq."""
        self._write_seq(next_seq)

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
            if self.lock:
                self.lock.reserve(self.sampler.seq)
            events = self.sampler.samples(event_type)  # several after a long freeze
            for event in events:
                if self.lock:
                    self.lock.reserve(event["seq"])
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
            if self.lock:
                self.lock.save_seq(self.sampler.seq)
            self.left_in_spool = self.publisher.close()
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
        return self.report.result(self.left_in_spool) if self.report else None

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
    lock = RunLock(settings.spool_dir / safe_name(run_id))
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
                sink = KafkaSink(settings.kafka_bootstrap_servers, settings.metrics_topic)
        spool = Spool(lock.dir / "segments", int(settings.spool_max_mb * 2**20))
        publisher = Publisher(sink, spool)
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
