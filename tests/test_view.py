"""`agentsynth view` over HTTP: a real `agentsynth view` subprocess on a store a real run wrote.

Every figure a page shows is checked against the store with SQL: the runs page, a run's
episodes under filters (their count), keyset pages that walk every episode once, one episode's
transcript and signal badges, the SQL box (writes and file reads refused, CSV download), markup
planted in stored replies rendered as text, the security headers, the token on a non-local
bind, the Host check on a loopback one, and bad input refused with one line.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import duckdb
import pytest

from agentsynth.store.connection import connect
from conftest import ROOT, agentsynth_serve, cli, free_port, q, table_digest
from view_site import IMG, SCRIPT, Site, Viewer, build_store, get, live_spec, parse, viewer

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_store(tmp_path_factory.mktemp("view"))


@pytest.fixture(scope="module")
def view(site: Site) -> Iterator[Viewer]:
    with viewer(site.store) as v:
        yield v


def page(view: Viewer, path: str, status: int = 200):
    code, headers, body = get(view.url + path)
    assert code == status, (path, code, body[:500])
    return parse(body), body, headers


def run_url(site: Site, **params: str) -> str:
    return f"/runs/{site.run_id}" + ("?" + urlencode(params) if params else "")


def rate(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def test_the_runs_page_shows_each_run_with_its_figures(site: Site, view: Viewer) -> None:
    doc, _, _ = page(view, "/")
    ((planned, ok, failed, first, last, tokens, kind, sessions),) = q(site.store, """
        SELECT r.planned, count(*) FILTER (e.status = 'ok'), count(*) FILTER (e.status <> 'ok'),
               avg(e.passed_first::INT) FILTER (e.status = 'ok'), avg(e.passed_last::INT) FILTER (e.status = 'ok'),
               sum(e.prompt_tokens + e.completion_tokens + e.judge_tokens), r.kind, r.sessions
        FROM runs r JOIN episodes e USING (run_id) GROUP BY ALL""")
    row = doc.find("tr", data_run=site.run_id)
    fields = {n.attrs["data-field"]: n.text for n in row.find_all(data_field=True)}
    assert fields["status"] == "completed"
    assert (fields["ok"], fields["failed"], fields["progress"]) == (f"{ok:,}", f"{failed:,}", f"{ok + failed:,} / {planned:,}")
    assert (fields["pass_first"], fields["pass_last"], fields["tokens"]) == (rate(first), rate(last), f"{tokens:,}")
    cells = [td.text for td in row.find_all("td")]
    assert cells[0] == "view-demo" and kind in cells and str(sessions) in cells
    assert row.find("a").attrs["href"] == f"/runs/{site.run_id}"
    assert doc.find("main").attrs.get("data-poll") is None  # nothing runs: no polling


def matching(doc) -> int:
    return int(doc.find(data_field="matching").text.replace(",", ""))


def listed(doc) -> list[str]:
    return [a.text for a in doc.find("table", class_="episodes").find_all("a")]


@pytest.mark.parametrize("params, where", [
    ({}, "true"),
    ({"env": "tools"}, "env_id = 'tools'"),
    ({"feedback": "hint"}, "feedback = 'hint'"),
    ({"env": "arithmetic", "last": "no"}, "env_id = 'arithmetic' AND passed_last = false"),
    ({"first": "yes", "status": "ok"}, "passed_first AND status = 'ok'"),
    ({"domain": "arithmetic", "first": "unknown"}, "domain = 'arithmetic' AND passed_first IS NULL"),
    ({"signal": "format", "op": "failed"},
     "episode_id IN (SELECT episode_id FROM signals WHERE name = 'format' AND NOT passed)"),
    ({"signal": "correct", "op": "ge", "value": "1", "feedback": "binary"},
     "feedback = 'binary' AND episode_id IN (SELECT episode_id FROM signals WHERE name = 'correct' AND value >= 1)"),
    ({"signal": "hint", "op": "lt", "value": "0.5"},
     "episode_id IN (SELECT episode_id FROM signals WHERE name = 'hint' AND value < 0.5)"),
])
def test_filters_change_the_count_and_the_list(site: Site, view: Viewer, params: dict[str, str], where: str) -> None:
    doc, _, _ = page(view, run_url(site, size="200", **params))
    want = [r[0] for r in q(site.store, f"SELECT episode_id FROM episodes WHERE {where} ORDER BY rowid DESC")]
    assert matching(doc) == len(want)
    assert listed(doc) == want[:200]
    total = q(site.store, "SELECT count(*) FROM episodes")[0][0]
    assert doc.find(data_field="episodes").text == f"{total:,}"
    if params.get("signal"):  # the form shows the filter it applied
        assert doc.find("select", name="signal").find("option", selected=True).attrs["value"] == params["signal"]


def test_pages_walk_every_episode_once_forwards_and_back(site: Site, view: Viewer) -> None:
    want = [r[0] for r in q(site.store, "SELECT episode_id FROM episodes ORDER BY rowid DESC")]
    seen, pages, path = [], [], run_url(site, size="20")
    while path:
        doc, _, _ = page(view, path)
        pages.append(path)
        seen += listed(doc)
        nxt = doc.find("nav", class_="pager").find_all("a", data_page="next")
        path = nxt[0].attrs["href"] if nxt else None
    assert seen == want and len(pages) == -(-len(want) // 20)
    back, path = [], pages[-1]
    while path:  # from the last page, previous links lead back to the first
        doc, _, _ = page(view, path)
        back = listed(doc) + back
        prev = doc.find("nav", class_="pager").find_all("a", data_page="prev")
        path = prev[0].attrs["href"] if prev else None
    assert back == want
    doc, _, _ = page(view, run_url(site, size="20", page="last"))
    assert listed(doc) == want[-(len(want) % 20 or 20):]


@pytest.mark.parametrize("sort, column", [("reward", "coalesce(reward, '-infinity'::DOUBLE)"), ("turns", "turns"),
                                          ("env", "env_id"), ("latency", "coalesce(latency_s, '-infinity'::DOUBLE)")])
def test_sorts_are_whitelisted_columns_with_stable_pages(site: Site, view: Viewer, sort: str, column: str) -> None:
    want = [r[0] for r in q(site.store, f"SELECT episode_id FROM episodes ORDER BY {column}, episode_id")]
    doc, _, _ = page(view, run_url(site, sort=sort, dir="asc", size="20"))
    first = listed(doc)
    after = doc.find("a", data_page="next").attrs["href"]
    doc2, _, _ = page(view, after)
    assert first + listed(doc2) == want[:40]


@pytest.mark.parametrize("params, says", [
    ({"sort": "episode_id; DROP TABLE runs"}, "sort: one of"),
    ({"dir": "sideways"}, "dir: asc or desc"),
    ({"size": "100000"}, "size: one of"),
    ({"first": "maybe"}, "first: one of yes, no, unknown"),
    ({"signal": "correct", "op": "like"}, "op: one of"),
    ({"signal": "correct", "op": "ge", "value": "abc"}, "value: a number, not 'abc'"),
    ({"signal": "correct", "op": "ge"}, "value: a number to compare"),
    ({"signal": "correct", "op": "ge", "value": "nan"}, "value: a finite number"),
    ({"after": "e-nope"}, "after: episode 'e-nope' is not in this run"),
    ({"page": "7"}, "page: only 'last'"),
])
def test_a_bad_parameter_is_a_400_page_naming_it(site: Site, view: Viewer, params: dict[str, str], says: str) -> None:
    doc, body, _ = page(view, run_url(site, **params), 400)
    assert says in doc.find("p", class_="error").text
    assert "Traceback" not in body


def test_unknown_things_are_404_pages(site: Site, view: Viewer) -> None:
    for path in ("/runs/r-nope", "/episodes/e-nope", "/audits/a-nope", "/exports/x-nope", "/nowhere", "/static/x.js"):
        doc, _, _ = page(view, path, 404)
        assert doc.find("h1").text == "404 Not found"
    code, _, body = get(view.url + "/api/runs/r-nope")
    assert code == 404 and "no run" in body


def test_an_episode_shows_its_transcript_and_each_turns_badges(site: Site, view: Viewer) -> None:
    doc, _, _ = page(view, f"/episodes/{site.tools}")
    msgs = q(site.store, "SELECT position, turn, role, content, tool_calls::VARCHAR, tool_call_id FROM messages "
                         "WHERE episode_id = ? ORDER BY position", [site.tools])
    shown = doc.find("div", class_="transcript").find_all("div", class_="msg")
    assert [int(m.attrs["data-position"]) for m in shown] == [m[0] for m in msgs]
    assert [m.attrs["data-role"] for m in shown] == [m[2] for m in msgs]
    for node, (_, turn, _, content, calls, call_id) in zip(shown, msgs, strict=True):
        section = [s for s in doc.find_all("section", class_="turn") if node in s.find_all("div", class_="msg")][0]
        assert int(section.attrs["data-turn"]) == turn
        if content:
            assert node.find("pre", class_="content").text == content
        if calls:
            names = [f"{c['function']['name']}({c['function']['arguments']})" for c in json.loads(calls)]
            assert [c.text for c in node.find("ul", class_="tool-calls").find_all("code")] == names
        if call_id:
            assert call_id in node.find("span", class_="call-id").text
    assert {"system", "user", "assistant", "tool"} <= {m[2] for m in msgs}
    sigs = q(site.store, """SELECT s.turn, s.name, s.role, s.value, s.passed, t.source, t.openness, t.meta_level, t.task_relevant
                            FROM signals s JOIN signal_types t USING (name) WHERE s.episode_id = ?""", [site.tools])
    badges = doc.find_all("div", class_="badge")
    got = set()
    for b in badges:
        section = [s for s in doc.find_all("section", class_="turn") if b in s.find_all("div", class_="badge")][0]
        assert section.attrs["data-turn"] == b.attrs["data-turn"]  # beside its own turn
        lab = {n.attrs["data-label"]: n.text for n in b.find_all(data_label=True)}
        got.add((int(b.attrs["data-turn"]), b.attrs["data-signal"], b.attrs["data-role"], float(b.attrs["data-value"]),
                 {"pass": True, "fail": False, "unknown": None}[b.attrs["data-passed"]], lab["source"].removeprefix("source: "),
                 lab["openness"], int(lab["meta_level"].split()[1]), lab["task_relevant"] == "task-relevant"))
    assert got == {(t, n, r, v, p, s, o, m, tr) for t, n, r, v, p, s, o, m, tr in sigs} and len(badges) == len(sigs)
    ((answer, task_id),) = q(site.store, "SELECT t.answer, t.task_id FROM tasks t JOIN episodes e USING (task_id) "
                                         "WHERE e.episode_id = ?", [site.tools])
    task = doc.find("details", class_="task")
    assert task.attrs.get("open") is None and task.find("pre", class_="answer").text == answer and task_id in task.text


def test_planted_markup_renders_as_text_everywhere(site: Site, view: Viewer) -> None:
    doc, body, _ = page(view, f"/episodes/{site.planted}")
    for raw in (SCRIPT, IMG, "<img src=x", "onerror=alert"):  # never as markup
        assert raw not in body
    assert "&lt;script&gt;window.__pwned = 1; alert(1)&lt;/script&gt;" in body
    texts = [m.text for m in doc.find_all("pre", class_="content")]
    assert any(SCRIPT in t and IMG in t for t in texts)  # shown as the text it is
    assert any(IMG in t for t in texts if t.startswith("Incorrect."))
    assert SCRIPT in doc.find("p", class_="error").text
    assert IMG in doc.find("details", class_="task").text
    assert any(SCRIPT in b.text for b in doc.find_all("div", class_="badge"))
    scripts = doc.find_all("script")
    assert len(scripts) == 1 and scripts[0].attrs["src"].startswith("/static/viewer.js?v=") and scripts[0].text == ""
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+\s*=", body, re.I)  # no inline event handler anywhere
    # the SQL box shows stored text as text too
    _, sql_body, _ = page(view, "/sql?" + urlencode({"q": f"SELECT content FROM messages WHERE episode_id = '{site.planted}'"}))
    assert SCRIPT not in sql_body and "&lt;script&gt;" in sql_body


def test_security_headers_on_every_response(site: Site, view: Viewer) -> None:
    for path, status in (("/", 200), (f"/episodes/{site.planted}", 200), ("/runs/r-nope", 404), ("/sql?q=DROP+TABLE+runs", 400),
                         ("/static/viewer.js", 200), ("/api/runs", 200)):
        code, headers, _ = get(view.url + path)
        assert code == status, path
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    _, headers, js = get(view.url + "/static/viewer.js")
    assert headers["Content-Type"].startswith("text/javascript") and "setInterval" in js
    _, headers, _ = get(view.url + "/static/viewer.css")
    assert headers["Content-Type"].startswith("text/css")


def test_a_loopback_viewer_refuses_other_host_names(view: Viewer) -> None:
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 cannot read the viewer."""
    code, _, body = get(view.url + "/", headers={"Host": f"evil.example:{view.port}"})
    assert code == 403 and "127.0.0.1 or localhost only" in body
    assert get(view.url + "/", headers={"Host": f"localhost:{view.port}"})[0] == 200


