"""Delivery errors: the one hierarchy that decides what the router retries.

    DeliveryError
    ├── TransientDeliveryError   worth retrying: timeout, connection refused/reset, HTTP 5xx,
    │                            HTTP 429 (``retry_after`` carries the Retry-After seconds), Kafka
    │                            unavailable. Retried with exponential backoff and jitter within the
    │                            subscriber's retry budget; when the budget is spent, dead-lettered.
    └── PermanentDeliveryError   retrying cannot help: HTTP 4xx other than 408/429, an event the
                                 subscriber's schema cannot hold. Dead-lettered at once.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """A delivery to a subscriber's target failed."""


class TransientDeliveryError(DeliveryError):
    """Retry later; ``retry_after`` (seconds) when the target said how long to wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Do not retry: dead-letter now."""
