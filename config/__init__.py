"""The hub's configuration: models (the single source of truth) and the loader for ``hub.yaml``.

Environment variables override the file where operations need it: ``KAFKA_BOOTSTRAP_SERVERS``,
``HUB_PILGRIM_KEY_SECRET``, ``HUB_KAFKA_SASL_PASSWORD``, ``HUB_HTTP_HOST``, ``HUB_HTTP_PORT``. Errors name the file and
the path of the bad field.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from connectors.base import REGISTRY, ConnectorConfig, load_all
from connectors.identity import PilgrimKeyer
from journey.config import JourneyConfig
from streaming.kafka import ClientSettings

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent
DEFAULT_CONFIG = CONFIG_DIR / "hub.yaml"
# Only for `mode: development`: a fixed secret so sample runs give repeatable keys.
DEVELOPMENT_KEY_SECRET = "development-only-pilgrim-key-secret"  # noqa: S105


class ConfigError(ValueError):
    """The configuration is missing, not YAML, or invalid."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicsConfig(_Frozen):
    events: str = Field("journey.events", description="All accepted journey events, keyed by pilgrim_key.")
    quarantine: str = Field("journey.quarantine", description="Raw rejected inputs and records, with error headers.")
    dead_letter: str = Field("journey.deadletter", description="Events the router could not deliver.")
    replay: str = Field("journey.replay", description="Dead letters put back for one subscriber (`hub dlq replay`).")
    audit: str = Field("hub.audit", description="Who received which fields about which pilgrim, when; and replays.")
    schemas: str = Field("hub.schemas", description="Compacted: subscriber schemas derived from projections, by id.")
    checkpoints: str = Field(
        "hub.ingest.checkpoints", description="Compacted: file-drop and polling progress, written with the events."
    )


class KafkaConfig(_Frozen):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    partitions: int = Field(6, ge=1, description="Partitions of the topics the hub creates.")
    replication_factor: int = Field(1, ge=1, description="Replication of the topics the hub creates (3 in production).")
    topics: TopicsConfig = Field(default_factory=TopicsConfig)
    client: Literal["kafka-python", "confluent-kafka"] = Field(
        "kafka-python",
        description="The client under the producers and consumers: kafka-python (pure Python, the default) or "
        "confluent-kafka (librdkafka; `pip install '.[confluent]'`; several times the throughput per core, "
        "see bench/). Topic admin and tools always use kafka-python.",
    )

    def client_settings(self, client_id: str) -> ClientSettings:
        return ClientSettings(
            bootstrap_servers=self.bootstrap_servers,
            client_id=client_id,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=self.sasl_password.get_secret_value() if self.sasl_password else None,
            ssl_cafile=self.ssl_cafile,
            client=self.client,
        )


class IdentityConfig(_Frozen):
    pilgrim_key_secret: SecretStr | None = Field(
        None,
        description="HMAC secret of the pilgrim key (>= 16 bytes). Required in production mode; "
        "set it with HUB_PILGRIM_KEY_SECRET rather than in the file.",
    )


class HttpConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class RouterConfig(_Frozen):
    group_id: str = Field("hub-router", description="Prefix of the per-subscriber consumer groups.")
    instance: str = Field(
        "0",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="This router process's slot when several share the work (0, 1, ...); part of the "
        "transactional ids, so a restarted process fences its predecessor. Env: HUB_ROUTER_INSTANCE.",
    )
    subscriptions_file: str = Field("subscriptions.yaml", description="Relative to the config file.")


class AdminConfig(_Frozen):
    """Who may take admin actions: the operations endpoints (``GET /journeys/...``) and the ``hub dlq``,
    ``hub audit`` and ``hub journey`` commands (token in ``$HUB_ADMIN_TOKEN``)."""

    token_sha256: list[str] = Field(
        default_factory=list,
        description="SHA-256 (hex) of each admin bearer token (`echo TOKEN | hub key-hash`). Empty: admin "
        "actions are open in development mode and closed in production mode.",
    )

    def identify(self, token: str, mode: str) -> str | None:
        """Who ``token`` is (``admin:`` and the first 12 hex digits of its hash), ``development`` when
        no tokens are configured in development mode, or None when refused."""
        if not self.token_sha256:
            return "development" if mode == "development" else None
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        if any(hmac.compare_digest(digest, allowed.lower()) for allowed in self.token_sha256):
            return f"admin:{digest[:12]}"
        return None


def _connector_union() -> Any:
    load_all()
    models = tuple(model for model, _ in REGISTRY.values())
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


class HubConfig(_Frozen):
    mode: Literal["development", "production"] = "development"
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    journey: JourneyConfig = Field(default_factory=JourneyConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    quarantine_dir: str = Field(
        ".data/quarantine", description="Where rejected payloads too large for a Kafka record are kept whole."
    )
    connectors: list[_connector_union()] = Field(default_factory=list)  # type: ignore[valid-type]
    source: str = Field("", exclude=True, description="The file this config came from.")

    def keyer(self) -> PilgrimKeyer:
        secret = self.identity.pilgrim_key_secret
        if secret is None:
            if self.mode == "production":
                raise ConfigError("identity.pilgrim_key_secret is required in production mode (HUB_PILGRIM_KEY_SECRET)")
            logger.warning("using the development pilgrim key secret; set HUB_PILGRIM_KEY_SECRET for real data")
            return PilgrimKeyer(DEVELOPMENT_KEY_SECRET.encode())
        return PilgrimKeyer(secret.get_secret_value().encode())

    def mask_key(self) -> bytes:
        """Key of the projections' ``hash`` masks, derived from the pilgrim key secret."""
        import hashlib
        import hmac

        secret = self.identity.pilgrim_key_secret
        base = secret.get_secret_value() if secret else DEVELOPMENT_KEY_SECRET
        return hmac.new(base.encode(), b"projection-mask", hashlib.sha256).digest()

    def subscriptions_path(self) -> Path:
        base = Path(self.source).parent if self.source else CONFIG_DIR
        return base / self.router.subscriptions_file

    def connector_configs(self) -> list[ConnectorConfig]:
        """The enabled connectors."""
        return [c for c in self.connectors if c.enabled]


def _apply_env(raw: dict[str, Any]) -> dict[str, Any]:
    env = os.environ
    kafka = raw.setdefault("kafka", {}) or {}
    raw["kafka"] = kafka
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        kafka["bootstrap_servers"] = env["KAFKA_BOOTSTRAP_SERVERS"]
    if env.get("HUB_KAFKA_SASL_PASSWORD"):
        kafka["sasl_password"] = env["HUB_KAFKA_SASL_PASSWORD"]
    if env.get("HUB_PILGRIM_KEY_SECRET"):
        raw.setdefault("identity", {})["pilgrim_key_secret"] = env["HUB_PILGRIM_KEY_SECRET"]
    if env.get("HUB_ROUTER_INSTANCE"):
        raw.setdefault("router", {})["instance"] = env["HUB_ROUTER_INSTANCE"]
    if env.get("HUB_HTTP_HOST"):
        raw.setdefault("http", {})["host"] = env["HUB_HTTP_HOST"]
    if env.get("HUB_HTTP_PORT"):
        raw.setdefault("http", {})["port"] = int(env["HUB_HTTP_PORT"])
    return raw


def load_config(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> HubConfig:
    """Load and validate ``hub.yaml`` (default: the one in this package), env vars applied."""
    path = Path(path or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    raw = _apply_env(raw)
    for key, value in (overrides or {}).items():
        raw[key] = value
    raw["source"] = str(path)
    try:
        return HubConfig.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {details}") from exc
