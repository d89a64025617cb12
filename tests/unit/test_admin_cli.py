"""Admin actions on the command line (`hub dlq`, `hub audit`, `hub journey`) need an admin token.

The check comes before any Kafka client is made: the config points at a port nobody listens on, so a
command that got past the check would fail differently (and slowly)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

import hub
from config import AdminConfig, load_config

TOKEN = "ops-room-7f3a9c"
COMMANDS = [["dlq", "list"], ["dlq", "replay", "--subscriber", "ministry-ops"], ["audit", "pk_x"], ["journey", "pk_x"]]


def _config(tmp_path: Path, mode: str, tokens: list[str]) -> Path:
    raw: dict[str, Any] = load_config().model_dump(mode="json", exclude={"source"})
    raw["mode"] = mode
    raw["admin"] = {"token_sha256": tokens}
    raw["kafka"]["bootstrap_servers"] = "127.0.0.1:9"
    raw["identity"]["pilgrim_key_secret"] = "test-secret-0123456789abcdef"
    raw["router"]["subscriptions_file"] = str(Path("config/subscriptions.yaml").resolve())
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_identify_names_the_token_by_its_hash_and_refuses_others() -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    admin = AdminConfig(token_sha256=[digest.upper()])
    assert admin.identify(TOKEN, "production") == f"admin:{digest[:12]}"
    assert admin.identify(TOKEN, "development") == f"admin:{digest[:12]}"
    assert admin.identify("", "development") is None
    assert admin.identify(TOKEN + "x", "production") is None
    assert AdminConfig().identify("", "development") == "development"
    assert AdminConfig().identify(TOKEN, "production") is None  # no tokens: closed in production


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv[:2]))
@pytest.mark.parametrize(
    ("mode", "token"),
    [("production", None), ("production", "wrong-token"), ("development", None), ("development", "wrong-token")],
)
def test_admin_commands_are_refused_without_the_admin_token(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    mode: str,
    token: str | None,
) -> None:
    path = _config(tmp_path, mode, [hashlib.sha256(TOKEN.encode()).hexdigest()])
    if token is None:
        monkeypatch.delenv(hub.ADMIN_TOKEN_ENV, raising=False)
    else:
        monkeypatch.setenv(hub.ADMIN_TOKEN_ENV, token)
    assert hub.main(["--config", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert f"refused: hub {argv[0]}" in err and hub.ADMIN_TOKEN_ENV in err
    assert TOKEN not in err and (token is None or token not in err)  # no secret echoed


def test_production_without_configured_tokens_refuses_everyone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, "production", [])
    monkeypatch.setenv(hub.ADMIN_TOKEN_ENV, TOKEN)
    assert hub.main(["--config", str(path), "audit", "pk_x"]) == 2
    assert "refused: hub audit" in capsys.readouterr().err
