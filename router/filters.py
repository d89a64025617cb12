"""Subscription filters: which journey events a subscriber is entitled to.

A filter is a declarative predicate over an event's envelope and payload fields, written in the
subscription config and compiled once into plain closures. Nothing is ever ``eval``-ed::

    filter:
      all:
        - {field: envelope.source.agency, in: [airlines, immigration]}
        - {field: arrival_airport, equals: JED}
        - not: {field: pilgrim.nationality, prefix: "X"}
        - {field: pilgrim.birth_date, range: {gte: "1950-01-01", lt: "2000-01-01"}}
        - {field: housing, exists: true}
        - any: [{field: direction, equals: inbound}, {field: direction, equals: transit}]

Contract:

- ``field`` is a dotted path into the decoded event (``envelope.source.agency``,
  ``pilgrim.nationality``, ``arrival_airport``). A path that runs into a missing key or a non-record
  value is *absent*; that is never an error.
- ``equals``, ``in``, ``prefix`` and ``range`` hold only when the value is present, not null, and of
  a kind the operand can be compared with; any type mismatch makes the predicate false, never an
  exception. Kinds: strings, numbers (int and float compare as numbers; booleans are not numbers),
  booleans, dates and datetimes. When the value is a date or a datetime, string operands are read as
  ISO 8601 (``"2000-01-01"``, ``"2026-05-01T08:00:00+03:00"``); datetimes compare as instants in UTC,
  a datetime without an offset being taken as UTC, and a date operand meets a datetime value at
  midnight UTC. Strings compare with strings (``range`` lexicographically), ``prefix`` applies to
  strings only.
- ``exists: true`` holds when the value is present and not null; ``exists: false`` is its negation.
- ``all`` (every one), ``any`` (at least one) and ``not`` combine predicates; each list needs at
  least one predicate, and combinators nest at most :data:`MAX_DEPTH` deep. ``not`` of a predicate
  on an absent field is true.

Validation errors carry the pydantic path to the bad node, e.g. ``filter.all.3.range.gte``.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Final, Generic, Literal, TypeVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

logger = logging.getLogger(__name__)

MAX_DEPTH: Final = 16
"""How deep ``all``/``any``/``not`` may nest: ``all: [{field: a, exists: true}]`` is depth 1."""

Predicate = Callable[[Mapping[str, Any]], bool]
"""A compiled filter: takes a decoded event, says whether the subscriber gets it."""

FIELD_PATH_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_FIELD_PATH = re.compile(FIELD_PATH_PATTERN)


def _check_field_path(value: str) -> str:
    if not _FIELD_PATH.match(value):
        raise PydanticCustomError(
            "field_path",
            "'{value}' is not a dotted field path of Avro names, such as envelope.source.agency",
            {"value": value},
        )
    return value


FieldPath = Annotated[
    str,
    AfterValidator(_check_field_path),
    WithJsonSchema({"type": "string", "pattern": FIELD_PATH_PATTERN}),
]
"""A dotted path of Avro field names into a decoded event: ``envelope.source.agency``."""

Operand = str | bool | int | float | datetime | date
"""What a predicate compares with: a string, number, boolean, date or datetime (the last two as
YAML writes unquoted ISO dates and timestamps)."""


def _check_operand(value: Any) -> Operand:
    if isinstance(value, str | bool | int | float | date):
        return value
    raise PydanticCustomError(
        "operand", "expected a string, number, boolean, date or datetime, got {kind}", {"kind": type(value).__name__}
    )


def _check_bound(value: Any) -> Operand:
    if isinstance(value, bool) or not isinstance(value, str | int | float | date):
        raise PydanticCustomError(
            "range_bound",
            "a range bound is a string, number, date or datetime, got {kind}",
            {"kind": type(value).__name__},
        )
    return value


_OPERAND_JSON: Final[dict[str, Any]] = {"type": ["string", "number", "boolean"]}
OperandValue = Annotated[Operand, PlainValidator(_check_operand), WithJsonSchema(_OPERAND_JSON)]
BoundValue = Annotated[Operand, PlainValidator(_check_bound), WithJsonSchema({"type": ["string", "number"]})]

T = TypeVar("T")


def _at_least_one(items: tuple[T, ...]) -> tuple[T, ...]:
    # not Field(min_length=1): pydantic then also reports "too short" when an item is invalid
    if not items:
        raise PydanticCustomError("too_short", "give at least one item")
    return items


NonEmpty = Annotated[tuple[T, ...], AfterValidator(_at_least_one), Field(json_schema_extra={"minItems": 1})]


class _FilterModel(BaseModel):
    """Frozen, no unknown keys; ``in``/``not`` are read by alias, or by name (``in_``, ``not_``) in code."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)