def sql_page(view: Viewer, query: str, status: int = 200):
    return page(view, "/sql?" + urlencode({"q": query}), status)


def test_the_sql_box_reads_and_refuses_writes_and_files(site: Site, view: Viewer, tmp_path: Path) -> None:
    doc, _, _ = sql_page(view, "SELECT feedback, count(*) AS n FROM episodes GROUP BY 1 ORDER BY 1")
    table = doc.find("table", class_="sql-result")
    assert [th.text for th in table.find_all("th")] == ["feedback", "n"]
    rows = [[td.text for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]
    assert rows == [[f, f"{n:,}"] for f, n in q(site.store, "SELECT feedback, count(*) FROM episodes GROUP BY 1 ORDER BY 1")]
    before = table_digest(site.store)
    copied = tmp_path / "copied.csv"
    for query, says in (("DELETE FROM runs", "refused: DELETE"), ("DROP TABLE episodes", "refused: DROP"),
                        ("UPDATE runs SET name = 'x'", "refused: UPDATE"), ("SELECT 1; DELETE FROM runs", "refused: DELETE"),
                        (f"COPY runs TO '{copied}'", "refused: COPY"), ("ATTACH '/tmp/y.duckdb' AS y", "refused: ATTACH"),
                        ("SET threads = 1", "refused: SET"), ("INSTALL httpfs", "refused: INSTALL"),
                        ("SELECT * FROM read_csv('/etc/passwd')", 'refused: store queries read only the store (Cannot access file "/etc/passwd"'),
                        ("SELECT * FROM read_text('/etc/hostname')", "refused: store queries read only the store"),
                        ("SELECT * FROM glob('/*')", "refused: store queries read only the store"),
                        ("SELECT nope FROM runs", "Binder Error"), ("SELEC 1", "cannot parse query")):
        doc, body, _ = sql_page(view, query, 400)
        assert says in doc.find("p", id="sql-error").text, (query, doc.find("p", id="sql-error").text)
        assert "Traceback" not in body and "--allow-files" not in body
        assert doc.find("textarea").text == query  # the query stays in the box to be fixed
    assert table_digest(site.store) == before and not copied.exists()


def test_sql_csv_download_has_every_row(site: Site, view: Viewer) -> None:
    query = ("SELECT episode_id, position, role, content, k FROM messages, range(20) AS r(k) "
             "ORDER BY episode_id, position, k")  # more rows than the page shows, in several chunks
    code, headers, body = get(view.url + "/sql.csv?" + urlencode({"q": query}))
    assert code == 200 and headers["Content-Type"].startswith("text/csv") and "attachment" in headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(body)))
    want = q(site.store, query)
    assert rows[0] == ["episode_id", "position", "role", "content", "k"]
    assert [(a, int(b), c, d, int(k)) for a, b, c, d, k in rows[1:]] == [(a, b, c, d or "", k) for a, b, c, d, k in want]
    assert len(want) > 5000
    doc, _, _ = sql_page(view, query)
    assert "the first 1,000" in doc.find("p", class_="count").text
    code, _, body = get(view.url + "/sql.csv?" + urlencode({"q": "DELETE FROM runs"}))
    assert code == 400 and "refused: DELETE" in body


