"""HTML for the viewer: one escape function and a few small builders on top of it.

Everything the store holds is untrusted (model replies, task text, run names, grader feedback),
so every dynamic value reaches a page through :func:`esc`: text becomes :class:`Html` only by
being escaped, or by being built by :func:`el` from escaped parts. Tag and attribute *names*
come from this package's code, never from data; attribute values are escaped with quotes, and
links are built by :func:`url` (a path of this app and URL-encoded parameters), so no stored
value can start a ``javascript:`` URL. Pages hold no inline scripts or styles (the
Content-Security-Policy forbids them): behaviour lives in ``static/viewer.js``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

__all__ = ["Html", "el", "esc", "fmt", "join", "url"]


class Html(str):
    """A string that is already safe HTML: :func:`esc` passes it through unchanged."""

    __slots__ = ()


def esc(value: object) -> Html:
    """``value`` as HTML text: escaped (``& < > " '``), unless it already is :class:`Html`;
    ``None`` is empty. The one way data enters a page."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    return Html(html.escape(value if isinstance(value, str) else str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Html:
    """The escaped ``parts`` one after another (``sep`` is code, not data)."""
    return Html(sep.join(esc(p) for p in parts))


def el(tag: str, *children: object, **attrs: object) -> Html:
    """``<tag attrs>children</tag>`` with every child and attribute value escaped.

    Attribute names are Python keywords with ``_`` for ``-`` (``data_run="x"`` is ``data-run``)
    and a trailing ``_`` dropped (``class_``, ``for_``); ``True`` writes a bare attribute,
    ``None`` and ``False`` leave it out. Void elements (``input``, ``br``, ``meta``, ``link``)
    take no children."""
    parts = [tag]
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        parts.append(name if value is True else f'{name}="{esc(value)}"')
    head = "<" + " ".join(parts) + ">"
    if tag in _VOID:
        return Html(head)
    return Html(head + "".join(esc(c) for c in children) + f"</{tag}>")


_VOID = frozenset({"input", "br", "meta", "link", "hr", "img"})


def url(path: str, params: Mapping[str, object] | Sequence[tuple[str, object]] | None = None, *,
        parts: Sequence[str] = ()) -> str:
    """A link inside the app: ``path`` (code), then each of ``parts`` (data: URL-quoted, a ``/``
    too), then the query ``params`` whose value is not None or empty."""
    assert path.startswith("/"), path
    out = path + "".join("/" + quote(str(p), safe="") for p in parts)
    items = params.items() if isinstance(params, Mapping) else (params or [])
    query = [(k, str(v)) for k, v in items if v is not None and v != ""]
    return out + ("?" + urlencode(query) if query else "")


def fmt(value: Any, *, digits: int = 3) -> str:
    """A stored value as short text: NULL, yes/no, a float with ``digits`` decimals, a timestamp to
    the second, JSON as compact JSON, anything else as ``str``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def rate(value: float | None) -> str:
    """A proportion as a percentage (``-`` when unknown)."""
    return "-" if value is None else f"{100 * value:.1f}%"


def table(head: Sequence[object], rows: Iterable[Sequence[object]], *, class_: str = "data",
          empty: str = "nothing to show", **attrs: object) -> Html:
    """A table: ``head`` cells in ``<th>``, each row's cells in ``<td>`` (escaped; :class:`Html`
    cells as built); a single row saying ``empty`` when there are no rows."""
    body = [el("tr", *(el("td", c) for c in r)) for r in rows]
    if not body:
        body = [el("tr", el("td", empty, colspan=max(len(head), 1), class_="empty"))]
    return el("table", el("thead", el("tr", *(el("th", h) for h in head))), el("tbody", *body), class_=class_, **attrs)


def json_block(value: Any) -> Html:
    """JSON text (a stored JSON column: a string, or already parsed) pretty-printed in ``<pre>``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return el("pre", value, class_="json")
    return el("pre", json.dumps(value, indent=2, ensure_ascii=False, default=str), class_="json")