class Equals(_FilterModel):
    """The field's value equals ``equals``."""

    field: FieldPath = Field(description="Dotted path of the field to test, e.g. arrival_airport.")
    equals: OperandValue = Field(
        description="The value to match; a string is read as an ISO date/datetime when the field holds one."
    )


class In(_FilterModel):
    """The field's value equals one of ``in``."""

    field: FieldPath = Field(description="Dotted path of the field to test, e.g. envelope.source.agency.")
    in_: NonEmpty[OperandValue] = Field(alias="in", description="The accepted values; at least one.")


class Prefix(_FilterModel):
    """The field is a string that starts with ``prefix``."""

    field: FieldPath = Field(description="Dotted path of a string field, e.g. pilgrim.nationality.")
    prefix: str = Field(min_length=1, description="The leading characters the value must start with.")


class Bounds(_FilterModel):
    """Bounds of a ``range``: at least one; not both ``gt`` and ``gte``, nor both ``lt`` and ``lte``."""

    gt: BoundValue | None = Field(default=None, description="The value must be greater than this.")
    gte: BoundValue | None = Field(default=None, description="The value must be greater than or equal to this.")
    lt: BoundValue | None = Field(default=None, description="The value must be less than this.")
    lte: BoundValue | None = Field(default=None, description="The value must be less than or equal to this.")

    @model_validator(mode="after")
    def _coherent(self) -> Bounds:
        if self.gt is None and self.gte is None and self.lt is None and self.lte is None:
            raise ValueError("a range needs at least one of gt, gte, lt, lte")
        if self.gt is not None and self.gte is not None:
            raise ValueError("give gt or gte, not both")
        if self.lt is not None and self.lte is not None:
            raise ValueError("give lt or lte, not both")
        return self


class Range(_FilterModel):
    """The field's value lies within the bounds (numbers, strings, dates or datetimes)."""

    field: FieldPath = Field(description="Dotted path of the field to test, e.g. pilgrim.birth_date.")
    range: Bounds = Field(description="gt/gte/lt/lte bounds; ISO strings for dates and datetimes.")


class Exists(_FilterModel):
    """The field is present and not null (``exists: true``), or absent or null (``exists: false``)."""

    field: FieldPath = Field(description="Dotted path of the field to test, e.g. housing.")
    exists: bool = Field(description="true: must be present and not null; false: must be absent or null.")


class AllOf(_FilterModel):
    """Every predicate in ``all`` holds."""

    all: NonEmpty[FilterSpec] = Field(description="Predicates that must all hold; at least one.")

    @model_validator(mode="after")
    def _nesting(self) -> AllOf:
        _check_depth(self)
        return self


class AnyOf(_FilterModel):
    """At least one predicate in ``any`` holds."""

    any: NonEmpty[FilterSpec] = Field(description="Predicates of which at least one must hold; at least one.")

    @model_validator(mode="after")
    def _nesting(self) -> AnyOf:
        _check_depth(self)
        return self


class Not(_FilterModel):
    """The predicate in ``not`` does not hold."""

    not_: FilterSpec = Field(alias="not", description="The predicate to negate.")

    @model_validator(mode="after")
    def _nesting(self) -> Not:
        _check_depth(self)
        return self


Leaf = Equals | In | Prefix | Range | Exists
Combinator = AllOf | AnyOf | Not

# The key that tells a predicate's kind, in the order they are reported.
_KINDS: Final[dict[str, type[BaseModel]]] = {
    "all": AllOf,
    "any": AnyOf,
    "not": Not,
    "equals": Equals,
    "in": In,
    "prefix": Prefix,
    "range": Range,
    "exists": Exists,
}


