"""The SQL environment: seeding, the verifier's accepted queries and near misses, the
sandbox (one SELECT, no files, no writes, a timeout, a row cap), the hint, the sim solver, and a
short run through the real runner."""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb
import pytest

from agentsynth.signals import GradeContext
from agentsynth.sim.solvers import solve
from envs.sql import SQLEnv, extract_sql

from conftest import assert_runs_and_reference_helps, assert_seeded

SEEDS = range(20)
CMP = re.compile(r"([\w.]+|COUNT\(\*\)) (>=|>|<=|<) (\d+)\b")
NOT = {">=": "<", ">": "<=", "<=": ">", "<": ">="}


def tasks(difficulty: int):
    env = SQLEnv(feedback="hint", difficulty=difficulty)
    for seed in SEEDS:
        env.reset(seed=seed)
        yield env, env.task


def fenced(sql: str) -> str:
    return f"```sql\n{sql}\n```"


_DB = duckdb.connect()


def expected_rows(task) -> list[tuple]:
    con = _DB.cursor()  # a fresh connection: the task's tables are TEMP tables, private to it
    try:
        con.execute(task.metadata["setup"])
        return con.execute(task.answer).fetchall()
    finally:
        con.close()


def equivalents(sql: str, ordered: bool) -> list[str]:
    """Queries that return the reference's result, written differently."""
    out = [
        # a CTE over the base table
        "WITH staff AS (SELECT * FROM employees) " + re.sub(r"\bFROM employees\b", "FROM staff", sql),
        # another layout, keyword case, a comment and a semicolon
        "-- my query\n" + sql.replace(" FROM ", "\n  from ").replace(" WHERE ", "\nwhere ") + ";",
    ]
    if CMP.search(sql):  # another WHERE/HAVING formulation: x >= v  ->  NOT (x < v)
        out.append(CMP.sub(lambda m: f"NOT ({m[1]} {NOT[m[2]]} {m[3]})", sql))
    if not ordered:  # a derived table with its own column names, in another row order
        out.append(f"SELECT * FROM ({sql}) AS t(a, b) ORDER BY 1 DESC" if sql.startswith(("SELECT name, ", "SELECT city, ", "SELECT dept, ", "SELECT d.floor, "))
                   else f"SELECT * FROM ({sql}) AS t ORDER BY 1 DESC")
    if "COUNT(*)" in sql:
        out.append(sql.replace("COUNT(*)", "COUNT(id)" if "JOIN" not in sql else "COUNT(e.id)"))
    if "ROUND(AVG(" in sql:  # unrounded: within the tolerance
        out.append(re.sub(r"ROUND\((AVG\(\w+\)), 2\)", r"\1", sql))
    if m := re.fullmatch(r"SELECT e\.name FROM employees e JOIN departments d ON e\.dept = d\.dept WHERE d\.budget (\S+) (\d+)", sql):
        out.append(f"SELECT name FROM employees WHERE dept IN (SELECT dept FROM departments WHERE budget {m[1]} {m[2]})")
    if m := re.fullmatch(r"SELECT d\.floor, (.+) FROM employees e JOIN departments d ON e\.dept = d\.dept GROUP BY d\.floor", sql):
        agg = m[1].replace("e.", "employees.")
        out.append(f"SELECT floor, {agg} FROM employees, departments WHERE employees.dept = departments.dept GROUP BY ALL")
    if m := re.fullmatch(r"SELECT name FROM employees WHERE salary (\S+) \(SELECT salary FROM employees WHERE name = '(\w+)'\)", sql):
        out.append(f"SELECT a.name FROM employees a JOIN employees b ON b.name = '{m[2]}' AND a.salary {m[1]} b.salary")
    if m := re.fullmatch(r"SELECT name FROM employees ORDER BY salary (DESC|ASC) LIMIT (\d+)", sql):
        out.append(f"SELECT name FROM employees QUALIFY row_number() OVER (ORDER BY salary {m[1]}) <= {m[2]} "
                   f"ORDER BY salary {m[1]}")
    return out



def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(SQLEnv, (1, 2, 3), SEEDS, len(SEEDS))


