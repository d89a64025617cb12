"""OpenTravel ``OTA_HotelResNotifRQ`` parser: golden files, record isolation, hostile input, fuzzing.

Golden files live in ``tests/fixtures/hotels``: each ``X.xml`` has an ``X.expected.json`` beside it,
either the parse result rendered as JSON (ISO dates) or ``{"input_rejected": {...}}`` naming the
expected location, field and a substring of the reason.
"""

from __future__ import annotations

import dataclasses
import json
import time
import xml.etree.ElementTree as ET
from datetime import date, datetime
from pathlib import Path
from typing import Any

import defusedxml.ElementTree
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connectors.formats import ota
from connectors.formats.ota import (
    OTA_NAMESPACE,
    RESERVATION_XPATH,
    HotelResNotif,
    parse_hotel_res_notif,
)
from connectors.rejections import InputRejected, Rejection

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hotels"
GOLDEN = sorted(FIXTURES.glob("*.xml"))
STATUSES = {"reserved", "modified", "cancelled", "checked_in", "checked_out", "no_show"}


def _render(value: HotelResNotif) -> Any:
    def default(v: object) -> str:
        if isinstance(v, date | datetime):
            return v.isoformat()
        raise TypeError(f"cannot render {type(v).__name__}")

    return json.loads(json.dumps(dataclasses.asdict(value), default=default))


def _reservation(
    number: int, *, status: str = "Reserved", hotel_code: str | None = "MAK001", extra: str = ""
) -> str:
    hotel = f' HotelCode="{hotel_code}"' if hotel_code is not None else ""
    return f"""
    <HotelReservation ResStatus="{status}">
      <UniqueID ID="R-{number}"/>
      <RoomStays><RoomStay>
        <TimeSpan Start="2024-06-10" End="2024-06-17"/>
        <BasicPropertyInfo{hotel} HotelName="Example Hotel"/>
      </RoomStay></RoomStays>
      <ResGuests><ResGuest><Profiles><ProfileInfo><Profile><Customer>
        <PersonName><GivenName>Guest</GivenName><Surname>Number{number}</Surname></PersonName>
        <Document DocType="2" DocID="P{number:07d}" DocHolderNationality="ID"/>
      </Customer></Profile></ProfileInfo></Profiles></ResGuest></ResGuests>
      {extra}
    </HotelReservation>"""


def _document(*reservations: str, root_attributes: str = "") -> bytes:
    body = "".join(reservations)
    return (
        f'<OTA_HotelResNotifRQ xmlns="{OTA_NAMESPACE}" {root_attributes}>'
        f"<HotelReservations>{body}</HotelReservations></OTA_HotelResNotifRQ>"
    ).encode()


# --- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_file(path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    if "input_rejected" in expected:
        want = expected["input_rejected"]
        with pytest.raises(InputRejected) as caught:
            parse_hotel_res_notif(path.read_bytes(), path.name)
        rejection = caught.value.rejection
        assert rejection.input == path.name
        assert rejection.location == want["location"]
        assert rejection.field == want["field"]
        assert want["reason_contains"] in rejection.reason
    else:
        assert _render(parse_hotel_res_notif(path.read_bytes(), path.name)) == expected


def test_every_golden_file_has_an_expectation() -> None:
    assert len(GOLDEN) >= 10
    missing = [p.name for p in GOLDEN if not p.with_suffix(".expected.json").exists()]
    assert missing == []


def test_prefixed_default_and_absent_namespace_read_the_same() -> None:
    default_ns = _document(_reservation(1))
    prefixed = (
        default_ns.decode()
        .replace(f'xmlns="{OTA_NAMESPACE}"', f'xmlns:ota="{OTA_NAMESPACE}"')
        .replace("<", "<ota:")
        .replace("<ota:/", "</ota:")
        .encode()
    )
    no_ns = default_ns.replace(f'xmlns="{OTA_NAMESPACE}"'.encode(), b"")
    results = [parse_hotel_res_notif(d, "n.xml").reservations for d in (default_ns, prefixed, no_ns)]
    assert results[0] == results[1] == results[2]
    assert [r.reservation_id for r in results[0]] == ["R-1"]


