"""A folder: one item per new or changed file.

File-system events (watchdog: inotify on Linux) wake the workflow as soon as a file appears; a rescan
every ``rescan_seconds`` catches what events miss (a full inotify queue, a network drive, files added
while plait was not running). A file is an item once its size and time have been still for
``settle_seconds``, so a file being copied is not read half-written.

The key is the file's path and a hash of its content: a changed file is a new item (processed again),
an unchanged one never is, even after a restart. Hashes are cached in memory by size and time, so
rescans read only files that changed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from plait.workflows.errors import TriggerError
from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions

log = logging.getLogger("plait.workflows")
SETTLE_ROUNDS = 5  # waits for files being written, per scan; files still growing are taken next time


class FolderOptions(TriggerOptions):
    path: str
    patterns: tuple[str, ...] = Field(("*",), description="file name globs to take, e.g. ['*.md', '*.pdf']")
    recursive: bool = True
    include_hidden: bool = False
    watch: bool = Field(True, description="wake on file-system events (else only poll every poll_seconds)")
    rescan_seconds: float = Field(300.0, ge=0.1, description="full rescan interval when watching events")
    settle_seconds: float = Field(1.0, ge=0, description="a file must be unchanged this long to be taken")


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FolderTrigger(Trigger):
    Options = FolderOptions
    options: FolderOptions

    def __init__(self, options: Any, env: Any) -> None:
        super().__init__(options, env)
        self._hashes: dict[str, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, sha256)
        self._observer: Any = None
        self._settling = False

    def _root(self) -> Path:
        from plait.workflows.context import resolve_path

        root = resolve_path(self.options.path, self.env.base_dir)
        if not root.is_dir():
            raise TriggerError(f"folder {root} does not exist (moved, deleted or unmounted?); items already "
                               "read are kept; fix the trigger's path or bring the folder back")
        return root

    def _start_watching(self, root: Path) -> None:
        if self._observer is not None or not self.options.watch:
            return
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            log.info("watchdog is not installed; folder %s is polled every %ss", root, self.options.poll_seconds)
            self.options = self.options.model_copy(update={"watch": False})
            return
        signal = self.env.signal

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("created", "modified", "moved", "closed"):
                    signal.set()

        observer = Observer()
        try:
            observer.schedule(Wake(), str(root), recursive=self.options.recursive)
            observer.start()
        except OSError as exc:  # e.g. the inotify watch limit: fall back to polling
            log.warning("cannot watch %s for changes (%s); polling every %ss", root, exc, self.options.poll_seconds)
            self.options = self.options.model_copy(update={"watch": False})
            return
        self._observer = observer

    def _files(self, root: Path) -> Iterator[Path]:
        from plait.readers.walk import walk

        o = self.options
        for entry in walk(root, hidden=o.include_hidden, recursive=o.recursive, stores=False):
            if entry.error is None and any(fnmatch.fnmatch(entry.path.name, p) for p in o.patterns):
                yield entry.path

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        root = self._root()
        self._start_watching(root)
        self._settling = False
        paths = list(self._files(root))
        for _ in range(SETTLE_ROUNDS):
            settling = yield from self._take(root, paths)
            if not settling:
                return
            # Files still being written: wait for them to be still (a one-shot run would miss them).
            self.env.clock.sleep(self.options.settle_seconds, self.env.signal)
            paths = settling
        self._settling = True  # still changing: look again soon

    def _take(self, root: Path, paths: list[Path]) -> Generator[TriggerItem, None, list[Path]]:
        """Yield the new, settled files among ``paths``; returns the ones still being written."""
        now = self.env.clock.now()
        settling: list[Path] = []
        candidates: list[tuple[str, Path, os.stat_result, str]] = []
        for path in paths:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if now - st.st_mtime < self.options.settle_seconds:
                settling.append(path)
                continue
            rel = path.relative_to(root).as_posix()
            cached = self._hashes.get(rel)
            if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
                digest = cached[2]
            else:
                try:
                    digest = file_digest(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.warning("cannot read %s: %s", path, exc)
                    continue
                self._hashes[rel] = (st.st_size, st.st_mtime_ns, digest)
            candidates.append((f"file:{rel}@{digest[:16]}", path, st, rel))
        known = self.env.known([c[0] for c in candidates])
        for key, path, st, rel in candidates:
            if key in known:
                continue
            modified = datetime.fromtimestamp(st.st_mtime, UTC)
            yield TriggerItem(key, {"path": str(path), "name": path.name, "relpath": rel, "suffix": path.suffix.lower(),
                                    "size": st.st_size, "modified": modified.isoformat(),
                                    "sha256": self._hashes[rel][2], "folder": str(root)}, st.st_mtime)
        return settling

    def next_wait(self, now: float) -> float:
        if self._settling:
            return max(self.options.settle_seconds, 0.05)
        return self.options.rescan_seconds if self._observer is not None else self.options.poll_seconds

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
