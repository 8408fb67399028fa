"""No secret leaks: keys from the key variables, URL userinfo and URL query strings never reach the
store, the output or any written file, whatever a server echoes back.

The server is real (aiohttp on 127.0.0.1, in a thread of this process): ``/ok/v1`` serves the sim
behind a Bearer key and a query key, ``/plain/v1`` behind a Bearer key alone, and ``/echo/v1``
answers every chat request 401 with a body that quotes back the Authorization header, the request
URL and the query string. Every command runs as a user runs it (``python -m agentsynth``), and the
DuckDB file, its WAL, a dump of every table, stdout, stderr and every output file are searched for
each secret and its encoded forms.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest
from aiohttp import web

from pydantic import ValidationError

from agentsynth.spec import EnvSpec, JudgeSpec, RunSpec
from agentsynth.channels import JUDGE_HEADER
from agentsynth.credentials import redact, secret_values, strip_credentials, url_secrets
from agentsynth.models.base import ModelError
from agentsynth.models.openai_compat import OpenAIModel
from agentsynth.sim.server import create_app

from conftest import cli, q, write_spec

pytestmark = pytest.mark.timeout(300)

KEY = "policy-S3CRET-71c2e9f0"  # deliberately not key-shaped (no sk-): only the known-secret redaction can catch it
JUDGE_KEY = "judge-S3CRET-5d8a10c4"
QUERY = "query-S3CRET-9f03b7aa"
USER, PASSWORD = "alice", "userinfo-S3CRET-42aa17"
ENV = {"POLICY_KEY": KEY, "JUDGE_KEY": JUDGE_KEY}


def b64_cores(data: bytes) -> list[str]:
    """The base64 text that ``data`` yields wherever it sits in an encoded string: for each of the
    three alignments, the characters that depend on ``data``'s bytes alone."""
    out = []
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + data).decode()
        first, last = -(-8 * k // 6), (8 * (k + len(data)) - 6) // 6
        out.append(enc[first:last + 1])
    return out


def secret_forms() -> dict[str, str]:
    """Every form of every secret to search for: raw, URL-quoted and base64 (alone and as
    ``user:password``, the HTTP Basic credential)."""
    forms: dict[str, str] = {}
    for s in (KEY, JUDGE_KEY, QUERY, PASSWORD):
        forms[s] = s
        forms[f"quote({s})"] = quote(s, safe="")
        for i, core in enumerate(b64_cores(s.encode())):
            forms[f"b64[{i}]({s})"] = core
    basic = f"{USER}:{PASSWORD}".encode()
    forms["basic"] = base64.b64encode(basic).decode()
    for i, core in enumerate(b64_cores(basic)):
        forms[f"b64[{i}](user:password)"] = core
    return forms


@dataclass
class EchoServer:
    """What the server saw: one (path, Authorization header, query string, is-a-judge-prompt) per chat request."""

    port: int
    seen: list[tuple[str, str, str, bool]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _echo(request: web.Request, why: str) -> web.Response:
    auth = request.headers.get("Authorization", "")
    message = (f"{why}: Incorrect API key provided: {auth}. Request {request.method} {request.url} "
               f"(query {request.query_string}); headers: Authorization: {auth}")
    return web.json_response({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                        "code": "invalid_api_key", "authorization": auth}}, status=401)


@contextlib.contextmanager
def echo_server() -> Iterator[EchoServer]:
    """The test server (see the module docstring) on a free port of 127.0.0.1, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = EchoServer(sock.getsockname()[1])

    @web.middleware
    async def check(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if not request.path.endswith("/chat/completions"):
            return await handler(request)
        body = json.loads(await request.read() or b"{}")
        users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
        judging = bool(users) and users[-1].startswith(JUDGE_HEADER)
        auth = request.headers.get("Authorization", "")
        server.seen.append((request.path, auth, request.query_string, judging))
        if request.path.startswith("/echo/"):
            return _echo(request, "echo")
        if auth not in (f"Bearer {KEY}", f"Bearer {JUDGE_KEY}"):
            return _echo(request, "refused")
        if request.path.startswith("/ok/") and request.query.get("key") != QUERY:
            return _echo(request, "refused")
        return await handler(request)

    async def echo(request: web.Request) -> web.Response:
        return _echo(request, "echo")

    app = web.Application(middlewares=[check])
    app.router.add_post("/echo/v1/chat/completions", echo)
    app.add_subapp("/ok/", create_app())
    app.add_subapp("/plain/", create_app())
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[EchoServer]:
    with echo_server() as s:
        yield s


def spec(path: Path, store: Path, name: str, base_url: str, judge_url: str | None = None, feedback: str = '"binary"',
         tasks: int = 4, judge_key_env: str | None = "JUDGE_KEY") -> Path:
    key_line = f'api_key_env = "{judge_key_env}"' if judge_key_env else ""
    judge = f"""
        [judge]
        model = "sim"
        base_url = "{judge_url}"
        {key_line}
        """ if judge_url else ""
    return write_spec(path / f"{name}.toml", f"""
        name = "{name}"
        model = "sim"
        base_url = "{base_url}"
        api_key_env = "POLICY_KEY"
        samples = 2
        concurrency = 4
        store = "{store}"

        [[envs]]
        id = "arithmetic"
        tasks = {tasks}
        feedback = {feedback}
        {judge}""")


def table_dump(store: Path) -> str:
    """Every row of every table of the store as text (a byte search of the file can miss
    compressed strings)."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        out = []
        for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            out += [repr(row) for row in con.execute(f'SELECT * FROM "{t}"').fetchall()]
        return "\n".join(out)
    finally:
        con.close()


def leaks(texts: dict[str, bytes]) -> list[tuple[str, str]]:
    """(where, which secret form) for every secret form found in any of ``texts``."""
    forms = secret_forms()
    return [(where, name) for where, blob in texts.items() for name, form in forms.items() if form.encode() in blob]


def test_no_secret_reaches_the_store_the_output_or_any_file(tmp_path: Path, server: EchoServer) -> None:
    store, out = tmp_path / "store.duckdb", tmp_path / "out"
    out.mkdir()
    ok_url = f"{server.base}/ok/v1?key={QUERY}"
    echo_url = f"{server.base}/echo/v1?key={QUERY}"
    userinfo_url = f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/echo/v1"  # sent as Basic auth, if sent
    stripped = f"{server.base}/ok/v1"
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(label: str, *args: str) -> None:
        results[label] = cli(*args, env=ENV)

    run("run", "run", str(spec(tmp_path, store, "synth", ok_url, judge_url=ok_url, feedback='["binary", "judge"]')), "-q")
    run("run echoed", "run", str(spec(tmp_path, store, "echoed", echo_url)), "-q")
    run("run judge echoed", "run", str(spec(tmp_path, store, "judged", ok_url, judge_url=echo_url, feedback='"judge"')), "-q")
    run("run userinfo", "run", str(spec(tmp_path, store, "userinfo", userinfo_url)), "-q")
    run("run judge userinfo", "run", str(spec(tmp_path, store, "juserinfo", ok_url, judge_url=userinfo_url, feedback='"judge"')), "-q")
    evaluate = ("eval", "--model", "sim", "--api-key-env", "POLICY_KEY", "--envs", "arithmetic", "--tasks", "5",
                "--store", str(store), "-q", "--base-url")
    run("eval", *evaluate, ok_url)
    run("eval echoed", *evaluate, echo_url)
    run("eval userinfo", *evaluate, f"{userinfo_url}?key={QUERY}")
    run("regrade", "regrade", "--run", "synth", "--grader", "self_consistency", "--store", str(store))
    for fmt, name in (("sft", "train.jsonl"), ("parquet", "train.parquet")):
        run(f"export {fmt}", "export", "--run", "synth", "--select", "correct", "--format", fmt, "--out", str(out / name),
            "--store", str(store))
    run("audit", "audit", "--run", "synth", "--format", "html", "--out", str(out / "audit.html"),
        "--plot", str(out / "plots.html"), "--min-tasks", "2", "--bootstrap", "50", "--store", str(store))
    run("audit json", "audit", "--run", "synth", "--format", "json", "--min-tasks", "2", "--bootstrap", "50",
        "--store", str(store))
    run("runs", "runs", "--store", str(store))
    for table in ("runs", "episodes", "evaluations"):
        run(f"sql {table}", "sql", f"SELECT * FROM {table}", "--format", "json", "--out", str(out / f"{table}.json"),
            "--store", str(store))

    codes = {label: r.returncode for label, r in results.items()}
    assert codes == {"run": 0, "run echoed": 1, "run judge echoed": 1, "run userinfo": 2, "run judge userinfo": 2,
                     "eval": 0, "eval echoed": 1, "eval userinfo": 2, "regrade": 0, "export sft": 0,
                     "export parquet": 0, "audit": 0, "audit json": 0, "runs": 0, "sql runs": 0, "sql episodes": 0,
                     "sql evaluations": 0}, {k: results[k].stderr for k in results}
    # the failures say what happened, with the endpoint named without its credentials
    assert "HTTP 401" in results["run echoed"].stderr and "[redacted]" in results["run echoed"].stderr
    assert f"cannot evaluate 'sim' at {server.base}/echo/v1: HTTP 401" in results["eval echoed"].stderr
    for label in ("run userinfo", "run judge userinfo", "eval userinfo"):
        err = results[label].stderr
        assert len(err.strip().splitlines()) == 1 and "user:password@" in err, err

    # the query string was honoured on every request, no request carried Basic auth, and the
    # userinfo URLs were refused before any request
    assert server.seen and all(auth.startswith("Bearer ") for _, auth, _, _ in server.seen), server.seen
    ok = [s for s in server.seen if s[0].startswith("/ok/")]
    assert ok and {(path, query) for path, _, query, _ in ok} == {("/ok/v1/chat/completions", f"key={QUERY}")}

    # what is stored names the endpoints without credentials
    assert q(store, "SELECT DISTINCT base_url FROM runs WHERE name IN ('synth', 'judged') OR kind = 'eval'") == [(stripped,)]
    (synth_spec,), = q(store, "SELECT spec FROM runs WHERE name = 'synth'")
    assert json.loads(synth_spec)["judge"]["base_url"] == stripped

    texts = {f"{label} stdout": r.stdout.encode() for label, r in results.items()}
    texts |= {f"{label} stderr": r.stderr.encode() for label, r in results.items()}
    texts |= {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".toml"}
    texts["tables"] = table_dump(store).encode()
    assert str(store) in texts and not leaks(texts), leaks(texts)


@pytest.mark.parametrize(("judge_key_env", "signal", "judge_key"), [
    ("JUDGE_KEY", "judge", JUDGE_KEY),  # a key of its own: another endpoint identity, an open signal
    ("POLICY_KEY", "judge_same_model", KEY),  # same model, URL and key: the policy judging itself
    (None, "judge_same_model", KEY),  # no key of its own at the policy's URL: the policy's
])
def test_a_judge_with_its_own_key_is_another_judge(tmp_path: Path, server: EchoServer, judge_key_env: str | None,
                                                   signal: str, judge_key: str) -> None:
    store, url = tmp_path / "s.duckdb", f"{server.base}/plain/v1"
    before = len(server.seen)
    r = cli("run", str(spec(tmp_path, store, "j", url, judge_url=url, feedback='"judge"', judge_key_env=judge_key_env)),
            "-q", env=ENV)
    assert r.returncode == 0, r.stderr
    assert q(store, "SELECT DISTINCT s.name, t.openness FROM signals s JOIN signal_types t USING (name) "
                    "WHERE t.source = 'judge'") == [(signal, "open" if signal == "judge" else "closed")]
    keys = {(judging, auth) for _, auth, _, judging in server.seen[before:]}
    assert keys == {(False, f"Bearer {KEY}"), (True, f"Bearer {judge_key}")}


def test_a_base_url_with_userinfo_is_refused_before_anything_is_sent(tmp_path: Path, server: EchoServer) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/ok/v1?key={QUERY}"
    before = len(server.seen)
    for data in ({"base_url": url}, {"judge": {"base_url": url}}):
        with pytest.raises(ValidationError) as info:  # from Python too; the error does not quote the URL
            RunSpec(name="u", envs=[EnvSpec(id="arithmetic")], **data)
        assert "user:password@" in str(info.value) and not leaks({"error": str(info.value).encode()})
    with pytest.raises(ModelError, match="user:password@") as info:
        OpenAIModel("sim", base_url=url, api_key=KEY)
    assert not leaks({"error": str(info.value).encode()})
    r = cli("eval", "--model", "sim", "--base-url", url, "--envs", "arithmetic", "--store", str(tmp_path / "s.duckdb"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, r.stderr
    assert "base_url" in r.stderr and not leaks({"stderr": r.stderr.encode()})
    assert len(server.seen) == before and not (tmp_path / "s.duckdb").exists()


def test_the_redactor_catches_known_secrets_in_any_encoding_and_credential_shapes() -> None:
    secrets = secret_values(KEY, *url_secrets(f"http://{USER}:{PASSWORD}@h/v1?key={QUERY}&v=1"))
    wanted = {name: form for name, form in secret_forms().items() if name != "basic" and JUDGE_KEY not in name}
    known = " ".join(wanted.values())
    assert {name for _, name in leaks({"known": known.encode()})} >= set(wanted)  # the search finds each form...
    assert not leaks({"known": redact(known, secrets).encode()})  # ...and after redaction none
    unknown = {  # credentials the redactor was not told about, as servers echo them
        "Authorization: Basic YWxpY2U6c2VjcmV0LXBhc3N3b3Jk": "Authorization: Basic [redacted]",
        "{'authorization': 'Token c2VjcmV0LXBhc3N3b3Jk', \"x-api-key\": \"abc123def\"}":
            "{'authorization': 'Token [redacted]', \"x-api-key\": \"[redacted]\"}",
        "got Bearer abc.def-ghi, api_key=hunter2hunter2": "got Bearer [redacted], api_key=[redacted]",
        "at https://bob:hunter2@api.example.com/v1?api-version=2024-02-01&sig=abc%2Fdef (retried)":
            "at https://[redacted]@api.example.com/v1?api-version=[redacted]&sig=[redacted] (retried)",
        "Incorrect API key provided: sk-proj-abcdefghij": "Incorrect API key provided: [redacted]",
    }
    for text, want in unknown.items():
        assert redact(text) == want
    plain = "HTTP 404 from http://127.0.0.1:8000/v1: Not Found; Basic auth; KeyError: 'choices'"
    assert redact(plain, secrets) == plain  # nothing else is touched
    assert redact(redact(next(iter(unknown)))) == redact(next(iter(unknown)))  # idempotent


def test_one_stripper_for_every_url() -> None:
    assert strip_credentials(f"https://{USER}:{PASSWORD}@Api.Example.com:8443/v1/?key={QUERY}#frag") == \
        "https://Api.Example.com:8443/v1/"
    assert strip_credentials("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert strip_credentials(None) is None
    spec_ = RunSpec(name="j", base_url=f"http://h/v1?key={QUERY}", envs=[EnvSpec(id="arithmetic")],
                    judge=JudgeSpec(base_url=f"http://h/v1?key={QUERY}"))
    assert spec_.content()["judge"]["base_url"] == "http://h/v1" and "base_url" not in spec_.content()
    clean = RunSpec(name="j", envs=[EnvSpec(id="arithmetic")], judge=JudgeSpec(base_url="http://h/v1"))
    assert spec_.spec_hash() == clean.spec_hash()  # no hash of a key either: rotating it keeps the run resumable
