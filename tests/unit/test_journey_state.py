"""Journey state and alert rules (docs/journey-alerts.md), without a broker: every rule, each
resolution, at-most-once, the lag-aware clock, the deadline index, JSON round trips, the API, and
the service's loop with fakes at the Kafka seam (one alert per transaction retry, never two)."""

from __future__ import annotations

import dataclasses
import random
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError

from journey.api import format_journey, journey_router
from journey.config import JourneyConfig
from journey.service import JourneyService, JourneyTopics
from journey.state import (
    ALERT_TYPES,
    TIMELINE_LIMIT,
    DeadlineIndex,
    Journey,
    Thresholds,
    alert_id,
    apply,
    armed_deadlines,
    due_alerts,
    effective_now,
    forget_at,
    journey_document,
    mark_raised,
)
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from streaming.kafka import ClientSettings, KafkaUnavailable, Record, TransactionFailed

T0 = datetime(2025, 5, 1, tzinfo=UTC)
KEY = "pk_" + "a" * 32
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TH = Thresholds()
AGENCY = {
    "PilgrimRegistered": "operators",
    "VisaIssued": "immigration",
    "BorderEntryRecorded": "immigration",
    "BorderExitRecorded": "immigration",
    "PassengerManifested": "airlines",
    "GuestCheckedIn": "hotels",
    "GuestCheckedOut": "hotels",
    "HotelReservationConfirmed": "hotels",
    "JourneyAlertRaised": "hub",
}


# ---- realistic events (they fit the registered schemas: see test_events_fit_their_schemas) ------


def person() -> dict[str, Any]:
    return {
        "surname": "SIREGAR",
        "given_names": "AHMAD",
        "sex": "M",
        "nationality": "IDN",
        "passport_number": "B1234567",
    }


def envelope(event_type: str, at: datetime, key: str | None = KEY) -> dict[str, Any]:
    agency = AGENCY.get(event_type, "airlines")
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": at,
        "ingested_at": at + timedelta(minutes=1),
        "source": {"agency": agency, "connector": agency, "position": f"test#{uuid.uuid4().hex[:6]}"},
        "pilgrim_key": key,
        "trace_id": uuid.uuid4().hex,
    }


def registered(at: datetime, key: str = KEY) -> dict[str, Any]:
    return {
        "envelope": envelope("PilgrimRegistered", at, key),
        "registration_id": "REG-1001",
        "operator_code": "OP-7",
        "season": "umrah",
        "pilgrim": person(),
    }


def visa(at: datetime, valid_until: date, max_stay_days: int = 90, key: str = KEY) -> dict[str, Any]:
    return {
        "envelope": envelope("VisaIssued", at, key),
        "record_id": "IMM-1",
        "visa_number": "V-778",
        "visa_type": "umrah",
        "issued_at": at,
        "valid_from": at.date(),
        "valid_until": valid_until,
        "max_stay_days": max_stay_days,
        "pilgrim": person(),
    }


def manifested(at: datetime, arrival: datetime, direction: str = "inbound", key: str = KEY) -> dict[str, Any]:
    return {
        "envelope": envelope("PassengerManifested", at, key),
        "flight_number": "SV817",
        "carrier": "SV",
        "departure_airport": "CGK" if direction == "inbound" else "JED",
        "departure_time": arrival - 9 * HOUR,
        "departure_time_local": (arrival - 9 * HOUR).isoformat(),
        "arrival_airport": "JED" if direction == "inbound" else "CGK",
        "arrival_time": arrival,
        "arrival_time_local": arrival.isoformat(),
        "direction": direction,
        "passenger": {**person(), "sex": "M"},
        "document_type": "P",
        "message_ref": "M1",
        "interchange_ref": "I1",
        "sender": "SV",
    }


def crossing(event_type: str, crossed: datetime, reported: datetime | None = None, key: str = KEY) -> dict[str, Any]:
    return {
        "envelope": envelope(event_type, reported or crossed, key),
        "record_id": f"IMM-{uuid.uuid4().hex[:6]}",
        "port": "JED",
        "port_type": "air",
        "crossed_at": crossed,
        "flight_number": "SV817",
        "pilgrim": person(),
    }


def entry(crossed: datetime, reported: datetime | None = None, key: str = KEY) -> dict[str, Any]:
    return crossing("BorderEntryRecorded", crossed, reported, key)


def exit_(crossed: datetime, reported: datetime | None = None, key: str = KEY) -> dict[str, Any]:
    return crossing("BorderExitRecorded", crossed, reported, key)


