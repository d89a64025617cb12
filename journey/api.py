"""Reading a pilgrim's journey: ``GET /journeys/{pilgrim_key}``, and the CLI's ``hub journey KEY``.

The endpoint answers 200 with the journey document (:func:`journey.state.journey_document`: the
summary fields, the timeline of which agency reported what and when, every alert raised and the
open ones), or 404 when no event about that pilgrim has been read. It is served from a running
:class:`~journey.service.JourneyService` in this process, or from any ``pilgrim_key -> document``
loader, e.g. :func:`load_journey`, which reads the service's changelog topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, HTTPException

from journey.service import read_journeys
from journey.state import Thresholds, journey_document
from streaming.kafka import ClientSettings

logger = logging.getLogger(__name__)

Loader = Callable[[str], "dict[str, Any] | None"]


@runtime_checkable
class JourneyLookup(Protocol):
    """Anything that finds a journey document by pilgrim key (the service does)."""

    def get(self, pilgrim_key: str) -> dict[str, Any] | None: ...


def journey_router(service_or_loader: JourneyLookup | Loader) -> APIRouter:
    """``GET /journeys/{pilgrim_key}`` over a running service or a loader function."""
    lookup: Loader = service_or_loader.get if isinstance(service_or_loader, JourneyLookup) else service_or_loader
    router = APIRouter(tags=["journeys"])

    @router.get(
        "/journeys/{pilgrim_key}",
        summary="A pilgrim's journey across the agencies, and its alerts",
        responses={404: {"description": "No event about this pilgrim key has been read."}},
    )
    def get_journey(pilgrim_key: str) -> dict[str, Any]:
        doc = lookup(pilgrim_key)
        if doc is None:
            raise HTTPException(
                status_code=404,
                detail=f"no journey for pilgrim key {pilgrim_key!r}: the hub has read no event about this pilgrim "
                "(derive the key from nationality and passport number with `hub key NATIONALITY PASSPORT`)",
            )
        return doc

    return router


def load_journey(
    settings: ClientSettings, journeys_topic: str, pilgrim_key: str, thresholds: Thresholds | None = None
) -> dict[str, Any] | None:
    """The journey document of ``pilgrim_key`` from the changelog topic (committed state), or None.

    Reads the whole changelog: for the CLI when the service does not run in this process."""
    journey = read_journeys(settings, journeys_topic).get(pilgrim_key)
    return journey_document(journey, thresholds) if journey is not None else None


_SUMMARY = (
    ("registered_at", "registered"),
    ("visa_valid_until", "visa valid until"),
    ("visa_max_stay_days", "visa max stay (days)"),
    ("inbound_arrival_at", "inbound arrival"),
    ("entered_at", "entered"),
    ("checked_in_at", "checked in"),
    ("checked_out_at", "checked out"),
    ("exited_at", "exited"),
)


def format_journey(doc: dict[str, Any]) -> str:
    """A journey document as readable lines: who the pilgrim is, where the journey stands, alerts,
    and the timeline (when, which agency, what)."""
    who = doc.get("name") or "(not registered)"
    if doc.get("nationality"):
        who += f" ({doc['nationality']})"
    lines = [f"Pilgrim {doc['pilgrim_key']}: {who}"]
    if doc.get("operator_code") or doc.get("registration_id"):
        lines.append(f"  operator {doc.get('operator_code') or '-'}, registration {doc.get('registration_id') or '-'}")
    width = max(len(label) for _, label in _SUMMARY)
    lines += [f"  {label:<{width}}  {doc[name]}" for name, label in _SUMMARY if doc.get(name) is not None]
    open_alerts = set(doc.get("open_alerts") or ())
    alerts: dict[str, dict[str, Any]] = doc.get("alerts") or {}
    lines.append("Alerts:" if alerts else "Alerts: none")
    for kind, alert in alerts.items():
        state = "OPEN" if kind in open_alerts else f"resolved {alert.get('resolved_at')}"
        lines.append(f"  {kind:<24} {state:<30} deadline {alert['deadline']}, raised {alert['raised_at']}")
    pending: dict[str, str] = doc.get("pending_deadlines") or {}
    for kind, deadline in pending.items():
        lines.append(f"  {kind:<24} {'watching':<30} deadline {deadline}")
    timeline: list[dict[str, str]] = doc.get("timeline") or []
    lines.append(f"Timeline ({len(timeline)} events):")
    agency_width = max((len(e["agency"]) for e in timeline), default=0)
    type_width = max((len(e["event_type"]) for e in timeline), default=0)
    lines += [
        f"  {e['at']:<24}  {e['agency']:<{agency_width}}  {e['event_type']:<{type_width}}  {e['summary']}"
        for e in timeline
    ]
    return "\n".join(lines)
