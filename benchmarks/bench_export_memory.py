"""Peak RSS of ``agentsynth export`` by run size and format: does memory follow the rows written
(or the batch), or the run?

For each size (``--episodes 30000,100000,300000``) a synthetic store is built with DuckDB SQL
(``INSERT ... SELECT`` over ``range()``, as ``bench_audit.py`` does) in a fresh file opened with
``agentsynth.store.connection.connect`` (the real schema): one synthesis run, ``episodes /
--samples`` tasks (default 30 samples a task) in 8 domains, each with its real environment id (so
tool schemas are rebuilt as in a real export), 5 feedback channels (none, binary, hint, reference,
self) and a second turn after a miss on every channel but ``none``. Replies are sim-like: a
correct answer is one worked reply per task (6% of the time a hedged "I think the result is N."
instead, another answer key), a wrong one is off by +1, -10 or +7, worked or hedged; ``tools``
episodes call ``price_lookup`` before answering. Per turn: ``correct`` (truth and reward roles),
``format``, ``judge``, ``short_reply`` and the channel's feedback signal. Draws are ``hash()`` of
the episode number: the same store every time. At 300k episodes ``--select correct`` accepts
~200k episodes and, after de-duplication, writes 15-17k rows in each format.

Each format (``sft``, ``dpo``, ``parquet``) is then exported from the store in a fresh child process
(``agentsynth.exports.export``, what ``agentsynth export`` calls), which prints its wall time, peak
RSS (``VmHWM``), the RSS after imports (the floor), and the rows and duplicates the export reported.
The parent imports the ``agentsynth`` of the checkout this script is in (not the one the virtualenv
was installed from), so a copy of this script in another worktree measures that worktree's code.

    python benchmarks/bench_export_memory.py                            # 30k, 100k, 300k episodes
    python benchmarks/bench_export_memory.py --episodes 1000000         # one size; also --large
    python benchmarks/bench_export_memory.py --formats sft --batch-size 1000

Target: peak RSS < 500 MB for every format at 300k episodes, and flat beyond (the largest run's
peak within 15% of the 300k peak; ``--large`` measures 1M).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's agentsynth, not the installed one
from _rss import peak_rss_mb, rss_mb

TARGET_MB = 500.0
AT = 300_000  # the target holds from this run size on
FLAT_TOLERANCE = 0.15  # "flat beyond": the largest run's peak within 15% of the peak at AT episodes
RUN = "bench-export"
DOMAINS = ("arithmetic", "algebra", "units", "strings", "logic", "sql", "extraction", "tools")
CHANNELS = ("none", "binary", "hint", "reference", "self")
RETRY_GAIN = {"binary": 0.35, "hint": 0.55, "reference": 0.9, "self": 0.15}  # P(correct at turn 2 | miss)
TOOL_CALL = '[{"id": "call_0", "type": "function", "function": {"name": "price_lookup", "arguments": "{\\"item\\": \\"widget\\"}"}}]'


def _u(expr: str, k: int) -> str:
    """SQL: a pseudo-random uniform in [0, 1) from ``hash(expr, k)``."""
    return f"(hash({expr}, {k}) % 1000003) / 1000003.0"


def build_store(path: str, episodes: int, samples: int) -> float:
    """Write the synthetic store at ``path`` (which must not exist); the seconds it took."""
    from agentsynth.store.connection import connect

    t0 = time.perf_counter()
    con = connect(path, read_only=False)
    try:
        domains = "[" + ", ".join(f"'{d}'" for d in DOMAINS) + "]"
        channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
        gain = "CASE chan " + " ".join(f"WHEN '{c}' THEN {p}" for c, p in RETRY_GAIN.items()) + " ELSE 0 END"
        con.execute("BEGIN")
        con.execute("""INSERT INTO runs (run_id, name, spec, spec_hash, model, status, planned, created_at, finished_at,
                                         agentsynth_version, kind)
                       VALUES ('r-bench-export', ?, '{}', 'bench', 'sim', 'completed', ?, TIMESTAMP '2026-01-01',
                               TIMESTAMP '2026-01-01 01:00:00', 'bench', 'synthesis')""", [RUN, episodes])
        con.execute(f"""CREATE TEMP TABLE bt AS
            SELECT range AS ti, 't-' || substr(md5('task' || range), 1, 16) AS task_id,
                   {domains}[1 + range % {len(DOMAINS)}] AS domain, 0.2 + 0.6 * {_u('range', 1)} AS p,
                   (hash(range, 2) % 100000)::BIGINT AS a, (hash(range, 3) % 100)::BIGINT AS b
            FROM range({-(-episodes // samples)})""")
        con.execute("""INSERT INTO tasks SELECT task_id, domain, domain, ti,
                   'Compute the value of: ' || (a - b) || ' + ' || b || E'\\nShow your work if you like, then end with a line ''Answer: <integer>''.',
                   a::VARCHAR, '{"difficulty": 2}' FROM bt""")
        con.execute(f"""CREATE TEMP TABLE be AS
            SELECT range AS ei, 'e-' || substr(md5('episode' || range), 1, 20) AS episode_id, range // {samples} AS ti,
                   range % {samples} AS sample, {channels}[1 + range % {len(CHANNELS)}] AS chan,
                   {_u('range', 4)} AS u1, {_u('range', 5)} AS u2
            FROM range({episodes})""")
        con.execute(f"""CREATE TEMP TABLE br AS
            WITH e AS (SELECT be.*, bt.task_id, bt.domain, bt.a, bt.b, be.u1 < bt.p AS t1 FROM be JOIN bt USING (ti)),
            turns AS (
                SELECT *, 1 AS turn, t1 AS truth, chan <> 'none' AND NOT t1 AS more FROM e
                UNION ALL SELECT *, 2, u2 < {gain}, false FROM e WHERE chan <> 'none' AND NOT t1
            ), keyed AS (
                SELECT *, {_u('ei * 4 + turn', 6)} AS uw, {_u('ei * 4 + turn', 7)} AS uv FROM turns
            ), answered AS (
                SELECT *, CASE WHEN truth THEN a WHEN uw < 0.6 THEN a + 1 WHEN uw < 0.85 THEN a - 10 ELSE a + 7 END AS key,
                       CASE WHEN truth THEN uv < 0.06 ELSE uv < 0.3 END AS hedged,
                       CASE WHEN domain = 'tools' THEN 2 ELSE 0 END AS base
                FROM keyed
            )
            SELECT ei, episode_id, domain, turn, truth, more, chan, base, uv,
                   CASE WHEN hedged THEN 'I think the result is ' || key || '.'
                        ELSE E'Let me work through it step by step.\\nFirst ' || (a - b) || ' plus ' || b ||
                             E', carrying the partial sum from left to right.\\nAnswer: ' || key END AS content,
                   CASE WHEN hedged THEN 'i think the result is ' || key ELSE key::VARCHAR END AS answer
            FROM answered""")
        con.execute("""INSERT INTO episodes (episode_id, run_id, task_id, env_id, env_config, feedback, domain, seed, sample,
                                             status, turns, reward, terminated, truncated, passed_first, passed_last,
                                             prompt_tokens, completion_tokens, judge_tokens, attempts, tries, latency_s,
                                             started_at, finished_at)
            SELECT be.episode_id, 'r-bench-export', bt.task_id, bt.domain,
                   '{"difficulty": 2, "feedback": "' || be.chan || '", "max_turns": 2}', be.chan, bt.domain, be.ti,
                   be.sample, 'ok', r.turns, r.last::INT::DOUBLE, r.last, NOT r.last, r.first, r.last, 40 * r.turns,
                   30 * r.turns, 0, 1, 1, 0.05 * r.turns, TIMESTAMP '2026-01-01' + to_microseconds(be.ei * 3600),
                   TIMESTAMP '2026-01-01' + to_microseconds(be.ei * 3600 + 50000)
            FROM be JOIN bt USING (ti) JOIN (
                SELECT ei, count(*) AS turns, bool_or(truth) FILTER (turn = 1) AS first, arg_max(truth, turn) AS last
                FROM br GROUP BY ei) r USING (ei)""")
        con.execute(f"""INSERT INTO messages (episode_id, position, turn, role, content, tool_calls, tool_call_id, answer)
            SELECT be.episode_id, 0, 0, 'user', t.prompt, NULL, NULL, NULL FROM be JOIN bt USING (ti) JOIN tasks t USING (task_id)
            UNION ALL SELECT episode_id, 1, 1, 'assistant', '', '{TOOL_CALL}', NULL, NULL FROM br WHERE base = 2 AND turn = 1
            UNION ALL SELECT episode_id, 2, 1, 'tool', '{{"item": "widget", "price_cents": 250}}', NULL, 'call_0', NULL
                      FROM br WHERE base = 2 AND turn = 1
            UNION ALL SELECT episode_id, base + 2 * turn - 1, turn, 'assistant', content, NULL, NULL, answer FROM br
            UNION ALL SELECT episode_id, base + 2 * turn, turn, 'user', 'Incorrect. Try again.', NULL, NULL, NULL
                      FROM br WHERE more""")
        con.execute(f"""INSERT INTO signals (episode_id, turn, name, role, value, passed, feedback, details, tokens)
            WITH s AS (SELECT episode_id, turn, chan, truth, content, {_u('ei * 4 + turn', 9)} AS uj FROM br),
            graded AS (
                SELECT episode_id, turn, 'correct' AS name, 'truth' AS role, truth AS passed, 0 AS tokens FROM s
                UNION ALL SELECT episode_id, turn, 'correct', 'reward', truth, 0 FROM s
                UNION ALL SELECT episode_id, turn, 'format', 'score', content LIKE '%Answer: %', 0 FROM s
                UNION ALL SELECT episode_id, turn, 'judge', 'score', truth <> (uj < 0.12), 150 FROM s
                UNION ALL SELECT episode_id, turn, 'short_reply', 'score', length(content) < 60, 0 FROM s
                UNION ALL SELECT episode_id, turn, CASE chan WHEN 'binary' THEN 'correct' ELSE chan END, 'feedback', truth, 0
                          FROM s WHERE chan IN ('binary', 'hint', 'reference')
            )
            SELECT episode_id, turn, name, role, passed::INT::DOUBLE, passed,
                   CASE WHEN passed THEN 'Correct.' ELSE 'Incorrect. Try again.' END, NULL, tokens FROM graded""")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - t0


def child(store: str, fmt: str, out: str, batch_size: int | None) -> None:
    """Export ``store`` once as ``fmt``; print JSON: seconds, peak and floor RSS, rows, duplicates."""
    import agentsynth
    from agentsynth.exports import export

    floor = rss_mb()
    t0 = time.perf_counter()
    kw: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    r = export(store, RUN, "correct", format=fmt, out=out, **kw)
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb(), "floor_rss_mb": floor,
                      "rows": r.rows, "duplicates": r.skipped_duplicates, "tool_episodes": r.skipped_tool_episodes,
                      "code": str(Path(agentsynth.__file__).parent.parent)}), flush=True)