# --- one reservation at a time ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        ("Reserved", "reserved"),
        ("Commit", "reserved"),
        ("Book", "reserved"),
        ("Modify", "modified"),
        ("Cancel", "cancelled"),
        ("Cancelled", "cancelled"),
        ("In-house", "checked_in"),
        ("InHouse", "checked_in"),
        ("Checked-Out", "checked_out"),
        ("CheckedOut", "checked_out"),
        ("No-show", "no_show"),
        ("NoShow", "no_show"),
        ("IN-HOUSE", "checked_in"),
    ],
)
def test_res_status_is_normalised(sent: str, status: str) -> None:
    result = parse_hotel_res_notif(_document(_reservation(1, status=sent)), "s.xml")
    assert [r.status for r in result.reservations] == [status]


def test_bulk_document_keeps_good_reservations_around_bad_ones() -> None:
    data = _document(*(_reservation(n, hotel_code=None if n % 50 == 0 else "MAK001") for n in range(1, 201)))
    result = parse_hotel_res_notif(data, "bulk.xml")
    assert len(result.reservations) == 196
    assert [r.index for r in result.reservations] == [n for n in range(1, 201) if n % 50]
    assert result.reservations[-1].reservation_id == "R-199"
    assert result.reservations[-1].guests[0].document_id == "P0000199"
    assert [r.location for r in result.rejections] == [
        f"{RESERVATION_XPATH}[{n}]" for n in (50, 100, 150, 200)
    ]
    assert {r.field for r in result.rejections} == {"RoomStays/RoomStay/BasicPropertyInfo/@HotelCode"}


def test_all_problems_of_a_reservation_are_reported_together() -> None:
    bad = (
        '<HotelReservation ResStatus="Reserved" CreateDateTime="yesterday">'
        '<RoomStays><RoomStay><TimeSpan Start="2024-02-30"/></RoomStay></RoomStays>'
        "</HotelReservation>"
    )
    result = parse_hotel_res_notif(_document(bad), "b.xml")
    assert result.reservations == []
    assert {(r.field, r.location) for r in result.rejections} == {
        ("@CreateDateTime", f"{RESERVATION_XPATH}[1]"),
        ("UniqueID/@ID", f"{RESERVATION_XPATH}[1]"),
        ("RoomStays/RoomStay/BasicPropertyInfo/@HotelCode", f"{RESERVATION_XPATH}[1]"),
        ("RoomStays/RoomStay/TimeSpan/@Start", f"{RESERVATION_XPATH}[1]"),
        ("RoomStays/RoomStay/TimeSpan/@End", f"{RESERVATION_XPATH}[1]"),
    }


