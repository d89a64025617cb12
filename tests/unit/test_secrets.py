"""Secrets never appear in logs, metrics, config dumps or error answers."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from config import load_config
from connectors.operators import Config, OperatorsConnector
from connectors.runtime import IngestRuntime, IngestTopics
from connectors.transports.http import build_app, sign
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from tests.fakes import FakeProducer

FEEDS = Path(__file__).parents[2] / "demo" / "feeds" / "operators"
API_KEY = "agency-api-key-do-not-log-7f3a"
HMAC_SECRET = "agency-hmac-secret-do-not-log-91c2"
KEY_SECRET = "pilgrim-key-secret-do-not-log-55e1"
SASL_PASSWORD = "sasl-password-do-not-log-0b9d"
SECRETS = (API_KEY, HMAC_SECRET, KEY_SECRET, SASL_PASSWORD)


def test_secrets_stay_out_of_logs_metrics_and_answers(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HUB_PILGRIM_KEY_SECRET", KEY_SECRET)
    monkeypatch.setenv("HUB_KAFKA_SASL_PASSWORD", SASL_PASSWORD)
    config = load_config(overrides={"mode": "production"})
    dumps = [
        repr(config),
        str(config),
        config.model_dump_json(),
        repr(config.kafka.client_settings("x")),
        repr(config.keyer()),
    ]

    connector = OperatorsConnector(
        Config(
            name="operators-http",
            transport={"kind": "http", "path": "/ingest/operators"},
            auth={"api_key_sha256": [hashlib.sha256(API_KEY.encode()).hexdigest()], "hmac_secret": HMAC_SECRET},
        )
    )
    runtime = IngestRuntime(
        connector,
        Codec(SchemaCatalogue()),
        config.keyer(),
        FakeProducer(),  # type: ignore[arg-type]
        IngestTopics("ev", "q"),
    )
    client = TestClient(build_app([runtime], lambda: {"status": "ok"}))
    body = (FEEDS / "02-lahore-agent-with-errors.json").read_bytes()
    answers = [
        client.post("/ingest/operators", content=body, headers={"X-API-Key": API_KEY}).text,
        client.post("/ingest/operators", content=body, headers={"X-API-Key": API_KEY + "x"}).text,
        client.post("/ingest/operators", content=body, headers={"X-Signature": sign(HMAC_SECRET, body)}).text,
        client.post("/ingest/operators", content=body, headers={"X-Signature": sign(HMAC_SECRET + "x", body)}).text,
    ]
    assert "207" in str(client.post("/ingest/operators", content=body, headers={"X-API-Key": API_KEY}).status_code)
    metrics = generate_latest().decode()
    everything = "\n".join([caplog.text, metrics, *answers, *dumps])
    for secret in SECRETS:
        assert secret not in everything, f"a secret leaked: {secret[:12]}..."
