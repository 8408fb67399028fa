"""The built-in environments' answer keys (``TextEnv.canonical``, stored as ``messages.answer``):
every form of one answer that the verifier accepts gets one key, the sim's tidy and untidy
renderings of the right answer get that key and each of its mistakes another, replies with one key
get one verdict, garbage never raises, and through the real runner the stored keys agree with
truth."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import pytest
import test_env_algebra as algebra_forms
import test_env_countdown as countdown_forms
import test_env_extraction as extraction_forms
import test_env_lists as lists_forms
import test_env_logic as logic_forms
import test_env_pairs as pairs_forms
import test_env_strings as strings_forms
import test_env_units as units_forms
from conftest import q

import agentsynth
from agentsynth import TextEnv, registry
from agentsynth.answers import final_answer, normalize
from agentsynth.sim.solvers import Problem, solve

DOMAINS = ("arithmetic", "algebra", "units", "strings", "logic", "code", "sql", "extraction", "tools", "pairs", "countdown",
           "lists")
DIFFICULTIES = (1, 2, 3)
SEEDS = range(20)


def tasks(name: str, seeds=SEEDS):
    for d in DIFFICULTIES:
        env = registry.make(name, difficulty=d)
        for seed in seeds:
            env.reset(seed=seed)
            yield env, env.task


def problem(env: TextEnv, task) -> Problem:
    """What the sim makes of the task; for tools, after its tool calls have been answered."""
    prob = solve(task.prompt)
    if prob is not None and prob.resolve is not None:
        messages = [{"role": "user", "content": task.prompt}]
        need = prob.resolve(messages)
        calls = [{"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                 for i, (n, a) in enumerate(need)]
        messages.append({"role": "assistant", "content": "", "tool_calls": calls})
        messages += [{"role": "tool", "tool_call_id": c["id"], "content": env.call_tool(n, a)} for c, (n, a) in zip(calls, need)]
        prob = prob.resolve(messages)
    assert isinstance(prob, Problem), task.prompt
    return prob


def render(prob: Problem, answer: str, tidy: bool) -> str:
    """The sim's reply carrying ``answer`` (its default wording where the solver has no renderer)."""
    if prob.render is not None:
        return prob.render(answer, tidy)
    return f"Let me work through it step by step.\nAnswer: {answer}" if tidy else f"I think the result is {answer}."


# ---- per domain: the forms the verifier accepts for one answer, and some it rejects -----------------

def _number_forms(task, answer: str) -> list[str]:
    v = int(answer)
    out = [f"Answer: {v}", f"{v}", f"Answer: {v}.0", f"The sum is {v}.", f"work...\nAnswer: **{v}**",
           f"Answer: {v}.000", f"I think the result is {v}.", f"Answer: {v}".replace("-", "−")]
    return out + ([f"Answer: {v:,}"] if abs(v) >= 1000 else [])


def _number_wrong(task) -> list[str]:
    v = int(task.answer)
    return [f"Answer: {v + 1}", f"Answer: {v - 1}", f"Answer: {-v if v else 1}", f"{v}1", "Answer: forty", "", "Answer:"]


def _algebra_forms(task, answer: str) -> list[str]:
    x = Fraction(answer)
    # a 4-significant-digit rounding does not pin down a fraction with a two-digit denominator:
    # its key is the simplest fraction it rounds, which need not be x (see envs.algebra._key_value)
    return [f for f in algebra_forms.equivalent(x) if f != f"Answer: x = {float(x):.4g}"]


def _units_forms(task, answer: str) -> list[str]:
    e, dst = float(answer.split()[0]), task.metadata["dst"]
    # a value within the 0.1% verify allows may round to a neighbouring 4-digit key: left out
    return [f for f in units_forms.equivalent(e, dst) if f != f"Answer: {e * (1 + 4e-4):.8g} {dst}"]


def _units_others(task) -> list[str]:
    m = task.metadata
    return units_forms.wrong(m["expected"], m["src"], m["dst"]) + [f"Answer: {m['expected'] * (1 + 4e-4):.8g} {m['dst']}"]


