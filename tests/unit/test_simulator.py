"""The season simulator, without a broker.

What a user of the simulator relies on: the same seed gives the same season; every message it
sends is one the real connectors parse into exactly the planned events (and the malformed ones are
rejected, alone); the ground truth follows docs/journey-alerts.md, checked on hand-made event
sequences and on the events the connectors actually produced; and the driver delivers through the
hub's transports (HTTP with keys and retries on 503, complete files in the inboxes) on its clock.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.airlines import airport_time_zone
from connectors.base import REGISTRY, Connector, Parsed, build_connector, load_all
from connectors.identity import PilgrimKeyer
from simulator import (
    Anomalies,
    DeliveryFailed,
    SeasonPlan,
    SeasonResult,
    SimClock,
    Targets,
    Thresholds,
    expected_alerts,
    plan_season,
    run_season,
    write_ground_truth,
)
from simulator import driver as driver_module
from simulator.render import (
    AGENCY,
    Delivery,
    render_hour,
    render_immigration,
    render_ota,
    render_paxlst,
    render_registrations,
    render_registrations_csv,
    steps_by_hour,
)
from simulator.season import ORIGINS, ManifestStep, PilgrimStep
from simulator.truth import Observed, accepted_events, alerts_for, observed_from_event

KEYER = PilgrimKeyer(b"unit-test-secret-0123456789")
START = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
NONE = Anomalies.none()
KEYS = {
    "operators": ("/ingest/operators", "op-key"),
    "immigration": ("/ingest/immigration", "imm-key"),
    "hotels": ("/ingest/hotels", "hot-key"),
}


def connectors() -> dict[str, Connector]:
    load_all()
    built: dict[str, Connector] = {}
    for agency in ("operators", "immigration", "hotels", "airlines"):
        model, _ = REGISTRY[agency]
        config = model.model_validate({"name": agency, "type": agency, "transport": {"kind": "http", "path": "/x"}})
        built[agency] = build_connector(config)
    return built


CONNECTORS = connectors()


def plan(pilgrims: int, anomalies: Anomalies = NONE, seed: int = 11) -> SeasonPlan:
    return plan_season(pilgrims, seed, anomalies, START, KEYER)


def all_deliveries(season: SeasonPlan, run: str = "t") -> list[Delivery]:
    return [
        d
        for number, (hour, steps) in enumerate(steps_by_hour(season))
        for d in render_hour(season, steps, hour, f"{run}-h{number:05d}")
    ]


def parse(delivery: Delivery) -> Parsed:
    return CONNECTORS[AGENCY[delivery.feed]].parse(delivery.body, delivery.name)


# -- anomalies and the clock -----------------------------------------------------------------------


def test_anomalies_parse_changes_only_the_named_ones() -> None:
    parsed = Anomalies.parse("overstay=0.05, no_show=0.02")
    assert parsed == Anomalies(overstay=0.05, no_show=0.02)
    assert parsed.no_housing == Anomalies().no_housing
    assert Anomalies.parse("") == Anomalies()
    assert Anomalies.parse("none") == Anomalies.none()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("overstai=0.1", "unknown anomaly"),
        ("overstay", "name=probability"),
        ("overstay=lots", "not a number"),
        ("overstay=1.5", "between 0 and 1"),
        ("overstay=0.6,no_show=0.6", "exceeds 1"),
        ("overstay=0.1,overstay=0.2", "twice"),
    ],
)
def test_anomalies_parse_refuses_nonsense(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Anomalies.parse(text)


def test_sim_clock_only_moves_forward_and_is_aware() -> None:
    clock = SimClock(START)
    clock.advance_to(START + timedelta(hours=2))
    clock.advance_to(START + timedelta(hours=1))
    assert clock.now() == START + timedelta(hours=2)
    with pytest.raises(ValueError, match="aware"):
        clock.advance_to(datetime(2026, 12, 5))
    with pytest.raises(ValueError, match="aware"):
        plan_season(10, 1, NONE, datetime(2026, 12, 1), KEYER)


# -- generation ------------------------------------------------------------------------------------


def test_same_seed_same_season_and_bytes_other_seed_other_season() -> None:
    anomalies = Anomalies(overstay=0.1, no_show=0.1, malformed=0.1)
    first, second = plan(300, anomalies), plan(300, anomalies)
    assert first == second
    assert [d.body for d in all_deliveries(first)] == [d.body for d in all_deliveries(second)]
    other = plan(300, anomalies, seed=12)
    assert [p.passport_number for p in other.pilgrims] != [p.passport_number for p in first.pilgrims]


def test_season_shape_groups_flights_and_keys() -> None:
    season = plan(3000, Anomalies(no_show=0.05, overstay=0.05))
    for group in season.groups:
        assert 20 <= len(group.members) <= 45
        assert {season.pilgrims[i].nationality for i in group.members} == {group.nationality}
    inbound = [f for f in season.flights if f.direction == "inbound"]
    assert sum(len(f.passengers) for f in inbound) == 3000
    assert all(150 <= len(f.passengers) <= 400 for f in inbound)
    for flight in season.flights:
        assert {flight.departure_airport, flight.arrival_airport} & {"JED", "MED"}
    designators = Counter((f.designator, f.departure.date()) for f in season.flights)
    assert max(designators.values()) == 1
    keys = {p.pilgrim_key for p in season.pilgrims}
    assert len(keys) == 3000
    assert all(p.pilgrim_key == KEYER.key(p.nationality, p.passport_number) for p in season.pilgrims)
    assert [(s.at, s.seq) for s in season.steps] == sorted((s.at, s.seq) for s in season.steps)
    assert season.steps[0].at >= START


def test_a_long_season_with_a_registration_window_is_steady() -> None:
    """The soak's season: arrivals over 40 days, each group registered at most 3 days before the
    5 days ahead of its departure, so journeys begin all season long instead of at its start."""
    season = plan_season(3000, 11, NONE, START, KEYER, arrival_days=40, registration_window_days=3)
    inbound = sorted(f.departure for f in season.flights if f.direction == "inbound")
    assert (inbound[-1] - inbound[0]).days >= 30
    first_departure = {i: f.departure for f in season.flights if f.direction == "inbound" for i in f.passengers}
    registrations = [s for s in season.steps if isinstance(s, PilgrimStep) and s.kind == "registration"]
    assert len(registrations) == 3000
    for step in registrations:
        ahead = first_departure[step.pilgrim] - step.at
        assert timedelta(days=5) - timedelta(hours=2) <= ahead <= timedelta(days=8, hours=1)
    with pytest.raises(ValueError, match="arrival_days"):
        plan_season(10, 11, NONE, START, KEYER, arrival_days=0)


def test_origins_have_fixed_offsets_in_the_airlines_connector() -> None:
    """The simulator writes local flight times with fixed offsets; the connector must read them so."""
    moments = [datetime(2026, month, 15, 12, tzinfo=UTC) for month in range(1, 13)]
    for origin in ORIGINS:
        zone = airport_time_zone(origin.airport)
        assert zone is not None
        assert {zone.utcoffset(m.replace(tzinfo=None)) for m in moments} == {timedelta(hours=origin.utc_offset_hours)}
    cairo = airport_time_zone("CAI")  # left out: summer time
    assert cairo is not None
    assert len({cairo.utcoffset(m.replace(tzinfo=None)) for m in moments}) == 2
    assert "CAI" not in {o.airport for o in ORIGINS}


def test_timelines_keep_resolving_events_well_clear_of_deadlines() -> None:
    season = plan(2000)
    by_pilgrim: dict[int, dict[str, list[datetime]]] = {}
    for step in season.steps:
        if isinstance(step, PilgrimStep):
            by_pilgrim.setdefault(step.pilgrim, {}).setdefault(step.kind, []).append(step.at)
    hour = timedelta(hours=1)
    for pilgrim in season.pilgrims:
        times = by_pilgrim[pilgrim.index]
        group = season.groups[pilgrim.group]
        inbound = season.flights[group.inbound_flight]
        entry, exit_ = times["entry"][0], times["exit"][0]
        assert hour <= entry - inbound.actual_arrival <= 3 * hour
        assert entry - inbound.arrival <= 12 * hour - 8 * hour  # no_show deadline far away
        check_ins, check_outs = times["check_in"], times["check_out"]
        assert 2 * hour <= check_ins[0] - entry <= 8 * hour
        assert timedelta(0) < exit_ - check_outs[-1] <= 12 * hour
        assert check_outs[-1] - check_ins[0] >= timedelta(days=6)
        if len(check_ins) == 2:  # moved hotel: re-check-in within hours, last stay longer than 48 h + margin
            assert 4 * hour <= check_ins[1] - check_outs[0] <= 7 * hour
            assert check_outs[1] - check_ins[1] >= 60 * hour
            assert check_ins[1] - entry >= 24 * hour + 8 * hour
        assert exit_ < datetime.combine(pilgrim.visa_valid_until, datetime.min.time(), UTC)
        assert max(times["visa"][0], *times["reservation"]) < inbound.departure
    assert any(len(p.stays) == 2 for p in season.pilgrims)


def test_ten_thousand_pilgrims_generate_in_seconds() -> None:
    began = time.perf_counter()
    season = plan_season(10_000, 3, Anomalies(), START, KEYER)
    assert time.perf_counter() - began < 10
    assert len(season.steps) > 70_000


# -- every message through the real connectors -----------------------------------------------------


def test_every_message_parses_into_the_planned_events_and_the_truth_agrees() -> None:
    anomalies = Anomalies(overstay=0.05, no_housing=0.05, no_show=0.05, checkout_no_exit=0.05, malformed=0.15)
    season = plan(500, anomalies)
    by_key = {p.pilgrim_key: p for p in season.pilgrims}
    parsed_events: dict[int, list[Observed]] = {p.index: [] for p in season.pilgrims}
    rejections: Counter[str] = Counter()
    for delivery in all_deliveries(season):
        parsed = parse(delivery)  # raises InputRejected if a whole document were unusable
        assert len(parsed.records) + len(parsed.rejections) == delivery.events, delivery.name
        rejections[delivery.feed] += len(parsed.rejections)
        for record in parsed.records:
            if record.nationality is None:
                continue
            assert record.passport_number is not None
            pilgrim = by_key[KEYER.key(record.nationality, record.passport_number)]
            parsed_events[pilgrim.index].append(
                observed_from_event(record.event_type, record.occurred_at, record.payload)
            )
    malformed = [p for p in season.pilgrims if p.malformed_record]
    assert sum(rejections.values()) == len(malformed) > 20
    assert set(rejections) >= {"immigration", "hotels", "paxlst"}

    planned = accepted_events(season)

    def comparable(events: list[Observed]) -> Counter[tuple[Any, ...]]:
        # CSV registrations carry no time (the hub stamps them when parsed): compare their type only
        return Counter(
            (e.event_type, None if e.event_type == "PilgrimRegistered" else e.occurred_at, e.arrival_time, e.direction)
            for e in events
            if e.event_type != "GroupMembershipAssigned"
        )

    for pilgrim in season.pilgrims:
        assert comparable(parsed_events[pilgrim.index]) == comparable(planned[pilgrim.index]), pilgrim.malformed_record
    expected = expected_alerts(season, season.final_clock)
    from_hub = {p.pilgrim_key: alerts_for(parsed_events[p.index], season.final_clock) for p in season.pilgrims}
    assert from_hub == expected
    assert {frozenset(a) for a in expected.values()} >= {
        frozenset(),
        frozenset({"no_show"}),
        frozenset({"no_housing"}),
        frozenset({"no_exit_after_checkout", "overstay"}),
    }


def test_paxlst_escapes_names_and_keeps_control_counts() -> None:
    season = plan(200)
    first = season.pilgrims[0]
    odd = dataclasses.replace(first, surname="Ben M'Hidi", given_names="A+B C:D E?F")
    season = dataclasses.replace(season, pilgrims=(odd, *season.pilgrims[1:]))
    pilgrim = season.pilgrims[0]
    flight = season.flights[season.groups[pilgrim.group].inbound_flight]
    step = next(s for s in season.steps if isinstance(s, ManifestStep) and s.flight == flight.index)
    for layout in ("\n", "\r\n", ""):
        body = render_paxlst(season, step, "000000042", layout)
        assert b"NAD+FL+++BEN M?'HIDI:A?+B:C?:D:E??F'" in body
        parsed = CONNECTORS["airlines"].parse(body, "manifest")
        assert not parsed.rejections
        people = [r for r in parsed.records if r.event_type == "PassengerManifested"]
        assert len(people) == len(flight.passengers)
        mine = next(r for r in people if r.passport_number == pilgrim.passport_number)
        assert mine.payload["passenger"]["surname"] == "BEN M'HIDI"
        assert mine.payload["passenger"]["given_names"] == "A+B C:D E?F"
        assert mine.payload["arrival_time"] == flight.arrival
        assert mine.payload["direction"] == "inbound"
        assert mine.occurred_at == step.at


def test_hotel_times_are_the_check_in_and_check_out_instants() -> None:
    season = plan(60)
    steps = [s for s in season.steps if isinstance(s, PilgrimStep) and s.kind in ("check_in", "check_out")]
    parsed = CONNECTORS["hotels"].parse(render_ota(season, steps, "echo", START), "ota")
    assert [(r.event_type, r.occurred_at) for r in parsed.records] == [
        ("GuestCheckedIn" if s.kind == "check_in" else "GuestCheckedOut", s.at) for s in steps
    ]
    assert {r.payload["occurred_at_basis"] for r in parsed.records} == {"LastModifyDateTime"}


@pytest.mark.parametrize("variant", [0, 1, 2, 3])
def test_bulk_csv_and_json_registrations_give_the_same_events(variant: int) -> None:
    season = plan(60)
    steps = [s for s in season.steps if isinstance(s, PilgrimStep) and s.kind == "registration"]
    from_csv = CONNECTORS["operators"].parse(render_registrations_csv(season, steps, variant), "bulk.csv")
    pilgrim = season.pilgrims[steps[0].pilgrim]
    same_agent = [s for s in steps if season.pilgrims[s.pilgrim].agent_code == pilgrim.agent_code]
    body = render_registrations(season, pilgrim.operator_code, pilgrim.agent_code, same_agent, [])
    from_json = CONNECTORS["operators"].parse(body, "registrations.json")
    assert not from_csv.rejections
    assert len(from_csv.records) == len(steps)
    json_payloads = {r.payload["registration_id"]: r.payload for r in from_json.records}
    for record in from_csv.records:
        if record.payload["registration_id"] in json_payloads:
            assert record.payload == json_payloads[record.payload["registration_id"]]


# -- malformed records -----------------------------------------------------------------------------


def _malformed_season() -> SeasonPlan:
    return plan(2000, dataclasses.replace(NONE, malformed=1.0))


def test_malformed_records_are_rejected_alone_by_their_connector() -> None:
    season = _malformed_season()
    fields = {
        "registration": "pilgrim.birth_date",
        "visa": "passport_mrz.document_number_check",
        "entry": "passport_mrz.document_number_check",
        "exit": "passport_mrz.document_number_check",
        "reservation": "RoomStays/RoomStay/BasicPropertyInfo/@HotelCode",
        "check_in": "RoomStays/RoomStay/BasicPropertyInfo/@HotelCode",
        "check_out": "RoomStays/RoomStay/BasicPropertyInfo/@HotelCode",
    }
    seen: set[str] = set()
    for step in season.steps:
        if not isinstance(step, PilgrimStep) or not step.malformed or step.kind in seen:
            continue
        seen.add(step.kind)
        pilgrim = season.pilgrims[step.pilgrim]
        healthy = next(
            s
            for s in season.steps
            if isinstance(s, PilgrimStep)
            and s.kind == step.kind
            and not s.malformed
            and season.pilgrims[s.pilgrim].agent_code == pilgrim.agent_code
        )
        pair = [step, healthy]
        if step.kind == "registration":
            parsed = CONNECTORS["operators"].parse(
                render_registrations(season, pilgrim.operator_code, pilgrim.agent_code, pair, []), "r"
            )
        elif step.kind in ("visa", "entry", "exit"):
            parsed = CONNECTORS["immigration"].parse(render_immigration(season, pair, "b", START), "i")
        else:
            parsed = CONNECTORS["hotels"].parse(render_ota(season, pair, "e", START), "h")
        assert [r.field for r in parsed.rejections] == [fields[step.kind]], step.kind
        assert len(parsed.records) == 1
        assert parsed.records[0].passport_number == season.pilgrims[healthy.pilgrim].passport_number
    assert seen == set(fields)
    manifest = next(s for s in season.steps if isinstance(s, ManifestStep) and s.corrupt)
    parsed = CONNECTORS["airlines"].parse(render_paxlst(season, manifest, "1"), "m")
    assert [r.field for r in parsed.rejections] == ["DTM+329 birth_date"] * len(manifest.corrupt)
    passengers = [r for r in parsed.records if r.event_type == "PassengerManifested"]
    assert len(passengers) == len(season.flights[manifest.flight].passengers) - len(manifest.corrupt)


def test_malformed_records_give_the_alerts_of_what_the_hub_accepted() -> None:
    """Hand-derived from the contract: a rejected record is an event the hub never saw."""
    season = _malformed_season()
    expected = expected_alerts(season, season.final_clock)
    rules = {
        "entry": {"no_show"},  # manifested, arrival + 12 h passes without a recorded entry
        "check_in#1": {"no_housing"},  # entered, no check-in within 24 h (a moved-hotel check-in is days later)
        "check_in#2": {"no_exit_after_checkout"},  # checked out of the first hotel, 48 h pass, then exits
        "exit": {"no_exit_after_checkout", "overstay"},
    }
    kinds: Counter[str] = Counter()
    for pilgrim in season.pilgrims:
        assert pilgrim.injected == ("malformed",)
        assert pilgrim.malformed_record is not None
        kinds[pilgrim.malformed_record] += 1
        assert expected[pilgrim.pilgrim_key] == rules.get(pilgrim.malformed_record, set()), pilgrim.malformed_record
    assert set(rules) <= set(kinds)


# -- injected anomalies, hand-checked --------------------------------------------------------------


@pytest.mark.parametrize(
    ("anomaly", "alerts"),
    [
        (None, set()),
        ("no_show", {"no_show"}),
        ("no_housing", {"no_housing"}),
        ("overstay", {"no_exit_after_checkout", "overstay"}),
        ("checkout_no_exit", {"no_exit_after_checkout", "overstay"}),  # the final clock is past the visa too
    ],
)
def test_injected_anomalies_give_exactly_the_contract_alerts(anomaly: str | None, alerts: set[str]) -> None:
    season = plan(60, dataclasses.replace(NONE, **{anomaly: 1.0}) if anomaly else NONE)
    assert all(p.injected == ((anomaly,) if anomaly else ()) for p in season.pilgrims)
    expected = expected_alerts(season, season.final_clock)
    assert all(found == alerts for found in expected.values())


def test_checkout_without_exit_is_not_yet_an_overstay_while_the_visa_runs() -> None:
    season = plan(60, dataclasses.replace(NONE, checkout_no_exit=1.0))
    during = expected_alerts(season, season.end + timedelta(days=3))
    assert all(found == {"no_exit_after_checkout"} for found in during.values())
    outbound = {p for f in season.flights if f.direction == "outbound" for p in f.passengers}
    assert outbound == {p.index for p in season.pilgrims}  # booked home, missed the flight
    overstayers = plan(60, dataclasses.replace(NONE, overstay=1.0))
    assert not any(f.passengers for f in overstayers.flights if f.direction == "outbound")


def test_thresholds_change_the_expected_alerts() -> None:
    season = plan(60, NONE)
    strict = expected_alerts(season, season.final_clock, Thresholds(no_show_hours=0.5))
    assert all(found == {"no_show"} for found in strict.values())  # every entry is 1-3 h after arrival


# -- the contract, on hand-made events -------------------------------------------------------------

T0 = datetime(2026, 12, 3, 13, 30, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def manifested(at: datetime = T0) -> Observed:
    return Observed("PassengerManifested", at - 8 * H, arrival_time=at, direction="inbound")


def entered(at: datetime) -> Observed:
    return Observed("BorderEntryRecorded", at, crossed_at=at)


def left(at: datetime) -> Observed:
    return Observed("BorderExitRecorded", at, crossed_at=at)


def check_in(at: datetime) -> Observed:
    return Observed("GuestCheckedIn", at)


def check_out(at: datetime) -> Observed:
    return Observed("GuestCheckedOut", at)


def visa(valid_until: date, max_stay: int = 90) -> Observed:
    return Observed("VisaIssued", T0 - 10 * D, visa_valid_until=valid_until, visa_max_stay_days=max_stay)


FAR = T0 + 400 * D


@pytest.mark.parametrize(
    ("events", "final", "alerts"),
    [
        pytest.param([manifested()], T0 + 12 * H, set(), id="no_show-not-before-deadline"),
        pytest.param([manifested()], T0 + 12 * H + timedelta(seconds=1), {"no_show"}, id="no_show-just-after"),
        pytest.param([manifested(), entered(T0 + 12 * H)], FAR, {"no_housing", "overstay"}, id="entry-at-deadline"),
        pytest.param([manifested(), entered(T0 + 13 * H)], FAR, {"no_show", "no_housing", "overstay"}, id="late-entry"),
        pytest.param(
            [Observed("PassengerManifested", T0, arrival_time=T0, direction="outbound")], FAR, set(), id="outbound"
        ),
        pytest.param(
            [check_in(T0), entered(T0 + H), left(T0 + 3 * D)], FAR, {"no_housing"}, id="check-in-before-entry"
        ),
        pytest.param(
            [entered(T0), check_in(T0 + 24 * H), check_out(T0 + 5 * D), left(T0 + 5 * D + 48 * H)],
            FAR,
            set(),
            id="both-resolved-at-deadline",
        ),
        pytest.param(
            [entered(T0), check_in(T0 + H), check_out(T0 + 4 * D), check_in(T0 + 4 * D + 5 * H)],
            T0 + 10 * D,
            set(),
            id="moved-hotel-disarms",
        ),
        pytest.param(
            [entered(T0), check_in(T0 + H), check_out(T0 + 4 * D), check_in(T0 + 4 * D + 5 * H), check_out(T0 + 9 * D)],
            T0 + 20 * D,
            {"no_exit_after_checkout"},
            id="moved-hotel-rearms-at-next-check-out",
        ),
        pytest.param(
            [entered(T0), check_in(T0 + H), check_out(T0 + 4 * D), check_in(T0 + 7 * D), left(T0 + 9 * D)],
            FAR,
            {"no_exit_after_checkout"},
            id="check-in-after-the-deadline-is-too-late",
        ),
        pytest.param([entered(T0)], T0 + 90 * D, {"no_housing"}, id="no-visa-90-days-not-yet"),
        pytest.param([entered(T0)], T0 + 90 * D + timedelta(seconds=1), {"no_housing", "overstay"}, id="no-visa-90"),
        pytest.param(
            [visa(date(2026, 12, 20)), entered(T0), check_in(T0 + H)],
            datetime(2026, 12, 21, tzinfo=UTC),
            set(),
            id="visa-runs-to-midnight-utc",
        ),
        pytest.param(
            [visa(date(2026, 12, 20)), entered(T0), check_in(T0 + H)],
            datetime(2026, 12, 21, 0, 0, 1, tzinfo=UTC),
            {"overstay"},
            id="visa-expired",
        ),
        pytest.param(
            [visa(date(2027, 6, 1), max_stay=10), entered(T0), check_in(T0 + H)],
            T0 + 10 * D + timedelta(seconds=1),
            {"overstay"},
            id="max-stay-first",
        ),
        pytest.param(
            [visa(date(2027, 6, 1)), entered(T0), check_in(T0 + H), left(T0 + 30 * D)], FAR, set(), id="normal"
        ),
        pytest.param(
            [entered(T0), left(T0 + 2 * H), check_out(T0 + 3 * H)], FAR, {"no_housing"}, id="exit-before-check-out"
        ),
    ],
)
def test_contract_rules_on_hand_made_events(events: list[Observed], final: datetime, alerts: set[str]) -> None:
    assert alerts_for(events, final) == alerts


def test_overstay_grace_and_thresholds() -> None:
    events = [manifested(), entered(T0 + 5 * H), check_in(T0 + 30 * H)]
    assert alerts_for(events, T0 + 91 * D) == {"no_housing", "overstay"}
    assert alerts_for(events, T0 + 91 * D, Thresholds(housing_hours=30, overstay_grace_hours=48)) == set()
    assert alerts_for(events, FAR, Thresholds(no_show_hours=4)) == {"no_show", "no_housing", "overstay"}


def test_ground_truth_lines_follow_the_contract(tmp_path: Path) -> None:
    season = plan(120, Anomalies(overstay=0.2, malformed=0.2))
    path = tmp_path / "truth" / "ground-truth.jsonl"
    write_ground_truth(season, path, season.final_clock)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 120
    assert all(
        set(line) == {"pilgrim_key", "nationality", "passport_number", "injected", "expected_alerts"} for line in lines
    )
    first, pilgrim = lines[0], season.pilgrims[0]
    assert first["pilgrim_key"] == pilgrim.pilgrim_key
    assert first["passport_number"] == pilgrim.passport_number
    assert any("overstay" in line["injected"] and "overstay" in line["expected_alerts"] for line in lines)
    assert any("malformed" in line["injected"] for line in lines)
    assert not list(tmp_path.glob("truth/.*"))


# -- delivery --------------------------------------------------------------------------------------


class FakeHub:
    """An httpx MockTransport handler that answers like the hub's HTTP ingest, parsing with the real connectors."""

    def __init__(self, fail_first: int = 0, always_fail: bool = False) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.by_path = {path: (agency, key) for agency, (path, key) in KEYS.items()}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        agency, key = self.by_path[request.url.path]
        if request.headers.get("x-api-key") != key:
            return httpx.Response(401, json={"error": "key"})
        if self.always_fail or self.fail_first > 0:
            self.fail_first -= 1
            return httpx.Response(503, json={"error": "not stored"})
        parsed = CONNECTORS[agency].parse(request.content, request.headers["idempotency-key"])
        status = 207 if parsed.rejections else 202
        return httpx.Response(status, json={"accepted": len(parsed.records), "rejected": len(parsed.rejections)})


