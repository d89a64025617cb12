"""Operators connector and the connector runtime, with a fake producer (no broker)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import JourneyRecord, Parsed
from connectors.identity import PilgrimKeyer
from connectors.operators import Config, OperatorsConnector
from connectors.rejections import InputRejected
from connectors.runtime import IngestRuntime, IngestTopics
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec
from tests.fakes import FakeProducer

FEEDS = Path(__file__).parents[2] / "demo" / "feeds" / "operators"
TOPICS = IngestTopics("journey.events", "journey.quarantine")


def connector() -> OperatorsConnector:
    return OperatorsConnector(Config(name="operators-http", transport={"kind": "http", "path": "/ingest/operators"}))


def runtime(producer: FakeProducer) -> IngestRuntime:
    keyer = PilgrimKeyer(b"unit-test-secret-0123456789")
    return IngestRuntime(connector(), Codec(SchemaCatalogue()), keyer, producer, TOPICS)  # type: ignore[arg-type]


def test_a_good_document_gives_one_event_per_registration() -> None:
    parsed = connector().parse((FEEDS / "01-jakarta-agent-group.json").read_bytes(), "f1")
    assert parsed.rejections == []
    assert [r.position for r in parsed.records] == [f"$.registrations[{i}]" for i in range(4)]
    second = parsed.records[1]
    assert second.event_type == "PilgrimRegistered"
    assert second.nationality == "IDN"  # sent as alpha-2 "ID"
    assert second.payload["pilgrim"]["surname"] == "SIREGAR"
    assert parsed.records[2].payload["pilgrim"]["passport_number"] == "C5510237"  # spaces removed


def test_bad_registrations_are_rejected_alone_with_path_and_field() -> None:
    parsed = connector().parse((FEEDS / "02-lahore-agent-with-errors.json").read_bytes(), "f2")
    assert len(parsed.records) == 2
    by_location = {r.location: r for r in parsed.rejections}
    assert by_location["$.registrations[1]"].field == "pilgrim.birth_date"
    assert by_location["$.registrations[2]"].field == "pilgrim.nationality"
    assert "PAKISTAN" in by_location["$.registrations[2]"].reason
    assert json.loads(parsed.raw_rejected[0])["registration_id"] == "R-2026-004502"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"\xff\xfe not json", None, "not JSON"),
        (b'{"registrations": []}', "operator_code", "Field required"),
        (b'{"operator_code": "OP-1", "registrations": []}', "registrations", "at least 1"),
        (b"[1, 2]", None, "valid dictionary"),
    ],
)
def test_unusable_documents_are_rejected_whole(body: bytes, field: str | None, reason: str) -> None:
    with pytest.raises(InputRejected) as err:
        connector().parse(body, "req-9")
    assert err.value.rejection.input == "req-9"
    assert err.value.rejection.field == field
    assert reason in err.value.rejection.reason


def test_runtime_publishes_events_and_quarantines_rejections() -> None:
    producer = FakeProducer()
    result = runtime(producer).ingest((FEEDS / "02-lahore-agent-with-errors.json").read_bytes(), "http:ops:req-1")
    assert (result.outcome, result.accepted, len(result.rejections)) == ("partial", 2, 2)
    events = producer.on("journey.events")
    assert len(events) == 2
    assert all(key and key.startswith(b"pk_") for _, _, key, _ in events)
    quarantined = producer.on("journey.quarantine")
    assert len(quarantined) == 2
    headers = dict(quarantined[0][3])
    assert headers["hub_location"] == b"$.registrations[1]"
    assert headers["hub_field"] == b"pilgrim.birth_date"
    assert headers["hub_connector"] == b"operators-http"
    assert b"R-2026-004502" in (quarantined[0][1] or b"")


def test_a_rejected_input_is_quarantined_raw() -> None:
    producer = FakeProducer()
    body = (FEEDS / "04-truncated-upload.json").read_bytes()
    result = runtime(producer).ingest(body, "http:ops:req-2")
    assert (result.outcome, result.accepted) == ("rejected", 0)
    assert producer.on("journey.events") == []
    [(_, value, _, headers)] = producer.on("journey.quarantine")
    assert value == body
    assert dict(headers)["hub_rejection_kind"] == b"input"


def test_event_ids_follow_the_source_position_so_retries_repeat_them() -> None:
    body = (FEEDS / "01-jakarta-agent-group.json").read_bytes()
    first = runtime(FakeProducer()).ingest(body, "http:ops:idem-1")
    again = runtime(FakeProducer()).ingest(body, "http:ops:idem-1")
    other = runtime(FakeProducer()).ingest(body, "http:ops:idem-2")
    assert first.event_ids == again.event_ids
    assert set(first.event_ids).isdisjoint(other.event_ids)
    assert len(set(first.event_ids)) == 4


def test_events_decode_with_envelope_and_source_position() -> None:
    producer = FakeProducer()
    runtime(producer).ingest((FEEDS / "03-cairo-single.json").read_bytes(), "http:ops:req-3")
    [(_, value, key, headers)] = producer.on("journey.events")
    event_type, event = Codec(SchemaCatalogue()).decode(value or b"")
    envelope = event["envelope"]
    assert event_type == "PilgrimRegistered"
    assert envelope["source"] == {
        "agency": "operators",
        "connector": "operators-http",
        "position": "http:ops:req-3#$.registrations[0]",
    }
    assert envelope["pilgrim_key"].encode() == key
    assert len(envelope["trace_id"]) == 32
    assert dict(headers)["ce_id"] == envelope["event_id"].encode()
    assert event["pilgrim"]["passport_number"] == "A29384756"


# --- bulk CSV, groups, transport dispatch ---------------------------------------------------------
#
# Golden files live in ``tests/fixtures/operators``: each input has a ``<stem>.expected.json`` beside
# it, either ``{"events": [...], "rejections": [...]}`` or ``{"input_rejected": {...}}``. An event
# lists event_type, position, the pilgrim (nationality + passport as sent) or partition key, and the
# payload with ISO dates; ``occurred_at`` is compared when the expectation gives it (registrations
# without ``registered_at`` happen "now").

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "operators"
GOLDEN = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".csv", ".json") and ".expected" not in p.suffixes)
DOC_KEYS = ["group_id", "season", "capacity", "members", "arrival", "departure", "leader", "nationality",
            "passport_number", "dispatch_id", "vehicle", "route", "departed_at", "passengers"]  # fmt: skip
CSV_HEADER = (
    "operator_code,agent_code,registration_id,group_id,season,surname,given_names,sex,birth_date,"
    "nationality,passport_number,passport_expiry,issuing_state,planned_arrival,planned_departure,housing,mobile"
)


def _iso(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot render {type(value).__name__}")


def render_record(record: JourneyRecord) -> dict[str, Any]:
    rendered = {
        "event_type": record.event_type,
        "position": record.position,
        "occurred_at": record.occurred_at.isoformat(),
        "pilgrim": [record.nationality, record.passport_number] if record.nationality else None,
        "partition_key": record.partition_key,
        "payload": record.payload,
    }
    result: dict[str, Any] = json.loads(json.dumps(rendered, default=_iso))
    return result


def render(parsed: Parsed) -> dict[str, Any]:
    return {
        "events": [render_record(r) for r in parsed.records],
        "rejections": [r.to_dict() for r in parsed.rejections],
    }


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_golden_file(path: Path) -> None:
    expected = json.loads((FIXTURES / f"{path.stem}.expected.json").read_text(encoding="utf-8"))
    if "input_rejected" in expected:
        with pytest.raises(InputRejected) as caught:
            connector().parse(path.read_bytes(), path.name)
        assert caught.value.rejection.to_dict() == {"input": path.name, **expected["input_rejected"]}
        return
    got = render(connector().parse(path.read_bytes(), path.name))
    assert got["rejections"] == expected["rejections"]
    assert len(got["events"]) == len(expected["events"])
    for event, want in zip(got["events"], expected["events"], strict=True):
        if "occurred_at" not in want:
            event.pop("occurred_at")
        assert event == want


def test_every_fixture_has_an_expectation() -> None:
    assert len(GOLDEN) >= 6
    assert [p.name for p in GOLDEN if not (FIXTURES / f"{p.stem}.expected.json").exists()] == []


def test_the_excel_variant_gives_the_same_events_as_the_plain_csv() -> None:
    """BOM, ';' and CRLF change nothing: same positions, same payloads, same rejections."""
    plain = connector().parse((FIXTURES / "bulk_registrations.csv").read_bytes(), "a.csv")
    excel = connector().parse((FIXTURES / "bulk_registrations_excel.csv").read_bytes(), "a.csv")
    assert [(r.position, r.payload) for r in plain.records] == [(r.position, r.payload) for r in excel.records]
    assert plain.rejections == excel.rejections
    assert len(plain.records) == 48


def test_csv_and_json_give_identical_events() -> None:
    document = json.loads((FEEDS / "01-jakarta-agent-group.json").read_bytes())
    lines = [CSV_HEADER]
    for reg in document["registrations"]:
        p = reg["pilgrim"]
        cells = [
            document["operator_code"], document["agent_code"], reg["registration_id"], reg.get("group_id", ""),
            reg["season"], p["surname"], p["given_names"], p["sex"], p["birth_date"], p["nationality"],
            p["passport_number"], p.get("passport_expiry", ""), p.get("issuing_state", ""),
            reg.get("planned_arrival", ""), reg.get("planned_departure", ""), reg.get("housing", ""),
            reg.get("mobile", ""),
        ]  # fmt: skip
        lines.append(",".join(cells))
    from_json = connector().parse(json.dumps(document).encode(), "doc.json").records
    from_csv = connector().parse("\n".join(lines).encode(), "doc.csv").records
    assert len(from_csv) == 4
    for a, b in zip(from_json, from_csv, strict=True):
        assert (a.event_type, a.payload, a.nationality, a.passport_number) == (
            b.event_type,
            b.payload,
            b.nationality,
            b.passport_number,
        )


def test_csv_rows_are_rejected_alone_with_physical_line_column_and_raw_bytes() -> None:
    data = (FIXTURES / "bulk_registrations_excel.csv").read_bytes()
    parsed = connector().parse(data, "ops.csv")
    bad = {r.location: (r.field, raw) for r, raw in zip(parsed.rejections, parsed.raw_rejected, strict=True)}
    assert set(bad) == {"line 8", "line 9"}
    assert bad["line 8"][0] == "birth_date"
    assert bad["line 9"][0] == "nationality"
    physical = data.split(b"\r\n")
    assert bad["line 8"][1] == physical[7] + b"\r\n"
    # a quoted note over lines 22-23 keeps the numbering physical: the next row is line 24
    positions = [r.position for r in parsed.records]
    assert positions[18:20] == ["line 22", "line 24"]


@pytest.mark.parametrize(
    ("text", "location", "field", "reason"),
    [
        (CSV_HEADER + "\nOP-1,AG,R-1,,umrah,A,B,M,1970-01-01,IDN,C1234567", "line 2", None, "has 11 fields"),
        (CSV_HEADER + "\nOP-1,,R-1,,umrah,A,B,M,1970-01-01,IDN,C1234567,,,,,,,SURPLUS", "line 2", None, "has 18"),
        (CSV_HEADER + "\nOP-1,,R-1,,umrah,,B,M,1970-01-01,IDN,C1234567,,,,,,", "line 2", "surname", "required"),
        (CSV_HEADER + "\n\n\nOP-1,,R-1,,Umrah,A,B,M,1970-01-01,IDN,C1,,,,,,", "line 4", "season", "season: "),
        (CSV_HEADER + "\nX,,R-1,,umrah,A,B,M,1970-01-01,IDN,C1234567,,,,,,", "line 2", "operator_code", "at least 2"),
    ],
)
def test_bad_csv_rows(text: str, location: str, field: str | None, reason: str) -> None:
    parsed = connector().parse(text.encode(), "ops.csv")
    [rejection] = parsed.rejections
    assert (rejection.location, rejection.field) == (location, field)
    assert reason in rejection.reason
    assert parsed.records == []


def test_a_row_that_is_not_utf8_is_rejected_alone() -> None:
    row = "OP-1,,R-{},,umrah,Surname,B,M,1970-01-01,IDN,C123456{},,,,,,"
    data = "\n".join([CSV_HEADER, row.format(1, 1), row.format(2, 2)]).encode()
    data = data.replace(b"R-1", b"R-\xe9")
    parsed = connector().parse(data, "ops.csv")
    assert [(r.location, r.field) for r in parsed.rejections] == [("line 2", None)]
    assert "not UTF-8" in parsed.rejections[0].reason
    assert [r.position for r in parsed.records] == ["line 3"]


def test_csv_header_is_case_insensitive_in_any_order_and_extra_columns_are_ignored() -> None:
    data = b"Extra;PASSPORT_NUMBER;Nationality;Sex;Birth_Date;Surname;Season;Registration_Id;Operator_Code\r\n"
    data += b"x;C1234567;MY;F;1970-01-01;Ismail;hajj;R-9;OP-1\r\n"
    [record] = connector().parse(data, "ops.csv").records
    assert record.payload["pilgrim"]["nationality"] == "MYS"
    assert record.payload["pilgrim"]["given_names"] == ""
    assert record.payload["agent_code"] is None
    assert record.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("data", "location", "field", "reason"),
    [
        (b"surname,nationality\nA,IDN\n", "$", None, "not a CSV header naming passport_number"),
        (b"\xff\xfepassport_number\n", "$", None, "not UTF-8"),
        (b"", "$", None, "not JSON"),
        (b"operator_code,passport_number,passport_number\n", "line 1", "passport_number", "appears twice"),
        (b"passport_number;surname\r1;2\r", "line 1", None, "bare CR"),
        (b"passport_number" * 5000, "$", None, "longer than 64 KiB"),
        (b'{"operator_code": "OP-1", "registration": []}', "$", None, "none of the keys"),
        ((CSV_HEADER + "\r\n,,,\r\n\r\n").encode(), "line 1", None, "no registration rows"),
        (b'{"operator_code": "OP-1", "groups": [], "dispatches": [{}]}', "$", "groups", "at least 1"),
    ],
)
def test_unusable_inputs_are_rejected_whole(data: bytes, location: str, field: str | None, reason: str) -> None:
    with pytest.raises(InputRejected) as caught:
        connector().parse(data, "in-1")
    rejection = caught.value.rejection
    assert (rejection.input, rejection.location, rejection.field) == ("in-1", location, field)
    assert reason in rejection.reason


@pytest.mark.parametrize("passport", ["<<<", "- -", "   "])
def test_a_passport_number_without_letters_or_digits_is_refused_everywhere(passport: str) -> None:
    person = {"nationality": "IDN", "passport_number": passport}
    leader = {"surname": "A", "sex": "M", "birth_date": "1970-01-01", **person}
    group = {"group_id": "G", "season": "umrah", "capacity": 2, "arrival": "2026-12-01", "departure": "2026-12-09"}
    document = {
        "operator_code": "OP-1",
        "registrations": [{"registration_id": "R-1", "season": "umrah", "pilgrim": leader}],
        "groups": [{**group, "members": [person]}, {**group, "group_id": "H", "leader": leader, "members": []}],
        "dispatches": [
            {"dispatch_id": "D", "vehicle": "BUS-1", "route": "JED-MAK", "departed_at": "2026-12-01T10:00:00+03:00",
             "passengers": [person]}
        ],
    }  # fmt: skip
    parsed = connector().parse(json.dumps(document).encode(), "doc")
    assert [r.event_type for r in parsed.records] == ["GroupRegistered"]
    assert {r.location for r in parsed.rejections} == {
        "$.registrations[0]",
        "$.groups[0].members[0]",
        "$.groups[1]",
        "$.dispatches[0].passengers[0]",
    }


def test_group_capacity_anomaly_and_leader_roles() -> None:
    parsed = connector().parse((FIXTURES / "groups.json").read_bytes(), "groups.json")
    groups = {r.payload["group_id"]: r for r in parsed.records if r.event_type == "GroupRegistered"}
    assert set(groups) == {"G-IDN-0007", "G-IDN-0008"}  # G-IDN-0009 leaves before it arrives
    small = groups["G-IDN-0008"]
    assert (small.payload["member_count"], small.payload["capacity"], small.payload["over_capacity"]) == (4, 3, True)
    assert small.partition_key == "group:OP-1001:G-IDN-0008"
    assert (small.nationality, small.passport_number) == (None, None)
    roles = [(r.position, r.payload["role"]) for r in parsed.records if r.event_type == "GroupMembershipAssigned"]
    assert ("$.groups[0].leader", "leader") in roles  # leader not among the members
    assert ("$.groups[1].members[0]", "leader") in roles  # leader listed as a member: one event
    assert not any(p == "$.groups[1].leader" for p, _ in roles)


def test_dispatch_needs_an_offset_and_gives_utc_instants() -> None:
    parsed = connector().parse((FIXTURES / "dispatches.json").read_bytes(), "d.json")
    first = parsed.records[0]
    assert first.occurred_at == datetime(2026, 12, 3, 11, 30, tzinfo=UTC)
    assert first.payload["route"] == {"from": "JED", "to": "MAK"}
    assert first.payload["departed_at_local"] == "2026-12-03T14:30:00+03:00"
    assert ("$.dispatches[2]", "departed_at") in [(r.location, r.field) for r in parsed.rejections]


def test_large_csv_streams_through_with_exact_line_numbers() -> None:
    rows = [f"OP-1,,R-{n},,umrah,Name{n},,{'MF'[n % 2]},1970-01-01,IDN,C{n:07d},,,,,," for n in range(5000)]
    rows[4321] = rows[4321].replace("1970-01-01", "1970-13-01")
    parsed = connector().parse(("\r\n".join([CSV_HEADER, *rows]) + "\r\n").encode(), "big.csv")
    assert len(parsed.records) == 4999
    assert [(r.location, r.field) for r in parsed.rejections] == [("line 4323", "birth_date")]
    assert parsed.records[-1].position == "line 5001"


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_every_fixture_event_encodes_and_decodes(path: Path) -> None:
    producer = FakeProducer()
    result = runtime(producer).ingest(path.read_bytes(), f"file:{path.name}")
    events = producer.on("journey.events")
    assert len(events) == result.accepted
    codec = Codec(SchemaCatalogue())
    for _, value, key, _ in events:
        event_type, event = codec.decode(value or b"")
        assert event_type in OperatorsConnector.event_types
        if event_type == "GroupRegistered":
            assert event["envelope"]["pilgrim_key"] is None
            assert key == f"group:{event['operator_code']}:{event['group_id']}".encode()
        else:
            assert key == event["envelope"]["pilgrim_key"].encode()
    # every parsed record was published: none was refused by the codec or the runtime
    try:
        parsed = connector().parse(path.read_bytes(), path.name)
    except InputRejected:
        assert (result.outcome, result.accepted, len(result.rejections)) == ("rejected", 0, 1)
    else:
        assert result.accepted == len(parsed.records)
        assert len(result.rejections) == len(parsed.rejections)
    assert len(producer.on("journey.quarantine")) == len(result.rejections)


def test_dispatch_event_decodes_with_utc_time_and_route() -> None:
    producer = FakeProducer()
    runtime(producer).ingest((FIXTURES / "dispatches.json").read_bytes(), "http:ops:d-1")
    _, event = Codec(SchemaCatalogue()).decode(producer.on("journey.events")[0][1] or b"")
    assert event["departed_at"] == datetime(2026, 12, 3, 11, 30, tzinfo=UTC)
    assert event["envelope"]["occurred_at"] == event["departed_at"]
    assert event["route"] == {"from": "JED", "to": "MAK"}


def test_body_schema_documents_every_document_type() -> None:
    schema = connector().body_schema()
    assert {"registrations", "groups", "dispatches"} <= set(schema["properties"])
    assert [branch["required"] for branch in schema["anyOf"]] == [["registrations"], ["groups"], ["dispatches"]]
    group = schema["properties"]["groups"]["items"]
    assert "passport_number" in group["properties"]["members"]["items"]["properties"]
    assert "surname" in group["properties"]["leader"]["anyOf"][0]["properties"]
    passengers = schema["properties"]["dispatches"]["items"]["properties"]["passengers"]
    assert "nationality" in passengers["items"]["properties"]
    assert "$ref" not in json.dumps(schema)


def test_event_types_cover_all_four_feeds() -> None:
    assert set(OperatorsConnector.event_types) == {
        "PilgrimRegistered",
        "GroupRegistered",
        "GroupMembershipAssigned",
        "TransportDispatched",
    }


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.text(alphabet=st.sampled_from(list('ab,;"\r\n é\x00')), max_size=12), max_size=20).map(
            lambda cells: (CSV_HEADER + "\n" + ",".join(cells)).encode()
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(DOC_KEYS), inner, max_size=4),
            max_leaves=12,
        ).map(lambda v: json.dumps({"operator_code": "OP-1", "groups": [v], "dispatches": [v]}).encode()),
    )
)
def test_parse_raises_nothing_but_input_rejected(data: bytes) -> None:
    try:
        parsed = connector().parse(data, "fuzz")
    except InputRejected:
        return
    assert len(parsed.rejections) == len(parsed.raw_rejected)
    for record in parsed.records:
        assert record.occurred_at.tzinfo is not None


def test_a_huge_rejected_input_is_kept_whole_on_disk_and_truncated_in_the_topic(tmp_path: Path) -> None:
    producer = FakeProducer()
    rt = runtime(producer)
    rt.spill_dir = tmp_path
    body = b'{"operator_code": "OP-1", "registrations": [' + b" " * 2_000_000  # truncated upload, 2 MB
    result = rt.ingest(body, "http:ops:big")
    assert result.whole_input_rejected
    [(_, value, _, headers)] = producer.on("journey.quarantine")
    found = dict(headers)
    assert value is not None and len(value) == 900_000 and body.startswith(value)
    assert found["hub_payload_truncated"] == b"true"
    assert found["hub_payload_bytes"] == str(len(body)).encode()
    assert Path(found["hub_payload_file"].decode()).read_bytes() == body
