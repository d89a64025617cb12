"""Dead letters and the delivery audit: list, show, replay, and "who received what about whom".

``hub dlq list|show|replay`` read the dead-letter topic to its end and select entries by subscriber,
event type, time window (when dead-lettered) and pilgrim key. ``replay`` puts the selected entries
on the replay topic addressed to their subscriber (header ``hub_replay_for``); the subscriber's
worker delivers them again like new events (a failure dead-letters them again, with the original
position kept). Each replay is recorded in the audit topic. ``--dry-run`` only lists.

``hub audit PILGRIM_KEY`` reads the audit topic (router workers write one record per delivered
batch, holding an entry per event; replays one record each) and answers who received which fields
about this pilgrim, when, and with which outcome.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from router.audit import expand
from router.engine import REPLAY_HEADER
from streaming.kafka import ClientSettings, Producer, Record, read_to_end


@dataclass(frozen=True)
class DeadLetterEntry:
    record: Record

    def header(self, name: str) -> str:
        return (self.record.header(name) or b"").decode(errors="replace")

    @property
    def subscriber(self) -> str:
        return self.header("hub_dlq_subscriber")

    @property
    def event_type(self) -> str:
        return self.header("ce_type").rsplit(".", 1)[-1]

    @property
    def pilgrim_key(self) -> str:
        return (self.record.key or b"").decode(errors="replace")

    @property
    def at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.header("hub_dlq_at"))
        except ValueError:
            return None

    def summary(self) -> dict[str, Any]:
        return {
            "offset": f"{self.record.partition}/{self.record.offset}",
            "at": self.header("hub_dlq_at"),
            "subscriber": self.subscriber,
            "event_type": self.event_type,
            "event_id": self.header("ce_id"),
            "pilgrim_key": self.pilgrim_key,
            "attempts": self.header("hub_dlq_attempts"),
            "error": self.header("hub_dlq_error"),
            "original": self.header("hub_dlq_original"),
        }


@dataclass(frozen=True)
class Selection:
    subscriber: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    pilgrim_key: str | None = None

    def matches(self, entry: DeadLetterEntry) -> bool:
        if self.subscriber and entry.subscriber != self.subscriber:
            return False
        if self.event_type and entry.event_type != self.event_type:
            return False
        if self.pilgrim_key and entry.pilgrim_key != self.pilgrim_key:
            return False
        at = entry.at
        if self.since and (at is None or at < self.since):
            return False
        return not (self.until and (at is None or at >= self.until))


def dead_letters(settings: ClientSettings, topic: str, selection: Selection) -> list[DeadLetterEntry]:
    entries = (DeadLetterEntry(r) for r in read_to_end(settings, topic))
    return [e for e in entries if e.subscriber and selection.matches(e)]


def replay(
    settings: ClientSettings,
    entries: Iterable[DeadLetterEntry],
    replay_topic: str,
    audit_topic: str,
    operator: str,
    out: TextIO = sys.stdout,
    admin: str = "",
) -> int:
    """Put ``entries`` back for their subscribers; record the replay in the audit topic. Returns the count."""
    chosen = list(entries)
    producer = Producer(settings)
    try:
        deliveries = []
        for number, entry in enumerate(chosen, start=1):
            record = entry.record
            headers = [(k, v) for k, v in record.headers if not k.startswith(("hub_dlq_", REPLAY_HEADER))]
            headers += [
                (REPLAY_HEADER, entry.subscriber.encode()),
                ("hub_dlq_original", entry.header("hub_dlq_original").encode()),
                ("hub_replay_of", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ]
            deliveries.append(producer.send(replay_topic, record.value, record.key, headers))
            audit = {
                "kind": "replay",
                "subscriber": entry.subscriber,
                "event_id": entry.header("ce_id"),
                "event_type": entry.event_type,
                "pilgrim_key": entry.pilgrim_key,
                "dead_letter": f"{record.partition}/{record.offset}",
                "operator": operator,
                "admin": admin,
                "at": datetime.now(UTC).isoformat(),
            }
            deliveries.append(producer.send(audit_topic, json.dumps(audit).encode(), record.key, []))
            if number % 100 == 0 or number == len(chosen):
                print(f"replayed {number}/{len(chosen)}", file=out)
        for delivery in deliveries:
            delivery.wait()
    finally:
        producer.close()
    return len(chosen)


def record_admin_query(
    settings: ClientSettings, audit_topic: str, admin: str, query: str, pilgrim_key: str | None = None
) -> None:
    """Put on the audit topic that ``admin`` looked at personal data (``query``: what they asked)."""
    entry = {"kind": "admin_query", "admin": admin, "query": query, "at": datetime.now(UTC).isoformat()}
    if pilgrim_key:
        entry["pilgrim_key"] = pilgrim_key
    producer = Producer(settings)
    try:
        producer.send(audit_topic, json.dumps(entry).encode(), pilgrim_key.encode() if pilgrim_key else None).wait()
    finally:
        producer.close()


def audit_trail(settings: ClientSettings, topic: str, pilgrim_key: str) -> list[dict[str, Any]]:
    """Every delivery, dead letter, replay and admin query recorded for ``pilgrim_key``, oldest first."""
    trail: list[dict[str, Any]] = []
    for record in read_to_end(settings, topic):
        if not record.value:
            continue
        trail.extend(e for e in expand(json.loads(record.value)) if e.get("pilgrim_key") == pilgrim_key)
    return sorted(trail, key=lambda entry: entry.get("at", ""))
