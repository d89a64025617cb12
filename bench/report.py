"""Markdown for the benchmark suite's results (``bench/suite.py`` writes it next to the JSON).

Tables: the targets as ratios from this one run, the broker's ceiling, drain throughput (a pivot
per workload, then every contender's details), latency under offered load, connector parse rates.
"""

from __future__ import annotations

import statistics
from typing import Any

ORDER = ["router", "router-confluent", "quix", "kafka-python", "confluent"]
LABELS = {"router": "hub router", "router-confluent": "hub router (confluent-kafka)", "quix": "Quix Streams",
          "kafka-python": "kafka-python passthrough", "confluent": "confluent-kafka passthrough"}
ROUTERS = ["router", "router-confluent"]
SIZES = {"small": "~300 B", "large": "~1 KB"}


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _x(value: float | None) -> str:
    """A ratio with two significant digits at least (0.0050, 0.17, 1.25)."""
    if value is None:
        return "—"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def _drain(results: dict[str, Any], key: str, size: str, subscriptions: int, fanout: int) -> dict[str, Any] | None:
    for row in results["drain"]:
        if row.get("key") != key or row.get("size") != size or row.get("fanout") != fanout or "error" in row:
            continue
        if row.get("passthrough") or row.get("subscriptions") == subscriptions:
            return row
    return None


def _rate(row: dict[str, Any] | None) -> float | None:
    return float(row["events_per_s"]) if row and row.get("events_per_s") else None


def workloads(results: dict[str, Any]) -> list[tuple[str, int, int]]:
    seen = []
    for row in results["drain"]:
        if row.get("key") in (*ROUTERS, "quix"):
            item = (row["size"], row["subscriptions"], row["fanout"])
            if item not in seen:
                seen.append(item)
    return seen


def targets(results: dict[str, Any]) -> list[str]:
    lines = ["| target | measured in this run | met |", "|---|---|:-:|"]

    def spread(items: list[tuple[tuple[str, int, int], float | None]]) -> str:
        values = [v for _, v in items if v is not None]
        worst = min(items, key=lambda i: i[1] or 0)
        return (f"median {_x(statistics.median(values))}x, worst {_x(worst[1])}x "
                f"({worst[0][0]}, {worst[0][1]} subs, fan-out {worst[0][2]}), over {len(values)} workloads")

    for router in ROUTERS:
        name = LABELS[router].replace("hub router", "router")
        pairs = [(w, _rate(_drain(results, router, *w)), _rate(_drain(results, "quix", *w)),
                  _rate(_drain(results, "kafka-python", *w))) for w in workloads(results)]
        vs_quix = [(w, _ratio(r, q)) for w, r, q, _ in pairs if _ratio(r, q) is not None]
        vs_kp = [(w, _ratio(r, k)) for w, r, _, k in pairs if _ratio(r, k) is not None]
        if vs_quix:
            lines.append(f"| {name} ≥ 1.2x Quix Streams (events/s, same job) | {spread(vs_quix)} | "
                         f"{'yes' if all((v or 0) >= 1.2 for _, v in vs_quix) else 'no'} |")
        if vs_kp:
            lines.append(f"| {name} ≥ 0.8x bare kafka-python passthrough (same size and fan-out) | "
                         f"{spread(vs_kp)} | {'yes' if all((v or 0) >= 0.8 for _, v in vs_kp) else 'no'} |")
        for row in results["latency"]:
            if row.get("key") != router:
                continue
            for level in row.get("levels", []):
                if level["rate"] == 1000:
                    p99, overall = level["p99_ms"], level.get("p99_all_windows_ms")
                    met = p99 is not None and p99 <= 25 and overall is not None and overall <= 25
                    lines.append(f"| {name} p99 ≤ 25 ms at 1k events/s ({row['workload']}) | p99 {_n(p99, 1)} ms "
                                 f"(median of windows), {_n(overall, 1)} ms (all windows), p50 "
                                 f"{_n(level['p50_ms'], 1)} ms | {'yes' if met else 'no'} |")
    kp_vs_ck = []
    for row in results["drain"]:
        if row.get("key") == "kafka-python" and "error" not in row:
            other = _drain(results, "confluent", row["size"], row["subscriptions"], row["fanout"])
            if other:
                kp_vs_ck.append(((row["size"], row["fanout"], row["fanout"]), _ratio(_rate(row), _rate(other))))
    if kp_vs_ck:
        values = [v for _, v in kp_vs_ck if v is not None]
        detail = ", ".join(f"{w[0]} f{w[2]}: {_x(v)}x" for w, v in kp_vs_ck if v is not None)
        below = sum(v < 1 / 3 for v in values)
        verdict = "yes, below" if below == len(values) else "no" if below == 0 else f"below in {below}/{len(values)}"
        lines.append(f"| kafka-python passthrough below 1/3 of confluent-kafka's? | {detail} | {verdict} |")
    return lines


