"""The schema catalogue and the BACKWARD compatibility check over every schema's history."""

from __future__ import annotations

import copy
from pathlib import Path

import fastavro
import pytest
from fastavro.utils import generate_many

from schemas.catalogue import CatalogueError, SchemaCatalogue, fingerprint, load_sources, stale_subjects
from schemas.compat import incompatibilities


def test_every_event_schema_is_registered_as_its_latest_version() -> None:
    assert stale_subjects(SchemaCatalogue(), load_sources()) == [], "run `hub schemas register`"


def test_ids_are_unique_and_versions_ordered() -> None:
    catalogue = SchemaCatalogue()
    ids = [v.id for s in catalogue.subjects() for v in catalogue.versions(s)]
    assert len(ids) == len(set(ids))
    for subject in catalogue.subjects():
        assert [v.version for v in catalogue.versions(subject)] == list(range(1, len(catalogue.versions(subject)) + 1))
        for version in catalogue.versions(subject):
            assert version.fingerprint == fingerprint(version.schema)


@pytest.mark.parametrize("subject", SchemaCatalogue().subjects())
def test_history_is_backward_compatible(subject: str) -> None:
    """Every version reads data written by every earlier version (BACKWARD_TRANSITIVE)."""
    versions = SchemaCatalogue().versions(subject)
    for i, newer in enumerate(versions):
        for older in versions[:i]:
            assert incompatibilities(reader=newer.schema, writer=older.schema) == []
            writer = fastavro.parse_schema(older.schema)
            reader = fastavro.parse_schema(newer.schema)
            for record in generate_many(older.schema, 20):
                import io

                buf = io.BytesIO()
                fastavro.schemaless_writer(buf, writer, record)
                buf.seek(0)
                fastavro.schemaless_reader(buf, writer, reader)


def _base() -> dict:
    return copy.deepcopy(load_sources()["hajj.journey.PilgrimRegistered"])


def test_adding_a_field_needs_a_default() -> None:
    old = _base()
    new = _base()
    new["fields"].append({"name": "blood_group", "type": "string"})
    assert any("blood_group" in p and "default" in p for p in incompatibilities(new, old))
    new["fields"][-1] = {"name": "blood_group", "type": ["null", "string"], "default": None}
    assert incompatibilities(new, old) == []


def test_type_changes_follow_avro_promotion_rules() -> None:
    writer = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]}
    as_long = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}
    as_string = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "string"}]}
    assert incompatibilities(as_long, writer) == []
    assert incompatibilities(as_string, writer) == ["$.n: writer type int cannot be read as string"]
    assert incompatibilities(writer, as_long) != []  # long cannot narrow to int


def test_enum_symbols_and_unions() -> None:
    old = {"type": "enum", "name": "S", "symbols": ["A", "B"]}
    fewer = {"type": "enum", "name": "S", "symbols": ["A"]}
    assert incompatibilities(fewer, old) != []
    assert incompatibilities({**fewer, "default": "A"}, old) == []
    assert incompatibilities(["null", "string"], "string") == []
    assert incompatibilities("string", ["null", "string"]) != []


def test_register_refuses_an_incompatible_version_and_keeps_ids(tmp_path: Path) -> None:
    catalogue = SchemaCatalogue(tmp_path / "catalogue.json")
    v1, added = catalogue.register("hajj.journey.PilgrimRegistered", _base())
    assert added and v1.id == 1
    assert catalogue.register("hajj.journey.PilgrimRegistered", _base()) == (v1, False)
    broken = _base()
    broken["fields"].append({"name": "must_have", "type": "string"})
    with pytest.raises(CatalogueError, match="must_have"):
        catalogue.register("hajj.journey.PilgrimRegistered", broken)
    evolved = _base()
    evolved["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    v2, added = catalogue.register("hajj.journey.PilgrimRegistered", evolved)
    assert added and (v2.id, v2.version) == (2, 2)
    catalogue.save()
    reloaded = SchemaCatalogue(tmp_path / "catalogue.json")
    assert reloaded.latest("hajj.journey.PilgrimRegistered").id == 2
    assert reloaded.by_id(1).fingerprint == v1.fingerprint
