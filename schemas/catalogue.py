"""The embedded schema catalogue: a file-based stand-in for a Confluent-style schema registry.

Every version of every event schema ever published is kept in ``schemas/catalogue.json`` with a
schema id that never changes, so that bytes written today decode tomorrow and ids stay stable
across runs and machines. Subjects follow the record-name strategy (the Avro full name).

Sources are the ``.avsc`` files: ``avro/types/`` holds shared named types (Envelope, Person),
``avro/events/`` one file per event type (a subject). :func:`load_sources` expands the references
so each registered schema is self-contained. ``hub schemas register`` appends a new version when an
event's ``.avsc`` changed, after checking it can read every earlier version (BACKWARD_TRANSITIVE).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.compat import incompatibilities

AVRO_DIR = Path(__file__).parent / "avro"
CATALOGUE_FILE = Path(__file__).parent / "catalogue.json"

Schema = dict[str, Any]


class CatalogueError(Exception):
    """A schema is unknown, malformed, or incompatible with its history."""


@dataclass(frozen=True)
class SchemaVersion:
    id: int
    subject: str
    version: int
    fingerprint: str
    schema: Schema


def fingerprint(schema: Schema) -> str:
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _fullname(schema: Schema) -> str:
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def expand(schema: Any, named: dict[str, Schema], namespace: str | None = None, defined: set[str] | None = None) -> Any:
    """Replace references to shared named types by their definition (once per document)."""
    defined = set() if defined is None else defined
    if isinstance(schema, str):
        full = schema if "." in schema or namespace is None else f"{namespace}.{schema}"
        for candidate in (schema, full):
            if candidate in named and candidate not in defined:
                defined.add(candidate)
                return expand(named[candidate], named, namespace, defined)
        return schema
    if isinstance(schema, list):
        return [expand(branch, named, namespace, defined) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        full = _fullname(schema)
        defined.add(full)
        namespace = full.rsplit(".", 1)[0] if "." in full else namespace
        out["name"] = full.rsplit(".", 1)[-1]
        out["namespace"] = full.rsplit(".", 1)[0] if "." in full else None
        if out["namespace"] is None:
            del out["namespace"]
    if kind in ("record", "error"):
        out["fields"] = [{**f, "type": expand(f["type"], named, namespace, defined)} for f in schema["fields"]]
    elif kind == "array":
        out["items"] = expand(schema["items"], named, namespace, defined)
    elif kind == "map":
        out["values"] = expand(schema["values"], named, namespace, defined)
    elif isinstance(kind, (dict, list)):
        out["type"] = expand(kind, named, namespace, defined)
    return out


def load_sources(avro_dir: Path = AVRO_DIR) -> dict[str, Schema]:
    """The current, expanded schema of every event type, by subject (Avro full name)."""
    named: dict[str, Schema] = {}
    for path in sorted((avro_dir / "types").glob("*.avsc")):
        schema = json.loads(path.read_text())
        named[_fullname(schema)] = schema
    subjects: dict[str, Schema] = {}
    for path in sorted((avro_dir / "events").glob("*.avsc")):
        schema = json.loads(path.read_text())
        subject = _fullname(schema)
        if path.stem != subject:
            raise CatalogueError(f"{path.name}: file name must be the schema's full name {subject}.avsc")
        subjects[subject] = expand(schema, named)
    return subjects


class SchemaCatalogue:
    """All schema versions by id and by subject, persisted to a JSON file."""

    def __init__(self, path: Path = CATALOGUE_FILE) -> None:
        self.path = path
        self._by_id: dict[int, SchemaVersion] = {}
        self._by_subject: dict[str, list[SchemaVersion]] = {}
        if path.exists():
            for entry in json.loads(path.read_text())["schemas"]:
                self._add(SchemaVersion(**entry))

    def _add(self, version: SchemaVersion) -> None:
        self._by_id[version.id] = version
        self._by_subject.setdefault(version.subject, []).append(version)

    def by_id(self, schema_id: int) -> SchemaVersion:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise CatalogueError(f"unknown schema id {schema_id}") from None

    def latest(self, subject: str) -> SchemaVersion:
        versions = self._by_subject.get(subject)
        if not versions:
            raise CatalogueError(f"no schema registered for subject {subject}")
        return versions[-1]

    def versions(self, subject: str) -> list[SchemaVersion]:
        return list(self._by_subject.get(subject, []))

    def subjects(self) -> list[str]:
        return sorted(self._by_subject)

    def register(self, subject: str, schema: Schema) -> tuple[SchemaVersion, bool]:
        """Return the version holding ``schema``, appending a new one if needed (and compatible).

        The boolean says whether a new version was added.
        """
        fp = fingerprint(schema)
        history = self._by_subject.get(subject, [])
        for version in history:
            if version.fingerprint == fp:
                return version, False
        for version in history:
            problems = incompatibilities(reader=schema, writer=version.schema)
            if problems:
                raise CatalogueError(
                    f"{subject}: new schema cannot read version {version.version}: " + "; ".join(problems)
                )
        new = SchemaVersion(
            id=max(self._by_id, default=0) + 1,
            subject=subject,
            version=len(history) + 1,
            fingerprint=fp,
            schema=schema,
        )
        self._add(new)
        return new, True

    def save(self) -> None:
        """Write the catalogue atomically."""
        entries = [self._by_id[i].__dict__ for i in sorted(self._by_id)]
        text = json.dumps({"schemas": entries}, indent=1, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".catalogue-")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, self.path)


def stale_subjects(catalogue: SchemaCatalogue, sources: dict[str, Schema]) -> list[str]:
    """Subjects whose ``.avsc`` differs from the latest registered version (or is not registered)."""
    stale = []
    for subject, schema in sources.items():
        versions = catalogue.versions(subject)
        if not versions or versions[-1].fingerprint != fingerprint(schema):
            stale.append(subject)
    return stale