def hotel(event_type: str, at: datetime, key: str = KEY, hotel_code: str = "MAK01") -> dict[str, Any]:
    event: dict[str, Any] = {
        "envelope": envelope(event_type, at, key),
        "reservation_id": f"R-{hotel_code}",
        "hotel_code": hotel_code,
        "hotel_name": "Makkah Towers",
        "guest": {**person(), "sex": "X"},
        "occurred_at_basis": "LastModifyDateTime",
    }
    if event_type == "HotelReservationConfirmed":
        event |= {"stay_start": at.date(), "stay_end": (at + 5 * DAY).date()}
    return event


def checked_in(at: datetime, key: str = KEY, hotel_code: str = "MAK01") -> dict[str, Any]:
    return hotel("GuestCheckedIn", at, key, hotel_code)


def checked_out(at: datetime, key: str = KEY, hotel_code: str = "MAK01") -> dict[str, Any]:
    return hotel("GuestCheckedOut", at, key, hotel_code)


def fold(*events: dict[str, Any], journey: Journey | None = None) -> Journey:
    journey = journey or Journey(KEY)
    for event in events:
        journey = apply(journey, event["envelope"]["event_type"], event)
    return journey


def due_types(journey: Journey, now: datetime, thresholds: Thresholds = TH) -> list[str]:
    return sorted(a.alert_type for a in due_alerts(journey, now, thresholds))


# ---- thresholds and config ---------------------------------------------------------------------


def test_thresholds_defaults_are_the_contracts_and_frozen() -> None:
    assert (TH.no_show_hours, TH.housing_hours, TH.exit_after_checkout_hours) == (12, 24, 48)
    assert (TH.overstay_grace_hours, TH.stay_without_visa_days) == (0, 90)
    with pytest.raises(ValidationError):
        TH.no_show_hours = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Thresholds(no_show_hour=1)  # type: ignore[call-arg]
    config = JourneyConfig.model_validate({"thresholds": {"housing_hours": 6}})
    assert (config.enabled, config.group_id, config.journeys_topic) == (True, "hub-journey", "hub.journeys")
    assert config.thresholds.housing_hours == 6 and config.thresholds.no_show_hours == 12
    with pytest.raises(ValidationError):
        JourneyConfig.model_validate({"topic": "x"})


# ---- state fields ------------------------------------------------------------------------------


def test_fields_follow_the_contract_table() -> None:
    journey = fold(
        registered(T0 - 30 * DAY),
        visa(T0 - 20 * DAY, date(2025, 6, 1), 60),
        manifested(T0 - 5 * DAY, T0 - 3 * DAY),
        manifested(T0 - 4 * DAY, T0 - 2 * DAY),  # rebooked: the latest inbound manifest counts
        manifested(T0 - 4 * DAY, T0 + 20 * DAY, direction="outbound"),  # not inbound: ignored
        entry(T0 - 2 * DAY + 2 * HOUR),
        entry(T0 - DAY),  # only the first entry counts
        checked_in(T0 - 2 * DAY + 6 * HOUR),
        checked_out(T0 - DAY, hotel_code="MAK01"),
        checked_in(T0 - DAY + 3 * HOUR, hotel_code="MED02"),
        checked_out(T0 + 5 * DAY, hotel_code="MED02"),
        exit_(T0 + 5 * DAY + 4 * HOUR),
        exit_(T0 + 9 * DAY),  # only the first exit counts
    )
    assert journey.registered_at == T0 - 30 * DAY
    assert (journey.operator_code, journey.registration_id) == ("OP-7", "REG-1001")
    assert (journey.name, journey.nationality) == ("SIREGAR, AHMAD", "IDN")
    assert (journey.visa_valid_until, journey.visa_max_stay_days) == (date(2025, 6, 1), 60)
    assert journey.inbound_arrival_at == T0 - 2 * DAY
    assert journey.entered_at == T0 - 2 * DAY + 2 * HOUR
    assert journey.checked_in_at == T0 - DAY + 3 * HOUR
    assert journey.checked_out_at == T0 + 5 * DAY
    assert journey.exited_at == T0 + 5 * DAY + 4 * HOUR
    assert journey.last_event_at == T0 + 9 * DAY
    assert due_types(journey, T0 + 400 * DAY) == []  # a complete journey never alerts


def test_apply_returns_a_new_journey_and_leaves_the_old_one_alone() -> None:
    before = fold(registered(T0))
    after = apply(before, "BorderEntryRecorded", entry(T0 + HOUR))
    assert before.entered_at is None and len(before.timeline) == 1
    assert after.entered_at == T0 + HOUR and len(after.timeline) == 2