def run(
    season: SeasonPlan,
    tmp_path: Path,
    hub: FakeHub,
    inboxes: dict[str, Path] | None = None,
    clock: SimClock | None = None,
    **kwargs: Any,
) -> tuple[SeasonResult, SimClock, list[str]]:
    clock = clock or SimClock(season.start)
    lines: list[str] = []
    targets = Targets(
        "http://hub.test",
        dict(KEYS),
        inboxes if inboxes is not None else {"airlines": tmp_path / "air", "operators": tmp_path / "ops"},
    )
    result = run_season(season, targets, clock, progress=lines.append, transport=httpx.MockTransport(hub), **kwargs)
    return result, clock, lines


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The driver's sleep and monotonic clock, faked: sleeping only moves the fake clock (returned)."""
    now = [0.0]
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(driver_module, "sleep", nap)
    monkeypatch.setattr(driver_module, "monotonic", lambda: now[0])
    return naps


def test_run_season_delivers_through_http_and_inboxes(tmp_path: Path, fake_time: list[float]) -> None:
    season = plan(250, Anomalies(malformed=0.1), seed=12)
    assert any(g.channel == "csv" for g in season.groups)
    hub = FakeHub(fail_first=2)
    clock = SimClock(season.start)
    seen_at_idle: list[datetime] = []
    result, _, lines = run(season, tmp_path, hub, clock=clock, wait_idle=lambda: seen_at_idle.append(clock.now()))

    assert seen_at_idle == [season.end]  # every hour delivered, the final jump not made yet
    assert clock.now() == result.final_clock == season.end + timedelta(days=100)
    expected = Counter[str]()
    for delivery in all_deliveries(season):
        expected[delivery.agency] += delivery.events
    assert result.events_sent == dict(expected)
    assert result.pilgrims == 250
    # HTTP: every request authenticated, retried 503s repeat the same Idempotency-Key
    assert {r.url.path for r in hub.requests} == {path for path, _ in KEYS.values()}
    ids = [r.headers["idempotency-key"] for r in hub.requests]
    assert ids[0] == ids[1] == ids[2]
    assert len(set(ids)) == len(ids) - 2
    assert 503 not in result.http_statuses
    assert sum(result.http_statuses.values()) == len(set(ids))
    # files: complete (no temporary names left), bulk CSV in the operators inbox
    air = sorted(p.name for p in (tmp_path / "air").iterdir())
    ops = sorted(p.name for p in (tmp_path / "ops").iterdir())
    assert not [n for n in air + ops if n.startswith(".") or n.endswith(".part")]
    assert result.files_dropped == len(air) + len(ops)
    assert any(n.endswith(".paxlst") for n in air) and any(n.endswith(".json") for n in air)
    assert ops and all(n.endswith(".csv") for n in ops)
    for name in air:
        assert CONNECTORS["airlines"].parse((tmp_path / "air" / name).read_bytes(), name).records
    # rejections reported by HTTP answers (files are rejected later, by the inbox runner)
    http_malformed = sum(
        1 for s in season.steps if isinstance(s, PilgrimStep) and s.malformed and s.kind != "registration"
    )
    assert http_malformed <= result.rejected_records <= sum(1 for p in season.pilgrims if p.malformed_record)
    # progress: one line per simulated day, then the final jump
    days = (season.end - season.first_hour).days
    assert days <= len(lines) - 1 <= days + 2
    assert "in country" in lines[0] and "rejected so far" in lines[0]


