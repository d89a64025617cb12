"""Subscription filters: each predicate, kinds and mismatches, combinators, validation errors."""

from __future__ import annotations

import copy
import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from router.filters import (
    MAX_DEPTH,
    AllOf,
    Dispatch,
    Exists,
    FilterSpec,
    Not,
    compile_filter,
    fields_referenced,
)


class Subscriber(BaseModel):
    """How a subscription embeds a filter."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    filter: FilterSpec | None = None


def spec(raw: Any) -> FilterSpec:
    parsed = Subscriber.model_validate({"filter": raw}).filter
    assert parsed is not None
    return parsed


def matches(raw: Any, event: dict[str, Any]) -> bool:
    return compile_filter(spec(raw))(event)


def errors(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        Subscriber.model_validate({"filter": raw})
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


BRIEF_YAML = """
filter:
  all:
    - {field: envelope.source.agency, in: [airlines, immigration]}
    - {field: arrival_airport, equals: JED}
    - not: {field: pilgrim.nationality, prefix: "X"}
    - {field: pilgrim.birth_date, range: {gte: "1950-01-01", lt: "2000-01-01"}}
    - {field: housing, exists: true}
    - any: [{field: direction, equals: inbound}, {field: direction, equals: transit}]
"""


def brief_event() -> dict[str, Any]:
    return {
        "envelope": {
            "event_id": "e-1",
            "event_type": "PassengerManifested",
            "occurred_at": datetime(2026, 5, 1, 8, 0, tzinfo=UTC),
            "source": {"agency": "airlines", "connector": "sv-paxlst", "position": "f.edi:0"},
            "pilgrim_key": "pk_1",
        },
        "arrival_airport": "JED",
        "direction": "inbound",
        "housing": "MAK-HILTON",
        "pilgrim": {"surname": "ERIKSSON", "nationality": "SWE", "birth_date": date(1974, 8, 12)},
    }


# --- the example from the config docs --------------------------------------------------------------


def test_brief_example_validates_and_matches() -> None:
    subscriber = Subscriber.model_validate(yaml.safe_load(BRIEF_YAML))
    assert isinstance(subscriber.filter, AllOf)
    assert compile_filter(subscriber.filter)(brief_event())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("envelope", "source", "agency"), "hotels"),
        (("arrival_airport",), "MED"),
        (("pilgrim", "nationality"), "XXA"),
        (("pilgrim", "birth_date"), date(2000, 1, 1)),
        (("pilgrim", "birth_date"), date(1949, 12, 31)),
        (("pilgrim", "birth_date"), None),
        (("housing",), None),
        (("direction",), "outbound"),
    ],
)
def test_brief_example_rejects_when_one_clause_fails(path: tuple[str, ...], value: Any) -> None:
    event = brief_event()
    target = event
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    predicate = compile_filter(Subscriber.model_validate(yaml.safe_load(BRIEF_YAML)).filter)
    assert not predicate(event)


def test_no_filter_lets_everything_through() -> None:
    predicate = compile_filter(None)
    assert predicate({}) and predicate(brief_event())


def test_fields_referenced() -> None:
    subscriber = Subscriber.model_validate(yaml.safe_load(BRIEF_YAML))
    assert fields_referenced(subscriber.filter) == {
        "envelope.source.agency",
        "arrival_airport",
        "pilgrim.nationality",
        "pilgrim.birth_date",
        "housing",
        "direction",
    }
    assert fields_referenced(None) == set()


# --- equals / in ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operand", "value", "expected"),
    [
        ("JED", "JED", True),
        ("JED", "jed", False),
        (3, 3, True),
        (3, 3.0, True),
        (2.5, 2.5, True),
        (1, True, False),  # booleans are not numbers
        (True, 1, False),
        (True, True, True),
        (False, False, True),
        ("3", 3, False),
        (3, "3", False),
        ("1974-08-12", date(1974, 8, 12), True),
        ("1974-08-13", date(1974, 8, 12), False),
        ("12/08/1974", date(1974, 8, 12), False),
        (date(1974, 8, 12), date(1974, 8, 12), True),
        (date(1974, 8, 12), "1974-08-12", False),
        ("2026-05-01T11:00:00+03:00", datetime(2026, 5, 1, 8, 0, tzinfo=UTC), True),
        ("2026-05-01T08:00:00Z", datetime(2026, 5, 1, 8, 0, tzinfo=UTC), True),
        ("2026-05-01T08:00:00", datetime(2026, 5, 1, 8, 0, tzinfo=UTC), True),  # no offset: UTC
        ("2026-05-01T08:00:01Z", datetime(2026, 5, 1, 8, 0, tzinfo=UTC), False),
        ("2026-05-01", datetime(2026, 5, 1, tzinfo=UTC), True),  # a date meets a datetime at midnight UTC
        (datetime(2026, 5, 1, 11, tzinfo=timezone(timedelta(hours=3))), datetime(2026, 5, 1, 8, tzinfo=UTC), True),
        ("JED", None, False),
        ("JED", {"code": "JED"}, False),
        ("JED", ["JED"], False),
        ("JED", b"JED", False),
    ],
)
def test_equals(operand: Any, value: Any, expected: bool) -> None:
    assert matches({"field": "a.b", "equals": operand}, {"a": {"b": value}}) is expected


@pytest.mark.parametrize("event", [{}, {"a": None}, {"a": "JED"}, {"a": {"c": "JED"}}, {"a": {"b": {"c": 1}}}])
def test_equals_on_missing_paths_is_false(event: dict[str, Any]) -> None:
    assert matches({"field": "a.b", "equals": "JED"}, event) is False


def test_equals_reads_any_mapping() -> None:
    from types import MappingProxyType

    assert matches({"field": "a.b", "equals": 1}, MappingProxyType({"a": MappingProxyType({"b": 1})}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("operands", "value", "expected"),
    [
        (["airlines", "immigration"], "immigration", True),
        (["airlines", "immigration"], "hotels", False),
        ([1, 2.5, "x"], 2.5, True),
        ([1, 2.5, "x"], 1.0, True),
        ([1, 2.5, "x"], "1", False),
        ([1, 0], True, False),
        ([1, 0], False, False),
        ([True], 1, False),
        ([True], True, True),
        (["1974-08-12", "1980-01-01"], date(1980, 1, 1), True),
        (["2026-05-01T11:00:00+03:00"], datetime(2026, 5, 1, 8, tzinfo=UTC), True),
        (["airlines"], None, False),
    ],
)
def test_in(operands: list[Any], value: Any, expected: bool) -> None:
    assert matches({"field": "agency", "in": operands}, {"agency": value}) is expected


def test_in_on_missing_field_is_false() -> None:
    assert matches({"field": "agency", "in": ["airlines"]}, {}) is False


# --- prefix ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("XXA", True), ("X", True), ("SWE", False), ("xxa", False), (None, False), (123, False), (["XA"], False)],
)
def test_prefix(value: Any, expected: bool) -> None:
    assert matches({"field": "pilgrim.nationality", "prefix": "X"}, {"pilgrim": {"nationality": value}}) is expected


def test_prefix_on_missing_field_is_false() -> None:
    assert matches({"field": "pilgrim.nationality", "prefix": "X"}, {"pilgrim": {}}) is False


# --- range -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "value", "expected"),
    [
        ({"gt": 1, "lt": 3}, 2, True),
        ({"gt": 1, "lt": 3}, 1, False),
        ({"gt": 1, "lt": 3}, 3, False),
        ({"gte": 1, "lte": 3}, 1, True),
        ({"gte": 1, "lte": 3}, 3.0, True),
        ({"gte": 1.5}, 1, False),
        ({"gte": 1.5}, 2, True),
        ({"gte": 1}, True, False),
        ({"gte": 1}, "2", False),
        ({"gte": "B", "lt": "M"}, "ERIKSSON", True),
        ({"gte": "B", "lt": "M"}, "NILSSON", False),
        ({"gte": "1950-01-01", "lt": "2000-01-01"}, date(1950, 1, 1), True),
        ({"gte": "1950-01-01", "lt": "2000-01-01"}, date(1999, 12, 31), True),
        ({"gte": "1950-01-01", "lt": "2000-01-01"}, date(2000, 1, 1), False),
        ({"gte": "1950-01-01", "lt": "2000-01-01"}, date(1949, 12, 31), False),
        ({"gte": date(1950, 1, 1)}, date(1960, 1, 1), True),  # YAML's unquoted dates
        ({"gte": "not a date"}, date(1960, 1, 1), False),
        ({"gte": "1950-01-01T00:00:00Z"}, date(1960, 1, 1), False),  # a datetime bound does not fit a date
        ({"gte": 1950}, date(1960, 1, 1), False),
        ({"gte": "2026-05-01T11:00:00+03:00"}, datetime(2026, 5, 1, 8, 0, tzinfo=UTC), True),
        ({"gt": "2026-05-01T11:00:00+03:00"}, datetime(2026, 5, 1, 8, 0, tzinfo=UTC), False),
        ({"lt": "2026-05-01T09:00:00+01:00"}, datetime(2026, 5, 1, 7, 59, 59, tzinfo=UTC), True),
        ({"lt": "2026-05-01T09:00:00+01:00"}, datetime(2026, 5, 1, 8, 0, tzinfo=UTC), False),
        ({"gte": "2026-05-01T08:00:00"}, datetime(2026, 5, 1, 8, 0, tzinfo=UTC), True),  # no offset: UTC
        ({"gte": "2026-05-01T08:00:00Z"}, datetime(2026, 5, 1, 8, 0), True),  # naive value: UTC
        ({"gte": "2026-05-01", "lt": "2026-05-02"}, datetime(2026, 5, 1, 23, 59, tzinfo=UTC), True),
        (
            {"gte": "2026-05-01", "lt": "2026-05-02"},
            datetime(2026, 5, 2, 0, 30, tzinfo=timezone(timedelta(hours=3))),
            True,
        ),
        ({"gte": "2026-05-01", "lt": "2026-05-02"}, datetime(2026, 5, 2, 0, 0, tzinfo=UTC), False),
        (
            {"gte": datetime(2026, 5, 1, 11, tzinfo=timezone(timedelta(hours=3)))},
            datetime(2026, 5, 1, 8, tzinfo=UTC),
            True,
        ),
        ({"gte": 1}, None, False),
        ({"gte": 1}, {"x": 2}, False),
        ({"gte": 1}, float("nan"), False),
    ],
)
def test_range(bounds: dict[str, Any], value: Any, expected: bool) -> None:
    assert matches({"field": "v", "range": bounds}, {"v": value}) is expected


def test_range_on_missing_field_is_false() -> None:
    assert matches({"field": "pilgrim.birth_date", "range": {"gte": "1950-01-01"}}, {"pilgrim": None}) is False


def test_yaml_unquoted_dates_and_timestamps_work_as_strings_do() -> None:
    raw = yaml.safe_load(
        "all:\n"
        "  - {field: birth, range: {gte: 1950-01-01, lt: 2000-01-01}}\n"
        "  - {field: at, range: {gte: 2026-05-01T11:00:00+03:00}}\n"
    )
    assert isinstance(raw["all"][0]["range"]["gte"], date)
    predicate = compile_filter(spec(raw))
    assert predicate({"birth": date(1974, 8, 12), "at": datetime(2026, 5, 1, 8, tzinfo=UTC)})
    assert not predicate({"birth": date(1974, 8, 12), "at": datetime(2026, 5, 1, 7, 59, tzinfo=UTC)})


# --- exists ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "present"),
    [
        ({"housing": "MAK-1"}, True),
        ({"housing": ""}, True),
        ({"housing": 0}, True),
        ({"housing": False}, True),
        ({"housing": None}, False),
        ({}, False),
    ],
)
def test_exists(event: dict[str, Any], present: bool) -> None:
    assert matches({"field": "housing", "exists": True}, event) is present
    assert matches({"field": "housing", "exists": False}, event) is not present


@pytest.mark.parametrize("event", [{"leader": None}, {"leader": "X"}, {"leader": ["a"]}, {}])
def test_a_path_through_a_non_record_is_absent(event: dict[str, Any]) -> None:
    assert matches({"field": "leader.surname", "exists": False}, event)


# --- combinators -------------------------------------------------------------------------------------


def test_all_any_not() -> None:
    inbound = {"field": "direction", "equals": "inbound"}
    transit = {"field": "direction", "equals": "transit"}
    jed = {"field": "arrival_airport", "equals": "JED"}
    event = {"direction": "transit", "arrival_airport": "JED"}
    assert matches({"any": [inbound, transit]}, event)
    assert not matches({"any": [inbound]}, event)
    assert matches({"all": [jed, {"any": [inbound, transit]}]}, event)
    assert not matches({"all": [jed, inbound]}, event)
    assert matches({"not": inbound}, event)
    assert not matches({"not": {"not": inbound}}, event)
    assert matches({"all": [{"not": {"all": [jed, inbound]}}, {"any": [{"not": transit}, jed]}]}, event)


def test_not_of_a_predicate_on_a_missing_field_is_true() -> None:
    assert matches({"not": {"field": "pilgrim.nationality", "prefix": "X"}}, {"flight_number": "SV817"})


def nest(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"field": "a", "exists": True}
    for level in range(depth):
        wrappers: list[dict[str, Any]] = [{"not": node}, {"all": [node]}, {"any": [node]}]
        node = wrappers[level % 3]
    return node


def test_nesting_up_to_the_limit_is_allowed() -> None:
    negations = len(range(0, MAX_DEPTH, 3))  # levels 0, 3, 6, ... are a not
    assert matches(nest(MAX_DEPTH), {"a": 1}) is (negations % 2 == 0)
    assert matches(nest(MAX_DEPTH), {}) is (negations % 2 == 1)


def test_nesting_beyond_the_limit_is_refused() -> None:
    too_deep = f"all/any/not nest 17 deep here; at most {MAX_DEPTH} levels are allowed"
    assert errors(nest(MAX_DEPTH + 1)) == [("filter", too_deep)]
    assert errors({"all": [{"field": "b", "exists": True}, nest(MAX_DEPTH)]}) == [("filter", too_deep)]


def test_a_hostile_nesting_is_a_validation_error_not_a_crash() -> None:
    problems = errors(nest(5000))
    assert problems == [("filter", f"all/any/not nest 17 deep here; at most {MAX_DEPTH} levels are allowed")]


def test_nesting_built_in_code_is_limited_too() -> None:
    node: FilterSpec = Exists(field="a", exists=True)
    for _ in range(MAX_DEPTH):
        node = Not(not_=node)
    with pytest.raises(ValidationError, match="nest 17 deep"):
        AllOf(all=(node,))


def test_a_filter_is_built_once_and_reused() -> None:
    predicate = compile_filter(spec({"field": "envelope.source.agency", "in": ["airlines"]}))
    events = [{"envelope": {"source": {"agency": agency}}} for agency in ("airlines", "hotels")] * 1000
    assert sum(predicate(event) for event in events) == 1000


# --- validation --------------------------------------------------------------------------------------

ONE_OPERATOR = "a predicate needs exactly one operator of all, any, not, equals, in, prefix, range, exists; found"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"all": [{"field": "a", "equals": 1}, {"field": "b", "bogus": 1}]},
            [
                (
                    "filter.all.1",
                    f"{ONE_OPERATOR} none",
                )
            ],
        ),
        (
            {"not": {"field": "a", "equals": 1, "in": [1]}},
            [
                (
                    "filter.not",
                    f"{ONE_OPERATOR} equals, in",
                )
            ],
        ),
        ({"all": [{"field": "a", "equals": 1, "x": 2}]}, [("filter.all.0.x", "Extra inputs are not permitted")]),
        ({"equals": 1}, [("filter.field", "Field required")]),
        (
            {"field": "pilgrim nationality", "prefix": "X"},
            [
                (
                    "filter.field",
                    "'pilgrim nationality' is not a dotted field path of Avro names, such as envelope.source.agency",
                )
            ],
        ),
        (
            {"field": "a..b", "exists": True},
            [("filter.field", "'a..b' is not a dotted field path of Avro names, such as envelope.source.agency")],
        ),
        ({"all": []}, [("filter.all", "give at least one item")]),
        ({"any": [{"field": "a", "in": []}]}, [("filter.any.0.in", "give at least one item")]),
        (
            {"field": "a", "equals": [1]},
            [("filter.equals", "expected a string, number, boolean, date or datetime, got list")],
        ),
        (
            {"field": "a", "equals": None},
            [("filter.equals", "expected a string, number, boolean, date or datetime, got NoneType")],
        ),
        (
            {"field": "a", "in": ["x", {"y": 1}]},
            [("filter.in.1", "expected a string, number, boolean, date or datetime, got dict")],
        ),
        ({"field": "a", "prefix": ""}, [("filter.prefix", "String should have at least 1 character")]),
        ({"field": "a", "prefix": 5}, [("filter.prefix", "Input should be a valid string")]),
        (
            {"field": "a", "exists": "maybe"},
            [("filter.exists", "Input should be a valid boolean, unable to interpret input")],
        ),
        (
            {"field": "a", "range": {}},
            [("filter.range", "Value error, a range needs at least one of gt, gte, lt, lte")],
        ),
        ({"field": "a", "range": {"gt": 1, "gte": 1}}, [("filter.range", "Value error, give gt or gte, not both")]),
        ({"field": "a", "range": {"lt": 1, "lte": 1}}, [("filter.range", "Value error, give lt or lte, not both")]),
        (
            {"field": "a", "range": {"gt": True}},
            [("filter.range.gt", "a range bound is a string, number, date or datetime, got bool")],
        ),
        ({"field": "a", "range": {"between": [1, 2]}}, [("filter.range.between", "Extra inputs are not permitted")]),
        ({"field": "a", "range": 5}, [("filter.range", "Input should be a valid dictionary or instance of Bounds")]),
        (
            {"not": [{"field": "a", "exists": True}]},
            [("filter.not", "a predicate is a mapping such as 'field: arrival_airport, equals: JED', got list")],
        ),
        (
            "field == 'JED'",
            [("filter", "a predicate is a mapping such as 'field: arrival_airport, equals: JED', got str")],
        ),
    ],
)
def test_validation_errors_name_the_bad_node(raw: Any, expected: list[tuple[str, str]]) -> None:
    assert errors(raw) == expected


def test_specs_are_frozen_and_round_trip_through_their_aliases() -> None:
    parsed = spec({"not": {"field": "agency", "in": ["airlines"]}})
    assert isinstance(parsed, Not)
    with pytest.raises(ValidationError):
        parsed.not_ = parsed  # type: ignore[misc]
    dumped = Subscriber(filter=parsed).model_dump(by_alias=True)
    assert dumped == {"filter": {"not": {"field": "agency", "in": ("airlines",)}}}
    assert Subscriber.model_validate(dumped).filter == parsed


def test_json_schema_documents_the_language() -> None:
    schema = Subscriber.model_json_schema()
    assert set(schema["$defs"]) >= {"AllOf", "AnyOf", "Not", "Equals", "In", "Prefix", "Range", "Exists", "Bounds"}
    assert schema["$defs"]["In"]["properties"]["in"]["minItems"] == 1
    assert all(model.get("description") for model in schema["$defs"].values())


# --- property: a compiled filter never raises, and the combinators mean what they say --------------

KEYS = ("a", "b", "c")
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet="ab19-:TZ", max_size=12),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
)
events = st.recursive(scalars, lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=3), max_leaves=12)
paths = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(".".join)
operands = st.one_of(
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False),
    st.sampled_from(["a", "1", "2000-01-01", "2000-01-01T00:00:00+03:00", "2000-01-01T00:00", "not-a-date"]),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
)
bounds = st.fixed_dictionaries(
    {},
    optional={
        "gt": operands.filter(lambda o: not isinstance(o, bool)),
        "lte": operands.filter(lambda o: not isinstance(o, bool)),
    },
).filter(bool)
leaves = st.one_of(
    st.builds(lambda f, o: {"field": f, "equals": o}, paths, operands),
    st.builds(lambda f, o: {"field": f, "in": o}, paths, st.lists(operands, min_size=1, max_size=3)),
    st.builds(lambda f, o: {"field": f, "prefix": o}, paths, st.text(min_size=1, max_size=2)),
    st.builds(lambda f, o: {"field": f, "range": o}, paths, bounds),
    st.builds(lambda f, o: {"field": f, "exists": o}, paths, st.booleans()),
)
predicates = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(predicates, predicates, events.filter(lambda e: isinstance(e, dict)))
def test_compiled_filters_never_raise_and_combine_as_logic(p: Any, q: Any, event: dict[str, Any]) -> None:
    before = copy.deepcopy(event)
    first, second = compile_filter(spec(p)), compile_filter(spec(q))
    a, b = first(event), second(event)
    assert isinstance(a, bool) and isinstance(b, bool)
    assert matches({"not": p}, event) is (not a)
    assert matches({"all": [p, q]}, event) is (a and b)
    assert matches({"any": [p, q]}, event) is (a or b)
    assert _same(event, before)  # never mutates the event


def _same(x: Any, y: Any) -> bool:
    """Equality that treats NaN as equal to itself (events may hold NaN)."""
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return bool(x == y)


# --- dispatch: the candidates never leave out a filter that holds ----------------------------------------

DISPATCH_VALUES = ["JED", "MED", "jed", 1, 1.0, 2, True, None, "2026-05-01", date(2026, 5, 1),
                   datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 1, 3, tzinfo=timezone(timedelta(hours=3)))]
DISPATCH_OPERANDS = ["JED", "MED", "jed", 1, 2.0, True, "2026-05-01", "2026-05-01T00:00:00Z"]


def dispatch_filter(draw: st.DrawFn) -> Any:
    def condition() -> Any:
        field = draw(st.sampled_from(["port", "port", "port", "season", "pilgrim.nationality"]))
        operands = draw(st.lists(st.sampled_from(DISPATCH_OPERANDS), min_size=1, max_size=3))
        choice = draw(st.sampled_from(["equals", "in", "prefix", "exists", "not"]))
        if choice == "equals":
            return {"field": field, "equals": operands[0]}
        if choice == "in":
            return {"field": field, "in": operands}
        if choice == "prefix":
            return {"field": field, "prefix": "J"}
        if choice == "exists":
            return {"field": field, "exists": draw(st.booleans())}
        return {"not": {"field": field, "in": operands}}

    shape = draw(st.sampled_from(["none", "one", "all", "any"]))
    if shape == "none":
        return None
    if shape == "one":
        return condition()
    return {shape: [condition() for _ in range(draw(st.integers(1, 3)))]}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_dispatch_candidates_hold_every_filter_that_holds_in_order(data: st.DataObject) -> None:
    raws = [data.draw(st.composite(dispatch_filter)()) for _ in range(data.draw(st.integers(1, 8)))]
    specs = [None if raw is None else spec(raw) for raw in raws]
    dispatch = Dispatch(list(enumerate(specs)))
    event: dict[str, Any] = {"pilgrim": {}}
    for field in ("port", "season"):
        value = data.draw(st.sampled_from([*DISPATCH_VALUES, "absent"]))
        if value != "absent":
            event[field] = value
    candidates = dispatch.candidates(event)
    holding = [i for i, s in enumerate(specs) if compile_filter(s)(event)]
    assert set(holding) <= set(candidates), (raws, event)
    assert candidates == sorted(candidates)


def test_dispatch_indexes_the_field_that_splits_the_filters_best() -> None:
    codes = [{"all": [{"field": "season", "equals": "umrah"},
                      {"field": "operator_code", "in": [f"OP-{i}", f"OP-{i + 1}"]},
                      {"field": "port", "in": ["JED", "MED"]}]} for i in range(10)]
    dispatch = Dispatch([(i, spec(raw)) for i, raw in enumerate(codes)])
    assert dispatch.path == "operator_code"
    assert dispatch.candidates({"operator_code": "OP-3", "season": "umrah", "port": "JED"}) == [2, 3]


def test_dispatch_indexes_a_field_most_filters_require() -> None:
    specs = [spec({"all": [{"field": "port", "in": ["JED", "MED"]}, {"field": "season", "equals": "hajj"}]}),
             spec({"field": "port", "equals": "JED"}),
             spec({"field": "port", "equals": "TIF"}),
             spec({"any": [{"field": "port", "equals": "JED"}]}),
             None]
    dispatch = Dispatch([("both", specs[0]), ("jed", specs[1]), ("tif", specs[2]), ("any", specs[3]),
                         ("all", specs[4])])
    assert dispatch.path == "port"
    assert dispatch.candidates({"port": "JED"}) == ["both", "jed", "any", "all"]
    assert dispatch.candidates({"port": "MED"}) == ["both", "any", "all"]
    assert dispatch.candidates({"port": "RUH"}) == ["any", "all"]
    assert dispatch.candidates({}) == ["any", "all"]


def test_dispatch_without_a_shared_field_runs_every_filter() -> None:
    dispatch = Dispatch([("a", spec({"field": "port", "equals": "JED"})), ("b", None)])
    assert dispatch.path is None and dispatch.candidates({"port": "MED"}) == ["a", "b"]
