"""Fault test: a webhook subscriber is down for a while. It receives everything afterwards (or the
dead-letter topic holds it), and another subscriber's p99 delivery latency stays as before.

CI: a 20-second outage; ``make faults`` (``HUB_FAULTS_SCALE=full``): three minutes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from config import HubConfig
from hub import Hub
from streaming.kafka import ClientSettings, Consumer, read_to_end
from tests.integration.test_routing import WEBHOOK_SECRET, Receiver

pytestmark = [pytest.mark.faults, pytest.mark.integration]

OUTAGE_S = 180.0 if os.environ.get("HUB_FAULTS_SCALE") == "full" else 20.0
BASELINE_S = 15.0
API_KEY = "demo-operators-key-not-for-production"


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.status, Receiver.received = 200, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def test_webhook_outage_does_not_slow_the_other_subscriber(
    hub_config: HubConfig, tmp_path: Path, unique: str, receiver: str
) -> None:
    subs = [
        {
            "id": "hook",
            "agency": "hotels",
            "event_types": ["PilgrimRegistered"],
            "target": {"kind": "webhook", "url": receiver, "secret": WEBHOOK_SECRET},
            "retry": {
                "max_attempts": 1000,
                "initial_backoff_seconds": 0.2,
                "max_backoff_seconds": 2,
                "budget_seconds": OUTAGE_S * 3,
            },
        },
        {
            "id": "fast",
            "agency": "ministry",
            "event_types": ["PilgrimRegistered"],
            "target": {"kind": "kafka", "topic": f"t{unique}.deliver.fast"},
        },
    ]
    (tmp_path / "outage-subs.yaml").write_text(yaml.safe_dump({"subscriptions": subs}))
    raw = hub_config.model_dump(mode="json", exclude={"source"})
    raw["identity"]["pilgrim_key_secret"] = "test-secret-0123456789abcdef"
    raw["router"]["subscriptions_file"] = str(tmp_path / "outage-subs.yaml")
    config = HubConfig.model_validate({**raw, "source": hub_config.source})
    hub = Hub(config)
    client = TestClient(hub.app())
    sent_at: dict[bytes, float] = {}
    seen_at: dict[bytes, float] = {}
    verifier = Consumer(
        ClientSettings(config.kafka.bootstrap_servers),
        group_id=f"g{unique}.v",
        topics=[f"t{unique}.deliver.fast"],
        read_committed=True,
        from_beginning=True,
    )
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for record in verifier.poll(timeout_ms=100):
                seen_at.setdefault(record.header("ce_id") or b"", time.monotonic())

    def post(n: int) -> None:
        body = json.dumps(
            {
                "operator_code": "OP-1",
                "registrations": [
                    {
                        "registration_id": f"R-{n}",
                        "season": "umrah",
                        "pilgrim": {
                            "surname": "T",
                            "given_names": "P",
                            "sex": "F",
                            "birth_date": "1970-01-01",
                            "nationality": "IDN",
                            "passport_number": f"C{n:07d}",
                        },
                    }
                ],
            }
        ).encode()
        response = client.post("/ingest/operators", content=body, headers={"X-API-Key": API_KEY})
        assert response.status_code == 202
        sent_at[response.json()["event_ids"][0].encode()] = time.monotonic()

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        hub.start_router()
        watcher.start()
        time.sleep(3)
        n = 0
        phases: dict[str, set[bytes]] = {"before": set(), "outage": set()}
        for phase, seconds in (("before", BASELINE_S), ("outage", OUTAGE_S)):
            if phase == "outage":
                Receiver.status = 503
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                post(n)
                phases[phase].add(list(sent_at)[-1])
                n += 1
                time.sleep(0.1)
        Receiver.status = 200
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len({h["webhook-id"] for h, _ in Receiver.received}) < n:
            time.sleep(0.5)
        time.sleep(2)
    finally:
        stop.set()
        watcher.join(timeout=5)
        verifier.close()
        hub.close()

    def latencies(ids: set[bytes]) -> list[float]:
        return [seen_at[i] - sent_at[i] for i in ids if i in seen_at]

    warm = sorted(phases["before"], key=lambda i: sent_at[i])[20:]  # the first deliveries set up schemas
    before, during = latencies(set(warm)), latencies(phases["outage"])
    hooked = {h["webhook-id"].encode() for h, _ in Receiver.received}
    dead = {
        r.header("ce_id")
        for r in read_to_end(ClientSettings(config.kafka.bootstrap_servers), config.kafka.topics.dead_letter)
    }
    print(
        f"outage {OUTAGE_S:.0f}s, events {n}, fast p99 before {p99(before) * 1000:.0f} ms, "
        f"during {p99(during) * 1000:.0f} ms, webhook received {len(hooked)}, dead letters {len(dead)}"
    )
    assert len(before) == len(warm) and len(during) == len(phases["outage"])  # the fast lane got everything
    assert p99(during) <= max(2 * p99(before), p99(before) + 0.5), "the outage slowed the other subscriber"
    assert set(sent_at) <= hooked | dead, "the webhook lost events"