def test_signals_audit_export_evaluation_and_loop_pages(site: Site, view: Viewer) -> None:
    doc, _, _ = page(view, "/signals")
    names = [r[0] for r in q(site.store, "SELECT name FROM signal_types ORDER BY name")]
    types = doc.find("table", class_="types")
    assert [b.text for b in types.find_all("b")] == names
    probe = {tr.find_all("td")[0].text: tr.find_all("td")[3].text for tr in types.find("tbody").find_all("tr")}
    assert probe["correct"] == "arithmetic: ok" and probe["format"] == "arithmetic: surface (not flagged)"
    ((k, n),) = q(site.store, """SELECT count(*) FILTER (f.passed = t.passed), count(*) FROM signals f JOIN signals t
                                 USING (episode_id, turn) WHERE f.name = 'format' AND f.role = 'score' AND t.role = 'truth'
                                 AND f.passed IS NOT NULL AND t.passed IS NOT NULL""")
    row = [tr for tr in doc.find("table", class_="agreement").find_all("tr") if tr.find_all("td") and tr.find_all("td")[0].text == "format"][0]
    assert row.find_all("td")[4].text.startswith(f"{k / n:.3f} [") and row.find_all("td")[5].text == f"{n:,}"
    assert doc.find("svg", class_="plot")
    ((audit_id,),) = q(site.store, "SELECT audit_id FROM audits")
    doc, _, _ = page(view, "/audits")
    assert doc.find("a", href=f"/audits/{audit_id}")
    doc, _, _ = page(view, f"/audits/{audit_id}")
    ((est, lo, hi),) = q(site.store, "SELECT estimate, ci_low, ci_high FROM audit_results WHERE audit_id = ? AND scope = 'signal' "
                                     "AND name = 'format' AND metric = 'accuracy' AND domain IS NULL", [audit_id])
    cells = [[td.text for td in tr.find_all("td")] for tr in doc.find_all("table")[0].find_all("tr")]
    assert any(c and c[0] == "format" and f"{est:.3f} [{lo:.3f}, {hi:.3f}]" in c for c in cells)
    assert len(doc.find_all("svg", class_="plot")) >= 4
    ((export_id, items),) = q(site.store, "SELECT export_id, (SELECT count(*) FROM export_items) FROM exports")
    doc, _, _ = page(view, "/exports")
    assert doc.find("a", href=f"/exports/{export_id}") and "correct" in doc.text
    doc, _, _ = page(view, f"/exports/{export_id}")
    first = [r[0] for r in q(site.store, "SELECT episode_id FROM export_items WHERE export_id = ? ORDER BY item LIMIT 50", [export_id])]
    assert [a.text for a in doc.find_all("table")[-1].find_all("a")] == first
    assert f"{items:,}" in doc.text
    doc, _, _ = page(view, "/evaluations")
    assert "no evaluations stored" in doc.text
    doc, _, _ = page(view, "/loops")
    assert "No loops stored" in doc.text