def _strings_wrong(task) -> list[str]:
    x = task.answer
    bad = [x.lower(), x.upper(), x.swapcase(), x[:-1] + x[-1].swapcase(), x + " x", x.replace(" ", "  ", 1),
           x.replace(" ", ""), x[:-1], task.metadata["text"], "", "Answer:", "Answer: ```"]
    return [r for b in bad if b != x for r in (f"Answer: {b}", b)]


def _assignment(answer: str) -> dict[str, bool]:
    pairs = [p.split("=") for p in answer.replace(" ", "").split(",")]
    return {p: k == "knight" for p, k in pairs}


def _logic_wrong(task) -> list[str]:
    good = {logic_forms.canon(a) for a in logic_forms.solutions(task)}
    people = task.metadata["people"]
    every = [dict(zip(people, v)) for v in itertools.product((True, False), repeat=len(people))]
    wrong = [a for a in every if logic_forms.canon(a) not in good]
    return [f for a in wrong for f in logic_forms.forms(a)[:3]] + ["Answer: " + ", ".join(people), "", "I have no idea."]


def _code_forms(task, code: str) -> list[str]:
    name = task.metadata["function"]
    return [f"```python\n{code}\n```", f"```\n{code}\n```", code, f"Here you go:\n\n```py\n{code}\n```\nIt runs in linear time.",
            f"```python\nprint('a first draft')\n```\nFinal version:\n```python\n{code}\n```\n```python\nprint({name}.__name__)\n```",
            "```python\r\n" + code.replace("\n", "\r\n") + "\n```", "```python\n" + code,
            "1. The function:\n\n    ```python\n" + "\n".join("    " + ln for ln in code.splitlines()) + "\n    ```",
            "```python\n" + "\n".join(ln + "   " for ln in code.splitlines()) + "\n```"]


def _recase(sql: str) -> str:
    """Letter case swapped outside string literals (keywords and identifiers are case-insensitive)."""
    return "".join(p if i % 2 else p.swapcase() for i, p in enumerate(re.split(r"('[^']*')", sql)))


def _sql_forms(task, sql: str) -> list[str]:
    layout = sql.replace(" FROM ", "\n  from ").replace(" WHERE ", "\nwhere ").replace(" GROUP BY ", "\n group   by ")
    return [f"```sql\n{sql}\n```", f"```\n{sql};\n```", f"Answer: {sql}", f"I would run this.\nAnswer: {_recase(sql)}",
            f"```sql\n-- my query\n{layout};\n```", f"```sql\n/* first */ {sql.replace(', ', ' ,  ')}\n```",
            f"```SQL\n{sql.replace('(', ' ( ').replace(')', ' ) ')}\n```"]


def _sql_wrong(task) -> list[str]:
    sql = task.answer
    return [f"```sql\n{sql} LIMIT 1\n```", f"```sql\n{sql.replace('SELECT ', 'SELECT id, ', 1)}\n```", "```sql\nSELECT 1\n```",
            "```sql\nDROP TABLE employees\n```", "", "no query"]


def _extraction_forms(task, answer: str) -> list[str]:
    ref, schema = json.loads(answer), task.metadata["schema"]
    alt, block = extraction_forms.restyle(ref, schema), extraction_forms.block
    return [answer, block(ref), f"```\n{json.dumps(ref, indent=4)}\n```", block(alt, indent=1),
            f"Here is the record:\n{json.dumps(alt)}\nAll fields come from the text.",
            f"Draft: {{\"x\": 1}}\nFinal answer: {json.dumps(ref)}", block(ref) + "\nNote: I kept {braces} out of the JSON.",
            "```json\n{oops\n```\n" + block(alt)]


def _extraction_wrong(task) -> list[str]:
    ref = json.loads(task.answer)
    first = next(iter(ref))
    return [extraction_forms.block(b) for b in ({}, {**ref, "notes": ""}, {k: v for k, v in ref.items() if k != first},
                                                {**ref, first: str(ref[first]) + "x"})] + ["", "{"]


