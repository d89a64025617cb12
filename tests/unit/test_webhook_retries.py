"""The webhook worker's retry policy, without a broker: backoff, Retry-After, budget, dead letters."""

from __future__ import annotations

from typing import Any

import pytest

from router.engine import RETRIES, RouterTopics, WebhookWorker
from router.errors import PermanentDeliveryError, TransientDeliveryError
from router.subscriptions import Subscription
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from streaming.kafka import ClientSettings, Record
from tests.fakes import FakeProducer

TOPICS = RouterTopics("ev", "replay", "dlq", "audit", "schemas")
RECORD = Record("ev", 2, 41, b"pk_x", b"\x00\x00\x00\x00\x01", [("ce_id", b"e-1")], 0)


class FlakySender:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = list(failures)
        self.calls = 0

    def deliver(self, event_id: str, payload: Any, timestamp: int | None = None) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    def close(self) -> None:
        pass


def worker(sender: FlakySender, sleeps: list[float], **retry: Any) -> WebhookWorker:
    sub = Subscription.model_validate({
        "id": "hook", "agency": "hotels", "event_types": ["PilgrimRegistered"],
        "target": {"kind": "webhook", "url": "http://127.0.0.1:1/x", "secret": "whsec_c2VjcmV0"},
        "retry": {"initial_backoff_seconds": 0.5, "max_backoff_seconds": 4, **retry},
    })
    return WebhookWorker(sub, ClientSettings("unused:9092"), "g", Codec(SchemaCatalogue()), TOPICS, b"k" * 32,
                         sender=sender, producer=FakeProducer(), sleep=sleeps.append)  # type: ignore[arg-type]


def retries() -> float:
    return RETRIES.labels("hook")._value.get()


def test_transient_failures_are_retried_with_bounded_jittered_backoff() -> None:
    sleeps: list[float] = []
    sender = FlakySender([TransientDeliveryError("HTTP 503")] * 4)
    before = retries()
    assert worker(sender, sleeps)._deliver_with_retries(RECORD, "e-1", {}) is None
    assert sender.calls == 5
    assert len(sleeps) == 4 and all(0 <= s <= 4 for s in sleeps)
    assert retries() - before == 4


def test_retry_after_is_honoured() -> None:
    sleeps: list[float] = []
    sender = FlakySender([TransientDeliveryError("HTTP 429", retry_after=7.0)])
    assert worker(sender, sleeps)._deliver_with_retries(RECORD, "e-1", {}) is None
    assert sleeps == [7.0]


def test_permanent_failures_are_dead_lettered_at_once() -> None:
    sleeps: list[float] = []
    sender = FlakySender([PermanentDeliveryError("HTTP 422: bad field")])
    topic, value, key, headers = worker(sender, sleeps)._deliver_with_retries(RECORD, "e-1", {}) or ("",) * 4
    found = dict(headers)
    assert (topic, value, key) == ("dlq", RECORD.value, RECORD.key)
    assert found["hub_dlq_subscriber"] == b"hook" and found["hub_dlq_attempts"] == b"1"
    assert found["hub_dlq_error_kind"] == b"permanent" and b"422" in found["hub_dlq_error"]
    assert found["hub_dlq_original"] == b"ev/2/41"
    assert sleeps == []


@pytest.mark.parametrize(("retry", "calls"), [({"max_attempts": 3}, 3), ({"budget_seconds": 10}, 3)])
def test_spent_budget_dead_letters_with_the_attempt_count(retry: dict[str, Any], calls: int) -> None:
    sleeps: list[float] = []
    sender = FlakySender([TransientDeliveryError("timeout", retry_after=4.0)] * 50)
    send = worker(sender, sleeps, **retry)._deliver_with_retries(RECORD, "e-1", {})
    assert send is not None
    headers = dict(send[3])
    assert headers["hub_dlq_error_kind"] == b"transient"
    assert headers["hub_dlq_attempts"] == str(calls).encode() and sender.calls == calls
