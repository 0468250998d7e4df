"""Sinks (Kafka, stdout, memory) and the Publisher that puts the spool between them.

Delivery rule: events go to the sink in order; whatever the sink did not acknowledge goes
to the spool, and while the spool holds anything every new event is appended behind it, so
order is kept. The spool is replayed oldest first with exponential backoff (1 s to 10 s).
Delivery is at-least-once: an ack lost in flight can repeat an event; (host, run_id, seq)
identifies it for de-duplication downstream. What is lost: nothing on SIGTERM/SIGINT or a
broker outage; on SIGKILL or power loss, the events still in memory (the batch being sent,
at most the send timeout's worth, ~10 s) - everything already spooled survives.

Why one module of ~500 lines: the sinks and the publisher's delivery loop (spool, in-memory
tail, backoff, loss accounting) are one state machine; split, its invariants (order kept,
every event delivered, spooled or counted lost) would span files.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from itertools import islice
from typing import IO, TYPE_CHECKING, Any, Protocol

from collector.spool import Spool

if TYPE_CHECKING:
    from carbonpipe.core.config import Settings

Event = dict[str, Any]


class Sink(Protocol):
    def send(self, events: list[Event]) -> int:
        """Deliver in order; return how many (a prefix) were acknowledged. Never raises."""
        ...

    def close(self) -> None: ...


class StdoutSink:
    """JSON lines on a stream (default stdout): for pipes, debugging and the benchmark."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, events: list[Event]) -> int:
        try:
            for e in events:
                self.stream.write(json.dumps(e, separators=(",", ":")) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            return 0
        return len(events)

    def close(self) -> None:
        return None


class MemorySink:
    """In-memory sink for tests; ``down = True`` makes it refuse like an unreachable broker."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.down = False
        self._lock = threading.Lock()

    def send(self, events: list[Event]) -> int:
        if self.down:
            return 0
        with self._lock:
            self.events.extend(events)
        return len(events)

    def close(self) -> None:
        return None


def reachable(bootstrap: str, timeout_s: float = 1.0) -> str | None:
    """None when a TCP connection to one of the bootstrap servers opens, else why not.

    A plain connect is the cheapest honest signal: a refused port answers at once, a dropped
    one after ``timeout_s``. kafka-python's own bootstrap waits ``bootstrap_timeout_ms``
    (default 30 s) in the producer's constructor before it says the same.
    """
    errors = []
    for server in (s.strip() for s in bootstrap.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or server, int(port)), timeout_s):
                return None
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {type(exc).__name__}: {exc}")
    return "; ".join(errors) or "no bootstrap server configured"


class KafkaSink:
    """kafka-python producer: idempotent, acks=all, key=run_id, small linger, ordered retries.

    max_in_flight_requests_per_connection=1 keeps order within a partition across retries.

    The producer is kept across failures where that is safe (H3): the idempotent producer
    de-duplicates only its own retries, so a new producer re-sending the spool turns every
    ack lost in flight into a duplicate in Kafka. A batch whose records all resolved (acked
    or failed: the producer holds none of them any more) keeps the producer; the next attempt
    first checks the broker is reachable (``check``) and otherwise spools without waiting. The
    producer is closed (unsent records aborted, so nothing it holds lands behind the spool's
    back) only when a record is still unresolved after the flush, when ``send`` itself raised,
    or after MAX_FAILED_BATCHES failed batches in a row with the broker reachable (a producer
    the broker no longer accepts, e.g. an unknown producer id after the broker lost its log).
    Duplicates that still reach Kafka are removed by the job on (host, run_id, seq).

    Why a broker that is away costs ~1 s, not 30: before a producer is made, ``check`` opens a
    plain TCP connection (``reachable``, ``connect_timeout_s``); and the producer's own
    ``bootstrap_timeout_ms`` (kafka-python's default 30000, spent inside its constructor) is
    capped by the same budget. Without both, a 3-second job with Kafka absent took 62 s: two
    30 s bootstraps, one for the first event and one for the replay at close. The state is
    said once on stderr when it changes (unreachable, reachable again), not per batch.
    """

    MAX_FAILED_BATCHES = 3

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 1.0,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.security = security or {}  # kafka-python kwargs (core.kafka_security)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._producer: Any = None
        self.producers_made = 0
        self._failed_batches = 0  # in a row, with the current producer
        self.down_reason: str | None = None  # last known: None = reachable or not yet tried

    def _say(self, text: str) -> None:
        _say(text)

    def check(self) -> bool:
        """Is the broker reachable now? Says so on stderr when that changed."""
        why = reachable(self.bootstrap, self.connect_timeout_s)
        if why and why != self.down_reason:
            self._say(
                f"Kafka unreachable at {self.bootstrap} ({why}); events go to the spool and are "
                "sent when it is back (or later with `carbonpipe collect --flush-spool`)"
            )
        elif not why and self.down_reason:
            self._say(f"Kafka reachable again at {self.bootstrap}; sending the spool")
        self.down_reason = why
        return why is None

    def _make(self) -> Any:
        from kafka import KafkaProducer  # lazy: --stdout and tests never import kafka

        self.producers_made += 1
        return KafkaProducer(
            bootstrap_servers=self.bootstrap.split(","),
            acks="all",
            enable_idempotence=True,  # the default in kafka-python 3, said for older pins
            linger_ms=5,
            retries=5,
            max_in_flight_requests_per_connection=1,
            max_block_ms=int(self.timeout_s * 1000),
            request_timeout_ms=int(self.timeout_s * 1000 / 2),
            delivery_timeout_ms=int(self.timeout_s * 1000),
            # default 30000, spent in __init__ when no broker answers (see the class doc)
            bootstrap_timeout_ms=int(max(1.0, 2 * self.connect_timeout_s) * 1000),
            **self.security,
        )

    def send(self, events: list[Event]) -> int:
        if (self._producer is None or self._failed_batches) and not self.check():
            return 0  # away: spool at once, keep the producer for when it is back
        futures = []
        try:
            if self._producer is None:
                self._producer = self._make()
            for e in events:
                futures.append(
                    self._producer.send(
                        self.topic,
                        key=str(e["run_id"]).encode(),
                        value=json.dumps(e, separators=(",", ":")).encode(),
                    )
                )
        except Exception as exc:  # records may sit in the producer: drop it with them
            self._say(f"kafka send failed ({type(exc).__name__}: {exc}); spooling")
            self._drop_producer()
            return 0
        with contextlib.suppress(Exception):  # judged per record below
            self._producer.flush(timeout=self.timeout_s)
        ok = 0
        for f in futures:  # the acknowledged prefix; order holds (1 request in flight)
            if not f.is_done or f.failed():
                break
            ok += 1
        if ok == len(events):
            self._failed_batches = 0
            return ok
        self._failed_batches += 1
        first = futures[ok]
        why = f"{first.exception}" if first.is_done else "not acknowledged in time"
        unresolved = any(not f.is_done for f in futures)
        if unresolved or self._failed_batches >= self.MAX_FAILED_BATCHES:
            self._say(f"kafka send failed after {ok}/{len(events)} ({why}); spooling, "
                      "new producer next time")
            self._drop_producer()
        else:
            self._say(f"kafka send failed after {ok}/{len(events)} ({why}); spooling, "
                      "keeping the producer")
        return ok

    def _drop_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):  # already broken
                self._producer.close(timeout=0)
        self._producer = None
        self._failed_batches = 0

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(timeout=self.timeout_s)
                self._producer.close(timeout=self.timeout_s)
            except Exception:
                pass
        self._producer = None


class NullSink:
    """Acknowledges and drops everything: ``collect --no-kafka`` (measure and report only)."""

    def send(self, events: list[Event]) -> int:
        return len(events)

    def close(self) -> None:
        return None


class Publisher:
    """Background delivery: ``publish`` never blocks the sampling loop, and no error ends it.

    Backlog, oldest first: the spool (disk), then the in-memory tail, which holds what the spool
    could not take (ENOSPC, EIO, EACCES, EFBIG). The tail is moved to the spool as soon as the
    disk takes it again (retried with the same 1-10 s backoff, halving the batch down to one
    event, so a per-file limit is met too), and sent straight from memory when the spool is
    empty or unreadable. It is bounded (``tail_max_events``, as is the queue from the sampling
    thread): past the bound the oldest events go, as with the spool's own full rule. Memory
    is at most 2 x ``tail_max_events`` + ``batch_max`` events (queue, tail, a batch in hand).

    Every event lost on the way (tail or queue overflow, the spool's full rule, torn lines,
    what memory still held at exit) counts in ``dropped_events``, cumulative per run
    (``dropped_before``: earlier collectors of the run). It goes into every later event as
    ``dropped_events`` (an optional contract field) and to stderr at ``close``. So every seq a
    collector emitted is delivered, left in the spool (``close``'s return), or counted lost.
    """

    BACKOFF_MIN_S = 1.0
    BACKOFF_MAX_S = 10.0
    # one hour of samples at the default 1 s interval, ~1 KB each: a few MB at most
    TAIL_MAX_EVENTS = 3600
    LOSS_SAY_EVERY_S = 60.0

    def __init__(
        self,
        sink: Sink,
        spool: Spool,
        batch_max: int = 500,
        dropped_before: int = 0,
        tail_max_events: int | None = None,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.batch_max = batch_max
        self.tail_max_events = tail_max_events or self.TAIL_MAX_EVENTS
        self.sent = 0
        self._q: queue.Queue[Event] = queue.Queue(maxsize=self.tail_max_events)
        self._tail: deque[Event] = deque()
        self._dropped_before = dropped_before
        self._lost = 0  # by this publisher itself (bounds, exit); the spool counts its own
        self._lost_lock = threading.Lock()
        self._loss_said = ("", 0.0)  # (reason, when) last said
        self._closing = threading.Event()
        self._backoff = 0.0
        self._retry_at = 0.0
        self._disk_backoff = 0.0
        self._disk_retry_at = 0.0
        self._disk_error: str | None = None
        self._spill_events = batch_max
        self._thread = threading.Thread(target=self._run, name="carbonpipe-publish", daemon=True)
        self._thread.start()

    @property
    def dropped_events(self) -> int:
        """Events of this run lost before delivery, cumulative (see the class doc)."""
        return self._dropped_before + self._lost + self.spool.dropped_events + self.spool.corrupt

    @property
    def in_memory(self) -> int:
        """Events held in memory only (queue and tail): lost if the process dies now."""
        return self._q.qsize() + len(self._tail)

    def publish(self, event: Event) -> None:
        dropped = self.dropped_events
        if dropped:
            event["dropped_events"] = dropped
        try:
            self._q.put_nowait(event)
        except queue.Full:  # the publisher is stuck far behind: keep measuring, count it
            self._lose(1, f"the delivery queue is full ({self.tail_max_events} events)")

    def _lose(self, n: int, why: str) -> None:
        """Count ``n`` lost events; said on stderr when the reason changes, else at most
        every LOSS_SAY_EVERY_S (a disk full for hours must not flood the job's terminal)."""
        with self._lost_lock:
            self._lost += n
            now = time.monotonic()
            if why == self._loss_said[0] and now - self._loss_said[1] < self.LOSS_SAY_EVERY_S:
                return
            self._loss_said = (why, now)
        _say(f"LOST events: {why} (this run: {self.dropped_events} lost so far; later "
             "events carry dropped_events)")

    def _drain(self, wait_s: float) -> list[Event]:
        out: list[Event] = []
        try:
            out.append(self._q.get(timeout=wait_s))
            while len(out) < self.batch_max:
                out.append(self._q.get_nowait())
        except queue.Empty:
            pass
        return [e for e in out if "__wake__" not in e]

    def _next_backoff(self, current_s: float) -> float:
        """Doubling, from BACKOFF_MIN_S to BACKOFF_MAX_S."""
        return min(self.BACKOFF_MAX_S, max(self.BACKOFF_MIN_S, current_s * 2))

    def _failed(self) -> None:
        self._backoff = self._next_backoff(self._backoff)
        self._retry_at = time.monotonic() + self._backoff

    def _send(self, events: list[Event]) -> int:
        try:
            n = self.sink.send(events)
        except Exception as exc:  # the protocol says never; a bug must not stop delivery
            _say(f"sink failed ({type(exc).__name__}: {exc}); events stay in the backlog")
            n = 0
        self.sent += n
        return n

    def _backlog(self) -> int:
        return self.spool.pending + len(self._tail)

    def _deliver(self, events: list[Event]) -> None:
        if self._backlog() or time.monotonic() < self._retry_at:
            self._stash(events)
            return
        n = self._send(events)
        if n < len(events):
            self._stash(events[n:])
            self._failed()
        else:
            self._backoff = 0.0

    def _stash(self, events: list[Event]) -> None:
        """Behind everything unsent: into the tail, which goes to the spool when it can."""
        self._tail.extend(events)
        self._spill()

    def _bound_tail(self) -> None:
        """After a replay attempt (the tail may just have been sent): keep the newest
        ``tail_max_events``, as the spool's full rule does."""
        over = len(self._tail) - self.tail_max_events
        if over > 0:
            for _ in range(over):
                self._tail.popleft()
            self._lose(over, f"the spool cannot be written ({self._disk_error}) and memory "
                             f"holds at most {self.tail_max_events} events")

    def _spill(self, force: bool = False) -> None:
        """Tail to spool, oldest first; a failed batch is halved and retried down to one
        event, then the disk backs off (1-10 s) and the events stay in the tail."""
        if not self._tail or (not force and time.monotonic() < self._disk_retry_at):
            return
        while self._tail:
            chunk = list(islice(self._tail, self._spill_events))
            try:
                self.spool.append(chunk)
            except OSError as exc:
                if self._spill_events > 1:
                    self._spill_events = max(1, self._spill_events // 2)
                    continue
                self._disk_failed(exc)
                return
            for _ in chunk:
                self._tail.popleft()
            self._spill_events = min(self.batch_max, self._spill_events * 2)
        self._disk_backoff = 0.0
        if self._disk_error is not None:
            _say(f"spool {self.spool.dir} writable again; events held in memory are on disk")
            self._disk_error = None

    def _disk_failed(self, exc: OSError) -> None:
        self._disk_backoff = self._next_backoff(self._disk_backoff)
        self._disk_retry_at = time.monotonic() + self._disk_backoff
        why = f"{type(exc).__name__}: {exc}"
        if why != self._disk_error:  # said when the state changes, not per retry
            _say(
                f"spool write failed in {self.spool.dir} ({why}); keeping up to "
                f"{self.tail_max_events} events in memory and retrying. Free space there, or "
                "point CARBONPIPE_SPOOL_DIR at another disk for later runs"
            )
        self._disk_error = why

    def _next_batch(self) -> tuple[list[Event], bool]:
        """The oldest unsent events and whether they come from the spool."""
        if self.spool.pending:
            try:
                batch = self.spool.peek(self.batch_max)
                if batch:
                    return batch, True
            except OSError as exc:  # unreadable now: send what memory holds meanwhile
                self._disk_failed(exc)
        return list(islice(self._tail, self.batch_max)), False

    def _replay(self) -> bool:
        """One replay batch; True when the backlog is empty afterwards."""
        if not self._backlog():
            return True
        if time.monotonic() < self._retry_at:
            return False
        batch, from_spool = self._next_batch()
        if not batch:
            return not self._backlog()
        n = self._send(batch)
        if from_spool:
            self.spool.commit(n)
        else:
            for _ in range(n):
                self._tail.popleft()
        if n < len(batch):
            self._failed()
            return False
        self._backoff = 0.0
        return not self._backlog()

    def _run(self) -> None:
        check = getattr(self.sink, "check", None)  # KafkaSink: a broker away is known in ~1 s
        if check is not None and not check():
            self._failed()  # spool from the first event; replay with backoff
        while not self._closing.is_set() or not self._q.empty():
            events: list[Event] = []
            try:
                # idle wake-ups cost CPU: wait for the next event, or the next retry
                wait = 30.0
                if self.spool.pending:
                    wait = self._retry_at - time.monotonic()
                if self._tail:
                    wait = min(wait, self._disk_retry_at - time.monotonic(),
                               self._retry_at - time.monotonic())
                events = self._drain(min(30.0, max(0.05, wait)))
                if events:
                    self._deliver(events)
                    events = []
                self._spill()
                self._replay()
                self._bound_tail()
            except Exception as exc:  # nothing may end delivery (H6): say it, back off, go on
                _say(f"delivery error ({type(exc).__name__}: {exc}); retrying")
                if events:
                    self._lose(len(events), "they were in hand when the error happened")
                self._failed()

    def close(self, timeout_s: float = 15.0) -> int:
        """Deliver everything queued; send the backlog while that makes progress (until
        ``timeout_s``); return the events left in the spool (sent by the next collector of
        the run or ``--flush-spool``). What memory still holds and the disk will not take
        is lost with the process: it is counted in ``dropped_events`` and said on stderr.

        One attempt that delivers nothing ends it: a broker that is away now will not be back
        in the next seconds, and the job's user should not wait for it.
        """
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._q.put_nowait({"__wake__": True})
        self._thread.join()
        deadline = time.monotonic() + timeout_s
        self._spill(force=True)
        while self._backlog() and time.monotonic() < deadline:
            before = self._backlog()
            self._retry_at = 0.0
            if self._replay():
                break
            if self._backlog() >= before:  # refused outright: leave the rest spooled
                break
        self._spill(force=True)
        if self._tail:
            n = len(self._tail)
            self._tail.clear()
            self._lose(n, f"the spool could not take them at exit ({self._disk_error})")
        left = self.spool.pending
        if left:
            _say(
                f"{left} events remain spooled in {self.spool.dir}; "
                "the next collector for this run sends them first "
                "(or run `carbonpipe collect --flush-spool`)"
            )
        if self.dropped_events:
            _say(
                f"{self.dropped_events} events of this run were lost before delivery (spool "
                "disk errors, full spool, torn lines); events after the loss carry "
                "dropped_events"
            )
        self.sink.close()
        self.spool.close()
        return left


def _say(text: str) -> None:
    print(f"carbonpipe collector: {text}", file=sys.stderr, flush=True)


def kafka_sink(settings: Settings, host: str) -> Sink:
    """The Kafka sink of a collector on ``host``: its topic (the shared one, or with host
    topics its own) and the configured client security (``core.kafka_security``)."""
    from carbonpipe.core import kafka_security

    return KafkaSink(settings.kafka_bootstrap_servers, kafka_security.publish_topic(settings, host),
                     security=kafka_security.python_kwargs(settings))  # fmt: skip