def test_difficulty_shapes_the_task() -> None:
    for d, words in ((1, ("WHERE", "ORDER BY")), (2, ("GROUP BY",)), (3, ("HAVING", "JOIN", "(SELECT"))):
        for _, task in tasks(d):
            rows = len(re.findall(r"^\| \d+ \| ", task.prompt, re.M))
            assert rows in {1: range(5, 9), 2: range(8, 13), 3: range(10, 16)}[d]
            assert any(w in task.answer for w in words), task.answer
            assert ("Table `departments`" in task.prompt) == (d == 3)
            assert expected_rows(task), "every question has a non-empty answer"


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_accepts_the_reference_and_equivalent_queries(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        sql = task.answer
        for reply in (fenced(sql), f"Answer: {sql}", f"Here you go:\n```\n{sql}\n```\nThis filters the table.",
                      f"```SQL\n{sql}\n```", f"First try:\n```sql\nSELECT 1\n```\nBetter:\n```sql\n{sql}\n```"):
            assert env.verify(task, reply), (task.prompt, reply)
        for alt in equivalents(sql, task.metadata["ordered"]):
            assert env.verify(task, fenced(alt)), (task.metadata["question"], alt, env.hint(task, fenced(alt)))


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_rejects_wrong_queries_and_the_hint_never_shows_the_answer(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        sql, rows = task.answer, expected_rows(task)
        bad = list(solve(task.prompt).mistakes) + ["SELECT * FROM employees", "SELECT name FROM employees WHERE false", ""]
        if m := re.match(r"SELECT (\w+), (\w+) FROM", sql):  # the question fixes the column order
            bad.append(sql.replace(f"SELECT {m[1]}, {m[2]}", f"SELECT {m[2]}, {m[1]}", 1))
            assert "order the question asks" in env.hint(task, fenced(bad[-1]))
        if task.metadata["ordered"]:
            bad.append(sql.replace("DESC", "XX").replace("ASC", "DESC").replace("XX", "ASC") + " ")
        for b in bad:
            reply = fenced(b)
            assert not env.verify(task, reply), (task.prompt, b)
            hint = env.hint(task, reply)
            assert isinstance(hint, str) and hint and sql not in hint
            values = {str(v) for r in rows for v in r if isinstance(v, str)}
            assert not any(v in hint and v not in b for v in values), (hint, rows)


def test_order_matters_only_when_the_question_asks_for_it() -> None:
    seen = set()
    for d in (1, 2, 3):
        for env, task in tasks(d):
            shuffled = f"SELECT * FROM ({task.answer}) AS t ORDER BY random()"
            if task.metadata["ordered"]:
                rev = task.answer.replace("DESC", "XX").replace("ASC", "DESC").replace("XX", "ASC")
                reordered = f"SELECT name FROM ({task.answer.replace('SELECT name', 'SELECT name, salary')}) " \
                            f"ORDER BY salary {'ASC' if 'DESC' in task.answer else 'DESC'}"
                assert not env.verify(task, fenced(reordered)) and not env.verify(task, fenced(rev))
                assert env.hint(task, fenced(reordered)) == "the rows are right but in the wrong order."
                seen.add("ordered")
            elif len(expected_rows(task)) > 1:
                assert env.verify(task, fenced(shuffled))
                seen.add("unordered")
    assert seen == {"ordered", "unordered"}


def test_hint_says_what_differs() -> None:
    env = SQLEnv(feedback="hint")
    env.reset(seed=0)
    task = env.task
    n, rows = len(expected_rows(task)), len(re.findall(r"^\| \d+ \| ", task.prompt, re.M))
    assert env.hint(task, fenced("SELECT name FROM employees")) == f"your query returns {rows} rows, expected {n}."
    assert env.hint(task, fenced("SELECT name, 1, 2 FROM employees")) == "your query returns 3 columns, expected 1."
    assert env.hint(task, fenced("SELECT nme FROM employees")).startswith("DuckDB error: Binder Error")
    assert env.hint(task, "no query here") == "no SQL query found: put one SELECT query in a ```sql fenced block."
    assert "matches no expected row" in env.hint(task, fenced(f"SELECT upper(name) FROM ({task.answer})"))


def test_sandbox_allows_one_select_no_files_no_writes_and_stops_runaway_queries(tmp_path: Path) -> None:
    env = SQLEnv(feedback="hint")
    env.reset(seed=3)
    task = env.task
    out = tmp_path / "out.csv"
    attempts = {
        "CREATE TABLE x AS SELECT * FROM employees": "yours is CREATE",
        f"COPY (SELECT * FROM employees) TO '{out}'": "yours is COPY",
        f"ATTACH '{tmp_path / 'x.db'}' AS x": "yours is ATTACH",
        "INSERT INTO employees SELECT * FROM employees": "yours is INSERT",
        "DROP TABLE employees": "yours is DROP",
        "SET enable_external_access = true": "yours is SET",
        f"{task.answer}; DROP TABLE employees": "exactly one statement (found 2)",
        "SELECT * FROM read_csv('/etc/passwd')": "Permission Error",
        "SELECT * FROM '/etc/passwd'": "DuckDB error",  # no replacement scans of files either
        "SELECT * FROM read_text('/etc/hostname')": "Permission Error",
        "SELECT * FROM range(1000000)": "more than 10000 rows",
        "SELECT name FROM employees WHERE 'x' = ": "Parser Error",
    }
    for sql, says in attempts.items():
        t = time.perf_counter()
        assert not env.verify(task, fenced(sql)), sql
        assert says in env.hint(task, fenced(sql)), (sql, env.hint(task, fenced(sql)))
        assert time.perf_counter() - t < 1.0
    assert not out.exists() and not (tmp_path / "x.db").exists()
    t = time.perf_counter()
    forever = "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t"
    assert not env.verify(task, fenced(forever))
    assert env.hint(task, fenced(forever)) == "your query did not finish within 2 seconds."
    assert time.perf_counter() - t < 3.5
    for junk in ("", "   ", "\u2603" * 50, "```", "```sql\n```", "x" * 1_000_000, "Answer: \x00\x01", "```sql\n;;;\n```"):
        assert env.verify(task, junk) is False and isinstance(env.hint(task, junk), str)
    assert env.verify(task, None) is False  # type: ignore[arg-type]
    assert env.verify(task, fenced(task.answer))  # the tables are still there after every attempt


def test_extract_sql_reads_fences_then_answer_lines() -> None:
    assert extract_sql("x\n```sql\nSELECT 1\n```\ny\n```sql\nSELECT 2\n```") == "SELECT 2"
    assert extract_sql("```\nSELECT 3\n```") == "SELECT 3"
    assert extract_sql("```python\nprint(1)\n```\nAnswer: SELECT 4") == "SELECT 4"
    assert extract_sql("**Answer:** `SELECT 5`") == "SELECT 5"
    assert extract_sql("```sql\nSELECT 6") == "SELECT 6"  # an unclosed block at the end
    # what the last answer mark introduces wins over an earlier block, when it holds a query ...
    assert extract_sql("```sql\nSELECT 1\n```\nAnswer: SELECT 7.") == "SELECT 7"
    assert extract_sql("```sql\nSELECT 1\n```\n\\boxed{(SELECT 8)}") == "(SELECT 8)"
    assert extract_sql("```sql\nSELECT 1\n```\n**Answer:** here it is:\n```sql\nSELECT 9\n```\nDone.") == "SELECT 9"
    # ... else the reply is read as without it
    assert extract_sql("```sql\nSELECT 10\n```\nAnswer: the query above selects from the table.") == "SELECT 10"


def test_format_score_wants_one_sql_block_or_an_answer_line() -> None:
    env = SQLEnv()
    env.reset(seed=2)
    fmt = env.graders["format"]
    st = fmt.signal_type
    assert (st.source, st.openness, st.meta_level, st.task_relevant) == ("rubric", "open", 0, False)
    q = env.task.answer
    for reply, ok in ((fenced(q), True), (f"Answer: {q}", True), (fenced("SELECT 1"), True),
                      (fenced(q) + "\n" + fenced(q), False), (f"```\n{q}\n```", False), ("Answer: all of them", False), ("", False)):
        assert fmt.grade(GradeContext(env.task, reply, (), 1)).passed is ok, reply


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_sim_solver_writes_a_passing_query_and_its_mistakes_fail(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "sql" and 1 <= prob.difficulty <= 3
        assert prob.difficulty == {1: 1.0, 2: 1.5, 3: 2.0}[difficulty]
        for tidy in (True, False):
            reply = prob.render(prob.answer, tidy)
            assert env.verify(task, reply) and prob.extract(reply) == prob.answer
        assert len(prob.mistakes) >= 3
        for m in prob.mistakes:
            assert not env.verify(task, prob.render(m, True)) and not env.verify(task, prob.render(m, False)), m
        if re.search(r"(>=|>|<=|<) \d", task.answer):  # the favourite slip: the comparison's strictness
            strict = re.findall(r"(>=|>|<=|<) \d", task.answer)[-1]
            assert re.findall(r"(>=|>|<=|<) \d", prob.mistakes[0])[-1] == {">=": ">", ">": ">=", "<=": "<", "<": "<="}[strict]
    assert solve("Compute the value of: 1 + 2").domain != "sql"


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.sql:SQLEnv", "sql")
