"""Ground truth: which alerts a correct hub must raise, per docs/journey-alerts.md.

This module is a reference implementation of that contract written from the page alone; it shares
no code with the journey service it checks. It reads journey events as :class:`Observed` values
(the few fields the contract uses) and applies the alert table:

* state per pilgrim: ``inbound_arrival_at`` (latest inbound ``PassengerManifested``), ``entered_at``
  (first ``BorderEntryRecorded``), ``checked_in_at`` / ``checked_out_at`` (latest ``GuestCheckedIn`` /
  ``GuestCheckedOut``), ``exited_at`` (first ``BorderExitRecorded`` after ``entered_at``; when no
  entry was recorded any exit counts), ``visa_valid_until`` / ``visa_max_stay_days`` (``VisaIssued``);
* ``no_show`` armed by an inbound arrival without entry, deadline arrival + ``no_show_hours``;
* ``no_housing`` armed by the entry, deadline entry + ``housing_hours``, resolved by a check-in at
  or after the entry;
* ``no_exit_after_checkout`` armed by a check-out without exit, deadline check-out +
  ``exit_after_checkout_hours``; a later check-in (moved hotel) disarms it until the next check-out;
* ``overstay`` armed by the entry without exit, deadline the earlier of ``visa_valid_until`` + 1 day
  at 00:00 UTC and entry + ``visa_max_stay_days`` days (entry + 90 days without a visa), plus
  ``overstay_grace_hours``.

Time: the events are applied in order of ``occurred_at`` (ties keep their given order), and an
event counts as seen at its ``occurred_at``. Before each event, and finally at ``final_clock``,
every armed alert whose deadline is strictly before that time is raised (at most once per type).
An event exactly at the deadline still resolves it. The simulator delivers each event within the
simulated hour of its ``occurred_at`` and keeps resolving events hours away from deadlines (see
:mod:`simulator.season`), so this event-time reading and the service's processing-time clock agree.

:func:`expected_alerts` applies this to the events the hub accepts from a plan: every step of
the plan except the malformed records, which the connectors reject.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from simulator.season import VISA_MAX_STAY_DAYS, ManifestStep, PilgrimStep, SeasonPlan

logger = logging.getLogger(__name__)

ALERT_TYPES: tuple[str, ...] = ("no_show", "no_housing", "no_exit_after_checkout", "overstay")
DEFAULT_STAY_DAYS = 90
"""``overstay`` without a ``VisaIssued``: entry + 90 days."""


@dataclass(frozen=True)
class Thresholds:
    """The contract's thresholds (config ``journey:`` in ``hub.yaml``), with its defaults."""

    no_show_hours: float = 12
    housing_hours: float = 24
    exit_after_checkout_hours: float = 48
    overstay_grace_hours: float = 0


@dataclass(frozen=True, slots=True)
class Observed:
    """One journey event as the contract sees it; fields not of this event type stay None."""

    event_type: str
    occurred_at: datetime
    arrival_time: datetime | None = None
    """``PassengerManifested``: scheduled arrival (UTC)."""
    direction: str | None = None
    """``PassengerManifested``: inbound, outbound, domestic, transit."""
    crossed_at: datetime | None = None
    """``BorderEntryRecorded`` / ``BorderExitRecorded``."""
    visa_valid_until: date | None = None
    visa_max_stay_days: int | None = None


def observed_from_event(event_type: str, occurred_at: datetime, payload: Mapping[str, Any]) -> Observed:
    """An :class:`Observed` from an event's type, ``occurred_at`` and payload fields (as the schemas name them)."""
    if event_type == "PassengerManifested":
        return Observed(event_type, occurred_at, arrival_time=payload["arrival_time"], direction=payload["direction"])
    if event_type in ("BorderEntryRecorded", "BorderExitRecorded"):
        return Observed(event_type, occurred_at, crossed_at=payload["crossed_at"])
    if event_type == "VisaIssued":
        return Observed(
            event_type,
            occurred_at,
            visa_valid_until=payload["valid_until"],
            visa_max_stay_days=payload["max_stay_days"],
        )
    return Observed(event_type, occurred_at)