def test_every_event_adds_a_timeline_entry_even_types_without_state() -> None:
    journey = fold(
        registered(T0),
        hotel("HotelReservationConfirmed", T0 + HOUR),
        manifested(T0 + 2 * HOUR, T0 + DAY),
        entry(T0 + DAY + HOUR),
    )
    assert [(e.agency, e.event_type) for e in journey.timeline] == [
        ("operators", "PilgrimRegistered"),
        ("hotels", "HotelReservationConfirmed"),
        ("airlines", "PassengerManifested"),
        ("immigration", "BorderEntryRecorded"),
    ]
    assert [e.at for e in journey.timeline] == [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + DAY + HOUR]
    assert "OP-7" in journey.timeline[0].summary
    assert "MAK01" in journey.timeline[1].summary and "reservation" in journey.timeline[1].summary.lower()
    assert "SV817" in journey.timeline[2].summary and "inbound" in journey.timeline[2].summary
    assert "JED" in journey.timeline[3].summary
    assert fold(hotel("HotelReservationConfirmed", T0)).entered_at is None


def test_timeline_keeps_the_latest_entries_only() -> None:
    journey = fold(*(checked_in(T0 + i * HOUR) for i in range(TIMELINE_LIMIT + 20)))
    assert len(journey.timeline) == TIMELINE_LIMIT
    assert journey.timeline[0].at == T0 + 20 * HOUR
    assert journey.timeline[-1].at == T0 + (TIMELINE_LIMIT + 19) * HOUR


# ---- the rules ---------------------------------------------------------------------------------


def test_no_show_after_arrival_plus_threshold_without_entry() -> None:
    journey = fold(registered(T0 - DAY), manifested(T0 - DAY, T0))
    assert armed_deadlines(journey, TH)["no_show"] == T0 + 12 * HOUR
    assert due_types(journey, T0 + 12 * HOUR) == []  # the deadline itself has not passed
    [alert] = due_alerts(journey, T0 + 12 * HOUR + timedelta(milliseconds=1), TH)
    assert (alert.alert_type, alert.deadline, alert.pilgrim_key) == ("no_show", T0 + 12 * HOUR, KEY)
    assert (alert.operator_code, alert.registration_id) == ("OP-7", "REG-1001")
    assert "entry" in alert.details
    assert due_types(journey, T0 + DAY, Thresholds(no_show_hours=30)) == []


def test_no_show_follows_the_latest_inbound_manifest() -> None:
    journey = fold(manifested(T0 - DAY, T0), manifested(T0, T0 + 2 * DAY))
    assert due_types(journey, T0 + DAY) == []
    assert due_types(journey, T0 + 3 * DAY) == ["no_show"]
    assert due_types(fold(manifested(T0 - DAY, T0, direction="outbound")), T0 + 9 * DAY) == []


def test_no_show_is_resolved_by_a_border_entry() -> None:
    on_time = fold(manifested(T0 - DAY, T0), entry(T0 + 2 * HOUR))
    assert "no_show" not in due_types(on_time, T0 + 5 * DAY)
    late = fold(manifested(T0 - DAY, T0), entry(T0 + 20 * HOUR))  # after the deadline, read before the clock
    assert "no_show" not in due_types(late, T0 + 5 * DAY)


def test_no_housing_after_entry_plus_threshold_without_check_in() -> None:
    journey = fold(entry(T0))
    assert due_types(journey, T0 + 24 * HOUR) == []
    assert due_types(journey, T0 + 25 * HOUR) == ["no_housing"]
    housed = fold(entry(T0), checked_in(T0 + 30 * HOUR))  # late, but read before judging
    assert due_types(housed, T0 + 2 * DAY) == []
    earlier_stay = fold(checked_in(T0 - 5 * DAY), entry(T0))  # a check-in before the entry does not count
    assert due_types(earlier_stay, T0 + 2 * DAY) == ["no_housing"]


def test_no_exit_after_checkout_and_its_resolutions() -> None:
    stay = (entry(T0), checked_in(T0 + 3 * HOUR), checked_out(T0 + 5 * DAY))
    journey = fold(*stay)
    assert armed_deadlines(journey, TH)["no_exit_after_checkout"] == T0 + 7 * DAY
    assert due_types(journey, T0 + 7 * DAY + HOUR) == ["no_exit_after_checkout"]
    assert due_types(fold(*stay, exit_(T0 + 8 * DAY)), T0 + 9 * DAY) == []
    moved = fold(*stay, checked_in(T0 + 5 * DAY + 2 * HOUR, hotel_code="MED02"))  # moved hotel: disarmed
    assert due_types(moved, T0 + 30 * DAY) == []
    next_checkout = fold(checked_out(T0 + 12 * DAY, hotel_code="MED02"), journey=moved)  # ... re-armed
    assert armed_deadlines(next_checkout, TH)["no_exit_after_checkout"] == T0 + 14 * DAY
    assert due_types(next_checkout, T0 + 13 * DAY) == []
    assert due_types(next_checkout, T0 + 15 * DAY) == ["no_exit_after_checkout"]


