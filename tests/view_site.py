"""What the viewer's tests share: a real store (a real `agentsynth run` on the sim, an audit, an
export, and replies planted with markup), a real `agentsynth view` subprocess, plain HTTP
requests, and a small HTML tree to look things up in."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import duckdb

from conftest import ROOT, cli, free_port, stop, write_spec

SCRIPT = "<script>window.__pwned = 1; alert(1)</script>"
IMG = '<img src=x onerror="window.__pwned2 = 1; alert(2)">'
PLANTED = f"Let me think. {SCRIPT} and {IMG}\nAnswer: 7"


@dataclass
class Site:
    """A built store and what was planted in it."""

    store: Path
    run_id: str
    planted: str  # an episode whose reply, feedback, task and error carry markup
    tools: str  # an episode with tool calls and their results


def build_store(tmp: Path) -> Site:
    """A real run (arithmetic × binary/hint, tools × binary; 2 samples; a system prompt), an audit,
    an export and a probe of it; then markup planted in one episode's stored texts."""
    store = tmp / "view.duckdb"
    spec = write_spec(tmp / "view.toml", f"""
        name = "view-demo"
        model = "sim"
        samples = 2
        concurrency = 8
        store = "{store}"
        system_prompt = "You are careful. Show the answer last."

        [[envs]]
        id = "arithmetic"
        tasks = 12
        max_turns = 3
        feedback = ["binary", "hint"]

        [[envs]]
        id = "tools"
        tasks = 6
        max_turns = 4
        feedback = ["binary"]
        """)
    for args in (("run", str(spec), "-q"), ("audit", "--store", str(store), "--bootstrap", "100"),
                 ("export", "--run", "view-demo", "--select", "correct", "--format", "sft", "--out", str(tmp / "x.jsonl"),
                  "--store", str(store)),
                 ("probe", "--env", "arithmetic", "--tasks", "10", "--store", str(store), "-q")):
        r = cli(*args, cwd=tmp)
        assert r.returncode == 0, (args, r.stderr)
    con = duckdb.connect(str(store))
    try:
        run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
        planted, task = con.execute("SELECT episode_id, task_id FROM episodes WHERE env_id = 'arithmetic' AND turns >= 2 "
                                    "ORDER BY episode_id LIMIT 1").fetchone()
        pos = con.execute("SELECT min(position) FROM messages WHERE episode_id = ? AND role = 'assistant'", [planted]).fetchone()[0]
        con.execute("UPDATE messages SET content = ? WHERE episode_id = ? AND position = ?", [PLANTED, planted, pos])
        con.execute("UPDATE messages SET content = ? WHERE episode_id = ? AND role = 'user' AND turn = 1", [f"Incorrect. {IMG}", planted])
        con.execute("UPDATE signals SET feedback = ?, details = ? WHERE episode_id = ? AND turn = 1",
                    [f"Incorrect. {SCRIPT}", json.dumps({"note": SCRIPT}), planted])
        con.execute("UPDATE tasks SET answer = ?, metadata = ? WHERE task_id = ?", [f"42 {IMG}", json.dumps({"html": IMG}), task])
        con.execute("UPDATE episodes SET error = ? WHERE episode_id = ?", [f"planted {SCRIPT}", planted])
        tools = con.execute("SELECT e.episode_id FROM episodes e WHERE env_id = 'tools' AND EXISTS (SELECT 1 FROM messages m "
                            "WHERE m.episode_id = e.episode_id AND m.role = 'tool') ORDER BY e.episode_id LIMIT 1").fetchone()[0]
    finally:
        con.close()
    return Site(store, run_id, planted, tools)


@dataclass
class Viewer:
    """A running `agentsynth view`: its base URL, the lines it printed first, its process."""

    url: str
    port: int
    proc: subprocess.Popen[str]
    printed: str


@contextlib.contextmanager
def viewer(store: Path, *args: str, port: int | None = None, ready_path: str = "/static/viewer.css",
           headers: dict[str, str] | None = None, lines: int = 1) -> Iterator[Viewer]:
    """`agentsynth view --store STORE --port PORT ARGS` as a user starts it, ready when it answers
    (``printed``: the first ``lines`` lines of its output); stopped with SIGINT afterwards (killed if
    it does not stop)."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agentsynth", "view", "--store", str(store), "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            status, _, _ = get(url + ready_path, headers=headers)
            if status not in (0,):
                break
            assert proc.poll() is None, f"agentsynth view exited: {proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, "agentsynth view did not start"
            time.sleep(0.05)
        printed = "".join(proc.stdout.readline() for _ in range(lines)) if proc.stdout else ""
        yield Viewer(url, port, proc, printed)
    finally:
        stop(proc)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def get(url: str, *, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of a GET, redirects not followed; status 0 when nothing answers."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}, ""


# ---- a small HTML tree ----------------------------------------------------------------------

VOID = {"meta", "link", "input", "br", "hr", "img"}


@dataclass
class Node:
    """An element: tag, attributes, children (elements and text)."""

    tag: str
    attrs: dict[str, str | None]
    children: list["Node | str"] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All text inside, as the browser would show it (entities decoded)."""
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def find_all(self, tag: str | None = None, **attrs: str | bool) -> list["Node"]:
        """Descendants with this tag (any if None) whose attributes have these values (True: present);
        ``class_`` matches one class among several."""
        out = []
        for c in self.children:
            if isinstance(c, str):
                continue
            if (tag is None or c.tag == tag) and all(_attr_ok(c, k, v) for k, v in attrs.items()):
                out.append(c)
            out.extend(c.find_all(tag, **attrs))
        return out

    def find(self, tag: str | None = None, **attrs: str | bool) -> "Node":
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag}> with {attrs}"
        return found[0]


def _attr_ok(node: Node, key: str, want: str | bool) -> bool:
    name = key.rstrip("_").replace("_", "-")
    have = node.attrs.get(name, False) if name in node.attrs else False
    if want is True:
        return name in node.attrs
    if name == "class":
        return want in (have or "").split()
    return have == want


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    """The document as a :class:`Node` tree."""
    b = _Builder()
    b.feed(html)
    b.close()
    return b.root


def live_spec(tmp_path: Path, store: Path, url: str, tasks: int) -> Path:
    """A run slow enough to watch (2 in flight against a server adding latency): the live-page tests'."""
    return write_spec(tmp_path / "live.toml", f"""
        name = "live"
        model = "sim"
        base_url = "{url}"
        samples = 1
        concurrency = 2
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = {tasks}
        max_turns = 2
        feedback = "binary"
        """)
