"""B3 through a real TCP proxy: the collector's producer sends, the broker appends, the proxy
withholds the acknowledgement, so the collector resends. The job counts each event once.

The broker gets two listeners: ``PLAINTEXT`` for the job and the checker, and ``PROXIED``,
which advertises the proxy's port, so everything the collector's producer says (metadata
included) goes through ``AckThief``. Two ways of losing an ack, both real:

1. a Produce response dropped and the connection closed: the idempotent producer retries
   on a new connection and the broker recognises the retry (no duplicate in the log);
2. every Produce response withheld past the producer's delivery timeout: the records fail,
   the collector spools them and sends them again with a new producer, so the log holds
   them twice and only the job's ``(host, run_id, seq)`` rule keeps the totals right.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbonpipe.core.config import Settings
from carbonpipe.core.layout import Layout
from carbonpipe.services import kafka as kafka_service
from carbonpipe.services import stack
from carbonpipe.services.kafka import stop_kafka
from collector.publish import KafkaSink, Publisher
from collector.spool import Spool
from tests.conftest import _free_port_pair
from tests.fault.checker import check_invariants, read_outcome
from tests.fault.scenario import KWH_PER_EVENT, counted, ev, job_settings, key, mongo
from tests.spark_jobs.pipeline_harness import StreamJob, consume_all, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

PRODUCE = 0  # Kafka API key of a Produce request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_frame(sock: socket.socket) -> bytes | None:
    """One Kafka frame (4-byte big-endian size, then the body); None at end of stream."""
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (size,) = struct.unpack(">i", head)
    body = b""
    while len(body) < size:
        chunk = sock.recv(min(65536, size - len(body)))
        if not chunk:
            return None
        body += chunk
    return head + body


class AckThief:
    """A TCP proxy that passes Kafka frames through and, on demand, loses acknowledgements.

    Requests carry (api_key, api_version, correlation_id) after the size; responses carry the
    correlation id first, so the proxy knows which responses answer a Produce request.
    ``drop_next``: that many Produce responses are dropped with their connection closed.
    ``withhold_until``: until then, every Produce response is swallowed (connection kept).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.drop_next = 0
        self.withhold_until = 0.0
        self.lost_acks = 0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            broker = socket.create_connection(self.target)
            produce_ids: set[int] = set()
            threading.Thread(target=self._requests, args=(client, broker, produce_ids),
                             daemon=True).start()  # fmt: skip
            threading.Thread(target=self._responses, args=(broker, client, produce_ids),
                             daemon=True).start()  # fmt: skip

    def _requests(self, client: socket.socket, broker: socket.socket, ids: set[int]) -> None:
        try:
            while (frame := _read_frame(client)) is not None:
                api_key, _version, corr = struct.unpack(">hhi", frame[4:12])
                if api_key == PRODUCE:
                    ids.add(corr)
                broker.sendall(frame)
        except OSError:
            pass
        finally:
            for s in (client, broker):
                s.close()

    def _responses(self, broker: socket.socket, client: socket.socket, ids: set[int]) -> None:
        try:
            while (frame := _read_frame(broker)) is not None:
                (corr,) = struct.unpack(">i", frame[4:8])
                if corr in ids:
                    with self._lock:
                        if self.drop_next > 0:  # appended by the broker, never acknowledged
                            self.drop_next -= 1
                            self.lost_acks += 1
                            break
                        if time.monotonic() < self.withhold_until:
                            self.lost_acks += 1
                            continue
                client.sendall(frame)
        except OSError:
            pass
        finally:
            for s in (client, broker):
                s.close()

    def close(self) -> None:
        self._closed = True
        self.server.close()


@pytest.fixture()
def proxied(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, AckThief]]:
    """A broker of the test's own: the job's listener, and one reached through AckThief."""
    home = tmp_path / "kafka-home"
    (home / "jars").mkdir(parents=True)
    (home / "jars" / "kafka").symlink_to(stack.kafka_jars(services.layout))
    (home / "jars" / "spark").symlink_to(services.spark_jars_dir)  # the job's subprocess
    port, inner = _free_port_pair(), _free_port()
    cport = port + 1  # ``kafka.addresses``: the controller listens on the broker port + 1
    s = services.model_copy(update={
        "home": home,
        "kafka_bootstrap_servers": f"127.0.0.1:{port}",
        "mongo_db": f"{services.mongo_db}_ack{uuid.uuid4().hex[:8]}",
        "metrics_partitions": 1,
    })  # fmt: skip
    thief = AckThief(("127.0.0.1", inner))

    def prepare(settings: Settings, layout: Layout) -> tuple[list[str], Path]:
        cmd = kafka_service._prepare(settings, layout)
        conf = kafka_service.config_file(layout)
        text = conf.read_text()
        text = text.replace(f"CONTROLLER://127.0.0.1:{cport}\n",
                            f"CONTROLLER://127.0.0.1:{cport},PROXIED://127.0.0.1:{inner}\n", 1)
        text = text.replace(f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},"
                            f"PROXIED://127.0.0.1:{thief.port}")
        text = text.replace("CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT")
        assert text.count("PROXIED") == 3, text  # the broker's config changed as meant
        conf.write_text(text)
        return cmd

    from dataclasses import replace

    service = replace(kafka_service.KAFKA, prepare=prepare)
    try:
        service.start(s, True, 120.0)
        stack.create_topics(s)
        yield s, thief
    finally:
        thief.close()
        stop_kafka(s)  # the topics go with the test's home
        mongo(s).client.drop_database(s.mongo_db)


N = 60


def test_acks_withheld_by_a_proxy_are_resent_and_counted_once(
    proxied: tuple[Settings, AckThief], tmp_path: Path
) -> None:
    base, thief = proxied
    s = job_settings(base, tmp_path)
    sink = KafkaSink(f"127.0.0.1:{thief.port}", s.metrics_topic, timeout_s=4.0)
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    pub = Publisher(sink, spool, batch_max=10)
    events = [ev("a", "R", i, 10 * i) for i in range(N)]
    thief.drop_next = 1  # 1. the first batch's ack lost with its connection
    for e in events[:20]:
        pub.publish(dict(e))
    time.sleep(2.0)
    thief.withhold_until = time.monotonic() + 6.0  # 2. past the 4 s delivery timeout
    for e in events[20:40]:
        pub.publish(dict(e))
    time.sleep(7.0)
    for e in events[40:]:
        pub.publish(dict(e))
    deadline = time.monotonic() + 90  # the spool is retried with a 1-10 s back-off
    while pub.sent < N and time.monotonic() < deadline:
        time.sleep(0.5)
    left = pub.close()
    assert left == 0 and pub.dropped_events == 0, (left, pub.dropped_events)
    assert thief.lost_acks >= 2, thief.lost_acks

    in_log = Counter(key(json.loads(m.value)) for m in consume_all(s, s.metrics_topic))
    assert set(in_log) == {key(e) for e in events}  # everything arrived
    assert max(in_log.values()) >= 2, in_log  # and the withheld acks made the collector resend

    db = mongo(s)
    job = StreamJob(s, tmp_path / "job.log")
    try:
        wait_for("every event", lambda: counted(db).get("R", {}).get("n_events") == N, job)
        time.sleep(3)  # a double count would show in a later batch
    finally:
        job.stop()
    run = counted(db)["R"]
    assert run["n_events"] == N and run["duplicates"] == sum(in_log.values()) - N
    assert run["energy_kwh"] == pytest.approx(N * KWH_PER_EVENT)
    check_invariants(read_outcome(s), in_log)