def test_overstay_is_the_earlier_of_visa_end_and_max_stay_plus_grace() -> None:
    # the visa's last day ends first: valid until 10 May -> 11 May 00:00 UTC
    short_visa = fold(visa(T0 - 10 * DAY, date(2025, 5, 10), 90), entry(T0 + 7 * HOUR), checked_in(T0 + 9 * HOUR))
    assert armed_deadlines(short_visa, TH)["overstay"] == datetime(2025, 5, 11, tzinfo=UTC)
    assert due_types(short_visa, datetime(2025, 5, 11, 0, 0, 1, tzinfo=UTC)) == ["overstay"]
    # the stay limit ends first: 30 days from entry
    short_stay = fold(visa(T0 - 10 * DAY, date(2025, 8, 1), 30), entry(T0 + 7 * HOUR), checked_in(T0 + 9 * HOUR))
    assert armed_deadlines(short_stay, TH)["overstay"] == T0 + 30 * DAY + 7 * HOUR
    graced = Thresholds(overstay_grace_hours=6)
    assert armed_deadlines(short_stay, graced)["overstay"] == T0 + 30 * DAY + 13 * HOUR
    assert due_types(short_stay, T0 + 30 * DAY + 10 * HOUR, graced) == []
    # no visa seen: 90 days
    no_visa = fold(entry(T0), checked_in(T0 + HOUR))
    assert armed_deadlines(no_visa, TH)["overstay"] == T0 + 90 * DAY


def test_overstay_is_resolved_by_an_exit_after_entry_only() -> None:
    journey = fold(visa(T0 - DAY, date(2025, 5, 3), 90), entry(T0), checked_in(T0 + HOUR))
    assert due_types(fold(exit_(T0 + DAY), journey=journey), T0 + 30 * DAY) == []
    stale_exit = fold(visa(T0 - DAY, date(2025, 5, 3)), exit_(T0 - 60 * DAY), entry(T0), checked_in(T0 + HOUR))
    assert stale_exit.exited_at is None  # an exit before the entry is not "after entered_at"
    assert due_types(stale_exit, T0 + 30 * DAY) == ["overstay"]


# ---- raised once; resolution after raising ---------------------------------------------------------


def test_an_alert_is_raised_at_most_once_per_pilgrim_and_type() -> None:
    journey = fold(manifested(T0 - DAY, T0))
    alerts = due_alerts(journey, T0 + DAY, TH)
    raised = mark_raised(journey, alerts)
    assert raised.alerts["no_show"].alert_id == alert_id(KEY, "no_show") == alerts[0].alert_id
    assert raised.alerts["no_show"].raised_at == T0 + DAY
    assert due_alerts(raised, T0 + 9 * DAY, TH) == []
    rebooked = fold(manifested(T0 + DAY, T0 + 2 * DAY), journey=raised)  # armed again: still not raised twice
    assert due_alerts(rebooked, T0 + 9 * DAY, TH) == []
    assert mark_raised(raised, due_alerts(journey, T0 + 5 * DAY, TH)).alerts["no_show"].raised_at == T0 + DAY


def test_alert_ids_are_stable_and_distinct() -> None:
    assert alert_id(KEY, "overstay") == alert_id(KEY, "overstay")
    ids = {alert_id(k, t) for k in (KEY, "pk_" + "b" * 32) for t in ALERT_TYPES}
    assert len(ids) == 2 * len(ALERT_TYPES)
    assert uuid.UUID(alert_id(KEY, "overstay")).version == 5


@pytest.mark.parametrize(
    ("kind", "setup", "resolving"),
    [
        ("no_show", [manifested(T0 - DAY, T0)], entry(T0 + 2 * DAY)),
        ("no_housing", [entry(T0)], checked_in(T0 + 2 * DAY)),
        ("no_exit_after_checkout", [entry(T0), checked_in(T0), checked_out(T0 + DAY)], exit_(T0 + 5 * DAY)),
        ("no_exit_after_checkout", [entry(T0), checked_in(T0), checked_out(T0 + DAY)], checked_in(T0 + 5 * DAY)),
        ("overstay", [entry(T0 - 100 * DAY), checked_in(T0 - 100 * DAY)], exit_(T0 + DAY)),
    ],
)
def test_a_later_resolving_event_closes_a_raised_alert(
    kind: str, setup: list[dict[str, Any]], resolving: dict[str, Any]
) -> None:
    journey = fold(*setup)
    alerts = [a for a in due_alerts(journey, T0 + 4 * DAY, TH) if a.alert_type == kind]
    assert len(alerts) == 1
    raised = mark_raised(journey, alerts)
    assert kind in raised.open_alerts()
    resolved = fold(resolving, journey=raised)
    assert kind not in resolved.open_alerts()
    assert resolved.alerts[kind].resolved_at == resolving["envelope"]["occurred_at"]
    assert kind not in {a.alert_type for a in due_alerts(resolved, T0 + 400 * DAY, TH)}


