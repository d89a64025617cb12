"""Contender: a bare consume → produce passthrough in kafka-python (runs in the hub's own venv).

No decoding, filtering or projection: every record of the journey topic is copied, with its key
and headers, to ``--fanout`` subscriber topics. It is what the hub's Kafka client allows at best.
This module imports kafka-python directly on purpose: it measures the library, not the hub's seam.

Settings shared with every contender (``bench.workload``): ``acks=all``, idempotence, linger 5 ms,
64 KiB batches, ``read_committed``, up to 1000 records per poll, and every ``--commit-interval-s``
a flush of the producer followed by a synchronous offset commit (at-least-once).

Measured in this process: events consumed and copied per second, CPU seconds per event
(``time.process_time``, all threads) and peak RSS, with :class:`bench.workload.DrainMeter`.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kafka

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


def main() -> int:
    started = time.perf_counter()
    args = contender_parser(__doc__.splitlines()[0] if __doc__ else "").parse_args()
    workload = Workload(args.size, args.subscriptions, args.fanout)
    targets = [args.target_format.format(j=j) for j in range(args.fanout)]
    consumer = kafka.KafkaConsumer(
        args.source, bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed", max_poll_records=MAX_POLL_RECORDS,
    )
    producer = kafka.KafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=True, linger_ms=LINGER_MS,
        batch_size=BATCH_BYTES,
    )
    counts = {"events": 0, "deliveries": 0}
    stop = until_terminated()

    def loop() -> None:
        next_commit = time.monotonic() + args.commit_interval_s
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=200, max_records=MAX_POLL_RECORDS).values():
                for record in records:
                    for topic in targets:
                        producer.send(topic, value=record.value, key=record.key, headers=record.headers)
                    counts["events"] += 1
                    counts["deliveries"] += len(targets)
            if time.monotonic() >= next_commit:
                producer.flush()
                consumer.commit()
                next_commit = time.monotonic() + args.commit_interval_s
        producer.flush()
        consumer.commit()

    worker = threading.Thread(target=loop, name="passthrough", daemon=True)
    worker.start()
    result: dict[str, Any] = {"contender": "kafka-python passthrough", "client": f"kafka-python {kafka.__version__}",
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
    producer.close(timeout=10)
    consumer.close(autocommit=False)
    result["process_s"] = round(time.perf_counter() - started, 2)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
