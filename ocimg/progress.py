"""Per-layer progress on a terminal (rich); nothing at all when output is not a terminal."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any


class NullProgress:
    def __enter__(self) -> "NullProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def task(self, label: str, total: int) -> Callable[[int], None]:
        return lambda n: None

    def done(self, label: str, note: str = "") -> None:
        pass


class RichProgress:
    def __init__(self, stream: Any) -> None:
        from rich.console import Console  # imported only for a terminal: rich is slow to import
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=Console(file=stream), transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "RichProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def task(self, label: str, total: int) -> Callable[[int], None]:
        with self._lock:
            tid = self._progress.add_task(label, total=total)
            self._tasks[label] = tid
        return lambda n: self._progress.advance(tid, n)

    def done(self, label: str, note: str = "") -> None:
        with self._lock:
            tid = self._tasks.get(label)
            if tid is None:
                tid = self._progress.add_task(label, total=1)
                self._tasks[label] = tid
        task = self._progress.tasks[tid] if tid < len(self._progress.tasks) else None
        total = task.total if task else 1
        self._progress.update(tid, completed=total, description=f"{label} {note}".rstrip())


def for_stream(stream: Any = None, enabled: bool | None = None) -> NullProgress | RichProgress:
    stream = stream or sys.stderr
    if enabled is None:
        enabled = hasattr(stream, "isatty") and stream.isatty()
    return RichProgress(stream) if enabled else NullProgress()
