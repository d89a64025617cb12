"""Throughput of the operators connector on a bulk registration CSV, against a bare ``csv.reader``.

Run from the repository root: ``.venv/bin/python -m bench.bench_operators`` (or
``bench/bench_operators.py``). Builds a 20,000-row CSV like an operator's spreadsheet export (BOM,
``;`` delimiter, CRLF), then prints rows per second for :meth:`OperatorsConnector.parse` (header
check, one pydantic validation per row, one ``PilgrimRegistered`` record per row) and for a bare
``csv.reader`` over the same bytes (decode and split only: the floor).
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.operators import CSV_COLUMNS, Config, OperatorsConnector

ROWS = 20_000
ROUNDS = 5
NATIONALITIES = ("IDN", "PAK", "BGD", "EGY", "TUR", "MYS", "NGA", "IND", "DZA", "UZB")


def registrations_csv(rows: int = ROWS) -> bytes:
    """A registration CSV of ``rows`` rows, every column filled, as a spreadsheet exports it."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for n in range(rows):
        nationality = NATIONALITIES[n % len(NATIONALITIES)]
        writer.writerow(
            [
                f"OP-{1000 + n % 37}",
                f"AG-{nationality}-{n % 11:03d}",
                f"R-2026-{n:07d}",
                f"G-{nationality}-{n // 45:05d}",
                "hajj" if n % 10 == 0 else "umrah",
                f"Surname{n}",
                "Siti Aminah" if n % 2 else "Muhammad Yusuf",
                "FM"[n % 2],
                f"19{40 + n % 60:02d}-{1 + n % 12:02d}-{1 + n % 28:02d}",
                nationality,
                f"{nationality[0]}{n:08d}",
                f"20{28 + n % 8}-{1 + n % 12:02d}-15",
                nationality,
                "2026-12-03",
                "2026-12-17",
                f"MAK-{n % 800:04d}",
                f"+966 5{n % 10} 555 {n % 10_000:04d}",
            ]
        )
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def rate(label: str, work: Callable[[], int], rows: int = ROWS, rounds: int = ROUNDS) -> float:
    """Best of ``rounds`` runs, in rows per second; ``work`` returns how many rows it handled."""
    assert work() == rows  # warm-up, and a check that both count the same rows
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    per_second = rows / best
    print(f"{label:<30} {best * 1000:9.1f} ms/file {per_second:12,.0f} rows/s")
    return per_second


def main() -> None:
    data = registrations_csv()
    connector = OperatorsConnector(Config(name="bench", transport={"kind": "http", "path": "/ingest/operators"}))

    def parse() -> int:
        parsed = connector.parse(data, "bench.csv")
        assert not parsed.rejections, parsed.rejections[:3]
        return len(parsed.records)

    def bare() -> int:
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";")
        next(reader)
        return sum(1 for _ in reader)

    print(f"{ROWS:,} rows, {len(data):,} bytes, best of {ROUNDS} rounds")
    ours = rate("OperatorsConnector.parse", parse)
    floor = rate("bare csv.reader", bare)
    print(f"parse runs at {ours / floor:.1%} of the bare csv.reader rate ({floor / ours:.1f}x slower)")


if __name__ == "__main__":
    main()
