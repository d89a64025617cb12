"""Avro schema compatibility: can a reader schema read what a writer schema wrote?

BACKWARD compatibility of a new version means ``incompatibilities(reader=new, writer=old)`` is
empty. The rules are Avro's schema-resolution rules: matching names, numeric promotions,
string/bytes interchange, reader fields missing from the writer need a default, writer enum
symbols must exist in the reader (or the reader has a default), every writer union branch must be
readable. Logical types are ignored (they ride on the underlying type).
"""

from __future__ import annotations

from typing import Any

PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _names(schema: Any, into: dict[str, Any], namespace: str | None = None) -> None:
    """Collect named types so references by name can be resolved."""
    if isinstance(schema, list):
        for branch in schema:
            _names(branch, into, namespace)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            name = schema["name"]
            ns = schema.get("namespace", namespace)
            full = name if "." in name or not ns else f"{ns}.{name}"
            into[full] = schema
            into.setdefault(name, schema)
            namespace = full.rsplit(".", 1)[0] if "." in full else ns
        if kind in ("record", "error"):
            for f in schema["fields"]:
                _names(f["type"], into, namespace)
        elif kind == "array":
            _names(schema["items"], into, namespace)
        elif kind == "map":
            _names(schema["values"], into, namespace)
        elif isinstance(kind, (dict, list)):
            _names(kind, into, namespace)


def _resolve(schema: Any, names: dict[str, Any]) -> Any:
    while True:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            schema = names.get(schema, schema)
            if isinstance(schema, str):
                return schema
            continue
        if isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)) and len(schema) <= 2:
            schema = schema["type"]
            continue
        if isinstance(schema, dict) and schema.get("type") in PRIMITIVES:
            return schema["type"]
        return schema


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    return str(schema["type"])


def incompatibilities(reader: Any, writer: Any) -> list[str]:
    """Reasons why ``reader`` cannot read data written with ``writer`` (empty when it can)."""
    reader_names: dict[str, Any] = {}
    writer_names: dict[str, Any] = {}
    _names(reader, reader_names)
    _names(writer, writer_names)
    problems: list[str] = []
    _check(reader, writer, reader_names, writer_names, "$", problems, set())
    return problems


def _check(
    reader: Any,
    writer: Any,
    rn: dict[str, Any],
    wn: dict[str, Any],
    path: str,
    problems: list[str],
    seen: set[tuple[int, int]],
) -> None:
    reader = _resolve(reader, rn)
    writer = _resolve(writer, wn)
    pair = (id(reader), id(writer))
    if pair in seen:  # recursive types
        return
    if isinstance(reader, dict) and isinstance(writer, dict):
        seen = seen | {pair}
    rk, wk = _kind(reader), _kind(writer)

    if wk == "union":
        for i, branch in enumerate(writer):
            _check(reader, branch, rn, wn, f"{path}<writer branch {i}>", problems, seen)
        return
    if rk == "union":
        for branch in reader:
            trial: list[str] = []
            _check(branch, writer, rn, wn, path, trial, seen)
            if not trial:
                return
        problems.append(f"{path}: no branch of the reader union can read writer type {wk}")
        return
    if wk in PRIMITIVES or rk in PRIMITIVES:
        if rk not in PROMOTIONS.get(wk, {wk}):
            problems.append(f"{path}: writer type {wk} cannot be read as {rk}")
        return
    if rk != wk:
        problems.append(f"{path}: writer type {wk} cannot be read as {rk}")
        return
    if rk in ("record", "error", "enum", "fixed"):
        rname, wname = reader["name"].rsplit(".", 1)[-1], writer["name"].rsplit(".", 1)[-1]
        aliases = {a.rsplit(".", 1)[-1] for a in reader.get("aliases", [])}
        if rname != wname and wname not in aliases:
            problems.append(f"{path}: writer {wname} does not match reader {rname}")
            return
    if rk == "record":
        writer_fields = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            fpath = f"{path}.{field['name']}"
            if match is None:
                if "default" not in field:
                    problems.append(f"{fpath}: added without a default")
            else:
                _check(field["type"], match["type"], rn, wn, fpath, problems, seen)
    elif rk == "enum":
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            problems.append(f"{path}: reader enum lacks symbols {missing}")
    elif rk == "fixed":
        if reader["size"] != writer["size"]:
            problems.append(f"{path}: fixed size {writer['size']} cannot be read as {reader['size']}")
    elif rk == "array":
        _check(reader["items"], writer["items"], rn, wn, f"{path}[]", problems, seen)
    elif rk == "map":
        _check(reader["values"], writer["values"], rn, wn, f"{path}{{}}", problems, seen)
