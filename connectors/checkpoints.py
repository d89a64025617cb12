"""Where each file-drop and polling connector got to, kept in Kafka beside the events.

Checkpoints live in a compacted topic, keyed ``<connector>|<input id>``. The runtime writes an
input's checkpoint in the same Kafka transaction as the input's events and quarantined records,
so after a crash either both are visible (the input is done: skip it) or neither is (do it again):
a restart neither skips nor repeats for read_committed consumers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.runtime import IngestResult
from streaming.kafka import ClientSettings, read_to_end

Send = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]


@dataclass(frozen=True)
class InputCheckpoint:
    """The checkpoint record of one input; ``state`` adds what the transport needs (e.g. next cursor)."""

    topic: str
    connector: str
    input_id: str
    state: dict[str, Any]

    def record(self, result: IngestResult) -> Send:
        value = {
            **self.state,
            "input": self.input_id,
            "outcome": result.outcome,
            "accepted": result.accepted,
            "rejected": len(result.rejections),
            "at": datetime.now(UTC).isoformat(),
        }
        return (self.topic, json.dumps(value).encode(), f"{self.connector}|{self.input_id}".encode(), [])


class CheckpointStore:
    """Reads one connector's checkpoints back at start, and makes new ones."""

    def __init__(self, settings: ClientSettings, topic: str, connector: str) -> None:
        self.settings = settings
        self.topic = topic
        self.connector = connector

    def load(self) -> dict[str, dict[str, Any]]:
        """Latest committed checkpoint per input id of this connector, in write order."""
        prefix = f"{self.connector}|".encode()
        done: dict[str, dict[str, Any]] = {}
        for record in read_to_end(self.settings, self.topic, read_committed=True):
            if record.key and record.key.startswith(prefix) and record.value:
                input_id = record.key[len(prefix):].decode()
                done.pop(input_id, None)
                done[input_id] = json.loads(record.value)
        return done

    def for_input(self, input_id: str, **state: Any) -> InputCheckpoint:
        return InputCheckpoint(self.topic, self.connector, input_id, state)
