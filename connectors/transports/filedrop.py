"""File-drop transport: agencies write files into an inbox; the hub takes each complete file once.

A file is taken when its name matches the pattern, it is not a temporary name (``.*``, ``*.tmp``,
``*.part``) and its size and modification time have not changed for ``settle_seconds``. Its
input id is ``file:<name>:<sha256 prefix>``, so a new file under an old name is a new input.

For each file the runtime publishes the events, the quarantined records and the file's checkpoint
in one Kafka transaction; only then is the file moved:

* to ``processed/`` when any record was accepted (with ``<file>.error.json`` beside it listing the
  rejected records, if any);
* to ``rejected/`` with ``<file>.error.json`` when nothing in it could be used.

After a crash, a file still in the inbox whose checkpoint is committed is moved without being
published again; one without a committed checkpoint is published again (the aborted transaction
is invisible to read_committed consumers). Restarts neither skip nor repeat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from connectors.base import FileDropTransport
from connectors.checkpoints import CheckpointStore
from connectors.rejections import Rejection
from connectors.runtime import IngestResult, IngestRuntime
from streaming.kafka import StreamingError

logger = logging.getLogger(__name__)

FILES = Counter("hub_filedrop_files", "Files taken from inboxes, by outcome.", ["connector", "outcome"])

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".error.json")


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class FileDropRunner:
    """Watches one connector's inbox."""

    def __init__(self, runtime: IngestRuntime, transport: FileDropTransport, checkpoints: CheckpointStore,
                 clock: Any = None) -> None:
        import time

        self.runtime = runtime
        self.transport = transport
        self.checkpoints = checkpoints
        self.inbox = Path(transport.directory)
        self.processed = Path(transport.processed_dir or self.inbox / "processed")
        self.rejected = Path(transport.rejected_dir or self.inbox / "rejected")
        self._clock = clock or time.monotonic
        self._seen: dict[str, _Seen] = {}
        self._done: dict[str, dict[str, Any]] | None = None

    def _candidates(self) -> list[Path]:
        if not self.inbox.is_dir():
            return []
        names = sorted(p for p in self.inbox.glob(self.transport.pattern) if p.is_file())
        return [p for p in names if not p.name.startswith(".") and not p.name.endswith(IGNORED_SUFFIXES)]

    def _settled(self, path: Path) -> bool:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        now = self._clock()
        seen = self._seen.get(path.name)
        if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            self._seen[path.name] = _Seen(stat.st_size, stat.st_mtime_ns, now)
            return self.transport.settle_seconds == 0
        return bool(now - seen.since >= self.transport.settle_seconds)

    def scan_once(self) -> list[IngestResult]:
        """Take every settled file once; return what each gave. Raises StreamingError if Kafka fails."""
        for folder in (self.inbox, self.processed, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)
        if self._done is None:
            self._done = self.checkpoints.load()
        results = []
        for path in self._candidates():
            if not self._settled(path):
                continue
            results.append(self._take(path))
            self._seen.pop(path.name, None)
        return results

    def _take(self, path: Path) -> IngestResult:
        assert self._done is not None
        size = path.stat().st_size
        if size > self.transport.max_file_bytes:
            data = b""
            digest = "oversize"
        else:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()[:16]
        input_id = f"file:{path.name}:{digest}"
        previous = self._done.get(input_id)
        if previous is not None:
            logger.info("%s already published (%s); moving it", path.name, previous.get("outcome"))
            result = IngestResult(input_id, previous["outcome"], previous.get("accepted", 0))
            self._move(path, result, errors=None)
            return result
        if digest == "oversize":
            reason = f"file of {size} bytes exceeds {self.transport.max_file_bytes}"
            rejection = Rejection(input_id, "file", None, reason)
            result = IngestResult(input_id, "rejected", 0, rejections=[rejection], whole_input_rejected=True)
            self._move(path, result, errors=[rejection.to_dict()])
            FILES.labels(self.runtime.name, "rejected").inc()
            return result
        checkpoint = self.checkpoints.for_input(input_id, file=path.name, bytes=size)
        result = self.runtime.ingest(data, input_id, checkpoint=checkpoint)
        self._done[input_id] = {"outcome": result.outcome, "accepted": result.accepted}
        self._move(path, result, errors=[r.to_dict() for r in result.rejections] or None)
        FILES.labels(self.runtime.name, result.outcome).inc()
        return result

    def _move(self, path: Path, result: IngestResult, errors: list[dict[str, str | None]] | None) -> None:
        target_dir = self.rejected if result.accepted == 0 and result.outcome == "rejected" else self.processed
        target = target_dir / path.name
        if target.exists():
            target = target_dir / f"{path.stem}.{os.getpid()}.{int(self._clock() * 1000)}{path.suffix}"
        if errors:
            report = {"file": path.name, "input": result.input_name, "outcome": result.outcome,
                      "accepted": result.accepted, "rejections": errors}
            tmp = target_dir / f".{target.name}.error.json.tmp"
            tmp.write_text(json.dumps(report, indent=2))
            os.replace(tmp, target_dir / f"{target.name}.error.json")
        shutil.move(str(path), target)

    def run(self, stop: threading.Event) -> None:
        """Scan until ``stop`` is set; Kafka failures are retried on the next scan."""
        while not stop.is_set():
            try:
                self.scan_once()
            except StreamingError as exc:
                logger.warning("file drop %s: %s; retrying", self.runtime.name, exc)
                self._done = None  # re-read checkpoints: the failed transaction may or may not have landed
            stop.wait(self.transport.poll_seconds)
