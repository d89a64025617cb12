from __future__ import annotations

import time

import pytest

from streaming.kafka import ClientSettings, Consumer, Record

pytestmark = pytest.mark.integration


def read_topic(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0, group: str | None = None
) -> list[Record]:
    """Read ``topic`` from the beginning until ``expected`` records arrived (or the timeout), then a bit more."""
    consumer = Consumer(
        ClientSettings(bootstrap), group_id=group or f"reader-{time.time_ns()}", topics=[topic], read_committed=True
    )
    records: list[Record] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(records) < expected:
            records += consumer.poll(timeout_ms=300)
        settle = time.monotonic() + 1.0  # anything beyond `expected` would be a duplicate: look for it
        while time.monotonic() < settle:
            records += consumer.poll(timeout_ms=200)
    finally:
        consumer.close()
    return records
