"""The sim's SQL competence: read the question under a table and write the query. Its favourite slip
is the comparison's strictness (``>`` for ``>=``); others: the wrong aggregate (COUNT for SUM), a
missing GROUP BY, a filter on the wrong column, the opposite direction."""

from __future__ import annotations

import re

from agentsynth.answers import answer_region
from agentsynth.sim import Problem

_OPS = {"at least": ">=", "more than": ">", "at most": "<=", "less than": "<",
        "at least as much as": ">=", "at most as much as": "<="}
_FLIP = {">=": ">", ">": ">=", "<=": "<", "<": "<="}
_NOT = {">=": "<", ">": "<=", "<=": ">", "<": ">="}
_OP = "(at least as much as|at most as much as|at least|more than|at most|less than)"
_COND = rf"(aged|earning) {_OP} (\d+)"
_FENCE = re.compile(r"```[ \t]*(?:sql)?[^\n]*\n(.*?)(?:```|\Z)", re.S | re.I)
_E = "FROM employees"
_J = "FROM employees e JOIN departments d ON e.dept = d.dept"


def _col(word: str) -> str:
    return "age" if word == "aged" else "salary"


def _other(g: str) -> str:
    return "dept" if g == "city" else "city"


def _queries(q: str) -> tuple[list[str], float] | None:
    """[correct, mistakes...] for the question ``q`` and how hard it looks."""
    if m := re.match(rf"List the name and (\w+) of every employee {_COND}\.", q):
        c2, col, op, v = m[1], _col(m[2]), _OPS[m[3]], m[4]
        other = "salary" if col == "age" else "age"
        return [f"SELECT name, {c2} {_E} WHERE {col} {o} {v}" for o in (op, _FLIP[op])] + [
            f"SELECT name, {c2} {_E} WHERE {other} {op} {v}", f"SELECT name, {c2} {_E} WHERE {col} {_NOT[op]} {v}"], 1.0
    if m := re.match(rf"List the name of every employee in the (\w+) department {_COND}\.", q):
        dept, col, op, v = m[1], _col(m[2]), _OPS[m[3]], m[4]
        return [f"SELECT name {_E} WHERE dept = '{dept}' AND {col} {o} {v}" for o in (op, _FLIP[op])] + [
            f"SELECT name {_E} WHERE city = '{dept}' AND {col} {op} {v}",
            f"SELECT name {_E} WHERE dept = '{dept}' AND {col} {_NOT[op]} {v}"], 1.0
    if m := re.match(r"List the names of the (\d+) (highest|lowest)-paid employees", q):
        k, d = int(m[1]), "DESC" if m[2] == "highest" else "ASC"
        return [f"SELECT name {_E} ORDER BY salary {d} LIMIT {k}",
                f"SELECT name {_E} ORDER BY salary {'ASC' if d == 'DESC' else 'DESC'} LIMIT {k}",
                f"SELECT name {_E} ORDER BY salary {d} LIMIT {k + 1}",
                f"SELECT name, salary {_E} ORDER BY salary {d} LIMIT {k}"], 1.0
    if m := re.match(rf"For each (?:city|department), give the (\w+) and the number of employees {_COND} \(", q):
        g, col, op, v = m[1], _col(m[2]), _OPS[m[3]], m[4]
        w = f"WHERE {col} {op} {v}"
        return [f"SELECT {g}, COUNT(*) {_E} {w} GROUP BY {g}", f"SELECT {g}, COUNT(*) {_E} WHERE {col} {_FLIP[op]} {v} GROUP BY {g}",
                f"SELECT {g}, SUM(salary) {_E} {w} GROUP BY {g}", f"SELECT {g}, COUNT(*) {_E} {w}",
                f"SELECT {_other(g)}, COUNT(*) {_E} {w} GROUP BY {_other(g)}"], 1.5
    if m := re.match(r"For each (?:city|department), give the (\w+) and (.+)\.$", q):
        g, what = m[1], m[2]
        aggs = {"the number of employees": ("COUNT(*)", "SUM(salary)"),
                "the total salary of its employees": ("SUM(salary)", "COUNT(*)"),
                "the highest salary": ("MAX(salary)", "MIN(salary)"), "the lowest salary": ("MIN(salary)", "MAX(salary)"),
                "the average age of its employees, rounded to 2 decimal places": ("ROUND(AVG(age), 2)", "ROUND(SUM(age), 2)"),
                "the average salary of its employees, rounded to 2 decimal places":
                    ("ROUND(AVG(salary), 2)", "ROUND(SUM(salary), 2)")}
        if what not in aggs:
            return None
        agg, wrong = aggs[what]
        return [f"SELECT {g}, {agg} {_E} GROUP BY {g}", f"SELECT {g}, {wrong} {_E} GROUP BY {g}",
                f"SELECT {g}, {agg} {_E}", f"SELECT {_other(g)}, {agg} {_E} GROUP BY {_other(g)}"], 1.5
    if m := re.match(rf"List each (\w+) that has {_OP} (\d+) employees", q):
        g, op, k = m[1], _OPS[m[2]], m[3]
        return [f"SELECT {g}, COUNT(*) {_E} GROUP BY {g} HAVING COUNT(*) {o} {k}" for o in (op, _FLIP[op])] + [
            f"SELECT {g}, COUNT(*) {_E} GROUP BY {g}", f"SELECT {g}, SUM(salary) {_E} GROUP BY {g} HAVING COUNT(*) {op} {k}"], 2.0
    if m := re.match(r"List the name and salary of every employee who earns (more|less) than the average salary", q):
        o = ">" if m[1] == "more" else "<"
        ext = "MAX" if o == ">" else "MIN"
        return [f"SELECT name, salary {_E} WHERE salary {o} (SELECT AVG(salary) {_E})",
                f"SELECT name, salary {_E} WHERE salary {'<' if o == '>' else '>'} (SELECT AVG(salary) {_E})",
                f"SELECT name, salary {_E} WHERE salary {o} (SELECT {ext}(salary) {_E})",
                f"SELECT name {_E} WHERE salary {o} (SELECT AVG(salary) {_E})"], 2.0
    if m := re.match(rf"List the name of every employee who earns {_OP} (\w+)\.", q):
        op, who = _OPS[m[1]], m[2]
        sub = f"(SELECT salary {_E} WHERE name = '{who}')"
        return [f"SELECT name {_E} WHERE salary {o} {sub}" for o in (op, _FLIP[op], _NOT[op])] + [
            f"SELECT name, salary {_E} WHERE salary {op} {sub}"], 2.0
    if m := re.match(rf"List the name of every employee whose department has a budget of {_OP} (\d+)", q):
        op, b = _OPS[m[1]], m[2]
        return [f"SELECT e.name {_J} WHERE d.budget {o} {b}" for o in (op, _FLIP[op])] + [
            f"SELECT e.name {_J} WHERE e.salary {op} {b}", f"SELECT e.name {_J} WHERE d.budget {_NOT[op]} {b}"], 2.0
    if m := re.match(r"For each floor, give the floor and the (number of employees|total salary)", q):
        agg, wrong = ("COUNT(*)", "SUM(e.salary)") if m[1] == "number of employees" else ("SUM(e.salary)", "COUNT(*)")
        return [f"SELECT d.floor, {agg} {_J} GROUP BY d.floor", f"SELECT d.floor, {wrong} {_J} GROUP BY d.floor",
                f"SELECT d.floor, {agg} {_J}", f"SELECT e.dept, {agg} {_J} GROUP BY e.dept"], 2.0
    return None


def _render(answer: str, tidy: bool) -> str:
    if tidy:
        return f"Here is the query:\n\n```sql\n{answer}\n```"
    return f"I would run this against the table.\nAnswer: {answer}"


def _extract(reply: str) -> str | None:
    """The query a reply states: the last fenced block within what its last answer mark introduces
    (:func:`agentsynth.answers.answer_region`), else the marked text, else the reply's last block."""
    region = answer_region(reply or "")
    blocks = _FENCE.findall(reply or "" if region is None else region)
    text = blocks[-1] if blocks else region or ""
    return " ".join(text.split()).rstrip(";").strip() or None


def sql(prompt: str) -> Problem | None:
    """SQL prompts: tables, then 'Question: ...' and a request for one DuckDB SELECT query."""
    if "DuckDB SELECT query" not in prompt:
        return None
    m = re.search(r"^Question: (.+)$", prompt, re.M)
    found = _queries(m[1].strip()) if m else None
    if not found:
        return None
    (answer, *mistakes), difficulty = found
    return Problem("sql", answer, difficulty, mistakes, render=_render, extract=_extract)
