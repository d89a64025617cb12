"""The Grafana dashboard and its provisioning, and the compose service that serves them.

Every PromQL expression of deploy/grafana/dashboards/pilgrim-hub.json must name only metric families
the hub exposes (the exposition built by test_metrics_conventions, with samples for every metric),
and group or match only on labels those families carry. No Grafana, Prometheus or Docker needed.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.unit.test_metrics_conventions import JOURNEY_FAMILIES, Family, families, hub_exposition, require_promtool

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pilgrim-hub.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yml"
COMPOSE = ROOT / "docker-compose.yml"

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_FUNCTIONS_AND_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan",
}
AGGREGATION_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")


# ---------------------------------------------------------------- dashboard walking and PromQL


def load_dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def graph_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard) if p.get("type") != "row"]


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    found = [(f"panel {p.get('title')!r} target {t.get('refId')}", t["expr"])
             for p in graph_panels(dashboard) for t in p.get("targets", []) if "expr" in t]
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            found.append((f"variable {var['name']!r}", query))
    return found


def _strip(expr: str) -> str:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery selectors: [5m], [$__rate_interval]
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (good enough for dashboards: no `__name__` tricks)."""
    text = _strip(expr)
    text = AGGREGATION_LABEL_LISTS.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"label_values\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", r"\1", text)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in PROMQL_FUNCTIONS_AND_KEYWORDS:
            continue
        names.add(name)
    return names


def label_names(expr: str) -> set[str]:
    """Labels an expression groups by, matches on, or fetches values of."""
    text = _strip(expr)
    labels: set[str] = set()
    for m in AGGREGATION_LABEL_LISTS.finditer(text):
        labels.update(x.strip() for x in m.group(2).split(",") if x.strip())
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    labels.update(re.findall(r"label_values\s*\([^,()]*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)", expr))
    return labels


def test_promql_parsing_helpers() -> None:
    expr = ('histogram_quantile(0.99, sum by (subscriber, le) '
            '(rate(hub_router_delivery_latency_seconds_bucket{subscriber=~"$subscriber"}[5m])))')
    assert metric_names(expr) == {"hub_router_delivery_latency_seconds_bucket"}
    assert label_names(expr) == {"subscriber", "le"}
    expr = 'sum(increase(hub_router_deliveries_total{outcome="dead_lettered"}[1h])) / sum(up{job="hub"}) or vector(0)'
    assert metric_names(expr) == {"hub_router_deliveries_total", "up"}
    assert label_names(expr) == {"outcome", "job"}
    assert metric_names("label_values(hub_ingest_events_total, agency)") == {"hub_ingest_events_total"}
    assert label_names("label_values(hub_ingest_events_total, agency)") == {"agency"}


# ---------------------------------------------------------------- what the hub exposes


@pytest.fixture(scope="module")
def exposed() -> dict[str, set[str]]:
    """Series names the hub exposes -> their labels; journey families even before journey/ exists."""
    series: dict[str, set[str]] = {}
    fams: dict[str, Family] = families(hub_exposition().full)
    for family in fams.values():
        if family.type != "histogram":  # a histogram's own name selects nothing, its _bucket/_sum/_count do
            series[family.name] = set(family.labels)
        if family.type in ("histogram", "summary"):
            for suffix in HISTOGRAM_SUFFIXES:
                series[family.name + suffix] = set(family.labels)
    for name, (_, labels) in JOURNEY_FAMILIES.items():
        series.setdefault(name, set(labels))
    return series


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


# ---------------------------------------------------------------- dashboard


def test_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["panels"]
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos, title = panel["gridPos"], panel.get("title", "")
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, title
        for cell in itertools.product(range(pos["x"], pos["x"] + pos["w"]), range(pos["y"], pos["y"] + pos["h"])):
            assert cell not in taken, f"panels {title!r} and {taken[cell]!r} overlap"
            taken[cell] = title


