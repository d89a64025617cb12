"""Fault tests for ingest: a connector process killed during file drops, and the broker restarted
mid-stream. Nothing acknowledged is lost; file drops are not repeated either."""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config import HubConfig, load_config
from hub import Hub
from streaming.kafka import ClientSettings, read_to_end
from streaming.local_broker import LocalBroker
from tests.faults.sandbox import write_config

pytestmark = [pytest.mark.faults, pytest.mark.integration]

ROOT = Path(__file__).parents[2]
FEEDS = ROOT / "demo" / "feeds" / "operators"


def registrations(batch: int, size: int) -> bytes:
    """A registration document of ``size`` pilgrims, unique to ``batch``."""
    rows = [
        {
            "registration_id": f"R-{batch}-{i}",
            "season": "umrah",
            "pilgrim": {
                "surname": "TEST",
                "given_names": "PILGRIM",
                "sex": "F",
                "birth_date": "1970-01-01",
                "nationality": "IDN",
                "passport_number": f"B{batch:04d}{i:04d}",
            },
        }
        for i in range(size)
    ]
    return json.dumps({"operator_code": "OP-1", "registrations": rows}).encode()


def test_connector_killed_during_file_drops_resumes_without_loss_or_repeat(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_config(
        tmp_path,
        kafka_bootstrap,
        run,
        [
            {
                "name": "operators-bulk",
                "type": "operators",
                "transport": {"kind": "filedrop", "directory": str(inbox), "settle_seconds": 0, "poll_seconds": 0.1},
            }
        ],
    )
    files, size = 30, 200
    for batch in range(files):
        (inbox / f"batch-{batch:03d}.json").write_bytes(registrations(batch, size))
    rng = random.Random(11)
    log = open(tmp_path / "ingest.log", "ab")  # noqa: SIM115
    command = [sys.executable, "hub.py", "--config", str(config), "run", "--components", "transports"]
    kills = 0
    for _ in range(4):
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(rng.uniform(2.0, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(p.is_file() for p in inbox.iterdir()):
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert not [p.name for p in inbox.iterdir() if p.is_file()], "files left in the inbox"
    assert len(list((inbox / "processed").iterdir())) == files

    events = read_to_end(ClientSettings(kafka_bootstrap), f"f{run}.events")
    ids = [e.header("ce_id") for e in events]
    print(f"files {files} x {size}, kills {kills}, events {len(ids)}, distinct {len(set(ids))}")
    assert len(set(ids)) == files * size, "lost"
    assert len(ids) == len(set(ids)), "repeated under read_committed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own (it is stopped and started): the session's broker is left alone."""
    port = _free_port()
    broker = LocalBroker(home=tmp_path / "kafka", port=port, controller_port=_free_port(), heap="512m")
    (broker.home).mkdir(parents=True)
    shared = LocalBroker.from_env()
    shared.resolve_jars()
    shutil.copytree(shared.lib, broker.lib)
    (broker.home / "lib.stamp").write_text((shared.home / "lib.stamp").read_text())
    broker.up()
    yield broker
    broker.down()


def test_broker_restart_mid_stream_loses_nothing_acknowledged(own_broker: LocalBroker, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    path = write_config(
        tmp_path,
        own_broker.bootstrap_servers,
        run,
        [
            {
                "name": "operators-http",
                "type": "operators",
                "transport": {"kind": "http", "path": "/ingest/operators"},
                "auth": {"api_key_sha256": ["56c1a91a2470d9ee6b5ad86c76341b866cc192d0371fbb7df1388a6c4b243329"]},
            }
        ],
    )
    config: HubConfig = load_config(path)
    hub = Hub(config)
    hub.start_router()
    client = TestClient(hub.app())
    acknowledged: set[str] = set()
    statuses: dict[int, int] = {}
    slowest = [0.0]
    stop = threading.Event()

    def agency() -> None:
        batch = 0
        while not stop.is_set():
            body = registrations(batch, 20)
            for _ in range(60):  # an agency retries what was not acknowledged, with the same key
                started = time.monotonic()
                response = client.post(
                    "/ingest/operators",
                    content=body,
                    headers={"X-API-Key": "demo-operators-key-not-for-production", "Idempotency-Key": f"{run}-{batch}"},
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                slowest[0] = max(slowest[0], time.monotonic() - started)
                if response.status_code == 202:
                    acknowledged.update(response.json()["event_ids"])
                    break
                time.sleep(1)
            batch += 1

    sender = threading.Thread(target=agency, daemon=True)
    try:
        sender.start()
        time.sleep(4)
        own_broker.down()  # the broker goes away mid-stream ...
        time.sleep(5)
        own_broker.up()  # ... and comes back
        time.sleep(6)
        stop.set()
        sender.join(timeout=120)
        deadline = time.monotonic() + 240
        delivered: set[bytes | None] = set()
        while time.monotonic() < deadline:
            delivered = {
                r.header("ce_id") for r in read_to_end(ClientSettings(own_broker.bootstrap_servers), f"f{run}.deliver")
            }
            if {i.encode() for i in acknowledged} <= delivered:
                break
            time.sleep(1)
    finally:
        stop.set()
        hub.close()
    lost = {i.encode() for i in acknowledged} - delivered
    journey = {r.header("ce_id") for r in read_to_end(ClientSettings(own_broker.bootstrap_servers), f"f{run}.events")}
    print(f"of the {len(lost)} not delivered, {len(lost - journey)} are missing from the journey topic too")
    print(
        f"acknowledged {len(acknowledged)}, delivered {len(delivered)}, lost {len(lost)}, statuses {statuses}, "
        f"slowest answer {slowest[0]:.1f}s"
    )
    assert acknowledged and not lost
    # the producer held unacknowledged requests through the outage (or answered 503 for a retry)
    assert slowest[0] > 3 or statuses.get(503, 0) > 0, "the outage was not felt: did the broker stop?"
