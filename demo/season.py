"""The main job: the whole hub on a simulated season, checked against the simulator's ground truth.

``hub simulate --pilgrims N [--rate R] [--seed S] [--anomalies ...]`` starts (or reuses) the local
broker, runs every hub component in this process (HTTP ingest, file-drop inboxes, router, journey
service on the simulated clock) in a sandbox of its own (topic names prefixed ``sim-<run>.``, its
own consumer groups, inboxes under ``.data/simulations/<run>/``), lets the simulator deliver the
season through the connectors' transports, waits until every component has caught up, and prints
what flowed where, the alerts by type, and their precision and recall against the ground truth.
The run's config and ground truth stay in ``.data/simulations/<run>/`` for ``hub journey``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

DEMO_KEYS = {
    "operators": "demo-operators-key-not-for-production",
    "immigration": "demo-immigration-key-not-for-production",
    "hotels": "demo-hotels-key-not-for-production",
}
SEASON_START = datetime(2026, 12, 1, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _sandbox(config_path: Path | None, run: str, root: Path, journey: dict[str, Any] | None = None) -> Path:
    """This run's hub.yaml: the configured hub, with topics, groups and inboxes of its own."""
    from demo import local_config

    base, raw = local_config(config_path)
    raw["kafka"]["sasl_password"] = None  # from the environment again when the run's config is loaded
    raw["kafka"]["topics"] = {k: f"sim-{run}.{v}" for k, v in raw["kafka"]["topics"].items()}
    raw["journey"]["journeys_topic"] = f"sim-{run}.{raw['journey']['journeys_topic']}"
    raw["journey"]["group_id"] = f"sim-{run}.journey"
    raw["journey"].update(journey or {})
    raw["router"]["group_id"] = f"sim-{run}.router"
    raw["quarantine_dir"] = str(root / "quarantine")
    raw["http"]["port"] = _free_port()
    for connector in raw["connectors"]:
        connector["name"] = f"sim-{run[:8]}-{connector['name']}"[:63]
        if connector["transport"]["kind"] == "filedrop":
            connector["transport"].update(
                directory=str(root / "inbox" / connector["type"]), settle_seconds=0.1, poll_seconds=0.1
            )
        if connector["transport"]["kind"] == "polling":
            connector["enabled"] = False
    subscriptions = yaml.safe_load(base.subscriptions_path().read_text())
    for sub in subscriptions["subscriptions"]:
        if sub["target"]["kind"] == "kafka":
            sub["target"]["topic"] = f"sim-{run}.{sub['target']['topic']}"
    (root / "subscriptions.yaml").write_text(yaml.safe_dump(subscriptions, sort_keys=False))
    raw["router"]["subscriptions_file"] = "subscriptions.yaml"
    path = root / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _metric(metric: Any, *labels: str) -> dict[tuple[str, ...], float]:
    totals: dict[tuple[str, ...], float] = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = tuple(sample.labels[label] for label in labels)
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _rss_bytes() -> int:
    """Resident set size of this process (all hub components run in it), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Monitor:
    """Samples RSS and the consumers' lag every ``interval`` seconds while a season runs (the soak)."""

    def __init__(self, hub: Any, interval: float) -> None:
        self.hub = hub
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def _lag(self) -> float:
        lags = [w.lag for w in self.hub.workers]
        if self.hub.journey and self.hub.journey.consumer:
            lags.append(self.hub.journey.consumer.lag)
        total = 0
        for lag in lags:
            with contextlib.suppress(Exception):  # a rebalance: skip this sample's share
                total += lag()
        return float(total)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            journeys = self.hub.journey.pilgrims() if self.hub.journey else 0
            self.samples.append(
                {
                    "t": round(time.monotonic() - self.started, 1),
                    "rss_mb": _rss_bytes() / 2**20,
                    "lag": self._lag(),
                    "journeys": journeys,
                }
            )

    def report(self, warmup_fraction: float = 0.2) -> dict[str, float]:
        """RSS growth after warm-up and the lag trend (second half vs first half of the samples)."""
        samples = self.samples[int(len(self.samples) * warmup_fraction) :] or self.samples
        if not samples:
            return {}
        first, last = samples[0]["rss_mb"], samples[-1]["rss_mb"]
        half = len(samples) // 2 or 1
        lag_first = sum(x["lag"] for x in samples[:half]) / half
        lag_second = sum(x["lag"] for x in samples[half:]) / max(1, len(samples) - half)
        return {
            "samples": len(self.samples),
            "rss_start_mb": round(first, 1),
            "rss_end_mb": round(last, 1),
            "rss_peak_mb": round(max(x["rss_mb"] for x in samples), 1),
            "rss_growth_pct": round(100 * (last - first) / first, 2),
            "lag_mean_first_half": round(lag_first, 1),
            "lag_mean_second_half": round(lag_second, 1),
            "lag_max": max(x["lag"] for x in samples),
            "journeys_start": samples[0]["journeys"],
            "journeys_end": samples[-1]["journeys"],
        }


