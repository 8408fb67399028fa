"""SQL: answer a question about a small generated table with ONE DuckDB SELECT query.

Difficulty 1 filters and selects (5–8 rows), 2 aggregates with GROUP BY (8–12 rows), 3 uses HAVING,
a subquery or a join with a ``departments`` table (10–15 rows). The query is what the last answer
mark introduces (``Answer:``, ``\\boxed{}``, ... as :func:`agentsynth.answers.answer_region` reads
it) if that holds a fenced block or starts like a query: its last ```sql or bare ``` block, else
the text itself; else the reply's last ```sql block (else its last bare ``` block). It runs next
to the reference query on a fresh connection (its tables connection-local TEMP tables) to a
locked-down in-memory DuckDB; it passes when the result sets agree: the same number of columns
(their order and values as the question fixes them, names free), the same rows as a multiset (in
order only when the question asks for an order), numbers within 0.01. So any correct query
passes: another WHERE formulation, a subquery instead of a join, a CTE, aliases.
Only one SELECT/WITH statement runs, with external access disabled and the configuration locked,
interrupted after 2 s, at most 10,000 rows fetched. The hint says what differs (row or column
count, the row/column of a differing value, the order) or quotes DuckDB's error; never the
expected rows or the reference query. ``format`` (a score): one ```sql block or an Answer: line.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import math
import operator
import re
import threading
import time
from decimal import Decimal

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, grader
from agentsynth.answers import answer_region

from ._keys import answer_key

NAMES = ("Alice", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kofi", "Lena",
         "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Ximena",
         "Yusuf", "Zoe", "Aaron", "Bea", "Carlos", "Dmitri")
CITIES = ("Boston", "Denver", "Austin", "Seattle", "Chicago", "Miami")
DEPTS = ("Sales", "Engineering", "Marketing", "Finance", "Support")
OPS = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than"}
CMP = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
GROUP = {"city": "city", "dept": "department"}
PROMPT = ("{tables}\nQuestion: {question}\n\nWrite ONE DuckDB SELECT query that answers the question, returning "
          "exactly the columns asked for, in that order. Put it in a ```sql fenced block.")
TIMEOUT_S, ROW_CAP, MAX_SQL = 2.0, 10_000, 20_000
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_QUERY = re.compile(r"[\s(]*(?:select|with|from)\b", re.I)  # how a query starts


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _threshold(rng, values, op):
    """A value among ``values`` whose selection under ``op`` is a proper non-empty subset (or None)."""
    ok = [v for v in sorted(set(values)) if 0 < sum(CMP[op](x, v) for x in values) < len(values)]
    return _pick(rng, ok) if ok else None


def _cond(col, op, v):
    return f"{'aged' if col == 'age' else 'earning'} {OPS[op]} {v}"


def _question(rng, d, emp, dep):
    """(question, reference SQL, ordered) for difficulty ``d``, or None when this draw does not fit."""
    kind, op, col = int(rng.integers((3, 6, 5)[d - 1])), _pick(rng, list(OPS)), _pick(rng, ["age", "salary"])
    g = _pick(rng, ["city", "dept"])
    vals = {c: [r[i] for r in emp] for i, c in enumerate(("id", "name", "city", "age", "salary", "dept"))}
    if d == 1 and kind == 0:
        v, c2 = _threshold(rng, vals[col], op), _pick(rng, ["city", "dept", "age", "salary"])
        return v is not None and (f"List the name and {c2} of every employee {_cond(col, op, v)}.",
                                  f"SELECT name, {c2} FROM employees WHERE {col} {op} {v}", False)
    if d == 1 and kind == 1:
        dept = _pick(rng, sorted(set(vals["dept"])))
        v = _threshold(rng, [r[3 if col == "age" else 4] for r in emp if r[5] == dept], op)
        return v is not None and (f"List the name of every employee in the {dept} department {_cond(col, op, v)}.",
                                  f"SELECT name FROM employees WHERE dept = '{dept}' AND {col} {op} {v}", False)
    if d == 1:
        k, hi = int(rng.integers(2, 4)), bool(rng.integers(2))
        word = "highest" if hi else "lowest"
        return (f"List the names of the {k} {word}-paid employees, {word} salary first.",
                f"SELECT name FROM employees ORDER BY salary {'DESC' if hi else 'ASC'} LIMIT {k}", True)
    if d == 2 and kind < 4:  # kinds 4, 5: a filtered count
        agg, what = [("COUNT(*)", "the number of employees"), ("SUM(salary)", "the total salary of its employees"),
                     (f"ROUND(AVG({col}), 2)", f"the average {col} of its employees, rounded to 2 decimal places"),
                     ("MAX(salary)" if op[0] == ">" else "MIN(salary)",
                      "the highest salary" if op[0] == ">" else "the lowest salary")][kind]
        return (f"For each {GROUP[g]}, give the {g} and {what}.",
                f"SELECT {g}, {agg} FROM employees GROUP BY {g}", False)
    if d == 2:
        v, plural = _threshold(rng, vals[col], op), "cities" if g == "city" else "departments"
        return v is not None and (
            f"For each {GROUP[g]}, give the {g} and the number of employees {_cond(col, op, v)} "
            f"(leave out {plural} with none).",
            f"SELECT {g}, COUNT(*) FROM employees WHERE {col} {op} {v} GROUP BY {g}", False)
    if kind == 0:
        counts = [vals[g].count(x) for x in sorted(set(vals[g]))]
        k = _threshold(rng, counts, op)
        return k is not None and (f"List each {g} that has {OPS[op]} {k} employees, with its number of employees.",
                                  f"SELECT {g}, COUNT(*) FROM employees GROUP BY {g} HAVING COUNT(*) {op} {k}", False)
    if kind == 1:
        words = {">=": "at least as much as", ">": "more than", "<=": "at most as much as", "<": "less than"}
        who = [r[1] for r in emp if sum(CMP[op](x, r[4]) for x in vals["salary"]) > 0]
        x = _pick(rng, who)
        return (f"List the name of every employee who earns {words[op]} {x}.",
                f"SELECT name FROM employees WHERE salary {op} (SELECT salary FROM employees WHERE name = '{x}')", False)
    if kind == 2:
        o = op[0]
        return (f"List the name and salary of every employee who earns {'more' if o == '>' else 'less'} than the "
                "average salary of all employees.",
                f"SELECT name, salary FROM employees WHERE salary {o} (SELECT AVG(salary) FROM employees)", False)
    if kind == 3:
        budget = {r[0]: r[2] for r in dep}
        b = _threshold(rng, [budget[r[5]] for r in emp], op)
        return b is not None and (
            f"List the name of every employee whose department has a budget of {OPS[op]} {b}.",
            "SELECT e.name FROM employees e JOIN departments d ON e.dept = d.dept "
            f"WHERE d.budget {op} {b}", False)
    agg, what = _pick(rng, [("COUNT(*)", "the number of employees"), ("SUM(e.salary)", "the total salary of the employees")])
    return (f"For each floor, give the floor and {what} whose department is on that floor.",
            f"SELECT d.floor, {agg} FROM employees e JOIN departments d ON e.dept = d.dept GROUP BY d.floor", False)


def _table(name, cols, rows):
    """(markdown for the prompt, SQL that creates and fills it)."""
    head = f"Table `{name}` ({', '.join(f'{c} {t}' for c, t in cols)}):\n\n| " + " | ".join(c for c, _ in cols) + " |\n|"
    md = head + "---|" * len(cols) + "\n" + "".join("| " + " | ".join(map(str, r)) + " |\n" for r in rows)
    lit = ", ".join("(" + ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in r) + ")" for r in rows)
    return md, f"CREATE TEMP TABLE {name} ({', '.join(f'{c} {t}' for c, t in cols)}); INSERT INTO {name} VALUES {lit};"


def extract_sql(text: str) -> str:
    """The query a reply gives: within what its last answer mark introduces
    (:func:`agentsynth.answers.answer_region`), if that holds a fenced block or starts like a query,
    else within the whole reply: the last ```sql block, else the last bare block, else (after a
    mark) the marked text itself."""
    text = text if isinstance(text, str) else ""
    region = answer_region(text)
    if region is not None and "```" not in region and not _QUERY.match(region):  # no query: "see above"
        region = None
    blocks = _FENCE.findall(text if region is None else region)
    for want in (lambda lang: lang.lower() in ("sql", "duckdb", "postgresql", "sqlite"), lambda lang: not lang):
        found = [b for lang, b in blocks if want(lang)]
        if found:
            return found[-1].strip()
    return "" if region is None else region.strip()


