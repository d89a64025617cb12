"""Subscription projections: which fields of an event a subscriber receives, and how masked.

A projection is an allowlist of dotted field paths plus masks, written in the subscription config::

    projection:
      fields: [envelope.occurred_at, envelope.source.agency, flight_number, arrival_airport,
               pilgrim.surname, pilgrim.nationality, pilgrim.passport_number]
      mask:
        pilgrim.passport_number: {last: 4}   # keep the last 4 characters, the others become '*'
        pilgrim.surname: hash                 # HMAC-SHA256 hex (first 32 chars) under the hub's masking key
        pilgrim.birth_date: drop              # never delivered, even if listed

Contract:

- ``fields`` names what is delivered; a path naming a record delivers its whole subtree. Paths are
  Avro field names joined by dots; they do not reach into arrays or maps.
- ``envelope.event_id``, ``envelope.event_type`` and ``envelope.pilgrim_key`` are always delivered
  (idempotency and correlation); only ``pilgrim_key`` may be masked (``drop`` withholds it). Masks on
  ``envelope``, ``envelope.event_id`` or ``envelope.event_type`` are refused.
- No projection means the whole event, unmasked.
- A mask applies to the leaves at and below its path; the most specific mask on a leaf's path wins,
  except that ``drop`` anywhere above a leaf withholds it. Masks never widen the allowlist: a mask on
  a path that is not delivered has no effect. ``hash`` and ``last`` turn a value into a string
  (dates and datetimes first rendered as ISO 8601, datetimes in UTC; booleans as ``true``/``false``);
  null stays null. ``{last: N}`` keeps the length and the last N characters; a value of N characters
  or fewer is left as it is. A record reached only through dropped paths is left out.
- :class:`Projector` is built once per subscription. ``project`` returns a new nested dict and never
  mutates the event; unmasked values inside a delivered subtree are shared with the event, not copied
  (one decoded event feeds every subscriber: treat both as read-only); ``derive_schema`` gives the
  Avro schema the projected events are written with;
  ``validate_against`` lists configured paths an event schema does not have.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from router.filters import FieldPath, NonEmpty

logger = logging.getLogger(__name__)

ALWAYS_DELIVERED: Final = ("envelope.event_id", "envelope.event_type", "envelope.pilgrim_key")
"""Paths every subscriber receives whatever its projection says (only pilgrim_key can be dropped)."""

UNMASKABLE: Final = frozenset({"envelope", "envelope.event_id", "envelope.event_type"})
"""Mask paths refused: a mask there would hide the event id or type."""

HASH_HEX_CHARS: Final = 32


class LastMask(BaseModel):
    """Keep the last ``last`` characters in clear and replace the others by ``*``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    last: int = Field(ge=0, description="How many trailing characters stay in clear; the others become '*'.")


def _dispatch_mask(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One clear error for a bad mask instead of one per union member."""
    if isinstance(value, LastMask) or value in ("hash", "drop"):
        return value
    if isinstance(value, Mapping):
        return LastMask.model_validate(value)
    raise PydanticCustomError(
        "mask", "a mask is hash, drop or a mapping like 'last: 4', got {value}", {"value": repr(value)}
    )


Mask = Annotated[Literal["hash", "drop"] | LastMask, WrapValidator(_dispatch_mask)]
"""``hash`` (keyed HMAC-SHA256, 32 hex chars), ``drop`` (withheld) or ``{last: N}``."""


class Projection(BaseModel):
    """The fields a subscriber receives and how each is masked."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    fields: NonEmpty[FieldPath] = Field(
        description=(
            "Allowlist of dotted field paths to deliver; a record path delivers its whole subtree. "
            "envelope.event_id, envelope.event_type and envelope.pilgrim_key are always delivered."
        )
    )
    mask: dict[FieldPath, Mask] = Field(
        default_factory=dict,
        description=(
            "Masks by dotted path: hash (HMAC-SHA256 under the hub's masking key, first 32 hex chars), "
            "drop (never delivered, even if listed) or {last: N} (all but the last N characters become '*'). "
            "A mask on a record applies to every field below it."
        ),
    )

    @field_validator("mask")
    @classmethod
    def _ids_stay_clear(cls, mask: dict[str, Any]) -> dict[str, Any]:
        refused = sorted(UNMASKABLE & mask.keys())
        if refused:
            raise ValueError(
                f"cannot mask {', '.join(refused)}: envelope.event_id and envelope.event_type are always "
                "delivered in clear (idempotency and correlation)"
            )
        return mask


