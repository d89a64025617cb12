"""Composition root and command line of the pilgrim hub.

Reads the config, builds the components (codec, connector runtimes, HTTP ingest, router), wires
them and runs them. It holds no business logic: that lives in ``connectors/``, ``schemas/`` and
``router/``.

    hub kafka up|down|status|reset       a local single-node Kafka (KRaft) from Maven Central
    hub kafka console-consumer ...       Kafka's own console consumer, from the same jars
    hub run                              all connectors (HTTP ingest) and the router
    hub simulate --pilgrims N            the whole hub on a simulated season (the main job)
    hub demo                             broker + hub + the sample feeds of each agency, explained
    hub schemas register|check           the schema catalogue
    hub parse CONNECTOR FILE             dry run of a connector, no Kafka (exit 0 all ok, 1 some, 2 none)
    hub validate                         check config and subscriptions
    hub dlq list|show|replay [filters]   dead letters; replay puts them back for their subscriber
    hub audit PILGRIM_KEY                who received which fields about a pilgrim, when
    hub journey PILGRIM_KEY              a pilgrim's timeline and open alerts
    hub key NATIONALITY PASSPORT         the pilgrim key of a person
    hub key-hash                         SHA-256 of an API key read from stdin, for the config
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("hub")


@dataclass
class Hub:
    """The wired components of one hub process."""

    config: Any  # config.HubConfig
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _health: dict[str, Any] = field(default_factory=dict)
    workers: list[Any] = field(default_factory=list)
    journey: Any = None

    def __post_init__(self) -> None:
        from connectors.base import HttpTransport, build_connector
        from connectors.runtime import IngestRuntime, IngestTopics
        from router.subscriptions import load_subscriptions
        from schemas.catalogue import SchemaCatalogue
        from schemas.codec import Codec
        from streaming.kafka import Producer

        self.codec = Codec(SchemaCatalogue())
        self.subscriptions = load_subscriptions(self.config.subscriptions_path())
        self.subscriptions.check_event_types(self.codec.schemas_by_type())
        topics = self.config.kafka.topics
        self.ensure_topics()
        self.producer = Producer(self.config.kafka.client_settings("hub-ingest"))
        keyer = self.config.keyer()
        ingest_topics = IngestTopics(topics.events, topics.quarantine)
        spill = Path(self.config.quarantine_dir)
        self.runtimes: list[IngestRuntime] = []
        for connector_config in self.config.connector_configs():
            connector = build_connector(connector_config)
            if isinstance(connector_config.transport, HttpTransport):
                # HTTP answers after acks; the sender's Idempotency-Key makes retries repeat event ids.
                runtime = IngestRuntime(connector, self.codec, keyer, self.producer, ingest_topics, spill_dir=spill)
            else:
                # File drop and polling publish each input with its checkpoint in one transaction.
                producer = Producer(
                    self.config.kafka.client_settings(f"hub-ingest-{connector_config.name}"),
                    transactional_id=f"hub-ingest-{connector_config.name}",
                )
                runtime = IngestRuntime(
                    connector, self.codec, keyer, producer, ingest_topics, transactional=True, spill_dir=spill
                )
            self.runtimes.append(runtime)

    def ensure_topics(self) -> None:
        from streaming.kafka import Admin, TopicSpec

        kafka = self.config.kafka
        t = kafka.topics
        specs = [
            TopicSpec(name, kafka.partitions, kafka.replication_factor)
            for name in (t.events, t.quarantine, t.dead_letter, t.replay, t.audit)
        ]
        specs.append(TopicSpec(t.schemas, 1, kafka.replication_factor, {"cleanup.policy": "compact"}))
        specs += [
            TopicSpec(s.target.topic, kafka.partitions, kafka.replication_factor)
            for s in self.subscriptions.subscriptions
            if s.target.kind == "kafka"
        ]
        specs.append(TopicSpec(kafka.topics.checkpoints, 1, kafka.replication_factor, {"cleanup.policy": "compact"}))
        admin = Admin(kafka.client_settings("hub-admin"))
        try:
            admin.ensure_topics(specs)
        finally:
            admin.close()

    def router_topics(self) -> Any:
        from router.engine import RouterTopics

        t = self.config.kafka.topics
        return RouterTopics(
            events=t.events, replay=t.replay, dead_letter=t.dead_letter, audit=t.audit, schemas=t.schemas
        )

    def start_router(self) -> None:
        """The Kafka-target subscriptions in one lane, a worker per webhook (a bulkhead each); threads
        sharing partitions with other routers of the group."""
        from router.engine import DerivedSchemas, RouterService, build_workers

        kafka = self.config.kafka
        workers = build_workers(
            self.subscriptions.subscriptions,
            kafka.client_settings("hub-router"),
            self.config.router.group_id,
            self.codec,
            self.router_topics(),
            self.config.mask_key(),
            instance=self.config.router.instance,
            derived=DerivedSchemas(),
            settings_for=lambda name: kafka.client_settings(f"hub-router-{name}"),
        )
        self.workers.extend(workers)
        self._threads.extend(RouterService(workers).start(self.stop))

    def start_journey(self, clock: Any = None) -> None:
        """The journey service: per-pilgrim state, alerts (``clock``: wall time unless simulated)."""
        from journey.service import JourneyService, JourneyTopics

        j, k = self.config.journey, self.config.kafka
        if not j.enabled:
            return
        extra = {"clock": clock} if clock is not None else {}
        self.journey = JourneyService(
            k.client_settings("hub-journey"),
            self.codec,
            JourneyTopics(events=k.topics.events, journeys=j.journeys_topic),
            j.thresholds,
            group_id=j.group_id,
            instance=self.config.router.instance,
            changelog_partitions=k.partitions,
            replication_factor=k.replication_factor,
            forget_after_exit=(
                datetime.timedelta(days=j.forget_after_exit_days) if j.forget_after_exit_days is not None else None
            ),
            **extra,
        )
        self._threads.append(self.journey.start(self.stop))

    def start_transports(self) -> None:
        """Start a thread per file-drop and polling connector (HTTP ones are served by the app)."""
        from connectors.base import FileDropTransport, PollingTransport
        from connectors.checkpoints import CheckpointStore
        from connectors.transports.filedrop import FileDropRunner
        from connectors.transports.polling import PollingRunner

        kafka = self.config.kafka
        for runtime in self.runtimes:
            transport = runtime.connector.config.transport
            store = CheckpointStore(
                kafka.client_settings(f"hub-checkpoints-{runtime.name}"), kafka.topics.checkpoints, runtime.name
            )
            runner: FileDropRunner | PollingRunner
            if isinstance(transport, FileDropTransport):
                runner = FileDropRunner(runtime, transport, store)
            elif isinstance(transport, PollingTransport):
                runner = PollingRunner(runtime, transport, store)
            else:
                continue
            thread = threading.Thread(target=runner.run, args=(self.stop,), name=f"ingest-{runtime.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def health(self) -> dict[str, Any]:
        from streaming.kafka import KafkaUnavailable, ping

        now = time.monotonic()
        if now - self._health.get("checked", 0.0) > 5:
            try:
                ping(self.config.kafka.client_settings("hub-health"), timeout_s=3)
                kafka_ok = True
            except KafkaUnavailable:
                kafka_ok = False
            self._health = {"checked": now, "kafka": kafka_ok}
        routers = [t.is_alive() for t in self._threads]
        ok = self._health["kafka"] and all(routers)
        return {
            "status": "ok" if ok else "degraded",
            "kafka": "ok" if self._health["kafka"] else "unreachable",
            "router": "running" if routers and all(routers) else "stopped",
            "connectors": [r.name for r in self.runtimes],
        }

    def app(self) -> Any:
        from fastapi import Depends

        from connectors.transports.http import build_app
        from journey.api import journey_router, load_journey

        schemas = {r.name: r.connector.body_schema() for r in self.runtimes if hasattr(r.connector, "body_schema")}
        app = build_app(self.runtimes, self.health, schemas)
        j, k = self.config.journey, self.config.kafka
        lookup = self.journey or (
            lambda key: load_journey(k.client_settings("hub-api"), j.journeys_topic, key, j.thresholds)
        )
        app.include_router(journey_router(lookup), dependencies=[Depends(self.admin_guard())])
        return app

    def admin_guard(self) -> Any:
        """A FastAPI dependency: operations endpoints need an admin bearer token (see ``admin:``)."""
        from fastapi import Header, HTTPException

        admin, mode = self.config.admin, self.config.mode

        def guard(authorization: str = Header("")) -> None:
            token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
            if admin.identify(token, mode) is None:
                raise HTTPException(status_code=401, detail="an admin bearer token is required")

        return guard

    def server(self, port: int | None = None) -> Any:
        import uvicorn

        http = self.config.http
        config = uvicorn.Config(
            self.app(), host=http.host, port=http.port if port is None else port, log_level="warning", access_log=False
        )
        return uvicorn.Server(config)

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for runtime in self.runtimes:
            if runtime.producer is not None and runtime.producer is not self.producer:
                runtime.producer.close()
        self.producer.close()


# ---- commands ---------------------------------------------------------------------------------


def cmd_kafka(args: argparse.Namespace) -> int:
    from streaming.local_broker import LocalBroker, LocalBrokerError

    broker = LocalBroker.from_env(port=args.port)
    try:
        if args.action == "up":
            print(f"Kafka {broker.up()} (log: {broker.log_file})")
        elif args.action == "down":
            print("stopped" if broker.down() else "was not running")
        elif args.action == "reset":
            broker.reset()
            print("stopped and data deleted")
        elif args.action == "status":
            state = broker.status()
            print(state)
            return 0 if state.startswith("running") else 3
        elif args.action == "console-consumer":
            extra = ["--from-beginning"] if args.from_beginning else []
            if args.max_messages:
                extra += ["--max-messages", str(args.max_messages)]
            return broker.run_tool(
                "org.apache.kafka.tools.consumer.ConsoleConsumer",
                "--bootstrap-server",
                args.bootstrap_server or broker.bootstrap_servers,
                "--topic",
                args.topic,
                "--timeout-ms",
                str(args.timeout_ms),
                "--formatter-property",
                "print.key=true",
                "--formatter-property",
                "print.headers=true",
                "--formatter-property",
                "print.partition=true",
                "--formatter-property",
                "print.offset=true",
                *extra,
            )
    except LocalBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


COMPONENTS = ("http", "transports", "router", "journey")


def cmd_run(args: argparse.Namespace) -> int:
    """Run the chosen components until SIGINT/SIGTERM. Several processes may each run some of them
    (e.g. two router-only processes with HUB_ROUTER_INSTANCE=0 and 1 share the partitions)."""
    import signal

    from config import load_config

    components = set(args.components.split(",")) if args.components else set(COMPONENTS)
    unknown = components - set(COMPONENTS)
    if unknown:
        print(f"unknown component(s) {sorted(unknown)}; choose from {', '.join(COMPONENTS)}", file=sys.stderr)
        return 2
    hub = Hub(load_config(args.config))
    if "router" in components:
        hub.start_router()
    if "transports" in components:
        hub.start_transports()
    if "journey" in components:
        hub.start_journey()
    try:
        if "http" in components:
            server = hub.server()
            print(
                f"hub listening on http://{hub.config.http.host}:{server.config.port} "
                f"(docs /docs, metrics /metrics); Kafka {hub.config.kafka.bootstrap_servers}",
                flush=True,
            )
            server.run()
        else:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: hub.stop.set())
            print(
                f"hub running {', '.join(sorted(components))}; Kafka {hub.config.kafka.bootstrap_servers}", flush=True
            )
            hub.stop.wait()
    finally:
        hub.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from demo.run import run_demo

    return run_demo(config_path=args.config, keep_running=args.keep_running)


def cmd_simulate(args: argparse.Namespace) -> int:
    from demo.season import run_simulation

    return run_simulation(args.pilgrims, args.rate, args.seed, args.anomalies, config_path=args.config)


def cmd_soak(args: argparse.Namespace) -> int:
    """A steady season for ``--minutes`` at ``--rate`` events/s, sampling RSS and lag."""
    from demo.season import run_simulation

    pilgrims = max(100, int(args.minutes * 60 * args.rate / 11))  # ~11 events per pilgrim's journey
    # A steady state: arrivals over ~5 simulated days per minute, each group registered within 3 days of
    # the 5 days before its flight, journeys forgotten a day after the exit, so that as many journeys
    # begin as end each day once the first ones are over (about a quarter of the run).
    return run_simulation(
        pilgrims,
        args.rate,
        args.seed,
        args.anomalies,
        config_path=args.config,
        monitor_seconds=args.sample_seconds,
        arrival_days=max(10, round(args.minutes * 5)),
        registration_window_days=3,
        journey={"forget_after_exit_days": 1},
        warmup_fraction=0.25,
    )


def cmd_schemas(args: argparse.Namespace) -> int:
    from schemas.catalogue import CatalogueError, SchemaCatalogue, load_sources, stale_subjects

    catalogue = SchemaCatalogue()
    sources = load_sources()
    if args.action == "check":
        stale = stale_subjects(catalogue, sources)
        for subject in stale:
            print(f"{subject}: .avsc differs from the catalogue; run `hub schemas register`")
        return 1 if stale else 0
    try:
        for subject, schema in sources.items():
            version, added = catalogue.register(subject, schema)
            print(f"{subject}: {'registered' if added else 'unchanged'} v{version.version} (id {version.id})")
    except CatalogueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    catalogue.save()
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from config import ConfigError, load_config
    from router.subscriptions import SubscriptionsError, load_subscriptions
    from schemas.catalogue import SchemaCatalogue
    from schemas.codec import Codec

    try:
        config = load_config(args.config)
        subs = load_subscriptions(config.subscriptions_path())
        subs.check_event_types(Codec(SchemaCatalogue()).schemas_by_type())
    except (ConfigError, SubscriptionsError, ValueError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {len(config.connectors)} connector(s), {len(subs.subscriptions)} subscription(s)")
    return 0


def _json_default(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def cmd_parse(args: argparse.Namespace) -> int:
    """Dry run, no Kafka: events as JSON lines on stdout, rejections on stderr; exit 0, 1 (some) or 2 (all)."""
    from config import load_config
    from connectors.base import REGISTRY, build_connector, load_all
    from connectors.rejections import InputRejected
    from connectors.runtime import IngestRuntime, IngestTopics
    from schemas.catalogue import SchemaCatalogue
    from schemas.codec import Codec

    config = load_config(args.config)
    load_all()
    chosen = next((c for c in config.connector_configs() if c.name == args.connector), None)
    chosen = chosen or next((c for c in config.connector_configs() if getattr(c, "type", None) == args.connector), None)
    if chosen is None and args.connector in REGISTRY:
        model, _ = REGISTRY[args.connector]
        chosen = model.model_validate(
            {
                "name": args.connector,
                "type": args.connector,
                "transport": {"kind": "http", "path": f"/ingest/{args.connector}"},
            }
        )
    if chosen is None:
        names = sorted({c.name for c in config.connector_configs()} | set(REGISTRY))
        print(f"unknown connector {args.connector!r}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    # a dry run: no producer, nothing published
    runtime = IngestRuntime(
        build_connector(chosen), Codec(SchemaCatalogue()), config.keyer(), None, IngestTopics("", "")
    )
    data = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    try:
        prepared = runtime.prepare(data, str(args.file))
    except InputRejected as exc:
        print(json.dumps({"rejected": "input", **exc.rejection.to_dict()}), file=sys.stderr)
        return 2
    out = sys.stdout
    for event in prepared.events:
        out.write(json.dumps(event.event, default=_json_default, ensure_ascii=False) + "\n")
    for rejection in prepared.parsed.rejections:
        print(json.dumps({"rejected": "record", **rejection.to_dict()}, ensure_ascii=False), file=sys.stderr)
    if not prepared.parsed.rejections:
        return 0
    return 1 if prepared.events else 2


def _parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    parsed = datetime.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


ADMIN_TOKEN_ENV = "HUB_ADMIN_TOKEN"  # noqa: S105 - the name of the variable, not a token


def _admin(config: Any, action: str) -> str | None:
    """Who is taking ``action``, from the admin token in ``$HUB_ADMIN_TOKEN`` (checked as the operations
    endpoints check theirs); None, with the reason on stderr, when refused."""
    who: str | None = config.admin.identify(os.environ.get(ADMIN_TOKEN_ENV, "").strip(), config.mode)
    if who is None:
        print(
            f"refused: {action} is an admin action; set {ADMIN_TOKEN_ENV} to an admin token "
            "(one whose SHA-256 is in admin.token_sha256)",
            file=sys.stderr,
        )
    return who


def cmd_dlq(args: argparse.Namespace) -> int:
    from config import load_config
    from router.dlq import Selection, dead_letters, record_admin_query, replay

    config = load_config(args.config)
    admin = _admin(config, f"hub dlq {args.action}")
    if admin is None:
        return 2
    settings = config.kafka.client_settings("hub-dlq")
    topics = config.kafka.topics
    selection = Selection(
        args.subscriber, args.event_type, _parse_time(args.since), _parse_time(args.until), args.pilgrim_key
    )
    entries = dead_letters(settings, topics.dead_letter, selection)
    if args.action != "replay":
        filters = {k: getattr(args, k) for k in ("subscriber", "event_type", "since", "until", "pilgrim_key")}
        query = " ".join([f"dlq {args.action}", *(f"{k}={v}" for k, v in filters.items() if v)])
        record_admin_query(settings, topics.audit, admin, query, args.pilgrim_key)
    if args.action == "show":
        wanted = [e for e in entries if f"{e.record.partition}/{e.record.offset}" == args.offset]
        if not wanted:
            print(f"no dead letter at {args.offset}", file=sys.stderr)
            return 1
        entry = wanted[0]
        from schemas.catalogue import SchemaCatalogue
        from schemas.codec import Codec

        headers = {k: v.decode(errors="replace") for k, v in entry.record.headers}
        try:
            _, event = Codec(SchemaCatalogue()).decode(entry.record.value or b"")
        except Exception as exc:
            event = {"undecodable": str(exc)}
        print(
            json.dumps(
                {"summary": entry.summary(), "headers": headers, "event": event}, indent=2, default=_json_default
            )
        )
        return 0
    for entry in entries:
        print(json.dumps(entry.summary()))
    if args.action == "list":
        print(f"{len(entries)} dead letter(s)", file=sys.stderr)
        return 0
    if args.dry_run:
        print(f"dry run: {len(entries)} dead letter(s) would be replayed", file=sys.stderr)
        return 0
    count = replay(settings, entries, topics.replay, topics.audit, operator=args.operator, out=sys.stderr, admin=admin)
    print(f"replayed {count} dead letter(s) to {topics.replay}", file=sys.stderr)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from config import load_config
    from router.dlq import audit_trail, record_admin_query

    config = load_config(args.config)
    admin = _admin(config, "hub audit")
    if admin is None:
        return 2
    key = _pilgrim_key(config, args)
    settings = config.kafka.client_settings("hub-audit")
    trail = audit_trail(settings, config.kafka.topics.audit, key)
    record_admin_query(settings, config.kafka.topics.audit, admin, "audit", key)
    for entry in trail:
        print(json.dumps(entry))
    print(f"{len(trail)} record(s) about {key}", file=sys.stderr)
    return 0


def _pilgrim_key(config: Any, args: argparse.Namespace) -> str:
    """The key given, or the one derived from nationality + ``--passport``."""
    key: str = config.keyer().key(args.pilgrim_key, args.passport) if args.passport else args.pilgrim_key
    return key


def _add_pilgrim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pilgrim_key", help="pilgrim key, or a nationality when --passport is given")
    parser.add_argument("--passport", help="derive the key from nationality + passport number")


def cmd_journey(args: argparse.Namespace) -> int:
    from config import load_config
    from journey.api import format_journey, load_journey
    from router.dlq import record_admin_query

    config = load_config(args.config)
    admin = _admin(config, "hub journey")
    if admin is None:
        return 2
    key = _pilgrim_key(config, args)
    settings = config.kafka.client_settings("hub-cli")
    doc = load_journey(settings, config.journey.journeys_topic, key, config.journey.thresholds)
    record_admin_query(settings, config.kafka.topics.audit, admin, "journey", key)
    if doc is None:
        print(f"no journey for {key}", file=sys.stderr)
        return 1
    print(json.dumps(doc, default=_json_default, indent=2) if args.json else format_journey(doc))
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from config import load_config

    print(load_config(args.config).keyer().key(args.nationality, args.passport))
    return 0


def cmd_key_hash(_: argparse.Namespace) -> int:
    print(hashlib.sha256(sys.stdin.readline().strip().encode()).hexdigest())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub", description="Pilgrim journey integration hub")
    p.add_argument("--config", type=Path, default=None, help="hub.yaml (default: config/hub.yaml or $HUB_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kafka", help="local single-node Kafka")
    k.add_argument("action", choices=["up", "down", "status", "reset", "console-consumer"])
    k.add_argument("--port", type=int, default=None, help="broker port (default 9092 or $HUB_KAFKA_PORT)")
    k.add_argument("--topic")
    k.add_argument("--bootstrap-server", default=None)
    k.add_argument("--from-beginning", action="store_true")
    k.add_argument("--max-messages", type=int, default=0)
    k.add_argument("--timeout-ms", type=int, default=10_000)
    k.set_defaults(func=cmd_kafka)

    run = sub.add_parser("run", help="run connectors and router")
    run.add_argument("--components", help="comma-separated subset of http,transports,router,journey (default: all)")
    run.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="local broker + hub + sample operator feeds")
    d.add_argument("--keep-running", action="store_true", help="keep the hub up after the summary")
    d.set_defaults(func=cmd_demo)

    sim = sub.add_parser("simulate", help="the whole hub on a simulated season, alerts checked against ground truth")
    sim.add_argument("--pilgrims", type=int, default=2000)
    sim.add_argument("--rate", type=float, default=0.0, help="max events/s delivered (0: as fast as the hub takes)")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--anomalies", default="", help="e.g. overstay=0.03,no_show=0.02 (default rates otherwise)")
    sim.set_defaults(func=cmd_simulate)

    soak = sub.add_parser("soak", help="a steady simulated season for N minutes; RSS and lag sampled")
    soak.add_argument("--minutes", type=float, default=30)
    soak.add_argument("--rate", type=float, default=200.0, help="events/s offered")
    soak.add_argument("--seed", type=int, default=11)
    soak.add_argument(
        "--anomalies",
        default="none",
        help="as for simulate; none by default: a pilgrim with an open alert is kept until the case is closed, "
        "so anomalies grow the state by design and would hide a leak",
    )
    soak.add_argument("--sample-seconds", type=float, default=15.0)
    soak.set_defaults(func=cmd_soak)

    s = sub.add_parser("schemas", help="schema catalogue")
    s.add_argument("action", choices=["register", "check"])
    s.set_defaults(func=cmd_schemas)

    sub.add_parser("validate", help="check config and subscriptions").set_defaults(func=cmd_validate)

    parse = sub.add_parser("parse", help="dry run of a connector on a file: events on stdout, rejections on stderr")
    parse.add_argument("connector", help="connector name in the config, or connector type")
    parse.add_argument("file", type=Path, help="input file, or - for stdin")
    parse.set_defaults(func=cmd_parse)

    key = sub.add_parser("key", help="pilgrim key of a nationality + passport number")
    key.add_argument("nationality")
    key.add_argument("passport")
    key.set_defaults(func=cmd_key)

    sub.add_parser("key-hash", help="SHA-256 of an API key read from stdin").set_defaults(func=cmd_key_hash)

    dlq = sub.add_parser("dlq", help="dead letters: list, show, replay")
    dlq.add_argument("action", choices=["list", "show", "replay"])
    dlq.add_argument("offset", nargs="?", help="for show: PARTITION/OFFSET as listed")
    dlq.add_argument("--subscriber")
    dlq.add_argument("--event-type")
    dlq.add_argument("--since", help="ISO time: dead-lettered at or after")
    dlq.add_argument("--until", help="ISO time: dead-lettered before")
    dlq.add_argument("--pilgrim-key")
    dlq.add_argument("--dry-run", action="store_true")
    dlq.add_argument("--operator", default=os.environ.get("USER", "unknown"), help="who replays (audit)")
    dlq.set_defaults(func=cmd_dlq)

    journey = sub.add_parser("journey", help="a pilgrim's journey: which agency reported what, when; open alerts")
    _add_pilgrim_arguments(journey)
    journey.add_argument("--json", action="store_true", help="the whole document as JSON")
    journey.set_defaults(func=cmd_journey)

    audit = sub.add_parser("audit", help="who received which fields about a pilgrim, when")
    _add_pilgrim_arguments(audit)
    audit.set_defaults(func=cmd_audit)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # kafka-python warns about routine states (no metadata yet for a new topic)
        logging.getLogger("kafka").setLevel(logging.ERROR)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
