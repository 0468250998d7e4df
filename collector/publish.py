"""Sinks (Kafka, stdout, memory) and the Publisher that puts the spool between them.

Delivery rule: events go to the sink in order; whatever the sink did not acknowledge goes
to the spool, and while the spool holds anything every new event is appended behind it, so
order is kept. The spool is replayed oldest first with exponential backoff (1 s to 10 s).
Delivery is at-least-once: an ack lost in flight can repeat an event; (host, run_id, seq)
identifies it for de-duplication downstream. What is lost: nothing on SIGTERM/SIGINT or a
broker outage; on SIGKILL or power loss, the events still in memory (the batch being sent,
at most the send timeout's worth, ~10 s) - everything already spooled survives.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
import time
from typing import IO, Any, Protocol

from collector.spool import Spool

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
    """kafka-python producer: acks=all, key=run_id, small linger, ordered retries.

    max_in_flight_requests_per_connection=1 keeps order within a partition across retries.
    On a failed batch the producer is closed at once (unsent records aborted) so that
    nothing it still holds is delivered behind the spool's back; a new one is made on the
    next attempt.

    Why a broker that is away costs ~1 s, not 30: before a producer is made, ``check`` opens a
    plain TCP connection (``reachable``, ``connect_timeout_s``); and the producer's own
    ``bootstrap_timeout_ms`` (kafka-python's default 30000, spent inside its constructor) is
    capped by the same budget. Without both, a 3-second job with Kafka absent took 62 s: two
    30 s bootstraps, one for the first event and one for the replay at close. The state is
    said once on stderr when it changes (unreachable, reachable again), not per batch.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 1.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._producer: Any = None
        self.down_reason: str | None = None  # last known: None = reachable or not yet tried

    def _say(self, text: str) -> None:
        print(f"carbonpipe collector: {text}", file=sys.stderr, flush=True)

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

        return KafkaProducer(
            bootstrap_servers=self.bootstrap.split(","),
            acks="all",
            linger_ms=5,
            retries=5,
            max_in_flight_requests_per_connection=1,
            max_block_ms=int(self.timeout_s * 1000),
            request_timeout_ms=int(self.timeout_s * 1000 / 2),
            delivery_timeout_ms=int(self.timeout_s * 1000),
            # default 30000, spent in __init__ when no broker answers (see the class doc)
            bootstrap_timeout_ms=int(max(1.0, 2 * self.connect_timeout_s) * 1000),
        )

    def send(self, events: list[Event]) -> int:
        ok = 0
        try:
            if self._producer is None:
                if not self.check():
                    return 0
                self._producer = self._make()
            futures = [
                self._producer.send(
                    self.topic,
                    key=str(e["run_id"]).encode(),
                    value=json.dumps(e, separators=(",", ":")).encode(),
                )
                for e in events
            ]
            with contextlib.suppress(Exception):  # judged per record below
                self._producer.flush(timeout=self.timeout_s)
            for f in futures:  # the acknowledged prefix; order holds (1 request in flight)
                if not f.is_done or f.failed():
                    raise RuntimeError(f"record {ok} not acknowledged: {f.exception}")
                ok += 1
        except Exception as exc:  # any failure: spool the rest, retry later
            self._say(
                f"kafka send failed after {ok}/{len(events)} "
                f"({type(exc).__name__}: {exc}); spooling"
            )
            self._drop_producer()
        return ok

    def _drop_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):  # already broken
                self._producer.close(timeout=0)
        self._producer = None

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
    """Background delivery: ``publish`` never blocks the sampling loop."""

    BACKOFF_MIN_S = 1.0
    BACKOFF_MAX_S = 10.0

    def __init__(self, sink: Sink, spool: Spool, batch_max: int = 500) -> None:
        self.sink = sink
        self.spool = spool
        self.batch_max = batch_max
        self.sent = 0
        self._q: queue.Queue[Event] = queue.Queue()
        self._closing = threading.Event()
        self._backoff = 0.0
        self._retry_at = 0.0
        self._thread = threading.Thread(target=self._run, name="carbonpipe-publish", daemon=True)
        self._thread.start()

    def publish(self, event: Event) -> None:
        self._q.put(event)

    def _drain(self, wait_s: float) -> list[Event]:
        out: list[Event] = []
        try:
            out.append(self._q.get(timeout=wait_s))
            while len(out) < self.batch_max:
                out.append(self._q.get_nowait())
        except queue.Empty:
            pass
        return [e for e in out if "__wake__" not in e]

    def _failed(self) -> None:
        self._backoff = min(self.BACKOFF_MAX_S, max(self.BACKOFF_MIN_S, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff

    def _deliver(self, events: list[Event]) -> None:
        if self.spool.pending or time.monotonic() < self._retry_at:
            self.spool.append(events)
            return
        n = self.sink.send(events)
        self.sent += n
        if n < len(events):
            self.spool.append(events[n:])
            self._failed()
        else:
            self._backoff = 0.0

    def _replay(self) -> bool:
        """One replay batch; True when the spool is empty afterwards."""
        if not self.spool.pending:
            return True
        if time.monotonic() < self._retry_at:
            return False
        batch = self.spool.peek(self.batch_max)
        if not batch:
            return not self.spool.pending
        n = self.sink.send(batch)
        self.sent += n
        self.spool.commit(n)
        if n < len(batch):
            self._failed()
            return False
        self._backoff = 0.0
        return not self.spool.pending

    def _run(self) -> None:
        check = getattr(self.sink, "check", None)  # KafkaSink: a broker away is known in ~1 s
        if check is not None and not check():
            self._failed()  # spool from the first event; replay with backoff
        while not self._closing.is_set() or not self._q.empty():
            # idle wake-ups cost CPU: wait for the next event, or the next replay attempt
            wait = 30.0 if not self.spool.pending else self._retry_at - time.monotonic()
            events = self._drain(min(30.0, max(0.05, wait)))
            if events:
                self._deliver(events)
            self._replay()

    def close(self, timeout_s: float = 15.0) -> int:
        """Deliver everything queued; send the spool while that makes progress (until
        ``timeout_s``); return events left.

        One attempt that delivers nothing ends it: a broker that is away now will not be back
        in the next seconds, and the job's user should not wait for it (the events stay in the
        spool for the next collector of the run or ``--flush-spool``).
        """
        self._closing.set()
        self._q.put_nowait({"__wake__": True})
        self._thread.join()
        deadline = time.monotonic() + timeout_s
        while self.spool.pending and time.monotonic() < deadline:
            before = self.spool.pending
            self._retry_at = 0.0
            if self._replay():
                break
            if self.spool.pending >= before:  # refused outright: leave the rest spooled
                break
        left = self.spool.pending
        if left:
            print(
                f"carbonpipe collector: {left} events remain spooled in {self.spool.dir}; "
                "the next collector for this run sends them first "
                "(or run `carbonpipe collect --flush-spool`)",
                file=sys.stderr,
                flush=True,
            )
        self.sink.close()
        self.spool.close()
        return left