class _Journey:
    """The contract's per-pilgrim state, and the deadline of each alert that is armed."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.inbound_arrival_at: datetime | None = None
        self.entered_at: datetime | None = None
        self.checked_in_at: datetime | None = None
        self.checked_out_at: datetime | None = None
        self.exited_at: datetime | None = None
        self.visa_valid_until: date | None = None
        self.visa_max_stay_days: int | None = None
        self.housed = False
        """A check-in at or after the entry was seen."""
        self.awaiting_exit = False
        """The latest hotel event is a check-out (a later check-in disarms until the next check-out)."""

    def apply(self, event: Observed) -> None:
        kind = event.event_type
        if kind == "PassengerManifested" and event.direction == "inbound" and event.arrival_time is not None:
            self.inbound_arrival_at = event.arrival_time
        elif kind == "BorderEntryRecorded" and self.entered_at is None:
            self.entered_at = event.crossed_at or event.occurred_at
            if self.checked_in_at is not None and self.checked_in_at >= self.entered_at:
                self.housed = True
        elif kind == "BorderExitRecorded" and self.exited_at is None:
            crossed = event.crossed_at or event.occurred_at
            if self.entered_at is None or crossed >= self.entered_at:
                self.exited_at = crossed
        elif kind == "GuestCheckedIn":
            self.checked_in_at = event.occurred_at
            self.awaiting_exit = False
            if self.entered_at is not None and event.occurred_at >= self.entered_at:
                self.housed = True
        elif kind == "GuestCheckedOut":
            self.checked_out_at = event.occurred_at
            self.awaiting_exit = True
        elif kind == "VisaIssued":
            self.visa_valid_until = event.visa_valid_until
            self.visa_max_stay_days = event.visa_max_stay_days

    def deadlines(self) -> dict[str, datetime]:
        """Deadline of every alert type that is armed now."""
        t = self.thresholds
        armed: dict[str, datetime] = {}
        if self.inbound_arrival_at is not None and self.entered_at is None:
            armed["no_show"] = self.inbound_arrival_at + timedelta(hours=t.no_show_hours)
        if self.entered_at is not None and not self.housed:
            armed["no_housing"] = self.entered_at + timedelta(hours=t.housing_hours)
        if self.checked_out_at is not None and self.exited_at is None and self.awaiting_exit:
            armed["no_exit_after_checkout"] = self.checked_out_at + timedelta(hours=t.exit_after_checkout_hours)
        if self.entered_at is not None and self.exited_at is None:
            armed["overstay"] = self.overstay_deadline(self.entered_at)
        return armed

    def overstay_deadline(self, entered_at: datetime) -> datetime:
        if self.visa_valid_until is None and self.visa_max_stay_days is None:
            deadline = entered_at + timedelta(days=DEFAULT_STAY_DAYS)
        else:
            candidates = []
            if self.visa_valid_until is not None:
                candidates.append(datetime.combine(self.visa_valid_until + timedelta(days=1), time(0), UTC))
            if self.visa_max_stay_days is not None:
                candidates.append(entered_at + timedelta(days=self.visa_max_stay_days))
            deadline = min(candidates)
        return deadline + timedelta(hours=self.thresholds.overstay_grace_hours)


def alerts_for(events: Iterable[Observed], final_clock: datetime, thresholds: Thresholds | None = None) -> set[str]:
    """The alert types a correct hub raises for one pilgrim's events once its clock reads ``final_clock``."""
    journey = _Journey(thresholds or Thresholds())
    raised: set[str] = set()

    def clock_passes(now: datetime) -> None:
        for alert, deadline in journey.deadlines().items():
            if deadline < now:
                raised.add(alert)

    for event in sorted(events, key=lambda e: e.occurred_at):
        clock_passes(event.occurred_at)
        journey.apply(event)
    clock_passes(final_clock)
    return raised


# -- from a plan -----------------------------------------------------------------------------------

_PILGRIM_EVENT_TYPES: dict[str, str] = {
    "registration": "PilgrimRegistered",
    "visa": "VisaIssued",
    "reservation": "HotelReservationConfirmed",
    "check_in": "GuestCheckedIn",
    "check_out": "GuestCheckedOut",
    "entry": "BorderEntryRecorded",
    "exit": "BorderExitRecorded",
}


def accepted_events(plan: SeasonPlan) -> dict[int, list[Observed]]:
    """Per pilgrim index, the pilgrim-keyed events the hub accepts from the plan, in delivery order.

    Malformed records are left out (their connector rejects them). Group memberships are not
    listed: no alert depends on them.
    """
    events: dict[int, list[Observed]] = {p.index: [] for p in plan.pilgrims}
    for step in plan.steps:
        if isinstance(step, PilgrimStep):
            if step.malformed:
                continue
            pilgrim = plan.pilgrims[step.pilgrim]
            event_type = _PILGRIM_EVENT_TYPES[step.kind]
            if step.kind == "visa":
                observed = Observed(
                    event_type,
                    step.at,
                    visa_valid_until=pilgrim.visa_valid_until,
                    visa_max_stay_days=VISA_MAX_STAY_DAYS,
                )
            elif step.kind in ("entry", "exit"):
                observed = Observed(event_type, step.at, crossed_at=step.at)
            else:
                observed = Observed(event_type, step.at)
            events[step.pilgrim].append(observed)
        elif isinstance(step, ManifestStep):
            flight = plan.flights[step.flight]
            for index in flight.passengers:
                if index not in step.corrupt:
                    events[index].append(
                        Observed(
                            "PassengerManifested", step.at, arrival_time=flight.arrival, direction=flight.direction
                        )
                    )
    return events


def expected_alerts(
    plan: SeasonPlan, final_clock: datetime, thresholds: Thresholds | None = None
) -> dict[str, set[str]]:
    """pilgrim_key -> the alert types a correct hub raises by ``final_clock`` (empty set: none)."""
    events = accepted_events(plan)
    return {p.pilgrim_key: alerts_for(events[p.index], final_clock, thresholds) for p in plan.pilgrims}


def write_ground_truth(
    plan: SeasonPlan, path: Path, final_clock: datetime, thresholds: Thresholds | None = None
) -> None:
    """One JSON line per pilgrim (docs/journey-alerts.md): key, nationality, passport, injected, expected alerts."""
    expected = expected_alerts(plan, final_clock, thresholds)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    with partial.open("w", encoding="utf-8") as out:
        for pilgrim in plan.pilgrims:
            line = {
                "pilgrim_key": pilgrim.pilgrim_key,
                "nationality": pilgrim.nationality,
                "passport_number": pilgrim.passport_number,
                "injected": list(pilgrim.injected),
                "expected_alerts": [a for a in ALERT_TYPES if a in expected[pilgrim.pilgrim_key]],
            }
            out.write(json.dumps(line) + "\n")
    partial.replace(path)
    logger.info("ground truth for %d pilgrims written to %s", len(plan.pilgrims), path)
