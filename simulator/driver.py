"""Delivering a season to a running hub, through the connectors' own transports, on a simulated clock.

Contract of :func:`run_season`:

* Hour by simulated hour, from the plan's first hour to its end: render the hour's documents
  (:func:`simulator.render.render_hour`), send them, then ``clock.advance_to(end of the hour)``.
  Operators' registration JSON, immigration batches and hotel notifications are POSTed to the
  hub's ingest endpoints with the agency's ``X-API-Key`` and an ``Idempotency-Key`` (a retry
  repeats the same event ids); PAXLST manifests and flight-status files are dropped into the
  airlines inbox, bulk registration CSVs into the operators inbox (POSTed when there is none).
  Never straight into Kafka.
* Files are written under a temporary name (``.<name>.part``, which inboxes skip) and renamed,
  so an inbox only ever sees complete files; names start with the run id, unique per run, and
  sort in delivery order.
* HTTP: httpx with timeouts; 503 (Kafka did not acknowledge), 429, 502, 504 and connection errors
  are retried with exponential backoff (``Retry-After`` honoured) up to :data:`MAX_ATTEMPTS`
  times, after which :class:`DeliveryFailed` is raised. Other answers are final: 202/207 count the
  rejected records the hub reports; 400 counts the whole document as rejected; 401/413/422 are
  logged and counted in ``http_statuses``.
* ``rate`` > 0 caps the average number of events sent per real second (0: as fast as the hub
  answers). ``progress`` gets one line per simulated day.
* After the last hour: ``wait_idle()`` (if given: the caller's "the hub has read everything"),
  then rejections reported in the dropped files' ``.error.json`` are collected, then the clock
  jumps to :attr:`SeasonPlan.final_clock` (end of season + 100 days) so that every due alert fires.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from time import monotonic, sleep

import httpx

from simulator.render import Delivery, render_hour, steps_by_hour
from simulator.season import PilgrimStep, SeasonPlan

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TIMEOUT = httpx.Timeout(120.0, connect=10.0)
AGENCIES = ("operators", "immigration", "hotels", "airlines")


class DeliveryFailed(RuntimeError):
    """The hub did not take a document after every retry; the season cannot go on."""


class SimClock:
    """The simulation's clock: thread-safe, aware (UTC), only moves forward."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance_to(self, t: datetime) -> None:
        """Move the clock to ``t``; a ``t`` in the past leaves it where it is."""
        if t.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        with self._lock:
            if t > self._now:
                self._now = t


@dataclass
class Targets:
    """Where to deliver: the hub's HTTP base URL, endpoint and API key per agency, inboxes per agency."""

    base_url: str
    http: dict[str, tuple[str, str]]
    """agency -> (path, api_key), e.g. ``{"operators": ("/ingest/operators", "demo-...")}``."""
    inboxes: dict[str, Path]
    """agency -> inbox directory for file drops (``airlines``; ``operators`` for bulk CSV)."""


@dataclass
class SeasonResult:
    pilgrims: int
    events_sent: dict[str, int]
    """Per agency: hub events the sent documents stand for (rejected records included)."""
    http_statuses: dict[int, int]
    """Final HTTP status -> number of requests (retried attempts not counted)."""
    files_dropped: int
    rejected_records: int
    """Reported by the hub: in HTTP answers, and in ``.error.json`` of dropped files found at the end."""
    wall_seconds: float
    final_clock: datetime


