"""With the admin token, `hub audit` and `hub dlq list` run, and each look is itself audited."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

import hub
from config import HubConfig

pytestmark = pytest.mark.integration

TOKEN = "ops-room-51c0de"


def test_admin_queries_run_with_the_token_and_are_recorded(
    hub_config: HubConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    path = Path(hub_config.source)
    raw = yaml.safe_load(path.read_text())
    raw["admin"] = {"token_sha256": [digest]}
    path.write_text(yaml.safe_dump(raw))
    hub.Hub(hub_config).close()  # creates the hub's topics
    monkeypatch.setenv(hub.ADMIN_TOKEN_ENV, TOKEN)

    assert hub.main(["--config", str(path), "dlq", "list", "--pilgrim-key", "pk_admin"]) == 0
    assert hub.main(["--config", str(path), "audit", "pk_admin"]) == 0
    capsys.readouterr()
    assert hub.main(["--config", str(path), "audit", "pk_admin"]) == 0
    out = capsys.readouterr().out
    looks = [json.loads(line) for line in out.splitlines()]
    assert [(e["kind"], e["query"], e["admin"]) for e in looks] == [
        ("admin_query", "dlq list pilgrim_key=pk_admin", f"admin:{digest[:12]}"),
        ("admin_query", "audit", f"admin:{digest[:12]}"),
    ]
    assert TOKEN not in out
