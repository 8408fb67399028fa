"""Reading the answer out of a reply: the shared, model-free text rules.

:func:`final_answer` is what graders and the store call "the answer" of an assistant message;
:func:`normalize` is the comparison key used to tell answers apart (self-consistency, the audit's
acceptance classes, export de-duplication). Every built-in domain reads its answer through this
module: single-line answers with :func:`final_answer`, answers that may span lines (an assignment,
a grid) with :func:`answer_block`, and code, SQL and JSON, which pick a fenced block themselves,
within :func:`answer_region`. :func:`answer_readings` lists the readings a lenient external scorer
(reasoning-gym) may try.

The rules (the README's "Answer forms" table shows them by example):

- Marks. ``Answer:`` (any case, ``Final answer:``, ``**Answer:**``, ``Answer**:``, ``Answer =``),
  a line that is only a heading ``## Answer`` / ``**Final Answer**``, and ``\\boxed{...}`` (nested
  braces; if they never balance, up to the last ``}``). The LAST of these marks wins. ``The answer
  is X`` (``the``/``my``, ``final``) is a mark only when the reply has none of the others. Marks
  inside fenced code blocks do not count (code may assign a variable named ``answer``).
- What a mark introduces. ``\\boxed{X}``: X. Otherwise the rest of the mark's line; when that is
  empty, the fenced block or the paragraph (lines up to a blank one) after it; a fenced block that
  opens on the mark's line is read whole. :func:`answer_block` takes the paragraph that starts on
  the mark's line; :func:`answer_region` everything after the mark.
- No mark: the content of the fenced block the reply ends with, else its last non-empty line.
- Unwrapping, only of wrappers around the WHOLE answer, repeatedly: ``*`` emphasis runs at either
  end, a fenced block (its content is then taken literally), inline backticks, ``$…$``, ``$$…$$``,
  ``\\(…\\)``, ``\\[…\\]``, matching quotes (``"`` ``'`` ``“”`` ``‘’`` ``«»``) whose inside does not
  contain the closing quote, ``\\boxed{}``/``\\text{}``/``\\mathrm{}``-style commands, and one
  trailing full stop (at most one in all).
"""

from __future__ import annotations

import bisect
import re

_FENCED = re.compile(r"```.*?(?:```|\Z)", re.S)  # a fenced block's span: marks inside do not count
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.S)  # a fenced block at the start: its content
_WHOLE_FENCE = re.compile(r"```[^\n`]*\n(.*?)\n?[ \t]*```", re.S)
_EMPH = r"(?:[*_]{1,3}[ \t]*)?"
_STRONG = re.compile(
    rf"(?P<head>^[ \t]*(?:#{{1,6}}[ \t]*)?{_EMPH}(?:final[ \t]+)?answer[ \t]*{_EMPH}:?[ \t]*{_EMPH}$)"
    rf"|(?P<line>answer[ \t]*{_EMPH}(?::|=(?!=)))"
    r"|(?P<box>\\boxed[ \t]*\{)",
    re.I | re.M,
)
_WEAK = re.compile(r"(?:^[ \t]*|\b(?:the|my)[ \t]+)(?:final[ \t]+)?answer[ \t]+is\b[ \t]*:?", re.I | re.M)
_COMMAND = re.compile(r"\\(?:boxed|text|textbf|textit|textrm|texttt|mathrm|mathbf|mathtt)[ \t]*\{")
_PAIRS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ('"', '"'), ("'", "'"),
          ("\u201c", "\u201d"), ("\u2018", "\u2019"), ("\u00ab", "\u00bb"))