def test_every_panel_has_a_title_and_a_query(dashboard: dict[str, Any]) -> None:
    for panel in graph_panels(dashboard):
        assert panel.get("title"), f"panel {panel.get('id')} has no title"
        targets = panel.get("targets") or []
        assert targets, f"panel {panel['title']!r} has no target"
        for target in targets:
            assert target.get("expr", "").strip(), f"panel {panel['title']!r} target {target.get('refId')} is empty"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_covers_the_operations_views(dashboard: dict[str, Any]) -> None:
    exprs = " ".join(e for _, e in expressions(dashboard))
    assert "sum by (agency) (rate(hub_ingest_events_total" in exprs
    for needed in ("hub_ingest_rejections_total", "hub_http_requests_total", "hub_filedrop_files_total",
                   "hub_router_deliveries_total", "hub_router_delivery_latency_seconds_bucket",
                   "hub_router_consumer_lag", 'outcome="dead_lettered"', "hub_router_retries_total",
                   "hub_journey_alerts_total", "hub_journey_open_alerts", "hub_journey_pilgrims",
                   "histogram_quantile(0.5,", "histogram_quantile(0.99,"):
        assert needed in exprs, needed


def test_queries_use_only_exposed_metrics_and_labels(dashboard: dict[str, Any], exposed: dict[str, set[str]]) -> None:
    problems = []
    for where, expr in expressions(dashboard):
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: selects no metric: {expr}")
        unknown = sorted(names - exposed.keys())
        if unknown:
            problems.append(f"{where}: unknown metrics {unknown}")
            continue
        available = set().union(*(exposed[n] for n in names)) | {"le"} if names else set()
        missing = sorted(label_names(expr) - available)
        if missing:
            problems.append(f"{where}: labels {missing} not on {sorted(names)}")
    assert not problems, "\n".join(problems)


def test_queries_parse_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    # Prometheus' own parser: each panel query as a recording rule, checked by `promtool check rules`.
    promtool = require_promtool()
    queries = [(where, expr) for where, expr in expressions(dashboard) if not where.startswith("variable")]
    rules = {"groups": [{"name": "pilgrim-hub-dashboard", "rules": [
        {"record": f"dashboard:query_{n}:check", "expr": expr} for n, (_, expr) in enumerate(queries)]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\nqueries: {queries}"
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_panels_use_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    prometheus = [d for d in provisioned["datasources"] if d["type"] == "prometheus"]
    assert len(prometheus) == 1
    uid = prometheus[0]["uid"]
    assert uid == "prometheus"
    assert prometheus[0]["url"] == "http://prometheus:9090"
    users = [(p["title"], p.get("datasource")) for p in graph_panels(dashboard)]
    users += [(f"{p['title']} {t['refId']}", t.get("datasource")) for p in graph_panels(dashboard)
              for t in p["targets"]]
    users += [(f"variable {v['name']}", v.get("datasource")) for v in dashboard["templating"]["list"]
              if v.get("type") == "query"]
    wrong = [(who, ds) for who, ds in users if not (isinstance(ds, dict) and ds.get("uid") == uid
                                                    and ds.get("type") == "prometheus")]
    assert not wrong, f"not on datasource uid {uid!r}: {wrong}"


# ---------------------------------------------------------------- compose


def test_compose_services(compose: dict[str, Any]) -> None:
    assert {"kafka", "hub", "prometheus", "grafana"} <= set(compose["services"])
    grafana = compose["services"]["grafana"]
    assert str(grafana["image"]).startswith("grafana/grafana:11.")
    assert "3000:3000" in [str(p) for p in grafana["ports"]]
    depends = grafana["depends_on"]
    assert "prometheus" in (depends if isinstance(depends, list) else list(depends))
    env = grafana["environment"]
    env = env if isinstance(env, dict) else dict(str(e).split("=", 1) for e in env)
    assert str(env["GF_AUTH_ANONYMOUS_ENABLED"]).lower() == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (short syntax, relative to the compose file)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        assert source.startswith("."), f"not a bind mount of the repository: {volume}"
        mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def test_compose_mounts_exist(compose: dict[str, Any]) -> None:
    for name in ("grafana", "prometheus"):
        for target, source in _mounts(compose["services"][name]).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"


def test_grafana_mounts_match_the_provisioning(compose: dict[str, Any]) -> None:
    mounts = _mounts(compose["services"]["grafana"])
    assert mounts["/etc/grafana/provisioning/datasources"] == DATASOURCES.parent
    assert mounts["/etc/grafana/provisioning/dashboards"] == PROVIDERS.parent
    providers = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))["providers"]
    assert [p["type"] for p in providers] == ["file"]
    path = providers[0]["options"]["path"]
    assert mounts[path] == DASHBOARD.parent, f"the provider reads {path}, which must be the dashboards mount"
    home = compose["services"]["grafana"]["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert mounts[str(PurePosixPath(home).parent)] / PurePosixPath(home).name == DASHBOARD