def _pairs_wrong(task) -> list[str]:
    a, b = pairs_forms.pair(task.answer)
    return [f"Answer: a={a + 1}, b={b}", f"Answer: {a}, {b + 1}", f"Answer: a={a}.5, b={b}", f"Answer: a={a}", "Answer: 1, 2, 3", "", "No idea."]


def _countdown_wrong(task) -> list[str]:
    return [f"Answer: {b}" for b in countdown_forms.slips(task)] + [f"Answer: {task.answer} = 1", "No idea."]


def _lists_wrong(task) -> list[str]:
    return [f"Answer: {b}" for b in lists_forms.slips(task)]


FORMS = {"arithmetic": _number_forms, "tools": _number_forms, "algebra": _algebra_forms, "units": _units_forms,
         "strings": lambda task, x: strings_forms.equivalent_forms(x), "logic": lambda task, a: logic_forms.forms(_assignment(a)),
         "code": _code_forms, "sql": _sql_forms, "extraction": _extraction_forms,
         "pairs": lambda task, a: pairs_forms.forms(*pairs_forms.pair(a)),
         "countdown": lambda task, e: countdown_forms.forms(e, task.metadata["target"]),
         "lists": lambda task, a: lists_forms.forms(lists_forms.as_list(a))}
OTHERS = {"arithmetic": _number_wrong, "tools": _number_wrong,  # replies beyond the forms of a right answer
          "algebra": lambda task: algebra_forms.wrong(Fraction(task.answer)), "units": _units_others,
          "strings": _strings_wrong, "logic": _logic_wrong, "code": lambda task: ["", "no code here"],
          "sql": _sql_wrong, "extraction": _extraction_wrong, "pairs": _pairs_wrong, "countdown": _countdown_wrong,
          "lists": _lists_wrong}


def test_every_builtin_environment_has_its_own_key() -> None:
    assert set(DOMAINS) <= set(registry.available())
    for name in registry.available():
        assert type(registry.make(name)).canonical is not TextEnv.canonical, name


@pytest.mark.parametrize("name", DOMAINS)
def test_every_accepted_form_and_the_sims_renderings_of_an_answer_share_one_key(name: str) -> None:
    for env, task in tasks(name):
        prob = problem(env, task)
        answers = dict.fromkeys([task.answer, prob.answer])  # the sim may write another right answer (code, logic)
        keys = {}
        for answer in answers:
            replies = FORMS[name](task, answer) + [render(prob, answer, tidy) for tidy in (True, False)]
            found = {r: env.canonical(r) for r in replies}
            assert all(env.verify(task, r) for r in replies), (task.prompt, [r for r in replies if not env.verify(task, r)])
            assert len(set(found.values())) == 1, (task.prompt, found)
            keys[answer] = found[replies[0]]
        assert len(set(keys.values())) == len(keys), keys  # and a different right answer, another key
        right = set(keys.values())
        for m in prob.mistakes:
            for tidy in (True, False):
                assert env.canonical(render(prob, m, tidy)) not in right, (task.prompt, m)


@pytest.mark.parametrize("name", DOMAINS)
def test_replies_with_one_key_get_one_verdict(name: str) -> None:
    seeds = range(6) if name == "code" else SEEDS  # code: each distinct program costs a sandbox run
    checked = 0
    for env, task in tasks(name, seeds):
        prob = problem(env, task)
        replies = [r for a in dict.fromkeys([task.answer, prob.answer]) for r in FORMS[name](task, a)]
        replies += OTHERS[name](task) + [render(prob, m, tidy) for m in prob.mistakes for tidy in (True, False)]
        if prob.answer_words:
            replies.append("Answer: " + prob.answer_words(prob.answer))
        verdicts: dict[str, set[bool]] = defaultdict(set)
        for r in replies:
            verdicts[env.canonical(r)].add(env.verify(task, r))
        mixed = {k: v for k, v in verdicts.items() if len(v) > 1}
        assert not mixed, (task.prompt, mixed)
        assert {True, False} <= set().union(*verdicts.values())  # both kinds were seen
        checked += len(verdicts)
    assert checked > 5 * len(DIFFICULTIES) * len(seeds)


