"""The information audit at scale: time and peak memory of ``audit()`` over a synthetic store.

Builds a store of ``--episodes`` single- and two-turn episodes (default 1,000,000) with DuckDB
SQL (``INSERT ... SELECT`` over ``range()``, no Python loops) in a fresh file opened with
``agentsynth.store.connection.connect`` (so the schema is the real one, every migration
applied): one synthesis run; ``episodes / --samples`` tasks across 8 domains; episodes spread
over 5 feedback channels (none, binary, hint, reference, self), a second turn after a miss on
every channel but ``none``; per turn a user message and an assistant reply (varied text:
worked steps, a bare answer line, prose, short and long hedged replies; ``answer`` is the key
``agentsynth.answers`` would extract) and 6 signals: ``correct`` (truth and reward),
``format``, ``judge`` (costs tokens), ``self`` (a self-review; the feedback on the self
channel), ``short_reply`` (a length check) and the channel's feedback (``correct``, ``hint``
or ``reference``). Pseudo-random draws are ``hash()`` of the episode number, so the store is
the same every time and every signal's dependence on truth is known by construction.

The audit (``agentsynth.analysis.audit.audit(store, bootstrap=--bootstrap)``, saving its
figures as the CLI does) then runs ``--repeat`` times (default 3), each in a fresh child
process (``python benchmarks/bench_audit.py --child STORE``), so that its peak RSS (``VmHWM``
of ``/proc/self/status`` in the child) is the audit's alone. The child also
reports the RSS after imports (the floor) and the audit's phases: opening the store, loading
(of which the big queries, fetched as numpy arrays), computing the figures, saving them.

    python benchmarks/bench_audit.py
    python benchmarks/bench_audit.py --episodes 100000 --keep /tmp/audit-100k.duckdb
    python benchmarks/bench_audit.py --reuse /tmp/audit-100k.duckdb       # skip the build

Target (1M episodes x 6 signals, 2 cores): audit < 5 s wall, peak RSS < 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from _rss import peak_rss_mb, rss_mb

TARGET_S = 5.0
TARGET_MB = 1024.0
DOMAINS = ("arithmetic", "algebra", "units", "strings", "logic", "code", "sql", "extraction")
CHANNELS = ("none", "binary", "hint", "reference", "self")
# P(correct at turn 2 | wrong at turn 1), per channel ('none' has no second turn)
RETRY_GAIN = {"binary": 0.35, "hint": 0.55, "reference": 0.9, "self": 0.15}
SIGNAL_TYPES = [  # name, source, openness, meta_level, task_relevant, description
    ("correct", "verifier", "open", 2, True, "binary correctness from the verifier"),
    ("format", "rubric", "open", 0, False, "last line is 'Answer: -?\\d+'"),
    ("judge", "judge", "open", 2, True, "an LLM judge's verdict (noisy, fond of long replies)"),
    ("self", "self", "closed", 2, True, "the policy model's review of its own answer"),
    ("short_reply", "rubric", "open", 0, False, "reply shorter than 60 characters"),
    ("hint", "verifier", "open", 1, True, "what is wrong (sign of the error)"),
    ("reference", "reference", "open", 0, True, "the reference answer, shown on a miss"),
]
LONG_PROSE = ("I am not completely sure about this one, so let me go over every part of the expression again, "
              "checking the order of operations and each intermediate value before settling on a result. ")


def _u(expr: str, k: int) -> str:
    """SQL: a pseudo-random uniform in [0, 1) from ``hash(expr, k)``."""
    return f"(hash({expr}, {k}) % 1000003) / 1000003.0"


def _size_mb(path: str) -> float:
    wal = path + ".wal"
    return (os.path.getsize(path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)) / 2**20


# ---- building the store ----------------------------------------------------------------------

def build_store(path: str, episodes: int, samples: int) -> dict[str, Any]:
    """Write the synthetic store at ``path`` (which must not exist); return the seconds it took."""
    from agentsynth.store.connection import connect

    n_tasks = -(-episodes // samples)
    t0 = time.perf_counter()
    con = connect(path, read_only=False)
    con.execute("SET enable_progress_bar = false")
    try:
        con.execute("SET preserve_insertion_order = false")
        domains = "[" + ", ".join(f"'{d}'" for d in DOMAINS) + "]"
        channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
        gain = "CASE chan " + " ".join(f"WHEN '{c}' THEN {p}" for c, p in RETRY_GAIN.items()) + " ELSE 0 END"
        con.execute("BEGIN")
        con.execute(
            """INSERT INTO runs (run_id, name, spec, spec_hash, model, status, planned, created_at, finished_at,
                                 agentsynth_version, kind)
               VALUES ('r-bench-audit', 'bench-audit', ?, 'bench', 'sim', 'completed', ?,
                       TIMESTAMP '2026-01-01 00:00:00', TIMESTAMP '2026-01-01 01:00:00', 'bench', 'synthesis')""",
            [json.dumps({"name": "bench-audit", "episodes": episodes, "samples": samples}), episodes],
        )
        # tasks: difficulty p (P(correct) at turn 1), the reference answer and a model's favourite wrong answer
        con.execute(f"""
            CREATE TEMP TABLE bt AS
            SELECT range AS ti, 't-' || substr(md5('task' || range), 1, 16) AS task_id,
                   {domains}[1 + range % {len(DOMAINS)}] AS domain,
                   0.15 + 0.7 * {_u('range', 1)} AS p, (hash(range, 2) % 2000)::BIGINT AS a,
                   (hash(range, 3) % 20)::BIGINT AS b
            FROM range({n_tasks})""")
        con.execute("""
            INSERT INTO tasks SELECT task_id, domain, domain, ti,
                   'Compute the value of: ' || (a - b) || ' + ' || b || E'\\nShow your work if you like, then end with a line ''Answer: <integer>''.',
                   a::VARCHAR, '{"difficulty": 2}'
            FROM bt""")
        # episodes: task, sample, channel, truth at turn 1 and (after a miss, not on 'none') at turn 2
        con.execute(f"""
            CREATE TEMP TABLE be AS
            SELECT range AS ei, 'e-' || substr(md5('episode' || range), 1, 20) AS episode_id,
                   range // {samples} AS ti, range % {samples} AS sample,
                   {channels}[1 + range % {len(CHANNELS)}] AS chan, {_u('range', 4)} AS u1, {_u('range', 5)} AS u2
            FROM range({episodes})""")
        con.execute(f"""
            CREATE TEMP TABLE bturn AS
            WITH e AS (
                SELECT be.ei, be.episode_id, be.ti, be.sample, be.chan, be.u2, bt.task_id, bt.domain, bt.a,
                       be.u1 < bt.p AS t1
                FROM be JOIN bt USING (ti)
            ), turns AS (
                SELECT *, 1 AS turn, t1 AS truth, chan <> 'none' AND NOT t1 AS more FROM e
                UNION ALL
                SELECT *, 2 AS turn, u2 < {gain} AS truth, false AS more FROM e WHERE chan <> 'none' AND NOT t1
            ), keyed AS (
                SELECT *, {_u('ei * 4 + turn', 6)} AS uw, {_u('ei * 4 + turn', 7)} AS uv,
                       {_u('ei * 4 + turn', 8)} AS us
                FROM turns
            )
            SELECT ei, episode_id, ti, task_id, domain, sample, chan, turn, truth, more, us,
                   CASE WHEN truth THEN a WHEN uw < 0.6 THEN a + 1 WHEN uw < 0.85 THEN a - 10 ELSE a + 7 END AS key,
                   -- reply style: 0 steps, 1 bare answer line, 2 prose, 3 short hedge (no answer line), 4 long hedge
                   CASE WHEN truth THEN (CASE WHEN uv < 0.5 THEN 0 WHEN uv < 0.75 THEN 1 WHEN uv < 0.95 THEN 2
                                              WHEN uv < 0.98 THEN 3 ELSE 4 END)
                        ELSE (CASE WHEN uv < 0.3 THEN 0 WHEN uv < 0.4 THEN 1 WHEN uv < 0.55 THEN 2
                                   WHEN uv < 0.8 THEN 3 ELSE 4 END) END AS style
            FROM keyed""")
        con.execute(f"""
            CREATE TEMP TABLE breply AS
            SELECT *, length(content) AS chars FROM (
                SELECT ei, episode_id, turn, truth, more, chan, us, style, key,
                       CASE style
                         WHEN 0 THEN E'Let me work through it step by step.\\n' ||
                                     repeat(E'Combine the terms from left to right and carry the partial sum.\\n', 1 + ei % 3) ||
                                     'Answer: ' || key
                         WHEN 1 THEN 'Answer: ' || key
                         WHEN 2 THEN 'First I simplify the expression, then I check each term against the '
                                     || E'constraints in the prompt.\\nAnswer: ' || key
                         WHEN 3 THEN 'I think the result is ' || key || '.'
                         ELSE repeat('{LONG_PROSE}', 3 + ei % 3) || E'\\nAnswer: ' || key
                       END AS content,
                       CASE WHEN style = 3 THEN 'i think the result is ' || key ELSE key::VARCHAR END AS answer
                FROM bturn)""")
        con.execute("DROP TABLE bturn")
        con.execute("""
            INSERT INTO episodes (episode_id, run_id, task_id, env_id, env_config, feedback, domain, seed, sample,
                                  status, turns, reward, terminated, truncated, passed_first, passed_last,
                                  prompt_tokens, completion_tokens, judge_tokens, attempts, tries, latency_s,
                                  started_at, finished_at, episode_seq)
            SELECT be.episode_id, 'r-bench-audit', bt.task_id, bt.domain,
                   '{"difficulty": 2, "feedback": "' || be.chan || '", "max_turns": 2}', be.chan, bt.domain,
                   be.ti, be.sample, 'ok', r.turns, r.last::INT::DOUBLE, r.last, NOT r.last, r.first, r.last,
                   40 * r.turns, r.chars // 4, 160 * r.turns, 1, 1, 0.05 * r.turns,
                   TIMESTAMP '2026-01-01 00:00:00' + to_microseconds(be.ei * 3600),
                   TIMESTAMP '2026-01-01 00:00:00' + to_microseconds(be.ei * 3600 + 50000), be.ei + 1
            FROM be JOIN bt USING (ti) JOIN (
                SELECT ei, count(*) AS turns, bool_or(truth) FILTER (turn = 1) AS first,
                       arg_max(truth, turn) AS last, sum(chars) AS chars
                FROM breply GROUP BY ei) r USING (ei)
            ORDER BY be.ei""")
        con.execute("""
            INSERT INTO messages (episode_id, position, turn, role, content, answer, episode_seq)
            SELECT be.episode_id, 0, 0, 'user', t.prompt, NULL, be.ei + 1
            FROM be JOIN bt USING (ti) JOIN tasks t USING (task_id)
            UNION ALL
            SELECT episode_id, 2 * turn - 1, turn, 'assistant', content, answer, ei + 1 FROM breply
            UNION ALL
            SELECT episode_id, 2 * turn, turn, 'user',
                   CASE chan WHEN 'binary' THEN 'Incorrect. Try again.'
                             WHEN 'hint' THEN 'Incorrect: your answer is too high. Try again.'
                             WHEN 'reference' THEN 'Incorrect. The reference answer is given above; try again.'
                             ELSE E'Self-review: one of the steps looks wrong.\\nVERDICT: incorrect' END,
                   NULL, ei + 1
            FROM breply WHERE more
            ORDER BY 7, 2""")  # in episode order, as the runner's writer commits them
        # signals: 6 per turn; each one's dependence on truth (and on the reply) is set here
        con.execute(f"""
            INSERT INTO signals (episode_id, turn, name, role, value, passed, feedback, details, tokens, episode_seq)
            WITH s AS (
                SELECT episode_id, ei, turn, chan, style, chars, truth, {_u('ei * 4 + turn', 9)} AS uj, us
                FROM breply
            ), graded AS (
                SELECT episode_id, ei, turn, 'correct' AS name, 'truth' AS role, truth AS passed, 0 AS tokens, NULL AS details FROM s
                UNION ALL SELECT episode_id, ei, turn, 'correct', 'reward', truth, 0, NULL FROM s
                UNION ALL SELECT episode_id, ei, turn, 'format', 'score', style <> 3, 0, NULL FROM s
                UNION ALL SELECT episode_id, ei, turn, 'judge', 'score',
                                 CASE WHEN style = 4 THEN truth OR uj < 0.4 ELSE truth <> (uj < 0.12) END,
                                 120 + (hash(episode_id, turn) % 80)::INT, NULL FROM s
                UNION ALL SELECT episode_id, ei, turn, 'self', CASE chan WHEN 'self' THEN 'feedback' ELSE 'score' END,
                                 CASE WHEN truth THEN us < 0.85 ELSE us < 0.45 END,
                                 90 + (hash(episode_id, turn, 1) % 60)::INT, '{{"parsed": true}}' FROM s
                UNION ALL SELECT episode_id, ei, turn, 'short_reply', 'score', chars < 60, 0, NULL FROM s
                UNION ALL SELECT episode_id, ei, turn, CASE chan WHEN 'binary' THEN 'correct' ELSE chan END, 'feedback',
                                 truth, 0, CASE WHEN chan = 'hint' AND NOT truth THEN '{{"direction": "high"}}' END
                          FROM s WHERE chan IN ('binary', 'hint', 'reference')
            )
            SELECT episode_id, turn, name, role, passed::INT::DOUBLE, passed,
                   CASE WHEN passed THEN 'Correct.' ELSE 'Incorrect. Try again.' END, details, tokens, ei + 1
            FROM graded ORDER BY ei, turn""")  # in episode order, as the runner's writer commits them
        con.executemany("INSERT INTO signal_types VALUES (?, ?, ?, ?, ?, ?)", [list(r) for r in SIGNAL_TYPES])
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        _check_answers(con)
    finally:
        con.close()
    return {"seconds": time.perf_counter() - t0}


def _check_answers(con: Any) -> None:
    """The stored ``answer`` is what agentsynth would extract from the reply (on a sample)."""
    from agentsynth.answers import final_answer, normalize

    rows = con.execute("SELECT content, answer FROM messages WHERE role = 'assistant' USING SAMPLE 500 ROWS").fetchall()
    bad = [(c, a) for c, a in rows if normalize(final_answer(c)) != a]
    if bad:
        raise SystemExit(f"synthetic answers disagree with agentsynth.answers, e.g. {bad[0]!r}")


# ---- the audit, in a child process ------------------------------------------------------------

def child(store: str, bootstrap: int) -> None:
    """Audit ``store`` once; print JSON: seconds, phases, peak and floor RSS, rows written."""
    import agentsynth.analysis.audit as audit_mod
    import agentsynth.analysis.observations as obs_mod

    floor = rss_mb()
    phases: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    # timers around the audit's own steps (the audit itself runs unchanged): opening the store,
    # loading (of which the big queries, fetched as numpy), saving; computing is the rest
    for mod, attr, phase in ((audit_mod, "connect", "open"), (audit_mod, "_load", "load"),
                             (obs_mod, "_numpy", "queries"), (audit_mod, "_save", "save")):
        phases[phase] = 0.0
        if hasattr(mod, attr):  # (an older audit may lack one)
            setattr(mod, attr, timed(phase, getattr(mod, attr)))
    t0 = time.perf_counter()
    res = audit_mod.audit(store, bootstrap=bootstrap, seed=0)
    secs = time.perf_counter() - t0
    phases["compute"] = secs - phases["open"] - phases["load"] - phases["save"]
    print(json.dumps({"seconds": secs, "phases": phases, "peak_rss_mb": peak_rss_mb(), "floor_rss_mb": floor,
                      "rows": len(res.rows), "signals": len(res.labels), "channels": len(res.channel_signal)}),
          flush=True)


def run_child(store: str, bootstrap: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", store, "--bootstrap", str(bootstrap)],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"audit child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- main ------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=1_000_000, help="episodes in the store (default 1000000)")
    ap.add_argument("--samples", type=int, default=10, help="episodes per task (default 10)")
    ap.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples of the audit (default 500)")
    ap.add_argument("--repeat", type=int, default=3, help="audits, each in a fresh child; median time (default 3)")
    ap.add_argument("--keep", metavar="PATH", help="build the store at PATH (must not exist) and keep it")
    ap.add_argument("--reuse", metavar="PATH", help="audit a store an earlier --keep built (skip the build)")
    ap.add_argument("--child", metavar="STORE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.bootstrap)
        return
    if args.episodes < 1 or args.samples < 1 or args.repeat < 1:
        ap.error("--episodes, --samples and --repeat must be positive")
    if args.reuse and not Path(args.reuse).exists():
        ap.error(f"no store at {args.reuse}")
    if not args.reuse and args.keep and Path(args.keep).exists():
        ap.error(f"{args.keep} exists; --keep needs a new path (or use --reuse {args.keep})")
    import duckdb

    print(f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, {os.cpu_count()} CPUs "
          f"(DuckDB threads: {duckdb.connect().execute('SELECT current_setting(' + repr('threads') + ')').fetchall()[0][0]})")
    with tempfile.TemporaryDirectory(prefix="agentsynth-bench-audit-") as tmp:
        if args.reuse:
            store = args.reuse
            print(f"store {store} (reused)")
        else:
            store = args.keep or os.path.join(tmp, "audit.duckdb")
            print(f"building {args.episodes:,} episodes ({args.samples} per task) ...", flush=True)
            built = build_store(store, args.episodes, args.samples)
            print(f"store built in {built['seconds']:.1f} s", flush=True)
        counts = table_rows(store)
        episodes = counts["episodes"]
        print(f"store {_size_mb(store):,.0f} MB; rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)
        runs = []
        for i in range(args.repeat):
            r = run_child(store, args.bootstrap)
            runs.append(r)
            print(f"  audit {i + 1}: {r['seconds']:.2f} s ({_phases(r['phases'])}), peak RSS {r['peak_rss_mb']:.0f} MB "
                  f"(after imports {r['floor_rss_mb']:.0f} MB), {r['rows']:,} figures for {r['signals']} signals "
                  f"and {r['channels']} feedback channels", flush=True)
    secs = statistics.median(r["seconds"] for r in runs)
    peak = max(r["peak_rss_mb"] for r in runs)
    med = {k: statistics.median(r["phases"][k] for r in runs) for k in runs[0]["phases"]}
    print(f"\naudit of {episodes:,} episodes, bootstrap {args.bootstrap} (median of {len(runs)}, each in a fresh child):")
    print(f"  wall time {secs:.2f} s   ({_phases(med)})   target < {TARGET_S:.0f} s: "
          f"{'met' if secs < TARGET_S else 'MISSED'}")
    print(f"  peak RSS  {peak:.0f} MB (max of {len(runs)})   target < {TARGET_MB / 1024:.0f} GB: "
          f"{'met' if peak < TARGET_MB else 'MISSED'}")


def _phases(ph: dict[str, float]) -> str:
    return (f"open {ph['open']:.2f} + load {ph['load']:.2f} (queries {ph['queries']:.2f}) "
            f"+ compute {ph['compute']:.2f} + save {ph['save']:.2f}")


def table_rows(store: str) -> dict[str, int]:
    """Rows in each table of the store (read-only)."""
    import duckdb

    con = duckdb.connect(store, read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("runs", "tasks", "episodes", "messages", "signals", "signal_types", "audits", "audit_results")}
    finally:
        con.close()


if __name__ == "__main__":
    main()