def test_an_unrelated_event_does_not_close_an_alert() -> None:
    raised = mark_raised(fold(entry(T0)), due_alerts(fold(entry(T0)), T0 + 2 * DAY, TH))
    assert fold(checked_out(T0 + 3 * DAY), journey=raised).open_alerts() == ["no_housing"]


def test_the_hubs_own_alert_event_only_adds_a_timeline_entry() -> None:
    journey = fold(manifested(T0 - DAY, T0))
    [alert] = due_alerts(journey, T0 + DAY, TH)
    raised = mark_raised(journey, [alert])
    service = JourneyService(ClientSettings("unused:9092"), Codec(SchemaCatalogue()), JourneyTopics("e", "j"))
    event = service.alert_event(alert)
    after = apply(raised, "JourneyAlertRaised", event)
    assert after.alerts == raised.alerts and after.inbound_arrival_at == raised.inbound_arrival_at
    assert (after.timeline[-1].agency, after.timeline[-1].event_type) == ("hub", "JourneyAlertRaised")
    assert "no_show" in after.timeline[-1].summary
    # a journey that did not know the alert learns it, so it is not raised again
    learnt = apply(journey, "JourneyAlertRaised", event)
    assert learnt.alerts["no_show"].alert_id == alert.alert_id and due_alerts(learnt, T0 + 9 * DAY, TH) == []


# ---- the lag-aware clock and the deadline index ------------------------------------------------------


def test_effective_clock_never_runs_ahead_of_what_was_read_while_lagging() -> None:
    assert effective_now(T0 + DAY, lagging=False, latest_read=T0) == T0 + DAY
    assert effective_now(T0 + DAY, lagging=True, latest_read=T0) == T0
    assert effective_now(T0, lagging=True, latest_read=T0 + DAY) == T0
    assert effective_now(T0, lagging=True, latest_read=None) is None
    assert effective_now(T0, lagging=False, latest_read=None) == T0


def test_deadline_index_returns_pilgrims_whose_deadline_passed() -> None:
    index = DeadlineIndex()
    index.schedule("a", {"no_show": T0 + HOUR, "overstay": T0 + 90 * DAY})
    index.schedule("b", {"no_housing": T0 + 2 * HOUR})
    index.schedule("c", {})
    assert len(index) == 3 and index.next_deadline() == T0 + HOUR
    assert index.due(T0 + HOUR) == set()  # not passed yet
    assert index.due(T0 + 3 * HOUR) == {"a", "b"}
    assert index.due(T0 + 3 * HOUR) == set()  # popped
    assert index.next_deadline() == T0 + 90 * DAY
    index.schedule("a", {"overstay": T0 + 10 * DAY})  # replaced: the old entry is stale
    assert index.due(T0 + 11 * DAY) == {"a"} and index.due(T0 + 100 * DAY) == set()
    index.schedule("d", {"no_show": T0})
    index.schedule("d", {})  # removed
    assert index.due(T0 + DAY) == set() and len(index) == 0 and index.next_deadline() is None


def test_deadline_index_limit_and_compaction() -> None:
    index = DeadlineIndex()
    for i in range(1000):
        for shift in range(5):  # rescheduled repeatedly: the heap must not grow without bound
            index.schedule(f"p{i}", {"no_show": T0 + (i + shift) * timedelta(seconds=1)})
    assert len(index) == 1000 and len(index._heap) <= 4 * 1000
    first = index.due(T0 + DAY, limit=10)
    assert first == {f"p{i}" for i in range(10)}
    assert len(index.due(T0 + DAY)) == 990


def test_deadline_index_counts_what_it_holds() -> None:
    """The live count is kept, not recounted per event: it must match the entries through any mix of
    scheduling, replacing, removing, popping and clearing."""
    rng = random.Random(7)
    index = DeadlineIndex()
    for step in range(3000):
        key = f"p{rng.randrange(200)}"
        if step % 97 == 0:
            index.due(T0 + rng.randrange(0, 50) * HOUR, limit=rng.choice([None, 5]))
        else:
            kinds = rng.sample(["no_show", "no_housing", "overstay", "forget"], rng.randrange(0, 4))
            index.schedule(key, {kind: T0 + rng.randrange(0, 50) * HOUR for kind in kinds})
        assert len(index) == sum(len(d) for d in index._current.values())
    index.clear()
    assert len(index) == 0


