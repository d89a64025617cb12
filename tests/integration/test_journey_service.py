"""The journey service on the real broker: realistic agency events in, alerts out exactly once
(read_committed), the journey served by ``GET /journeys/{key}``, and a restarted service that
rebuilds its state from the changelog and raises no alert twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from config import HubConfig
from journey.api import journey_router, load_journey
from journey.service import JourneyService, JourneyTopics
from journey.state import alert_id
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from streaming.kafka import Admin, Producer, TopicSpec
from tests.integration.conftest import read_topic
from tests.unit.test_journey_state import (
    DAY,
    HOUR,
    T0,
    checked_in,
    checked_out,
    entry,
    envelope,
    exit_,
    hotel,
    manifested,
    registered,
    visa,
)

pytestmark = pytest.mark.integration

ALERT_TYPE = b"hajj.journey.JourneyAlertRaised"
MINUTE = timedelta(minutes=1)


class FakeClock:
    """The simulator's clock: moved by the test."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now


def wait_for(condition: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """A journey service in a thread, stopped and joined on exit."""

    def __init__(self, service: JourneyService) -> None:
        self.service = service
        self.stop = threading.Event()
        self.thread = service.start(self.stop)
        wait_for(service.ready.is_set, what="the journey service to own partitions")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def setup(hub_config: HubConfig, unique: str) -> Iterator[dict[str, Any]]:
    kafka = hub_config.kafka
    settings = kafka.client_settings("test-journey")
    topics = JourneyTopics(events=kafka.topics.events, journeys=f"t{unique}.hub.journeys")
    admin = Admin(settings)
    admin.ensure_topics([TopicSpec(topics.events, kafka.partitions, 1)])
    admin.close()
    keyer = hub_config.keyer()
    keys = {name: keyer.key("IDN", f"B{i:07d}") for i, name in enumerate("ABCDE")}
    producer = Producer(settings)
    yield {
        "settings": settings,
        "topics": topics,
        "codec": Codec(SchemaCatalogue()),
        "keys": keys,
        "producer": producer,
        "group": f"g{unique}.journey",
        "bootstrap": kafka.bootstrap_servers,
    }
    producer.close()


def produce(env: dict[str, Any], events: list[dict[str, Any]], key: bytes | None = None) -> None:
    codec: Codec = env["codec"]
    deliveries = []
    for event in events:
        encoded = codec.encode(event["envelope"]["event_type"], event, key=key)
        deliveries.append(env["producer"].send(env["topics"].events, encoded.value, encoded.key, encoded.headers))
    for delivery in deliveries:
        delivery.wait()


def journeys(keys: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Five pilgrims' events, as the agencies report them by T0 (2025-05-01 00:00 UTC)."""
    a, b, c, d, e = (keys[n] for n in "ABCDE")
    return {
        # A: a complete journey, on time at every step: never an alert
        "A": [
            registered(T0 - 30 * DAY, a),
            visa(T0 - 20 * DAY, date(2025, 5, 31), 60, a),
            manifested(T0 - 5 * DAY, T0 - 3 * DAY, key=a),
            entry(T0 - 3 * DAY + 2 * HOUR, key=a),
            checked_in(T0 - 3 * DAY + 5 * HOUR, a),
            checked_out(T0 - DAY, a),
            exit_(T0 - DAY + 3 * HOUR, key=a),
        ],
        # B: on the inbound flight that landed at T0 - 6 h, never entered: no_show at T0 + 6 h
        "B": [registered(T0 - 30 * DAY, b), manifested(T0 - 2 * DAY, T0 - 6 * HOUR, key=b)],
        # C: entered at T0 - 20 h, no check-in yet: no_housing at T0 + 4 h
        "C": [registered(T0 - 30 * DAY, c), entry(T0 - 20 * HOUR, key=c)],
        # D: checked out at T0 - 1 day, no exit: no_exit_after_checkout at T0 + 1 day
        "D": [
            visa(T0 - 40 * DAY, date(2025, 7, 1), 90, d),
            entry(T0 - 10 * DAY, key=d),
            checked_in(T0 - 10 * DAY + 4 * HOUR, d),
            checked_out(T0 - DAY, d),
        ],
        # E: visa valid until 2 May: overstay from 3 May 00:00
        "E": [
            visa(T0 - 30 * DAY, date(2025, 5, 2), 90, e),
            entry(T0 - 5 * DAY, key=e),
            checked_in(T0 - 5 * DAY + 3 * HOUR, e),
        ],
    }


def flight_status(at: datetime) -> dict[str, Any]:
    """An event about a flight (no pilgrim key): read, but no journey."""
    return {
        "envelope": envelope("FlightStatusChanged", at, key=None),
        "flight_number": "SV817",
        "carrier": "SV",
        "departure_airport": "CGK",
        "arrival_airport": "JED",
        "direction": "inbound",
        "scheduled_departure": at,
        "scheduled_departure_local": at.isoformat(),
        "status": "landed",
        "changed_at": at,
    }


def alerts_on_topic(env: dict[str, Any], expected_records: int) -> list[dict[str, Any]]:
    records = read_topic(env["bootstrap"], env["topics"].events, expected=expected_records)
    codec: Codec = env["codec"]
    return [codec.decode(r.value or b"")[1] for r in records if r.header("ce_type") == ALERT_TYPE]


def journey_of(service: JourneyService, key: str) -> dict[str, Any]:
    doc = service.get(key)
    assert doc is not None, key
    return doc


def open_alerts_gauge(kind: str) -> float:
    return REGISTRY.get_sample_value("hub_journey_open_alerts", {"alert_type": kind}) or 0.0


def test_alerts_once_journey_api_and_restart(setup: dict[str, Any]) -> None:
    env = setup
    keys: dict[str, str] = env["keys"]
    by_pilgrim = journeys(keys)
    events = [event for pilgrim in by_pilgrim.values() for event in pilgrim]
    produce(env, events)
    produce(env, [flight_status(T0 - HOUR)], key=b"flight:SV817:2025-04-30")
    sent = len(events) + 1
    clock = FakeClock(T0)

    def new_service() -> JourneyService:
        return JourneyService(
            env["settings"], env["codec"], env["topics"], clock=clock, group_id=env["group"], instance="0"
        )

    # ---- 1. everything read at T0: journeys known, nothing due yet ------------------------------
    first = Running(new_service())
    try:
        service = first.service
        for name, pilgrim in by_pilgrim.items():
            wait_for(
                lambda k=keys[name], n=len(pilgrim): (doc := service.get(k)) and len(doc["timeline"]) == n,
                what=f"pilgrim {name}'s events",
            )
        assert service.pilgrims() == 5  # the flight's event made no journey
        assert alerts_on_topic(env, sent) == []
        opened_before = open_alerts_gauge("no_housing")

        # ---- 2. the clock passes B's and C's deadlines, with no new event ------------------------
        clock.set(T0 + 7 * HOUR)
        alerts = alerts_on_topic(env, sent + 2)
        assert sorted((a["envelope"]["pilgrim_key"], a["alert_type"]) for a in alerts) == sorted(
            [(keys["B"], "no_show"), (keys["C"], "no_housing")]
        )
        for alert in alerts:
            expected_id = alert_id(alert["envelope"]["pilgrim_key"], alert["alert_type"])
            assert alert["alert_id"] == alert["envelope"]["event_id"] == expected_id
            assert alert["envelope"]["source"] == {
                "agency": "hub",
                "connector": "journey-service",
                "position": f"{alert['envelope']['pilgrim_key']}/{alert['alert_type']}",
            }
            assert alert["raised_at"] == T0 + 7 * HOUR
        assert open_alerts_gauge("no_housing") - opened_before == 1

        app = FastAPI()
        app.include_router(journey_router(service))
        client = TestClient(app)
        answer = client.get(f"/journeys/{keys['C']}")
        assert answer.status_code == 200
        doc = answer.json()
        assert doc["open_alerts"] == ["no_housing"]
        assert doc["alerts"]["no_housing"]["deadline"] == "2025-05-01T04:00:00Z"
        assert doc["entered_at"] == "2025-04-30T04:00:00Z" and doc["operator_code"] == "OP-7"
        assert [(e["agency"], e["event_type"]) for e in doc["timeline"][:2]] == [
            ("operators", "PilgrimRegistered"),
            ("immigration", "BorderEntryRecorded"),
        ]
        missing = client.get("/journeys/pk_00000000000000000000000000000000")
        assert missing.status_code == 404 and "no journey" in missing.json()["detail"]

        # the service reads its own alert back: a timeline entry from the hub
        wait_for(
            lambda: journey_of(service, keys["C"])["timeline"][-1]["event_type"] == "JourneyAlertRaised",
            what="the alert on C's timeline",
        )

        # ---- 3. C checks in late: the alert is resolved, not raised again ----------------------------
        produce(env, [checked_in(T0 + 6 * HOUR, keys["C"])])
        wait_for(lambda: journey_of(service, keys["C"])["open_alerts"] == [], what="C's alert resolved")
        assert open_alerts_gauge("no_housing") - opened_before == 0
        sent += 1
    finally:
        first.close()

    # ---- 4. restart after the clock passed D's and E's deadlines: state rebuilt, no alert twice ----
    clock.set(T0 + 4 * DAY)
    second = Running(new_service())
    try:
        service = second.service
        rebuilt = service.get(keys["B"])
        assert rebuilt is not None and rebuilt["open_alerts"] == ["no_show"]  # from the changelog
        alerts = alerts_on_topic(env, sent + 4)
        assert sorted((a["envelope"]["pilgrim_key"], a["alert_type"]) for a in alerts) == sorted(
            [
                (keys["B"], "no_show"),
                (keys["C"], "no_housing"),
                (keys["D"], "no_exit_after_checkout"),
                (keys["E"], "overstay"),
            ]
        )
        late = {a["alert_type"]: a for a in alerts if a["alert_type"] in ("overstay", "no_exit_after_checkout")}
        assert late["overstay"]["deadline"] == datetime.fromisoformat("2025-05-03T00:00:00+00:00")
        assert late["no_exit_after_checkout"]["deadline"] == T0 + DAY
        assert journey_of(service, keys["A"])["alerts"] == {}
    finally:
        second.close()

    # ---- 5. the CLI's view, from the changelog, without a running service --------------------------
    doc = load_journey(env["settings"], env["topics"].journeys, keys["E"])
    assert doc is not None and doc["open_alerts"] == ["overstay"]
    assert [e["event_type"] for e in doc["timeline"]][-1] == "JourneyAlertRaised"
    assert load_journey(env["settings"], env["topics"].journeys, "pk_unknown") is None


def test_a_backlog_is_judged_at_the_time_read_not_the_wall_clock(setup: dict[str, Any]) -> None:
    """A service starting far behind (the clock 30 days past the backlog) never raises an alert that
    an unread event of the backlog resolves: B's no-show is never raised, its no-housing is."""
    env = setup
    b = env["keys"]["B"]
    backlog = [registered(T0 - 30 * DAY, b), manifested(T0 - 2 * DAY, T0, key=b)]
    # the hotel confirms the booking, again and again (same pilgrim, so same partition, read in order)
    backlog += [hotel("HotelReservationConfirmed", T0 + i * 20 * MINUTE, b) for i in range(1, 15)]
    backlog += [entry(T0 + 5 * HOUR, key=b)]  # read last, but before the no-show deadline (T0 + 12 h)
    produce(env, backlog)
    clock = FakeClock(T0 + 30 * DAY)
    service = JourneyService(
        env["settings"], env["codec"], env["topics"], clock=clock, group_id=env["group"], max_poll_records=3
    )
    running = Running(service)
    try:
        wait_for(lambda: (doc := service.get(b)) and doc["entered_at"] is not None, what="B's entry")
        time.sleep(1.0)
    finally:
        running.close()
    alerts = alerts_on_topic(env, len(backlog))
    assert [(a["envelope"]["pilgrim_key"], a["alert_type"]) for a in alerts if a["envelope"]["pilgrim_key"] == b] == [
        (b, "no_housing")
    ]


def test_a_finished_journey_is_forgotten_after_the_retention(setup: dict[str, Any]) -> None:
    """A exited at T0 - 21 h: with 2 days' retention it is forgotten at T0 + 27 h (tombstoned: a
    restarted service does not bring it back); D checked out and never exited: kept."""
    env = setup
    keys: dict[str, str] = env["keys"]
    by_pilgrim = journeys(keys)
    produce(env, by_pilgrim["A"] + by_pilgrim["D"])
    clock = FakeClock(T0)

    def new_service() -> JourneyService:
        return JourneyService(
            env["settings"],
            env["codec"],
            env["topics"],
            clock=clock,
            group_id=env["group"],
            forget_after_exit=2 * DAY,
        )

    forgotten_before = REGISTRY.get_sample_value("hub_journey_forgotten_total") or 0.0
    running = Running(new_service())
    try:
        service = running.service
        wait_for(lambda: service.pilgrims() == 2, what="A's and D's journeys")
        clock.set(T0 + 26 * HOUR)
        time.sleep(1.0)
        assert service.get(keys["A"]) is not None  # an hour before the end of its retention
        clock.set(T0 + 28 * HOUR)
        wait_for(lambda: service.get(keys["A"]) is None, what="A forgotten")
        assert service.pilgrims() == 1 and service.get(keys["D"]) is not None
        assert (REGISTRY.get_sample_value("hub_journey_forgotten_total") or 0.0) - forgotten_before == 1
    finally:
        running.close()
    assert load_journey(env["settings"], env["topics"].journeys, keys["A"]) is None
    again = Running(new_service())
    try:
        assert again.service.pilgrims() == 1 and again.service.get(keys["A"]) is None
    finally:
        again.close()
