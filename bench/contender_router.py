"""Contender: the hub's router on the suite's routing job (runs in the hub's own venv).

The workers :func:`router.engine.build_workers` makes, started by :class:`router.engine.RouterService`
exactly as ``hub.py`` does: for Kafka targets one :class:`router.engine.KafkaLane`, whose consumer
reads and decodes each event once, applies every subscription's filter and projection, encodes with
each subscriber's derived schema and writes deliveries, audit record and offsets in one Kafka
transaction per polled batch.

Measured in this process: events handled per second (records of committed batches), deliveries per
second, CPU seconds per event (``time.process_time``, all threads) and peak RSS. ``--mode drain``
times the preloaded backlog with :class:`bench.workload.DrainMeter`; ``--mode live`` routes until
SIGTERM (the suite's latency runs) and reports the CPU it used.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kafka

from bench.workload import MASK_KEY, DrainMeter, Workload, contender_parser, emit, until_terminated
from router.engine import DerivedSchemas, KafkaLane, RouterService, RouterTopics, build_workers
from router.subscriptions import Subscription
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from streaming.kafka import ClientSettings, Record


def count_batches(lane: KafkaLane, seen: list[int], delivered: list[int]) -> None:
    """Wrap the lane's ``handle_batch`` to count the records of each committed batch and their deliveries."""
    handle: Callable[..., None] = lane.handle_batch

    def counted(records: Sequence[Record], history: Sequence[Record] = ()) -> None:
        before = {sub: route.delivered._value.get() for sub, route in lane.routes.items()}
        handle(records, history)
        seen[0] += len(records)
        delivered[0] += int(sum(route.delivered._value.get() - before[sub] for sub, route in lane.routes.items()))

    lane.handle_batch = counted  # type: ignore[method-assign]


def main() -> int:
    started = time.perf_counter()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = contender_parser(__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--ready-timeout-s", type=float, default=45.0,
                        help="measure anyway when some workers have not consumed after this long")
    parser.add_argument("--client", choices=["kafka-python", "confluent-kafka"], default="kafka-python",
                        help="the client under the router's consumers and producers (kafka.client)")
    args = parser.parse_args()
    workload = Workload(args.size, args.subscriptions, args.fanout)
    settings = ClientSettings(args.bootstrap, client_id="bench-router", client=args.client)
    codec = Codec(SchemaCatalogue())
    prefix = args.aux_prefix
    topics = RouterTopics(args.source, f"{prefix}.replay", f"{prefix}.dlq", f"{prefix}.audit", f"{prefix}.schemas")
    subscriptions = [Subscription.model_validate(spec)
                     for spec in workload.specs(lambda j: args.target_format.format(j=j))]
    workers = build_workers(subscriptions, settings, args.group, codec, topics, MASK_KEY, instance="0",
                            derived=DerivedSchemas())
    [lane] = workers
    assert isinstance(lane, KafkaLane)
    seen, delivered = [0], [0]
    count_batches(lane, seen, delivered)

    def progress() -> tuple[float, float, bool]:
        return float(seen[0]), float(delivered[0]), bool(seen[0])

    stop = until_terminated()
    threads = RouterService(workers).start(stop)
    if args.client == "confluent-kafka":
        import confluent_kafka

        client = f"confluent-kafka {confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]})"
    else:
        client = f"kafka-python {kafka.__version__}"
    result: dict[str, Any] = {"contender": "router", "client": client,
                              "workload": workload.name, "mode": args.mode, "threads": len(threads)}
    if args.mode == "drain":
        def waiting() -> str:
            return "the lane has not committed a batch yet"

        meter = DrainMeter(progress, args.total, args.warmup_s, args.window_s, args.windows, timeout_s=600,
                           waiting=waiting, ready_timeout_s=args.ready_timeout_s)
        result |= meter.run(stop).summary()
    else:
        cpu0 = time.process_time()
        while not stop.wait(0.2):
            pass
        result |= {"events": progress()[0], "deliveries": progress()[1], "cpu_s": time.process_time() - cpu0}
    result["process_s"] = round(time.perf_counter() - started, 2)
    emit(result)
    stop.set()  # each worker finishes (commits) its batch, then closes its consumer and producer
    deadline = time.monotonic() + 15
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        print("workers still closing after 15s; exiting", file=sys.stderr, flush=True)
        os._exit(0)  # stuck consumers would hold the interpreter's exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
