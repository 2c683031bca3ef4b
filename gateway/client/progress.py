"""Progress on stderr: bars on a terminal (rich), plain lines otherwise, nothing with ``--quiet``.

Piped output must stay free of control characters (a log file or a CI job reads it), so the plain
reporter writes one line per file at 0/25/50/75/100 % and never a carriage return; file names coming
from the server or the disk are shown with control characters replaced, on both paths.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


class Reporter:
    """What every transfer reports to: ``add`` a file, ``update`` its bytes, ``note`` a line."""

    def __init__(self, *, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() and not quiet
        self._rich: Progress | None = None
        self._total: TaskID | None = None
        self._plain: dict[int, tuple[str, int, int]] = {}  # handle -> (name, size, last quarter shown)
        self._sizes: dict[int, int] = {}
        if self.tty:
            self._rich = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )

    def __enter__(self) -> Reporter:
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def add(self, name: str, size: int | None, done: int = 0) -> int:
        label = printable(name)
        if self._rich is not None:
            handle = int(self._rich.add_task(label, total=size, completed=done))
            if size is not None:
                self._sizes[handle] = size
                self._grow_total(size, done)
            return handle
        handle = len(self._plain)
        self._plain[handle] = (label, size or 0, -1)
        self.update(handle, done)
        return handle

    def _grow_total(self, size: int, done: int) -> None:
        assert self._rich is not None
        if len(self._sizes) < 2 and self._total is None:
            return
        if self._total is None:
            total = sum(self._sizes.values())
            done_all = sum(int(t.completed) for t in self._rich.tasks)
            self._total = self._rich.add_task("total", total=total, completed=done_all)
        else:
            task = self._rich.tasks[int(self._total)]
            self._rich.update(self._total, total=(task.total or 0) + size, advance=done)

    def update(self, handle: int, done: int) -> None:
        if self._rich is not None:
            before = self._rich.tasks[handle].completed
            self._rich.update(TaskID(handle), completed=done)
            if self._total is not None and handle in self._sizes:
                self._rich.update(self._total, advance=done - before)
            return
        if self.quiet:
            return
        name, size, shown = self._plain[handle]
        quarter = 4 if size == 0 else min(4, done * 4 // size)
        if quarter > shown:
            pct = quarter * 25
            self._plain[handle] = (name, size, quarter)
            print(f"{name}: {pct}% ({done} of {size} bytes)", file=self.stream, flush=True)

    def note(self, line: str) -> None:
        if self._rich is not None:
            self._rich.console.print(printable(line), markup=False, highlight=False)
        elif not self.quiet:
            print(printable(line), file=self.stream, flush=True)
