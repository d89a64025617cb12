"""What a connector is, and the registry of connector types.

A connector is one file in ``connectors/`` holding:

* a frozen pydantic ``Config`` model with ``type: Literal["<name>"]`` — the registry turns all of
  them into one discriminated union, so the config file, ``hub validate`` and the docs all come
  from the model;
* a class with ``agency``, ``event_types`` (the only event types it may publish) and
  ``parse(data, input_name) -> Parsed``, which turns raw bytes into :class:`JourneyRecord` values.

Connectors never touch Avro bytes or Kafka: ``connectors.runtime`` builds envelopes, encodes and
publishes, and quarantines what was rejected. Register a connector with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.rejections import Rejection


class HttpTransport(BaseModel):
    """Agencies push documents with HTTP POST to ``path``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["http"] = "http"
    path: str = Field(description="URL path of this connector's ingest endpoint, e.g. /ingest/operators.")
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Larger bodies are refused with 413.")


class FileDropTransport(BaseModel):
    """Agencies drop files in ``directory``; done files move to ``processed/`` or ``rejected/``.

    Only complete files are taken: names starting with ``.`` or ending in ``.tmp``/``.part`` are
    ignored (senders write under such a name and rename), and a file must keep the same size and
    modification time for ``settle_seconds`` before it is read.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["filedrop"] = "filedrop"
    directory: str = Field(description="The inbox the agency writes to.")
    pattern: str = Field("*", description="Glob of the files to take, e.g. *.edi.")
    processed_dir: str | None = Field(None, description="Default: <directory>/processed.")
    rejected_dir: str | None = Field(None, description="Default: <directory>/rejected (with <file>.error.json beside).")
    settle_seconds: float = Field(1.0, ge=0, description="How long a file must be unchanged before it is read.")
    poll_seconds: float = Field(1.0, gt=0, description="How often the inbox is scanned.")
    max_file_bytes: int = Field(200 * 1024 * 1024, gt=0, description="Larger files are rejected unread.")


class PollingTransport(BaseModel):
    """The hub GETs ``url`` with the last cursor; the agency answers with a page and the next cursor."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["polling"] = "polling"
    url: str = Field(description="Endpoint to poll; the cursor is sent as the query parameter `cursor_param`.")
    cursor_param: str = Field("cursor", description="Query parameter carrying the cursor.")
    next_cursor_header: str = Field("X-Next-Cursor", description="Response header with the next cursor.")
    interval_seconds: float = Field(30.0, gt=0, description="Pause between polls when a page was empty.")
    timeout_seconds: float = Field(10.0, gt=0)
    max_attempts: int = Field(6, ge=1, description="Tries per poll on transient errors (backoff with jitter).")
    token: SecretStr | None = Field(None, description="Bearer token sent to the agency, if it needs one.")
    max_body_bytes: int = Field(50 * 1024 * 1024, gt=0)


Transport = Annotated[HttpTransport | FileDropTransport | PollingTransport, Field(discriminator="kind")]


class AgencyAuth(BaseModel):
    """How the agency proves who it is on every request."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    api_key_sha256: list[str] = Field(
        default_factory=list,
        description="SHA-256 (hex) of each API key the agency may present in the X-API-Key header. "
        "Keys are never stored in clear; `hub key-hash` prints the hash of a new key.",
    )
    hmac_secret: SecretStr | None = Field(
        None, description="Shared secret for HMAC-SHA256 signed bodies (X-Signature: t=<unix>,v1=<hex>)."
    )


class ConnectorConfig(BaseModel):
    """Fields every connector config has; each connector subclasses it with its own ``type``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="Unique connector instance name.")
    enabled: bool = Field(True, description="A disabled connector is validated but not run.")
    transport: Transport
    auth: AgencyAuth = Field(default_factory=AgencyAuth)


@dataclass(frozen=True, slots=True)
class JourneyRecord:
    """One journey event as a connector understood it, before the envelope is added.

    Events about a person give ``nationality`` and ``passport_number``: the runtime derives the
    pilgrim key from them (and it becomes the Kafka key). Events about something else (a flight, a
    group, a bus) leave them None and give ``partition_key`` (e.g. ``flight:SV817:2026-12-03``).
    """

    event_type: str
    occurred_at: datetime
    position: str
    """Where in the input: ``$.registrations[3]``, ``line 7``, ``segment 11 (NAD) @ byte 342``."""
    payload: dict[str, Any]
    """The event's fields other than ``envelope``, as the Avro schema names them."""
    nationality: str | None = None
    passport_number: str | None = None
    partition_key: str | None = None


@dataclass(slots=True)
class Parsed:
    """What a connector made of one input: events, and the records it refused."""

    records: list[JourneyRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    raw_rejected: list[bytes] = field(default_factory=list)
    """The raw bytes of each rejected record, in the order of ``rejections`` (kept in quarantine)."""

    def reject(self, rejection: Rejection, raw: bytes) -> None:
        self.rejections.append(rejection)
        self.raw_rejected.append(raw)


class Connector(Protocol):
    agency: ClassVar[str]
    event_types: ClassVar[tuple[str, ...]]
    config: ConnectorConfig

    def parse(self, data: bytes, input_name: str) -> Parsed:
        """Parse one input. Raise ``InputRejected`` when nothing in it can be used."""
        ...


ConnectorFactory = Callable[[Any], Connector]

REGISTRY: dict[str, tuple[type[ConnectorConfig], ConnectorFactory]] = {}


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted path: ``pilgrim.birth_date``, ``records.3.port``."""
    return ".".join(str(part) for part in loc)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace local ``$ref``s by their definitions, so the schema can be embedded anywhere."""
    defs: dict[str, Any] = {}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            defs.update(node.get("$defs", {}))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    collect(schema)
    result: dict[str, Any] = walk(schema)
    return result


def register(config_model: type[ConnectorConfig]) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: ``@register(Config)`` makes a connector type available to the config file."""

    def decorate(cls: type[Any]) -> type[Any]:
        type_name = config_model.model_fields["type"].default
        if type_name in REGISTRY:
            raise ValueError(f"connector type {type_name} registered twice")
        REGISTRY[type_name] = (config_model, cls)
        return cls

    return decorate


def build_connector(config: ConnectorConfig) -> Connector:
    _, factory = REGISTRY[type(config).model_fields["type"].default]
    return factory(config)


# Modules in this package that are infrastructure, not connectors.
_NOT_CONNECTORS = {"base", "runtime", "rejections", "identity", "checkpoints", "transports", "formats"}


def load_all() -> None:
    """Import every connector module in this package so that each registers itself."""
    import importlib
    import pkgutil

    import connectors

    for module in pkgutil.iter_modules(connectors.__path__):
        if module.name not in _NOT_CONNECTORS and not module.name.startswith("_"):
            importlib.import_module(f"connectors.{module.name}")
