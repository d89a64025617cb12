"""Where the router's time goes on the suite's job: py-spy samples of ``bench.contender_router``.

    python -m bench.profile_router [--workloads small-s1-f1 small-s10-f3] [--seconds 10]

For each workload: preloads a backlog (``bench.load``), starts the router contender draining it
(``bench/contender_router.py``, the hub's own venv), waits until it routes, and records it with
py-spy from ``.venv-bench`` (``record --gil --format raw``: only the thread holding the GIL is
sampled, which for a GIL-bound router is where its CPU goes). Samples are grouped two ways:

- **by stage** (inclusive): each sample is charged to the first stage found walking its stack from
  the leaf up (decode, filter, project, encode, audit, produce, transaction, consume, ...), so the
  stages add up to 100% of GIL-holding samples;
- **by function** (self time): the leaf frames.

The contender's own CPU µs per event (``time.process_time``) turns shares into µs per event. Writes
``bench/results/profile-router.md`` and ``.json`` (``--stacks DIR`` keeps the collapsed stacks, for
a flame graph) and prints the Markdown. Needs ``.venv-bench`` (``python -m bench.suite`` creates it) and a broker.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.suite import delete_run
from bench.workload import SOURCE_PARTITIONS, TARGET_PARTITIONS, Workload, parse_result
from streaming.kafka import Admin, ClientSettings, TopicSpec
from streaming.local_broker import LocalBroker

ROOT = Path(__file__).resolve().parents[1]
PY_SPY = ROOT / ".venv-bench" / "bin" / "py-spy"
RESULTS = ROOT / "bench" / "results"

# Stage of a frame, by (function name, file) fragments; checked from the leaf upwards.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("bench meter (not the router)", ("DrainMeter", "counted (bench")),
    ("decode (Codec.decode, fastavro read)", ("Codec.decode", "schemaless_reader")),
    ("filter (compiled predicates)", ("router/filters.py",)),
    ("project + mask (Projector.project)", ("Projector.project", "Projector._project", "keyed_hash")),
    ("encode (derived schema, fastavro write)", ("_Encoder.__call__", "schemaless_writer")),
    ("audit (AuditBatch, json)", ("router/audit.py", "Route.audit")),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("event type from ce_type / headers", ("EventTypes.__call__", "Record.header")),
    ("transaction (begin, send_offsets, commit)", ("Producer.begin", "Producer.send_offsets", "Producer.commit",
                                                    "Standing.note",
                                                    "transaction_manager", "TransactionManager")),
    ("produce (client send, accumulator)", ("Producer.send_batch", "Producer.send (streaming", "KafkaProducer.send",
                                                  "record_accumulator", "RecordAccumulator")),
    ("producer sender/IO (batches, requests)", ("sender.py", "Sender.")),
    ("consume (poll, fetch, record parsing)", ("Consumer.poll (streaming", "KafkaConsumer.poll", "fetcher.py",
                                               "_record (streaming",
                                               "Fetcher.", "default_records", "DefaultRecord")),
    ("consumer lag report (end_offsets)", ("_report_lag", "Consumer.lag")),
    ("route + handle_batch (headers, lists, own lines)", ("KafkaLane._route", "KafkaLane.handle_batch",
                                                          "forwarded_headers")),
    ("kafka-python network / IO loop", ("kafka/net/", "kafka/conn", "selectors.py", "kafka/protocol")),
    ("threading / other", ("",)),
]


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, needles in STAGES[:-1]:
            if any(needle in frame for needle in needles):
                return stage
    return STAGES[-1][0]


def summarise(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    stages: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        n = int(count)
        total += n
        stages[stage_of(frames)] += n
        leaves[frames[-1]] += n
    return total, stages, leaves


def profile(
    workload: Workload, bootstrap: str, seconds: float, events: int, python: str, client: str = "kafka-python"
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    prefix = f"bench.{run}"
    admin = Admin(ClientSettings(bootstrap, client_id="bench-profile"))
    specs = [TopicSpec(f"{prefix}.backlog", SOURCE_PARTITIONS)]
    specs += [TopicSpec(f"{prefix}.deliver.{j}", TARGET_PARTITIONS) for j in range(workload.subscriptions)]
    specs += [TopicSpec(f"{prefix}.{t}", SOURCE_PARTITIONS) for t in ("replay", "dlq", "audit")]
    specs += [TopicSpec(f"{prefix}.schemas", 1, configs={"cleanup.policy": "compact"})]
    admin.ensure_topics(specs, timeout_s=120)
    try:
        subprocess.run([python, "-m", "bench.load", "preload", "--bootstrap", bootstrap, "--topic",  # noqa: S603
                        f"{prefix}.backlog", "--size", workload.size, "--count", str(events)],
                       cwd=ROOT, check=True, capture_output=True)
        cmd = [sys.executable, "-m", "bench.contender_router", "--bootstrap", bootstrap,
               "--source", f"{prefix}.backlog", "--target-format", f"{prefix}.deliver.{{j}}", "--aux-prefix", prefix,
               "--group", f"{prefix}.profile", "--size", workload.size, "--subscriptions",
               str(workload.subscriptions), "--fanout", str(workload.fanout), "--total", str(events),
               "--warmup-s", "2", "--window-s", str(seconds / 3 + 1), "--windows", "3", "--client", client]
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "out", Path(tmp) / "err"
            with out.open("wb") as stdout, err.open("wb") as stderr:
                router = subprocess.Popen(cmd, cwd=ROOT, stdout=stdout, stderr=stderr)  # noqa: S603
                time.sleep(4.0)  # start-up and warm-up are not profiled
                raw_file = Path(tmp) / "raw.txt"
                spy = subprocess.run([str(PY_SPY), "record", "--pid", str(router.pid), "--duration",  # noqa: S603
                                      str(int(seconds)), "--rate", "200", "--gil", "--format", "raw",
                                      "--output", str(raw_file)], capture_output=True, text=True, check=False)
                try:
                    router.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    router.send_signal(signal.SIGTERM)
                    router.wait(timeout=30)
            raw = raw_file.read_text() if raw_file.exists() else ""
            measured = parse_result(out.read_text()) or {}
        if not raw:
            raise SystemExit(f"py-spy recorded nothing: {spy.stderr[-1000:]}")
    finally:
        delete_run(admin, bootstrap, prefix)
        admin.close()
    total, stages, leaves = summarise(raw)
    cpu = measured.get("cpu_us_per_event")
    return {
        "workload": workload.name, "client": client, "samples": total, "events_per_s": measured.get("events_per_s"),
        "cpu_us_per_event": cpu,
        "stages": [{"stage": s, "share": n / total, "us_per_event": cpu * n / total if cpu else None}
                   for s, n in stages.most_common()],
        "functions": [{"function": f, "share": n / total} for f, n in leaves.most_common(25)],
        "raw": raw,
    }


def render(profiles: list[dict[str, Any]]) -> str:
    out = ["# Router profile on the suite's job (py-spy, GIL-holding samples)", ""]
    for p in profiles:
        out += [f"## {p['workload']} ({p.get('client', 'kafka-python')}): {p['events_per_s'] or 0:,.0f} events/s, "
                f"{p['cpu_us_per_event'] or 0:,.0f} µs CPU per event, {p['samples']:,} samples", "",
                "| stage | share | µs per event |", "|---|--:|--:|"]
        for s in p["stages"]:
            us = "—" if s["us_per_event"] is None else f"{s['us_per_event']:.1f}"
            out.append(f"| {s['stage']} | {100 * s['share']:.1f}% | {us} |")
        out += ["", "| function (self time) | share |", "|---|--:|"]
        out += [f"| `{f['function']}` | {100 * f['share']:.1f}% |" for f in p["functions"][:15]]
        out.append("")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workloads", nargs="+", default=["small-s1-f1", "small-s10-f3"],
                        help="size-sN-fF names, as in the suite's table")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--client", choices=["kafka-python", "confluent-kafka"], default="kafka-python")
    parser.add_argument("--stacks", help="also write each workload's collapsed stacks into this directory")
    args = parser.parse_args()
    if not PY_SPY.exists():
        raise SystemExit(f"{PY_SPY} missing: run `python -m bench.suite --quick` once to create .venv-bench")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or LocalBroker.from_env().up()
    loader = str(ROOT / ".venv-bench" / "bin" / "python")
    profiles = []
    for name in args.workloads:
        size, subs, fanout = name.split("-")
        workload = Workload(size, int(subs[1:]), int(fanout[1:]))
        print(f"profiling the router on {workload.name} ...", file=sys.stderr, flush=True)
        profiles.append(profile(workload, bootstrap, args.seconds, args.events, loader, args.client))
    RESULTS.mkdir(parents=True, exist_ok=True)
    markdown = render(profiles)
    (RESULTS / "profile-router.md").write_text(markdown)
    (RESULTS / "profile-router.json").write_text(
        json.dumps([{k: v for k, v in p.items() if k != "raw"} for p in profiles], indent=2) + "\n")
    if args.stacks:
        Path(args.stacks).mkdir(parents=True, exist_ok=True)
        for p in profiles:
            (Path(args.stacks) / f"profile-router-{p['workload']}.collapsed.txt").write_text(p["raw"])
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
