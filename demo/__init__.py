"""Runs of the whole hub on this machine: the simulated season (``demo.season``, the main job) and
the sample-feed tour (``demo.run``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def local_config(config_path: Path | None) -> tuple[Any, dict[str, Any]]:
    """The configured hub and its raw form, pointed at the local broker (started if needed) unless
    ``KAFKA_BOOTSTRAP_SERVERS`` names another, with the pilgrim key secret carried over in clear so
    that the raw form can be edited and validated again."""
    from config import load_config
    from streaming.local_broker import LocalBroker

    config = load_config(config_path)
    raw: dict[str, Any] = config.model_dump(mode="json", exclude={"source"})
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        raw["kafka"]["bootstrap_servers"] = LocalBroker.from_env().up()
    secret = config.identity.pilgrim_key_secret
    raw["identity"]["pilgrim_key_secret"] = secret.get_secret_value() if secret else None
    return config, raw