def _junk(n: int, seed: int) -> str:
    rng = random.Random(seed)
    alphabet = "abcXYZ 0123456789.,;:=-+*/()[]{}<>'\"`\n\t\\|#@!?é漢字🙂\u200b\x00"
    return "".join(rng.choice(alphabet) for _ in range(n))


GARBAGE = ["", " ", "\n\n", "\x00\x01", "Answer:", "Answer: ```", "```", "```python\n", "```json\n{", "{" * 5000,
           "[" * 5000 + "]" * 5000, "Answer: " + "9" * 5000, "Answer: 1e99999", "Answer: x = 1/0", "Answer: -",
           "é" * 10_000, "🙂" * 3000, "Answer: \u200b", _junk(10_000, 1), _junk(10_000, 2), "Answer:\n" + _junk(10_000, 3),
           "x" * 200_000]


@pytest.mark.parametrize("name", DOMAINS)
def test_garbage_gets_a_string_key_and_never_raises(name: str) -> None:
    fresh = registry.make(name)  # no task yet
    env = registry.make(name, difficulty=2)
    env.reset(seed=3)
    for e in (fresh, env):
        for text in GARBAGE:
            key = e.canonical(text)
            assert isinstance(key, str), (name, text[:40])
        assert e.canonical(None) == "" and e.canonical(123) == ""  # type: ignore[arg-type]
    if name in ("strings", "code"):  # any text is a reply's string or code: only an empty one is unreadable
        return
    for text in ("I give up.", "No idea, sorry"):  # nothing the domain can read: the generic key
        assert env.canonical(text) == normalize(final_answer(text)), (name, text)


def test_keys_read_the_domains_answer_not_the_prose() -> None:
    """The examples of the untidy replies the generic key got wrong."""
    want = {
        "arithmetic": [("I think the result is -18.", "-18"), ("Answer: -18.0", "-18"), ("Answer: 1,024", "1024")],
        "algebra": [("Collecting terms and dividing, I get x = 3", "x=3"), ("Answer: x = 6/4", "x=3/2"),
                    ("x ≈ 0.333333", "x=1/3"), ("Answer: x = 0.33", "x=33/100")],
        "units": [("Converting step by step, that comes to about 430.6 K", "430.6 K"), ("Answer: 12.50 metres", "12.5 m"),
                  ("Answer: 1.2 × 10^3 kilometres per hour", "1200 km/h")],
        "logic": [("So A is a knight, B is a knave and C is a knave.", "A=knight,B=knave,C=knave"),
                  ("Answer: c: KNAVE; b = knave, A is a knight", "A=knight,B=knave,C=knave")],
        "strings": [("Here is the transformed text:\n```\nCASTLE Garden\n```", "CASTLE Garden"), ("Answer: 'abc'.", "abc")],
        "sql": [("Here is the query:\n\n```sql\nSELECT name  FROM employees\n```", "select name from employees"),
                ("Answer: select NAME from Employees where dept = 'Sales';", "select name from employees where dept = 'Sales'")],
        "code": [("```python\ndef f(x):  \n    return x\n```", "def f(x):\n    return x")],
        "extraction": [('Here is what the text says: {"b": 2.0, "a": " Porto  CITY"}\nThat covers every field.', '{"a":"porto city","b":2}'),
                       ('```json\n{"a": [3, 1]}\n```', '{"a":[3,1]}')],
        "tools": [("The total is 1,250 cents.", "1250")],
        "pairs": [("I would take a = 15 and b = 5.", "a=15,b=5"), ("Answer: b: 5; A: 15.0", "a=15,b=5"), ("Answer: (15, 5)", "a=15,b=5")],
        "countdown": [("One way is (3 × 8) + 7 = 31", "3*8+7"), ("Answer: 31 = 7 + 8 \\times 3", "7+8*3"),
                      ("Answer: 3*8+7 = 30", "3*8+7=30"), ("Answer: 3-(8-7)", "3-(8-7)")],
        "lists": [("Checking the sum: 2 + 8 + 20 = 30", "2,8,20"), ("Answer: [2, 8 and 20].", "2,8,20"),
                  ("Answer: 2 + 8 + 20 = 31", "2,8,20=31")],
    }
    assert set(want) == set(DOMAINS)
    for name, cases in want.items():
        env = registry.make(name)
        for text, key in cases:
            assert env.canonical(text) == key, (name, text, env.canonical(text))