_BACKTICKS = re.compile(r"(`{1,3})([^`]+)\1", re.S)
_BLANK = re.compile(r"\n[ \t]*\n")
_BRACE = re.compile(r"\\.|[{}]", re.S)  # an escaped character (skipped) or a brace
_SPACE = re.compile(r"\s+")


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group whose ``{`` ends at ``start`` and the index after its ``}``:
    nested groups count, ``\\{`` and ``\\}`` do not; if the braces never balance, up to the last
    ``}`` of the text; None without any."""
    depth = 1
    for m in _BRACE.finditer(text, start):
        depth += {"{": 1, "}": -1}.get(m.group(), 0)
        if depth == 0:
            return text[start:m.start()], m.end()
    last = text.rfind("}")
    return (text[start:last], last + 1) if last >= start else None


def _unwrap(s: str, stop: bool = True) -> str:
    """``s`` without the wrappers around the whole of it (see the module docstring); ``stop``:
    also drop one trailing full stop."""
    s = s.strip()
    for _ in range(12):  # enough for real nesting, e.g. **$\boxed{\text{"x"}}$**. (and bounded work)
        t = s.strip("*").strip()
        if t != s:
            s = t
            continue
        m = _WHOLE_FENCE.fullmatch(s)
        if m and "```" not in m.group(1):
            return m.group(1).strip("\n")
        m = _BACKTICKS.fullmatch(s)
        if m and m.group(2).strip():
            s = m.group(2).strip()
            continue
        pair = next((p for p in _PAIRS if len(s) > len(p[0]) + len(p[1]) and s.startswith(p[0]) and s.endswith(p[1])
                     and p[1] not in s[len(p[0]):-len(p[1])] and p[0] not in s[len(p[0]):-len(p[1])]), None)
        if pair:
            s = s[len(pair[0]):-len(pair[1])].strip()
            continue
        m = _COMMAND.match(s)
        inner = _braced(s, m.end()) if m else None
        if inner and inner[1] == len(s):
            s = inner[0].strip()
            continue
        if stop and s.endswith("."):
            s, stop = s[:-1].rstrip(), False
            continue
        break
    return s


def _paragraph(text: str) -> str:
    """``text`` up to its first blank line."""
    return _BLANK.split(text, maxsplit=1)[0]


def _last_mark(text: str) -> re.Match[str] | None:
    """The mark that wins: the last strong mark outside fenced blocks, else the last weak one."""
    spans = [m.span() for m in _FENCED.finditer(text)]
    starts = [a for a, _ in spans]

    def free(pos: int) -> bool:
        i = bisect.bisect_right(starts, pos) - 1
        return i < 0 or not spans[i][0] <= pos < spans[i][1]

    last_close = text.rfind("}")  # a \boxed{ with no } after it is no mark (checked without scanning)
    for rx in (_STRONG, _WEAK):
        for m in reversed(list(rx.finditer(text))):
            if free(m.start()) and (m.lastgroup != "box" or m.end() <= last_close):
                return m
    return None


def _read(text: object, span: str, stop: bool = True) -> str | None:
    """What the last mark introduces: ``span`` is "line" (the rest of its line, else the block
    after it), "block" (the paragraph from the mark on) or "region" (everything after it); None
    when the reply has no mark."""
    text = text if isinstance(text, str) else ""
    m = _last_mark(text)
    if m is None:
        return None
    if m.lastgroup == "box":
        return _unwrap(_braced(text, m.end())[0], stop)  # type: ignore[index]
    rest = text[m.end():]
    if span == "region":
        return _unwrap(rest, stop)
    line, _, after = rest.partition("\n")
    if line.lstrip(" \t*").startswith("```"):  # a fenced block opening on the mark's line
        fence = _FENCE.match(rest.lstrip(" \t*"))
        return fence.group(1).strip("\n") if fence else ""
    if line.strip(" \t*"):
        return _unwrap(line if span == "line" else _paragraph(rest), stop)
    after = after.lstrip()
    if after.startswith("```"):
        fence = _FENCE.match(after)
        return fence.group(1).strip("\n") if fence else ""
    return _unwrap(_paragraph(after), stop)


def _unmarked(text: object, stop: bool = True) -> str:
    """A reply without a mark: the fenced block it ends with, else its last non-empty line."""
    text = (text if isinstance(text, str) else "").strip()
    if text.endswith("```"):
        blocks = list(_FENCE.finditer(text))
        if blocks and blocks[-1].end() == len(text):
            return blocks[-1].group(1).strip("\n")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return _unwrap(lines[-1], stop) if lines else ""


def final_answer(text: str) -> str:
    """The answer part of a reply, by the module's rules: what the last answer mark introduces on
    its line (when that is empty, the fenced block or paragraph after it), unwrapped; without a
    mark, the fenced block the reply ends with or its last non-empty line. ``""`` when empty."""
    found = _read(text, "line")
    return _unmarked(text) if found is None else found


def answer_block(text: str) -> str:
    """Like :func:`final_answer` for answers that may span lines: from the mark's line on, up to
    the first blank line (a fenced block whole; ``\\boxed{}``'s content)."""
    found = _read(text, "block")
    return _unmarked(text) if found is None else found


def answer_region(text: str) -> str | None:
    """Everything the last answer mark introduces (``\\boxed{}``'s content, or the rest of the reply
    after an ``Answer:``-style mark), unwrapped; None when the reply has no mark. For answers
    that pick a fenced block themselves (code, SQL, JSON)."""
    return _read(text, "region")


def answer_readings(text: str, keep_stop: bool = False, to_end: bool = True) -> list[str]:
    """The distinct non-empty readings of a reply's answer, for a lenient external scorer to try:
    :func:`final_answer`, :func:`answer_block` and, with ``to_end``, :func:`answer_region` (the
    whole reply without a mark); with ``keep_stop`` (answers that may end in a full stop), each
    also with its trailing full stop kept. Line ends are read as ``\\n`` (a CRLF reply reads as
    its LF form). Without ``to_end`` nothing after the answer's paragraph (a critique, a verdict
    after a blank line) is read as answer."""
    text = (text if isinstance(text, str) else "").replace("\r\n", "\n").replace("\r", "\n")
    out: list[str | None] = []
    for stop in (True, False) if keep_stop else (True,):
        line = _read(text, "line", stop)
        if line is None:
            out += [_unmarked(text, stop), text.strip() if to_end else None]
        else:
            out += [line, _read(text, "block", stop), _read(text, "region", stop) if to_end else None]
    return [r for r in dict.fromkeys(out) if r]


def normalize(answer: str) -> str:
    """Comparison key of an (already extracted) answer: case-folded, whitespace collapsed, a
    trailing full stop dropped."""
    return _SPACE.sub(" ", (answer or "").strip().strip(".").casefold())