def _dispatch(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Pick the predicate model by its operator key, so errors name one model, not every union member."""
    if isinstance(value, tuple(_KINDS.values())):
        return value
    if not isinstance(value, Mapping):
        raise PydanticCustomError(
            "predicate",
            "a predicate is a mapping such as 'field: arrival_airport, equals: JED', got {kind}",
            {"kind": type(value).__name__},
        )
    depth = _raw_depth(value)
    if depth > MAX_DEPTH:  # checked before descending, so a hostile config cannot exhaust the stack
        raise PydanticCustomError(
            "filter_depth",
            "all/any/not nest {depth} deep here; at most {limit} levels are allowed",
            {"depth": depth, "limit": MAX_DEPTH},
        )
    found = [key for key in _KINDS if key in value]
    if len(found) != 1:
        raise PydanticCustomError(
            "predicate",
            "a predicate needs exactly one operator of {operators}; found {found}",
            {"operators": ", ".join(_KINDS), "found": ", ".join(found) or "none"},
        )
    return _KINDS[found[0]].model_validate(value)


def _raw_depth(value: Mapping[str, Any]) -> int:
    """How deep all/any/not nest in an unvalidated predicate (iteratively: it may be very deep)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Mapping):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        for key in ("all", "any"):
            if isinstance(node.get(key), list | tuple):
                stack.extend((child, depth + 1) for child in node[key])
        if "not" in node:
            stack.append((node["not"], depth + 1))
    return deepest


FilterSpec = Annotated[
    Union[Equals, In, Prefix, Range, Exists, AllOf, AnyOf, Not],  # noqa: UP007 - recursive alias needs Union
    WrapValidator(_dispatch),
]
"""A filter: one predicate or combinator. Embed as ``filter: FilterSpec | None = None``."""

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def _children(spec: FilterSpec) -> tuple[FilterSpec, ...]:
    if isinstance(spec, AllOf):
        return spec.all
    if isinstance(spec, AnyOf):
        return spec.any
    if isinstance(spec, Not):
        return (spec.not_,)
    return ()


def _depth(spec: FilterSpec) -> int:
    children = _children(spec)
    return 1 + max(_depth(child) for child in children) if children else 0


def _check_depth(spec: Combinator) -> None:
    depth = _depth(spec)
    if depth > MAX_DEPTH:
        raise ValueError(f"all/any/not nest {depth} deep here; at most {MAX_DEPTH} levels are allowed")


def fields_referenced(spec: FilterSpec | None) -> set[str]:
    """Every field path the filter reads (to check them against the subscribed event schemas)."""
    if spec is None:
        return set()
    if isinstance(spec, Leaf):
        return {spec.field}
    found: set[str] = set()
    for child in _children(spec):
        found |= fields_referenced(child)
    return found


# --- compilation -----------------------------------------------------------------------------------

_ABSENT: Final = object()

Kind = Literal["str", "number", "bool", "date", "datetime"]
_KIND_OF_TYPE: Final[dict[type, Kind]] = {
    str: "str",
    int: "number",
    float: "number",
    bool: "bool",
    date: "date",
    datetime: "datetime",
}


_SUBCLASS_KINDS: Final[tuple[tuple[type, Kind], ...]] = (
    (bool, "bool"),
    (int, "number"),
    (float, "number"),
    (str, "str"),
    (datetime, "datetime"),
    (date, "date"),
)


def _kind(value: Any) -> Kind | None:
    kind = _KIND_OF_TYPE.get(type(value))
    if kind is not None or value is None:
        return kind
    for cls, subclass_kind in _SUBCLASS_KINDS:  # subclasses, e.g. an IntEnum: most specific first
        if isinstance(value, cls):
            return subclass_kind
    return None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _normalise(value: Any, kind: Kind) -> Any:
    return _utc(value) if kind == "datetime" else value