def render(results: dict[str, Any]) -> str:
    s = results.get("settings", {})
    machine = results.get("machine", {})
    out = [f"# Benchmark suite: hub router vs broker ceiling, bare passthroughs, Quix Streams ({results['mode']})", ""]
    out.append(f"Run `{results['run']}` at {results['at']}, {results.get('seconds', '?')} s; "
               f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}, one local broker "
               "(Kafka 4.3.1 KRaft) shared by every contender, one contender at a time.")
    for venv, text in results.get("versions", {}).items():
        out.append(f"- `{'.venv' if venv == 'main' else '.venv-bench'}`: {text}")
    for size, loaded in results.get("backlog", {}).items():
        out.append(f"- backlog {size}: {loaded['count']:,} events, Avro value {loaded['value_bytes']} B "
                   f"(record with key and headers {loaded['record_bytes']} B), preloaded with {loaded['client']}")
    out.append(f"- every client: acks=all, idempotence, linger {s.get('linger_ms')} ms, "
               f"batch {s.get('batch_bytes')} B, "
               f"read_committed, ≤1000 records per poll; passthroughs commit every {s.get('commit_interval_s')} s "
               "(flush, then commit), Quix Streams exactly-once with the same commit interval, the router one "
               "transaction per polled batch (deliveries + audit + offsets).")
    out.append(f"- drain: per contender process, after every consumer handled a record, {s.get('warmup_s')} s warm-up "
               f"discarded, then {s.get('windows')} windows of ≤{s.get('window_s')} s: median shown. CPU = "
               "`time.process_time` of the contender's process (all threads) per event; RSS = its `ru_maxrss`.")
    out += ["", "## Targets", "", *targets(results), ""]

    if results.get("ceiling"):
        out += ["## 1. Ceiling: Kafka's own perf tools (same jars, same broker)", "",
                "| tool | events | record size | records/s (median) | MB/s | JVM peak RSS MB |",
                "|---|---|--:|--:|--:|--:|"]
        for row in results["ceiling"]:
            out.append(f"| {row['tool']} | {SIZES.get(row['size'], row['size'])} | {row['record_bytes']} B | "
                       f"{_n(row['records_per_s'])} | {_n(row['mb_per_s'], 1)} | {_n(row['peak_rss_mb'])} |")
        out.append("")

    out += ["## 2-4. Drain a backlog: max events/s", "",
            "| events | subs | fan-out | hub router | hub router (confluent-kafka) | Quix Streams | "
            "kafka-python passthrough | confluent-kafka passthrough | router / Quix | router / kafka-python | "
            "router (confluent-kafka) / Quix |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for w in workloads(results):
        rates = {k: _rate(_drain(results, k, *w)) for k in ORDER}
        out.append(f"| {SIZES.get(w[0], w[0])} | {w[1]} | {w[2]} | " + " | ".join(_n(rates[k]) for k in ORDER) +
                   f" | {_x(_ratio(rates['router'], rates['quix']))} | "
                   f"{_x(_ratio(rates['router'], rates['kafka-python']))} | "
                   f"{_x(_ratio(rates['router-confluent'], rates['quix']))} |")
    out += ["", "Passthroughs copy every event to `fan-out` topics with no logic; their rows depend on size and "
            "fan-out only.", "",
            "| contender | workload | events/s | deliveries/s | CPU µs/event | peak RSS MB | window events/s | note |",
            "|---|---|--:|--:|--:|--:|---|---|"]
    rows = sorted(results["drain"], key=lambda r: (ORDER.index(r["key"]) if r.get("key") in ORDER else 9,
                                                   r.get("size", ""), r.get("subscriptions", 0), r.get("fanout", 0)))
    for row in rows:
        if "error" in row:
            out.append(f"| {LABELS.get(row.get('key', ''), row.get('contender'))} | {row.get('workload')} | — | — | — "
                       f"| — | — | failed: {row['error']} |")
            continue
        windows = ", ".join(_n(w["events"] / w["seconds"]) for w in row.get("windows", []) if w["seconds"])
        note = []
        if row.get("exhausted"):
            note.append("backlog ran out")
        if row.get("partial_start"):
            note.append(f"measured with {row['partial_start']}")
        if row.get("ready_s", 0) > 5:
            note.append(f"{row['ready_s']:.0f} s until every consumer ran")
        out.append(f"| {LABELS.get(row['key'], row['key'])} | {row['workload']} | {_n(row.get('events_per_s'))} | "
                   f"{_n(row.get('deliveries_per_s'))} | {_n(row.get('cpu_us_per_event'))} | "
                   f"{_n(row.get('peak_rss_mb'))} | {windows} | {'; '.join(note)} |")
    out.append("")

    if results.get("latency"):
        out += ["## Latency at fixed offered load (open loop, from intended send time)", "",
                "| contender | workload | offered events/s | % of its max | p50 ms | p99 ms | p99 all windows ms | "
                "max ms | delivered | generator lag p99 ms |", "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for row in results["latency"]:
            if "error" in row:
                out.append(f"| {row['contender']} | {row['workload']} | — | — | — | — | — | — | — | "
                           f"failed: {row['error']} |")
                continue
            for level in row["levels"]:
                share = 100 * level["rate"] / row["max_events_per_s"] if row.get("max_events_per_s") else None
                out.append(f"| {row['contender']} | {row['workload']} | {_n(level['rate'])} | "
                           f"{_n(share) + '%' if share else '—'} | "
                           f"{_n(level['p50_ms'], 1)} | {_n(level['p99_ms'], 1)} | "
                           f"{_n(level.get('p99_all_windows_ms'), 1)} | {_n(level['max_ms'], 1)} | "
                           f"{level['received']:,}/{level['expected']:,} | {_n(level['generator_lag_p99_ms'], 1)} |")
        out += ["", "p50/p99/max: median over the windows; p99 all windows: over every measured delivery of the level. "
                "A p99 of — means over 1% of the deliveries had not arrived when the tail drained. The "
                "generator and the subscriber-side consumer run in one process beside the contender and the broker "
                "on the same cores; a large generator lag means the load generator itself fell behind.", ""]

    if results.get("parse"):
        out += ["## 5. Connector parse throughput (no Kafka; `make bench-parse` modules)", "",
                "| module | candidate | ms per input | rate |", "|---|---|--:|--:|"]
        for row in results["parse"]:
            also = f" ({', '.join(row['also'])})" if row["also"] else ""
            out.append(f"| {row['module']} | {row['candidate']} | {_n(row['ms'], 1)} | "
                       f"{_n(row['rate'])} {row['unit']}{also} |")
        out.append("")
    if results.get("notes"):
        out += ["## Notes", "", *(f"- {note}" for note in results["notes"]), ""]
    return "\n".join(out) + "\n"
