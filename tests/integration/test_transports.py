"""File-drop and polling transports against the real broker, including restarts without loss or repeat."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from config import HubConfig
from connectors.base import FileDropTransport, PollingTransport
from connectors.checkpoints import CheckpointStore
from connectors.transports.filedrop import FileDropRunner
from connectors.transports.polling import PollingRunner
from hub import Hub
from streaming.kafka import ClientSettings, StreamingError, TransactionFailed, read_to_end

pytestmark = pytest.mark.integration

FEEDS = Path(__file__).parents[2] / "demo" / "feeds" / "operators"


def with_connector(config: HubConfig, transport: dict[str, Any]) -> HubConfig:
    raw = config.model_dump(mode="json", exclude={"source"})
    raw["identity"]["pilgrim_key_secret"] = "test-secret-0123456789abcdef"
    raw["connectors"] = [{"name": "operators-feed", "type": "operators", "transport": transport}]
    return HubConfig.model_validate({**raw, "source": config.source})


def committed_events(config: HubConfig) -> list[Any]:
    return read_to_end(ClientSettings(config.kafka.bootstrap_servers), config.kafka.topics.events)


def file_runner(hub: Hub) -> FileDropRunner:
    runtime = hub.runtimes[0]
    transport = runtime.connector.config.transport
    assert isinstance(transport, FileDropTransport)
    kafka = hub.config.kafka
    store = CheckpointStore(kafka.client_settings("t"), kafka.topics.checkpoints, runtime.name)
    return FileDropRunner(runtime, transport, store)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def test_file_drop_takes_complete_files_and_sorts_them(hub_config: HubConfig, inbox: Path) -> None:
    config = with_connector(hub_config, {"kind": "filedrop", "directory": str(inbox), "settle_seconds": 0})
    for name in ("01-jakarta-agent-group.json", "02-lahore-agent-with-errors.json", "04-truncated-upload.json"):
        shutil.copy(FEEDS / name, inbox / name)
    (inbox / "05-still-uploading.json.part").write_bytes(b'{"operator_code": "OP-1", "regis')
    hub = Hub(config)
    try:
        results = file_runner(hub).scan_once()
    finally:
        hub.close()
    assert sorted((r.outcome, r.accepted) for r in results) == [("accepted", 4), ("partial", 2), ("rejected", 0)]
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == [
        "01-jakarta-agent-group.json",
        "02-lahore-agent-with-errors.json",
        "02-lahore-agent-with-errors.json.error.json",
    ]
    assert sorted(p.name for p in (inbox / "rejected").iterdir()) == [
        "04-truncated-upload.json",
        "04-truncated-upload.json.error.json",
    ]
    report = json.loads((inbox / "processed" / "02-lahore-agent-with-errors.json.error.json").read_text())
    assert [r["location"] for r in report["rejections"]] == ["$.registrations[1]", "$.registrations[2]"]
    assert (inbox / "05-still-uploading.json.part").exists()  # incomplete: not taken
    events = committed_events(config)
    assert len(events) == 6
    assert all((e.header("ce_id") or b"") for e in events)


def test_file_drop_restart_after_publishing_does_not_repeat(hub_config: HubConfig, inbox: Path) -> None:
    """Killed after the transaction committed but before the file was moved: the restart only moves it."""
    config = with_connector(hub_config, {"kind": "filedrop", "directory": str(inbox), "settle_seconds": 0})
    shutil.copy(FEEDS / "01-jakarta-agent-group.json", inbox / "batch.json")
    hub = Hub(config)
    try:
        crashing = file_runner(hub)

        def crash(*_: Any, **__: Any) -> None:
            raise KeyboardInterrupt("killed before the move")

        crashing._move = crash  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            crashing.scan_once()
        assert (inbox / "batch.json").exists()
        assert len(committed_events(config)) == 4

        restarted = file_runner(hub)
        [result] = restarted.scan_once()
        assert result.accepted == 4
        assert (inbox / "processed" / "batch.json").exists()
        assert len(committed_events(config)) == 4  # not published twice
    finally:
        hub.close()


def test_file_drop_restart_after_a_failed_transaction_publishes_once(hub_config: HubConfig, inbox: Path) -> None:
    """Kafka failed at commit: the transaction is aborted, the file stays, the retry publishes it once."""
    config = with_connector(hub_config, {"kind": "filedrop", "directory": str(inbox), "settle_seconds": 0})
    shutil.copy(FEEDS / "01-jakarta-agent-group.json", inbox / "batch.json")
    hub = Hub(config)
    try:
        runner = file_runner(hub)
        producer = runner.runtime.producer
        real_commit = producer.commit

        def failing_commit() -> None:
            producer.commit = real_commit  # type: ignore[method-assign]
            raise TransactionFailed("broker went away at commit")

        producer.commit = failing_commit  # type: ignore[method-assign]
        with pytest.raises(StreamingError):
            runner.scan_once()
        assert (inbox / "batch.json").exists()
        assert committed_events(config) == []  # aborted: invisible to read_committed

        [result] = file_runner(hub).scan_once()
        assert result.accepted == 4
        assert len(committed_events(config)) == 4
    finally:
        hub.close()


class Agency(BaseHTTPRequestHandler):
    """An agency endpoint serving pages by cursor; the first request fails with 503."""

    pages: dict[str, tuple[bytes, str | None]] = {}
    calls: list[str] = []

    def do_GET(self) -> None:
        cursor = self.path.partition("cursor=")[2] or "start"
        Agency.calls.append(cursor)
        if len(Agency.calls) == 1:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        page = Agency.pages.get(cursor)
        if page is None:
            self.send_response(204)
            self.end_headers()
            return
        body, next_cursor = page
        self.send_response(200)
        if next_cursor:
            self.send_header("X-Next-Cursor", next_cursor)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def agency() -> Iterator[str]:
    Agency.pages = {
        "start": ((FEEDS / "01-jakarta-agent-group.json").read_bytes(), "c1"),
        "c1": ((FEEDS / "02-lahore-agent-with-errors.json").read_bytes(), "c2"),
        "c2": ((FEEDS / "03-cairo-single.json").read_bytes(), "c3"),
    }
    Agency.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Agency)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed"
    server.shutdown()


def polling_runner(hub: Hub) -> PollingRunner:
    runtime = hub.runtimes[0]
    transport = runtime.connector.config.transport
    assert isinstance(transport, PollingTransport)
    kafka = hub.config.kafka
    return PollingRunner(
        runtime, transport, CheckpointStore(kafka.client_settings("t"), kafka.topics.checkpoints, runtime.name)
    )


def test_polling_follows_cursors_retries_and_resumes_after_restart(hub_config: HubConfig, agency: str) -> None:
    config = with_connector(hub_config, {"kind": "polling", "url": agency, "interval_seconds": 0.1})
    hub = Hub(config)
    try:
        first = polling_runner(hub)
        results = []
        while (result := first.poll_once()) is not None:
            results.append(result)
            if len(results) == 2:
                break  # "killed" after two pages
        assert [r.accepted for r in results] == [4, 2]
        assert Agency.calls[:2] == ["start", "start"]  # 503 then retried

        restarted = polling_runner(hub)
        rest = []
        while (result := restarted.poll_once()) is not None:
            rest.append(result)
        assert [r.accepted for r in rest] == [1]
        assert Agency.calls[-2:] == ["c2", "c3"]  # resumed at the committed cursor, then nothing new
        assert len(committed_events(config)) == 7  # 4 + 2 + 1: nothing skipped, nothing repeated
    finally:
        hub.close()