def run_simulation(
    pilgrims: int,
    rate: float,
    seed: int,
    anomalies: str,
    config_path: Path | None = None,
    keep: bool = True,
    monitor_seconds: float = 0.0,
    *,
    arrival_days: int | None = None,
    registration_window_days: float | None = None,
    journey: dict[str, Any] | None = None,
    warmup_fraction: float = 0.2,
) -> int:
    from config import load_config
    from connectors.base import FileDropTransport, HttpTransport
    from connectors.runtime import EVENTS, REJECTIONS
    from hub import Hub
    from router.engine import DELIVERIES
    from simulator import Anomalies, SimClock, Targets, expected_alerts, plan_season, run_season, write_ground_truth
    from streaming.kafka import read_to_end

    run = f"{time.strftime('%Y%m%dT%H%M%S')}-s{seed}"
    root = Path(".data/simulations") / run
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"1. Kafka and a sandbox for this run: {root}/hub.yaml (topics sim-{run}.*)", flush=True)
    config = load_config(_sandbox(config_path, run, root, journey))

    plan = plan_season(
        pilgrims,
        seed,
        Anomalies.parse(anomalies),
        SEASON_START,
        config.keyer(),
        arrival_days=arrival_days,
        registration_window_days=registration_window_days,
    )
    clock = SimClock(plan.start)
    print(
        f"2. Season planned: {pilgrims} pilgrims, seed {seed}, from {plan.start:%Y-%m-%d} "
        f"({time.monotonic() - started:.1f}s)",
        flush=True,
    )

    hub = Hub(config)
    hub.start_router()
    hub.start_transports()
    hub.start_journey(clock=clock.now)
    server = hub.server()
    threading.Thread(target=server.run, name="http", daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{config.http.port}"
    http: dict[str, tuple[str, str]] = {}
    inboxes: dict[str, Path] = {}
    for connector in config.connector_configs():
        kind = getattr(connector, "type", "")
        if isinstance(connector.transport, HttpTransport) and kind in DEMO_KEYS:
            http[kind] = (connector.transport.path, DEMO_KEYS[kind])
        elif isinstance(connector.transport, FileDropTransport):
            inboxes[kind] = Path(connector.transport.directory)
    print(
        f"3. Hub up: HTTP {base}, inboxes {', '.join(sorted(inboxes))}, "
        f"{len(hub.subscriptions.subscriptions)} subscriptions, journey service on the simulated clock",
        flush=True,
    )

    def idle(timeout_s: float = 600) -> None:
        """Inboxes empty, journey service and every router worker caught up (three checks in a row)."""
        deadline = time.monotonic() + timeout_s
        streak = 0
        while time.monotonic() < deadline and streak < 3:
            busy = any(p.is_file() for d in inboxes.values() if d.is_dir() for p in d.iterdir())
            journey = hub.journey.consumer if hub.journey else None
            try:
                lagging = any(w.consumer is None or not w.consumer.assignment() or w.lag() for w in hub.workers)
                lagging = lagging or (
                    hub.journey is not None and (journey is None or not journey.assignment() or bool(journey.lag()))
                )
            except Exception:
                lagging = True
            busy = busy or lagging or any(w.busy for w in hub.workers)
            streak = 0 if busy else streak + 1
            time.sleep(0.5)

    monitor = Monitor(hub, monitor_seconds) if monitor_seconds else None
    if monitor:
        monitor.thread.start()
    print("4. The simulator delivers the season through the connectors' transports:", flush=True)
    result = run_season(
        plan,
        Targets(base, http, inboxes),
        clock,
        rate=rate,
        progress=lambda line: print("   " + line, flush=True),
        wait_idle=idle,
    )
    print(
        f"   clock moved to {result.final_clock:%Y-%m-%d}: every deadline has passed; waiting for alerts ...",
        flush=True,
    )
    time.sleep(2)
    idle()

    soak: dict[str, float] = {}
    if monitor:
        monitor.stop.set()
        soak = monitor.report(warmup_fraction)
        (root / "soak.json").write_text(json.dumps({"report": soak, "samples": monitor.samples}, indent=1))
    truth = root / "ground-truth.jsonl"
    write_ground_truth(plan, truth, result.final_clock)
    expected = expected_alerts(plan, result.final_clock)
    settings = config.kafka.client_settings("hub-simulate")
    raised: dict[str, set[str]] = {}
    raised_count: Counter[str] = Counter()
    for record in read_to_end(settings, config.kafka.topics.events):
        if (record.header("ce_type") or b"").endswith(b".JourneyAlertRaised"):
            _, event = hub.codec.decode(record.value or b"")
            raised.setdefault(event["envelope"]["pilgrim_key"], set()).add(event["alert_type"])
            raised_count[event["alert_type"]] += 1
    wall = time.monotonic() - started

    events = _metric(EVENTS, "agency")
    rejections = _metric(REJECTIONS, "agency")
    deliveries = _metric(DELIVERIES, "subscriber", "outcome")
    print()
    print(
        f"Summary: {pilgrims} pilgrims, {sum(events.values()):.0f} events accepted, wall time {wall:.0f}s "
        f"(delivery {result.wall_seconds:.0f}s)"
    )
    print("  events per agency      " + ", ".join(f"{a} {n:.0f}" for (a,), n in sorted(events.items())))
    print("  rejected (quarantined) " + ", ".join(f"{a} {n:.0f}" for (a,), n in sorted(rejections.items())))
    for sub in hub.subscriptions.subscriptions:
        got = deliveries.get((sub.id, "delivered"), 0)
        filtered = deliveries.get((sub.id, "filtered"), 0)
        dead = deliveries.get((sub.id, "dead_lettered"), 0)
        print(f"  delivered to {sub.id:26} {got:7.0f}  (filtered out {filtered:.0f}, dead letters {dead:.0f})")
    types = sorted({t for v in expected.values() for t in v} | {t for v in raised.values() for t in v})
    exact = True
    print("  alerts           raised  expected  true+  false+  missed  precision  recall")
    for alert_type in types:
        wanted = {k for k, v in expected.items() if alert_type in v}
        found = {k for k, v in raised.items() if alert_type in v}
        tp, fp, fn = len(wanted & found), len(found - wanted), len(wanted - found)
        exact = exact and fp == 0 and fn == 0 and raised_count[alert_type] == len(found)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(
            f"  {alert_type:24} {raised_count[alert_type]:6} {len(wanted):9} {tp:6} {fp:7} {fn:7} "
            f"{precision:10.3f} {recall:7.3f}"
        )
    example = next((k for k, v in sorted(raised.items()) if v), next(iter(expected), ""))
    if soak:
        print(
            f"  soak                   RSS {soak['rss_start_mb']} -> {soak['rss_end_mb']} MB after warm-up "
            f"({soak['rss_growth_pct']:+}%), lag mean {soak['lag_mean_first_half']} then "
            f"{soak['lag_mean_second_half']} (max {soak['lag_max']:.0f}), journeys held {soak['journeys_start']} -> "
            f"{soak['journeys_end']}; samples in {root}/soak.json"
        )
    print(f"  ground truth           {truth}")
    print(f"  a pilgrim's journey    .venv/bin/hub --config {root}/hub.yaml journey {example}")
    print(f"  metrics                {base}/metrics (while the hub runs; `hub run` serves them too)")
    print(
        "  result                 "
        + ("OK: the alerts match the ground truth exactly" if exact else "MISMATCH: see precision/recall above")
    )
    (root / "summary.json").write_text(
        json.dumps(
            {
                "pilgrims": pilgrims,
                "seed": seed,
                "wall_seconds": round(wall, 1),
                "events": {a: n for (a,), n in events.items()},
                "alerts": {t: raised_count[t] for t in types},
                "exact": exact,
            },
            indent=2,
        )
    )
    server.should_exit = True
    hub.close()
    if not keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0 if exact else 1
