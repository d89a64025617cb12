"""The journey service's configuration: the ``journey:`` block of ``hub.yaml``.

The service keeps every pilgrim's journey (docs/journey-alerts.md) in a compacted changelog topic
and raises ``JourneyAlertRaised`` events when a deadline passes without its resolving event.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from journey.state import Thresholds


class JourneyConfig(BaseModel):
    """Journey state and alerts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Run the journey service (journey state, alerts, GET /journeys/{key}).")
    group_id: str = Field(
        "hub-journey",
        description="Consumer group of the journey service on the journey topic; with the instance, its "
        "transactional id.",
    )
    journeys_topic: str = Field(
        "hub.journeys",
        description="Compacted changelog: the latest state of each pilgrim's journey (JSON), keyed by pilgrim_key; "
        "a restarted service rebuilds from it.",
    )
    forget_after_exit_days: float | None = Field(
        30,
        ge=0,
        description="Forget a finished journey (pilgrim exited, no alert open) this many days after the exit: "
        "tombstoned in the changelog and dropped from memory, so GET /journeys/{key} answers 404. Null keeps "
        "every journey for ever.",
    )
    thresholds: Thresholds = Field(
        default_factory=Thresholds, description="How long to wait for each step of a journey before raising an alert."
    )
