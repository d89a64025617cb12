"""Fakes at the Kafka seam for unit tests (no broker)."""

from __future__ import annotations

from dataclasses import dataclass, field

from streaming.kafka import DeliveryFailed, Written


class FakeDelivery:
    def __init__(self, written: Written | None, error: str | None = None) -> None:
        self._written = written
        self._error = error

    def wait(self, timeout_s: float = 60.0) -> Written:
        if self._error:
            raise DeliveryFailed(self._error)
        assert self._written is not None
        return self._written


@dataclass
class FakeProducer:
    """Records what was sent; ``fail_with`` makes every delivery fail (Kafka down)."""

    sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = field(default_factory=list)
    fail_with: str | None = None

    def send(
        self, topic: str, value: bytes | None, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> FakeDelivery:
        self.sent.append((topic, value, key, list(headers or [])))
        return FakeDelivery(Written(topic, 0, len(self.sent) - 1), self.fail_with)

    def on(self, topic: str) -> list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]]:
        return [s for s in self.sent if s[0] == topic]

    def close(self, timeout_s: float = 10.0) -> None:
        pass