def test_unexpected_error_in_one_reservation_refuses_only_that_one(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ota._read_reservation

    def flaky(element: ET.Element, *args: Any) -> Any:
        unique_id = element.find(f"{{{OTA_NAMESPACE}}}UniqueID")
        if unique_id is not None and unique_id.get("ID") == "R-2":
            raise RuntimeError("bug")
        return real(element, *args)

    monkeypatch.setattr(ota, "_read_reservation", flaky)
    result = parse_hotel_res_notif(_document(*(_reservation(n) for n in (1, 2, 3))), "f.xml")
    assert [r.reservation_id for r in result.reservations] == ["R-1", "R-3"]
    assert [(r.location, r.reason) for r in result.rejections] == [
        (f"{RESERVATION_XPATH}[2]", "could not be read (RuntimeError)")
    ]


def test_empty_reservation_list_is_an_empty_result() -> None:
    result = parse_hotel_res_notif(_document(root_attributes='EchoToken="e"'), "e.xml")
    assert result == HotelResNotif(echo_token="e", timestamp=None, reservations=[], rejections=[])


# --- the whole input refused ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (
            f'<OTA_HotelResNotifRQ xmlns="{OTA_NAMESPACE}"/>'.encode(),
            "HotelReservations",
            "no HotelReservations",
        ),
        (
            f'<OTA_HotelResNotifRQ xmlns="{OTA_NAMESPACE}"><HotelReservations/><HotelReservations/>'
            "</OTA_HotelResNotifRQ>".encode(),
            "HotelReservations",
            "more than one",
        ),
        (_document(root_attributes='TimeStamp="2024-13-01T00:00:00"'), "@TimeStamp", "impossible date-time"),
        (b"", None, "not well-formed XML"),
        (b'<?xml version="1.0" encoding="shift_jis"?><a/>', None, "not readable as XML"),
        (b'<?xml version="1.0" encoding="no-such-codec"?><a/>', None, "not readable as XML"),
        (b"<OTA_HotelResNotifRQ>&undefined;</OTA_HotelResNotifRQ>", None, "undefined entity"),
    ],
    ids=[
        "no-container",
        "two-containers",
        "bad-timestamp",
        "empty",
        "multibyte-codec",
        "unknown-codec",
        "entity",
    ],
)
def test_input_rejected(data: bytes, field: str | None, reason: str) -> None:
    with pytest.raises(InputRejected) as caught:
        parse_hotel_res_notif(data, "in.xml")
    assert caught.value.rejection.field == field
    assert reason in caught.value.rejection.reason


def test_utf16_document_is_read() -> None:
    data = _document(_reservation(1)).decode().encode("utf-16")
    assert [r.reservation_id for r in parse_hotel_res_notif(data, "u.xml").reservations] == ["R-1"]


def test_oversized_input_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parser was called on an oversized input")

    data = _document(_reservation(1))
    monkeypatch.setattr(defusedxml.ElementTree, "fromstring", must_not_parse)
    with pytest.raises(InputRejected) as caught:
        parse_hotel_res_notif(data, "big.xml", max_bytes=len(data) - 1)
    assert "larger than" in caught.value.rejection.reason
    with pytest.raises(InputRejected):
        parse_hotel_res_notif(b" " * 5_000_001, "big.xml")  # the default limit


def test_input_of_exactly_max_bytes_is_parsed() -> None:
    data = _document(_reservation(1))
    assert len(parse_hotel_res_notif(data, "ok.xml", max_bytes=len(data)).reservations) == 1


# --- hostile but well-formed input stays fast -------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(
            "<Comments><Comment><Text>" + "x" * 4_000_000 + "</Text></Comment></Comments>", id="text"
        ),
        pytest.param('<Unknown Note="' + "y" * 4_000_000 + '"/>', id="attribute"),
        pytest.param("<Unknown " + " ".join(f'a{i}="1"' for i in range(100_000)) + "/>", id="attributes"),
        pytest.param("<Unknown>" + "&amp;" * 500_000 + "</Unknown>", id="char-refs"),
        pytest.param("<Deep>" * 100_000 + "</Deep>" * 100_000, id="nesting"),
    ],
)
def test_large_entity_free_input_stays_fast(extra: str) -> None:
    data = _document(_reservation(1, extra=extra))
    started = time.perf_counter()
    result = parse_hotel_res_notif(data, "large.xml")
    assert time.perf_counter() - started < 2.0
    assert [r.reservation_id for r in result.reservations] == ["R-1"]


def test_huge_values_are_cut_short_in_reasons() -> None:
    data = _document(_reservation(1, status="Z" * 1_000_000))
    (rejection,) = parse_hotel_res_notif(data, "z.xml").rejections
    assert rejection.field == "@ResStatus"
    assert len(rejection.reason) < 100
    with pytest.raises(InputRejected) as caught:
        parse_hotel_res_notif(b'<?xml version="1.0" encoding="' + b"x" * 100_000 + b'"?><a/>', "enc.xml")
    assert len(caught.value.rejection.reason) < 100


