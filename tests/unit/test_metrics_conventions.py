"""Metric names: the hub's ``/metrics`` exposition passes ``promtool check metrics`` and our rules.

No broker: import the modules that define the hub's metrics, give every hub metric samples with
realistic label values, render ``prometheus_client.generate_latest()`` (what ``/metrics`` serves)
and lint it. Our rules on top of promtool's: every hub family starts with ``hub_``, counters end in
``_total``, durations are in ``_seconds``, every family has a HELP text.

promtool is looked up in ``$PROMTOOL``, then on PATH, then in ``.tools/bin``; install it with
``scripts/install-promtool`` (CI does, before the tests). This module's helpers
(:func:`hub_exposition`, :func:`families`) are shared with ``test_dashboard.py``.
"""

from __future__ import annotations

import importlib
import itertools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]

METRIC_MODULES = (
    "connectors.runtime",
    "connectors.transports.http",
    "connectors.transports.filedrop",
    "connectors.transports.polling",
    "router.engine",
)
# Imported when present (the journey service is newer than the rest).
OPTIONAL_METRIC_MODULES = ("journey.service",)

# Families documented in the README (Metrics and health); they must stay exposed.
DOCUMENTED_FAMILIES = {
    "hub_ingest_events_total": "counter",
    "hub_ingest_rejections_total": "counter",
    "hub_ingest_inputs_total": "counter",
    "hub_ingest_duration_seconds": "histogram",
    "hub_http_requests_total": "counter",
    "hub_filedrop_files_total": "counter",
    "hub_polling_requests_total": "counter",
    "hub_router_deliveries_total": "counter",
    "hub_router_retries_total": "counter",
    "hub_router_delivery_latency_seconds": "histogram",
    "hub_router_consumer_lag": "gauge",
}
# The journey service's families (journey/service.py), with their labels.
JOURNEY_FAMILIES = {
    "hub_journey_events_total": ("counter", ("event_type",)),
    "hub_journey_alerts_total": ("counter", ("alert_type",)),
    "hub_journey_open_alerts": ("gauge", ("alert_type",)),
    "hub_journey_pilgrims": ("gauge", ()),
}

# Realistic label values (config/hub.yaml, config/subscriptions.yaml, the code's own outcomes).
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "agency": ("operators", "immigration"),
    "connector": ("operators-http",),
    "event_type": ("PilgrimRegistered", "BorderEntryRecorded"),
    "kind": ("input", "record"),
    "status": ("202", "400", "401", "413"),
    "outcome": ("accepted", "partial", "rejected"),
    "subscriber": ("ministry-ops", "hotels-arrivals"),
    "alert_type": ("no_show", "overstay"),
}
FAMILY_LABEL_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("hub_filedrop_files", "connector"): ("operators-bulk", "airlines-api"),
    ("hub_polling_requests", "connector"): ("airlines-flight-status",),
    ("hub_polling_requests", "outcome"): ("page", "empty", "repeat", "failed"),
    ("hub_router_deliveries", "outcome"): ("delivered", "filtered", "dead_lettered"),
}
FALLBACK_LABEL_VALUES = ("example",)
OBSERVATIONS = (0.004, 0.03, 0.2, 1.7)  # seconds: spread over the buckets

TIME_WORDS = {"duration", "latency", "elapsed", "time", "delay", "wait", "age", "uptime", "timeout"}
NON_BASE_TIME_UNITS = {"ms", "millis", "milliseconds", "us", "micros", "microseconds", "ns", "nanoseconds",
                       "minutes", "mins", "hours", "days"}


@dataclass(frozen=True)
class Exposition:
    full: str  # generate_latest(): everything /metrics serves, the Python runtime's metrics included
    hub: str  # the metrics defined by the hub's modules only
    journey_imported: bool


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    help: str
    samples: tuple[str, ...]  # sample names
    labels: frozenset[str]  # label names over all samples


def _import_metric_modules() -> bool:
    for name in METRIC_MODULES:
        importlib.import_module(name)
    journey = True
    for name in OPTIONAL_METRIC_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            # Only "not written yet" is tolerated: a broken import inside it is a failure.
            parts = name.split(".")
            if e.name not in {".".join(parts[: i + 1]) for i in range(len(parts))}:
                raise
            journey = False
    return journey


def hub_collectors() -> list[MetricWrapperBase]:
    """The metrics the hub's modules defined (the Python runtime's collectors are not metric wrappers)."""
    return [c for c in list(REGISTRY._collector_to_names) if isinstance(c, MetricWrapperBase)]


def _label_values(metric: MetricWrapperBase) -> list[tuple[str, ...]]:
    name = metric._name
    choices = [FAMILY_LABEL_VALUES.get((name, label), LABEL_VALUES.get(label, FALLBACK_LABEL_VALUES))
               for label in metric._labelnames]
    return list(itertools.product(*choices))


def _existing_children(metric: MetricWrapperBase) -> set[tuple[str, ...]]:
    names = metric._labelnames
    return {tuple(s.labels[n] for n in names) for family in metric.collect() for s in family.samples
            if all(n in s.labels for n in names)}


def _exercise(child: MetricWrapperBase, n: int) -> None:
    if isinstance(child, Counter):
        child.inc(n + 1)
    elif isinstance(child, Gauge):
        child.set(3 * n + 2)
    elif isinstance(child, Histogram | Summary):
        for value in OBSERVATIONS:
            child.observe(value * (n + 1))
    else:
        raise AssertionError(f"{child._name}: no exercise for {type(child).__name__}; extend this test")


