"""The benchmark suite's workload and measurement protocol, shared by every contender process.

Imported by processes of both virtualenvs (the hub's ``.venv`` and ``.venv-bench``), so it imports
no Kafka client. It defines:

- **events**: PilgrimRegistered journey events, ~300 B (``small``) or ~1 KB (``large``) once Avro
  encoded in the Confluent wire format. ``operator_code`` cycles through :data:`BUCKETS` licence codes;
  subscriptions filter on it, which is how a workload gets an exact fan-out.
- **subscriptions**: ``n`` subscriptions of which every event matches exactly ``fanout``
  (subscription ``j`` accepts the buckets ``b`` with ``(j - b) mod n < fanout``). Every filter is an
  ``all`` of an ``equals``, an ``in`` over the subscription's buckets and an ``in`` over the
  nationalities; odd subscriptions project four fields and hash the surname, even ones take the
  whole event (the shapes of ``bench/bench_router.py``).
- **client settings** every contender uses: ``acks=all``, idempotence, linger 5 ms, 64 KiB batches
  (the hub producer's defaults, which the router uses), up to 1000 records per poll, a commit every
  :data:`COMMIT_INTERVAL_S` (the router instead commits one transaction per polled batch: its design).
- **the latency header** :data:`INTENDED_HEADER`: the load generator's intended send time (ns since
  the epoch). It is a CloudEvents extension attribute (``ce_`` prefix) because the router forwards
  ``ce_*`` headers only.
- :class:`DrainMeter`: how a contender measures a backlog drain inside its own process: wait until
  every consumer handled a record, discard a warm-up, then time consecutive windows (the
  repetitions), each with its events and the process's CPU seconds (``time.process_time``: all
  threads of the process, librdkafka's included).
- :func:`emit`: a contender's result, one ``RESULT {json}`` line on stdout, with the process's own
  peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

NATIONALITIES = ["IDN", "PAK", "EGY", "TUR", "MYS", "IND", "BGD", "NGA"]
BUCKETS = 100
"""Distinct operator codes; a multiple of every subscription count used, so fan-out is exact."""

HOUSING_LONG = (
    "MAK-0001/AJYAD-TOWER-B/FLOOR-17/ROOMS-1701-1712/QUAD-SHARING/NEAR-GATE-79/"
    "MEALS-FULL-BOARD/SHUTTLE-HARAM-24H/WHEELCHAIR-ACCESS/NOTES-GROUP-LEADER-CONTACT-AT-RECEPTION/"
    "TRANSFER-JED-MAK-COACH-07/ZIYARAH-MADINAH-DAY-5/EXTRA-BED-REQUESTED/LATE-CHECK-IN-EXPECTED-0200"
)
INTENDED_HEADER = "ce_benchintended"
RESULT_PREFIX = "RESULT "

LINGER_MS = 5
BATCH_BYTES = 64 * 1024
MAX_POLL_RECORDS = 1000
COMMIT_INTERVAL_S = 0.1
SOURCE_PARTITIONS = 6
TARGET_PARTITIONS = 3
MASK_KEY = b"k" * 32


def operator_code(bucket: int) -> str:
    return f"OP-{bucket:04d}"


def event(i: int, large: bool = False) -> dict[str, Any]:
    """Journey event number ``i``: ~300 B encoded, or ~1 KB with ``large`` (long names and references)."""
    now = datetime.now(UTC)
    position = f"bench#{i}"
    surname, given = "SURNAME", "GIVEN NAMES"
    registration = f"R-{i}"
    agent, group = "AG-1", f"G-{i // 40}"
    if large:
        position = (
            f"operators/inbox/processed/{operator_code(i % BUCKETS)}/2026-12-01/"
            f"registrations-umrah-season-batch-{i // 500:06d}.csv#line={i % 500 + 2}"
        )
        surname = "ABDULRAHMAN AL-HASHIMI BINTI MUHAMMAD NUR HIDAYAT SUPRIYADI KUSUMAWARDHANI"
        given = "SITI NURHALIZA AMINAH ZAHRA FATIMAH KHADIJAH RAHMAWATI PUTRI AYU LESTARI"
        registration = f"REG/{operator_code(i % BUCKETS)}/UMRAH-2026/AGENT-JAKARTA-SELATAN-017/{i:012d}"
        agent = "AGENT/ID/JAKARTA-SELATAN/PT-AMANAH-WISATA-HAJI-DAN-UMRAH-NUSANTARA-SEJAHTERA/BRANCH-017"
        group = f"GROUP/{operator_code(i % BUCKETS)}/UMRAH-2026/DEPARTURE-CGK-2026-12-01/BUS-{i // 40:06d}"
    return {
        "envelope": {
            "event_id": str(uuid.uuid4()), "event_type": "PilgrimRegistered", "occurred_at": now, "ingested_at": now,
            "source": {"agency": "operators", "connector": "bench", "position": position},
            "pilgrim_key": f"pk_{i:032x}", "trace_id": uuid.uuid4().hex,
        },
        "registration_id": registration, "operator_code": operator_code(i % BUCKETS), "agent_code": agent,
        "group_id": group, "season": "umrah",
        "pilgrim": {"surname": surname, "given_names": given, "sex": "F", "birth_date": date(1970, 1, 1),
                    "nationality": NATIONALITIES[i % len(NATIONALITIES)], "passport_number": f"X{i:08d}",
                    "passport_expiry": date(2030, 1, 1), "issuing_state": None},
        "planned_arrival": date(2026, 12, 1), "planned_departure": date(2026, 12, 15),
        "housing": "MAK-0001" if not large else HOUSING_LONG,
        "mobile": None if not large else "+62-812-0000-0000 / +62-21-7654-3210 (group leader)",
    }


def subscription_spec(j: int, n: int, fanout: int, target_topic: str) -> dict[str, Any]:
    """Subscription ``j`` of ``n``, so that every event matches exactly ``fanout`` of them."""
    codes = [operator_code(b) for b in range(BUCKETS) if (j - b) % n < fanout]
    spec: dict[str, Any] = {
        "id": f"bench-{j}", "agency": "bench", "event_types": ["PilgrimRegistered"],
        "target": {"kind": "kafka", "topic": target_topic},
        "filter": {"all": [
            {"field": "envelope.source.agency", "equals": "operators"},
            {"field": "operator_code", "in": codes},
            {"field": "pilgrim.nationality", "in": NATIONALITIES},
        ]},
    }
    if j % 2:
        spec["projection"] = {"fields": ["registration_id", "pilgrim.surname", "pilgrim.nationality", "season"],
                              "mask": {"pilgrim.surname": "hash"}}
    return spec


@dataclass(frozen=True)
class Workload:
    """One routing job: event size, subscriptions and how many of them each event matches."""

    size: str  # "small" (~300 B) or "large" (~1 KB)
    subscriptions: int
    fanout: int

    @property
    def name(self) -> str:
        return f"{self.size}-s{self.subscriptions}-f{self.fanout}"

    def specs(self, target: Callable[[int], str]) -> list[dict[str, Any]]:
        return [subscription_spec(j, self.subscriptions, self.fanout, target(j)) for j in range(self.subscriptions)]


# ---- measuring a drain ---------------------------------------------------------------------------


@dataclass
class Window:
    seconds: float
    events: float
    deliveries: float
    cpu_s: float


@dataclass
class DrainResult:
    windows: list[Window] = field(default_factory=list)
    ready_s: float = 0.0
    exhausted: bool = False
    partial_start: str | None = None

    def summary(self) -> dict[str, Any]:
        rates = [w.events / w.seconds for w in self.windows if w.seconds > 0]
        cpu = [w.cpu_s / w.events for w in self.windows if w.events > 0]
        deliveries = [w.deliveries / w.seconds for w in self.windows if w.seconds > 0]
        return {
            "events_per_s": statistics.median(rates) if rates else 0.0,
            "deliveries_per_s": statistics.median(deliveries) if deliveries else 0.0,
            "cpu_us_per_event": 1e6 * statistics.median(cpu) if cpu else None,
            "windows": [asdict(w) for w in self.windows],
            "ready_s": round(self.ready_s, 3),
            "exhausted": self.exhausted,
            "partial_start": self.partial_start,
        }


class DrainMeter:
    """Times a contender draining a backlog, from inside the contender's process.

    ``progress()`` returns (events handled, deliveries made, whether every consumer has started). The
    meter waits for the start (or, past ``ready_timeout_s``, measures those that started and says so
    in ``partial_start``), discards ``warmup_s``, then records ``windows`` windows of ``window_s``.
    If the backlog (``total`` events) would run out first, windows shrink to what is left (at the
    rate seen during warm-up) and ``exhausted`` is set when it ran out anyway.
    """

    def __init__(self, progress: Callable[[], tuple[float, float, bool]], total: int,
                 warmup_s: float, window_s: float, windows: int, timeout_s: float = 300.0,
                 waiting: Callable[[], str] | None = None, ready_timeout_s: float | None = None) -> None:
        self.ready_timeout_s = ready_timeout_s
        self.progress = progress
        self.waiting = waiting
        self.total = total
        self.warmup_s = warmup_s
        self.window_s = window_s
        self.windows = windows
        self.timeout_s = timeout_s

    def _sample(self) -> tuple[float, float, float, float]:
        events, deliveries, _ = self.progress()
        return time.perf_counter(), events, deliveries, time.process_time()

    def run(self, stop: threading.Event | None = None) -> DrainResult:
        result = DrainResult()
        t0 = time.perf_counter()
        told = t0
        while not self.progress()[2]:
            now = time.perf_counter()
            if now - t0 > self.timeout_s or (stop is not None and stop.is_set()):
                raise TimeoutError(f"consumers did not start within {self.timeout_s}s")
            if self.ready_timeout_s is not None and now - t0 > self.ready_timeout_s and self.progress()[0] > 0:
                result.partial_start = self.waiting() if self.waiting is not None else "partial"
                print(f"measuring after {now - t0:.0f}s with {result.partial_start}", file=sys.stderr, flush=True)
                break
            if self.waiting is not None and now - told > 10:
                told = now
                print(f"waiting {now - t0:.0f}s for consumers to start: {self.waiting()}", file=sys.stderr, flush=True)
            time.sleep(0.01)
        result.ready_s = time.perf_counter() - t0
        start = self._sample()
        time.sleep(self.warmup_s)
        previous = self._sample()
        warm_rate = (previous[1] - start[1]) / max(1e-6, previous[0] - start[0])
        left_s = (self.total - previous[1]) / warm_rate if warm_rate > 0 else float("inf")
        window_s = max(min(self.window_s, 0.25), min(self.window_s, 0.8 * left_s / self.windows))
        for _ in range(self.windows):
            deadline = previous[0] + window_s
            while time.perf_counter() < deadline:
                time.sleep(min(0.005, max(0.0, deadline - time.perf_counter())))
            now = self._sample()
            if now[1] >= self.total:
                result.exhausted = True
            result.windows.append(Window(round(now[0] - previous[0], 4), now[1] - previous[1],
                                         now[2] - previous[2], round(now[3] - previous[3], 4)))
            previous = now
        return result


def peak_rss_mb() -> float:
    """Peak resident set of this process (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(payload: dict[str, Any]) -> None:
    """Hand a contender's result to the suite: one line on stdout."""
    payload = {**payload, "peak_rss_mb": round(peak_rss_mb(), 1)}
    sys.stdout.write(RESULT_PREFIX + json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_PREFIX):])
            return parsed
    return None