# --- the plan: the projection as a tree of path segments ---------------------------------------------

# What a mask does once compiled: "hash", "drop", or an int N for {last: N}.
_Rule = Literal["hash", "drop"] | int


@dataclass(slots=True)
class _Node:
    whole: bool = False  # deliver every key under this path, not only the named children
    rule: _Rule | None = None  # the mask given at exactly this path
    children: dict[str, _Node] = field(default_factory=dict)


_IMPLICIT: Final = _Node(whole=True)  # a field inside a delivered subtree that no path names
_OMIT: Final = object()


def _rule(mask: Literal["hash", "drop"] | LastMask) -> _Rule:
    return mask.last if isinstance(mask, LastMask) else mask


def _plan(projection: Projection | None) -> _Node:
    if projection is None:
        return _Node(whole=True)
    root = _Node()
    for path in (*projection.fields, *ALWAYS_DELIVERED):
        node = root
        for part in path.split("."):
            if node.whole:
                break
            node = node.children.setdefault(part, _Node())
        else:
            node.whole = True
    _spread_whole(root, False)
    for path, mask in projection.mask.items():
        node = root
        for part in path.split("."):
            child = node.children.get(part)
            if child is None:
                if not node.whole:
                    break  # not delivered: the mask has nothing to do
                child = node.children[part] = _Node(whole=True)
            node = child
        else:
            node.rule = _rule(mask)
    _prune(root)
    return root


def _spread_whole(node: _Node, inside_whole: bool) -> None:
    node.whole = node.whole or inside_whole
    for child in node.children.values():
        _spread_whole(child, node.whole)


def _prune(node: _Node) -> bool:
    """Drop what delivers nothing; return False when ``node`` itself delivers nothing."""
    if node.rule == "drop":
        return False
    for name, child in list(node.children.items()):
        # a dropped child of a whole node stays, as the marker that withholds it
        if not _prune(child) and not (node.whole and child.rule == "drop"):
            del node.children[name]
    return node.whole or bool(node.children)


# --- masking values -------------------------------------------------------------------------------


def render(value: Any) -> str:
    """The text a mask works on: ISO 8601 for dates and datetimes (UTC), true/false, str() otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def keep_last(text: str, last: int) -> str:
    """``text`` with all but its last ``last`` characters replaced by ``*``."""
    hidden = len(text) - last
    return text if hidden <= 0 else "*" * hidden + text[hidden:]


def keyed_hash(text: str, key: bytes) -> str:
    """HMAC-SHA256 of the UTF-8 text under ``key``, first 32 hex characters."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]


