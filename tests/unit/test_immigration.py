"""Immigration connector: e-visas and border crossings with the passport as a TD3 MRZ.

Golden files live in ``tests/fixtures/immigration``: each ``X.json`` batch has an
``X.expected.json`` beside it with the events (type, position, occurred_at, identity, payload) and
rejections the connector must produce, or, for an unusable document, the expected location, field
and a substring of the reason. The MRZs in them were built with ``format_td3`` for fictional people.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import REGISTRY, Parsed
from connectors.formats.mrz import format_td3
from connectors.identity import PilgrimKeyer
from connectors.immigration import Config, ImmigrationConnector
from connectors.rejections import InputRejected
from connectors.runtime import IngestRuntime, IngestTopics
from schemas.catalogue import SchemaCatalogue, load_sources
from schemas.codec import Codec
from tests.fakes import FakeProducer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "immigration"
GOLDEN = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(".expected.json"))
TOPICS = IngestTopics("journey.events", "journey.quarantine")
SECRET = b"unit-test-secret-0123456789"

SITI = format_td3(
    surname="Nurhaliza",
    given_names="Siti Aminah",
    document_number="X1938472",
    nationality="IDN",
    birth_date=date(1969, 5, 17),
    sex="F",
    expiry_date=date(2030, 9, 2),
)


def connector() -> ImmigrationConnector:
    return ImmigrationConnector(Config(name="immigration-http", transport={"kind": "http", "path": "/ingest/imm"}))


@pytest.fixture(scope="module")
def codec(tmp_path_factory: pytest.TempPathFactory) -> Codec:
    """A codec over the current .avsc files (independent of what the shared catalogue holds)."""
    catalogue = SchemaCatalogue(tmp_path_factory.mktemp("catalogue") / "catalogue.json")
    for subject, schema in load_sources().items():
        catalogue.register(subject, schema)
    return Codec(catalogue)


def runtime(codec: Codec, producer: FakeProducer) -> IngestRuntime:
    keyer = PilgrimKeyer(SECRET)
    return IngestRuntime(connector(), codec, keyer, producer, TOPICS)  # type: ignore[arg-type]


def visa(**fields: Any) -> dict[str, Any]:
    record = {
        "record_type": "visa_issued",
        "record_id": "V-1",
        "visa_number": "6011203311",
        "visa_type": "umrah",
        "issued_at": "2026-11-20T10:00:00+03:00",
        "valid_from": "2026-11-20",
        "valid_until": "2027-02-18",
        "max_stay_days": 90,
        "operator_code": "OP-1001",
        "passport_mrz": SITI,
    }
    record.update(fields)
    return {key: value for key, value in record.items() if value is not None}


def entry(**fields: Any) -> dict[str, Any]:
    record = {
        "record_type": "border_entry",
        "record_id": "B-1",
        "port": "JED",
        "port_type": "air",
        "crossed_at": "2026-12-03T16:35:00+03:00",
        "flight_number": "SV817",
        "passport_mrz": SITI,
    }
    record.update(fields)
    return {key: value for key, value in record.items() if value is not None}


def batch(*records: Any) -> bytes:
    return json.dumps({"authority": "SA-JAWAZAT", "records": list(records)}).encode()


def parse(*records: Any) -> Parsed:
    return connector().parse(batch(*records), "req-1")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _render(parsed: Parsed) -> dict[str, Any]:
    return {
        "events": [
            {
                "position": r.position,
                "event_type": r.event_type,
                "occurred_at": r.occurred_at.isoformat(),
                "nationality": r.nationality,
                "passport_number": r.passport_number,
                "payload": _jsonable(r.payload),
            }
            for r in parsed.records
        ],
        "rejections": [r.to_dict() for r in parsed.rejections],
    }


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    if "input_rejected" in expected:
        want = expected["input_rejected"]
        with pytest.raises(InputRejected) as err:
            connector().parse(path.read_bytes(), path.name)
        got = err.value.rejection
        assert (got.input, got.location, got.field) == (path.name, want["location"], want["field"])
        assert want["reason_contains"] in got.reason
    else:
        assert _render(connector().parse(path.read_bytes(), path.name)) == expected


def test_every_fixture_has_its_expected_file() -> None:
    missing = [p.name for p in GOLDEN if not p.with_suffix(".expected.json").exists()]
    assert GOLDEN and missing == []


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_events_fit_their_avro_schemas(path: Path, codec: Codec) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    if "input_rejected" in expected:
        return
    producer = FakeProducer()
    result = runtime(codec, producer).ingest(path.read_bytes(), path.name)
    assert result.accepted == len(expected["events"])
    assert [r.to_dict() for r in result.rejections] == expected["rejections"]
    decoded = [codec.decode(value or b"") for _, value, _, _ in producer.on("journey.events")]
    for (event_type, event), want in zip(decoded, expected["events"], strict=True):
        assert event_type == want["event_type"]
        assert event["envelope"]["source"]["agency"] == "immigration"
        assert event["envelope"]["occurred_at"] == datetime.fromisoformat(want["occurred_at"]).astimezone(UTC)
        assert event["pilgrim"] == want["payload"]["pilgrim"] | {
            "birth_date": date.fromisoformat(want["payload"]["pilgrim"]["birth_date"]),
            "passport_expiry": date.fromisoformat(want["payload"]["pilgrim"]["passport_expiry"]),
        }


def test_a_group_visa_batch_gives_one_visa_issued_per_record() -> None:
    parsed = connector().parse((FIXTURES / "visas_jakarta_group.json").read_bytes(), "f1")
    assert parsed.rejections == []
    assert {r.event_type for r in parsed.records} == {"VisaIssued"}
    first = parsed.records[0]
    assert (first.nationality, first.passport_number) == ("IDN", "X1938472")
    assert first.occurred_at == datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    assert first.payload["valid_until"] == date(2027, 2, 18)
    assert first.payload["pilgrim"]["birth_date"] == date(1969, 5, 17)
    assert parsed.records[5].payload["operator_code"] is None  # tourist visa, no operator


def test_the_full_name_sent_beside_the_mrz_replaces_the_truncated_one() -> None:
    long_name = "Endang Sri Rahayu Ningsih Wulandari"
    mrz = format_td3(
        surname="Kurniawati",
        given_names=long_name,
        document_number="X4420561",
        nationality="IDN",
        birth_date=date(1958, 12, 30),
        sex="F",
        expiry_date=date(2028, 3, 9),
    )
    [from_mrz] = parse(entry(passport_mrz=mrz)).records
    [from_record] = parse(visa(passport_mrz=mrz, surname="Kurniawati", given_names=long_name)).records
    assert from_mrz.payload["pilgrim"]["given_names"] != long_name.upper()  # the MRZ keeps 39 characters
    assert from_record.payload["pilgrim"]["given_names"] == long_name.upper()


def test_visa_entry_and_exit_of_one_person_share_a_pilgrim_key(codec: Codec) -> None:
    exit_ = entry(record_type="border_exit", crossed_at="2026-12-17T01:10:00+03:00", flight_number="SV816")
    producer = FakeProducer()
    result = runtime(codec, producer).ingest(batch(visa(), entry(), exit_), "http:imm:req-1")
    assert (result.outcome, result.accepted) == ("accepted", 3)
    keys = {key for _, _, key, _ in producer.on("journey.events")}
    # the same key an operator's registration of IDN / X1938472 gets (alpha-2 "ID" there)
    assert keys == {PilgrimKeyer(SECRET).key("ID", "x 1938472").encode()}
    types = [codec.decode(value or b"")[0] for _, value, _, _ in producer.on("journey.events")]
    assert types == ["VisaIssued", "BorderEntryRecorded", "BorderExitRecorded"]


def test_a_border_event_decodes_with_utc_time_local_time_and_source_position(codec: Codec) -> None:
    producer = FakeProducer()
    runtime(codec, producer).ingest(batch(visa(), entry(visa_number="6011203311")), "http:imm:req-2")
    _, event = codec.decode(producer.on("journey.events")[1][1] or b"")
    assert event["crossed_at"] == datetime(2026, 12, 3, 13, 35, tzinfo=UTC)
    assert event["crossed_at_local"] == "2026-12-03T16:35:00+03:00"
    assert (event["port"], event["port_type"], event["flight_number"]) == ("JED", "air", "SV817")
    assert event["visa_number"] == "6011203311"
    assert event["envelope"]["source"]["position"] == "http:imm:req-2#$.records[1]"
    assert event["pilgrim"]["passport_number"] == "X1938472"


def test_a_bad_check_digit_rejects_that_record_only_and_quarantines_it(codec: Codec) -> None:
    line1, line2 = SITI.split("\n")
    damaged = f"{line1}\n{line2[:9]}{(int(line2[9]) + 1) % 10}{line2[10:]}"
    producer = FakeProducer()
    body = batch(visa(), visa(record_id="V-2", passport_mrz=damaged), entry())
    result = runtime(codec, producer).ingest(body, "http:imm:req-3")
    assert (result.outcome, result.accepted) == ("partial", 2)
    [rejection] = result.rejections
    assert (rejection.location, rejection.field) == ("$.records[1]", "passport_mrz.document_number_check")
    assert rejection.reason.startswith("check digit is")
    [(_, raw, _, headers)] = producer.on("journey.quarantine")
    assert json.loads(raw or b"")["record_id"] == "V-2"
    assert dict(headers)["hub_field"] == b"passport_mrz.document_number_check"


@pytest.mark.parametrize(
    ("mrz", "field"),
    [
        (SITI.replace("\n", "\n\n"), "passport_mrz.line_count"),
        (SITI.replace("\n", "")[:-1], "passport_mrz.length"),
        (SITI[:-1], "passport_mrz.line2_length"),
        (SITI.replace("NURHALIZA", "NURHALIZa"), "passport_mrz.line1_charset"),
        (SITI[:-1] + str((int(SITI[-1]) + 1) % 10), "passport_mrz.composite_check"),
        (SITI.replace("P<IDN", "V<IDN"), "passport_mrz.document_type"),
    ],
    ids=lambda value: value if value.startswith("passport_mrz") else "",
)
def test_every_mrz_defect_names_the_mrz_field(mrz: str, field: str) -> None:
    parsed = parse(entry(passport_mrz=mrz))
    assert parsed.records == []
    assert [(r.location, r.field) for r in parsed.rejections] == [("$.records[0]", field)]


def test_two_digit_birth_years_are_placed_by_the_record_date_not_by_today() -> None:
    def born(yymmdd: date, crossed_at: str) -> date:
        mrz = format_td3(
            surname="Bello",
            given_names="Amina",
            document_number="A07712934",
            nationality="NGA",
            birth_date=yymmdd,
            sex="F",
            expiry_date=date(2032, 8, 14),
        )
        [record] = parse(entry(passport_mrz=mrz, crossed_at=crossed_at)).records
        value = record.payload["pilgrim"]["birth_date"]
        assert isinstance(value, date)
        return value

    # a 100-year-old crossing a week before her birthday, and a 6-year-old
    assert born(date(1926, 12, 10), "2026-12-03T16:35:00+03:00") == date(1926, 12, 10)
    assert born(date(2020, 3, 15), "2026-12-03T16:35:00+03:00") == date(2020, 3, 15)
    # replaying a 1999 batch: "260101" was 1926 then, whatever year it is now
    assert born(date(1926, 1, 1), "1999-05-01T08:00:00+03:00") == date(1926, 1, 1)


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"record_id": "X-1", "passport_mrz": SITI}, "record_type", "missing record_type"),
        (entry(record_type="visa_cancelled"), "record_type", "unknown record_type 'visa_cancelled'"),
        (entry(record_type=None), "record_type", "missing record_type"),
        (["border_entry", "JED"], None, "expected a JSON object, found an array"),
        (entry(passport_mrz=None), "passport_mrz", "Field required"),
        (visa(visa_type="work"), "visa_type", "'umrah', 'hajj' or 'tourist'"),
        (visa(valid_until="2027-02-30"), "valid_until", "day value is outside expected range"),
        (visa(valid_from="2027-03-01", valid_until="2027-01-01"), "valid_until", "is before valid_from"),
        (visa(max_stay_days=0), "max_stay_days", "greater than or equal to 1"),
        (visa(issued_at="2026-11-20T10:00:00"), "issued_at", "timezone"),
        (entry(crossed_at="2026-12-03 16:35"), "crossed_at", "timezone"),
        (entry(port_type="land", port="HDT"), "flight_number", "only for an air port"),
        (entry(port="OEJN"), "port", "3-letter IATA code"),
        (entry(port_type="bus"), "port_type", "'air', 'land' or 'sea'"),
        (entry(gate="B12"), "gate", "Extra inputs are not permitted"),
        (entry(surname="Nurhaliza"), "surname", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_record_is_rejected_alone_with_its_path_and_field(record: Any, field: str | None, reason: str) -> None:
    parsed = parse(visa(), record, entry())
    assert [r.position for r in parsed.records] == ["$.records[0]", "$.records[2]"]
    [rejection] = parsed.rejections
    assert (rejection.input, rejection.location, rejection.field) == ("req-1", "$.records[1]", field)
    assert reason in rejection.reason
    assert json.loads(parsed.raw_rejected[0]) == record


def test_land_and_sea_ports_take_the_authoritys_codes() -> None:
    parsed = parse(
        entry(port="HDT", port_type="land", flight_number=None),
        entry(port="JDP01", port_type="sea", flight_number=None, record_type="border_exit"),
    )
    assert parsed.rejections == []
    assert [(r.payload["port"], r.payload["flight_number"]) for r in parsed.records] == [
        ("HDT", None),
        ("JDP01", None),
    ]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"record_type,record_id\nborder_entry,B-1\n", None, "not JSON"),
        (b"\xff\xfe\x00garbage", None, "not JSON"),
        (b'{"authority": "SA-JAWAZAT", "records": [', None, "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, None, "not JSON"),
        (b'{"authority": "SA-JAWAZAT", "records": [' + b"9" * 5000 + b"]}", None, "not JSON"),
        (b"[1, 2]", None, "expected a JSON object with authority and records, found an array"),
        (b'"records"', None, "found a string"),
        (b"null", None, "found null"),
        (b'{"authority": "SA-JAWAZAT"}', "records", "Field required"),
        (b'{"authority": "SA-JAWAZAT", "records": {"0": {}}}', "records", "valid list"),
        (b'{"authority": "SA-JAWAZAT", "records": []}', "records", "at least 1"),
        (b'{"records": [{}]}', "authority", "Field required"),
        (b'{"authority": "SA-JAWAZAT", "visas": [], "records": [{}]}', "visas", "Extra inputs"),
    ],
)
def test_unusable_documents_are_rejected_whole(body: bytes, field: str | None, reason: str) -> None:
    with pytest.raises(InputRejected) as err:
        connector().parse(body, "req-9")
    rejection = err.value.rejection
    assert (rejection.input, rejection.location, rejection.field) == ("req-9", "$", field)
    assert reason in rejection.reason


def test_a_rejected_batch_is_quarantined_raw(codec: Codec) -> None:
    producer = FakeProducer()
    body = (FIXTURES / "not_json.json").read_bytes()
    result = runtime(codec, producer).ingest(body, "http:imm:req-4")
    assert (result.outcome, result.accepted) == ("rejected", 0)
    assert producer.on("journey.events") == []
    [(_, value, _, headers)] = producer.on("journey.quarantine")
    assert value == body
    assert dict(headers)["hub_rejection_kind"] == b"input"


def test_the_connector_is_registered_with_its_config_and_body_schema() -> None:
    model, factory = REGISTRY["immigration"]
    config = model.model_validate(
        {"name": "jawazat", "type": "immigration", "transport": {"kind": "http", "path": "/ingest/imm"}}
    )
    built = factory(config)
    assert isinstance(built, ImmigrationConnector)
    assert built.agency == "immigration"
    schema = built.body_schema()
    assert "$ref" not in json.dumps(schema)
    assert {"authority", "records"} <= set(schema["required"])
    for event_type in built.event_types:
        assert f"hajj.journey.{event_type}" in load_sources()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_field_names = st.sampled_from(sorted(set(visa()) | set(entry()) | {"surname", "given_names"}))


@settings(database=None, deadline=None, max_examples=300)
@given(
    base=st.sampled_from([visa(), entry(), entry(record_type="border_exit")]),
    changes=st.dictionaries(_field_names, _json | st.text(alphabet="<0123456789PIDNX\n", max_size=90), max_size=3),
)
def test_a_damaged_record_costs_that_record_and_never_raises(base: dict[str, Any], changes: dict[str, Any]) -> None:
    parsed = parse(visa(), base | changes)
    assert parsed.records[0].position == "$.records[0]"
    assert len(parsed.records) + len(parsed.rejections) == 2


@settings(database=None, deadline=None, max_examples=300)
@given(document=_json | st.dictionaries(st.sampled_from(["authority", "records", "batch_id"]), _json))
def test_garbage_documents_only_ever_raise_input_rejected(document: Any) -> None:
    try:
        parsed = connector().parse(json.dumps(document).encode(), "fuzz")
    except InputRejected:
        return
    assert len(parsed.records) + len(parsed.rejections) == len(document["records"])