def wanted_headers(headers: Iterator[tuple[str, bytes]] | list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The headers the router forwards to a subscriber (CloudEvents, content-type, traceparent)."""
    return [(k, v) for k, v in headers if k.startswith("ce_") or k in ("content-type", "traceparent")]


# ---- the contenders' common command line ---------------------------------------------------------


def contender_parser(description: str) -> argparse.ArgumentParser:
    """Arguments every contender takes (``bench/suite.py`` passes them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True, help="the journey topic to read")
    parser.add_argument("--target-format", required=True, help="subscriber topic j, e.g. bench.x.deliver.{j}")
    parser.add_argument("--aux-prefix", required=True, help="prefix of the router's replay/dlq/audit/schemas topics")
    parser.add_argument("--group", required=True, help="consumer group (prefix, for the router)")
    parser.add_argument("--size", choices=["small", "large"], default="small")
    parser.add_argument("--subscriptions", type=int, default=1)
    parser.add_argument("--fanout", type=int, default=1)
    parser.add_argument("--mode", choices=["drain", "live"], default="drain",
                        help="drain: measure the backlog and exit; live: route until SIGTERM")
    parser.add_argument("--total", type=int, default=0, help="events in the backlog (drain)")
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--window-s", type=float, default=1.5)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--commit-interval-s", type=float, default=COMMIT_INTERVAL_S)
    return parser


def until_terminated() -> threading.Event:
    """An event set by SIGTERM or SIGINT (how the suite ends a live contender)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
