"""The extraction environment: seeding, the schema validator, the verifier's accepted
forms and near misses, the hint, the format score, the sim solver, and a short run through the
real runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsynth.signals import GradeContext
from agentsynth.sim.solvers import solve
from envs.extraction import ExtractionEnv, parse_json

from conftest import assert_runs_and_reference_helps, assert_seeded

SEEDS = range(20)


def tasks(difficulty: int):
    env = ExtractionEnv(feedback="hint", difficulty=difficulty)
    for seed in SEEDS:
        env.reset(seed=seed)
        yield env, env.task


def block(obj: object, **kw) -> str:
    return "```json\n" + json.dumps(obj, **kw) + "\n```"


def leaves(obj: object):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from leaves(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from leaves(v)
    else:
        yield obj


def restyle(obj: object, schema: dict) -> object:
    """The same facts written differently: keys reversed, strings re-cased and re-spaced,
    integers as floats, lists the schema calls unordered reversed."""
    t = schema["type"]
    if t == "object":
        return {k: restyle(obj[k], schema["properties"][k]) for k in reversed(list(obj))}
    if t == "array":
        return [restyle(x, schema["items"]) for x in (obj[::-1] if schema.get("x-unordered") else obj)]
    if t == "string" and schema.get("format") != "date":
        return "  " + obj.upper().replace(" ", "   ") + " "
    if t == "integer":
        return float(obj)
    return obj



def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(ExtractionEnv, (1, 2, 3), SEEDS, len(SEEDS))


def test_difficulty_scales_fields_and_nesting() -> None:
    kinds = set()
    for d in (1, 2, 3):
        for _, task in tasks(d):
            props = task.metadata["schema"]["properties"]
            types = sorted(s["type"] for s in props.values())
            assert len(props) == (3, 5, 6)[d - 1]
            assert (types.count("object"), types.count("array")) == ((1, 1) if d == 3 else (0, 0))
            assert task.answer == json.dumps(json.loads(task.answer), sort_keys=True, separators=(",", ":"))
            assert set(json.loads(task.answer)) == set(props)
            sentences = task.prompt.split("Text:\n")[1].split("\n\nJSON schema")[0].count(". ") + 1
            assert 2 <= sentences <= 7
            kinds.add(next(iter(props)))
    assert kinds == {"name", "title"}  # people and companies (name), events (title)


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_accepts_the_facts_in_every_form(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        ref, schema = json.loads(task.answer), task.metadata["schema"]
        alt = restyle(ref, schema)
        for reply in (
            task.answer, block(ref), f"```\n{json.dumps(ref, indent=4)}\n```", block(alt, indent=1),
            f"Here is the record:\n{json.dumps(alt)}\nAll fields come from the text.",
            f"Draft: {{\"x\": 1}}\nFinal answer: {json.dumps(ref)}",
            block(ref) + "\nNote: I kept {braces} out of the JSON.",
            "```json\n{oops\n```\n" + block(alt),
        ):
            assert env.verify(task, reply), (task.prompt, reply, env.hint(task, reply))


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_rejects_near_misses_and_the_hint_never_shows_a_value(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        ref, schema = json.loads(task.answer), task.metadata["schema"]
        props = schema["properties"]
        bad = [json.loads(m) for m in solve(task.prompt).mistakes] + [{}, [ref], {**ref, "notes": ""}]
        for k, s in props.items():
            v = ref[k]
            if s["type"] == "integer":
                bad += [{**ref, k: str(v)}, {**ref, k: f"{v:,}"}, {**ref, k: v + 0.5}, {**ref, k: v + 1}]
            elif s["type"] == "number":
                bad += [{**ref, k: str(v)}, {**ref, k: v + 0.01}, {**ref, k: None}]
            elif s["type"] == "boolean":
                bad += [{**ref, k: not v}, {**ref, k: str(v).lower()}, {**ref, k: int(v)}]
            elif s.get("format") == "date":
                y, mo, day = v.split("-")
                bad += [{**ref, k: f"{y}/{mo}/{day}"}, {**ref, k: f"{day}.{mo}.{y}"}, {**ref, k: f"{y}{mo}{day}"}]
                if mo != day:
                    bad.append({**ref, k: f"{y}-{day}-{mo}"})  # month and day swapped (maybe not a date at all)
            elif s["type"] == "string":
                bad += [{**ref, k: v.split()[0] if " " in v else v + "s"}, {**ref, k: [v]}]
            elif s["type"] == "object":
                inner = next(iter(v))
                bad += [{**ref, k: {**v, "extra": 1}}, {**ref, k: {x: y for x, y in v.items() if x != inner}}, {**ref, k: list(v.values())}]
            elif s["type"] == "array":
                bad += [{**ref, k: v[:-1]}, {**ref, k: v + [v[0]]}, {**ref, k: ", ".join(v)}]
                if not s.get("x-unordered"):
                    bad.append({**ref, k: v[::-1]})  # the order the text gives matters here
                    assert env.hint(task, block(bad[-1])) == f"wrong value in '{k}' (right items, wrong order)."
        values = {str(x) for x in leaves(ref) if not isinstance(x, bool) and len(str(x)) >= 3}
        values |= {f"{x:,}" for x in leaves(ref) if isinstance(x, int) and not isinstance(x, bool)}
        for b in bad:
            for reply in (block(b), json.dumps(b)):
                assert not env.verify(task, reply), (task.prompt, reply)
                hint = env.hint(task, reply)
                assert isinstance(hint, str) and hint and not any(v in hint for v in values), (hint, values)


def test_hint_names_the_field_and_what_is_wrong_with_it() -> None:
    env = ExtractionEnv(feedback="hint", difficulty=3)
    seen = set()
    for seed in range(40):
        env.reset(seed=seed)
        task = env.task
        ref = json.loads(task.answer)
        obj = next(k for k, s in task.metadata["schema"]["properties"].items() if s["type"] == "object")
        inner = next(iter(task.metadata["schema"]["properties"][obj]["properties"]))
        assert env.hint(task, block({k: v for k, v in ref.items() if k != obj})) == f"field '{obj}' is missing."
        assert env.hint(task, block({**ref, obj: {**ref[obj], "zz": 1}})) == f"field '{obj}.zz' is not in the schema."
        assert env.hint(task, block({**ref, obj: {**ref[obj], inner: "x" * 30}})) == f"wrong value in '{obj}.{inner}'."
        assert env.hint(task, block({**ref, obj: 3})) == f"field '{obj}' should be a JSON object."
        assert env.hint(task, "no json") == "no JSON object found: put it in a ```json fenced block."
        for k, s in task.metadata["schema"]["properties"].items():
            if s.get("format") == "date":
                assert env.hint(task, block({**ref, k: "March 4, 1987"})) == f"field '{k}' is not a date in YYYY-MM-DD form."
                seen.add("date")
            if s["type"] == "integer":
                assert env.hint(task, block({**ref, k: "12"})) == f"field '{k}' has the wrong type (expected an integer)."
                seen.add("integer")
            if s["type"] == "array":
                assert env.hint(task, block({**ref, k: [1]})) == f"field '{k}[0]' has the wrong type (expected a string)."
        two = [k for k, s in task.metadata["schema"]["properties"].items() if s["type"] == "string" and "format" not in s][:2]
        if len(two) == 2:
            assert env.hint(task, block({**ref, two[0]: "zz zz", two[1]: "zz zz"})) == f"wrong value in '{two[0]}', '{two[1]}'."
            seen.add("two")
    assert seen == {"date", "integer", "two"}


def test_verify_and_hint_survive_garbage() -> None:
    env = ExtractionEnv(feedback="hint", difficulty=3)
    env.reset(seed=1)
    for junk in ("", "   ", "{", "}", "{" * 100_000, '{"a":' * 20_000, "[" * 100_000, "```json\n" + "[" * 50_000 + "\n```",
                 "x" * 1_000_000, "\u2603" * 50, "\x00", "null", "[]", '{"name": 1e999}', '{"name": NaN}',
                 '{"revenue_usd": 1' + "0" * 400 + "}", '"just a string"', "```json\n```"):
        assert env.verify(env.task, junk) is False
        assert isinstance(env.hint(env.task, junk), str)
    assert env.verify(env.task, None) is False  # type: ignore[arg-type]
    assert parse_json('{"a": 1} and then {"b": 2}') == {"b": 2}
    assert parse_json('{"a": {"b": 1}}') == {"a": {"b": 1}}
    assert parse_json('[{"a": 1}]') is None and parse_json('{"a": 1} as the text says [1]') == {"a": 1}
    assert parse_json('```json\n{"a": 1}\n```\nAnswer: {"a": 2}.') == {"a": 2}  # the last mark's object
    assert parse_json('```json\n{"a": 1}\n```\n\\boxed{{"a": {"b": 3}}}') == {"a": {"b": 3}}
    assert parse_json('```json\n{"a": 1}\n```\nAnswer: the object above.') == {"a": 1}
    assert parse_json('```json\n{"a": 1}\n```\nAnswer: {oops}') is None  # a broken final answer is not rescued


def test_format_score_is_schema_validity_not_correctness() -> None:
    env = ExtractionEnv(difficulty=2)
    env.reset(seed=2)
    fmt = env.graders["format"]
    st = fmt.signal_type
    assert (st.source, st.openness, st.meta_level, st.task_relevant) == ("rubric", "open", 0, False)
    ref = json.loads(env.task.answer)
    wrong = {k: ("zz" if isinstance(v, str) and "-" not in v else v) for k, v in ref.items()}
    for reply, ok in ((block(ref), True), (block(wrong), True), (block({**ref, "x": 1}), False), (block({}), False), ("none", False)):
        assert fmt.grade(GradeContext(env.task, reply, (), 1)).passed is ok, reply
    assert not env.verify(env.task, block(wrong))


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_sim_solver_extracts_the_facts_and_its_mistakes_fail(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "extraction" and prob.answer == task.answer
        assert prob.difficulty == (1.0, 1.5, 2.0)[difficulty - 1]
        for tidy in (True, False):
            reply = prob.render(prob.answer, tidy)
            assert env.verify(task, reply) and prob.extract(reply) == prob.answer
        assert len(prob.mistakes) >= 3 and task.answer not in prob.mistakes
        for m in prob.mistakes:
            assert not env.verify(task, prob.render(m, True)) and not env.verify(task, prob.render(m, False)), m
        props = task.metadata["schema"]["properties"]
        first = env.hint(task, prob.render(prob.mistakes[0], True))  # the favourite slip: a value in the wrong form
        if any(s.get("format") == "date" for s in props.values()):
            assert "YYYY-MM-DD" in first
        elif any(s["type"] in ("integer", "number") for s in props.values()):
            assert "wrong type" in first or "wrong value" in first
    assert solve("Compute the value of: 1 + 2").domain != "extraction"


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.extraction:ExtractionEnv", "extraction")
