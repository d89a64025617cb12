"""Polling transport: the hub GETs an agency endpoint page by page, with a cursor.

Protocol: ``GET <url>?<cursor_param>=<cursor>`` (no cursor on the very first poll). ``200`` with a
body is a page in the connector's format and carries the next cursor in a response header
(``X-Next-Cursor`` by default); ``204`` or an empty body means nothing new yet. Transient failures
(connection errors, timeouts, 5xx, 429 honouring ``Retry-After``) are retried with exponential
backoff and jitter, ``max_attempts`` times per poll; other 4xx answers are logged and counted and
the poll is tried again after ``interval_seconds``.

Each page is published with its checkpoint (cursor, next cursor) in one Kafka transaction; at
start the runner resumes from the last committed next cursor, so a restart neither skips nor
repeats a page. A page whose checkpoint already exists (same cursor polled again because the agency
gave no next cursor) is not published twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import Counter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from connectors.base import PollingTransport
from connectors.checkpoints import CheckpointStore
from connectors.runtime import IngestResult, IngestRuntime
from streaming.kafka import StreamingError

logger = logging.getLogger(__name__)

POLLS = Counter("hub_polling_requests", "Polls of agency endpoints, by outcome.", ["connector", "outcome"])


@dataclass
class TransientPollError(Exception):
    """Worth retrying: the agency or the network failed for now."""

    reason: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.reason


class PermanentPollError(Exception):
    """The agency refused the request (4xx other than 429): retrying the same request will not help."""


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientPollError) and exc.retry_after is not None:
        return min(exc.retry_after, 300.0)
    return float(wait_random_exponential(multiplier=0.5, max=30)(state))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class PollingRunner:
    """Polls one connector's agency endpoint."""

    def __init__(self, runtime: IngestRuntime, transport: PollingTransport, checkpoints: CheckpointStore,
                 client: httpx.Client | None = None) -> None:
        self.runtime = runtime
        self.transport = transport
        self.checkpoints = checkpoints
        headers = {"Authorization": f"Bearer {transport.token.get_secret_value()}"} if transport.token else {}
        self.client = client or httpx.Client(timeout=transport.timeout_seconds, headers=headers)
        self._done: dict[str, dict[str, Any]] | None = None
        self.cursor: str | None = None

    def _resume(self) -> None:
        self._done = self.checkpoints.load()
        for state in self._done.values():  # write order: the last one is where we are
            if state.get("next_cursor"):
                self.cursor = state["next_cursor"]

    def _get(self) -> httpx.Response:
        params = {self.transport.cursor_param: self.cursor} if self.cursor else {}
        try:
            response = self.client.get(self.transport.url, params=params)
        except httpx.TransportError as exc:
            raise TransientPollError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientPollError(f"HTTP {response.status_code}", _retry_after(response))
        if response.status_code >= 400:
            raise PermanentPollError(f"HTTP {response.status_code}: {response.text[:200]}")
        if len(response.content) > self.transport.max_body_bytes:
            raise PermanentPollError(f"page of {len(response.content)} bytes exceeds {self.transport.max_body_bytes}")
        return response

    def poll_once(self) -> IngestResult | None:
        """One poll (with retries). Returns None when there was nothing new."""
        if self._done is None:
            self._resume()
        assert self._done is not None
        retrying = Retrying(
            stop=stop_after_attempt(self.transport.max_attempts),
            wait=_wait,
            retry=retry_if_exception_type(TransientPollError),
            reraise=True,
        )
        response = retrying(self._get)
        if response.status_code == 204 or not response.content.strip():
            POLLS.labels(self.runtime.name, "empty").inc()
            return None
        next_cursor = response.headers.get(self.transport.next_cursor_header)
        input_id = f"poll:{self.runtime.name}:{self.cursor or 'start'}"
        if input_id in self._done:
            POLLS.labels(self.runtime.name, "repeat").inc()
            logger.warning("%s: page at cursor %s already published and no new cursor given", self.runtime.name,
                           self.cursor)
            return None
        checkpoint = self.checkpoints.for_input(input_id, cursor=self.cursor, next_cursor=next_cursor)
        result = self.runtime.ingest(response.content, input_id, checkpoint=checkpoint)
        self._done[input_id] = {"outcome": result.outcome, "next_cursor": next_cursor}
        POLLS.labels(self.runtime.name, "page").inc()
        if next_cursor:
            self.cursor = next_cursor
        return result

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set: pages back to back, pausing when there is nothing new."""
        while not stop.is_set():
            try:
                got = self.poll_once()
            except (TransientPollError, PermanentPollError) as exc:
                POLLS.labels(self.runtime.name, "failed").inc()
                logger.warning("polling %s failed: %s", self.runtime.name, exc)
                got = None
            except StreamingError as exc:
                logger.warning("polling %s: Kafka: %s; retrying", self.runtime.name, exc)
                self._done = None
                got = None
            if got is None:
                stop.wait(self.transport.interval_seconds)
