"""Journey state and alert rules: pure functions, no Kafka (the contract is docs/journey-alerts.md).

A :class:`Journey` is what the hub knows about one pilgrim (one ``pilgrim_key``), folded from the
journey events in the order read with :func:`apply`:

==========================  ===================================================================
field                       set by
==========================  ===================================================================
registered_at, operator,    ``PilgrimRegistered``
registration id, name,
nationality
visa_valid_until,           ``VisaIssued`` (the latest)
visa_max_stay_days
inbound_arrival_at          ``arrival_time`` of the latest ``PassengerManifested`` inbound
entered_at                  ``crossed_at`` of the first ``BorderEntryRecorded``
checked_in_at               ``occurred_at`` of the latest ``GuestCheckedIn``
checked_out_at              ``occurred_at`` of the latest ``GuestCheckedOut``
exited_at                   ``crossed_at`` of the first ``BorderExitRecorded`` after entered_at
==========================  ===================================================================

Every event, whatever its type, also appends a timeline entry ``{at, agency, event_type,
summary}`` (the latest :data:`TIMELINE_LIMIT` are kept).

Alerts (:func:`armed_deadlines`, :func:`due_alerts`): each type has a deadline while its arming
condition holds and its resolving event has not been seen; it is due once the clock has *passed*
the deadline (``now > deadline``), and is raised at most once per pilgrim and type (the journey
remembers it in ``alerts``, with the same :func:`alert_id` every time).

=========================  ==========================================  ========================================
type                       deadline                                    resolved by
=========================  ==========================================  ========================================
no_show                    inbound_arrival_at + no_show_hours          a BorderEntryRecorded
no_housing                 entered_at + housing_hours                  a GuestCheckedIn at/after entered_at
no_exit_after_checkout     checked_out_at + exit_after_checkout_hours  a BorderExitRecorded, or a GuestCheckedIn
                                                                       at/after the check-out (moved hotel;
                                                                       the next check-out re-arms it)
overstay                   min(visa_valid_until + 1 day 00:00 UTC,     a BorderExitRecorded
                           entered_at + visa_max_stay_days) + grace;
                           without a visa entered_at + 90 days + grace
=========================  ==========================================  ========================================

An alert already raised whose resolving event arrives later is marked resolved (``resolved_at``):
it is no longer *open*, and it is never raised again.

The lag-aware clock (:func:`effective_now`) and the :class:`DeadlineIndex` (which pilgrims' deadlines
have passed, without scanning every journey) are here too, so the service only wires them to Kafka.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

AlertType = Literal["no_show", "no_housing", "no_exit_after_checkout", "overstay"]
ALERT_TYPES: tuple[AlertType, ...] = get_args(AlertType)
ALERT_EVENT_TYPE = "JourneyAlertRaised"
TIMELINE_LIMIT = 100
ALERT_ID_NAMESPACE = uuid.UUID("0d6c2f4e-5a1b-4f3e-9c7d-8e2a1b3c4d5e")
"""Namespace of :func:`alert_id` (uuid5 of ``"<pilgrim_key>|<alert_type>"``)."""
_JSON_VERSION = 1


class Thresholds(BaseModel):
    """How long the hub waits for the event that closes each step of a journey (``journey.thresholds``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    no_show_hours: float = Field(
        12, ge=0, description="no_show: hours after the inbound flight's scheduled arrival without a border entry."
    )
    housing_hours: float = Field(
        24, ge=0, description="no_housing: hours after the border entry without a hotel check-in."
    )
    exit_after_checkout_hours: float = Field(
        48, ge=0, description="no_exit_after_checkout: hours after the last hotel check-out without a border exit."
    )
    overstay_grace_hours: float = Field(
        0, ge=0, description="overstay: hours allowed beyond the visa's last day of stay before the alert."
    )
    stay_without_visa_days: int = Field(
        90, ge=1, description="overstay: longest stay assumed when no VisaIssued was seen for the pilgrim."
    )


def alert_id(pilgrim_key: str, alert_type: str) -> str:
    """The alert's id: the same pilgrim and type always give the same id (idempotency key downstream)."""
    return str(uuid.uuid5(ALERT_ID_NAMESPACE, f"{pilgrim_key}|{alert_type}"))


# ---- the journey ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """Which agency reported what, when (``at`` is the event's occurred_at)."""

    at: datetime
    agency: str
    event_type: str
    summary: str

    def to_dict(self) -> dict[str, str]:
        return {"at": _iso(self.at), "agency": self.agency, "event_type": self.event_type, "summary": self.summary}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TimelineEntry:
        return cls(_instant(raw["at"]), str(raw["agency"]), str(raw["event_type"]), str(raw["summary"]))


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """An alert the hub raised for a journey; ``resolved_at`` once its resolving event arrived."""

    alert_id: str
    deadline: datetime
    raised_at: datetime
    resolved_at: datetime | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "alert_id": self.alert_id,
            "deadline": _iso(self.deadline),
            "raised_at": _iso(self.raised_at),
            "resolved_at": _iso(self.resolved_at) if self.resolved_at else None,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RaisedAlert:
        resolved = raw.get("resolved_at")
        return cls(
            str(raw["alert_id"]),
            _instant(raw["deadline"]),
            _instant(raw["raised_at"]),
            _instant(resolved) if resolved else None,
        )


@dataclass(frozen=True, slots=True)
class Journey:
    """One pilgrim's journey as far as the hub has read it. A value: :func:`apply` returns a new one."""

    pilgrim_key: str
    registered_at: datetime | None = None
    operator_code: str | None = None
    registration_id: str | None = None
    name: str | None = None
    nationality: str | None = None
    visa_valid_until: date | None = None
    visa_max_stay_days: int | None = None
    inbound_arrival_at: datetime | None = None
    entered_at: datetime | None = None
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    exited_at: datetime | None = None
    last_event_at: datetime | None = None
    """The latest occurred_at of the events applied (for the lag-aware clock)."""
    partition: int | None = None
    """Partition of the journey topic this pilgrim's events are on (set by the service)."""
    timeline: tuple[TimelineEntry, ...] = ()
    alerts: Mapping[str, RaisedAlert] = field(default_factory=dict)

    def open_alerts(self) -> list[str]:
        """Alert types raised and not resolved since."""
        return [t for t, a in self.alerts.items() if a.resolved_at is None]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document (instants as RFC 3339 UTC, dates as ISO dates)."""
        return {
            "v": _JSON_VERSION,
            "pilgrim_key": self.pilgrim_key,
            "registered_at": _iso_or_none(self.registered_at),
            "operator_code": self.operator_code,
            "registration_id": self.registration_id,
            "name": self.name,
            "nationality": self.nationality,
            "visa_valid_until": self.visa_valid_until.isoformat() if self.visa_valid_until else None,
            "visa_max_stay_days": self.visa_max_stay_days,
            "inbound_arrival_at": _iso_or_none(self.inbound_arrival_at),
            "entered_at": _iso_or_none(self.entered_at),
            "checked_in_at": _iso_or_none(self.checked_in_at),
            "checked_out_at": _iso_or_none(self.checked_out_at),
            "exited_at": _iso_or_none(self.exited_at),
            "last_event_at": _iso_or_none(self.last_event_at),
            "partition": self.partition,
            "timeline": [e.to_dict() for e in self.timeline],
            "alerts": {t: a.to_dict() for t, a in self.alerts.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Journey:
        def instant(name: str) -> datetime | None:
            value = raw.get(name)
            return _instant(value) if value else None

        valid_until = raw.get("visa_valid_until")
        max_stay = raw.get("visa_max_stay_days")
        partition = raw.get("partition")
        return cls(
            pilgrim_key=str(raw["pilgrim_key"]),
            registered_at=instant("registered_at"),
            operator_code=raw.get("operator_code"),
            registration_id=raw.get("registration_id"),
            name=raw.get("name"),
            nationality=raw.get("nationality"),
            visa_valid_until=date.fromisoformat(valid_until) if valid_until else None,
            visa_max_stay_days=int(max_stay) if max_stay is not None else None,
            inbound_arrival_at=instant("inbound_arrival_at"),
            entered_at=instant("entered_at"),
            checked_in_at=instant("checked_in_at"),
            checked_out_at=instant("checked_out_at"),
            exited_at=instant("exited_at"),
            last_event_at=instant("last_event_at"),
            partition=int(partition) if partition is not None else None,
            timeline=tuple(TimelineEntry.from_dict(e) for e in raw.get("timeline", ())),
            alerts={str(t): RaisedAlert.from_dict(a) for t, a in (raw.get("alerts") or {}).items()},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Journey:
        return cls.from_dict(json.loads(text))


# ---- folding events ---------------------------------------------------------------------------


def apply(journey: Journey, event_type: str, event: Mapping[str, Any]) -> Journey:
    """The journey after ``event`` (a decoded event: ``envelope`` + payload). Never mutates ``journey``.

    Event types that do not change the state still add a timeline entry; a ``JourneyAlertRaised``
    (the hub's own) only adds its entry, and records the alert if the journey did not know it.
    """
    envelope = event["envelope"]
    occurred_at = _instant(envelope["occurred_at"])
    agency = str(envelope["source"]["agency"])
    changes: dict[str, Any] = {}
    alerts = dict(journey.alerts)

    if event_type == "PilgrimRegistered":
        person = event.get("pilgrim") or {}
        changes |= {
            "registered_at": occurred_at,
            "operator_code": event.get("operator_code"),
            "registration_id": event.get("registration_id"),
            "name": _person_name(person),
            "nationality": person.get("nationality"),
        }
    elif event_type == "VisaIssued":
        changes |= {"visa_valid_until": _day(event["valid_until"]), "visa_max_stay_days": int(event["max_stay_days"])}
    elif event_type == "PassengerManifested":
        if event.get("direction") == "inbound":
            changes["inbound_arrival_at"] = _instant(event["arrival_time"])
    elif event_type == "BorderEntryRecorded":
        if journey.entered_at is None:
            entered = _instant(event["crossed_at"])
            changes["entered_at"] = entered
            if journey.exited_at is not None and journey.exited_at < entered:
                changes["exited_at"] = None  # an exit read earlier but before this entry is not "after entered_at"
    elif event_type == "BorderExitRecorded":
        crossed = _instant(event["crossed_at"])
        if journey.exited_at is None and (journey.entered_at is None or crossed >= journey.entered_at):
            changes["exited_at"] = crossed
    elif event_type == "GuestCheckedIn":
        changes["checked_in_at"] = occurred_at
    elif event_type == "GuestCheckedOut":
        changes["checked_out_at"] = occurred_at
    elif event_type == ALERT_EVENT_TYPE:
        kind = str(event.get("alert_type", ""))
        if kind in ALERT_TYPES and kind not in alerts:
            alerts[kind] = RaisedAlert(
                str(event["alert_id"]), _instant(event["deadline"]), _instant(event["raised_at"])
            )

    entry = TimelineEntry(occurred_at, agency, event_type, summarise(event_type, event))
    timeline = (*journey.timeline, entry)[-TIMELINE_LIMIT:]
    last = occurred_at if journey.last_event_at is None else max(journey.last_event_at, occurred_at)
    updated = dataclasses.replace(journey, **changes, timeline=timeline, last_event_at=last)
    for kind, raised in alerts.items():
        if raised.resolved_at is None and is_resolved(updated, kind):
            alerts[kind] = dataclasses.replace(raised, resolved_at=occurred_at)
    return dataclasses.replace(updated, alerts=alerts)


def summarise(event_type: str, event: Mapping[str, Any]) -> str:
    """A short sentence saying what the event tells about the pilgrim's journey."""
    get = event.get
    if event_type == "PilgrimRegistered":
        return f"registered by operator {get('operator_code')} (registration {get('registration_id')}, {get('season')})"
    if event_type == "VisaIssued":
        return (
            f"{get('visa_type')} visa {get('visa_number')} issued, valid until {_day(event['valid_until'])}, "
            f"stay up to {get('max_stay_days')} days"
        )
    if event_type == "PassengerManifested":
        return (
            f"{get('direction')} passenger on {get('flight_number')} {get('departure_airport')}→"
            f"{get('arrival_airport')}, arriving {_iso(_instant(event['arrival_time']))}"
        )
    if event_type in ("BorderEntryRecorded", "BorderExitRecorded"):
        verb = "entered" if event_type == "BorderEntryRecorded" else "left"
        flight = f" (flight {get('flight_number')})" if get("flight_number") else ""
        crossed = _iso(_instant(event["crossed_at"]))
        return f"{verb} the Kingdom at {get('port')} ({get('port_type')}){flight} at {crossed}"
    if event_type in ("GuestCheckedIn", "GuestCheckedOut"):
        verb = "checked in at" if event_type == "GuestCheckedIn" else "checked out of"
        return f"{verb} hotel {_hotel(event)} (reservation {get('reservation_id')})"
    if event_type.startswith("HotelReservation") or event_type == "HotelNoShowReported":
        what = _words(event_type.removeprefix("Hotel"))
        return f"{what} at hotel {_hotel(event)} (reservation {get('reservation_id')})"
    if event_type == ALERT_EVENT_TYPE:
        return f"alert {get('alert_type')} raised: {get('details')}"
    return _words(event_type)


def _hotel(event: Mapping[str, Any]) -> str:
    code, name = event.get("hotel_code"), event.get("hotel_name")
    return f"{code} ({name})" if name else str(code)


def _words(camel: str) -> str:
    out = "".join(f" {c.lower()}" if c.isupper() else c for c in camel).strip()
    return out[:1].upper() + out[1:]


def _person_name(person: Mapping[str, Any]) -> str | None:
    surname, given = person.get("surname"), person.get("given_names")
    if not surname and not given:
        return None
    return ", ".join(p for p in (surname, given) if p)


# ---- alerts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert due now: what the service publishes as ``JourneyAlertRaised``."""

    pilgrim_key: str
    alert_type: AlertType
    alert_id: str
    deadline: datetime
    raised_at: datetime
    operator_code: str | None
    registration_id: str | None
    details: str


def is_resolved(journey: Journey, alert_type: str) -> bool:
    """Whether the event that resolves ``alert_type`` has been seen (for alerts already raised)."""
    if alert_type == "no_show":
        return journey.entered_at is not None
    if alert_type == "no_housing":
        return _housed_since(journey, journey.entered_at)
    if alert_type == "no_exit_after_checkout":
        return journey.exited_at is not None or _housed_since(journey, journey.checked_out_at)
    if alert_type == "overstay":
        return journey.exited_at is not None
    return False


def _housed_since(journey: Journey, since: datetime | None) -> bool:
    return since is not None and journey.checked_in_at is not None and journey.checked_in_at >= since


def overstay_deadline(journey: Journey, thresholds: Thresholds) -> datetime | None:
    """When the pilgrim's allowed stay ends (plus grace); None before entry."""
    if journey.entered_at is None:
        return None
    if journey.visa_valid_until is None or journey.visa_max_stay_days is None:
        end = journey.entered_at + timedelta(days=thresholds.stay_without_visa_days)
    else:
        after_last_day = datetime.combine(journey.visa_valid_until + timedelta(days=1), time(0), UTC)
        end = min(after_last_day, journey.entered_at + timedelta(days=journey.visa_max_stay_days))
    return end + timedelta(hours=thresholds.overstay_grace_hours)


def armed_deadlines(journey: Journey, thresholds: Thresholds) -> dict[AlertType, datetime]:
    """Deadline of every alert type armed and unresolved, and not raised yet."""
    out: dict[AlertType, datetime] = {}
    if journey.inbound_arrival_at is not None and journey.entered_at is None:
        out["no_show"] = journey.inbound_arrival_at + timedelta(hours=thresholds.no_show_hours)
    if journey.entered_at is not None and not _housed_since(journey, journey.entered_at):
        out["no_housing"] = journey.entered_at + timedelta(hours=thresholds.housing_hours)
    if (
        journey.checked_out_at is not None
        and journey.exited_at is None
        and not _housed_since(journey, journey.checked_out_at)
    ):
        out["no_exit_after_checkout"] = journey.checked_out_at + timedelta(hours=thresholds.exit_after_checkout_hours)
    stay_end = overstay_deadline(journey, thresholds)
    if stay_end is not None and journey.exited_at is None:
        out["overstay"] = stay_end
    return {t: d for t, d in out.items() if t not in journey.alerts}


def due_alerts(journey: Journey, now: datetime, thresholds: Thresholds) -> list[Alert]:
    """The alerts whose deadline ``now`` has passed (``now > deadline``), each type at most once."""
    return [
        Alert(
            journey.pilgrim_key,
            kind,
            alert_id(journey.pilgrim_key, kind),
            deadline,
            now,
            journey.operator_code,
            journey.registration_id,
            _details(journey, kind, deadline, thresholds),
        )
        for kind, deadline in armed_deadlines(journey, thresholds).items()
        if now > deadline
    ]


def mark_raised(journey: Journey, alerts: Iterable[Alert]) -> Journey:
    """The journey remembering ``alerts`` as raised (so they are never raised again)."""
    recorded = dict(journey.alerts)
    for alert in alerts:
        recorded.setdefault(alert.alert_type, RaisedAlert(alert.alert_id, alert.deadline, alert.raised_at))
    return dataclasses.replace(journey, alerts=recorded)


def _details(journey: Journey, kind: AlertType, deadline: datetime, thresholds: Thresholds) -> str:
    if kind == "no_show":
        return (
            f"No border entry {thresholds.no_show_hours:g} h after the inbound flight's arrival at "
            f"{_iso_or_none(journey.inbound_arrival_at)}."
        )
    if kind == "no_housing":
        return (
            f"No hotel check-in {thresholds.housing_hours:g} h after entering the Kingdom at "
            f"{_iso_or_none(journey.entered_at)}."
        )
    if kind == "no_exit_after_checkout":
        return (
            f"No border exit {thresholds.exit_after_checkout_hours:g} h after checking out of the hotel at "
            f"{_iso_or_none(journey.checked_out_at)}."
        )
    visa = (
        f"visa valid until {journey.visa_valid_until}, stay up to {journey.visa_max_stay_days} days"
        if journey.visa_valid_until is not None
        else f"no visa seen, {thresholds.stay_without_visa_days} days assumed"
    )
    return f"Still in the Kingdom after the allowed stay ended at {_iso(deadline)} ({visa})."


def occurred_at(event: Mapping[str, Any]) -> datetime:
    """The event's ``envelope.occurred_at`` as a UTC instant."""
    return _instant(event["envelope"]["occurred_at"])


def journey_document(journey: Journey, thresholds: Thresholds | None = None) -> dict[str, Any]:
    """What the API and the CLI show: the summary fields, the timeline (which agency reported what,
    when), every alert raised, the open ones, and (given thresholds) the deadlines still pending."""
    doc = journey.to_dict()
    doc.pop("v")
    doc.pop("partition")
    doc["open_alerts"] = journey.open_alerts()
    if thresholds is not None:
        doc["pending_deadlines"] = {t: _iso(d) for t, d in sorted(armed_deadlines(journey, thresholds).items())}
    return doc


# ---- the lag-aware clock ----------------------------------------------------------------------


def effective_now(clock_now: datetime, lagging: bool, latest_read: datetime | None) -> datetime | None:
    """The time alerts are judged at: ``clock_now``, but while the reader is behind the end of the
    journey topic never later than the latest occurred_at it has read (None: nothing read yet, so
    nothing can be judged)."""
    if not lagging:
        return clock_now
    if latest_read is None:
        return None
    return min(clock_now, latest_read)


# ---- which pilgrims to look at ----------------------------------------------------------------


FORGET = "forget"
"""The :class:`DeadlineIndex` kind for the moment a finished journey may be forgotten."""


def forget_at(journey: Journey, retention: timedelta | None) -> datetime | None:
    """When a journey may be forgotten: ``retention`` after the pilgrim's exit, once no alert is
    open (None: never, e.g. a pilgrim still in the country or an open overstay)."""
    if retention is None or journey.exited_at is None or journey.open_alerts():
        return None
    return journey.exited_at + retention


class DeadlineIndex:
    """A heap of (deadline, pilgrim_key, alert type): which journeys may have an alert due.

    :meth:`schedule` replaces a pilgrim's deadlines (stale heap entries are skipped when popped);
    :meth:`due` pops the pilgrims with a deadline before ``now``. The caller re-examines those
    journeys and schedules them again with what is still armed.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str, str]] = []
        self._current: dict[str, dict[str, datetime]] = {}
        self._live = 0  # deadlines in _current (kept, not counted: schedule runs once per event)

    def schedule(self, pilgrim_key: str, deadlines: Mapping[str, datetime]) -> None:
        previous = self._current.pop(pilgrim_key, {})
        self._live += len(deadlines) - len(previous)
        if deadlines:
            self._current[pilgrim_key] = dict(deadlines)
        for kind, deadline in deadlines.items():
            if previous.get(kind) != deadline:
                heapq.heappush(self._heap, (deadline, pilgrim_key, kind))
        if len(self._heap) > 4 * max(64, self.size()):
            self._compact()

    def due(self, now: datetime, limit: int | None = None) -> set[str]:
        """Pilgrims with a scheduled deadline before ``now`` (their entries are removed); at most
        ``limit`` pilgrims, the earliest deadlines first (the rest stay for the next call)."""
        keys: set[str] = set()
        while self._heap and self._heap[0][0] < now and (limit is None or len(keys) < limit):
            deadline, key, kind = heapq.heappop(self._heap)
            scheduled = self._current.get(key)
            if scheduled is None or scheduled.get(kind) != deadline:
                continue  # replaced or removed since
            del scheduled[kind]
            self._live -= 1
            if not scheduled:
                del self._current[key]
            keys.add(key)
        return keys

    def next_deadline(self) -> datetime | None:
        while self._heap:
            deadline, key, kind = self._heap[0]
            if self._current.get(key, {}).get(kind) == deadline:
                return deadline
            heapq.heappop(self._heap)
        return None

    def clear(self) -> None:
        self._heap.clear()
        self._current.clear()
        self._live = 0

    def size(self) -> int:
        """Deadlines scheduled (live entries)."""
        return self._live

    def __len__(self) -> int:
        return self.size()

    def _compact(self) -> None:
        self._heap = [(d, k, t) for k, kinds in self._current.items() for t, d in kinds.items()]
        heapq.heapify(self._heap)


# ---- time helpers -----------------------------------------------------------------------------


def _instant(value: Any) -> datetime:
    """A UTC-aware datetime from a decoded Avro timestamp (datetime), epoch millis or ISO text."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int):
        return date(1970, 1, 1) + timedelta(days=value)
    return date.fromisoformat(str(value))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_or_none(value: datetime | None) -> str | None:
    return _iso(value) if value is not None else None
