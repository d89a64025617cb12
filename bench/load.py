"""Load generation and end-to-end latency measurement for the benchmark suite.

Two commands, run by ``bench/suite.py`` as subprocesses (in ``.venv-bench`` with confluent-kafka
when that venv exists, else in the hub's venv with kafka-python; the client used is reported)::

    python -m bench.load preload --bootstrap B --topic T --size small --count N
    python -m bench.load latency --bootstrap B --source T --targets T1,T2 --fanout F --size small \\
        --rates 250,500,1000 --warmup-s 1 --window-s 2 --windows 3

``preload`` writes a backlog of Avro journey events (Confluent wire format, CloudEvents headers),
cycling over a pool of pre-encoded events so that encoding does not limit it.

``latency`` is an open-loop generator and a subscriber-side consumer in one process. For each
offered rate it schedules event ``i`` at ``t0 + i / rate`` and stamps that *intended* send time in the
:data:`bench.workload.INTENDED_HEADER` header, whether or not the generator keeps up: a contender
that falls behind shows its queueing in the latencies instead of slowing the generator down
(coordinated omission). The consumer reads every subscriber topic (``read_committed``, from the
end) and records ``receive time - intended time`` per delivery. A rate's first ``warmup_s`` is
discarded; each of the ``windows`` following windows gets its p50/p99 (deliveries still missing when
the rate's tail has drained count as infinitely late), and the median over windows is reported, with
the p99 over all windows together (which a stall hitting fewer than half the windows cannot hide).
Before the first rate, probe events flow until every subscriber topic has received one, so
consumer group joins are not measured.
"""

from __future__ import annotations

import argparse
import bisect
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import INTENDED_HEADER, emit, event
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec

Encoded = tuple[bytes, bytes, list[tuple[str, bytes]]]
OnBatch = Callable[[int, list[tuple[str, int]]], None]


def event_pool(size: str, count: int) -> list[Encoded]:
    """``count`` distinct encoded events (key, value, headers); event ``i`` has bucket ``i % BUCKETS``."""
    codec = Codec(SchemaCatalogue())
    pool = []
    for i in range(count):
        encoded = codec.encode("PilgrimRegistered", event(i, large=size == "large"))
        pool.append((encoded.key, encoded.value, encoded.headers))
    return pool


# ---- clients: confluent-kafka when installed, kafka-python otherwise -------------------------------------


class Client:
    name = ""

    def produce(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def consume_from_end(self, topics: list[str], on_batch: OnBatch, stop: threading.Event,
                         ready: threading.Event) -> None:
        """Call ``on_batch(receive_ns, [(topic, intended_ns)])`` for what arrives on ``topics``."""
        raise NotImplementedError


class ConfluentClient(Client):
    def __init__(self, bootstrap: str, linger_ms: int) -> None:
        import confluent_kafka

        self.ck = confluent_kafka
        self.name = f"confluent-kafka {confluent_kafka.version()}"
        self.bootstrap = bootstrap
        self.producer = confluent_kafka.Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": linger_ms, "batch.size": 1024 * 1024, "queue.buffering.max.messages": 1_000_000,
        })

    def produce(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def flush(self) -> None:
        self.producer.flush(60)

    def consume_from_end(self, topics: list[str], on_batch: OnBatch, stop: threading.Event,
                         ready: threading.Event) -> None:
        ck = self.ck
        consumer = ck.Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": f"bench-sink-{time.time_ns()}",
            "enable.auto.commit": False, "isolation.level": "read_committed",
        })
        metadata = consumer.list_topics(timeout=30)
        consumer.assign([ck.TopicPartition(t, p, ck.OFFSET_END) for t in topics for p in metadata.topics[t].partitions])
        consumer.consume(num_messages=1, timeout=0.5)  # resolves OFFSET_END before the generator starts
        ready.set()
        try:
            while not stop.is_set():
                first = consumer.poll(0.05)  # then what else has arrived: consume(n, t) would wait for n or t
                if first is None:
                    continue
                now = time.time_ns()
                messages = [first, *consumer.consume(num_messages=999, timeout=0)]
                batch = []
                for message in messages:
                    if message.error():
                        continue
                    for name, value in message.headers() or ():
                        if name == INTENDED_HEADER:
                            batch.append((message.topic(), int(value)))
                            break
                on_batch(now, batch)
        finally:
            consumer.close()