_LITERAL = r"'(?:[^']|'')*'"
_COMMENT = re.compile(rf"({_LITERAL})|--[^\n]*|/\*.*?(?:\*/|\Z)", re.S)


def normalize_sql(query: str) -> str:
    """A query's text as a comparison key: comments dropped; outside string literals, case folded
    (DuckDB identifiers are case-insensitive), whitespace collapsed, ``f (x)``, ``( x )`` and
    ``a ,b`` written ``f(x)``, ``(x)`` and ``a, b``; no trailing semicolon. Only the text is
    normalized: equivalent queries written differently (another WHERE formulation, a CTE) keep
    different keys."""
    parts = re.split(f"({_LITERAL})", _COMMENT.sub(lambda m: m.group(1) or " ", query))
    for i in range(0, len(parts), 2):  # the parts outside literals
        text = re.sub(r"\s+", " ", parts[i].casefold())
        parts[i] = re.sub(r"\s*,\s*", ", ", re.sub(r"(?<=\w) (?=\()|(?<=\() | (?=\))", "", text))
    return re.sub(r"[\s;]+$", "", "".join(parts).strip())


_ABANDONED: list[threading.Thread] = []  # queries DuckDB could not interrupt (one long function call)


@atexit.register
def _wait_for_abandoned() -> None:
    """Let them finish (up to 60 s in all): DuckDB aborts the process if one is still running at exit."""
    deadline = time.monotonic() + 60
    for t in _ABANDONED:
        t.join(max(0.0, deadline - time.monotonic()))