# ---- persistence and presentation --------------------------------------------------------------------


def test_json_round_trip_keeps_everything() -> None:
    journey = fold(
        registered(T0 - 30 * DAY),
        visa(T0 - 20 * DAY, date(2025, 6, 1), 60),
        manifested(T0 - 5 * DAY, T0 - 3 * DAY + timedelta(milliseconds=250)),
        entry(T0 - 3 * DAY + 2 * HOUR),
        checked_in(T0 - 3 * DAY + 5 * HOUR),
        checked_out(T0 - DAY),
    )
    journey = mark_raised(journey, due_alerts(journey, T0 + 2 * DAY, TH))
    journey = dataclasses.replace(fold(exit_(T0 + 2 * DAY + HOUR), journey=journey), partition=2)
    assert journey.alerts["no_exit_after_checkout"].resolved_at is not None
    assert Journey.from_json(journey.to_json()) == journey
    assert Journey.from_json(journey.to_json().encode()) == journey
    assert Journey.from_json(Journey(KEY).to_json()) == Journey(KEY)


def test_journey_document_and_cli_format() -> None:
    journey = fold(registered(T0 - DAY), manifested(T0 - DAY, T0), entry(T0 + HOUR))
    journey = mark_raised(journey, due_alerts(journey, T0 + 2 * DAY, TH))
    doc = journey_document(journey, TH)
    assert doc["open_alerts"] == ["no_housing"] and "partition" not in doc
    assert doc["pending_deadlines"] == {"overstay": "2025-07-30T01:00:00Z"}
    assert doc["entered_at"] == "2025-05-01T01:00:00Z"
    text = format_journey(doc)
    assert text.splitlines()[0] == f"Pilgrim {KEY}: SIREGAR, AHMAD (IDN)"
    assert "no_housing" in text and "OPEN" in text and "watching" in text
    assert "Timeline (3 events):" in text
    assert any(line.split()[1:3] == ["immigration", "BorderEntryRecorded"] for line in text.splitlines())


def test_api_answers_the_journey_or_a_clear_404() -> None:
    journey = fold(registered(T0), entry(T0 + HOUR))
    docs = {KEY: journey_document(journey)}
    app = FastAPI()
    app.include_router(journey_router(docs.get))
    client = TestClient(app)
    found = client.get(f"/journeys/{KEY}")
    assert found.status_code == 200
    body = found.json()
    assert body["pilgrim_key"] == KEY and body["operator_code"] == "OP-7"
    assert [(e["agency"], e["event_type"]) for e in body["timeline"]] == [
        ("operators", "PilgrimRegistered"),
        ("immigration", "BorderEntryRecorded"),
    ]
    missing = client.get("/journeys/pk_nobody")
    assert missing.status_code == 404 and "pk_nobody" in missing.json()["detail"]


def test_events_fit_their_schemas_and_fold_the_same_after_decoding() -> None:
    codec = Codec(SchemaCatalogue())
    events = [
        registered(T0 - 30 * DAY),
        visa(T0 - 20 * DAY, date(2025, 6, 1), 60),
        manifested(T0 - 5 * DAY, T0 - 3 * DAY),
        entry(T0 - 3 * DAY + 2 * HOUR),
        hotel("HotelReservationConfirmed", T0 - 3 * DAY + 3 * HOUR),
        checked_in(T0 - 3 * DAY + 5 * HOUR),
        checked_out(T0 - DAY),
        exit_(T0 - DAY + 4 * HOUR),
    ]
    decoded = [codec.decode(codec.encode(e["envelope"]["event_type"], e).value) for e in events]
    assert [t for t, _ in decoded] == [e["envelope"]["event_type"] for e in events]
    journey = Journey(KEY)
    for event_type, event in decoded:
        journey = apply(journey, event_type, event)
    assert journey == fold(*events)