def test_bulk_csv_is_posted_without_an_operators_inbox_and_names_are_unique_per_run(
    tmp_path: Path, fake_time: list[float]
) -> None:
    season = plan(250, seed=12)
    assert any(g.channel == "csv" for g in season.groups)
    hub = FakeHub()
    inbox = tmp_path / "air"
    run(season, tmp_path, hub, inboxes={"airlines": inbox})
    first = {p.name for p in inbox.iterdir()}
    assert any(r.content.startswith((b"operator_code", b"\xef\xbb\xbf")) for r in hub.requests)
    run(season, tmp_path, hub, inboxes={"airlines": inbox})
    assert len({p.name for p in inbox.iterdir()}) == 2 * len(first)


def test_run_season_gives_up_when_kafka_never_acknowledges(tmp_path: Path, fake_time: list[float]) -> None:
    hub = FakeHub(always_fail=True)
    with pytest.raises(DeliveryFailed, match="503"):
        run(plan(30), tmp_path, hub)
    assert len(hub.requests) == driver_module.MAX_ATTEMPTS
    assert fake_time == sorted(fake_time) and fake_time[0] < 1  # exponential backoff


def test_rate_caps_events_per_second(tmp_path: Path, fake_time: list[float]) -> None:
    season = plan(30)
    largest = max(d.events for d in all_deliveries(season))
    result, _, _ = run(season, tmp_path, FakeHub(), rate=100.0)
    sent = sum(result.events_sent.values())
    assert (sent - largest) / 100.0 <= result.wall_seconds <= sent / 100.0 + 1
    unpaced, _, _ = run(season, tmp_path, FakeHub())
    assert unpaced.wall_seconds < result.wall_seconds


def test_targets_must_name_every_transport(tmp_path: Path) -> None:
    season = plan(30)
    with pytest.raises(ValueError, match="hotels"):
        run_season(season, Targets("http://x", {k: v for k, v in KEYS.items() if k != "hotels"}, {}), SimClock(START))
    with pytest.raises(ValueError, match="airlines"):
        run_season(season, Targets("http://x", dict(KEYS), {}), SimClock(START))
