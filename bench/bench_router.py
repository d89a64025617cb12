"""Router throughput: drain a preloaded backlog of journey events through N subscriptions.

    .venv/bin/python bench/bench_router.py [--events 20000] [--subscriptions 1 3 10]

Preloads ``--events`` PilgrimRegistered events (Avro, Confluent wire format, ~300 B) into a fresh
journey topic on the local broker (or ``KAFKA_BOOTSTRAP_SERVERS``), then for each subscription
count starts the router's workers for that many subscriptions (Kafka targets: one lane, exactly-once
transactions; every other subscription has a filter and a masked projection) and times how long
until every subscription has decided on every event. Prints a Markdown table and writes ``bench/results/router.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import NATIONALITIES, event  # shared with the suite (bench/suite.py)
from router.engine import DELIVERIES, RouterTopics, build_workers
from router.subscriptions import Subscription
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from streaming.kafka import Admin, ClientSettings, Producer, TopicSpec
from streaming.local_broker import LocalBroker


def subscription(index: int, run: str) -> Subscription:
    spec: dict[str, object] = {
        "id": f"bench-{index}", "agency": "bench", "event_types": ["PilgrimRegistered"],
        "target": {"kind": "kafka", "topic": f"bench.{run}.deliver.{index}"},
    }
    if index % 2:
        spec["filter"] = {"field": "pilgrim.nationality", "in": NATIONALITIES[:6]}
        spec["projection"] = {"fields": ["registration_id", "pilgrim.surname", "pilgrim.nationality", "season"],
                              "mask": {"pilgrim.surname": "hash"}}
    return Subscription.model_validate(spec)


def handled(subscribers: list[str]) -> int:
    total = 0
    for family in DELIVERIES.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["subscriber"] in subscribers:
                total += int(sample.value)
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--subscriptions", type=int, nargs="+", default=[1, 3, 10])
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or LocalBroker.from_env().up()
    settings = ClientSettings(bootstrap)
    codec = Codec(SchemaCatalogue())
    run = uuid.uuid4().hex[:8]
    topics = RouterTopics(f"bench.{run}.events", f"bench.{run}.replay", f"bench.{run}.dlq", f"bench.{run}.audit",
                          f"bench.{run}.schemas")
    admin = Admin(settings)
    specs = [TopicSpec(t, 6) for t in (topics.events, topics.replay, topics.dead_letter, topics.audit)]
    specs += [TopicSpec(topics.schemas, 1, configs={"cleanup.policy": "compact"})]
    specs += [TopicSpec(f"bench.{run}.deliver.{i}", 6) for i in range(max(args.subscriptions))]
    admin.ensure_topics(specs)

    producer = Producer(settings, linger_ms=20, batch_size=256 * 1024)
    started = time.perf_counter()
    size = 0
    for i in range(args.events):
        encoded = codec.encode("PilgrimRegistered", event(i))
        size += len(encoded.value)
        producer.send(topics.events, encoded.value, encoded.key, encoded.headers)
    producer.flush()
    producer.close()
    print(f"preloaded {args.events} events ({size / args.events:.0f} B avg) in {time.perf_counter() - started:.1f}s")

    rows = []
    for count in args.subscriptions:
        subs = [subscription(i, run) for i in range(count)]
        workers = build_workers(subs, settings, f"bench.{run}.{count}", codec, topics, b"k" * 32, instance="0")
        names = [s.id for s in subs]
        base = handled(names)
        stop = threading.Event()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        target = args.events * count
        while handled(names) - base < target and time.perf_counter() - t0 < 600:
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        done = handled(names) - base
        row = {"subscriptions": count, "events": args.events, "handled": done, "seconds": round(elapsed, 2),
               "events_per_s": round(args.events / elapsed), "deliveries_per_s": round(done / elapsed),
               "cpu_ms_per_event": round(1000 * cpu / args.events, 3)}
        rows.append(row)
        print(row, flush=True)

    print("\n| subscriptions | events | seconds | events/s (each routed to all) | routing decisions/s | CPU ms/event |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['subscriptions']} | {r['events']} | {r['seconds']} | {r['events_per_s']} | "
              f"{r['deliveries_per_s']} | {r['cpu_ms_per_event']} |")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "router.json").write_text(json.dumps({"run": run, "at": datetime.now(UTC).isoformat(), "rows": rows},
                                                indent=2))
    admin.delete_topics([s.name for s in specs])
    admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
