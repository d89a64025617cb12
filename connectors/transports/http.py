"""HTTP push transport: one POST endpoint per connector, plus ``/healthz``, ``/metrics`` and ``/docs``.

Every request is authenticated for its agency: ``X-API-Key`` (compared by SHA-256 hash in constant
time) or ``X-Signature: t=<unix>,v1=<hex>`` (HMAC-SHA256 of ``"<t>." + body`` under the agency's
secret, refused when more than 5 minutes old, which stops replays of captured requests);
size-limited (413 beyond the connector's ``max_body_bytes``, checked on the header and while
reading), then handed to the connector runtime. The answer comes only after Kafka acknowledged:

* 202 every record accepted; 207 some accepted, some rejected (the body lists each rejection);
* 422 no record usable (record errors), 400 the input as a whole is unusable;
* 401 no or wrong credentials; 413 too large; 503 Kafka did not acknowledge: retry.

Senders may set ``Idempotency-Key``: a retried request with the same key yields the same event ids.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from starlette.concurrency import run_in_threadpool

from connectors.base import HttpTransport
from connectors.runtime import IngestResult, IngestRuntime
from streaming.kafka import StreamingError

logger = logging.getLogger(__name__)

REQUESTS = Counter("hub_http_requests", "Ingest HTTP requests by connector and status code.", ["connector", "status"])

STATUS = {"accepted": 202, "partial": 207, "rejected": 422}
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class BodyTooLarge(Exception):
    pass


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


SIGNATURE_TOLERANCE_S = 300


def api_key_ok(runtime: IngestRuntime, request: Request) -> bool:
    presented = request.headers.get("x-api-key")
    if not presented:
        return False
    digest = hashlib.sha256(presented.encode()).hexdigest()
    allowed = runtime.connector.config.auth.api_key_sha256
    return any(hmac.compare_digest(digest, stored.lower()) for stored in allowed)


def signature_ok(runtime: IngestRuntime, request: Request, body: bytes, now: float | None = None) -> bool:
    """``X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``, within 5 minutes."""
    secret = runtime.connector.config.auth.hmac_secret
    header = request.headers.get("x-signature")
    if secret is None or not header:
        return False
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, presented = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > SIGNATURE_TOLERANCE_S:
        return False
    expected = hmac.new(secret.get_secret_value().encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), presented.lower())


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The X-Signature header value an agency sends (used by tests, the demo and the simulator)."""
    t = str(int(time.time()) if timestamp is None else timestamp)
    return f"t={t},v1=" + hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


def _error(status: int, connector: str, message: str, **extra: Any) -> JSONResponse:
    REQUESTS.labels(connector, str(status)).inc()
    return JSONResponse({"error": message, **extra}, status_code=status)


def _endpoint(runtime: IngestRuntime, transport: HttpTransport) -> Callable[[Request], Any]:
    name = runtime.name

    async def ingest(request: Request) -> JSONResponse:
        by_key = api_key_ok(runtime, request)
        if not by_key and not request.headers.get("x-signature"):
            return _error(401, name, f"missing or unknown X-API-Key (or X-Signature) for connector {name}")
        try:
            body = await read_limited(request, transport.max_body_bytes)
        except BodyTooLarge:
            return _error(413, name, f"body larger than {transport.max_body_bytes} bytes")
        if not by_key and not signature_ok(runtime, request, body):
            return _error(401, name, f"bad or expired X-Signature for connector {name}")
        supplied = request.headers.get("idempotency-key") or request.headers.get("x-request-id")
        request_id = supplied if supplied and _SAFE_ID.match(supplied) else str(uuid.uuid4())
        input_name = f"http:{name}:{request_id}"
        try:
            result: IngestResult = await run_in_threadpool(runtime.ingest, body, input_name)
        except StreamingError as exc:
            logger.error("ingest %s not acknowledged by Kafka: %s", input_name, exc)
            return _error(503, name, "not stored: Kafka did not acknowledge; retry later", input=input_name)
        status = STATUS[result.outcome]
        if result.whole_input_rejected:
            status = 400
        REQUESTS.labels(name, str(status)).inc()
        return JSONResponse(result.to_dict(), status_code=status, headers={"X-Request-Id": request_id})

    return ingest


def build_app(
    runtimes: Sequence[IngestRuntime],
    health: Callable[[], dict[str, Any]],
    body_schemas: dict[str, dict[str, Any]] | None = None,
) -> FastAPI:
    """The ingest ASGI app for the given connector runtimes (only those with an HTTP transport)."""
    app = FastAPI(
        title="Pilgrim hub ingest",
        description="Agency feeds in: each connector has its own endpoint and credentials.",
        version="1",
    )
    for runtime in runtimes:
        transport = runtime.connector.config.transport
        if not isinstance(transport, HttpTransport):
            continue
        schema = (body_schemas or {}).get(runtime.name)
        openapi_extra: dict[str, Any] = {
            "parameters": [
                {"name": "X-API-Key", "in": "header", "required": True, "schema": {"type": "string"}},
                {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
        }
        if schema:
            openapi_extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        app.add_api_route(
            transport.path,
            _endpoint(runtime, transport),
            methods=["POST"],
            name=f"ingest-{runtime.name}",
            summary=f"Push a {runtime.agency} feed to connector {runtime.name}",
            responses={
                202: {"description": "All records accepted"},
                207: {"description": "Some rejected"},
                400: {"description": "Input unusable"},
                401: {"description": "Not authenticated"},
                413: {"description": "Too large"},
                422: {"description": "No record usable"},
                503: {"description": "Kafka unavailable; retry"},
            },
            openapi_extra=openapi_extra,
        )

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        state = health()
        return JSONResponse(state, status_code=200 if state.get("status") == "ok" else 503)

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
