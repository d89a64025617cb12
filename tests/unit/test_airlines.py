"""Airlines connector: feed detection, PAXLST manifests (passengers, crew, time zones, refused
people), flight status JSON, golden files, encoding through the runtime, and fuzzing.

Golden files are ``tests/fixtures/airlines/connector-*.paxlst|json`` with ``X.expected.json`` beside:
either ``{"events": [...], "rejections": [...]}`` (events as :func:`render` draws them, dates in ISO
8601; rejections with the raw bytes quarantined for them) or ``{"input_rejected": {...}}`` naming
the location, field and a substring of the reason. The other fixtures in that folder belong to the
PAXLST parser's tests, whose golden test takes every ``*.edi`` there: hence ``.paxlst`` for ours.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.airlines import (
    AirlinesConnector,
    Config,
    airport_time_zone,
    direction,
    flight_designator,
)
from connectors.base import Parsed
from connectors.formats.paxlst import parse_paxlst
from connectors.identity import PilgrimKeyer
from connectors.rejections import InputRejected
from connectors.runtime import IngestRuntime, IngestTopics
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from tests.fakes import FakeProducer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "airlines"
GOLDEN = sorted(
    p
    for p in FIXTURES.glob("connector-*")
    if p.suffix in (".paxlst", ".json") and not p.name.endswith(".expected.json")
)
TOPICS = IngestTopics("journey.events", "journey.quarantine")
INBOUND = (FIXTURES / "connector-inbound-cgk-jed.paxlst").read_bytes()
STATUS = (FIXTURES / "connector-flight-status.json").read_bytes()


def connector() -> AirlinesConnector:
    return AirlinesConnector(Config(name="airlines-api", transport={"kind": "filedrop", "directory": "/tmp/apis"}))


def parse(data: bytes, name: str = "t.edi") -> Parsed:
    return connector().parse(data, name)


def refused(data: bytes, name: str = "t.edi") -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        parse(data, name)
    assert caught.value.rejection.input == name
    return caught.value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def render(parsed: Parsed) -> dict[str, Any]:
    """A parse result as the golden files hold it."""
    return {
        "events": [
            {
                "event_type": r.event_type,
                "position": r.position,
                "occurred_at": r.occurred_at.isoformat(),
                "partition_key": r.partition_key,
                "nationality": r.nationality,
                "passport_number": r.passport_number,
                "payload": _jsonable(r.payload),
            }
            for r in parsed.records
        ],
        "rejections": [
            {**rejection.to_dict(), "raw": raw.decode("utf-8", "replace")}
            for rejection, raw in zip(parsed.rejections, parsed.raw_rejected, strict=True)
        ],
    }


def runtime(producer: FakeProducer) -> IngestRuntime:
    codec, keyer = Codec(SchemaCatalogue()), PilgrimKeyer(b"unit-test-secret-0123456789")
    return IngestRuntime(connector(), codec, keyer, producer, TOPICS)  # type: ignore[arg-type]


# --- building manifests ----------------------------------------------------------------------------


def person(
    name: str = "PILGRIM:SITI",
    *,
    qualifier: str = "FL",
    nat: str = "IDN",
    doc: str = "DOC+P:110:111+C1234567",
    birth: str = "700101",
    extra: tuple[str, ...] = (),
) -> list[str]:
    segments = [f"NAD+{qualifier}+++{name}", "ATT+2++F", f"DTM+329:{birth}" if birth else "", "LOC+178+CGK"]
    segments += [f"NAT+2+{nat}" if nat else "", doc, "DTM+36:300101", "LOC+91+IDN", *extra]
    return [s for s in segments if s]


def message(
    *people: list[str],
    ref: str = "M1",
    bgm: str = "745",
    flight: str = "SV817",
    route: tuple[str, str] = ("CGK", "JED"),
    times: tuple[str, str] = ("2612031040", "2612031630"),
) -> list[str]:
    body = [
        f"UNH+{ref}+PAXLST:D:05B:UN:IATA",
        f"BGM+{bgm}",
        f"TDT+20+{flight}+++SV",
        f"LOC+125+{route[0]}",
        f"DTM+189:{times[0]}:201",
        f"LOC+87+{route[1]}",
        f"DTM+232:{times[1]}:201",
    ]
    for group in people:
        body += group
    body.append(f"CNT+42:{sum(1 for g in people if g[0].startswith('NAD+FL')) if bgm == '745' else 0}")
    body.append(f"UNT+{len(body) + 1}+{ref}")
    return body


def interchange(*messages: list[str]) -> bytes:
    segments = ["UNB+UNOA:4+SV+SAUDIAPIS+261202:2215+77++APIS"]
    for m in messages:
        segments += m
    segments.append(f"UNZ+{len(messages)}+77")
    return ("UNA:+.? '\n" + "".join(s + "'\n" for s in segments)).encode()


def events(parsed: Parsed, event_type: str) -> list[dict[str, Any]]:
    return [r.payload for r in parsed.records if r.event_type == event_type]


# --- golden files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_file(path: Path) -> None:
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text(encoding="utf-8"))
    if "input_rejected" in expected:
        want = expected["input_rejected"]
        rejection = refused(path.read_bytes(), path.name).rejection
        assert (rejection.location, rejection.field) == (want["location"], want["field"])
        assert want["reason_contains"] in rejection.reason
    else:
        assert render(parse(path.read_bytes(), path.name)) == expected


def test_the_required_golden_files_are_there() -> None:
    names = {p.name for p in GOLDEN}
    assert {
        "connector-inbound-cgk-jed.paxlst",
        "connector-return-jed-cgk.paxlst",
        "connector-crew-list.paxlst",
        "connector-flight-status.json",
    } <= names
    assert all(p.with_name(p.stem + ".expected.json").exists() for p in GOLDEN)


# --- detection -------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf", b"\r\n  \t", b"\xef\xbb\xbf\n"])
def test_both_feeds_are_recognised_after_a_bom_and_whitespace(prefix: bytes) -> None:
    assert len(parse(prefix + INBOUND).records) == 6  # the flight and five passengers
    assert len(parse(prefix + STATUS, "s.json").records) == 4
    without_una = INBOUND[INBOUND.index(b"UNB") :]
    assert len(parse(prefix + without_una).records) == 6


@pytest.mark.parametrize(
    ("data", "location"),
    [
        (b"", "byte 0"),
        (b"   \n", "byte 4"),
        (b"[1, 2]", "byte 0"),
        (b"<OTA_HotelResNotifRQ/>", "byte 0"),
        (b"\xef\xbb\xbf  UNH+1+PAXLST'", "byte 5"),
        (b"\xff\xfe\x00U", "byte 0"),
    ],
)
def test_anything_else_is_refused_whole(data: bytes, location: str) -> None:
    rejection = refused(data).rejection
    assert rejection.location == location
    assert "neither PAXLST nor flight-status JSON" in rejection.reason


@pytest.mark.parametrize("name", ["truncated.edi", "wrong_unt_count.edi"])
def test_the_parsers_structural_refusals_pass_through(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    with pytest.raises(InputRejected) as direct:
        parse_paxlst(data, name)
    assert refused(data, name).rejection == direct.value.rejection


# --- PAXLST: passengers ----------------------------------------------------------------------------


def test_inbound_manifest_gives_one_event_per_readable_passenger() -> None:
    parsed = parse(INBOUND, "in.edi")
    passengers = events(parsed, "PassengerManifested")
    assert [p["passenger"]["surname"] for p in passengers] == ["RAHMAWATI", "SANTOSO", "SIREGAR", "WIBOWO", "LUBIS"]
    first = passengers[0]
    assert (first["flight_number"], first["direction"], first["time_zone_assumed"]) == ("SV817", "inbound", False)
    assert first["departure_time"] == datetime(2026, 12, 3, 3, 40, tzinfo=UTC)  # 10:40 in Jakarta (UTC+7)
    assert first["arrival_time"] == datetime(2026, 12, 3, 13, 30, tzinfo=UTC)  # 16:30 in Jeddah (UTC+3)
    assert (first["departure_time_local"], first["arrival_time_local"]) == (
        "2026-12-03T10:40:00+07:00",
        "2026-12-03T16:30:00+03:00",
    )
    # the pilgrim key material, normalised: alpha-2 nationality and a spaced passport number
    siregar = next(r for r in parsed.records if r.position.startswith("message M0817A segment 42 "))
    assert (siregar.nationality, siregar.passport_number) == ("IDN", "C7731904")
    assert siregar.payload["passenger"]["issuing_state"] == "IDN"
    # no ATT+2: sex unspecified; no given names: empty
    wibowo = passengers[3]["passenger"]
    assert (wibowo["sex"], wibowo["given_names"]) == ("X", "")
    # of a visa and a passport, the passport identifies the pilgrim
    lubis = passengers[4]
    assert (lubis["document_type"], lubis["passenger"]["passport_number"]) == ("P", "C9001122")
    assert all(r.occurred_at == datetime(2026, 12, 2, 22, 15, tzinfo=UTC) for r in parsed.records)


def test_a_bad_birth_date_refuses_that_passenger_only_with_its_raw_segments() -> None:
    parsed = parse(INBOUND, "in.edi")
    [rejection] = parsed.rejections
    assert (rejection.input, rejection.location, rejection.field) == (
        "in.edi",
        "message M0817A segment 52 (NAD)",
        "DTM+329 birth_date",
    )
    assert "731341" in rejection.reason
    raw = parsed.raw_rejected[0]
    assert raw.startswith(b"NAD+FL+++HASIBUAN:RIZKY'") and raw.endswith(b"LOC+91+IDN'")
    assert b"WIBOWO" not in raw
    [flight] = events(parsed, "FlightManifestReceived")
    assert (flight["passenger_count"], flight["rejected_passenger_count"], flight["crew_count"]) == (6, 1, 2)


def test_crew_are_counted_not_published() -> None:
    parsed = parse(INBOUND)
    surnames = {p["passenger"]["surname"] for p in events(parsed, "PassengerManifested")}
    assert not surnames & {"ALQAHTANI", "ALHARBI"}
    crew_list = parse((FIXTURES / "connector-crew-list.paxlst").read_bytes(), "crew.edi")
    assert events(crew_list, "PassengerManifested") == []
    [flight] = events(crew_list, "FlightManifestReceived")
    assert (flight["is_crew_list"], flight["crew_count"], flight["passenger_count"]) == (True, 3, 0)
    [rejection] = crew_list.rejections  # a crew member's unreadable expiry is still told to the sender
    assert rejection.field == "DTM+36 document_expiry"
    assert crew_list.raw_rejected[0].startswith(b"NAD+FM+++ALHARBI:NORA'")


def test_flight_events_share_one_key_across_manifests_and_status_updates() -> None:
    manifest = parse(INBOUND).records[0]
    crew = parse((FIXTURES / "connector-crew-list.paxlst").read_bytes()).records[0]
    departed = parse(STATUS, "s.json").records[0]
    assert manifest.event_type == "FlightManifestReceived"
    assert manifest.partition_key == crew.partition_key == departed.partition_key == "flight:SV817:2026-12-03"
    assert manifest.nationality is None and manifest.passport_number is None


def test_return_manifest_is_outbound_and_arrives_the_next_day() -> None:
    parsed = parse((FIXTURES / "connector-return-jed-cgk.paxlst").read_bytes())
    flight, *passengers = parsed.records
    assert flight.partition_key == "flight:SV818:2026-12-17"
    assert {p.payload["direction"] for p in passengers} == {"outbound"}
    assert flight.payload["departure_time"] == datetime(2026, 12, 17, 15, 0, tzinfo=UTC)
    assert flight.payload["arrival_time"] == datetime(2026, 12, 18, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (("CGK", "JED"), "inbound"),
        (("MED", "CGK"), "outbound"),
        (("RUH", "MED"), "domestic"),
        (("CGK", "KUL"), "transit"),
        (("TIF", "TAI"), "outbound"),  # TAI is Ta'izz (Yemen), not Taif
    ],
)
def test_direction_is_seen_from_saudi_arabia(route: tuple[str, str], expected: str) -> None:
    assert direction(*route) == expected
    parsed = parse(interchange(message(person(), route=route)))
    assert {r.payload["direction"] for r in parsed.records} == {expected}


def test_an_unknown_airport_is_read_as_utc_and_flagged() -> None:
    parsed = parse(interchange(message(person(), route=("ZNZ", "JED"), times=("2612030100", "2612030800"))))
    flight = parsed.records[0].payload
    assert flight["time_zone_assumed"] is True
    assert flight["departure_time"] == datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    assert flight["departure_time_local"] == "2026-12-03T01:00:00"  # no offset: it was not known
    assert flight["arrival_time_local"] == "2026-12-03T08:00:00+03:00"
    assert all(r.payload["time_zone_assumed"] for r in parsed.records)


def test_origin_airports_follow_summer_time_where_their_zone_has_it() -> None:
    zone = airport_time_zone("LHR")
    assert zone is not None
    if zone.utcoffset(datetime(2026, 7, 1)) == zone.utcoffset(datetime(2026, 1, 1)):
        pytest.skip("no IANA time-zone data on this host: standard offsets in use")
    parsed = parse(interchange(message(person(), route=("LHR", "MED"), times=("2607011000", "2607011800"))))
    assert parsed.records[0].payload["departure_time"] == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert parsed.records[0].payload["departure_time_local"] == "2026-07-01T10:00:00+01:00"


def test_an_implausible_flight_time_refuses_the_input() -> None:
    sent = message(person(), times=("000101010000", "2612031630"))
    sent = [s.replace(":201", ":203") if s.startswith("DTM+189") else s for s in sent]
    rejection = refused(interchange(sent)).rejection
    assert (rejection.location, rejection.field) == ("message M1", "DTM+189 departure_time")
    assert "not a plausible flight time" in rejection.reason


@pytest.mark.parametrize(
    ("sent", "carrier", "designator"),
    [("SV817", "SV", "SV817"), ("SV 0817", "SV", "SV817"), ("817", "SV", "SV817"), ("sv817a", None, "SV817A")],
)
def test_flight_designators_are_normalised(sent: str, carrier: str | None, designator: str) -> None:
    assert flight_designator(sent, carrier) == designator


def test_nationality_problems_are_refused_by_the_connector_per_passenger() -> None:
    data = interchange(message(person("GOOD:ONE"), person("NONAT:X", nat=""), person("ODD:X", nat="XYZ")))
    parsed = parse(data)
    assert [p["passenger"]["surname"] for p in events(parsed, "PassengerManifested")] == ["GOOD"]
    assert [(r.location, r.field) for r in parsed.rejections] == [
        ("message M1 segment 17 (NAD)", "NAT+2 nationality"),
        ("message M1 segment 24 (NAD)", "NAT+2 nationality"),
    ]
    assert "XYZ" in parsed.rejections[1].reason
    assert parsed.raw_rejected[1].startswith(b"NAD+FL+++ODD:X'")
    [flight] = events(parsed, "FlightManifestReceived")
    assert (flight["passenger_count"], flight["rejected_passenger_count"]) == (3, 2)


def test_a_person_with_several_problems_is_one_rejection() -> None:
    data = interchange(message(person("BROKEN:X", birth="991399", doc="DOC+P"), person()))
    parsed = parse(data)
    [rejection] = parsed.rejections
    assert rejection.field == "DTM+329 birth_date"
    assert "DOC document_number" in rejection.reason and "991399" in rejection.reason
    assert len(events(parsed, "PassengerManifested")) == 1


def test_each_message_gives_its_own_flight_event_with_unique_positions() -> None:
    data = interchange(
        message(person("A:A"), person("B:B", qualifier="FM")),
        message(person("C:C", qualifier="FM"), ref="M2", bgm="250"),
        message(person("D:D"), ref="M1", flight="SV 0818", route=("JED", "CGK")),
    )
    parsed = parse(data)
    flights = [r for r in parsed.records if r.event_type == "FlightManifestReceived"]
    assert [f.position for f in flights] == ["message M1", "message M2", "message M1 #2"]
    assert [(f.payload["passenger_count"], f.payload["crew_count"]) for f in flights] == [(1, 1), (0, 1), (1, 0)]
    assert flights[2].partition_key == "flight:SV818:2026-12-03"
    positions = [r.position for r in parsed.records]
    assert len(set(positions)) == len(positions)
    assert [p["passenger"]["surname"] for p in events(parsed, "PassengerManifested")] == ["A", "D"]


# --- flight status JSON ----------------------------------------------------------------------------


def test_status_updates_become_events_and_a_bad_one_is_refused_alone() -> None:
    parsed = parse(STATUS, "s.json")
    assert [r.position for r in parsed.records] == ["$.updates[0]", "$.updates[1]", "$.updates[3]", "$.updates[4]"]
    [rejection] = parsed.rejections
    assert (rejection.input, rejection.location, rejection.field) == ("s.json", "$.updates[2]", "scheduled_departure")
    assert "status" in rejection.reason and "timezone" in rejection.reason.lower()
    assert json.loads(parsed.raw_rejected[0])["status"] == "boarding"
    delayed = parsed.records[1]
    assert (delayed.payload["flight_number"], delayed.partition_key) == ("SV823", "flight:SV823:2026-12-03")
    assert delayed.occurred_at == datetime(2026, 12, 3, 16, 10, tzinfo=UTC)
    cancelled = parsed.records[3]
    assert (cancelled.payload["flight_number"], cancelled.payload["direction"]) == ("SV818", "outbound")


@pytest.mark.parametrize(
    ("update", "field", "reason"),
    [
        ({"flight_number": "GA980"}, "flight_number", "not a flight of carrier SV"),
        ({"at": 1796281920}, "at", "ISO 8601"),
        ({"delay_minutes": "95"}, "delay_minutes", "integer"),
        ({"delay_minutes": -5}, "delay_minutes", "greater than or equal to 0"),
        ({"arrival_airport": "CGK"}, None, "both CGK"),
        ({"departure_airport": "cgk"}, "departure_airport", "pattern"),
        ({"gate": "A4"}, "gate", "Extra inputs"),
        ({"scheduled_departure": "0001-01-01T00:00:00+01:00"}, "scheduled_departure", "not a plausible flight time"),
    ],
)
def test_invalid_updates_name_their_field(update: dict[str, Any], field: str | None, reason: str) -> None:
    good = {
        "flight_number": "SV817",
        "scheduled_departure": "2026-12-03T10:40:00+07:00",
        "status": "departed",
        "departure_airport": "CGK",
        "arrival_airport": "JED",
        "at": "2026-12-03T10:52:00+07:00",
    }
    body = json.dumps({"carrier": "SV", "updates": [good, {**good, **update}]}).encode()
    parsed = parse(body, "s.json")
    assert len(parsed.records) == 1
    [rejection] = parsed.rejections
    assert (rejection.location, rejection.field) == ("$.updates[1]", field), rejection
    assert reason in rejection.reason, rejection


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b'{"carrier": "SV", "updates": [', None, "not JSON"),
        (b'{"updates": [{}]}', "carrier", "Field required"),
        (b'{"carrier": "SV", "updates": []}', "updates", "at least 1"),
        (b'{"carrier": "SAUDIA", "updates": [{}]}', "carrier", "pattern"),
        (b'{"carrier": "SV", "updates": {}}', "updates", "valid list"),
    ],
)
def test_unusable_status_documents_are_refused_whole(body: bytes, field: str | None, reason: str) -> None:
    rejection = refused(body, "s.json").rejection
    assert (rejection.location, rejection.field) == ("$", field)
    assert reason in rejection.reason


# --- through the runtime: every event encodes and decodes -----------------------------------------


@pytest.mark.parametrize("path", [p for p in GOLDEN if "truncated" not in p.name], ids=lambda p: p.stem)
def test_events_encode_and_decode_through_the_runtime(path: Path) -> None:
    data = path.read_bytes()
    expected = parse(data, f"filedrop:{path.name}")
    producer = FakeProducer()
    result = runtime(producer).ingest(data, f"filedrop:{path.name}")
    assert (result.accepted, len(result.rejections)) == (len(expected.records), len(expected.rejections))
    codec = Codec(SchemaCatalogue())
    sent = producer.on("journey.events")
    assert len(sent) == len(expected.records)
    for record, (_, value, key, _) in zip(expected.records, sent, strict=True):
        event_type, event = codec.decode(value or b"")
        assert event_type == record.event_type
        assert event["envelope"]["source"]["position"] == f"filedrop:{path.name}#{record.position}"
        assert event["envelope"]["occurred_at"] == record.occurred_at
        if record.partition_key:
            assert key == record.partition_key.encode() and event["envelope"]["pilgrim_key"] is None
        else:
            assert key is not None and key.startswith(b"pk_") and event["envelope"]["pilgrim_key"].encode() == key
        assert _jsonable(event) == _jsonable({**record.payload, "envelope": event["envelope"]})
    quarantined = producer.on("journey.quarantine")
    assert [q[1] for q in quarantined] == expected.raw_rejected
    assert [dict(q[3])["hub_location"].decode() for q in quarantined] == [r.location for r in expected.rejections]


def test_the_same_pilgrim_has_one_key_inbound_and_outbound() -> None:
    keys: dict[str, set[bytes]] = {}
    for name in ("connector-inbound-cgk-jed.paxlst", "connector-return-jed-cgk.paxlst"):
        producer = FakeProducer()
        runtime(producer).ingest((FIXTURES / name).read_bytes(), name)
        codec = Codec(SchemaCatalogue())
        for _, value, key, _ in producer.on("journey.events"):
            _, event = codec.decode(value or b"")
            if "passenger" in event and key:
                keys.setdefault(event["passenger"]["surname"], set()).add(key)
    assert {name: len(found) for name, found in keys.items() if name in ("RAHMAWATI", "LUBIS")} == {
        "RAHMAWATI": 1,
        "LUBIS": 1,
    }


# --- fuzzing: only InputRejected, never a crash ---------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_input_rejected(data: bytes) -> None:
    try:
        parsed = parse(data, "fuzz")
    except InputRejected as exc:
        refusal = exc.rejection
    else:
        assert len(parsed.rejections) == len(parsed.raw_rejected)
        assert all(r.occurred_at.tzinfo is not None for r in parsed.records)
        assert all("internal error" not in r.reason for r in parsed.rejections)
        return
    assert "internal error" not in refusal.reason, refusal


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([INBOUND, STATUS, (FIXTURES / "connector-crew-list.paxlst").read_bytes()])))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["delete", "insert", "replace"]))
        if kind == "delete":
            del data[at : at + draw(st.integers(1, 12))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from([b"'", b"+", b":", b"?", b'"', b",", b"{", b"null", b"0", b"\xff"]))
        elif at < len(data):
            data[at] = draw(st.sampled_from(b"'+:?0A9\xff\"{}[],"))
    return bytes(data)


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated()))
def test_arbitrary_and_mutated_inputs_only_raise_input_rejected(data: bytes) -> None:
    _only_input_rejected(data)


VALUE = st.text(st.sampled_from([*"0123456789AZaz :+'?-/<", "É", "\x00"]), max_size=14)


@FUZZ
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 4), st.integers(1, 3), VALUE), min_size=1, max_size=4))
def test_garbled_values_refuse_people_or_the_input_never_crash(edits: list[tuple[int, int, int, str]]) -> None:
    """Replace components inside the message (flight, airports, times, names, codes), released."""
    body = message(person("A:A"), person("B:B", qualifier="FM"), person("C:C", nat="ID"))
    for index, element, component, value in edits:
        at = 1 + index % (len(body) - 3)  # never UNH, CNT or UNT
        elements = body[at].split("+")
        elements += [""] * (element + 1 - len(elements))
        components = elements[element].split(":")
        components += [""] * (component - len(components))
        components[component - 1] = "".join("?" + c if c in ":+'?" else c for c in value)
        elements[element] = ":".join(components)
        body[at] = "+".join(elements)
    _only_input_rejected(interchange(body))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["flight_number", "scheduled_departure", "status", "at", "delay_minutes", "arrival_airport"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30), st.lists(st.integers(), max_size=2)),
    )
)
def test_garbled_status_updates_are_refused_alone(update: dict[str, Any]) -> None:
    body = json.dumps({"carrier": "SV", "updates": [update, json.loads(STATUS)["updates"][0]]}).encode()
    parsed = parse(body, "s.json")
    assert [r.position for r in parsed.records][-1:] == ["$.updates[1]"]
    assert len(parsed.records) + len(parsed.rejections) == 2
