"""Fault test: the router process is SIGKILLed at random moments during a stream to a Kafka target.

A read_committed verifier then checks every event arrived exactly once and in order per pilgrim.
CI runs a reduced version (5,000 events, 3 kills); ``make faults`` runs the full one
(``HUB_FAULTS_SCALE=full``: 100,000 events, 10 kills).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from streaming.kafka import Admin, ClientSettings, Consumer, Producer, TopicSpec
from tests.faults.sandbox import write_config

pytestmark = [pytest.mark.faults, pytest.mark.integration]

ROOT = Path(__file__).parents[2]
FULL = os.environ.get("HUB_FAULTS_SCALE") == "full"
EVENTS = 100_000 if FULL else 5_000
KILLS = 10 if FULL else 3
PILGRIMS = 2_000 if FULL else 300


def event(pilgrim: int, seq: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "envelope": {
            "event_id": str(uuid.uuid4()),
            "event_type": "PilgrimRegistered",
            "occurred_at": now,
            "ingested_at": now,
            "source": {"agency": "operators", "connector": "fault-test", "position": f"{seq}"},
            "pilgrim_key": f"pk_{pilgrim:032x}",
            "trace_id": uuid.uuid4().hex,
        },
        "registration_id": f"R-{pilgrim}-{seq:07d}",
        "operator_code": "OP-1",
        "agent_code": None,
        "group_id": None,
        "season": "umrah",
        "pilgrim": {
            "surname": "S",
            "given_names": "G",
            "sex": "F",
            "birth_date": date(1970, 1, 1),
            "nationality": "IDN",
            "passport_number": f"X{pilgrim:08d}",
            "passport_expiry": None,
            "issuing_state": None,
        },
        "planned_arrival": None,
        "planned_departure": None,
        "housing": None,
        "mobile": None,
    }


def start_router(config: Path, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child writes to it until killed
    return subprocess.Popen(
        [sys.executable, "hub.py", "--config", str(config), "run", "--components", "router"],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def test_router_killed_repeatedly_loses_and_duplicates_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    config = write_config(
        tmp_path, kafka_bootstrap, run, projection={"fields": ["registration_id", "pilgrim.nationality"]}
    )
    settings = ClientSettings(kafka_bootstrap)
    admin = Admin(settings)
    admin.ensure_topics([TopicSpec(f"f{run}.events", 3), TopicSpec(f"f{run}.deliver", 3)])
    admin.close()

    codec = Codec(SchemaCatalogue())
    rng = random.Random(7)
    sequence: dict[int, int] = defaultdict(int)
    producer = Producer(settings, linger_ms=20)
    sent: set[str] = set()
    for _ in range(EVENTS):
        pilgrim = rng.randrange(PILGRIMS)
        sequence[pilgrim] += 1
        encoded = codec.encode("PilgrimRegistered", event(pilgrim, sequence[pilgrim]))
        sent.add(dict(encoded.headers)["ce_id"].decode())
        producer.send(f"f{run}.events", encoded.value, encoded.key, encoded.headers)
    producer.flush()
    producer.close()

    verifier = Consumer(settings, group_id=f"f{run}.verifier", topics=[f"f{run}.deliver"], read_committed=True)
    received: list[Any] = []
    log = tmp_path / "router.log"
    kills = 0
    try:
        process = start_router(config, log)
        while kills < KILLS:
            deadline = time.monotonic() + rng.uniform(2.0, 6.0)
            while time.monotonic() < deadline:
                received += verifier.poll(timeout_ms=200)
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            process = start_router(config, log)
        deadline = time.monotonic() + (600 if FULL else 180)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = verifier.poll(timeout_ms=500)
            received += batch
            if batch:
                quiet_since = time.monotonic()
            elif len(received) >= EVENTS and time.monotonic() - quiet_since > 3:
                break
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        verifier.close()

    ids = [r.header("ce_id").decode() for r in received]
    lost = sent - set(ids)
    duplicated = len(ids) - len(set(ids))
    print(f"events {EVENTS}, kills {kills}, received {len(ids)}, lost {len(lost)}, duplicated {duplicated}")
    assert kills == KILLS
    assert not lost, f"{len(lost)} lost; router log: {log}"
    assert duplicated == 0, f"{duplicated} duplicated under read_committed"
    schemas_seen: dict[int, Any] = {}
    from router.engine import decode_delivery, read_derived_schemas

    schemas_seen = read_derived_schemas(settings, f"f{run}.schemas")
    last: dict[bytes, int] = {}
    for record in received:  # per partition in offset order; one pilgrim = one partition
        seq = int(decode_delivery(record.value, schemas_seen)["registration_id"].rsplit("-", 1)[1])
        assert seq > last.get(record.key, 0), f"order broken for {record.key!r}"
        last[record.key] = seq
