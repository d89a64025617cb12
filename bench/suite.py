"""The benchmark suite: the hub's router against the broker's ceiling, bare passthroughs and Quix Streams.

    make bench                          # python -m bench.suite: full suite, under 10 minutes on 2 cores
    python -m bench.suite --quick       # a subset, ~2 minutes
    python -m bench.suite --smoke       # tiny sizes, router and kafka-python only (the smoke test)

Against ONE broker (``KAFKA_BOOTSTRAP_SERVERS``, else the project's local broker, started if needed)
in ONE run, every contender in its own subprocess, one at a time:

1. **ceiling**: Kafka's own ``ProducerPerformance`` (``--throughput -1``, ``acks=all``, idempotence,
   linger 5 ms, 64 KiB batches, ``--warmup-records``) and ``ConsumerPerformance`` from the broker's
   jars, with the record sizes of the workload's events; median of ``--reps`` JVM runs.
2. **bare passthroughs** (``bench/contender_kafka_python.py``, ``bench/contender_confluent.py``):
   consume → produce to ``fanout`` topics, no logic, the same client settings and commit interval.
3. **Quix Streams** (``bench/contender_quix.py``) running the hub's routing job.
4. **the hub's router** (``bench/contender_router.py``): ``router.engine``'s Kafka lane.
5. **connector parse throughput**: ``bench.bench_paxlst`` and the other ``make bench-parse`` modules,
   their printed rates collected (no Kafka).

Workload (``bench/workload.py``): preloaded PilgrimRegistered events, Avro in the Confluent wire
format, ~300 B or ~1 KB; 1, 10 or 100 subscriptions, each event matching exactly 1, 3 or 10.

- **drain**: each contender reads the preloaded backlog from the start with a new group and
  measures itself (:class:`bench.workload.DrainMeter`): after every consumer handled a record, a
  warm-up is discarded, then ``--windows`` consecutive windows are the repetitions; the table shows
  their median events/s and CPU µs per event (``time.process_time`` of the contender's process, all
  threads), and the process's peak RSS (``ru_maxrss``).
- **latency**: the contender routes a fresh topic while ``bench/load.py`` offers 25/50/75% of that
  contender's drain maximum and a fixed 1000 events/s, open loop, stamping each event's intended send
  time; the subscriber-side consumer measures receive - intended (p50/p99, median over windows).

quixstreams and confluent-kafka are not installed in the hub's ``.venv``: the suite creates
``.venv-bench`` from ``bench/requirements.txt`` on first run and runs those contenders (and the load
generator, with confluent-kafka) with its interpreter. Writes ``bench/results/suite-<time>.md/.json``
and ``latest.md/.json``, prints the Markdown, and deletes its topics and consumer groups.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import render
from bench.workload import (
    BATCH_BYTES,
    COMMIT_INTERVAL_S,
    LINGER_MS,
    SOURCE_PARTITIONS,
    TARGET_PARTITIONS,
    Workload,
    parse_result,
)
from streaming.kafka import Admin, ClientSettings, TopicSpec
from streaming.local_broker import LocalBroker

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV = ROOT / ".venv-bench"
REQUIREMENTS = ROOT / "bench" / "requirements.txt"
RESULTS = ROOT / "bench" / "results"
PARSE_MODULES = ["bench_paxlst", "bench_airlines", "bench_immigration", "bench_ota", "bench_hotels", "bench_operators"]


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    module: str
    needs_bench_venv: bool
    passthrough: bool
    args: tuple[str, ...] = ()


CONTENDERS = {
    c.key: c
    for c in (
        Contender("router", "hub router", "bench.contender_router", False, False),
        Contender("router-confluent", "hub router (confluent-kafka)", "bench.contender_router", False, False,
                  ("--client", "confluent-kafka")),
        Contender("quix", "Quix Streams", "bench.contender_quix", True, False),
        Contender("kafka-python", "kafka-python passthrough", "bench.contender_kafka_python", False, True),
        Contender("confluent", "confluent-kafka passthrough", "bench.contender_confluent", True, True),
    )
}


@dataclass
class Plan:
    """How much of the suite a mode runs."""

    mode: str
    workloads: list[Workload]
    backlog: dict[str, int]
    warmup_s: float
    window_s: float
    windows: int
    latency_workloads: list[Workload]
    latency_fractions: list[float]
    latency_fixed: list[float]
    latency_warmup_s: float
    latency_window_s: float
    ceiling_records: int
    ceiling_reps: int
    parse: bool
    contenders: list[str] = field(default_factory=lambda: list(CONTENDERS))

    def passthrough_workloads(self) -> list[Workload]:
        """Passthroughs have no subscriptions to evaluate: one run per (size, fan-out)."""
        seen: dict[tuple[str, int], Workload] = {}
        for w in self.workloads:
            seen.setdefault((w.size, w.fanout), Workload(w.size, w.fanout, w.fanout))
        return list(seen.values())


def plan_for(mode: str) -> Plan:
    small = [Workload("small", s, f) for s, f in ((1, 1), (10, 1), (10, 3), (10, 10), (100, 1), (100, 3), (100, 10))]
    if mode == "full":
        large = [Workload("large", s, f) for s, f in ((1, 1), (10, 3), (100, 10))]
        return Plan("full", small + large, {"small": 600_000, "large": 300_000}, 1.0, 1.5, 3,
                    [Workload("small", 1, 1)], [0.25, 0.5, 0.75], [1000.0], 1.0, 1.5, 200_000, 3, True)
    if mode == "quick":
        return Plan("quick", [Workload("small", 1, 1), Workload("small", 10, 3), Workload("large", 1, 1)],
                    {"small": 400_000, "large": 150_000}, 0.8, 1.0, 3,
                    [Workload("small", 1, 1)], [0.5], [1000.0], 0.5, 1.0, 100_000, 3, False)
    return Plan("smoke", [Workload("small", 1, 1)], {"small": 5000}, 0.2, 0.2, 3,
                [Workload("small", 1, 1)], [], [200.0], 0.3, 0.3, 0, 0, False, ["router", "kafka-python"])


# ---- processes -------------------------------------------------------------------------------------


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    cpu_s: float
    maxrss_mb: float
    seconds: float


def run_measured(cmd: Sequence[str], timeout_s: float, env: dict[str, str] | None = None) -> Finished:
    """Run a command to its end; its own rusage (CPU, peak RSS) comes from ``wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)  # noqa: S603
        return _reap(proc, out, err, started, timeout_s)


