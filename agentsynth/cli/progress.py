"""One progress bar for every long command (runs, evaluations, training): rich, on stderr,
throttled, silent when disabled."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

__all__ = ["Bar"]


class Bar:
    """A bold title (plain text, never markup), the bar, done/total, ``columns`` (rich format
    strings over the task's fields, e.g. ``"loss {task.fields[loss]}"``), elapsed and remaining
    time. Redrawn at most every ``every`` seconds, and always at the end."""

    def __init__(self, title: str, enabled: bool, columns: Sequence[str], *, every: float):
        self.title = title
        self.enabled = enabled
        self.columns = tuple(columns)
        self.every = every
        self._p: Any = None
        self._task: Any = None
        self._last = 0.0

    def update(self, done: int, total: int | None = None, **fields: str) -> None:
        """Show ``done`` (of ``total``, when given) and the column fields; starts the bar on the
        first call."""
        if not self.enabled:
            return
        if self._p is None:
            from rich.console import Console
            from rich.markup import escape
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                               *(TextColumn(c) for c in self.columns), TimeElapsedColumn(), TimeRemainingColumn(),
                               console=Console(stderr=True), transient=False)
            self._task = self._p.add_task(escape(self.title), total=total, **fields)
            self._p.start()
        now = time.monotonic()
        end = self._p.tasks[0].total
        if now - self._last >= self.every or done == (total if total is not None else end):
            self._last = now
            extra = {} if total is None else {"total": total}
            self._p.update(self._task, completed=done, **extra, **fields)

    def stop(self) -> None:
        """Leave the bar as last drawn; safe to call more than once."""
        if self._p is not None:
            self._p.stop()
            self._p = None
