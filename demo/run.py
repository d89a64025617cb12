"""The quick-start run: local Kafka, the whole hub, sample feeds from all four agencies, what flowed where.

Starts (or reuses) the local broker and runs the hub in this process (HTTP ingest, file-drop
inboxes, router). Agencies' sample feeds in ``demo/feeds/`` go in through the connectors' own
transports: operators, immigration and hotels POST over HTTP with their API keys; the airline's
PAXLST manifest and flight-status file are dropped into its inbox. The demo waits until every
subscriber has caught up, prints what each agency's feed gave, what each subscriber received (only
its entitled events and fields), one projected delivery decoded, what Kafka's own console consumer
reads, and where to look next.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

FEEDS = Path(__file__).parent / "feeds"
# Demo credentials only; config/hub.yaml holds their SHA-256, never the keys themselves.
DEMO_KEYS = {
    "operators-http": "demo-operators-key-not-for-production",
    "immigration-http": "demo-immigration-key-not-for-production",
    "hotels-http": "demo-hotels-key-not-for-production",
}
HTTP_FEEDS = {"operators-http": "operators", "immigration-http": "immigration", "hotels-http": "hotels"}
DROP_FEEDS = {"airlines-api": "airlines"}


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _per_agency() -> dict[str, tuple[int, int]]:
    """Accepted events and rejections per agency in this process, from the ingest metrics."""
    from connectors.runtime import EVENTS, REJECTIONS

    totals: dict[str, list[int]] = {}
    for index, metric in enumerate((EVENTS, REJECTIONS)):
        for family in metric.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    totals.setdefault(sample.labels["agency"], [0, 0])[index] += int(sample.value)
    return {agency: (counts[0], counts[1]) for agency, counts in sorted(totals.items())}


def _demo_config(config_path: Path | None, inbox_root: Path) -> Any:
    """The configured hub on the local broker, with the file-drop inboxes in a fresh folder."""
    from config import HubConfig
    from demo import local_config

    config, raw = local_config(config_path)
    for connector in raw["connectors"]:
        if connector["transport"]["kind"] == "filedrop":
            connector["transport"]["directory"] = str(inbox_root / connector["name"])
            connector["transport"]["settle_seconds"] = 0.2
            connector["transport"]["poll_seconds"] = 0.2
    return HubConfig.model_validate({**raw, "source": config.source})


def run_demo(config_path: Path | None = None, keep_running: bool = False) -> int:
    from connectors.base import HttpTransport
    from router.engine import decode_delivery, read_derived_schemas
    from router.subscriptions import KafkaTarget
    from streaming.kafka import Admin, read_to_end
    from streaming.local_broker import LocalBroker

    broker = LocalBroker.from_env()
    inbox_root = Path(tempfile.mkdtemp(prefix="hub-demo-inbox-"))
    print("1. Kafka: starting or reusing the local broker (jars from Maven Central on first run) ...")
    config = _demo_config(config_path, inbox_root)
    print(f"   Kafka at {config.kafka.bootstrap_servers}")

    from hub import Hub

    hub = Hub(config)
    hub.start_router()
    hub.start_transports()
    port = _free_port(config.http.port)
    server = hub.server(port=port)
    serving = threading.Thread(target=server.run, name="http", daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    kafka_subs = [(s.id, s.target.topic) for s in hub.subscriptions.subscriptions if isinstance(s.target, KafkaTarget)]
    print(
        f"2. Hub: HTTP ingest on {base} (docs {base}/docs), {len(hub.runtimes)} connectors, "
        f"{len(hub.subscriptions.subscriptions)} subscriptions (Kafka targets in one router lane, a worker per webhook)"
    )

    admin = Admin(config.kafka.client_settings("hub-demo"))
    topics = config.kafka.topics

    def total(topic: str) -> int:
        return sum(admin.end_offsets(topic).values())

    def idle() -> bool:
        if not all(w.consumer and w.consumer.assignment() and not w.busy for w in hub.workers):
            return False
        return not any(w.lag() for w in hub.workers) and not any(w.busy for w in hub.workers)

    def caught_up(timeout_s: float) -> None:
        """Every router worker has read to the end and delivered, twice in a row half a second apart."""
        deadline = time.monotonic() + timeout_s
        streak = 0
        while time.monotonic() < deadline and streak < 3:
            streak = streak + 1 if idle() else 0
            time.sleep(0.5)

    caught_up(60)  # a new subscriber first receives what the journey topic already holds (backfill)
    journey_start = admin.end_offsets(topics.events)
    before = {t: total(t) for t in [topics.quarantine, topics.dead_letter]}

    print("3. Agencies send their feeds through the connectors' transports:")
    paths = {c.name: c.transport.path for c in config.connector_configs() if isinstance(c.transport, HttpTransport)}
    with httpx.Client(base_url=base, timeout=60) as client:
        for connector, agency in HTTP_FEEDS.items():
            for feed in sorted((FEEDS / agency).iterdir()):
                response = client.post(
                    paths[connector],
                    content=feed.read_bytes(),
                    headers={
                        "X-API-Key": DEMO_KEYS[connector],
                        "Idempotency-Key": f"demo-{feed.stem}-{time.time_ns()}",
                    },
                )
                body = response.json()
                print(
                    f"   POST {paths[connector]:20} {feed.name:34} HTTP {response.status_code}  "
                    f"accepted {body.get('accepted', 0)}, rejected {body.get('rejected', 0)}"
                )
                for rejection in body.get("rejections", [])[:2]:
                    print(
                        f"        rejected {rejection['location']} [{rejection['field']}]: {rejection['reason'][:90]}"
                    )
        wrong = client.post(paths["operators-http"], content=b"{}", headers={"X-API-Key": "guess"})
        print(f"   (a request with a wrong API key gets HTTP {wrong.status_code})")

    run_id = time.strftime("%Y%m%dT%H%M%S")
    for connector, agency in DROP_FEEDS.items():
        inbox = inbox_root / connector
        inbox.mkdir(parents=True, exist_ok=True)
        for feed in sorted((FEEDS / agency).iterdir()):
            # a new file name each run: the inbox remembers (checkpoints) the files it already took
            name = f"{feed.stem}.{run_id}{feed.suffix}"
            shutil.copy(feed, inbox / f".{name}.part")  # write under a temporary name, then rename
            os.replace(inbox / f".{name}.part", inbox / name)
            print(f"   drop into the {connector} inbox {'':14} {name}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(p.is_file() for p in inbox.iterdir()):
            time.sleep(0.2)
        for report in sorted((inbox / "processed").glob("*.error.json")):
            data = json.loads(report.read_text())
            print(
                f"        {report.name}: {len(data['rejections'])} record(s) rejected, e.g. "
                f"{data['rejections'][0]['location']}: {data['rejections'][0]['reason'][:70]}"
            )

    caught_up(90)
    quarantined = total(topics.quarantine) - before[topics.quarantine]
    dead = total(topics.dead_letter) - before[topics.dead_letter]

    settings = config.kafka.client_settings("hub-demo")
    # count records, not offsets: transaction commit markers take offsets too
    run_ids = {
        r.header("ce_id") for r in read_to_end(settings, topics.events) if r.offset >= journey_start.get(r.partition, 0)
    }
    events = len(run_ids)
    print(f"4. Router: {events} journey event(s) on {topics.events}; each subscriber received its entitled ones:")
    received = {
        sub: sum(1 for r in read_to_end(settings, topic) if r.header("ce_id") in run_ids) for sub, topic in kafka_subs
    }
    for sub, topic in kafka_subs:
        print(f"   {sub:24} -> {topic:34} {received[sub]:4} event(s)")

    sub, topic = next(((s, t) for s, t in kafka_subs if s == "hotels-arrivals" and received[s]), kafka_subs[0])
    schemas = read_derived_schemas(settings, topics.schemas)
    sample = [r for r in read_to_end(config.kafka.client_settings("hub-demo"), topic)][-1:]
    print(f"5. One delivery to {sub}, decoded with the subscriber's own schema (only the projected fields):")
    for record in sample:
        event = decode_delivery(record.value or b"", schemas)
        print("   " + json.dumps(event, default=str)[:400])
        print("   headers: " + ", ".join(f"{k}={v.decode()[:40]}" for k, v in record.headers if k.startswith("ce_")))

    print(f"6. Kafka's own console consumer (from the same jars) reads {topic}:")
    sys.stdout.flush()
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        broker.run_tool(
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server",
            config.kafka.bootstrap_servers,
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            "2",
            "--timeout-ms",
            "10000",
            "--isolation-level",
            "read_committed",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "print.headers=true",
            "--formatter-property",
            "print.value=false",
        )
    admin.close()

    # The operations room subscribes to every event type: it must have them all. Other subscribers are
    # entitled to a filtered subset (the overstay-alert one to alerts, which a short tour never raises).
    ok = events > 0 and dead == 0 and received.get("ministry-ops", events) == events
    print()
    print("Summary")
    for agency, (accepted, rejected) in _per_agency().items():
        print(f"  {agency:22} {accepted:3} event(s) accepted, {rejected:3} input(s)/record(s) rejected")
    print(f"  journey events         {events}  ({topics.events})")
    print(f"  quarantined            {quarantined}  ({topics.quarantine}: raw payload + error headers)")
    print(f"  dead letters           {dead}  (`hub dlq list`)")
    for sub, _ in kafka_subs:
        print(f"  delivered to {sub:24} {received[sub]}")
    key = hub.runtimes[0].keyer.key("IDN", "C4721938")
    print(f"  metrics                {base}/metrics while the hub runs (`hub run`): hub_ingest_*, hub_router_*")
    print(f"  who got what           .venv/bin/hub audit {key}")
    print(f"  read a topic           .venv/bin/hub kafka console-consumer --topic {topic} --from-beginning")
    print("  stop the broker        .venv/bin/hub kafka down")
    print(
        "  result                 "
        + (
            "OK: every event reached the operations room, none dead-lettered"
            if ok
            else "INCOMPLETE: events missing or dead-lettered"
        )
    )
    if keep_running:
        print(f"hub still running on {base}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            serving.join()
    server.should_exit = True
    serving.join(timeout=10)
    hub.close()
    shutil.rmtree(inbox_root, ignore_errors=True)
    return 0 if ok else 1
