"""Config and subscriptions validation: the shipped files are valid, bad ones are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_config
from router.subscriptions import SubscriptionsError, load_subscriptions
from schemas.catalogue import SchemaCatalogue
from schemas.codec import Codec


def test_shipped_config_and_subscriptions_are_valid() -> None:
    config = load_config()
    subs = load_subscriptions(config.subscriptions_path())
    subs.check_event_types(Codec(SchemaCatalogue()).schemas_by_type())
    assert {getattr(c, "type", None) for c in config.connectors} == {"operators", "immigration", "airlines", "hotels"}
    assert {c.transport.kind for c in config.connectors} == {"http", "filedrop", "polling"}
    assert "airlines-flight-status" not in [c.name for c in config.connector_configs()]  # disabled
    assert subs.subscriptions


def test_env_overrides_bootstrap_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    assert load_config().kafka.client_settings("x").bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "hub.yaml"
    bad.write_text("connectors:\n  - name: ops\n    type: operators\n    transport: {kind: http}\n")
    with pytest.raises(
        ConfigError, match=r"hub\.yaml: connectors\.0\.operators\.transport\.http\.path: Field required"
    ):
        load_config(bad)
    bad.write_text("connectors:\n  - name: ops\n    type: carrier-pigeon\n")
    with pytest.raises(ConfigError, match="carrier-pigeon"):
        load_config(bad)
    bad.write_text("kafka: [not, a, mapping")
    with pytest.raises(ConfigError, match=r"hub\.yaml"):
        load_config(bad)


def test_subscription_errors(tmp_path: Path) -> None:
    path = tmp_path / "subs.yaml"
    path.write_text("subscriptions:\n  - {id: a-1, agency: x, event_types: [], target: {kind: kafka, topic: t}}\n")
    with pytest.raises(SubscriptionsError, match=r"subscriptions\.0\.event_types"):
        load_subscriptions(path)
    path.write_text(
        "subscriptions:\n  - {id: a-1, agency: x, event_types: [PilgrimRegistered], target: {kind: kafka, topic: t}}\n"
        "  - {id: a-1, agency: y, event_types: [PilgrimRegistered], target: {kind: kafka, topic: u}}\n"
    )
    with pytest.raises(SubscriptionsError, match="appears twice"):
        load_subscriptions(path)
    path.write_text(
        "subscriptions:\n  - {id: a-1, agency: x, event_types: [VisaIsued], target: {kind: kafka, topic: t}}\n"
    )
    with pytest.raises(
        ValueError, match=r"subscriptions\[0\] \(a-1\)\.event_types: unknown event type\(s\) \['VisaIsued'\]"
    ):
        load_subscriptions(path).check_event_types({"PilgrimRegistered"})


def test_projection_and_filter_fields_must_exist(tmp_path: Path) -> None:
    schemas = Codec(SchemaCatalogue()).schemas_by_type()
    path = tmp_path / "subs.yaml"
    path.write_text("subscriptions:\n  - {id: a-1, agency: x, event_types: [BorderEntryRecorded], "
                    "projection: {fields: [port, pilgrim.shoe_size]}, target: {kind: kafka, topic: t}}\n")
    with pytest.raises(ValueError, match=r"\(a-1\)\.projection: no field \['pilgrim\.shoe_size'\]"):
        load_subscriptions(path).check_event_types(schemas)
    path.write_text("subscriptions:\n  - {id: a-1, agency: x, event_types: [BorderEntryRecorded], "
                    "filter: {field: gate, equals: A}, target: {kind: kafka, topic: t}}\n")
    with pytest.raises(ValueError, match=r"\(a-1\)\.filter: no field \['gate'\]"):
        load_subscriptions(path).check_event_types(schemas)