class KafkaPythonClient(Client):
    def __init__(self, bootstrap: str, linger_ms: int) -> None:
        import kafka

        self.kafka = kafka
        self.name = f"kafka-python {kafka.__version__}"
        self.bootstrap = bootstrap
        self.producer = kafka.KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms,
            batch_size=1024 * 1024,
        )

    def produce(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.producer.send(topic, value=value, key=key, headers=headers)

    def flush(self) -> None:
        self.producer.flush(60)

    def consume_from_end(self, topics: list[str], on_batch: OnBatch, stop: threading.Event,
                         ready: threading.Event) -> None:
        kafka = self.kafka
        consumer = kafka.KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                       isolation_level="read_committed")
        partitions = [kafka.TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for tp in partitions:
            consumer.position(tp)
        ready.set()
        try:
            while not stop.is_set():
                polled = consumer.poll(timeout_ms=50, max_records=1000)
                if not polled:
                    continue
                now = time.time_ns()
                batch = []
                for records in polled.values():
                    for record in records:
                        for name, value in record.headers or ():
                            if name == INTENDED_HEADER:
                                batch.append((record.topic, int(value)))
                                break
                on_batch(now, batch)
        finally:
            consumer.close()


def client(bootstrap: str, linger_ms: int) -> Client:
    try:
        return ConfluentClient(bootstrap, linger_ms)
    except ImportError:
        return KafkaPythonClient(bootstrap, linger_ms)


# ---- preload --------------------------------------------------------------------------------------


def preload(args: argparse.Namespace) -> dict[str, Any]:
    pool = event_pool(args.size, min(args.count, 5000))
    kafka = client(args.bootstrap, linger_ms=20)
    started = time.perf_counter()
    sent_at = str(time.time_ns()).encode()
    for i in range(args.count):
        key, value, headers = pool[i % len(pool)]
        kafka.produce(args.topic, key, value, [*headers, (INTENDED_HEADER, sent_at)])
    kafka.flush()
    return {"count": args.count, "seconds": round(time.perf_counter() - started, 2), "client": kafka.name,
            "value_bytes": round(statistics.fmean(len(v) for _, v, _ in pool)),
            "record_bytes": round(statistics.fmean(len(k) + len(v) + sum(len(a) + len(b) for a, b in h)
                                                   for k, v, h in pool) + len(INTENDED_HEADER) + 19)}


# ---- latency --------------------------------------------------------------------------------------


@dataclass
class Level:
    rate: float
    start_ns: int
    end_ns: int = 0
    sent: int = 0
    intended: list[int] = field(default_factory=list)
    lag_ns: list[int] = field(default_factory=list)
    received: int = 0


class Sink:
    """What the subscriber side received, by offered-load level."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: list[int] = []
        self.levels: list[Level] = []
        self.latencies: list[list[tuple[int, int]]] = []  # per level: (intended_ns, latency_ns)
        self.topics_seen: set[str] = set()

    def add_level(self, level: Level) -> None:
        with self.lock:
            self.starts.append(level.start_ns)
            self.levels.append(level)
            self.latencies.append([])

    def on_batch(self, now: int, batch: list[tuple[str, int]]) -> None:
        with self.lock:
            for topic, intended in batch:
                self.topics_seen.add(topic)
                index = bisect.bisect_right(self.starts, intended) - 1
                if index >= 0:
                    self.latencies[index].append((intended, now - intended))
                    self.levels[index].received += 1


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.inf
    rank = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[rank]


def _ms(value: float) -> float | None:
    return None if math.isinf(value) else round(value / 1e6, 2)


def run_level(kafka: Client, pool: list[Encoded], source: str, sink: Sink, rate: float, duration_s: float) -> Level:
    """Offer ``rate`` events/s for ``duration_s``, stamping each event's intended send time."""
    count = max(1, int(rate * duration_s))
    interval = 1e9 / rate
    wall0, perf0 = time.time_ns() + 20_000_000, time.perf_counter_ns() + 20_000_000
    level = Level(rate, wall0, wall0 + int(count * interval))
    sink.add_level(level)
    i = 0
    while i < count:
        now = time.perf_counter_ns() - perf0
        due = int(now // interval) + 1 if now >= 0 else 0
        while i < min(due, count):
            intended = wall0 + int(i * interval)
            key, value, headers = pool[i % len(pool)]
            kafka.produce(source, key, value, [*headers, (INTENDED_HEADER, str(intended).encode())])
            level.intended.append(intended)
            level.lag_ns.append(time.time_ns() - intended)
            i += 1
        if i < count:
            wait_ns = (i * interval) - (time.perf_counter_ns() - perf0)
            if wait_ns > 0:
                time.sleep(min(wait_ns / 1e9, 0.002))
    level.sent = count
    return level


def _window(latencies: list[tuple[int, int]], level: Level, warmup_s: float, window_s: float, w: int) -> list[float]:
    lo = level.start_ns + int((warmup_s + w * window_s) * 1e9)
    hi = lo + int(window_s * 1e9)
    return [float(lat) for intended, lat in latencies if lo <= intended < hi]


def summarise(level: Level, latencies: list[tuple[int, int]], fanout: int, warmup_s: float,
              window_s: float, windows: int) -> dict[str, Any]:
    rows = []
    for w in range(windows):
        lo = level.start_ns + int((warmup_s + w * window_s) * 1e9)
        hi = lo + int(window_s * 1e9)
        expected = fanout * (bisect.bisect_left(level.intended, hi) - bisect.bisect_left(level.intended, lo))
        values = sorted(_window(latencies, level, warmup_s, window_s, w))
        missing = max(0, expected - len(values))
        values += [math.inf] * missing
        rows.append({"expected": expected, "received": expected - missing, "p50_ms": _ms(_percentile(values, 0.5)),
                     "p99_ms": _ms(_percentile(values, 0.99)), "max_ms": _ms(values[-1] if values else math.inf)})
    lags = sorted(float(v) for v in level.lag_ns)

    def median_of(key: str) -> float | None:
        values = [math.inf if r[key] is None else r[key] for r in rows]
        middle = statistics.median(values)
        return None if math.isinf(middle) else round(middle, 2)

    measured = sorted(v for w in range(windows) for v in _window(latencies, level, warmup_s, window_s, w))
    expected_all = sum(r["expected"] for r in rows)
    measured += [math.inf] * max(0, expected_all - len(measured))
    return {
        "rate": round(level.rate), "sent": level.sent, "received": level.received, "expected": fanout * level.sent,
        "p50_ms": median_of("p50_ms"), "p99_ms": median_of("p99_ms"), "max_ms": median_of("max_ms"),
        "p99_all_windows_ms": _ms(_percentile(measured, 0.99)),
        "generator_lag_p99_ms": _ms(_percentile(lags, 0.99)), "windows": rows,
    }


def latency(args: argparse.Namespace) -> dict[str, Any]:
    pool = event_pool(args.size, 1000)
    kafka = client(args.bootstrap, linger_ms=0)  # the generator's own batching is not the contender's latency
    targets = args.targets.split(",")
    sink = Sink()
    stop, ready = threading.Event(), threading.Event()
    reader = threading.Thread(target=kafka.consume_from_end, args=(targets, sink.on_batch, stop, ready), daemon=True)
    reader.start()
    if not ready.wait(60):
        raise SystemExit("the subscriber-side consumer did not start")
    probe_started = time.monotonic()
    i = 0
    while set(targets) - sink.topics_seen:
        if time.monotonic() - probe_started > args.ready_timeout_s:
            raise SystemExit(f"no delivery on {sorted(set(targets) - sink.topics_seen)} "
                             f"within {args.ready_timeout_s}s")
        key, value, headers = pool[i % len(pool)]
        kafka.produce(args.source, key, value, [*headers, (INTENDED_HEADER, str(time.time_ns()).encode())])
        kafka.flush()
        i += 1
        time.sleep(0.01)
    ready_s = time.monotonic() - probe_started
    time.sleep(1.0)  # let the probes' tail drain
    duration = args.warmup_s + args.windows * args.window_s
    levels = []
    for rate in [float(r) for r in args.rates.split(",")]:
        level = run_level(kafka, pool, args.source, sink, rate, duration)
        kafka.flush()
        expected = args.fanout * level.sent
        deadline = time.monotonic() + max(args.drain_timeout_s, duration)
        last, last_change = -1, time.monotonic()
        while level.received < expected and time.monotonic() < deadline:
            if level.received != last:
                last, last_change = level.received, time.monotonic()
            elif time.monotonic() - last_change > args.drain_timeout_s / 2:
                break
            time.sleep(0.05)
        with sink.lock:
            latencies = list(sink.latencies[-1])
        levels.append(summarise(level, latencies, args.fanout, args.warmup_s, args.window_s, args.windows))
        print(f"  {args.label}: {levels[-1]['rate']}/s p50 {levels[-1]['p50_ms']} ms, p99 {levels[-1]['p99_ms']} ms "
              f"({level.received}/{expected} delivered)", file=sys.stderr, flush=True)
    stop.set()
    reader.join(timeout=10)
    return {"client": kafka.name, "ready_s": round(ready_s, 2), "levels": levels}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    pre = commands.add_parser("preload")
    pre.add_argument("--bootstrap", required=True)
    pre.add_argument("--topic", required=True)
    pre.add_argument("--size", choices=["small", "large"], default="small")
    pre.add_argument("--count", type=int, required=True)
    lat = commands.add_parser("latency")
    lat.add_argument("--bootstrap", required=True)
    lat.add_argument("--source", required=True)
    lat.add_argument("--targets", required=True, help="comma-separated subscriber topics")
    lat.add_argument("--fanout", type=int, required=True)
    lat.add_argument("--size", choices=["small", "large"], default="small")
    lat.add_argument("--rates", required=True, help="comma-separated offered loads, events/s")
    lat.add_argument("--warmup-s", type=float, default=1.0)
    lat.add_argument("--window-s", type=float, default=2.0)
    lat.add_argument("--windows", type=int, default=3)
    lat.add_argument("--drain-timeout-s", type=float, default=10.0)
    lat.add_argument("--ready-timeout-s", type=float, default=120.0)
    lat.add_argument("--label", default="latency")
    args = parser.parse_args()
    emit(preload(args) if args.command == "preload" else latency(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
