"""Hotels connector: OTA notifications in, one journey event per guest out (no broker).

Golden files live in ``tests/fixtures/hotels/connector/`` (a subdirectory, because the parser's
own golden test reads every ``*.xml`` directly in ``tests/fixtures/hotels/``): each ``X.xml`` has
an ``X.expected.json`` beside it, either the connector's records and rejections rendered as JSON
(raw bytes of a rejection: ``"<input>"`` when they are the whole input, else the JSON they hold)
or ``{"input_rejected": {...}}``. They are parsed with the clock fixed at :data:`RECEIVED`.
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import load_config
from connectors import hotels
from connectors.base import REGISTRY, Parsed, build_connector, load_all
from connectors.formats.ota import OTA_NAMESPACE, RESERVATION_XPATH, parse_hotel_res_notif
from connectors.hotels import Config, HotelsConnector
from connectors.identity import PilgrimKeyer
from connectors.rejections import InputRejected
from connectors.runtime import IngestRuntime, IngestTopics
from schemas.catalogue import SchemaCatalogue, load_sources
from schemas.codec import Codec
from tests.fakes import FakeProducer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hotels" / "connector"
GOLDEN = sorted(FIXTURES.glob("*.xml"))
RECEIVED = datetime(2024, 6, 12, 9, 0, tzinfo=UTC)
TOPICS = IngestTopics("journey.events", "journey.quarantine")
SECRET = b"unit-test-secret-0123456789"
GUEST_1 = "ResGuests/ResGuest[1]/Profiles/ProfileInfo/Profile/Customer/Document"
GUEST_2 = GUEST_1.replace("[1]", "[2]")


def connector() -> HotelsConnector:
    config = Config(name="hotels-http", transport={"kind": "http", "path": "/ingest/hotels"})
    return HotelsConnector(config, clock=lambda: RECEIVED)


def render(parsed: Parsed, data: bytes) -> dict[str, Any]:
    def default(v: object) -> str:
        if isinstance(v, date | datetime):
            return v.isoformat()
        raise TypeError(f"cannot render {type(v).__name__}")

    rejections = [
        {**r.to_dict(), "raw": "<input>" if raw == data else json.loads(raw)}
        for r, raw in zip(parsed.rejections, parsed.raw_rejected, strict=True)
    ]
    result = {"records": [dataclasses.asdict(r) for r in parsed.records], "rejections": rejections}
    rendered: dict[str, Any] = json.loads(json.dumps(result, default=default))
    return rendered


def codec() -> Codec:
    """A codec over this connector's ``.avsc`` files as they are now, registered in a scratch catalogue.

    ``test_catalogue`` separately checks that ``schemas/catalogue.json`` holds them.
    """
    catalogue = SchemaCatalogue(Path("/nonexistent/catalogue.json"))
    sources = load_sources()
    for event_type in HotelsConnector.event_types:
        catalogue.register(f"hajj.journey.{event_type}", sources[f"hajj.journey.{event_type}"])
    return Codec(catalogue)


CODEC = codec()


def runtime(producer: FakeProducer) -> IngestRuntime:
    return IngestRuntime(connector(), CODEC, PilgrimKeyer(SECRET), producer, TOPICS)  # type: ignore[arg-type]


def guest(number: int, nationality: str = "ID", doc_id: str | None = None, surname: str = "Guest") -> str:
    document = doc_id if doc_id is not None else f"P{number:07d}"
    return (
        "<ResGuest><Profiles><ProfileInfo><Profile><Customer>"
        f"<PersonName><GivenName>Given{number}</GivenName><Surname>{surname}</Surname></PersonName>"
        f'<Document DocType="2" DocID="{document}" DocHolderNationality="{nationality}"/>'
        "</Customer></Profile></ProfileInfo></Profiles></ResGuest>"
    )


def reservation(number: int, *guests: str, status: str = "Reserved", attributes: str = "", span: str = "") -> str:
    span = span or 'Start="2024-06-10" End="2024-06-17"'
    return (
        f'<HotelReservation ResStatus="{status}" {attributes}><UniqueID ID="R-{number}"/>'
        f'<RoomStays><RoomStay><TimeSpan {span}/><BasicPropertyInfo HotelCode="MAK001"/></RoomStay></RoomStays>'
        f"<ResGuests>{''.join(guests)}</ResGuests></HotelReservation>"
    )


def document(*reservations: str, root_attributes: str = "") -> bytes:
    return (
        f'<OTA_HotelResNotifRQ xmlns="{OTA_NAMESPACE}" {root_attributes}>'
        f"<HotelReservations>{''.join(reservations)}</HotelReservations></OTA_HotelResNotifRQ>"
    ).encode()


# --- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_file(path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    data = path.read_bytes()
    if "input_rejected" in expected:
        want = expected["input_rejected"]
        with pytest.raises(InputRejected) as caught:
            connector().parse(data, path.name)
        assert caught.value.rejection.to_dict() == {"input": path.name, **want}
    else:
        assert render(connector().parse(data, path.name), data) == expected


def test_every_golden_file_has_an_expectation() -> None:
    assert len(GOLDEN) >= 5
    assert [p.name for p in GOLDEN if not p.with_suffix(".expected.json").exists()] == []


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_events_fit_their_avro_schema(path: Path) -> None:
    """What the golden files expect is also what Kafka gets: every event encodes and decodes."""
    producer = FakeProducer()
    result = runtime(producer).ingest(path.read_bytes(), path.name)
    decoded = [CODEC.decode(value or b"") for _, value, _, _ in producer.on(TOPICS.events)]
    assert len(decoded) == result.accepted
    assert [event_type for event_type, _ in decoded] == [
        r["event_type"] for r in json.loads(path.with_suffix(".expected.json").read_text()).get("records", [])
    ]


# --- one event per guest ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "event_type"),
    [
        ("Reserved", "HotelReservationConfirmed"),
        ("Commit", "HotelReservationConfirmed"),
        ("Book", "HotelReservationConfirmed"),
        ("Modify", "HotelReservationModified"),
        ("Cancel", "HotelReservationCancelled"),
        ("Cancelled", "HotelReservationCancelled"),
        ("No-show", "HotelNoShowReported"),
        ("In-house", "GuestCheckedIn"),
        ("Checked-Out", "GuestCheckedOut"),
    ],
)
def test_each_status_gives_its_event_type_once_per_guest(sent: str, event_type: str) -> None:
    parsed = connector().parse(document(reservation(1, guest(1), guest(2), status=sent)), "s.xml")
    assert parsed.rejections == []
    assert [r.event_type for r in parsed.records] == [event_type, event_type]
    assert [r.position for r in parsed.records] == [
        f"{RESERVATION_XPATH}[1]/ResGuests/ResGuest[1]",
        f"{RESERVATION_XPATH}[1]/ResGuests/ResGuest[2]",
    ]
    assert [r.passport_number for r in parsed.records] == ["P0000001", "P0000002"]
    assert event_type in HotelsConnector.event_types


def test_guest_positions_follow_the_resguest_elements() -> None:
    """Positions name the ResGuest a guest came from, in a reservation that is not the first."""
    data = document(reservation(1, guest(1)), reservation(2, *(guest(n, surname=f"S{n}") for n in (1, 2, 3))))
    records = connector().parse(data, "p.xml").records
    by_position = {r.position: r.payload["guest"]["surname"] for r in records}
    assert by_position == {
        f"{RESERVATION_XPATH}[1]/ResGuests/ResGuest[1]": "GUEST",
        f"{RESERVATION_XPATH}[2]/ResGuests/ResGuest[1]": "S1",
        f"{RESERVATION_XPATH}[2]/ResGuests/ResGuest[2]": "S2",
        f"{RESERVATION_XPATH}[2]/ResGuests/ResGuest[3]": "S3",
    }


def test_alpha2_and_alpha3_guests_get_the_same_pilgrim_key() -> None:
    """The hotel's "ID" and the airline's "IDN" are one person: same key, same partition."""
    producer = FakeProducer()
    data = document(reservation(1, guest(1, "id", "c 123-4567")), reservation(2, guest(1, "IDN", "C1234567")))
    result = runtime(producer).ingest(data, "k.xml")
    assert result.accepted == 2
    expected = PilgrimKeyer(SECRET).key("IDN", "C1234567")
    assert {key for _, _, key, _ in producer.on(TOPICS.events)} == {expected.encode()}
    pilgrim_keys = {CODEC.decode(v or b"")[1]["envelope"]["pilgrim_key"] for _, v, _, _ in producer.on(TOPICS.events)}
    assert pilgrim_keys == {expected}


def test_guest_is_a_person_with_normalised_identity() -> None:
    data = document(reservation(1, guest(1, "id", "c 123-4567", surname="  van  der Berg ")))
    (record,) = connector().parse(data, "g.xml").records
    assert record.payload["guest"] == {
        "surname": "VAN DER BERG",
        "given_names": "GIVEN1",
        "sex": "X",
        "birth_date": None,
        "nationality": "IDN",
        "passport_number": "C1234567",
        "passport_expiry": None,
        "issuing_state": None,
    }
    assert (record.nationality, record.passport_number, record.partition_key) == ("IDN", "C1234567", None)


# --- guests refused alone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nationality", "doc_id", "fields"),
    [
        ("XY", "P1", [f"{GUEST_2}/@DocHolderNationality", f"{GUEST_2}/@DocID"]),
        ("XYZ", "P0000002", [f"{GUEST_2}/@DocHolderNationality"]),
        ("ID", "&lt;&lt; - &lt;", [f"{GUEST_2}/@DocID"]),
        ("ID", "PASSPORT-NUMBER-TOO-LONG", [f"{GUEST_2}/@DocID"]),
        ("ID", "\u0661\u0662\u0663\u0664\u0665", [f"{GUEST_2}/@DocID"]),
    ],
    ids=["unknown-code-and-short-number", "unknown-alpha3", "only-filler", "too-long", "arabic-indic-digits"],
)
def test_a_guest_that_cannot_be_keyed_is_refused_alone(nationality: str, doc_id: str, fields: list[str]) -> None:
    data = document(reservation(1, guest(1), guest(2, nationality, doc_id), guest(3)))
    parsed = connector().parse(data, "g.xml")
    assert [r.position.rsplit("/", 1)[-1] for r in parsed.records] == ["ResGuest[1]", "ResGuest[3]"]
    assert [(r.location, r.field) for r in parsed.rejections] == [(f"{RESERVATION_XPATH}[1]", f) for f in fields]
    raw = json.loads(parsed.raw_rejected[0])
    assert raw["reservation_id"] == "R-1"
    assert raw["guest"]["position"] == "ResGuests/ResGuest[2]"
    assert "P0000001" not in parsed.raw_rejected[0].decode()  # the other guests' documents are not copied


def test_huge_values_are_cut_short_in_reasons() -> None:
    data = document(reservation(1, guest(1, "Q" * 100_000, "9" * 100_000)))
    parsed = connector().parse(data, "h.xml")
    assert parsed.records == []
    assert len(parsed.rejections) == 2
    assert all(len(r.reason) < 200 for r in parsed.rejections)


# --- reservations without guests --------------------------------------------------------------


def test_a_cancellation_without_guests_is_one_event_keyed_by_the_reservation() -> None:
    producer = FakeProducer()
    cancel = '<HotelReservation ResStatus="Cancel"><UniqueID ID="R-9"/><RoomStays><RoomStay>'
    cancel += '<BasicPropertyInfo HotelCode="MAK001"/></RoomStay></RoomStays></HotelReservation>'
    result = runtime(producer).ingest(document(cancel, root_attributes='TimeStamp="2024-06-12T10:00:00Z"'), "c.xml")
    assert (result.outcome, result.accepted) == ("accepted", 1)
    ((_, value, key, headers),) = producer.on(TOPICS.events)
    assert key == b"reservation:MAK001:R-9"
    event_type, event = CODEC.decode(value or b"")
    assert event_type == "HotelReservationCancelled"
    assert event["guest"] is None
    assert event["envelope"]["pilgrim_key"] is None
    assert event["envelope"]["source"]["position"] == f"c.xml#{RESERVATION_XPATH}[1]"
    assert (event["stay_start"], event["stay_end"]) == (None, None)
    assert dict(headers)["ce_time"] == b"2024-06-12T10:00:00Z"


@pytest.mark.parametrize("status", ["Reserved", "Modify", "No-show", "In-house", "Checked-Out"])
def test_any_other_reservation_without_guests_is_refused(status: str) -> None:
    parsed = connector().parse(document(reservation(1, status=status), reservation(2, guest(1))), "n.xml")
    assert [r.position for r in parsed.records] == [f"{RESERVATION_XPATH}[2]/ResGuests/ResGuest[1]"]
    ((rejection, raw),) = zip(parsed.rejections, parsed.raw_rejected, strict=True)
    assert (rejection.location, rejection.field) == (f"{RESERVATION_XPATH}[1]", "ResGuests")
    assert "no guest named" in rejection.reason
    assert json.loads(raw)["guests_named"] == 0


# --- occurred_at ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "attributes", "root", "span", "expected", "basis"),
    [
        pytest.param(
            "Reserved",
            'CreateDateTime="2024-05-01T10:00:00Z" LastModifyDateTime="2024-05-02T10:00:00Z"',
            'TimeStamp="2024-05-03T10:00:00Z"', "", "2024-05-02T10:00:00+00:00", "LastModifyDateTime",
            id="last-modified-first",
        ),
        pytest.param(
            "Reserved", 'CreateDateTime="2024-05-01T13:00:00+03:00"', 'TimeStamp="2024-05-03T10:00:00Z"', "",
            "2024-05-01T10:00:00+00:00", "CreateDateTime", id="created-for-a-new-reservation",
        ),
        pytest.param(
            "In-house", 'CreateDateTime="2024-04-01T10:00:00Z"', 'TimeStamp="2024-06-10T18:00:00+03:00"', "",
            "2024-06-10T15:00:00+00:00", "TimeStamp", id="created-is-not-when-a-guest-checked-in",
        ),
        pytest.param(
            "Cancel", 'CreateDateTime="2024-04-01T10:00:00Z"', 'TimeStamp="2024-05-20T08:00:00Z"', "",
            "2024-05-20T08:00:00+00:00", "TimeStamp", id="created-is-not-when-it-was-cancelled",
        ),
        pytest.param(
            "In-house", "", "", 'Start="2024-06-10" End="2024-06-14"', "2024-06-09T21:00:00+00:00",
            "TimeSpan/@Start", id="check-in-at-stay-start",
        ),
        pytest.param(
            "Checked-Out", "", "", 'Start="2024-06-10" End="2024-06-14"', "2024-06-13T21:00:00+00:00",
            "TimeSpan/@End", id="check-out-at-stay-end",
        ),
        pytest.param(
            "Checked-Out", "", "", 'Start="2024-06-10"', RECEIVED.isoformat(), "received",
            id="check-out-without-end",
        ),
        pytest.param("No-show", "", "", "", RECEIVED.isoformat(), "received", id="nothing-better"),
        pytest.param(
            "Modify", 'LastModifyDateTime="2024-06-01T14:00:00"', "", "", "2024-06-01T11:00:00+00:00",
            "LastModifyDateTime", id="naive-is-saudi-time",
        ),
    ],
)
def test_occurred_at_rule(status: str, attributes: str, root: str, span: str, expected: str, basis: str) -> None:
    data = document(reservation(1, guest(1), status=status, attributes=attributes, span=span), root_attributes=root)
    (record,) = connector().parse(data, "t.xml").records
    assert record.occurred_at.isoformat() == expected
    assert record.occurred_at.tzinfo is UTC
    assert record.payload["occurred_at_basis"] == basis


def test_received_is_read_once_per_input() -> None:
    ticks = iter([datetime(2024, 6, 12, 9, 0, s, tzinfo=UTC) for s in range(10)])
    config = Config(name="hotels-http", transport={"kind": "http", "path": "/ingest/hotels"})
    parsed = HotelsConnector(config, clock=lambda: next(ticks)).parse(
        document(*(reservation(n, guest(1), status="No-show") for n in (1, 2, 3))), "r.xml"
    )
    assert {r.occurred_at for r in parsed.records} == {datetime(2024, 6, 12, 9, 0, 0, tzinfo=UTC)}


# --- what the parser refuses ------------------------------------------------------------------


def test_parser_rejections_are_kept_in_document_order_and_the_input_quarantined_once() -> None:
    data = (FIXTURES / "parser_rejections.xml").read_bytes()
    parsed = connector().parse(data, "pr.xml")
    assert [r.location.rsplit("/", 1)[-1] for r in parsed.rejections] == [
        "HotelReservation[2]", "HotelReservation[2]", "HotelReservation[3]", "HotelReservation[4]"
    ]
    assert parsed.raw_rejected[0] == data
    assert sum(len(raw) for raw in parsed.raw_rejected) < 2 * len(data)
    reference = json.loads(parsed.raw_rejected[1])
    assert reference["raw_input_with"] == {
        "location": f"{RESERVATION_XPATH}[2]", "field": "RoomStays/RoomStay/BasicPropertyInfo/@HotelCode"
    }


def test_a_bulk_input_with_many_bad_reservations_is_not_copied_for_each() -> None:
    bad = '<HotelReservation ResStatus="Reserved"><UniqueID ID="X"/></HotelReservation>'
    data = document(*([bad] * 300), reservation(301, guest(1)))
    parsed = connector().parse(data, "bulk.xml")
    assert len(parsed.records) == 1
    assert len(parsed.rejections) == 900  # hotel code, Start and End of each
    assert sum(len(raw) for raw in parsed.raw_rejected) < len(data) + 900 * 500


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe.xml", "not_xml.xml", "wrong_namespace.xml"])
def test_an_unusable_input_is_refused_whole_as_the_parser_says(name: str) -> None:
    data = (FIXTURES.parent / name).read_bytes()
    with pytest.raises(InputRejected) as from_parser:
        parse_hotel_res_notif(data, name)
    with pytest.raises(InputRejected) as from_connector:
        connector().parse(data, name)
    assert from_connector.value.rejection == from_parser.value.rejection


def test_a_bug_mapping_one_reservation_refuses_only_that_one(monkeypatch: pytest.MonkeyPatch) -> None:
    real = hotels._person

    def flaky(guest: Any, *args: Any) -> Any:
        if guest.document_id == "P0000002":
            raise RuntimeError("bug")
        return real(guest, *args)

    monkeypatch.setattr(hotels, "_person", flaky)
    data = document(reservation(1, guest(1)), reservation(2, guest(1), guest(2)), reservation(3, guest(3)))
    parsed = connector().parse(data, "b.xml")
    assert [r.payload["reservation_id"] for r in parsed.records] == ["R-1", "R-3"]  # none of R-2's guests
    assert [(r.location, r.reason) for r in parsed.rejections] == [
        (f"{RESERVATION_XPATH}[2]", "internal error (RuntimeError); the reservation was kept in quarantine")
    ]
    assert json.loads(parsed.raw_rejected[0])["reservation_id"] == "R-2"


# --- runtime and config -----------------------------------------------------------------------


def test_runtime_publishes_guests_and_quarantines_the_rest() -> None:
    producer = FakeProducer()
    data = (FIXTURES / "guest_problems.xml").read_bytes()
    result = runtime(producer).ingest(data, "http:hotels:req-7")
    assert (result.outcome, result.accepted, len(result.rejections)) == ("partial", 1, 4)
    ((_, value, _, _),) = producer.on(TOPICS.events)
    _, event = CODEC.decode(value or b"")
    assert event["envelope"]["source"] == {
        "agency": "hotels",
        "connector": "hotels-http",
        "position": f"http:hotels:req-7#{RESERVATION_XPATH}[1]/ResGuests/ResGuest[1]",
    }
    assert event["guest"]["nationality"] == "JOR"
    quarantined = producer.on(TOPICS.quarantine)
    assert len(quarantined) == 4
    headers = dict(quarantined[0][3])
    assert headers["hub_field"] == f"{GUEST_2}/@DocHolderNationality".encode()


def test_the_same_input_twice_gives_the_same_event_ids() -> None:
    data = (FIXTURES / "statuses.xml").read_bytes()
    first = runtime(FakeProducer()).ingest(data, "file:statuses.xml")
    second = runtime(FakeProducer()).ingest(data, "file:statuses.xml")
    assert first.event_ids == second.event_ids
    assert len(set(first.event_ids)) == first.accepted == 8


def test_registered_and_configurable_for_http_and_file_drop(tmp_path: Path) -> None:
    load_all()
    model, factory = REGISTRY["hotels"]
    assert (model, factory) == (Config, HotelsConnector)  # type: ignore[comparison-overlap]
    hub_yaml = tmp_path / "hub.yaml"
    hub_yaml.write_text(
        "connectors:\n"
        "  - {name: hotels-http, type: hotels, transport: {kind: http, path: /ingest/hotels}}\n"
        "  - name: hotels-files\n"
        "    type: hotels\n"
        "    transport: {kind: filedrop, directory: /var/spool/hub/hotels, pattern: '*.xml'}\n"
    )
    configs = load_config(hub_yaml).connector_configs()
    assert [type(c) for c in configs] == [Config, Config]
    assert all(isinstance(build_connector(c), HotelsConnector) for c in configs)


# --- fuzzing: Parsed or InputRejected, and every event fits its schema ------------------------

SOUND = [(FIXTURES / name).read_bytes() for name in ("statuses.xml", "without_timestamps_or_guests.xml")]
_TRICKY = st.sampled_from(["", " ", "ID", "XX", "<<<", "N/A", "2024-02-30", "2024-06-10T25:00", "Cancel", "In-house"])


@st.composite
def _mutated_tree(draw: st.DrawFn) -> bytes:
    root = ET.fromstring(draw(st.sampled_from(SOUND)))
    documents = [e for e in root.iter() if e.tag == f"{{{OTA_NAMESPACE}}}Document"]
    elements = list(root.iter()) + documents * 5  # guests' identities are this connector's own checks
    for _ in range(draw(st.integers(1, 5))):
        element = draw(st.sampled_from(elements))
        action = draw(st.sampled_from(["set", "delete", "text", "drop_children"]))
        if action == "set":
            name = draw(st.sampled_from([*element.keys(), "DocID", "DocHolderNationality", "ResStatus"]))
            element.set(name, draw(st.one_of(_TRICKY, st.text(max_size=12))))
        elif action == "delete" and element.keys():
            del element.attrib[draw(st.sampled_from(list(element.keys())))]
        elif action == "text":
            element.text = draw(st.one_of(_TRICKY, st.text(max_size=12)))
        elif action == "drop_children" and element is not root:
            del element[:]
    return ET.tostring(root)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_tree())
def test_fuzz_mutated_notifications(data: bytes) -> None:
    try:
        parsed = connector().parse(data, "fuzz.xml")
    except InputRejected:
        return
    assert all("internal error" not in r.reason for r in parsed.rejections)
    assert len(parsed.raw_rejected) == len(parsed.rejections)
    producer = FakeProducer()
    result = runtime(producer).ingest(data, "fuzz.xml")
    # the runtime refuses a record only when it cannot envelope or encode it: that would be our bug
    assert result.accepted == len(parsed.records)
    for _, value, _, _ in producer.on(TOPICS.events):
        CODEC.decode(value or b"")