def test_the_current_task_supplies_what_its_prompt_fixes() -> None:
    """A bare number is in the unit asked for; the people are the puzzle's; the schema says which lists are unordered."""
    units = registry.make("units", difficulty=1)
    assert units.canonical("Answer: 12.5") == "12.5"
    units.reset(seed=0)
    num, dst = units.task.answer.split()
    assert units.canonical(f"Answer: {num}") == units.canonical(f"Answer: {num} {dst}") == units.task.answer
    ext = registry.make("extraction", difficulty=3)
    for seed in range(20):
        ext.reset(seed=seed)
        props = ext.task.metadata["schema"]["properties"]
        ref = json.loads(ext.task.answer)
        for k, s in props.items():
            if s["type"] == "array" and len(ref[k]) > 1:
                flipped = extraction_forms.block({**ref, k: ref[k][::-1]})
                same = ext.canonical(flipped) == ext.canonical(ext.task.answer)
                assert same is bool(s.get("x-unordered")) is ext.verify(ext.task, flipped), (k, s)


def test_stored_answers_are_the_environments_keys_and_agree_with_truth(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    envs = [agentsynth.EnvSpec(id=n, tasks=4 if n == "code" else 8, difficulty=1 if n == "code" else 2, max_turns=3,
                               feedback=["binary", "reference", "hint"]) for n in DOMAINS]
    spec = agentsynth.RunSpec(name="canonical", store=str(store), samples=3, concurrency=8, envs=envs)
    res = agentsynth.Runner(spec).run()
    assert res.ok == res.planned and res.errors == 0
    rows = q(store, """
        SELECT e.env_id, e.env_config, e.seed, e.task_id, m.content, m.answer, s.passed
        FROM messages m JOIN episodes e USING (episode_id)
        JOIN signals s ON s.episode_id = m.episode_id AND s.turn = m.turn AND s.role = 'truth'
        WHERE m.role = 'assistant' AND m.tool_calls IS NULL""")
    made: dict[tuple[str, str, int], TextEnv] = {}
    verdicts: dict[tuple[str, str], set[bool]] = defaultdict(set)
    accepted: dict[str, set[str]] = defaultdict(set)
    solutions: dict[str, int] = {}
    for env_id, cfg, seed, task_id, content, answer, passed in rows:
        if (env_id, cfg, seed) not in made:
            made[env_id, cfg, seed] = env = registry.make(env_id, **json.loads(cfg))
            env.reset(seed=seed)
        env = made[env_id, cfg, seed]
        assert answer == env.canonical(content), (env_id, content, answer)
        verdicts[task_id, answer].add(bool(passed))
        if passed:
            accepted[task_id].add(answer)
        solutions[task_id] = env.task.metadata.get("solutions", 1) if env_id != "code" else 10**6  # code: any program
    assert {e for e, _, _ in made} == set(DOMAINS) and len(rows) > 500
    assert not {k: v for k, v in verdicts.items() if len(v) > 1}  # one key, one verdict, on every task
    # no more accepted keys than right answers (logic may have several; pairs, countdown and lists many)
    assert not {t: keys for t, keys in accepted.items() if len(keys) > solutions[t]}
    assert sum(len(v) for v in accepted.values()) >= len(DOMAINS) * 4
