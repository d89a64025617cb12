"""HTTP webhook target: POST each journey event as signed JSON to a subscriber's URL.

Request (one per ``WebhookSender.deliver``)::

    POST <url>                      redirects are never followed
    Content-Type: application/json
    webhook-id: <event_id>          the idempotency key: redeliveries of an event reuse it
    Idempotency-Key: <event_id>     the same key, for receivers that read the IETF header
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64(HMAC-SHA256(secret_bytes, b"<event_id>.<timestamp>." + body))>
    <static headers from the config>

    body: compact UTF-8 JSON; date/datetime/time as ISO 8601, bytes as base64, Decimal and UUID
          as strings.

Signing follows Standard Webhooks (https://www.standardwebhooks.com/). ``secret_bytes`` is the
base64-decoded part after ``whsec_``; a secret without that prefix is used as its raw UTF-8 bytes.
Receivers check a request with ``verify_signature``.

Outcomes, mapped onto the hierarchy in ``router.errors``::

    2xx                                   delivered, return
    timeout, connection/network error,    TransientDeliveryError
    HTTP 5xx, HTTP 408
    HTTP 429 (and 503) with Retry-After   TransientDeliveryError, retry_after = seconds to wait
                                          (Retry-After as delay-seconds or as an HTTP-date)
    HTTP 3xx, other 4xx, a payload that   PermanentDeliveryError
    cannot be JSON-encoded

Error messages name the URL (without query string), the event id, the status and at most 200
characters of the response body. The secret and the static header values never appear in them:
they are redacted even when the subscriber echoes them back.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import logging
import math
import re
import time as _time
from collections.abc import Callable, Mapping
from datetime import UTC, date
from datetime import time as time_of_day
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from router.errors import PermanentDeliveryError, TransientDeliveryError

logger = logging.getLogger(__name__)

WHSEC_PREFIX = "whsec_"
EXCERPT_CHARS = 200
_EXCERPT_READ_BYTES = 4096
# Header values shorter than this are not redacted from messages: they cannot be secrets, and
# redacting e.g. "2" would mangle every status code.
_REDACT_MIN_CHARS = 4

# Headers the sender owns; a static header may not replace them.
_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "transfer-encoding",
        "host",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "idempotency-key",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
_TIMESTAMP = re.compile(r"^[0-9]{1,15}$")
_DELAY_SECONDS = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key for ``secret``: base64-decoded after ``whsec_``, else the raw UTF-8 bytes.

    Raises ValueError (without echoing the secret) when it is empty or its base64 part is invalid.
    """
    if secret.startswith(WHSEC_PREFIX):
        encoded = secret[len(WHSEC_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"the part after {WHSEC_PREFIX!r} is not valid base64") from None
    else:
        key = secret.encode("utf-8")
    if not key:
        raise ValueError("the secret is empty")
    return key


class WebhookTarget(BaseModel):
    """Deliver to the subscriber's HTTP endpoint as signed JSON (Standard Webhooks)."""

    # Inputs stay out of validation errors: they may hold the secret or header values.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["webhook"] = "webhook"
    url: str = Field(
        description="The subscriber's endpoint: an absolute http:// or https:// URL, without user:password@ "
        "(put credentials in `headers`). Redirects are not followed.",
    )
    secret: SecretStr = Field(
        description="Signing secret shared with the subscriber. Standard Webhooks form `whsec_<base64>` "
        "(the HMAC key is the decoded bytes; 24-64 random bytes recommended), or any other string, whose "
        "UTF-8 bytes are the key.",
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds allowed for each of connecting, sending and waiting for the response.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="Extra static headers sent with every request, e.g. an Authorization token. Values are "
        "never logged. The signing, idempotency and content headers cannot be overridden.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise ValueError("not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            raise ValueError("scheme must be http or https")
        if not parsed.host:
            raise ValueError("URL has no host")
        if parsed.userinfo:
            raise ValueError("URL must not carry user:password@; send credentials in `headers`")
        return url

    @field_validator("secret")
    @classmethod
    def _usable_secret(cls, secret: SecretStr) -> SecretStr:
        secret_bytes(secret.get_secret_value())
        return secret

    @field_validator("headers")
    @classmethod
    def _static_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the sender and cannot be overridden")
            if not _HEADER_VALUE.match(value):
                raise ValueError(f"the value of header {name!r} must be printable ASCII on one line")
        return headers


class WebhookSender:
    """Delivers events to one subscription's webhook. Build once per subscription; ``close()`` when done.

    ``client`` is used as given (the caller keeps ownership and closes it); without one the sender
    builds and owns its own. ``clock`` (unix seconds) stamps requests and reads HTTP-date Retry-After.
    """

    def __init__(
        self,
        target: WebhookTarget,
        client: httpx.Client | None = None,
        *,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        self.target = target
        self._key = secret_bytes(target.secret.get_secret_value())
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client()
        self._clock = clock
        self._timeout = httpx.Timeout(target.timeout_seconds)
        parsed = httpx.URL(target.url)
        self._safe_url = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}{parsed.path}"
        secret = target.secret.get_secret_value()
        redact = {secret, secret.removeprefix(WHSEC_PREFIX)}
        redact.update(v for v in target.headers.values() if len(v.strip()) >= _REDACT_MIN_CHARS)
        self._redact = sorted((r for r in redact if r), key=len, reverse=True)

    def __repr__(self) -> str:
        return f"WebhookSender({self._safe_url!r})"

    def deliver(self, event_id: str, payload: Mapping[str, Any], timestamp: int | None = None) -> None:
        """POST ``payload`` signed under ``event_id``; return on 2xx, else raise a DeliveryError.

        ``timestamp`` (unix seconds) defaults to now. Raises TransientDeliveryError or
        PermanentDeliveryError as the module docstring maps them.
        """
        where = f"webhook {self._safe_url}: event {event_id}"
        if not event_id or not _HEADER_VALUE.match(event_id):
            raise PermanentDeliveryError(f"webhook {self._safe_url}: event id must be non-empty printable ASCII")
        try:
            body = encode_body(payload)
        except (TypeError, ValueError) as exc:
            raise PermanentDeliveryError(f"{where}: payload is not JSON-encodable: {exc}") from None
        sent_at = int(self._clock()) if timestamp is None else timestamp
        request = self._client.build_request(
            "POST",
            self.target.url,
            content=body,
            headers=self._headers(event_id, sent_at, body),
            timeout=self._timeout,
        )
        try:
            response = self._client.send(request, stream=True, follow_redirects=False)
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            raise PermanentDeliveryError(f"{where}: request rejected before sending ({type(exc).__name__})") from None
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(f"{where}: timed out ({type(exc).__name__}: {self._scrub(str(exc))})") from exc
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"{where}: {type(exc).__name__}: {self._scrub(str(exc))}") from exc
        try:
            self._raise_for_status(where, response)
        finally:
            response.close()
        logger.debug("%s: delivered (HTTP %d)", where, response.status_code)

    def close(self) -> None:
        """Close the HTTP client if this sender built it; an injected client is left to its owner."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _headers(self, event_id: str, sent_at: int, body: bytes) -> dict[str, str]:
        signed = f"{event_id}.{sent_at}.".encode() + body
        signature = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest()).decode("ascii")
        return {
            **self.target.headers,
            "Content-Type": "application/json",
            "webhook-id": event_id,
            "Idempotency-Key": event_id,
            "webhook-timestamp": str(sent_at),
            "webhook-signature": f"v1,{signature}",
        }

    def _raise_for_status(self, where: str, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"{where}: HTTP {status} {response.reason_phrase}".rstrip()
        excerpt = self._excerpt(response)
        if excerpt:
            message = f"{message}: {excerpt}"
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            raise TransientDeliveryError(message, retry_after=retry_after)
        if status >= 500 or status == 408:
            raise TransientDeliveryError(message)
        raise PermanentDeliveryError(message)

    def _excerpt(self, response: httpx.Response) -> str:
        """The first ≤200 characters of the body, whitespace collapsed, secrets redacted."""
        raw = bytearray()
        try:
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) >= _EXCERPT_READ_BYTES:
                    break
        except httpx.HTTPError as exc:
            if not raw:
                return f"<body unreadable: {type(exc).__name__}>"
        text = " ".join(self._scrub(raw[:_EXCERPT_READ_BYTES].decode("utf-8", errors="replace")).split())
        return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"

    def _scrub(self, text: str) -> str:
        for secret in self._redact:
            text = text.replace(secret, "***")
        return text


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """``payload`` as compact UTF-8 JSON, keys in the payload's order. Raises TypeError/ValueError."""
    return json.dumps(
        dict(payload), separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_value
    ).encode("utf-8")


def _json_value(value: object) -> object:
    if isinstance(value, date | time_of_day):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.match(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """True when ``headers`` carry a valid ``v1`` signature of ``body`` made within ``tolerance_s`` of ``now``.

    For receivers: pass the raw request body and headers (names matched case-insensitively). The
    timestamp may be off by at most ``tolerance_s`` in either direction (replay window); any one of
    the space-separated ``v1,<base64>`` signatures may match, compared in constant time. Raises
    ValueError only for an unusable ``secret``; a bad request is simply False.
    """
    key = secret_bytes(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "").strip()
    if not msg_id or not _TIMESTAMP.match(stamp):
        return False
    current = _time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    matched = False
    for candidate in lowered.get("webhook-signature", "").split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched |= hmac.compare_digest(expected, signature)
    return matched
