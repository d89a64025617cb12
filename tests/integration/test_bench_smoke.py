"""Smoke test of the benchmark suite: the harness runs end to end on tiny sizes and writes its table.

Runs ``python -m bench.suite --smoke`` (the hub router and the kafka-python passthrough only, a few
thousand events, one subscription; nothing from ``.venv-bench``) against the test broker, and checks
that the Markdown and JSON results hold those contenders' drain and latency rows. No timing is
asserted: a benchmark's numbers are not a test's business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_writes_a_table_with_router_and_kafka_python_rows(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    result = subprocess.run(
        [sys.executable, "-m", "bench.suite", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    table = (tmp_path / "latest.md").read_text()
    assert "| hub router | small-s1-f1 |" in table
    assert "| kafka-python passthrough | small-s1-f1 |" in table
    assert "## Latency at fixed offered load" in table
    assert list(tmp_path.glob("suite-*.md")) and list(tmp_path.glob("suite-*.json"))

    results = json.loads((tmp_path / "latest.json").read_text())
    drained = {row["key"]: row for row in results["drain"]}
    assert set(drained) == {"router", "kafka-python"}
    for row in drained.values():
        assert "error" not in row, row
        assert row["windows"], row
        assert row["peak_rss_mb"] > 0
    latency = {row["key"]: row for row in results["latency"]}
    assert set(latency) == {"router", "kafka-python"}
    for row in latency.values():
        assert "error" not in row, row
        (level,) = row["levels"]
        assert level["sent"] > 0 and level["received"] > 0, level
