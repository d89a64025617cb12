"""Subscriptions: which system receives which journey events, and where.

Read from ``config/subscriptions.yaml``::

    subscriptions:
      - id: ministry-ops
        agency: ministry
        event_types: [PilgrimRegistered]
        target: {kind: kafka, topic: deliver.ministry-ops}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class KafkaTarget(BaseModel):
    """Deliver to a Kafka topic owned by the subscriber."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["kafka"] = "kafka"
    topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$", description="The subscriber's topic.")


class Subscription(BaseModel):
    """One subscriber system and the events it is entitled to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="Subscriber id, unique.")
    agency: str = Field(description="The agency that owns the subscribing system.")
    event_types: frozenset[str] = Field(min_length=1, description="Short event type names, e.g. PilgrimRegistered.")
    target: KafkaTarget = Field(discriminator="kind")


class Subscriptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    subscriptions: list[Subscription] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Subscriptions:
        seen: set[str] = set()
        for sub in self.subscriptions:
            if sub.id in seen:
                raise ValueError(f"subscription id {sub.id!r} appears twice")
            seen.add(sub.id)
        return self

    def check_event_types(self, known: set[str]) -> None:
        """Raise ValueError naming any subscription that asks for an event type no schema defines."""
        for index, sub in enumerate(self.subscriptions):
            unknown = sorted(sub.event_types - known)
            if unknown:
                raise ValueError(
                    f"subscriptions[{index}] ({sub.id}).event_types: unknown event type(s) {unknown}; "
                    f"known: {sorted(known)}"
                )


class SubscriptionsError(ValueError):
    """The subscriptions file is missing, not YAML, or invalid; the message names file and field."""


def load_subscriptions(path: Path) -> Subscriptions:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SubscriptionsError(f"{path}: {exc}") from exc
    try:
        return Subscriptions.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SubscriptionsError(f"{path}: {details}") from exc
