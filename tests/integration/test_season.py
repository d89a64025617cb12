"""The main job on a small season: every component through its real transport and the real broker;
the alerts the hub raises match the simulator's ground truth exactly (no false alert, none missed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo.season import run_simulation

pytestmark = pytest.mark.integration


def test_a_small_season_raises_exactly_the_expected_alerts(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.chdir(tmp_path)  # the run's sandbox goes under .data/ here
    anomalies = "overstay=0.05,no_housing=0.05,no_show=0.05,checkout_no_exit=0.05,malformed=0.03"
    config = Path(__file__).parents[2] / "config" / "hub.yaml"
    assert run_simulation(300, rate=0.0, seed=3, anomalies=anomalies, config_path=config) == 0
    [summary] = list((tmp_path / ".data" / "simulations").glob("*/summary.json"))
    result = json.loads(summary.read_text())
    assert result["exact"] is True
    assert set(result["alerts"]) >= {"no_show", "no_housing", "no_exit_after_checkout", "overstay"}
    assert all(count > 0 for count in result["alerts"].values())