def test_the_json_api_gives_live_figures(site: Site, view: Viewer) -> None:
    code, _, body = get(view.url + f"/api/runs/{site.run_id}?env=tools")
    data = json.loads(body)
    assert code == 200 and data["live"] is False
    assert data["matching"] == q(site.store, "SELECT count(*) FROM episodes WHERE env_id = 'tools'")[0][0]
    code, _, body = get(view.url + f"/api/runs/{site.run_id}?sort=nope")
    assert code == 400 and "sort: one of" in json.loads(body)["error"]


def test_a_token_is_required_on_a_non_local_address(site: Site) -> None:
    with viewer(site.store, "--host", "0.0.0.0", ready_path="/favicon.ico", lines=2) as v:
        link = re.search(r"http://127\.0\.0\.1:\d+/\?token=(\S+)", v.printed)
        assert link, v.printed
        token = link.group(1)
        assert "every request needs the token" in v.printed
        for path in ("/", f"/episodes/{site.planted}", "/static/viewer.js", "/api/runs", "/sql?q=SELECT+1"):
            code, headers, body = get(v.url + path)
            assert code == 401 and "a token is required" in body and headers["WWW-Authenticate"].startswith("Bearer")
        for headers in ({"Authorization": "Bearer wrong-token-wrong-token"}, {"Cookie": f"agentsynth_view_{v.port}=nope"},
                        {"Authorization": f"Basic {token}"}):
            code, _, body = get(v.url + "/", headers=headers)
            assert code == 403 and "wrong token" in body and token not in body
        code, _, body = get(v.url + "/?token=wrong")
        assert code == 403 and token not in body
        code, headers, _ = get(v.url + f"/runs/{site.run_id}?env=tools&token={quote(token)}")
        assert code == 303 and headers["Location"] == f"/runs/{site.run_id}?env=tools"  # the token leaves the address bar
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and f"agentsynth_view_{v.port}={token}" in cookie
        code, _, body = get(v.url + f"/runs/{site.run_id}?env=tools", headers={"Cookie": f"agentsynth_view_{v.port}={token}"})
        assert code == 200 and token not in body
        code, _, body = get(v.url + "/", headers={"Authorization": f"Bearer {token}"})
        assert code == 200 and "view-demo" in body and token not in body