def test_alert_event_fits_the_registered_schema() -> None:
    codec = Codec(SchemaCatalogue())
    journey = fold(registered(T0 - DAY), manifested(T0 - DAY, T0))
    [alert] = due_alerts(journey, T0 + DAY, TH)
    service = JourneyService(ClientSettings("unused:9092"), codec, JourneyTopics("e", "j"), clock=lambda: T0 + DAY)
    encoded = codec.encode("JourneyAlertRaised", service.alert_event(alert))
    event_type, event = codec.decode(encoded.value)
    assert event_type == "JourneyAlertRaised" and encoded.key == KEY.encode()
    assert event["envelope"]["event_id"] == event["alert_id"] == alert_id(KEY, "no_show")
    assert event["envelope"]["source"]["agency"] == "hub"
    assert event["envelope"]["source"]["connector"] == "journey-service"
    assert (event["deadline"], event["raised_at"]) == (T0 + 12 * HOUR, T0 + DAY)
    assert (event["operator_code"], event["registration_id"]) == ("OP-7", "REG-1001")
    assert dict(encoded.headers)["ce_source"] == b"/agencies/hub/journey-service"


# ---- the service loop, with fakes at the Kafka seam --------------------------------------------------


class FakeConsumer:
    """One partition of the journey topic: poll returns what is past the position; seek rewinds."""

    def __init__(self, topic: str, stop: threading.Event, polls: int, txns: FakeTransactions) -> None:
        self.topic, self.stop, self.polls_left, self.txns = topic, stop, polls, txns
        self.log: list[Record] = []
        self.position = 0
        self.lag_override: int | None = None
        self.closed = 0
        self.lag_failures = 0

    def append(self, value: bytes, key: bytes) -> None:
        self.log.append(Record(self.topic, 0, len(self.log), key, value, [], 0))

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> list[Record]:
        self.polls_left -= 1
        if self.polls_left <= 0:
            self.stop.set()
        batch = self.log[self.position :]
        self.position = len(self.log)
        return batch

    def seek(self, positions: dict[tuple[str, int], int]) -> None:
        for offset in positions.values():
            self.position = min(self.position, offset)

    def lag(self) -> int:
        if self.lag_failures:
            self.lag_failures -= 1
            raise KafkaUnavailable("lag unknown: KafkaConnectionError()")
        return self.lag_override if self.lag_override is not None else len(self.log) - self.position

    def assignment(self) -> set[tuple[str, int]]:
        return {(self.topic, 0)}

    def close(self) -> None:
        """The next consumer of the group starts from the committed offset."""
        self.position = self.txns.offsets[-1][(self.topic, 0)] if self.txns.offsets else 0
        self.closed += 1


