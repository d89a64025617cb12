"""A hub.yaml of its own for a fault test whose hub runs in child processes: topics, groups and the
subscriber topic ``f<run>.deliver`` named after the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TOPICS = ("events", "quarantine", "dead_letter", "replay", "audit", "schemas", "checkpoints")


def write_config(
    tmp_path: Path,
    bootstrap: str,
    run: str,
    connectors: list[dict[str, Any]] | None = None,
    projection: dict[str, Any] | None = None,
) -> Path:
    subscription: dict[str, Any] = {
        "id": "ops",
        "agency": "ministry",
        "event_types": ["PilgrimRegistered"],
        "target": {"kind": "kafka", "topic": f"f{run}.deliver"},
    }
    if projection:
        subscription["projection"] = projection
    (tmp_path / "subscriptions.yaml").write_text(yaml.safe_dump({"subscriptions": [subscription]}))
    config = {
        "mode": "development",
        "kafka": {"bootstrap_servers": bootstrap, "partitions": 3, "topics": {n: f"f{run}.{n}" for n in TOPICS}},
        "identity": {"pilgrim_key_secret": "fault-test-secret-0123456789"},
        "router": {"group_id": f"f{run}.router", "subscriptions_file": "subscriptions.yaml"},
        "journey": {"enabled": False},
        "connectors": connectors or [],
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
