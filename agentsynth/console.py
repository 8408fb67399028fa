"""Terminal output of stored values (rich): every value printed as it is.

Stored values are untrusted (model replies, task text, user-chosen names): they are never read as
rich markup (``[/INST]`` would raise, ``[bold]x[/bold]`` would be styled) nor as emoji codes
(``root:x:0`` would show an emoji). Tables and consoles that show data come from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["data_console", "data_table"]


def data_console(stream: Any, *, width: int = 200) -> Console:
    """A console for ``stream`` that neither interprets emoji codes nor highlights values; its
    width is the terminal's, else ``width``."""
    tty = getattr(stream, "isatty", lambda: False)()
    return Console(file=stream, width=None if tty else width, emoji=False, highlight=False)


def data_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    """A table whose title, headers and cells are plain text (``None`` shows as NULL, floats
    with 4 significant digits)."""
    t = Table(title=Text(title) if title else None, header_style="bold", title_justify="left")
    for c in columns:
        t.add_column(Text(str(c)), overflow="fold")
    for r in rows:
        t.add_row(*(Text(_cell(v)) for v in r))
    return t


def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