def test_a_given_token_and_its_checks(site: Site) -> None:
    token = "s3cret-token-for-the-viewer"
    with viewer(site.store, "--host", "127.0.0.1", "--token", token, ready_path="/favicon.ico") as v:
        assert get(v.url + "/")[0] == 401  # a token given on loopback is required too
        assert get(v.url + "/", headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert token in v.printed
    r = cli("view", "--store", str(site.store), "--host", "0.0.0.0", "--token", "short", "--port", str(free_port()))
    assert r.returncode == 2 and r.stderr.strip() == "error: --token must be at least 16 characters (omit it to have one generated)"


def test_bad_input_is_one_line_and_exit_2(site: Site, tmp_path: Path) -> None:
    r = cli("view", "--store", str(tmp_path / "none.duckdb"))
    assert r.returncode == 2 and r.stderr.strip().startswith("error: no store at") and "Traceback" not in r.stderr
    (tmp_path / "junk.duckdb").write_text("not a database")
    r = cli("view", "--store", str(tmp_path / "junk.duckdb"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    with viewer(site.store) as v:
        r = cli("view", "--store", str(site.store), "--port", str(v.port))
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()] and "port is in use" in r.stderr
    r = cli("view", "--store", str(site.store), "--port", "70000")
    assert r.returncode == 2 and "70000" in r.stderr


def read(store: Path, sql: str) -> list[tuple]:
    """A query on a store a run is writing: opened as every agentsynth reader opens it (waiting
    out the run's writer, which holds the file a few tens of milliseconds a second)."""
    con = connect(store, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_live_runs_page_shows_new_episodes_while_the_run_goes_on(tmp_path: Path) -> None:
    """Needs live reads (a run holds the store only per batch): the viewer reads while the run writes."""
    store = tmp_path / "live.duckdb"
    with agentsynth_serve("--latency-ms", "150") as served:
        spec = live_spec(tmp_path, store, served.url, tasks=80)
        run = subprocess.Popen([sys.executable, "-m", "agentsynth", "run", str(spec), "-q"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (store.exists() and read(store, "SELECT count(*) FROM episodes")[0][0] > 0):
                assert run.poll() is None and time.monotonic() < deadline, run.stderr.read() if run.stderr else ""
                time.sleep(0.2)
            with viewer(store) as v:
                ((run_id,),) = read(store, "SELECT run_id FROM runs")
                doc, _, _ = page(v, f"/runs/{run_id}")
                first, ids = matching(doc), listed(doc)
                main = doc.find("main")
                assert main.attrs["data-live"] == "1" and main.attrs["data-poll"] == f"/api/runs/{run_id}"
                assert doc.find(data_field="status").text == "running"
                grew = False  # the JSON the page polls counts the episodes the run adds meanwhile
                deadline = time.monotonic() + 60
                while not grew and run.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.5)
                    grew = json.loads(get(v.url + f"/api/runs/{run_id}")[2])["matching"] > first and run.poll() is None
                assert grew, "no new episode seen while the run went on"
                doc, _, _ = page(v, f"/runs/{run_id}")
                assert matching(doc) > first and listed(doc)[0] not in ids  # newest first: new episodes on top
        finally:
            if run.poll() is None:
                run.terminate()
            run.wait(timeout=60)


def test_evaluations_generalization_and_loops_pages(site: Site, tmp_path: Path) -> None:
    """Held-out evaluations of a base and a "trained" model (the sim served with more skill, as the
    README's offline generalization example does), then a loop step naming them (the shape
    `agentsynth loop` writes), shown with their intervals."""
    import shutil

    store = tmp_path / "evals.duckdb"
    shutil.copy(site.store, store)
    ((export_id,),) = q(store, "SELECT export_id FROM exports")
    r = cli("eval", "--model", "sim", "--envs", "arithmetic,units", "--tasks", "30", "--store", str(store), "-q")
    assert r.returncode == 0, r.stderr
    with agentsynth_serve("--model-name", "sim-ft", "--sim", "skill.arithmetic=0.95") as served:
        r = cli("eval", "--model", "sim-ft", "--base-url", served.url, "--envs", "arithmetic,units", "--tasks", "30",
                "--trained-on", export_id, "--base-model", "sim", "--store", str(store), "-q")
        assert r.returncode == 0, r.stderr
    ids = [i for (i,) in q(store, "SELECT evaluation_id FROM evaluations WHERE trained_on IS NOT NULL ORDER BY 1")]
    con = duckdb.connect(str(store))
    try:
        con.execute("INSERT INTO loops (loop, arm, seed, generation, signal, phase, run_id, export_id, evaluation_ids, spec_hash, "
                    "updated_at) VALUES ('demo-loop', 'correct', 0, 1, 'correct', 'evaluated', ?, ?, ?, 'h', now())",
                    [site.run_id, export_id, json.dumps(ids)])
    finally:
        con.close()
    with viewer(store) as v:
        doc, _, _ = page(v, "/evaluations")
        rows = q(store, "SELECT evaluation_id, accuracy, ci_low, ci_high FROM evaluations")
        cells = {tr.find_all("td")[0].text: tr.find_all("td")[7].text for tr in doc.find_all("table")[0].find("tbody").find_all("tr")}
        assert cells == {i: f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for i, a, lo, hi in rows}
        gen = q(store, "SELECT split, eval_domain, delta, delta_low, delta_high FROM generalization ORDER BY signal, split, eval_domain")
        shown = [[td.text for td in tr.find_all("td")] for tr in doc.find_all("table")[1].find("tbody").find_all("tr")]
        assert [(c[3], c[4], c[8]) for c in shown] == [(s, d, f"{x:.3f} [{lo:.3f}, {hi:.3f}]") for s, d, x, lo, hi in gen]
        assert len(doc.find_all("svg", class_="plot")) == 2
        doc, _, _ = page(v, "/loops")
        ((n, k),) = q(store, "SELECT sum(n), sum(correct) FROM evaluations WHERE domain = 'arithmetic' AND trained_on IS NOT NULL")
        title = doc.find("svg", class_="plot").find("circle").find("title").text
        assert title.startswith(f"correct · gen 1: {k / n:.3f} [")
        assert "demo-loop" in doc.find_all("table")[-1].text
