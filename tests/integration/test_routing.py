"""Routing core on the real broker: filters, projections, bulkheads, retries, dead letters, replay,
exactly-once to Kafka targets, audit, and two routers sharing the work."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from config import HubConfig
from hub import Hub
from router.dlq import Selection, audit_trail, dead_letters, replay
from router.engine import decode_delivery, read_derived_schemas
from router.webhook import verify_signature
from streaming.kafka import ClientSettings, Record
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration

FEEDS = Path(__file__).parents[2] / "demo" / "feeds" / "operators"
API_KEY = "demo-operators-key-not-for-production"
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY3ODkw"
FAST_RETRY = {"max_attempts": 1000, "initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.2, "budget_seconds": 60}


@pytest.fixture
def configure(hub_config: HubConfig, tmp_path: Path, unique: str) -> Callable[[list[dict[str, Any]]], HubConfig]:
    def make(subscriptions: list[dict[str, Any]], client: str = "kafka-python") -> HubConfig:
        path = tmp_path / f"subs-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump({"subscriptions": subscriptions}))
        raw = hub_config.model_dump(mode="json", exclude={"source"})
        raw["identity"]["pilgrim_key_secret"] = "test-secret-0123456789abcdef"
        raw["router"]["subscriptions_file"] = str(path)
        raw["kafka"]["client"] = client
        return HubConfig.model_validate({**raw, "source": hub_config.source})

    return make


CLIENTS = pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])


def producer_class(client: str) -> Any:
    """The class the seam builds for ``client`` (to patch a method of the producers it makes)."""
    from streaming.confluent import ConfluentProducer
    from streaming.kafka import Producer

    return ConfluentProducer if client == "confluent-kafka" else Producer


def post(hub: Hub, *names: str) -> list[dict[str, Any]]:
    client = TestClient(hub.app())
    feeds = names or tuple(p.name for p in sorted(FEEDS.iterdir()))
    return [
        client.post("/ingest/operators", content=(FEEDS / n).read_bytes(), headers={"X-API-Key": API_KEY}).json()
        for n in feeds
    ]


def delivered(config: HubConfig, topic: str, expected: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    records = read_topic(config.kafka.bootstrap_servers, topic, expected=expected, timeout_s=timeout_s)
    schemas = read_derived_schemas(ClientSettings(config.kafka.bootstrap_servers), config.kafka.topics.schemas)
    return [decode_delivery(r.value or b"", schemas) for r in records]


def leaves(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        return set().union(*(leaves(v, f"{prefix}{k}.") for k, v in value.items())) if value else set()
    return {prefix.rstrip(".")}


class Receiver(BaseHTTPRequestHandler):
    """A subscriber's webhook endpoint: answers ``status`` until told otherwise; keeps what it got."""

    status = 200
    received: list[tuple[dict[str, str], bytes]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with Receiver.lock:
            status = Receiver.status
            if status == 200:
                Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.status, Receiver.received = 200, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@CLIENTS
def test_filters_and_projections_exactly_as_configured(configure: Any, unique: str, client: str) -> None:
    config = configure(
        [
            {
                "id": "idn-desk",
                "agency": "ministry",
                "event_types": ["PilgrimRegistered"],
                "filter": {"field": "pilgrim.nationality", "in": ["IDN"]},
                "projection": {
                    "fields": ["season", "pilgrim.surname", "pilgrim.nationality", "pilgrim.passport_number"],
                    "mask": {"pilgrim.surname": "hash", "pilgrim.passport_number": {"last": 4}},
                },
                "target": {"kind": "kafka", "topic": f"t{unique}.deliver.idn"},
            },
            {
                "id": "everything",
                "agency": "ministry",
                "event_types": ["PilgrimRegistered"],
                "target": {"kind": "kafka", "topic": f"t{unique}.deliver.all"},
            },
        ],
        client,
    )
    hub = Hub(config)
    try:
        hub.start_router()
        post(hub)
        idn = delivered(config, f"t{unique}.deliver.idn", expected=4)
        everything = delivered(config, f"t{unique}.deliver.all", expected=7)
    finally:
        hub.close()
    assert len(idn) == 4 and len(everything) == 7  # filter held; exactly once each
    allowed = {
        "envelope.event_id",
        "envelope.event_type",
        "envelope.pilgrim_key",
        "season",
        "pilgrim.surname",
        "pilgrim.nationality",
        "pilgrim.passport_number",
    }
    for event in idn:
        assert leaves(event) <= allowed
        assert event["pilgrim"]["nationality"] == "IDN"
        assert event["pilgrim"]["surname"] not in {"SIREGAR", "LUBIS", "NASUTION"}  # hashed
        assert event["pilgrim"]["passport_number"].startswith("****")
    assert {e["pilgrim"]["nationality"] for e in everything} == {"IDN", "PAK", "EGY"}
    assert len({e["envelope"]["event_id"] for e in everything}) == 7


@CLIENTS
def test_a_subscriber_added_later_is_caught_up_once_and_in_order_beside_the_live_traffic(
    configure: Any, unique: str, client: str
) -> None:
    early = {
        "id": "early",
        "agency": "ministry",
        "event_types": ["PilgrimRegistered"],
        "target": {"kind": "kafka", "topic": f"t{unique}.deliver.early"},
    }
    late = {**early, "id": "late", "target": {"kind": "kafka", "topic": f"t{unique}.deliver.late"}}
    config = configure([early], client)
    hub = Hub(config)
    try:
        hub.start_router()
        post(hub)
        post(hub)
        assert len(delivered(config, f"t{unique}.deliver.early", expected=14)) == 14
    finally:
        hub.close()

    config = configure([early, late], client)  # the same router group: "late" is new to it
    hub = Hub(config)
    try:
        hub.start_router()
        [lane] = hub.workers
        post(hub, "01-jakarta-agent-group.json")  # live traffic while "late" is brought up on the 14 before it
        deadline = time.monotonic() + 30  # ... and it joins the others even once the topic is quiet
        while time.monotonic() < deadline and (lane.busy or not lane.standing or lane._catching_up()):
            time.sleep(0.1)
        caught_up_s = 30 - (deadline - time.monotonic())
        post(hub, *(n for n in sorted(p.name for p in FEEDS.iterdir()) if n != "01-jakarta-agent-group.json"))
        got_early = delivered(config, f"t{unique}.deliver.early", expected=21)
        got_late = delivered(config, f"t{unique}.deliver.late", expected=21)
        standings = list(lane.standing.values())
    finally:
        hub.close()
    early_ids = [e["envelope"]["event_id"] for e in got_early]
    late_ids = [e["envelope"]["event_id"] for e in got_late]
    assert len(early_ids) == len(set(early_ids)) == 21, "the early subscriber lost or repeated events"
    assert len(late_ids) == len(set(late_ids)) == 21, "the late subscriber lost or repeated events"
    assert set(late_ids) == set(early_ids)
    assert caught_up_s < 30, "the late subscriber never joined the others"
    assert all(s.at == {"early", "late"} and not s.behind for s in standings if s.head is not None)

    source = read_topic(config.kafka.bootstrap_servers, config.kafka.topics.events, expected=21)
    by_pilgrim: dict[str, list[str]] = {}
    for r in source:
        _, event = hub.codec.decode(r.value or b"")
        by_pilgrim.setdefault(event["envelope"]["pilgrim_key"], []).append(event["envelope"]["event_id"])
    late_by_pilgrim: dict[str, list[str]] = {}
    for event in got_late:
        late_by_pilgrim.setdefault(event["envelope"]["pilgrim_key"], []).append(event["envelope"]["event_id"])
    assert late_by_pilgrim == by_pilgrim, "history and live events reached the late subscriber out of order"


def test_a_down_webhook_catches_up_without_delaying_others(configure: Any, unique: str, receiver: str) -> None:
    config = configure(
        [
            {
                "id": "hotel-hook",
                "agency": "hotels",
                "event_types": ["PilgrimRegistered"],
                "projection": {"fields": ["registration_id", "housing"]},
                "target": {"kind": "webhook", "url": receiver, "secret": WEBHOOK_SECRET},
                "retry": FAST_RETRY,
            },
            {
                "id": "fast-lane",
                "agency": "ministry",
                "event_types": ["PilgrimRegistered"],
                "target": {"kind": "kafka", "topic": f"t{unique}.deliver.fast"},
            },
        ]
    )
    Receiver.status = 503
    hub = Hub(config)
    try:
        hub.start_router()
        time.sleep(2)  # let both workers join their groups before the measured post
        posted = time.monotonic()
        post(hub)
        fast = delivered(config, f"t{unique}.deliver.fast", expected=7)
        fast_latency = time.monotonic() - posted
        assert len(fast) == 7
        assert Receiver.received == []  # still down
        time.sleep(3)  # down for a while longer, retrying
        Receiver.status = 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len({h["webhook-id"] for h, _ in Receiver.received}) < 7:
            time.sleep(0.2)
    finally:
        hub.close()
    ids = {headers["webhook-id"] for headers, _ in Receiver.received}
    assert ids == {e["envelope"]["event_id"] for e in fast}
    assert fast_latency < 8, f"the other subscriber waited {fast_latency:.1f}s"
    for headers, body in Receiver.received:
        assert verify_signature(WEBHOOK_SECRET, headers, body)
        assert set(json.loads(body)) <= {"envelope", "registration_id", "housing"}


def test_permanent_failures_are_dead_lettered_and_replayed(configure: Any, unique: str, receiver: str) -> None:
    config = configure(
        [
            {
                "id": "strict-hook",
                "agency": "immigration",
                "event_types": ["PilgrimRegistered"],
                "target": {"kind": "webhook", "url": receiver, "secret": WEBHOOK_SECRET},
                "retry": FAST_RETRY,
            },
        ]
    )
    settings = ClientSettings(config.kafka.bootstrap_servers)
    Receiver.status = 422
    hub = Hub(config)
    try:
        hub.start_router()
        post(hub, "01-jakarta-agent-group.json")
        records: list[Record] = read_topic(config.kafka.bootstrap_servers, config.kafka.topics.dead_letter, 4)
        assert len(records) == 4
        headers = dict(records[0].headers)
        assert headers["hub_dlq_subscriber"] == b"strict-hook"
        assert b"422" in headers["hub_dlq_error"]
        assert headers["hub_dlq_attempts"] == b"1"
        assert headers["hub_dlq_original"].startswith(config.kafka.topics.events.encode())

        entries = dead_letters(settings, config.kafka.topics.dead_letter, Selection(subscriber="strict-hook"))
        assert len(entries) == 4
        one_pilgrim = entries[0].pilgrim_key
        Receiver.status = 200
        replay(
            settings,
            [e for e in entries if e.pilgrim_key == one_pilgrim],
            config.kafka.topics.replay,
            config.kafka.topics.audit,
            operator="test",
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not Receiver.received:
            time.sleep(0.2)
        time.sleep(1)
    finally:
        hub.close()
    assert len(Receiver.received) == 1  # only the replayed one, only once
    trail = audit_trail(settings, config.kafka.topics.audit, one_pilgrim)
    assert [e["kind"] + ":" + e.get("outcome", "") for e in trail] == [
        "delivery:dead_lettered",
        "replay:",
        "delivery:delivered",
    ]
    assert "registration_id" in trail[-1]["fields"]


def test_audit_says_who_received_which_fields(configure: Any, unique: str) -> None:
    config = configure(
        [
            {
                "id": "visa-desk",
                "agency": "immigration",
                "event_types": ["PilgrimRegistered"],
                "projection": {"fields": ["pilgrim.passport_number", "pilgrim.nationality"]},
                "target": {"kind": "kafka", "topic": f"t{unique}.deliver.visa"},
            },
        ]
    )
    hub = Hub(config)
    try:
        hub.start_router()
        [result] = post(hub, "03-cairo-single.json")
        [event] = delivered(config, f"t{unique}.deliver.visa", expected=1)
    finally:
        hub.close()
    key = event["envelope"]["pilgrim_key"]
    assert key == hub.config.keyer().key("EGY", "A29384756")
    [entry] = audit_trail(ClientSettings(config.kafka.bootstrap_servers), config.kafka.topics.audit, key)
    assert entry["subscriber"] == "visa-desk" and entry["outcome"] == "delivered"
    assert entry["event_id"] == result["event_ids"][0]
    assert set(entry["fields"]) == {
        "envelope.event_id",
        "envelope.event_type",
        "envelope.pilgrim_key",
        "pilgrim.passport_number",
        "pilgrim.nationality",
    }


@CLIENTS
def test_two_routers_split_partitions_through_a_rebalance(configure: Any, unique: str, client: str) -> None:
    subs = [
        {
            "id": "shared",
            "agency": "ministry",
            "event_types": ["PilgrimRegistered"],
            "target": {"kind": "kafka", "topic": f"t{unique}.deliver.shared"},
        }
    ]
    config = configure(subs, client)
    first = Hub(config)
    second_config = HubConfig.model_validate(
        {
            **config.model_dump(mode="json", exclude={"source"}),
            "source": config.source,
            "identity": {"pilgrim_key_secret": "test-secret-0123456789abcdef"},
            "router": {**config.router.model_dump(), "instance": "1"},
        }
    )
    second = Hub(second_config)
    try:
        first.start_router()
        for _ in range(3):
            post(first)  # 21 events while one router works
        second.start_router()  # joins mid-stream: rebalance
        post(first)  # 7 more during the rebalance
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            w.consumer and w.consumer.assignment() for hub in (first, second) for w in hub.workers
        ):
            time.sleep(0.2)
        for _ in range(2):
            post(first)  # 14 more, now split between the two
        events = delivered(config, f"t{unique}.deliver.shared", expected=42, timeout_s=60)
        assignments = [w.consumer.assignment() for hub in (first, second) for w in hub.workers if w.consumer]
    finally:
        second.close()
        first.close()
    ids = [e["envelope"]["event_id"] for e in events]
    assert len(ids) == 42
    assert len(set(ids)) == 42, "a duplicate reached a read_committed consumer"
    assert len(assignments) == 2 and all(assignments), f"both routers should own partitions: {assignments}"
    assert not (assignments[0] & assignments[1])


@CLIENTS
def test_a_failed_transaction_is_retried_without_duplicates(
    configure: Any, unique: str, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    """The first commit to the subscriber's topic fails (indeterminate): the producer is replaced,
    the batch re-read and delivered once."""
    from streaming.kafka import TransactionFailed

    Producer = producer_class(client)
    real_commit = Producer.commit
    failures: list[int] = []

    def failing_commit(self: Producer) -> None:
        if not failures:
            failures.append(1)
            raise TransactionFailed("indeterminate: broker went away during EndTxn")
        real_commit(self)

    monkeypatch.setattr(Producer, "commit", failing_commit)
    config = configure(
        [
            {
                "id": "eos",
                "agency": "ministry",
                "event_types": ["PilgrimRegistered"],
                "target": {"kind": "kafka", "topic": f"t{unique}.deliver.eos"},
            }
        ],
        client,
    )
    hub = Hub(config)
    try:
        hub.start_router()
        post(hub, "01-jakarta-agent-group.json", "02-lahore-agent-with-errors.json", "03-cairo-single.json")
        events = delivered(config, f"t{unique}.deliver.eos", expected=7, timeout_s=30)
    finally:
        hub.close()
    assert failures == [1]
    ids = [e["envelope"]["event_id"] for e in events]
    seen = [(e["registration_id"], e["envelope"]["event_id"][:8]) for e in events]
    assert len(ids) == len(set(ids)) == 7, f"lost or duplicated under read_committed: {seen}"


@CLIENTS
def test_a_commit_reported_failed_but_done_is_not_delivered_twice(
    configure: Any, unique: str, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    """The indeterminate case the other way round: the commit landed, then the client saw an error."""
    from streaming.kafka import TransactionFailed

    Producer = producer_class(client)
    real_commit = Producer.commit
    failures: list[int] = []

    def commit_then_fail(self: Producer) -> None:
        real_commit(self)
        if not failures:
            failures.append(1)
            raise TransactionFailed("indeterminate: the answer to EndTxn was lost")

    monkeypatch.setattr(Producer, "commit", commit_then_fail)
    config = configure(
        [
            {
                "id": "eos2",
                "agency": "ministry",
                "event_types": ["PilgrimRegistered"],
                "target": {"kind": "kafka", "topic": f"t{unique}.deliver.eos2"},
            }
        ],
        client,
    )
    hub = Hub(config)
    try:
        hub.start_router()
        post(hub, "01-jakarta-agent-group.json", "02-lahore-agent-with-errors.json", "03-cairo-single.json")
        events = delivered(config, f"t{unique}.deliver.eos2", expected=7, timeout_s=30)
        time.sleep(2)
        events = delivered(config, f"t{unique}.deliver.eos2", expected=7, timeout_s=5)
    finally:
        hub.close()
    assert failures == [1]
    ids = [e["envelope"]["event_id"] for e in events]
    assert len(ids) == len(set(ids)) == 7, f"lost or duplicated: {len(ids)} records, {len(set(ids))} distinct"