class Projector:
    """Applies one subscription's projection and masks to events; built once per subscription."""

    def __init__(self, projection: Projection | None, mask_key: bytes) -> None:
        self.projection = projection
        if projection is not None and "hash" in projection.mask.values() and not mask_key:
            raise ValueError("a hash mask needs a non-empty masking key")
        self._key = mask_key
        self._root = _plan(projection)

    @property
    def masks(self) -> bool:
        """Whether any value is masked (a projection without masks delivers values as they are)."""
        return self.projection is not None and bool(self.projection.mask)

    # -- events --

    def project(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A new nested dict holding only the delivered fields of ``event``, masked."""
        projected = self._project(event, self._root, None)
        return projected if isinstance(projected, dict) else {}

    def _project(self, value: Any, node: _Node, inherited: _Rule | None) -> Any:
        rule = node.rule if node.rule is not None else inherited
        if rule == "drop":
            return _OMIT
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            children = node.children
            for key, item in value.items():
                child = children.get(key)
                if child is not None:
                    projected = self._project(item, child, rule)
                    if projected is not _OMIT:
                        out[key] = projected
                elif node.whole:
                    out[key] = item if rule is None else self._mask(item, rule)
            return out
        if not node.whole:
            return _OMIT
        return value if rule is None else self._mask(value, rule)

    def _mask(self, value: Any, rule: _Rule) -> Any:
        if value is None:
            return None
        if isinstance(value, Mapping):
            return {key: self._mask(item, rule) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask(item, rule) for item in value]
        text = render(value)
        if rule == "hash":
            return keyed_hash(text, self._key)
        assert isinstance(rule, int)
        return keep_last(text, rule)

    @staticmethod
    def delivered_paths(projected: Mapping[str, Any]) -> list[str]:
        """Sorted dotted paths of the leaves present in a projected event (for the delivery audit)."""
        return sorted(_leaf_paths(projected, ""))

    # -- schemas --

    def derive_schema(self, event_schema: dict[str, Any], name: str, namespace: str) -> dict[str, Any]:
        """The Avro schema of this projection's output for one event type, self-contained.

        Records are pruned to the delivered fields and renamed ``<name>_<path>`` in ``namespace``;
        masked leaves become ``"string"`` (``["null", "string"]`` when they could be null); unmasked
        leaves keep their type, logical type and default; null defaults are kept.
        """
        deriver = _Deriver(event_schema, name)
        derived = deriver.record(event_schema, self._root, None, (), deriver.namespace_of(event_schema, None))
        return {"type": "record", "name": derived["name"], "namespace": namespace, **derived}

    def validate_against(self, event_schema: dict[str, Any]) -> list[str]:
        """The configured paths (fields, then masks) that ``event_schema`` does not have."""
        if self.projection is None:
            return []
        names = _NamedTypes(event_schema)
        missing: list[str] = []
        for path in (*self.projection.fields, *self.projection.mask):
            if path not in missing and not names.has_path(event_schema, path.split(".")):
                missing.append(path)
        return missing


def _leaf_paths(value: Mapping[str, Any], prefix: str) -> Iterator[str]:
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping):
            yield from _leaf_paths(item, path + ".")
        else:
            yield path


# --- Avro schema walking -----------------------------------------------------------------------------

PRIMITIVES: Final = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED: Final = frozenset({"record", "error", "enum", "fixed"})


class _NamedTypes:
    """The named types an Avro schema defines, by full name, to resolve references."""

    def __init__(self, schema: Any) -> None:
        self.by_name: dict[str, dict[str, Any]] = {}
        self._collect(schema, None)

    @staticmethod
    def fullname(schema: Mapping[str, Any], namespace: str | None) -> str:
        name = str(schema["name"])
        if "." in name:
            return name
        space = schema.get("namespace", namespace)
        return f"{space}.{name}" if space else name

    def namespace_of(self, schema: Mapping[str, Any], namespace: str | None) -> str | None:
        full = self.fullname(schema, namespace)
        return full.rsplit(".", 1)[0] if "." in full else None

    def _collect(self, schema: Any, namespace: str | None) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if kind in _NAMED:
                self.by_name[self.fullname(schema, namespace)] = schema
                namespace = self.namespace_of(schema, namespace)
            if kind in ("record", "error"):
                for item in schema["fields"]:
                    self._collect(item["type"], namespace)
            elif kind == "array":
                self._collect(schema["items"], namespace)
            elif kind == "map":
                self._collect(schema["values"], namespace)
            elif isinstance(kind, dict | list):
                self._collect(kind, namespace)

    def resolve(self, schema: Any, namespace: str | None) -> Any:
        """A reference by name becomes its definition; ``{"type": "string"}`` becomes ``"string"``."""
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return schema
            for candidate in (schema, f"{namespace}.{schema}"):
                if candidate in self.by_name:
                    return self.by_name[candidate]
            raise ValueError(f"unknown Avro type {schema!r}")
        if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
            return self.resolve(schema["type"], namespace)
        if isinstance(schema, dict) and schema.get("type") in PRIMITIVES and len(schema) == 1:
            return schema["type"]
        return schema

    def has_path(self, schema: Any, parts: list[str], namespace: str | None = None) -> bool:
        if not parts:
            return True
        schema = self.resolve(schema, namespace)
        branches = schema if isinstance(schema, list) else [schema]
        for branch in branches:
            branch = self.resolve(branch, namespace)
            if isinstance(branch, dict) and branch.get("type") in ("record", "error"):
                inner = self.namespace_of(branch, namespace)
                for item in branch["fields"]:
                    if item["name"] == parts[0] and self.has_path(item["type"], parts[1:], inner):
                        return True
        return False


def schema_leaf_paths(schema: Mapping[str, Any]) -> list[str]:
    """Sorted dotted paths of the non-record fields of a record schema, through nullable records: the
    fields a subscriber written with this (derived) schema receives, for the delivery audit."""
    names = _NamedTypes(schema)
    paths: set[str] = set()

    def walk(record: Mapping[str, Any], prefix: str, ns: str | None) -> None:
        for item in record["fields"]:
            resolved = names.resolve(item["type"], ns)
            branches = [names.resolve(b, ns) for b in (resolved if isinstance(resolved, list) else [resolved])]
            records = [b for b in branches if _is_record(b)]
            for inner in records:
                walk(inner, f"{prefix}{item['name']}.", names.namespace_of(inner, ns))
            if not records:
                paths.add(prefix + item["name"])

    walk(schema, "", names.namespace_of(schema, None))
    return sorted(paths)


def binary_shape(schema: Mapping[str, Any]) -> Any:
    """What decides how an Avro schema encodes values: types, field order, union branches, enum
    symbols, fixed sizes. Names, namespaces, docs, defaults and logical types do not; two schemas of
    equal shape encode any value they both accept to the same bytes."""
    names = _NamedTypes(schema)

    def shape(item: Any, ns: str | None, seen: dict[str, int]) -> Any:
        item = names.resolve(item, ns)
        if isinstance(item, str):
            return item
        if isinstance(item, list):
            return ("union", tuple(shape(branch, ns, seen) for branch in item))
        kind = item.get("type")
        if kind in ("record", "error"):
            full = names.fullname(item, ns)
            if full in seen:  # a recursive type: its position in the walk stands for it
                return ("ref", seen[full])
            inner = names.namespace_of(item, ns)
            nested = {**seen, full: len(seen)}
            return ("record", tuple(shape(f["type"], inner, nested) for f in item["fields"]))
        if kind == "enum":
            return ("enum", tuple(item["symbols"]))
        if kind == "fixed":
            return ("fixed", item["size"])
        if kind == "array":
            return ("array", shape(item["items"], ns, seen))
        if kind == "map":
            return ("map", shape(item["values"], ns, seen))
        if kind in PRIMITIVES:  # a primitive with a logical type
            return kind
        raise ValueError(f"not an Avro schema: {item!r}")

    return shape(schema, names.namespace_of(schema, None) if "name" in schema else None, {})


def _is_record(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") in ("record", "error")


class _Deriver(_NamedTypes):
    """Builds the projected schema of one event schema under one plan."""

    def __init__(self, schema: Any, name: str) -> None:
        super().__init__(schema)
        self.name = name
        self.used: set[str] = set()
        self.copied: set[str] = set()

    def unique(self, path: tuple[str, ...]) -> str:
        base = "_".join((self.name, *path))
        candidate, n = base, 1
        while candidate in self.used:
            n += 1
            candidate = f"{base}_{n}"
        self.used.add(candidate)
        return candidate

    def record(
        self, schema: Mapping[str, Any], node: _Node, inherited: _Rule | None, path: tuple[str, ...], ns: str | None
    ) -> dict[str, Any]:
        rule = node.rule if node.rule is not None else inherited
        fields: list[dict[str, Any]] = []
        for item in schema["fields"]:
            child = node.children.get(item["name"])
            if child is None:
                if not node.whole:
                    continue
                child = _IMPLICIT
            derived = self.type(item["type"], child, rule, (*path, item["name"]), ns)
            if derived is _OMIT:
                continue
            out: dict[str, Any] = {"name": item["name"], "type": derived}
            if "doc" in item:
                out["doc"] = item["doc"]
            if "default" in item:
                default = item["default"]
                child_rule = child.rule if child.rule is not None else rule
                copied_as_is = child_rule is None and not self._holds_record(item["type"], ns)
                null_first = isinstance(derived, list) and derived[0] == "null"
                if copied_as_is or (default is None and null_first):
                    out["default"] = default
            fields.append(out)
        derived_record: dict[str, Any] = {"type": "record", "name": self.unique(path), "fields": fields}
        if "doc" in schema:
            derived_record["doc"] = schema["doc"]
        return derived_record

    def _holds_record(self, schema: Any, ns: str | None) -> bool:
        schema = self.resolve(schema, ns)
        branches = schema if isinstance(schema, list) else [schema]
        return any(_is_record(self.resolve(branch, ns)) for branch in branches)

    def type(self, schema: Any, node: _Node, inherited: _Rule | None, path: tuple[str, ...], ns: str | None) -> Any:
        rule = node.rule if node.rule is not None else inherited
        if rule == "drop":
            return _OMIT
        schema = self.resolve(schema, ns)
        if isinstance(schema, list):
            branches: list[Any] = []
            for branch in schema:
                derived = "null" if self.resolve(branch, ns) == "null" else self.type(branch, node, inherited, path, ns)
                if derived is not _OMIT and derived not in branches:
                    branches.append(derived)
            if all(branch == "null" for branch in branches):
                return _OMIT
            return _null_first(branches) if rule is not None else branches
        if _is_record(schema):
            return self.record(schema, node, rule, path, self.namespace_of(schema, ns))
        if not node.whole:
            return _OMIT
        if rule is not None:
            return self.masked(schema, path, ns)
        return self.copy(schema, ns)

    def masked(self, schema: Any, path: tuple[str, ...], ns: str | None) -> Any:
        """The type of a masked value: strings, in the same arrays, maps, records and nullability."""
        schema = self.resolve(schema, ns)
        if isinstance(schema, list):
            branches: list[Any] = []
            for branch in schema:
                derived = self.masked(branch, path, ns)
                if derived not in branches:
                    branches.append(derived)
            return _null_first(branches)
        if schema == "null":
            return "null"
        if isinstance(schema, dict) and schema.get("type") == "array":
            return {"type": "array", "items": self.masked(schema["items"], path, ns)}
        if isinstance(schema, dict) and schema.get("type") == "map":
            return {"type": "map", "values": self.masked(schema["values"], path, ns)}
        if _is_record(schema):
            inner = self.namespace_of(schema, ns)
            fields = [
                {"name": item["name"], "type": self.masked(item["type"], (*path, item["name"]), inner)}
                for item in schema["fields"]
            ]
            return {"type": "record", "name": self.unique(path), "fields": fields}
        return "string"

    def copy(self, schema: Any, ns: str | None) -> Any:
        """An unmasked type as it is, each named type it uses defined once, by full name."""
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return schema
            schema = self.resolve(schema, ns)
        if isinstance(schema, list):
            return [self.copy(branch, ns) for branch in schema]
        if not isinstance(schema, dict):
            return schema
        kind = schema.get("type")
        if kind in _NAMED:
            full = self.fullname(schema, ns)
            if full in self.copied:
                return full
            self.copied.add(full)
            out = {k: v for k, v in schema.items() if k not in ("aliases", "namespace")}
            out["name"] = full.rsplit(".", 1)[-1]
            out["namespace"] = full.rsplit(".", 1)[0] if "." in full else ""
            if kind in ("record", "error"):
                inner = self.namespace_of(schema, ns)
                out["fields"] = [{**item, "type": self.copy(item["type"], inner)} for item in schema["fields"]]
            return out
        if kind == "array":
            return {**schema, "items": self.copy(schema["items"], ns)}
        if kind == "map":
            return {**schema, "values": self.copy(schema["values"], ns)}
        if isinstance(kind, dict | list):
            return self.copy(kind, ns)
        return copy.deepcopy(dict(schema))


def _null_first(branches: list[Any]) -> list[Any]:
    return ["null", *(b for b in branches if b != "null")] if "null" in branches else branches
