"""Subscriptions: which system receives which journey events, and where.

Read from ``config/subscriptions.yaml``::

    subscriptions:
      - id: makkah-hotel-desk
        agency: hotels
        event_types: [BorderEntryRecorded, PassengerManifested]
        filter: {field: arrival_airport, in: [JED, MED]}        # router/filters.py
        projection:                                              # router/projection.py
          fields: [envelope.occurred_at, pilgrim.surname, pilgrim.nationality, port, crossed_at]
          mask: {pilgrim.surname: hash}
        target: {kind: webhook, url: "https://hotels.example/hooks/hub", secret: "whsec_..."}
        retry: {max_attempts: 10, budget_seconds: 600}

Kafka-target subscriptions share the router's lane (one read and decode per event, exactly-once);
each webhook subscription gets its own consumer group and worker (a bulkhead): a slow or failing
endpoint never delays another. Retry policy is configuration, not code in each target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.filters import FilterSpec, fields_referenced
from router.projection import Projection, Projector
from router.webhook import WebhookTarget


class KafkaTarget(BaseModel):
    """Deliver to a Kafka topic owned by the subscriber."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["kafka"] = "kafka"
    topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$", description="The subscriber's topic.")


class RetryPolicy(BaseModel):
    """How long a transient failure is retried before the event is dead-lettered."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_attempts: int = Field(8, ge=1, le=1000, description="Deliveries tried per event, the first included.")
    initial_backoff_seconds: float = Field(0.5, gt=0, description="First wait; doubles each try, with jitter.")
    max_backoff_seconds: float = Field(30.0, gt=0, description="Longest single wait (Retry-After may ask more).")
    budget_seconds: float = Field(300.0, gt=0, description="Longest time spent on one event before dead-lettering.")


Target = Annotated[KafkaTarget | WebhookTarget, Field(discriminator="kind")]


class Subscription(BaseModel):
    """One subscriber system and the events and fields it is entitled to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="Subscriber id, unique.")
    agency: str = Field(description="The agency that owns the subscribing system.")
    event_types: frozenset[str] = Field(min_length=1, description="Short event type names, e.g. PilgrimRegistered.")
    filter: FilterSpec | None = Field(None, description="Only events matching this predicate are delivered.")
    projection: Projection | None = Field(None, description="The fields delivered; absent: the whole event.")
    target: Target
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


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

    def check_event_types(self, known: set[str] | dict[str, dict[str, Any]]) -> None:
        """Raise ValueError naming any subscription that asks for an event type no schema defines,
        or (given the schemas by event type) projects or filters a field none of its types has."""
        for index, sub in enumerate(self.subscriptions):
            unknown = sorted(sub.event_types - set(known))
            if unknown:
                raise ValueError(
                    f"subscriptions[{index}] ({sub.id}).event_types: unknown event type(s) {unknown}; "
                    f"known: {sorted(known)}"
                )
            if not isinstance(known, dict):
                continue
            projector = Projector(sub.projection, b"validation-only-key")
            missing = set.intersection(*(set(projector.validate_against(known[t])) for t in sub.event_types))
            if missing:
                raise ValueError(
                    f"subscriptions[{index}] ({sub.id}).projection: no field {sorted(missing)} in "
                    f"{sorted(sub.event_types)}"
                )
            probe = Projector(Projection(fields=sorted(fields_referenced(sub.filter))), b"k") if sub.filter else None
            if probe is not None:
                absent = set.intersection(*(set(probe.validate_against(known[t])) for t in sub.event_types))
                if absent:
                    raise ValueError(
                        f"subscriptions[{index}] ({sub.id}).filter: no field {sorted(absent)} in "
                        f"{sorted(sub.event_types)}"
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
