"""The season simulator: a consistent pilgrim season across the four agencies, in their native
formats, delivered through the hub's own transports, with the alerts a correct hub must raise.

* :mod:`simulator.season`: pure, seeded generation (:func:`plan_season` -> :class:`SeasonPlan`);
* :mod:`simulator.render`: the agencies' documents (JSON, CSV, MRZ, PAXLST, OTA XML);
* :mod:`simulator.driver`: delivery over HTTP and file drops on a :class:`SimClock` (:func:`run_season`);
* :mod:`simulator.truth`: docs/journey-alerts.md applied to what the hub accepts
  (:func:`expected_alerts`, :func:`write_ground_truth`).

Typical use::

    plan = plan_season(10_000, seed=7, anomalies=Anomalies(), start=start, keyer=config.keyer())
    clock = SimClock(plan.start)
    result = run_season(plan, targets, clock, wait_idle=hub_idle)
    write_ground_truth(plan, Path("truth.jsonl"), result.final_clock)
"""

from __future__ import annotations

from simulator.driver import DeliveryFailed, SeasonResult, SimClock, Targets, run_season
from simulator.season import Anomalies, SeasonPlan, plan_season
from simulator.truth import Thresholds, expected_alerts, write_ground_truth

__all__ = [
    "Anomalies",
    "DeliveryFailed",
    "SeasonPlan",
    "SeasonResult",
    "SimClock",
    "Targets",
    "Thresholds",
    "expected_alerts",
    "plan_season",
    "run_season",
    "write_ground_truth",
]