@cache
def hub_exposition() -> Exposition:
    """Import the metric modules, give each hub metric samples, render; remove the labelled samples added."""
    journey = _import_metric_modules()
    collectors = hub_collectors()
    added: list[tuple[MetricWrapperBase, tuple[str, ...]]] = []
    try:
        for metric in collectors:
            if not metric._labelnames:
                _exercise(metric, 0)
                continue
            before = _existing_children(metric)
            for n, values in enumerate(_label_values(metric)):
                _exercise(metric.labels(*values), n)
                if values not in before:
                    added.append((metric, values))
        full = generate_latest().decode()
        only_hub = CollectorRegistry(auto_describe=True)
        for metric in collectors:
            only_hub.register(metric)
        hub = generate_latest(only_hub).decode()
    finally:
        for metric, values in added:  # leave the process-wide registry as other tests knew it
            metric.remove(*values)
    return Exposition(full, hub, journey)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
_LABEL_NAME = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def families(text: str) -> dict[str, Family]:
    """Families of a text exposition, by the name in its ``# TYPE`` line."""
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    samples: dict[str, list[str]] = {}
    labels: dict[str, set[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, doc = line[len("# HELP "):].partition(" ")
            helps[name] = doc.strip()
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE "):].partition(" ")
            types[name] = kind.strip()
            current = name
            samples.setdefault(name, [])
            labels.setdefault(name, set())
        elif line and not line.startswith("#"):
            m = _SAMPLE.match(line)
            assert m, f"unparsable sample line: {line!r}"
            assert current and m.group(1).startswith(current), f"sample {m.group(1)} outside its family"
            samples[current].append(m.group(1))
            labels[current].update(_LABEL_NAME.findall(m.group(2) or ""))
    return {name: Family(name, kind, helps.get(name, ""), tuple(samples[name]), frozenset(labels[name]))
            for name, kind in types.items()}


def require_promtool() -> str:
    """promtool's path; fails (not skips: CI installs it) when there is none."""
    found = find_promtool()
    if found is None:
        pytest.fail("promtool not found ($PROMTOOL, PATH, .tools/bin): run scripts/install-promtool first",
                    pytrace=False)
    return found


def find_promtool() -> str | None:
    candidates = [os.environ.get("PROMTOOL"), shutil.which("promtool"), str(ROOT / ".tools" / "bin" / "promtool")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def promtool_check_metrics(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture(scope="module")
def exposition() -> Exposition:
    return hub_exposition()


@pytest.fixture(scope="module")
def hub_families(exposition: Exposition) -> dict[str, Family]:
    return families(exposition.hub)


def test_promtool_finds_no_problems(exposition: Exposition) -> None:
    result = promtool_check_metrics(require_promtool(), exposition.full)
    problems = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not problems, (
        f"`promtool check metrics` on the hub's /metrics (exit {result.returncode}):\n{problems}"
    )


def test_promtool_does_flag_bad_names() -> None:
    # Guards the test above against a promtool that lints nothing (or reports differently).
    bad = "# HELP hub_dropped_counter Files.\n# TYPE hub_dropped_counter counter\nhub_dropped_counter 1\n"
    result = promtool_check_metrics(require_promtool(), bad)
    assert result.returncode != 0
    assert '"_total" suffix' in result.stdout + result.stderr


def test_every_hub_family_has_samples(hub_families: dict[str, Family]) -> None:
    assert hub_families
    empty = sorted(name for name, f in hub_families.items() if not f.samples)
    assert not empty, f"families without samples (exercise them in this test): {empty}"


def test_documented_families_are_exposed(exposition: Exposition, hub_families: dict[str, Family]) -> None:
    expected = {name: kind for name, kind in DOCUMENTED_FAMILIES.items()}
    if exposition.journey_imported:
        expected.update({name: kind for name, (kind, _) in JOURNEY_FAMILIES.items()})
    actual = {name: f.type for name, f in hub_families.items() if name in expected}
    assert actual == expected


def test_journey_families_have_their_labels(exposition: Exposition, hub_families: dict[str, Family]) -> None:
    if not exposition.journey_imported:
        pytest.skip("journey.service is not there yet")
    for name, (_, labels) in JOURNEY_FAMILIES.items():
        assert hub_families[name].labels == set(labels), name


def test_families_start_with_hub(hub_families: dict[str, Family]) -> None:
    assert sorted(n for n in hub_families if not n.startswith("hub_")) == []


def test_counters_end_in_total(hub_families: dict[str, Family]) -> None:
    assert sorted(n for n, f in hub_families.items() if f.type == "counter" and not n.endswith("_total")) == []
    # ... and nothing else does (a gauge named *_total reads as a counter).
    assert sorted(n for n, f in hub_families.items() if f.type != "counter" and n.endswith("_total")) == []


def test_durations_are_in_seconds(hub_families: dict[str, Family]) -> None:
    wrong = []
    for name, family in hub_families.items():
        base = re.sub(r"_(total|created)$", "", name)
        words = set(base.split("_"))
        if words & NON_BASE_TIME_UNITS or (words & TIME_WORDS and not base.endswith("_seconds")):
            wrong.append(f"{name} ({family.type})")
    assert not wrong, f"durations must be in seconds, named *_seconds: {wrong}"


def test_every_family_has_help(exposition: Exposition) -> None:
    all_families = families(exposition.full)
    assert sorted(n for n, f in all_families.items() if not f.help) == []

