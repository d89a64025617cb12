"""Webhook target: Standard Webhooks signing, JSON body, status → error mapping, secret hygiene."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from router.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from router.webhook import WebhookSender, WebhookTarget, parse_retry_after, verify_signature

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
URL = "https://ops.example.org/hooks/journey?tenant=makkah"
TOKEN = "Bearer s3cr3t-static-token"
NOW = 1_750_000_000
EVENT = "evt-7f3c"
PAYLOAD: dict[str, Any] = {"type": "PilgrimRegistered", "pilgrim_key": "pk-1", "group": "JKT-12"}

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and answers with ``response``."""

    def __init__(self, response: httpx.Response | Exception | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.response = response if response is not None else httpx.Response(204)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make_target(**overrides: Any) -> WebhookTarget:
    fields: dict[str, Any] = {"url": URL, "secret": SECRET, "headers": {"Authorization": TOKEN}}
    fields.update(overrides)
    return WebhookTarget(**fields)


def make_sender(handler: Handler, target: WebhookTarget | None = None) -> WebhookSender:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WebhookSender(target or make_target(), client, clock=lambda: float(NOW))


def deliver_error(response: httpx.Response | Exception, payload: dict[str, Any] = PAYLOAD) -> DeliveryError:
    sender = make_sender(Recorder(response))
    with pytest.raises(DeliveryError) as caught:
        sender.deliver(EVENT, payload)
    return caught.value


# --- signing -------------------------------------------------------------------------------------


def test_signature_verifies_with_verify_signature() -> None:
    recorder = Recorder()
    make_sender(recorder).deliver(EVENT, PAYLOAD)
    assert verify_signature(SECRET, recorder.last.headers, recorder.last.content, now=NOW)


def test_signature_equals_independently_computed_hmac() -> None:
    recorder = Recorder()
    make_sender(recorder).deliver(EVENT, PAYLOAD, timestamp=1_700_000_123)
    request = recorder.last
    signed = b"evt-7f3c.1700000123." + request.content
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == f"v1,{expected}"
    assert request.headers["webhook-timestamp"] == "1700000123"


def test_verify_signature_accepts_the_standard_webhooks_reference_vector() -> None:
    # The example from the Standard Webhooks specification: proves interop with other implementations.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    assert verify_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, body, now=1614265330)


def test_secret_without_prefix_is_used_as_raw_utf8_bytes() -> None:
    recorder = Recorder()
    make_sender(recorder, make_target(secret="plain shared secret")).deliver(EVENT, PAYLOAD)
    request = recorder.last
    signed = f"{EVENT}.{NOW}.".encode() + request.content
    expected = base64.b64encode(hmac.new(b"plain shared secret", signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == f"v1,{expected}"
    assert verify_signature("plain shared secret", request.headers, request.content, now=NOW)


def test_request_carries_idempotency_content_type_and_static_headers() -> None:
    recorder = Recorder()
    make_sender(recorder).deliver(EVENT, PAYLOAD)
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["webhook-id"] == EVENT
    assert request.headers["Idempotency-Key"] == EVENT
    assert request.headers["webhook-timestamp"] == str(NOW)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == TOKEN


def test_redelivery_of_an_event_reuses_its_id() -> None:
    recorder = Recorder()
    sender = make_sender(recorder)
    sender.deliver(EVENT, PAYLOAD)
    sender.deliver(EVENT, PAYLOAD)
    assert {r.headers["Idempotency-Key"] for r in recorder.requests} == {EVENT}


def test_timeout_seconds_applies_to_an_injected_client() -> None:
    recorder = Recorder()
    make_sender(recorder, make_target(timeout_seconds=2.5)).deliver(EVENT, PAYLOAD)
    assert recorder.last.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}


# --- verification failures -----------------------------------------------------------------------


def signed_request() -> httpx.Request:
    recorder = Recorder()
    make_sender(recorder).deliver(EVENT, PAYLOAD)
    return recorder.last


def test_tampered_body_fails_verification() -> None:
    request = signed_request()
    tampered = request.content.replace(b"JKT-12", b"JKT-13")
    assert tampered != request.content
    assert not verify_signature(SECRET, request.headers, tampered, now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_timestamp_outside_tolerance_fails_verification(skew: int) -> None:
    request = signed_request()
    assert verify_signature(SECRET, request.headers, request.content, now=NOW + 300)
    assert not verify_signature(SECRET, request.headers, request.content, now=NOW - skew)


def test_wrong_secret_fails_verification() -> None:
    request = signed_request()
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert not verify_signature(other, request.headers, request.content, now=NOW)


def test_tampered_id_or_timestamp_fails_verification() -> None:
    request = signed_request()
    for name, value in (("webhook-id", "evt-other"), ("webhook-timestamp", str(NOW + 1))):
        headers = {**dict(request.headers), name: value}
        assert not verify_signature(SECRET, headers, request.content, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_fails_verification(missing: str) -> None:
    request = signed_request()
    headers = {k: v for k, v in request.headers.items() if k != missing}
    assert not verify_signature(SECRET, headers, request.content, now=NOW)


def test_any_of_several_signatures_may_match_and_header_names_ignore_case() -> None:
    request = signed_request()
    good = request.headers["webhook-signature"]
    headers = {
        "Webhook-Id": request.headers["webhook-id"],
        "WEBHOOK-TIMESTAMP": request.headers["webhook-timestamp"],
        "Webhook-Signature": f"v1,AAAA v2,{good[3:]} v1,!!notbase64 {good}",
    }
    assert verify_signature(SECRET, headers, request.content, now=NOW)
    headers["Webhook-Signature"] = f"v1,AAAA v2,{good[3:]}"
    assert not verify_signature(SECRET, headers, request.content, now=NOW)


# --- body ----------------------------------------------------------------------------------------


def test_body_is_compact_utf8_json_with_iso_dates_and_base64_bytes() -> None:
    recorder = Recorder()
    payload = {
        "name": "عبد الله",
        "arrival": datetime(2025, 6, 1, 8, 30, tzinfo=UTC),
        "visa_expiry": date(2025, 8, 15),
        "photo": b"\x00\xffJPEG",
        "fare": Decimal("1250.50"),
        "legs": [{"flight": "SV 817", "on": date(2025, 6, 1)}],
    }
    make_sender(recorder).deliver(EVENT, payload)
    content = recorder.last.content
    assert json.loads(content.decode("utf-8")) == {
        "name": "عبد الله",
        "arrival": "2025-06-01T08:30:00+00:00",
        "visa_expiry": "2025-08-15",
        "photo": base64.b64encode(b"\x00\xffJPEG").decode(),
        "fare": "1250.50",
        "legs": [{"flight": "SV 817", "on": "2025-06-01"}],
    }
    assert "عبد الله".encode() in content  # UTF-8, not \u escapes
    assert b", " not in content and b": " not in content  # compact


@pytest.mark.parametrize("bad", [{1, 2}, float("nan"), object()])
def test_payload_without_json_form_is_permanent(bad: object) -> None:
    recorder = Recorder()
    with pytest.raises(PermanentDeliveryError, match="not JSON-encodable"):
        make_sender(recorder).deliver(EVENT, {"value": bad})
    assert recorder.requests == []


# --- outcomes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(status: int) -> None:
    make_sender(Recorder(httpx.Response(status, text="ok"))).deliver(EVENT, PAYLOAD)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_5xx_and_408_are_transient(status: int) -> None:
    error = deliver_error(httpx.Response(status, text="try again later"))
    assert isinstance(error, TransientDeliveryError)
    assert f"HTTP {status}" in str(error)
    assert "try again later" in str(error)
    assert EVENT in str(error)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_other_4xx_are_permanent(status: int) -> None:
    error = deliver_error(httpx.Response(status, json={"error": "schema mismatch"}))
    assert isinstance(error, PermanentDeliveryError)
    assert f"HTTP {status}" in str(error)
    assert "schema mismatch" in str(error)


def test_redirect_is_not_followed_and_is_permanent() -> None:
    recorder = Recorder(httpx.Response(302, headers={"Location": "https://elsewhere.example/"}))
    with pytest.raises(PermanentDeliveryError, match="HTTP 302"):
        make_sender(recorder).deliver(EVENT, PAYLOAD)
    assert len(recorder.requests) == 1


def test_429_retry_after_seconds() -> None:
    error = deliver_error(httpx.Response(429, headers={"Retry-After": "120"}, text="slow down"))
    assert isinstance(error, TransientDeliveryError)
    assert error.retry_after == 120.0
    assert "HTTP 429" in str(error)


def test_429_retry_after_http_date() -> None:
    when = datetime.fromtimestamp(NOW + 90, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    error = deliver_error(httpx.Response(429, headers={"Retry-After": when}))
    assert isinstance(error, TransientDeliveryError)
    assert error.retry_after == 90.0


def test_429_without_usable_retry_after_is_still_transient() -> None:
    for headers in ({}, {"Retry-After": "soon"}):
        error = deliver_error(httpx.Response(429, headers=headers))
        assert isinstance(error, TransientDeliveryError)
        assert error.retry_after is None


def test_503_retry_after_is_honoured() -> None:
    error = deliver_error(httpx.Response(503, headers={"Retry-After": "30"}))
    assert isinstance(error, TransientDeliveryError)
    assert error.retry_after == 30.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0", 0.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),  # in the past: retry now
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(exc: httpx.HTTPError) -> None:
    error = deliver_error(exc)
    assert isinstance(error, TransientDeliveryError)
    assert type(exc).__name__ in str(error)
    assert error.retry_after is None


def test_body_excerpt_is_at_most_200_characters() -> None:
    error = deliver_error(httpx.Response(500, text="E" * 10_000))
    excerpt = str(error).split(": ")[-1]
    assert 0 < len(excerpt) <= 200
    assert len(str(error)) < 400


# --- secret hygiene ------------------------------------------------------------------------------


def test_secret_and_header_values_never_appear_in_error_messages() -> None:
    echo = f"bad request; you sent secret={SECRET} key={SECRET[6:]} auth={TOKEN}"
    for response in (httpx.Response(400, text=echo), httpx.Response(500, text=echo)):
        message = str(deliver_error(response))
        assert "bad request" in message
        assert SECRET[6:] not in message
        assert TOKEN not in message
        assert "s3cr3t" not in message
    message = str(deliver_error(httpx.ConnectError(f"refused ({TOKEN})")))
    assert TOKEN not in message


def test_query_string_stays_out_of_error_messages() -> None:
    message = str(deliver_error(httpx.Response(404)))
    assert "https://ops.example.org/hooks/journey" in message
    assert "tenant=makkah" not in message


def test_secret_and_header_values_stay_out_of_config_repr_and_str() -> None:
    target = make_target()
    sender = make_sender(Recorder(), target)
    for text in (repr(target), str(target), repr(sender)):
        assert SECRET[6:] not in text
        assert TOKEN not in text


def test_invalid_secret_error_does_not_echo_it() -> None:
    bad = "whsec_not*base64*but*very*private"
    with pytest.raises(ValidationError) as caught:
        make_target(secret=bad)
    assert "not valid base64" in str(caught.value)
    assert "very*private" not in str(caught.value)


# --- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"url": "ftp://ops.example.org/in"}, "http or https"),
        ({"url": "ops.example.org/in"}, "http or https"),
        ({"url": "https://user:pw@ops.example.org/in"}, "user:password"),
        ({"secret": "whsec_"}, "empty"),
        ({"secret": ""}, "empty"),
        ({"timeout_seconds": 0}, "greater than 0"),
        ({"headers": {"webhook-signature": "v1,forged"}}, "cannot be overridden"),
        ({"headers": {"Idempotency-Key": "x"}}, "cannot be overridden"),
        ({"headers": {"X-Token": "a\r\nInjected: 1"}}, "printable ASCII"),
        ({"headers": {"bad name": "v"}}, "not a valid header name"),
        ({"retries": 3}, "Extra inputs are not permitted"),
    ],
)
def test_config_rejects(overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        make_target(**overrides)


def test_config_is_frozen_and_documented() -> None:
    target = make_target()
    with pytest.raises(ValidationError):
        target.url = "https://elsewhere.example/"  # type: ignore[misc]
    schema = WebhookTarget.model_json_schema()
    assert all(schema["properties"][name].get("description") for name in ("url", "secret", "headers"))


def test_close_closes_only_a_client_the_sender_built() -> None:
    injected = httpx.Client(transport=httpx.MockTransport(Recorder()))
    WebhookSender(make_target(), injected).close()
    assert not injected.is_closed
    with WebhookSender(make_target()) as owned:
        client = owned._client
    assert client.is_closed
