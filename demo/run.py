"""The quick-start run: local Kafka, the hub, sample operator feeds, and what flowed where.

Starts (or reuses) the local broker, runs the hub in this process (HTTP ingest + router), POSTs
the sample feeds in ``demo/feeds/operators`` to the operators endpoint as an agency would, waits
until the router has delivered every accepted event to every subscriber topic, decodes a few, lets
Kafka's own console consumer read one subscriber topic, and prints a summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

FEEDS = Path(__file__).parent / "feeds" / "operators"
DEMO_API_KEY = "demo-operators-key-not-for-production"


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _topic_total(admin: Any, topic: str) -> int:
    return sum(admin.end_offsets(topic).values())


def run_demo(config_path: Path | None = None, keep_running: bool = False) -> int:
    from config import load_config
    from connectors.base import HttpTransport
    from hub import Hub
    from streaming.kafka import Admin, Consumer
    from streaming.local_broker import LocalBroker

    broker = LocalBroker.from_env()
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print(f"1. Kafka: starting/reusing the local broker ... {broker.up()}")
        config = load_config(config_path, overrides={})
        config = config.model_copy(
            update={"kafka": config.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})}
        )
    else:
        config = load_config(config_path)
        print(f"1. Kafka: using {config.kafka.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)")

    hub = Hub(config)
    hub.start_router()
    port = _free_port(config.http.port)
    server = hub.server(port=port)
    serving = threading.Thread(target=server.run, name="http", daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    print(f"2. Hub: HTTP ingest on {base} (OpenAPI docs {base}/docs), router group {config.router.group_id}")

    admin = Admin(config.kafka.client_settings("hub-demo"))
    topics = config.kafka.topics
    subs = hub.subscriptions.subscriptions
    watched = [topics.events, topics.quarantine, *(s.target.topic for s in subs)]
    before = {t: _topic_total(admin, t) for t in watched}

    endpoint = next(
        c.transport.path
        for c in config.connector_configs()
        if c.name == "operators-http" and isinstance(c.transport, HttpTransport)
    )
    print(f"3. Operators' agents POST their registration files to {endpoint}:")
    accepted = rejected = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        for feed in sorted(FEEDS.iterdir()):
            response = client.post(
                endpoint,
                content=feed.read_bytes(),
                headers={
                    "X-API-Key": DEMO_API_KEY,
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"demo-{feed.stem}-{int(time.time())}",
                },
            )
            body = response.json()
            accepted += body.get("accepted", 0)
            rejected += body.get("rejected", 0)
            print(
                f"   {feed.name:38} -> HTTP {response.status_code}  accepted {body.get('accepted', 0)}, "
                f"rejected {body.get('rejected', 0)}"
            )
            for r in body.get("rejections", []):
                print(f"      rejected {r['location']} [{r['field']}]: {r['reason'][:110]}")
        unauthenticated = client.post(endpoint, content=b"{}", headers={"X-API-Key": "wrong"})
        print(f"   (a request with a wrong API key gets HTTP {unauthenticated.status_code})")

    expected = {s.target.topic: accepted for s in subs}
    deadline = time.monotonic() + 60
    delivered: dict[str, int] = {}
    while time.monotonic() < deadline:
        delivered = {t: _topic_total(admin, t) - before[t] for t in expected}
        if all(delivered[t] >= n for t, n in expected.items()):
            break
        time.sleep(0.2)

    print("4. Router delivered, per subscriber topic:")
    for sub in subs:
        print(f"   {sub.id:24} {sub.target.topic:32} {delivered.get(sub.target.topic, 0)} event(s)")

    first = subs[0].target.topic
    print(f"5. Decoded from {first} (Avro, Confluent wire format, CloudEvents headers):")
    consumer = Consumer(
        config.kafka.client_settings("hub-demo"), group_id=f"demo-peek-{time.time_ns()}", topics=[first]
    )
    shown = 0
    seen_start = time.monotonic()
    while shown < 2 and time.monotonic() - seen_start < 15:
        for record in consumer.poll(timeout_ms=500):
            if shown >= 2:
                break
            _, event = hub.codec.decode(record.value or b"")
            headers = {k: v.decode() for k, v in record.headers if k.startswith("ce_")}
            print(f"   key={record.key.decode() if record.key else None} headers={headers}")
            print("   " + json.dumps(event, default=str)[:300] + " ...")
            shown += 1
    consumer.close()

    quarantined = _topic_total(admin, topics.quarantine) - before[topics.quarantine]
    admin.close()
    print("6. Kafka's own console consumer (from the same jars) reads the subscriber topic:")
    sys.stdout.flush()
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        broker.run_tool(
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server",
            config.kafka.bootstrap_servers,
            "--topic",
            first,
            "--from-beginning",
            "--max-messages",
            "2",
            "--timeout-ms",
            "10000",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "print.headers=true",
            "--formatter-property",
            "print.value=false",
        )

    ok = all(delivered.get(t, 0) >= n for t, n in expected.items())
    print()
    print("Summary")
    print(f"  feeds posted           {len(list(FEEDS.iterdir()))}")
    print(f"  events accepted        {accepted}  -> topic {topics.events}")
    print(
        f"  records rejected       {rejected}  -> topic {topics.quarantine} ({quarantined} quarantined, "
        "raw payload + error headers)"
    )
    for sub in subs:
        print(f"  delivered to {sub.id:22} {delivered.get(sub.target.topic, 0)}")
    print(f"  metrics                {base}/metrics (hub_ingest_*, hub_router_*)")
    print(f"  look yourself          .venv/bin/hub kafka console-consumer --topic {first} --from-beginning")
    print("  stop the broker        .venv/bin/hub kafka down")
    print(
        "  result                 "
        + (
            "OK: every accepted event reached every subscriber"
            if ok
            else "INCOMPLETE: some deliveries did not arrive in 60s"
        )
    )
    if keep_running:
        print(f"hub still running on {base}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            serving.join()
    server.should_exit = True
    serving.join(timeout=10)
    hub.close()
    return 0 if ok else 1