def _reap(proc: subprocess.Popen[bytes], out: Any, err: Any, started: float, timeout_s: float) -> Finished:
    deadline = started + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    return Finished(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                    usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, time.perf_counter() - started)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ensure_bench_venv() -> tuple[str | None, str]:
    """``.venv-bench``'s python, created (or refreshed when the requirements changed); else None and why."""
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return str(python), "ready"
    log(f"creating {BENCH_VENV.name} from {REQUIREMENTS.relative_to(ROOT)} (first run only)")
    steps = [[sys.executable, "-m", "venv", str(BENCH_VENV)],
             [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)]]
    for step in steps:
        result = subprocess.run(step, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            return None, f"`{' '.join(step[-4:])}` failed: {(result.stderr or result.stdout)[-600:]}"
    stamp.write_text(digest)
    return str(python), "created"


def versions(python: str, code: str) -> str:
    result = subprocess.run([python, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    return result.stdout.strip() or result.stderr.strip()[-200:]


# ---- the run ---------------------------------------------------------------------------------------


class Suite:
    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        self.args = args
        self.plan = plan
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"bench.{self.run_id}"
        self.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or LocalBroker.from_env().up()
        self.admin = Admin(ClientSettings(self.bootstrap, client_id="bench-suite"))
        self.topics: list[str] = []
        self.groups: list[str] = []
        self.main_python = sys.executable
        self.bench_python: str | None = None
        self.notes: list[str] = []
        self.results: dict[str, Any] = {
            "run": self.run_id, "mode": plan.mode, "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": {"acks": "all", "idempotence": True, "linger_ms": LINGER_MS, "batch_bytes": BATCH_BYTES,
                         "commit_interval_s": COMMIT_INTERVAL_S, "warmup_s": plan.warmup_s,
                         "window_s": plan.window_s, "windows": plan.windows,
                         "source_partitions": SOURCE_PARTITIONS, "target_partitions": TARGET_PARTITIONS},
            "ceiling": [], "drain": [], "latency": [], "parse": [], "notes": self.notes,
        }

    # -- topics --

    def create(self, specs: list[TopicSpec]) -> None:
        self.admin.ensure_topics(specs, timeout_s=120)
        self.topics.extend(s.name for s in specs)

    def target(self, j: int) -> str:
        """Subscriber topic ``j`` of the drains (latency runs get their own)."""
        return f"{self.prefix}.deliver.{j}"

    def cleanup(self) -> None:
        delete_run(self.admin, self.bootstrap, self.prefix)
        self.admin.close()

    # -- environment --

    def prepare(self) -> None:
        r = self.results
        r["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
        r["versions"] = {"main": versions(self.main_python, "import kafka,fastavro;print('kafka-python',"
                                          "kafka.__version__,'fastavro',fastavro.__version__)")}
        wanted = [c for c in self.plan.contenders if c in CONTENDERS]
        if any(CONTENDERS[c].needs_bench_venv for c in wanted) and not self.args.no_bench_venv:
            self.bench_python, status = ensure_bench_venv()
            if self.bench_python is None:
                self.notes.append(f".venv-bench unavailable, its contenders skipped: {status}")
            else:
                r["versions"]["bench"] = versions(
                    self.bench_python, "import confluent_kafka,quixstreams;print('confluent-kafka',"
                    "confluent_kafka.version(),'librdkafka',confluent_kafka.libversion()[0],'quixstreams',"
                    "quixstreams.__version__)")
        self.contenders = [CONTENDERS[c] for c in wanted
                           if not CONTENDERS[c].needs_bench_venv or self.bench_python is not None]
        for skipped in sorted(set(wanted) - {c.key for c in self.contenders}):
            self.notes.append(f"{CONTENDERS[skipped].label}: not run (needs .venv-bench)")
        sizes = sorted({w.size for w in self.plan.workloads + self.plan.latency_workloads})
        subscriptions = max(w.subscriptions for w in self.plan.workloads)
        specs = [TopicSpec(f"{self.prefix}.backlog.{s}", SOURCE_PARTITIONS) for s in sizes]
        specs += [TopicSpec(self.target(j), TARGET_PARTITIONS) for j in range(subscriptions)]
        specs += [TopicSpec(f"{self.prefix}.{t}", SOURCE_PARTITIONS) for t in ("replay", "dlq", "audit")]
        specs += [TopicSpec(f"{self.prefix}.schemas", 1, configs={"cleanup.policy": "compact"})]
        self.create(specs)
        loader = self.bench_python or self.main_python
        r["backlog"] = {}
        for size in sizes:
            count = self.plan.backlog.get(size, self.plan.backlog["small"])
            log(f"preloading {count} {size} events")
            done = run_measured([loader, "-m", "bench.load", "preload", "--bootstrap", self.bootstrap,
                                 "--topic", f"{self.prefix}.backlog.{size}", "--size", size, "--count", str(count)],
                                timeout_s=600)
            loaded = parse_result(done.stdout)
            if loaded is None:
                raise SystemExit(f"preload failed:\n{done.stderr[-2000:]}")
            r["backlog"][size] = loaded

    # -- 1. ceiling --

    def ceiling(self) -> None:
        if not self.plan.ceiling_reps:
            return
        broker = LocalBroker.from_env()
        try:
            broker.resolve_jars()
        except Exception as exc:
            self.notes.append(f"ceiling skipped: Kafka's jars unavailable ({exc})")
            return
        for size, loaded in self.results["backlog"].items():
            topic = f"{self.prefix}.perf.{size}"
            self.create([TopicSpec(topic, SOURCE_PARTITIONS)])
            record = int(loaded["value_bytes"])
            produced, consumed = [], []
            for rep in range(self.plan.ceiling_reps):
                cmd = broker.java_command(
                    "org.apache.kafka.tools.ProducerPerformance", "--bootstrap-server", self.bootstrap,
                    "--topic", topic, "--num-records", str(self.plan.ceiling_records),
                    "--warmup-records", str(self.plan.ceiling_records // 5), "--record-size", str(record),
                    "--throughput", "-1", "--command-property", "acks=all", "enable.idempotence=true",
                    f"linger.ms={LINGER_MS}", f"batch.size={BATCH_BYTES}")
                done = run_measured(cmd, timeout_s=180)
                rate = _producer_rate(done.stdout)
                if rate is not None:
                    produced.append({**rate, "peak_rss_mb": round(done.maxrss_mb, 1), "process_cpu_s": done.cpu_s})
                else:
                    self.notes.append(f"ProducerPerformance {size}: {done.stderr[-300:] or done.stdout[-300:]}")
                group = f"{self.prefix}.perf.{size}.{rep}"
                cmd = broker.java_command(
                    "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", self.bootstrap,
                    "--topic", topic, "--num-records", str(self.plan.ceiling_records), "--group", group,
                    "--timeout", "30000")
                done = run_measured(cmd, timeout_s=180)
                rate = _consumer_rate(done.stdout)
                if rate is not None:
                    consumed.append({**rate, "peak_rss_mb": round(done.maxrss_mb, 1), "process_cpu_s": done.cpu_s})
                else:
                    self.notes.append(f"ConsumerPerformance {size}: {done.stderr[-300:] or done.stdout[-300:]}")
            for tool, reps in (("ProducerPerformance", produced), ("ConsumerPerformance", consumed)):
                if reps:
                    self.results["ceiling"].append({
                        "tool": tool, "size": size, "record_bytes": record, "reps": reps,
                        "records_per_s": statistics.median(r["records_per_s"] for r in reps),
                        "mb_per_s": statistics.median(r["mb_per_s"] for r in reps),
                        "peak_rss_mb": max(r["peak_rss_mb"] for r in reps)})
                    log(f"ceiling {tool} {size}: {self.results['ceiling'][-1]['records_per_s']:,.0f} records/s")

    # -- 2-4. drains --

    def python_for(self, contender: Contender) -> str:
        if contender.needs_bench_venv:
            assert self.bench_python is not None
            return self.bench_python
        return self.main_python

    def contender_cmd(self, contender: Contender, workload: Workload, mode: str, source: str, group: str,
                      target_format: str, total: int = 0) -> list[str]:
        p = self.plan
        return [self.python_for(contender), "-m", contender.module, "--bootstrap", self.bootstrap,
                "--source", source, "--target-format", target_format, "--aux-prefix", self.prefix,
                "--group", group, "--size", workload.size, "--subscriptions", str(workload.subscriptions),
                "--fanout", str(workload.fanout), "--mode", mode, "--total", str(total),
                "--warmup-s", str(p.warmup_s), "--window-s", str(p.window_s), "--windows", str(p.windows),
                *contender.args]

    def drains(self) -> None:
        runs: list[tuple[Contender, Workload]] = []
        for contender in self.contenders:
            workloads = self.plan.passthrough_workloads() if contender.passthrough else self.plan.workloads
            runs.extend((contender, w) for w in workloads)
        for index, (contender, workload) in enumerate(runs):
            group = f"{self.prefix}.drain.{index}"
            total = int(self.results["backlog"][workload.size]["count"])
            cmd = self.contender_cmd(contender, workload, "drain", f"{self.prefix}.backlog.{workload.size}", group,
                                     f"{self.prefix}.deliver.{{j}}", total)
            done = run_measured(cmd, timeout_s=240)
            row = parse_result(done.stdout)
            if row is None:
                row = {"contender": contender.label, "workload": workload.name,
                       "error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
                log(f"{contender.label} {workload.name}: FAILED {row['error']}")
            else:
                log(f"{contender.label} {workload.name}: {row['events_per_s']:,.0f} events/s, "
                    f"{row['cpu_us_per_event'] or 0:.0f} µs CPU/event, {row['peak_rss_mb']:.0f} MB")
            row |= {"key": contender.key, "size": workload.size, "subscriptions": workload.subscriptions,
                    "fanout": workload.fanout, "passthrough": contender.passthrough,
                    "process_cpu_s": round(done.cpu_s, 2), "process_wall_s": round(done.seconds, 2)}
            warnings = [line for line in done.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
            if warnings:  # kept in the JSON: what the contender complained about while measured
                row["warnings"] = warnings[-10:]
            self.results["drain"].append(row)

    def max_rate(self, contender: Contender, workload: Workload) -> float | None:
        for row in self.results["drain"]:
            if row["key"] != contender.key or row["size"] != workload.size or row["fanout"] != workload.fanout:
                continue
            if contender.passthrough or row["subscriptions"] == workload.subscriptions:
                return float(row.get("events_per_s") or 0) or None
        return None

    # -- latency --

    def latency(self) -> None:
        loader = self.bench_python if self.bench_python and self.plan.mode != "smoke" else self.main_python
        p = self.plan
        for index, (workload, contender) in enumerate(
                (w, c) for w in p.latency_workloads for c in self.contenders):
            maximum = self.max_rate(contender, workload)
            rates = sorted({round(f * maximum) for f in p.latency_fractions if maximum} | {round(r) for r in
                                                                                        p.latency_fixed})
            rates = [r for r in rates if r > 0]
            source = f"{self.prefix}.live.{index}"
            count = workload.fanout if contender.passthrough else workload.subscriptions
            targets = [f"{self.prefix}.live{index}.deliver.{j}" for j in range(count)]
            self.create([TopicSpec(source, SOURCE_PARTITIONS)] + [TopicSpec(t, TARGET_PARTITIONS) for t in targets])
            cmd = self.contender_cmd(contender, workload, "live", source, f"{self.prefix}.live.{index}",
                                     f"{self.prefix}.live{index}.deliver.{{j}}")
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                started = time.perf_counter()
                proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)  # noqa: S603
                load = run_measured(
                    [loader, "-m", "bench.load", "latency", "--bootstrap", self.bootstrap, "--source", source,
                     "--targets", ",".join(targets), "--fanout", str(workload.fanout), "--size", workload.size,
                     "--rates", ",".join(str(r) for r in rates), "--warmup-s", str(p.latency_warmup_s),
                     "--window-s", str(p.latency_window_s), "--windows", str(p.windows),
                     "--drain-timeout-s", "6", "--label", f"{contender.label} {workload.name}"],
                    timeout_s=400)
                proc.send_signal(signal.SIGTERM)
                routed = _reap(proc, out, err, started, timeout_s=60)
            measured = parse_result(load.stdout)
            own = parse_result(routed.stdout) or {}
            row: dict[str, Any] = {"key": contender.key, "contender": contender.label, "workload": workload.name,
                                   "size": workload.size, "subscriptions": workload.subscriptions,
                                   "fanout": workload.fanout, "max_events_per_s": maximum,
                                   "contender_peak_rss_mb": own.get("peak_rss_mb"),
                                   "contender_cpu_s": own.get("cpu_s")}
            if measured is None:
                row["error"] = (load.stderr.strip().splitlines() or ["no output"])[-1][:300]
                log(f"latency {contender.label}: FAILED {row['error']}")
            else:
                row |= {"load_client": measured["client"], "levels": measured["levels"]}
            self.results["latency"].append(row)

    # -- 5. parse --

    def parse(self) -> None:
        if not self.plan.parse:
            self.notes.append("connector parse throughput: not run in this mode (`make bench-parse`)")
            return
        for module in PARSE_MODULES:
            log(f"parse {module}")
            done = run_measured([self.main_python, "-m", f"bench.{module}"], timeout_s=300)
            rows = [_parse_line(module, line) for line in done.stdout.splitlines()]
            self.results["parse"].extend(r for r in rows if r is not None)
            if done.returncode != 0:
                self.notes.append(f"{module} failed: {done.stderr.strip()[-200:]}")

    # -- output --

    def write(self) -> Path:
        out = Path(self.args.out) if self.args.out else RESULTS
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        markdown = render(self.results)
        for name in (f"suite-{stamp}", "latest"):
            (out / f"{name}.json").write_text(json.dumps(self.results, indent=2, default=str) + "\n")
            (out / f"{name}.md").write_text(markdown)
        print(markdown)
        return out / f"suite-{stamp}.md"


def delete_run(admin: Admin, bootstrap: str, prefix: str) -> None:
    """Delete the topics and consumer groups named ``<prefix>.*`` (best effort, checked once more)."""
    for _ in range(3):
        topics = [t for t in admin.list_topics() if t.startswith(prefix + ".")]
        if not topics:
            break
        for chunk in range(0, len(topics), 200):
            with contextlib.suppress(Exception):
                admin.delete_topics(topics[chunk:chunk + 200])
        time.sleep(1.0)
    with contextlib.suppress(Exception):
        import kafka  # the seam has no group deletion; this is the bench's own clean-up

        client = kafka.KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-suite")
        groups = [g["group_id"] for g in client.list_groups() if g["group_id"].startswith(prefix + ".")]
        for chunk in range(0, len(groups), 100):
            client.delete_groups(groups[chunk:chunk + 100])
        client.close()


def _producer_rate(stdout: str) -> dict[str, float] | None:
    pattern = r"(\d+) (steady state )?records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\).*?(\d+) ms 99th"
    found = re.findall(pattern, stdout)
    if not found:
        return None
    steady = [f for f in found if f[1]] or found
    _, _, rate, mb, p99 = steady[-1]
    return {"records_per_s": float(rate), "mb_per_s": float(mb), "p99_ms": float(p99),
            "steady_state": bool(steady[-1][1])}


def _consumer_rate(stdout: str) -> dict[str, float] | None:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) >= 10 and re.fullmatch(r"[\d.]+", cells[-1]):
            return {"records_per_s": float(cells[9]), "mb_per_s": float(cells[8]),
                    "rebalance_ms": float(cells[6]), "fetch_ms": float(cells[7])}
    return None


_RATE_LINE = re.compile(r"^\s*(?P<name>\S.*?)\s{2,}(?P<time>[\d.,]+)\s*ms\S*\s+(?P<rest>.*\d[\d,.]*\s+\S+/s.*)$")


def _parse_line(module: str, line: str) -> dict[str, Any] | None:
    found = _RATE_LINE.match(line)
    if not found:
        return None
    rates = re.findall(r"([\d,.]+)\s+(\S+/s)", found["rest"])
    if not rates:
        return None
    value, unit = rates[0]
    return {"module": module, "candidate": found["name"].strip(), "ms": float(found["time"].replace(",", "")),
            "rate": float(value.replace(",", "")), "unit": unit,
            "also": [f"{v} {u}" for v, u in rates[1:]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a subset of the workloads, ~2 minutes")
    size.add_argument("--smoke", action="store_true", help="tiny sizes; router and kafka-python passthrough only")
    parser.add_argument("--contenders", nargs="+", choices=sorted(CONTENDERS), help="run only these contenders")
    parser.add_argument("--no-bench-venv", action="store_true", help="skip the contenders that need .venv-bench")
    parser.add_argument("--out", help="directory for the results (default bench/results)")
    args = parser.parse_args()
    plan = plan_for("smoke" if args.smoke else "quick" if args.quick else "full")
    if args.contenders:
        plan.contenders = args.contenders
    started = time.perf_counter()
    suite = Suite(args, plan)
    log(f"run {suite.run_id} ({plan.mode}) against {suite.bootstrap}")
    try:
        suite.prepare()
        suite.ceiling()
        suite.drains()
        suite.latency()
        suite.parse()
    finally:
        suite.results["seconds"] = round(time.perf_counter() - started)
        with contextlib.suppress(Exception):
            path = suite.write()
            log(f"wrote {path} and latest.md/.json in {suite.results['seconds']}s")
        suite.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