class _Timeout(Exception):
    pass


class _Reject(Exception):
    pass


_LOCKDOWN = ("SET threads = 1; SET memory_limit = '512MB'; SET temp_directory = ''; "
             "SET autoinstall_known_extensions = false; SET enable_external_access = false; SET lock_configuration = true")
_DB: dict = {"con": None, "name": "", "generation": 0}  # the shared database, kept alive by "con"
_DB_LOCK = threading.Lock()


def _connect():
    """A new connection to the process's locked-down in-memory database (created once, then found
    by name: a fresh DuckDB instance costs ~15 ms, a connection to it under 1 ms). Each check's
    tables are TEMP tables, visible only to its connection and gone when it closes."""
    import duckdb

    with _DB_LOCK:
        if _DB["con"] is None:
            _DB["generation"] += 1
            _DB["name"] = f":memory:agentsynth_sql_{_DB['generation']}"
            _DB["con"] = duckdb.connect(_DB["name"])
            _DB["con"].execute(_LOCKDOWN)
        name = _DB["name"]
    return duckdb.connect(name)


def _run(setup: str, reference: str, query: str):
    """Run both queries on a fresh connection: (expected rows, column count, got rows, column names)."""
    import duckdb

    box: dict = {}

    def work():
        con = box["con"] = _connect()
        try:
            con.execute(setup)
            stmts = con.extract_statements(query)
            if len(stmts) != 1:
                raise _Reject(f"write exactly one statement (found {len(stmts)}).")
            if stmts[0].type != duckdb.StatementType.SELECT:
                raise _Reject(f"only a SELECT (or WITH ... SELECT) query may run; yours is {stmts[0].type.name}.")
            ref = con.execute(reference)
            expected = (ref.fetchall(), len(ref.description))
            cur = con.execute(query)
            box["out"] = (*expected, cur.fetchmany(ROW_CAP + 1), [c[0] for c in cur.description or []])
        except _Reject as exc:
            box["err"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - any DuckDB failure is the query's fault
            box["err"] = "DuckDB error: " + (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            if "invalidated" in box["err"]:  # a fatal error broke the shared database: start a new one
                with _DB_LOCK:
                    _DB["con"] = None
        finally:
            con.close()

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(TIMEOUT_S)
    if t.is_alive():
        try:
            box.get("con").interrupt()
        except Exception:  # noqa: BLE001 - closed meanwhile
            pass
        t.join(1.0)
        if t.is_alive():
            _ABANDONED.append(t)
        raise _Timeout
    if "err" in box:
        if "INTERRUPT" in box["err"]:
            raise _Timeout
        return box["err"]
    return box["out"]


def _norm(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    return float(v) if isinstance(v, (int, float, Decimal)) else str(v)


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.01)
    return type(a) is type(b) and a == b


def _mismatch(a, b):
    """Index of the first differing column of two rows, or None."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if not _same(x, y)), None)


def _unmatched(got, exp):
    """Index of the first row of ``got`` left without a partner in ``exp`` (multisets), or None."""
    free = list(exp)
    for i, row in enumerate(got):
        j = next((j for j, e in enumerate(free) if _mismatch(row, e) is None), None)
        if j is None:
            return i
        free.pop(j)
    return None


@functools.lru_cache(maxsize=1024)
def _diagnose(setup: str, reference: str, ordered: bool, query: str) -> str | None:
    """None when ``query`` returns the reference's result, else what differs (never the rows)."""
    if not query:
        return "no SQL query found: put one SELECT query in a ```sql fenced block."
    if len(query) > MAX_SQL:
        return "the query is too long."
    try:
        out = _run(setup, reference, query)
    except _Timeout:
        return f"your query did not finish within {TIMEOUT_S:g} seconds."
    if isinstance(out, str):
        return out
    exp, n_exp, got, names = out
    exp, got = [tuple(map(_norm, r)) for r in exp], [tuple(map(_norm, r)) for r in got]
    if len(names) != n_exp:
        return f"your query returns {len(names)} columns, expected {n_exp}."
    if len(got) != len(exp):
        more = "more than " if len(got) > ROW_CAP else ""
        return f"your query returns {more}{min(len(got), ROW_CAP)} rows, expected {len(exp)}."
    if ordered:
        bad = next((i for i, (a, b) in enumerate(zip(got, exp)) if _mismatch(a, b) is not None), None)
        if bad is None:
            return None
        if _unmatched(got, exp) is None:
            return "the rows are right but in the wrong order."
        return f"a value differs in row {bad + 1} (column '{names[_mismatch(got[bad], exp[bad])]}')."
    bad = _unmatched(got, exp)
    if bad is None:
        return None
    if len(names) <= 4 and any(_unmatched([tuple(r[i] for i in p) for r in got], exp) is None
                               for p in itertools.permutations(range(len(names)))):
        return "the right values, but the columns are not in the order the question asks for."
    return f"row {bad + 1} of your result matches no expected row."


def diagnose(task: Task, answer: str) -> str | None:
    """What is wrong with ``answer`` for ``task`` (None: correct)."""
    m = task.metadata
    return _diagnose(m["setup"], task.answer, bool(m["ordered"]), extract_sql(answer))


@grader("format", source="rubric", meta_level=0, task_relevant=False,
        description="exactly one ```sql block, or an 'Answer:' line with the query")
def sql_format(ctx):
    text = ctx.answer or ""
    blocks = _FENCE.findall(text)
    if blocks:
        return len(blocks) == 1 and blocks[0][0].lower() == "sql" and bool(blocks[0][1].strip())
    return re.match(r"(?is)\s*(select|with|from)\b", extract_sql(text)) is not None


class SQLEnv(TextEnv):
    """Write one DuckDB SELECT query answering a question about a small table."""

    name = "sql"
    domain = "sql"
    sim_solver = "envs.sql_sim:sql"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        d = min(max(self.difficulty, 1), 3)
        while True:
            n = int(rng.integers(*[(5, 9), (8, 13), (10, 16)][d - 1]))
            depts = [DEPTS[i] for i in rng.choice(len(DEPTS), 3 + (d > 1), replace=False)]
            cities = [CITIES[i] for i in rng.choice(len(CITIES), 3 + (d > 1), replace=False)]
            names, sal = rng.choice(len(NAMES), n, replace=False), rng.choice(np.arange(60, 241), n, replace=False)
            pick = rng.integers(0, 1 << 30, size=(n, 3))
            emp = [(i + 1, NAMES[names[i]], cities[pick[i, 0] % len(cities)], 22 + int(pick[i, 1] % 43),
                    500 * int(sal[i]), depts[pick[i, 2] % len(depts)]) for i in range(n)]
            budgets = rng.choice(np.arange(20, 91), len(depts), replace=False)
            dep = [(x, 1 + int(pick[i, 0] % 3), 10_000 * int(budgets[i])) for i, x in enumerate(depts)]
            q = _question(rng, d, emp, dep)
            if q:
                break
        question, sql, ordered = q
        parts = [_table("employees", [("id", "INTEGER"), ("name", "VARCHAR"), ("city", "VARCHAR"), ("age", "INTEGER"),
                                      ("salary", "INTEGER"), ("dept", "VARCHAR")], emp)]
        if d == 3:
            parts.append(_table("departments", [("dept", "VARCHAR"), ("floor", "INTEGER"), ("budget", "INTEGER")], dep))
        prompt = PROMPT.format(tables="\n".join(md for md, _ in parts), question=question)
        return self.make_task(prompt, sql, setup=" ".join(s for _, s in parts), ordered=ordered, question=question)

    def verify(self, task: Task, answer: str) -> bool:
        return diagnose(task, answer) is None

    def hint(self, task: Task, answer: str) -> str | None:
        return diagnose(task, answer)

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The query verify would run (:func:`extract_sql`), its text normalized (:func:`normalize_sql`)."""
        return normalize_sql(extract_sql(text))

    def scores(self):
        return [sql_format]

    def reference_reply(self, task: Task) -> str:
        return f"```sql\n{task.answer}\n```"

    def probe_replies(self, task: Task) -> ProbeReplies:
        """The reference query with an extra column gives another result, so it is wrong; the query
        with a trailing semicolon, or in a bare fenced block, is the same answer."""
        q = task.answer.rstrip().rstrip(";")
        return ProbeReplies(wrong=(q.replace("SELECT ", "SELECT 0 AS extra, ", 1),),
                            must_pass={"trailing semicolon": f"```sql\n{q};\n```", "bare fence": f"```\n{q}\n```"})