def _variants(operand: Operand) -> dict[Kind, Any]:
    """The operand as each kind of field value it can be compared with."""
    if isinstance(operand, bool):
        return {"bool": operand}
    if isinstance(operand, int | float):
        return {"number": operand}
    if isinstance(operand, datetime):
        return {"datetime": _utc(operand)}
    if isinstance(operand, date):
        return {"date": operand, "datetime": datetime.combine(operand, time(), UTC)}
    variants: dict[Kind, Any] = {"str": operand}
    with contextlib.suppress(ValueError):
        variants["date"] = date.fromisoformat(operand)
    with contextlib.suppress(ValueError):
        variants["datetime"] = _utc(datetime.fromisoformat(operand))
    return variants


def _getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """Read ``path`` from an event; ``_ABSENT`` when a key is missing or a step is not a record."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        (key,) = parts

        def get_top(event: Mapping[str, Any]) -> Any:
            return event.get(key, _ABSENT)

        return get_top

    def get(event: Mapping[str, Any]) -> Any:
        value: Any = event
        for part in parts:
            if type(value) is not dict and not isinstance(value, Mapping):
                return _ABSENT
            value = value.get(part, _ABSENT)
        return value

    return get


def _compile_equals(get: Callable[[Mapping[str, Any]], Any], operand: Operand) -> Predicate:
    targets = _variants(operand)

    def equals(event: Mapping[str, Any]) -> bool:
        value = get(event)
        kind = _kind(value)
        if kind is None or kind not in targets:
            return False
        return bool(_normalise(value, kind) == targets[kind])

    return equals


def _compile_in(get: Callable[[Mapping[str, Any]], Any], operands: Iterable[Operand]) -> Predicate:
    targets = _operand_sets(operands)

    def is_in(event: Mapping[str, Any]) -> bool:
        value = get(event)
        kind = _kind(value)
        if kind is None or kind not in targets:
            return False
        return _normalise(value, kind) in targets[kind]

    return is_in


def _compile_prefix(get: Callable[[Mapping[str, Any]], Any], prefix: str) -> Predicate:
    def starts_with(event: Mapping[str, Any]) -> bool:
        value = get(event)
        return isinstance(value, str) and value.startswith(prefix)

    return starts_with


_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _compile_range(get: Callable[[Mapping[str, Any]], Any], bounds: Bounds) -> Predicate:
    given = [
        (_COMPARISONS[name], _variants(bound)) for name in _COMPARISONS if (bound := getattr(bounds, name)) is not None
    ]
    # Per kind of field value, the comparisons to make; a kind that some bound cannot meet is absent.
    checks: dict[Kind, tuple[tuple[Callable[[Any, Any], bool], Any], ...]] = {}
    kinds: tuple[Kind, ...] = ("str", "number", "date", "datetime")
    for kind in kinds:
        if all(kind in variants for _, variants in given):
            checks[kind] = tuple((compare, variants[kind]) for compare, variants in given)

    def in_range(event: Mapping[str, Any]) -> bool:
        value = get(event)
        kind = _kind(value)
        if kind is None:
            return False
        kind_checks = checks.get(kind)
        if kind_checks is None:
            return False
        value = _normalise(value, kind)
        return all(compare(value, bound) for compare, bound in kind_checks)

    return in_range


def _compile_exists(get: Callable[[Mapping[str, Any]], Any], exists: bool) -> Predicate:
    if exists:

        def present(event: Mapping[str, Any]) -> bool:
            value = get(event)
            return value is not None and value is not _ABSENT

        return present

    def missing(event: Mapping[str, Any]) -> bool:
        value = get(event)
        return value is None or value is _ABSENT

    return missing


def _compile(spec: FilterSpec) -> Predicate:
    if isinstance(spec, Equals):
        return _compile_equals(_getter(spec.field), spec.equals)
    if isinstance(spec, In):
        return _compile_in(_getter(spec.field), spec.in_)
    if isinstance(spec, Prefix):
        return _compile_prefix(_getter(spec.field), spec.prefix)
    if isinstance(spec, Range):
        return _compile_range(_getter(spec.field), spec.range)
    if isinstance(spec, Exists):
        return _compile_exists(_getter(spec.field), spec.exists)
    if isinstance(spec, AllOf):
        every = tuple(_compile(child) for child in spec.all)

        def all_of(event: Mapping[str, Any]) -> bool:
            return all(predicate(event) for predicate in every)

        return all_of
    if isinstance(spec, AnyOf):
        some = tuple(_compile(child) for child in spec.any)

        def any_of(event: Mapping[str, Any]) -> bool:
            return any(predicate(event) for predicate in some)

        return any_of
    inner = _compile(spec.not_)

    def negation(event: Mapping[str, Any]) -> bool:
        return not inner(event)

    return negation


def _always(event: Mapping[str, Any]) -> bool:
    return True


def compile_filter(spec: FilterSpec | None) -> Predicate:
    """Compile a validated filter into a predicate over decoded events; ``None`` lets every event through.

    The predicate never raises on event content: missing paths are absent, type mismatches false.
    """
    if spec is None:
        return _always
    return _compile(spec)


# --- dispatch: which of many filters can hold, from one field ---------------------------------------


def _operand_sets(operands: Iterable[Operand]) -> dict[Kind, frozenset[Any]]:
    """The values of each kind an ``in`` (or ``equals``) accepts, exactly as its predicate compares."""
    grouped: dict[Kind, set[Any]] = {}
    for operand in operands:
        for kind, target in _variants(operand).items():
            grouped.setdefault(kind, set()).add(target)
    return {kind: frozenset(values) for kind, values in grouped.items()}


def required_values(spec: FilterSpec | None) -> dict[str, dict[Kind, frozenset[Any]]]:
    """Fields the filter holds for only when they take one of a finite set of values: its top-level
    ``equals``/``in`` conditions (itself, or conditions of its top-level ``all``)."""
    if spec is None:
        return {}
    conjuncts = spec.all if isinstance(spec, AllOf) else (spec,)
    required: dict[str, dict[Kind, frozenset[Any]]] = {}
    for condition in conjuncts:
        if isinstance(condition, Equals):
            accepted = _operand_sets([condition.equals])
        elif isinstance(condition, In):
            accepted = _operand_sets(condition.in_)
        else:
            continue
        earlier = required.get(condition.field)
        if earlier is not None:  # both must hold: only values accepted by both
            accepted = {k: v & earlier[k] for k, v in accepted.items() if k in earlier}
        required[condition.field] = accepted
    return required


class Dispatch(Generic[T]):
    """Which of many filtered items an event can be for, found from one field's value before any
    filter runs. The field is the one that splits the items best: of the fields that filters
    require to be one of a few values (``equals``/``in`` conditions at their top level), the one
    leaving the fewest candidates per value. The candidates are the items whose filter accepts the
    event's value there, plus those whose filter does not constrain that field; every other item's
    filter is false for the event. Candidates keep the items' order."""

    def __init__(self, items: Iterable[tuple[T, FilterSpec | None]]) -> None:
        listed = list(items)
        self.items: list[T] = [item for item, _ in listed]
        self.path: str | None = None
        required = [required_values(spec) for _, spec in listed]
        best: tuple[float, str, dict[tuple[Kind, Any], list[int]], list[int]] | None = None
        for path in sorted({p for fields in required for p in fields}):
            constrained = [i for i, fields in enumerate(required) if path in fields]
            if len(constrained) < 2:
                continue
            unconstrained = [i for i, fields in enumerate(required) if path not in fields]
            by_value: dict[tuple[Kind, Any], list[int]] = {}
            for i in constrained:
                for kind, values in required[i][path].items():
                    for value in values:
                        by_value.setdefault((kind, value), []).append(i)
            if not by_value:
                continue
            per_value = sum(len(hits) for hits in by_value.values()) / len(by_value) + len(unconstrained)
            if best is None or per_value < best[0]:
                best = (per_value, path, by_value, unconstrained)
        if best is None or best[0] >= len(listed):
            return
        _, self.path, by_value, unconstrained = best
        self._get = _getter(self.path)
        self._otherwise = [self.items[i] for i in unconstrained]
        self._by_value = {
            key: [self.items[i] for i in sorted({*hits, *unconstrained})] for key, hits in by_value.items()
        }

    def candidates(self, event: Mapping[str, Any]) -> list[T]:
        if self.path is None:
            return self.items
        value = self._get(event)
        kind = _kind(value)
        if kind is None:
            return self._otherwise
        return self._by_value.get((kind, _normalise(value, kind)), self._otherwise)
