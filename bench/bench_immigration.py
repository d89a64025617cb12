"""Throughput of the immigration connector's ``parse`` on a 10,000-record batch, against a floor.

Run from the repository root: ``.venv/bin/python -m bench.bench_immigration`` (or
``bench/bench_immigration.py``). Prints records per second for
:meth:`connectors.immigration.ImmigrationConnector.parse` (JSON, pydantic validation of every record,
MRZ decoding with its five check digits, event payloads) and for two yardsticks: a bare
``json.loads`` of the batch, and ``json.loads`` plus a :func:`parse_td3` loop over the records (the
floor of any parser that reads the MRZ: no validation of the other fields, no events).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.formats.mrz import format_td3, parse_td3
from connectors.immigration import Config, ImmigrationConnector

RECORDS = 10_000
ROUNDS = 5
NATIONALITIES = ("IDN", "PAK", "EGY", "TUR", "MYS", "IND", "BGD", "NGA", "DZA", "JOR")


def batch(records: int = RECORDS) -> bytes:
    """A batch like a busy day's export: 40% visas, 40% entries (JED, MED, a land port), 20% exits."""
    items = []
    for n in range(records):
        mrz = format_td3(
            surname=f"PILGRIM{'ABCDEFGHIJ'[n % 10]}",
            given_names="SITI AMINAH" if n % 2 else "MUHAMMAD ALI",
            document_number=f"X{n:07d}",
            nationality=NATIONALITIES[n % len(NATIONALITIES)],
            birth_date=date(1950, 1, 1) + timedelta(days=(n * 37) % 25_000),
            sex="MF"[n % 2],
            expiry_date=date(2028, 1, 1) + timedelta(days=n % 1500),
        )
        kind = n % 5
        if kind < 2:
            items.append(
                {
                    "record_type": "visa_issued",
                    "record_id": f"V-{n:08d}",
                    "visa_number": f"60{n:08d}",
                    "visa_type": "umrah",
                    "issued_at": "2026-11-20T10:00:00+03:00",
                    "valid_from": "2026-11-20",
                    "valid_until": "2027-02-18",
                    "max_stay_days": 90,
                    "operator_code": f"OP-{1000 + n % 50}",
                    "passport_mrz": mrz,
                }
            )
        else:
            port, port_type, flight = [("JED", "air", "SV817"), ("MED", "air", "PK743"), ("HDT", "land", None)][n % 3]
            record = {
                "record_type": "border_exit" if kind == 4 else "border_entry",
                "record_id": f"B-{n:08d}",
                "port": port,
                "port_type": port_type,
                "crossed_at": "2026-12-03T16:35:00+03:00",
                "visa_number": f"60{n:08d}",
                "passport_mrz": mrz,
            }
            if flight:
                record["flight_number"] = flight
            items.append(record)
    return json.dumps({"authority": "SA-JAWAZAT", "batch_id": "BENCH-1", "records": items}, indent=1).encode()


def rate(label: str, work: Callable[[], object], records: int = RECORDS, rounds: int = ROUNDS) -> float:
    work()  # warm-up
    started = time.perf_counter()
    for _ in range(rounds):
        work()
    elapsed = time.perf_counter() - started
    per_second = records * rounds / elapsed
    print(f"{label:<30} {elapsed / rounds * 1000:9.1f} ms/batch {per_second:12,.0f} records/s")
    return per_second


def json_and_mrz(data: bytes) -> None:
    for record in json.loads(data)["records"]:
        parse_td3(record["passport_mrz"])


def main() -> None:
    data = batch()
    connector = ImmigrationConnector(
        Config(name="immigration-bench", transport={"kind": "http", "path": "/ingest/immigration"})
    )
    parsed = connector.parse(data, "bench.json")
    assert len(parsed.records) == RECORDS, parsed.rejections[:3]
    print(f"{RECORDS:,} records, {len(data):,} bytes, {ROUNDS} rounds each")
    full = rate("ImmigrationConnector.parse", lambda: connector.parse(data, "bench.json"))
    rate("json.loads", lambda: json.loads(data))
    floor = rate("json.loads + parse_td3 loop", lambda: json_and_mrz(data))
    print(f"parse runs at {full / floor:.0%} of the json.loads + parse_td3 floor")


if __name__ == "__main__":
    main()