@dataclass
class _Tally:
    events_sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AGENCIES, 0))
    http_statuses: dict[int, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    rejected: int = 0

    @property
    def total_sent(self) -> int:
        return sum(self.events_sent.values())


class _Sender:
    """Sends one delivery through its transport and counts what happened."""

    def __init__(self, targets: Targets, client: httpx.Client, tally: _Tally) -> None:
        self.targets = targets
        self.client = client
        self.tally = tally

    def send(self, delivery: Delivery) -> None:
        agency = delivery.agency
        if delivery.feed in ("paxlst", "flight-status") or (
            delivery.feed == "operators-csv" and "operators" in self.targets.inboxes
        ):
            self.drop(self.targets.inboxes[agency], delivery)
        else:
            self.post(delivery)
        self.tally.events_sent[agency] += delivery.events

    def drop(self, inbox: Path, delivery: Delivery) -> None:
        inbox.mkdir(parents=True, exist_ok=True)
        partial = inbox / f".{delivery.name}.part"
        partial.write_bytes(delivery.body)
        os.replace(partial, inbox / delivery.name)
        self.tally.files.append(inbox / delivery.name)

    def post(self, delivery: Delivery) -> None:
        path, api_key = self.targets.http[delivery.agency]
        headers = {
            "X-API-Key": api_key,
            "Idempotency-Key": delivery.name,
            "Content-Type": delivery.content_type,
        }
        response: httpx.Response | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self.client.post(path, content=delivery.body, headers=headers)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise DeliveryFailed(f"POST {path} ({delivery.name}): {exc}") from exc
                logger.warning("POST %s failed (%s), retry %d", path, exc, attempt)
                sleep(_backoff(attempt, None))
                continue
            if response.status_code not in RETRY_STATUSES:
                break
            if attempt == MAX_ATTEMPTS:
                raise DeliveryFailed(
                    f"POST {path} ({delivery.name}): HTTP {response.status_code} after {attempt} tries"
                )
            logger.warning("POST %s answered %d, retry %d", path, response.status_code, attempt)
            sleep(_backoff(attempt, response.headers.get("retry-after")))
        assert response is not None
        status = response.status_code
        self.tally.http_statuses[status] = self.tally.http_statuses.get(status, 0) + 1
        if status in (202, 207):
            rejected = _json(response).get("rejected", 0)
            self.tally.rejected += rejected if isinstance(rejected, int) else 0
        elif status == 400:
            self.tally.rejected += delivery.events
            logger.warning("POST %s (%s): whole document rejected: %s", path, delivery.name, response.text[:300])
        else:
            logger.error("POST %s (%s): HTTP %d %s", path, delivery.name, status, response.text[:300])


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after), 30.0)
    return float(min(0.2 * 2 ** (attempt - 1), 10.0))


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _file_rejections(files: list[Path]) -> int:
    """Rejected records listed in the ``.error.json`` the hub wrote beside dropped files (moved ones only)."""
    count = 0
    for path in files:
        for folder in ("processed", "rejected"):
            report = path.parent / folder / f"{path.name}.error.json"
            if report.is_file():
                try:
                    count += len(json.loads(report.read_text()).get("rejections", []))
                except (OSError, ValueError):
                    logger.warning("unreadable rejection report %s", report)
                break
    return count


class _Presence:
    """How many pilgrims are in the country at a time (entered, not yet left), from the plan."""

    def __init__(self, plan: SeasonPlan) -> None:
        steps = [s for s in plan.steps if isinstance(s, PilgrimStep)]
        self.entries = sorted(s.at for s in steps if s.kind == "entry")
        self.exits = sorted(s.at for s in steps if s.kind == "exit")

    def at(self, moment: datetime) -> int:
        return bisect.bisect_right(self.entries, moment) - bisect.bisect_right(self.exits, moment)


def run_season(
    plan: SeasonPlan,
    targets: Targets,
    clock: SimClock,
    rate: float = 0.0,
    progress: Callable[[str], None] | None = None,
    wait_idle: Callable[[], None] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> SeasonResult:
    """Deliver ``plan`` to the hub at ``targets`` on ``clock``; see the module docstring.

    ``transport`` replaces httpx's network transport (tests pass an ``httpx.MockTransport``).
    """
    for agency in ("operators", "immigration", "hotels"):
        if agency not in targets.http:
            raise ValueError(f"targets.http has no endpoint for {agency}")
    if "airlines" not in targets.inboxes:
        raise ValueError("targets.inboxes has no inbox for airlines (PAXLST and flight status are file drops)")
    if rate < 0:
        raise ValueError("rate must be >= 0 (0: as fast as possible)")
    run_id = f"sim{plan.seed}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    tally = _Tally()
    presence = _Presence(plan)
    began = monotonic()
    logger.info("season run %s: %d pilgrims, %d steps", run_id, len(plan.pilgrims), len(plan.steps))
    with httpx.Client(base_url=targets.base_url, timeout=TIMEOUT, transport=transport) as client:
        sender = _Sender(targets, client, tally)
        for number, (hour, steps) in enumerate(steps_by_hour(plan)):
            for delivery in render_hour(plan, steps, hour, f"{run_id}-h{number:05d}"):
                if rate > 0:
                    ahead = tally.total_sent / rate - (monotonic() - began)
                    if ahead > 0:
                        sleep(ahead)
                sender.send(delivery)
            end_of_hour = hour + timedelta(hours=1)
            clock.advance_to(end_of_hour)
            if progress is not None and (end_of_hour.hour == 0 or end_of_hour >= plan.end):
                sent = ", ".join(f"{a} {n}" for a, n in tally.events_sent.items())
                progress(
                    f"{(end_of_hour - timedelta(seconds=1)).date().isoformat()}  "
                    f"in country {presence.at(end_of_hour):6d}  events sent {tally.total_sent:8d} ({sent})  "
                    f"rejected so far {tally.rejected}"
                )
    if wait_idle is not None:
        wait_idle()
    rejected = tally.rejected + _file_rejections(tally.files)
    clock.advance_to(plan.final_clock)
    if progress is not None:
        progress(f"clock moved to {plan.final_clock.isoformat()} (end of season + 100 days): every deadline passed")
    return SeasonResult(
        pilgrims=len(plan.pilgrims),
        events_sent=dict(tally.events_sent),
        http_statuses=dict(sorted(tally.http_statuses.items())),
        files_dropped=len(tally.files),
        rejected_records=rejected,
        wall_seconds=monotonic() - began,
        final_clock=clock.now(),
    )
