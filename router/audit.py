"""The delivery audit: who received which fields about which pilgrim, and when.

A router writes one audit record per handled batch (in the batch's transaction, for Kafka targets),
compact because it is written for every delivery of the season::

    {"kind": "deliveries", "at": "<ISO 8601 UTC>",
     "subscribers": {"<id>": {"agency": ..., "target": "kafka|webhook", "fields": {"<EventType>": [paths]}}},
     "entries": [["<subscriber>", "<event_id>", "<EventType>", "<pilgrim_key>", "delivered|dead_lettered"], ...]}

``fields`` are the dotted paths of the subscriber's projected schema for that event type (the fields
it receives, null or not). :func:`expand` turns a record back into one dict per delivery, the view
``hub audit`` and :func:`router.dlq.audit_trail` show; records of the older one-dict-per-entry form
are read too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

AUDIT_BATCH = 1000
"""Entries per audit record: well under Kafka's 1 MiB record limit."""

Send = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]


class AuditBatch:
    """The audit entries of one batch, written as few records (:data:`AUDIT_BATCH` entries each)."""

    __slots__ = ("entries", "key", "subscribers", "topic")

    def __init__(self, topic: str, key: str) -> None:
        self.topic = topic
        self.key = key.encode()
        self.entries: list[tuple[str, str, str, str | None, str]] = []
        self.subscribers: dict[str, dict[str, Any]] = {}

    def add(
        self,
        subscriber: str,
        agency: str,
        target: str,
        event_type: str,
        envelope: dict[str, Any],
        outcome: str,
        fields: Callable[[str], list[str]],
    ) -> None:
        """One delivery (``fields(event_type)`` gives what was delivered) or dead letter."""
        self.entries.append((subscriber, envelope["event_id"], event_type, envelope.get("pilgrim_key"), outcome))
        known = self.subscribers.get(subscriber)
        if known is None:
            known = self.subscribers[subscriber] = {"agency": agency, "target": target, "fields": {}}
        if outcome == "delivered" and event_type not in known["fields"]:
            known["fields"][event_type] = fields(event_type)

    def records(self) -> list[Send]:
        at = datetime.now(UTC).isoformat()
        out: list[Send] = []
        for i in range(0, len(self.entries), AUDIT_BATCH):
            chunk = self.entries[i : i + AUDIT_BATCH]
            named = {entry[0] for entry in chunk}
            value = {
                "kind": "deliveries",
                "at": at,
                "subscribers": {sub: info for sub, info in self.subscribers.items() if sub in named},
                "entries": chunk,
            }
            out.append((self.topic, json.dumps(value, separators=(",", ":")).encode(), self.key, []))
        return out


def expand(value: dict[str, Any]) -> list[dict[str, Any]]:
    """An audit record as one dict per delivery, dead letter, replay or admin query."""
    if value.get("kind") != "deliveries":
        return [value]
    subscribers: dict[str, dict[str, Any]] = value.get("subscribers") or {}
    expanded: list[dict[str, Any]] = []
    for entry in value.get("entries") or ():
        if isinstance(entry, dict):  # the older form: every entry complete
            expanded.append(entry)
            continue
        subscriber, event_id, event_type, pilgrim_key, outcome = entry
        info = subscribers.get(subscriber, {})
        expanded.append(
            {
                "kind": "delivery",
                "subscriber": subscriber,
                "agency": info.get("agency"),
                "target": info.get("target"),
                "event_id": event_id,
                "event_type": event_type,
                "pilgrim_key": pilgrim_key,
                "fields": info.get("fields", {}).get(event_type, []) if outcome == "delivered" else [],
                "outcome": outcome,
                "at": value.get("at"),
            }
        )
    return expanded