# --- fuzzing: parse returns or raises InputRejected, nothing else ------------------------------

SOUND = [(FIXTURES / name).read_bytes() for name in ("reservations_default_ns.xml", "record_problems.xml")]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_XML_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=24)
ARABIC_INDIC_DATE = "\u0662\u0660\u0662\u0664-\u0660\u0661-\u0660\u0661"  # digits that a bare \d matches
_TRICKY = st.sampled_from(
    [
        "",
        " ",
        "2024-02-30",
        "2024-2-3",
        "2024-06-10T25:00",
        "0000-01-01",
        "-1",
        "99999",
        ARABIC_INDIC_DATE,
        "IN-HOUSE",
    ]
)


def _parse_or_reject(data: bytes) -> HotelResNotif | None:
    refusal: Rejection | None
    try:
        result = parse_hotel_res_notif(data, "fuzz.xml")
    except InputRejected as rejected:
        refusal = rejected.rejection
    else:
        refusal = None
    if refusal is not None:
        event("input rejected")
        assert "could not be read" not in refusal.reason  # the safety net is not the parser
        return None
    event("parsed, some reservations refused" if result.rejections else "parsed")
    assert all("could not be read" not in r.reason for r in result.rejections)
    for reservation in result.reservations:
        assert reservation.status in STATUSES
        assert reservation.start is None or reservation.end is None or reservation.start <= reservation.end
    return result


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_or_reject(data)


@FUZZ
@given(
    st.sampled_from(SOUND),
    st.lists(
        st.tuples(st.sampled_from(["delete", "insert", "replace"]), st.floats(0, 1), st.binary(max_size=12)),
        min_size=1,
        max_size=4,
    ),
)
def test_fuzz_byte_mutations_of_valid_documents(
    document: bytes, edits: list[tuple[str, float, bytes]]
) -> None:
    data = bytearray(document)
    for action, where, chunk in edits:
        at = int(where * len(data))
        if action == "delete":
            del data[at : at + max(1, len(chunk))]
        elif action == "insert":
            data[at:at] = chunk
        else:
            data[at : at + len(chunk)] = chunk
    _parse_or_reject(bytes(data))


@st.composite
def _mutated_tree(draw: st.DrawFn) -> bytes:
    root = ET.fromstring(draw(st.sampled_from(SOUND)))
    elements = list(root.iter())
    for _ in range(draw(st.integers(1, 5))):
        element = draw(st.sampled_from(elements))
        action = draw(st.sampled_from(["set", "delete", "text", "drop_children"]))
        if action == "set":
            name = draw(st.sampled_from([*element.keys(), "Start", "End", "Count", "ResStatus", "DocID"]))
            element.set(name, draw(st.one_of(_TRICKY, _XML_TEXT)))
        elif action == "delete" and element.keys():
            del element.attrib[draw(st.sampled_from(list(element.keys())))]
        elif action == "text":
            element.text = draw(st.one_of(_TRICKY, _XML_TEXT))
        elif action == "drop_children" and element is not root:
            del element[:]
    return ET.tostring(root)


@FUZZ
@given(_mutated_tree())
def test_fuzz_mutated_trees_account_for_every_reservation(data: bytes) -> None:
    result = _parse_or_reject(data)
    if result is None:
        return
    container = ET.fromstring(data).find(f"{{{OTA_NAMESPACE}}}HotelReservations")
    assert container is not None
    sent = len(container.findall(f"{{{OTA_NAMESPACE}}}HotelReservation"))
    accepted = {r.xpath for r in result.reservations}
    refused = {r.location for r in result.rejections}
    assert accepted.isdisjoint(refused)
    assert accepted | refused == {f"{RESERVATION_XPATH}[{n}]" for n in range(1, sent + 1)}