class FakeTransactions:
    """Transactional producers sharing one log of committed records; ``failures`` commits fail."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.committed: list[tuple[str, bytes | None, bytes | None]] = []
        self.offsets: list[dict[tuple[str, int], int]] = []
        self.discarded = 0

    def producer(self, settings: ClientSettings, transactional_id: str | None = None) -> Any:
        log = self

        class Producer:
            def __init__(self) -> None:
                self.pending: list[tuple[str, bytes | None, bytes | None]] = []
                self.pending_offsets: dict[tuple[str, int], int] = {}

            def begin(self) -> None:
                self.pending, self.pending_offsets = [], {}

            def send(self, topic: str, value: bytes | None, key: bytes | None = None, headers: Any = None) -> None:
                self.pending.append((topic, value, key))

            def send_offsets(self, consumer: Any, offsets: dict[tuple[str, int], int]) -> None:
                self.pending_offsets = dict(offsets)

            def commit(self) -> None:
                if log.failures:
                    log.failures -= 1
                    raise TransactionFailed("commit_transaction: KafkaConnectionError()")
                log.committed += self.pending
                if self.pending_offsets:
                    log.offsets.append(self.pending_offsets)

            def discard(self) -> None:
                log.discarded += 1

            def close(self, timeout_s: float = 0) -> None:
                pass

        return Producer()

    def alerts(self, codec: Codec, topic: str) -> list[dict[str, Any]]:
        return [codec.decode(v)[1] for t, v, _ in self.committed if t == topic and v is not None]


def _service(
    monkeypatch: pytest.MonkeyPatch, txns: FakeTransactions, consumer: FakeConsumer, now: list[datetime]
) -> JourneyService:
    monkeypatch.setattr("journey.service.Producer", txns.producer)
    topics = JourneyTopics("events", "journeys")
    service = JourneyService(ClientSettings("unused:9092"), Codec(SchemaCatalogue()), topics, clock=lambda: now[0])
    monkeypatch.setattr(service, "rebuild", lambda: None)
    monkeypatch.setattr(service, "open_consumer", lambda: consumer)
    return service


def _produce(consumer: FakeConsumer, codec: Codec, events: Sequence[dict[str, Any]]) -> None:
    for event in events:
        encoded = codec.encode(event["envelope"]["event_type"], event)
        consumer.append(encoded.value, encoded.key)


def _alerts_total(kind: str) -> float:
    return REGISTRY.get_sample_value("hub_journey_alerts_total", {"alert_type": kind}) or 0.0


def test_failed_transaction_is_retried_and_the_alert_written_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    txns = FakeTransactions(failures=1)
    consumer = FakeConsumer("events", stop, polls=3, txns=txns)
    now = [T0 + 13 * HOUR]  # past the no-show deadline already when the events are read
    service = _service(monkeypatch, txns, consumer, now)
    _produce(consumer, service.codec, [registered(T0 - DAY), manifested(T0 - DAY, T0)])
    before = _alerts_total("no_show")
    service.run(stop)
    assert txns.discarded == 1 and consumer.closed >= 1  # producer and consumer thrown away, batch re-read
    alerts = txns.alerts(service.codec, "events")
    assert [(a["alert_type"], a["envelope"]["pilgrim_key"]) for a in alerts] == [("no_show", KEY)]
    assert txns.offsets[-1] == {("events", 0): 2}
    changelog = [Journey.from_json(v or b"") for t, v, _ in txns.committed if t == "journeys"]
    assert changelog[-1].alerts["no_show"].alert_id == alerts[0]["alert_id"]
    assert _alerts_total("no_show") - before == 1
    doc = service.get(KEY)
    assert doc is not None and doc["open_alerts"] == ["no_show"]


def test_deadlines_are_judged_without_new_events_and_held_back_while_lagging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = threading.Event()
    txns = FakeTransactions()
    consumer = FakeConsumer("events", stop, polls=10**6, txns=txns)
    now = [T0 - HOUR]
    service = _service(monkeypatch, txns, consumer, now)
    service.consumer = consumer  # type: ignore[assignment]
    _produce(consumer, service.codec, [registered(T0 - DAY), manifested(T0 - DAY, T0)])
    service.step(consumer.poll())
    assert txns.alerts(service.codec, "events") == []
    now[0] = T0 + 13 * HOUR
    consumer.lag_override = 5  # behind the end: the clock stops at the latest occurred_at read (T0 - 1 day)
    service.step(consumer.poll())
    assert txns.alerts(service.codec, "events") == []
    consumer.lag_override = None  # caught up: the clock moves on, and no event is needed to judge
    service.step(consumer.poll())
    service.step(consumer.poll())
    assert [a["alert_type"] for a in txns.alerts(service.codec, "events")] == ["no_show"]
    # the service reads its own alert back: a timeline entry, no second alert
    own_alert = next(v for t, v, _ in txns.committed if t == "events")
    consumer.log.append(Record("events", 0, len(consumer.log), KEY.encode(), own_alert, [], 0))
    now[0] = T0 + 40 * DAY
    service.step(consumer.poll())
    service.step(consumer.poll())
    assert len(txns.alerts(service.codec, "events")) == 1
    doc = service.get(KEY)
    assert doc is not None and doc["timeline"][-1]["event_type"] == "JourneyAlertRaised"


def test_failed_read_re_reads_the_batch_without_applying_it_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    txns = FakeTransactions()
    consumer = FakeConsumer("events", stop, polls=3, txns=txns)
    consumer.lag_failures = 1  # the broker does not answer the lag request once
    service = _service(monkeypatch, txns, consumer, [T0 + 13 * HOUR])
    _produce(consumer, service.codec, [registered(T0 - DAY), manifested(T0 - DAY, T0)])
    service.run(stop)
    assert txns.discarded == 0 and consumer.closed == 1  # nothing was written: no restart, just a re-read
    assert [a["alert_type"] for a in txns.alerts(service.codec, "events")] == ["no_show"]
    doc = service.get(KEY)
    assert doc is not None
    assert [e["event_type"] for e in doc["timeline"]] == ["PilgrimRegistered", "PassengerManifested"]


def test_a_journey_is_forgotten_only_after_exit_and_with_no_alert_open() -> None:
    exited = fold(registered(T0 - 10 * DAY), entry(T0 - 5 * DAY), exit_(T0))
    assert forget_at(exited, 2 * DAY) == T0 + 2 * DAY
    assert forget_at(exited, None) is None  # no retention configured: kept for ever
    in_country = fold(registered(T0 - 10 * DAY), entry(T0 - 5 * DAY))
    assert forget_at(in_country, 2 * DAY) is None
    never_housed = fold(registered(T0 - 10 * DAY), entry(T0 - 5 * DAY))
    never_housed = mark_raised(never_housed, due_alerts(never_housed, T0 - 3 * DAY, Thresholds()))
    never_housed = fold(exit_(T0), journey=never_housed)
    assert never_housed.open_alerts() == ["no_housing"]
    assert forget_at(never_housed, 2 * DAY) is None  # an open case stays until it is resolved
