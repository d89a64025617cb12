"""Contender: the hub's routing job written as a Quix Streams application (runs in ``.venv-bench``).

The same job as the router, built from the hub's own pieces: the event type from the ``ce_type``
header, Avro decoding with :class:`schemas.codec.Codec` (Confluent wire format, schemas from
``schemas/catalogue.json``, fastavro), each subscription's filter compiled by
:func:`router.filters.compile_filter` and projection by :class:`router.projection.Projector`,
encoding with the subscriber's derived schema (same id rule as the router) and the router's
headers (``ce_*``, ``content-type``, ``traceparent``, ``hub_subscriber``, ``hub_schema_id``).
Written the way Quix Streams composes a job: ``apply(expand=True)`` turns an event into its
deliveries, ``set_headers`` and ``to_topic`` with a topic chosen per delivery.

Like the router's lane, one consumer group serves all subscriptions (an event is decoded once,
then every filter runs). Differences, by design of each: ``processing_guarantee="exactly-once"``
with a transaction every ``--commit-interval-s`` (the router commits one per polled batch); the
router also writes an audit record per batch and publishes derived schemas, which this job does
not; and the router passes a whole, unmasked event on as its own Avro bytes when its derived
schema encodes the same (``router.projection.binary_shape``), where this job encodes every
delivery, as a straightforward Quix Streams job would.

Measured in this process: events handled per second, CPU seconds per event (``time.process_time``,
librdkafka's threads included) and peak RSS, with :class:`bench.workload.DrainMeter`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import confluent_kafka
import fastavro
import quixstreams
from pydantic import TypeAdapter
from quixstreams import Application
from quixstreams.models import Topic
from quixstreams.models.serializers import SerializationContext, Serializer

from bench.workload import (
    BATCH_BYTES,
    LINGER_MS,
    MASK_KEY,
    DrainMeter,
    Workload,
    contender_parser,
    emit,
    wanted_headers,
)
from router.filters import FilterSpec, Predicate, compile_filter
from router.projection import Projection, Projector
from schemas.catalogue import SchemaCatalogue
from schemas.codec import HEADER, MAGIC, Codec, subject_for

DERIVED_ID_BASE = 1_000_000  # the router's rule for derived schema ids
FILTER: TypeAdapter[Any] = TypeAdapter(FilterSpec)  # the validation the subscription model applies


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    value: bytes
    headers: list[tuple[str, bytes]]


class DeliveryValue(Serializer):
    """A delivery's value is already Avro bytes in the wire format."""

    def __call__(self, value: Delivery, ctx: SerializationContext) -> bytes:
        return value.value


class Route:
    """One subscription: its event types, compiled filter, projector and derived schemas."""

    def __init__(self, spec: dict[str, Any], codec: Codec) -> None:
        self.id: str = spec["id"]
        self.topic: str = spec["target"]["topic"]
        self.event_types = frozenset(spec["event_types"])
        self.matches: Predicate = compile_filter(FILTER.validate_python(spec["filter"]))
        projection = Projection.model_validate(spec["projection"]) if "projection" in spec else None
        self.projector = Projector(projection, MASK_KEY)
        self.codec = codec
        self._schemas: dict[str, tuple[int, Any]] = {}
        self.subscriber_header = ("hub_subscriber", self.id.encode())

    def schema(self, event_type: str) -> tuple[int, Any]:
        found = self._schemas.get(event_type)
        if found is None:
            full = self.codec.catalogue.latest(subject_for(event_type)).schema
            derived = self.projector.derive_schema(full, event_type, "hajj.deliver." + self.id.replace("-", "_"))
            digest = hashlib.sha256(json.dumps(derived, sort_keys=True).encode()).hexdigest()
            found = (DERIVED_ID_BASE + int(digest[:8], 16) % 1_000_000_000, fastavro.parse_schema(derived))
            self._schemas[event_type] = found
        return found


def main() -> int:
    started = time.perf_counter()
    args = contender_parser(__doc__.splitlines()[0] if __doc__ else "").parse_args()
    workload = Workload(args.size, args.subscriptions, args.fanout)
    codec = Codec(SchemaCatalogue())
    routes = [Route(spec, codec) for spec in workload.specs(lambda j: args.target_format.format(j=j))]
    counts = {"events": 0, "deliveries": 0}

    def route(value: bytes, key: Any, timestamp: int, headers: Any) -> list[Delivery]:
        counts["events"] += 1
        headers = headers or []
        ce_type = next((v for k, v in headers if k == "ce_type"), None)
        event_type = ce_type.decode().rsplit(".", 1)[-1] if ce_type else ""
        event: dict[str, Any] | None = None
        forwarded: list[tuple[str, bytes]] | None = None
        out: list[Delivery] = []
        for r in routes:
            if event_type not in r.event_types:
                continue
            if event is None:
                _, event = codec.decode(value)
                forwarded = wanted_headers(headers)
            if not r.matches(event):
                continue
            schema_id, parsed = r.schema(event_type)
            buffer = io.BytesIO()
            buffer.write(HEADER.pack(MAGIC, schema_id))
            fastavro.schemaless_writer(buffer, parsed, r.projector.project(event))
            assert forwarded is not None
            out.append(Delivery(r.topic, buffer.getvalue(), [*forwarded, r.subscriber_header,
                                                              ("hub_schema_id", str(schema_id).encode())]))
        counts["deliveries"] += len(out)
        return out

    with tempfile.TemporaryDirectory(prefix="bench-quix-state-") as state_dir:
        app = Application(
            broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
            processing_guarantee="exactly-once", commit_interval=args.commit_interval_s,
            producer_extra_config={"acks": "all", "enable.idempotence": True, "linger.ms": LINGER_MS,
                                   "batch.size": BATCH_BYTES},
            consumer_extra_config={"isolation.level": "read_committed"},
            auto_create_topics=False, use_changelog_topics=False, state_dir=state_dir, loglevel="WARNING",
        )
        source = app.topic(args.source, value_deserializer="bytes", key_deserializer="bytes")
        outputs: dict[str, Topic] = {
            r.topic: app.topic(r.topic, value_serializer=DeliveryValue(), key_serializer="bytes") for r in routes
        }
        sdf = app.dataframe(source)
        sdf = sdf.apply(route, expand=True, metadata=True)
        sdf = sdf.set_headers(lambda value, key, timestamp, headers: value.headers)
        sdf.to_topic(lambda value, key, timestamp, headers: outputs[value.topic])

        result: dict[str, Any] = {"contender": "Quix Streams", "workload": workload.name, "mode": args.mode,
                                  "client": f"quixstreams {quixstreams.__version__}, "
                                            f"confluent-kafka {confluent_kafka.version()}"}
        measured: dict[str, Any] = {}
        if args.mode == "drain":
            def measure() -> None:
                meter = DrainMeter(lambda: (counts["events"], counts["deliveries"], counts["events"] > 0),
                                   args.total, args.warmup_s, args.window_s, args.windows)
                try:
                    measured.update(meter.run().summary())
                finally:
                    app.stop()

            threading.Thread(target=measure, name="meter", daemon=True).start()
            app.run()
            result |= measured
        else:
            cpu0 = time.process_time()
            app.run()  # until SIGTERM, which Quix Streams handles itself
            result |= {**counts, "cpu_s": time.process_time() - cpu0}
    result["process_s"] = round(time.perf_counter() - started, 2)
    emit(result)
    return 0


if __name__ == "__main__":
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    sys.exit(main())
