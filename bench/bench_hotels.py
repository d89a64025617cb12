"""Throughput of the hotels connector against the bare ``OTA_HotelResNotifRQ`` parser.

Parses the notification of :mod:`bench.bench_ota` (1,000 reservations, two guests each, alpha-2
nationalities) repeatedly and prints reservations and guests per second for

* ``parse_hotel_res_notif``: the parser alone (the floor for this connector);
* ``HotelsConnector.parse``: parser + one journey record per guest (identity checks, occurred_at);
* ``+ envelope + Avro``: what the runtime adds before Kafka (pilgrim key HMAC, envelope, encode),
  with a producer that drops what it is given.

Best of several rounds, so a noisy neighbour does not count against the code.

Run from the repository root::

    .venv/bin/python -m bench.bench_hotels [--reservations N] [--rounds N]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.bench_ota import best_seconds, build_notification
from connectors.formats.ota import parse_hotel_res_notif
from connectors.hotels import Config, HotelsConnector
from connectors.identity import PilgrimKeyer
from connectors.runtime import IngestRuntime, IngestTopics
from schemas.catalogue import SchemaCatalogue, load_sources
from schemas.codec import Codec

GUESTS_PER_RESERVATION = 2  # as build_notification writes them


class _Done:
    def wait(self, timeout_s: float = 60.0) -> None:
        return None


class _DroppingProducer:
    """Stands in for Kafka: accepts everything at once."""

    def send(self, topic: str, value: Any, key: Any = None, headers: Any = None) -> _Done:
        return _Done()


def _codec(connector: HotelsConnector) -> Codec:
    """The connector's schemas as the ``.avsc`` files hold them (registered or not in the catalogue)."""
    catalogue = SchemaCatalogue(Path("/nonexistent/catalogue.json"))
    sources = load_sources()
    for event_type in connector.event_types:
        catalogue.register(f"hajj.journey.{event_type}", sources[f"hajj.journey.{event_type}"])
    return Codec(catalogue)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    arguments.add_argument("--reservations", type=int, default=1_000)
    arguments.add_argument("--rounds", type=int, default=20)
    options = arguments.parse_args()

    data = build_notification(options.reservations)
    connector = HotelsConnector(Config(name="hotels-bench", transport={"kind": "http", "path": "/ingest/hotels"}))
    runtime = IngestRuntime(
        connector,  # type: ignore[arg-type]  # Connector.config is ConnectorConfig, ours is the subclass
        _codec(connector),
        PilgrimKeyer(b"bench-secret-0123456789abcdef"),
        _DroppingProducer(),  # type: ignore[arg-type]
        IngestTopics("journey.events", "journey.quarantine"),
    )
    guests = options.reservations * GUESTS_PER_RESERVATION
    parsed = connector.parse(data, "bench.xml")
    if len(parsed.records) != guests or parsed.rejections:
        raise SystemExit(f"benchmark document did not map cleanly: {parsed.rejections[:3]}")
    result = runtime.ingest(data, "bench.xml")
    if result.accepted != guests:
        raise SystemExit(f"runtime refused records: {result.rejections[:3]}")

    candidates = {
        "parse_hotel_res_notif": lambda: parse_hotel_res_notif(data, "bench.xml"),
        "HotelsConnector.parse": lambda: connector.parse(data, "bench.xml"),
        "+ envelope + Avro": lambda: runtime.ingest(data, "bench.xml"),
    }
    print(
        f"{options.reservations} reservations x {GUESTS_PER_RESERVATION} guests, {len(data) / 1e6:.2f} MB, "
        f"best of {options.rounds} rounds"
    )
    for name, work in candidates.items():
        seconds = best_seconds(work, options.rounds)
        print(
            f"  {name:<22} {seconds * 1e3:8.1f} ms  {options.reservations / seconds:>10,.0f} reservations/s"
            f"  {guests / seconds:>10,.0f} guests/s"
        )


if __name__ == "__main__":
    main()
