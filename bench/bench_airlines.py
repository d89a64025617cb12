"""Throughput of the airlines connector on a 400-passenger PAXLST manifest.

Run from the repository root: ``.venv/bin/python -m bench.bench_airlines`` (or ``bench/bench_airlines.py``).
Parses the same manifest 100 times with :meth:`connectors.airlines.AirlinesConnector.parse` (the
parser, plus UTC conversion, code normalisation and one ``JourneyRecord`` per passenger) and with
bare :func:`connectors.formats.paxlst.parse_paxlst`, and prints passengers per second for each; the
difference is the connector's own cost. Avro encoding and Kafka are not included.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_paxlst import manifest
from connectors.airlines import AirlinesConnector, Config
from connectors.formats.paxlst import parse_paxlst

PASSENGERS = 400
ROUNDS = 100


def rate(label: str, work: Callable[[], object]) -> float:
    work()  # warm-up
    started = time.perf_counter()
    for _ in range(ROUNDS):
        work()
    elapsed = time.perf_counter() - started
    per_second = PASSENGERS * ROUNDS / elapsed
    print(f"{label:<26} {elapsed / ROUNDS * 1000:8.2f} ms/manifest {per_second:12,.0f} passengers/s")
    return per_second


def main() -> None:
    data = manifest(PASSENGERS)
    connector = AirlinesConnector(Config(name="bench-airlines", transport={"kind": "http", "path": "/ingest/airlines"}))
    parsed = connector.parse(data, "bench.edi")
    passengers = [r for r in parsed.records if r.event_type == "PassengerManifested"]
    assert not parsed.rejections, parsed.rejections[:3]
    assert len(passengers) == PASSENGERS
    print(f"{PASSENGERS} passengers, {len(data):,} bytes, {ROUNDS} rounds each")
    connector_rate = rate("AirlinesConnector.parse", lambda: connector.parse(data, "bench.edi"))
    parser_rate = rate("parse_paxlst", lambda: parse_paxlst(data, "bench.edi"))
    print(f"connector time / bare parser time: {parser_rate / connector_rate:.2f}")


if __name__ == "__main__":
    main()
