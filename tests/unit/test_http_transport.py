"""HTTP push transport: authentication, size limit, status codes, health, metrics, docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.identity import PilgrimKeyer
from connectors.operators import Config, OperatorsConnector
from connectors.runtime import IngestRuntime, IngestTopics
from connectors.transports.http import build_app
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from tests.fakes import FakeProducer

FEEDS = Path(__file__).parents[2] / "demo" / "feeds" / "operators"
KEY = "unit-test-operators-key"


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def client(producer: FakeProducer) -> TestClient:
    import hashlib

    config = Config(
        name="operators-http",
        transport={"kind": "http", "path": "/ingest/operators", "max_body_bytes": 4096},
        auth={"api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]},
    )
    connector = OperatorsConnector(config)
    runtime = IngestRuntime(
        connector,
        Codec(SchemaCatalogue()),
        PilgrimKeyer(b"unit-test-secret-0123456789"),
        producer,
        IngestTopics("ev", "quar"),
    )  # type: ignore[arg-type]
    app = build_app([runtime], lambda: {"status": "ok"}, {"operators-http": connector.body_schema()})
    return TestClient(app)


def post(client: TestClient, name: str, key: str | None = KEY, **headers: str):  # type: ignore[no-untyped-def]
    if key:
        headers["X-API-Key"] = key
    return client.post("/ingest/operators", content=(FEEDS / name).read_bytes(), headers=headers)


def test_all_accepted_is_202_after_kafka_acknowledged(client: TestClient, producer: FakeProducer) -> None:
    response = post(client, "01-jakarta-agent-group.json")
    assert response.status_code == 202
    assert response.json()["accepted"] == 4
    assert len(producer.on("ev")) == 4


def test_partial_is_207_and_names_each_rejection(client: TestClient) -> None:
    response = post(client, "02-lahore-agent-with-errors.json")
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert body["rejections"][0]["location"] == "$.registrations[1]"
    assert body["rejections"][0]["field"] == "pilgrim.birth_date"


def test_unusable_input_is_400(client: TestClient, producer: FakeProducer) -> None:
    response = post(client, "04-truncated-upload.json")
    assert response.status_code == 400
    assert "not JSON" in response.json()["rejections"][0]["reason"]
    assert len(producer.on("quar")) == 1


def test_authentication_is_required(client: TestClient, producer: FakeProducer) -> None:
    assert post(client, "03-cairo-single.json", key=None).status_code == 401
    assert post(client, "03-cairo-single.json", key="guess").status_code == 401
    assert producer.sent == []


def test_bodies_over_the_limit_get_413(client: TestClient, producer: FakeProducer) -> None:
    response = client.post("/ingest/operators", content=b"x" * 5000, headers={"X-API-Key": KEY})
    assert response.status_code == 413
    chunked = client.post("/ingest/operators", content=iter([b"x" * 3000, b"y" * 3000]), headers={"X-API-Key": KEY})
    assert chunked.status_code == 413
    assert producer.sent == []


def test_kafka_not_acknowledging_is_503_so_the_sender_retries(client: TestClient, producer: FakeProducer) -> None:
    producer.fail_with = "broker down"
    response = post(client, "03-cairo-single.json")
    assert response.status_code == 503
    assert "retry" in response.json()["error"]


def test_idempotency_key_gives_the_same_event_ids(client: TestClient) -> None:
    first = post(client, "03-cairo-single.json", **{"Idempotency-Key": "upload-77"}).json()
    again = post(client, "03-cairo-single.json", **{"Idempotency-Key": "upload-77"}).json()
    assert first["event_ids"] == again["event_ids"]


def test_health_metrics_and_docs(client: TestClient) -> None:
    post(client, "02-lahore-agent-with-errors.json")
    assert client.get("/healthz").json() == {"status": "ok"}
    metrics = client.get("/metrics").text
    assert (
        'hub_ingest_events_total{agency="operators",connector="operators-http",event_type="PilgrimRegistered"}'
        in metrics
    )
    assert 'hub_ingest_rejections_total{agency="operators",connector="operators-http",kind="record"}' in metrics
    assert 'hub_http_requests_total{connector="operators-http",status="207"}' in metrics
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/ingest/operators"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "registrations" in body["properties"]
    assert "pilgrim" in body["properties"]["registrations"]["items"]["properties"]


@pytest.fixture
def signed_client(producer: FakeProducer) -> TestClient:
    config = Config(
        name="operators-http",
        transport={"kind": "http", "path": "/ingest/operators"},
        auth={"hmac_secret": "agency-shared-secret-123"},
    )
    runtime = IngestRuntime(
        OperatorsConnector(config),
        Codec(SchemaCatalogue()),
        PilgrimKeyer(b"unit-test-secret-0123456789"),
        producer,
        IngestTopics("ev", "quar"),
    )  # type: ignore[arg-type]
    return TestClient(build_app([runtime], lambda: {"status": "ok"}))


def test_hmac_signed_bodies_are_accepted_and_replays_refused(signed_client: TestClient) -> None:
    import time

    from connectors.transports.http import sign

    body = (FEEDS / "03-cairo-single.json").read_bytes()
    ok = signed_client.post(
        "/ingest/operators", content=body, headers={"X-Signature": sign("agency-shared-secret-123", body)}
    )
    assert ok.status_code == 202
    stale = sign("agency-shared-secret-123", body, timestamp=int(time.time()) - 3600)
    assert signed_client.post("/ingest/operators", content=body, headers={"X-Signature": stale}).status_code == 401
    forged = sign("guessed-secret", body)
    assert signed_client.post("/ingest/operators", content=body, headers={"X-Signature": forged}).status_code == 401
    tampered = body.replace(b"Mona", b"Mina")
    good_sig = sign("agency-shared-secret-123", body)
    assert (
        signed_client.post("/ingest/operators", content=tampered, headers={"X-Signature": good_sig}).status_code == 401
    )