def run_child(store: str, fmt: str, out: str, batch_size: int | None) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", store, "--format", fmt, "--out", out]
    if batch_size is not None:
        cmd += ["--batch-size", str(batch_size)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"export child ({fmt}) failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", default="30000,100000,300000", help="comma-separated run sizes (default 30000,100000,300000)")
    ap.add_argument("--large", action="store_true", help="add a 1,000,000-episode run (a few minutes more)")
    ap.add_argument("--samples", type=int, default=30, help="episodes per task (default 30)")
    ap.add_argument("--formats", default="sft,dpo,parquet", help="comma-separated formats (default sft,dpo,parquet)")
    ap.add_argument("--batch-size", type=int, default=None, help="export batch size (default: the library's)")
    ap.add_argument("--child", metavar="STORE", help=argparse.SUPPRESS)
    ap.add_argument("--format", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.format, args.out, args.batch_size)
        return
    sizes = [int(x) for x in args.episodes.split(",") if x.strip()] + ([1_000_000] if args.large else [])
    formats = [f for f in args.formats.split(",") if f.strip()]
    import duckdb

    print(f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, {os.cpu_count()} CPUs; "
          f"each export in a fresh child process; --select correct, {args.samples} samples a task", flush=True)
    results: list[dict[str, Any]] = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="agentsynth-bench-export-") as tmp:
            store = os.path.join(tmp, "export.duckdb")
            secs = build_store(store, n, args.samples)
            mb = os.path.getsize(store) / 2**20
            print(f"{n:,} episodes: store built in {secs:.1f} s ({mb:.0f} MB)", flush=True)
            for fmt in formats:
                r = run_child(store, fmt, os.path.join(tmp, f"out.{'parquet' if fmt == 'parquet' else 'jsonl'}"),
                              args.batch_size)
                r.update(episodes=n, format=fmt, store_mb=mb)
                results.append(r)
                print(f"  {fmt:7s} {r['rows']:>7,} rows ({r['duplicates']:,} duplicates dropped) in {r['seconds']:.1f} s, "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB (after imports {r['floor_rss_mb']:.0f} MB)  [{r['code']}]",
                      flush=True)
    print("\npeak RSS MB (wall s) by run size and format:\n")
    print("| episodes | store MB | " + " | ".join(formats) + " |")
    print("|---:|---:|" + "---:|" * len(formats))
    for n in sizes:
        by = {r["format"]: r for r in results if r["episodes"] == n}
        print(f"| {n:,} | {next(iter(by.values()))['store_mb']:.0f} | "
              + " | ".join(f"{by[f]['peak_rss_mb']:,.0f} ({by[f]['seconds']:.1f} s; {by[f]['rows']:,} rows)" for f in formats)
              + " |")
    for fmt in formats:
        mine = [r for r in results if r["format"] == fmt]
        curve = " -> ".join(f"{r['peak_rss_mb']:.0f}" for r in mine)
        at = next((r for r in mine if r["episodes"] >= AT), None)
        target = (f"{at['peak_rss_mb']:.0f} MB at {at['episodes']:,}: {'PASS' if at['peak_rss_mb'] < TARGET_MB else 'FAIL'}"
                  if at else "not measured")
        beyond = "run with --large to see beyond"
        if at is not None and mine[-1]["episodes"] > at["episodes"]:
            growth = mine[-1]["peak_rss_mb"] / at["peak_rss_mb"] - 1
            beyond = (f"{at['episodes']:,} -> {mine[-1]['episodes']:,}: {100 * growth:+.0f}% "
                      f"({'flat' if growth <= FLAT_TOLERANCE else 'NOT flat'}: within {100 * FLAT_TOLERANCE:.0f}%)")
        print(f"{fmt}: peak RSS {curve} MB; target < {TARGET_MB:.0f} MB at {AT:,}: {target}; {beyond}")

if __name__ == "__main__":
    main()
