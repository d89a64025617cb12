"""Contender: a bare consume → produce passthrough in confluent-kafka (runs in ``.venv-bench``).

The same passthrough as ``bench/contender_kafka_python.py`` with librdkafka underneath: every record
of the journey topic is copied, with its key and headers, to ``--fanout`` subscriber topics; same
settings (``acks=all``, idempotence, linger 5 ms, 64 KiB batches, ``read_committed``, up to 1000
records per poll, every ``--commit-interval-s`` a producer flush then a synchronous commit).

Measured in this process: events copied per second, CPU seconds per event (``time.process_time``
covers librdkafka's threads too) and peak RSS, with :class:`bench.workload.DrainMeter`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import confluent_kafka

from bench.workload import (
    BATCH_BYTES,
    LINGER_MS,
    MAX_POLL_RECORDS,
    DrainMeter,
    Workload,
    contender_parser,
    emit,
    until_terminated,
)


def poll_batch(consumer: confluent_kafka.Consumer) -> list[confluent_kafka.Message]:
    """What has arrived, up to 1000 records, as soon as there is one (``consume(n, timeout)`` alone
    would wait for all ``n`` or the whole timeout)."""
    first = consumer.poll(0.2)
    if first is None:
        return []
    return [first, *consumer.consume(num_messages=MAX_POLL_RECORDS - 1, timeout=0)]


def main() -> int:
    started = time.perf_counter()
    args = contender_parser(__doc__.splitlines()[0] if __doc__ else "").parse_args()
    workload = Workload(args.size, args.subscriptions, args.fanout)
    targets = [args.target_format.format(j=j) for j in range(args.fanout)]
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": args.group, "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "isolation.level": "read_committed",
    })
    consumer.subscribe([args.source])
    producer = confluent_kafka.Producer({
        "bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True,
        "linger.ms": LINGER_MS, "batch.size": BATCH_BYTES,
    })
    counts = {"events": 0, "deliveries": 0}
    stop = until_terminated()

    def produce(topic: str, message: confluent_kafka.Message) -> None:
        while True:
            try:
                producer.produce(topic, value=message.value(), key=message.key(), headers=message.headers())
                return
            except BufferError:  # the local queue is full: serve delivery reports, then retry
                producer.poll(0.01)

    def loop() -> None:
        next_commit = time.monotonic() + args.commit_interval_s
        while not stop.is_set():
            for message in poll_batch(consumer):
                if message.error():
                    continue
                for topic in targets:
                    produce(topic, message)
                counts["events"] += 1
                counts["deliveries"] += len(targets)
            producer.poll(0)
            if time.monotonic() >= next_commit:
                producer.flush()
                with contextlib.suppress(confluent_kafka.KafkaException):  # nothing consumed since the last
                    consumer.commit(asynchronous=False)
                next_commit = time.monotonic() + args.commit_interval_s
        producer.flush()

    worker = threading.Thread(target=loop, name="passthrough", daemon=True)
    worker.start()
    result: dict[str, Any] = {"contender": "confluent-kafka passthrough",
                              "client": f"confluent-kafka {confluent_kafka.version()}",
                              "workload": workload.name, "mode": args.mode}
    if args.mode == "drain":
        meter = DrainMeter(lambda: (counts["events"], counts["deliveries"], counts["events"] > 0),
                           args.total, args.warmup_s, args.window_s, args.windows)
        result |= meter.run(stop).summary()
        stop.set()
    else:
        cpu0 = time.process_time()
        while not stop.wait(0.2):
            pass
        result |= {**counts, "cpu_s": time.process_time() - cpu0}
    worker.join(timeout=30)
    consumer.close()
    result["process_s"] = round(time.perf_counter() - started, 2)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
