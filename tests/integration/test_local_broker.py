"""`hub kafka` manages a real local broker (only when the tests run on the local broker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streaming.local_broker import LocalBroker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


@pytest.mark.skipif(bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")), reason="tests use an external cluster")
def test_up_is_idempotent_and_status_reports_running(kafka_bootstrap: str) -> None:
    broker = LocalBroker.from_env(port=int(kafka_bootstrap.rsplit(":", 1)[1]))
    if not broker.status().startswith("running"):
        pytest.skip("tests run on a testcontainers broker")
    started = time.monotonic()
    assert broker.up() == kafka_bootstrap
    assert time.monotonic() - started < 5  # already running: nothing restarted
    out = subprocess.run(
        [sys.executable, "hub.py", "kafka", "status", "--port", str(broker.port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("running")
    assert broker.log_file.exists() and broker.log_file.stat().st_size > 0
