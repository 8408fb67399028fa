"""The student's tokenizer and chat template: exact round trips on every domain's prompts and
reference replies; the reference replies themselves pass each environment's truth and form checks."""

from __future__ import annotations

import agentsynth.student  # noqa: F401 - first, so its OpenMP setting precedes torch's load
import pytest

pytest.importorskip("tokenizers")

from agentsynth.registry import resolve  # noqa: E402
from agentsynth.signals import GradeContext  # noqa: E402
from agentsynth.student import StudentTokenizer, reference_examples  # noqa: E402
from agentsynth.student.build import TOKENIZER_ENVS, build_tokenizer  # noqa: E402
from agentsynth.student.template import END, ROLE_TOKENS, render_text  # noqa: E402

# seeds the tokenizer was not trained on
SEED_START = 123_456


@pytest.fixture(scope="module")
def tok() -> StudentTokenizer:
    return build_tokenizer(reference_examples(["arithmetic"], difficulty=1, tasks=100))


@pytest.mark.parametrize("env_name", TOKENIZER_ENVS)
def test_round_trip_on_every_domain(tok: StudentTokenizer, env_name: str) -> None:
    for difficulty in (1, 2, 3, 5):
        for ex in reference_examples([env_name], difficulty=difficulty, tasks=15, seed_start=SEED_START):
            prompt = ex.messages[0]["content"]
            for text in (prompt, ex.reply):
                ids = tok.encode(text)
                assert tok.decode(ids) == text
                assert all(i >= len(ROLE_TOKENS) + 2 for i in ids)  # plain text never yields a special token
            ids = tok.encode_prompt(ex.messages) + tok.encode_reply(ex.reply)
            assert tok.decode(ids) == render_text(ex.messages, ex.reply)
            assert tok.decode_reply(tok.encode_reply(ex.reply)) == ex.reply


def test_round_trip_on_awkward_text(tok: StudentTokenizer) -> None:
    for text in ["", " ", "  two  spaces ", "\n\n\t", "tab\tand\r\nCRLF", "m³ µs °C – “quotes” naïve 日本語 🙂",
                 "x = -1/7", "0.000123", "1,234,567", "   leading", "trailing   ", "a\u0000b"]:
        assert tok.decode(tok.encode(text)) == text


def test_digits_are_single_tokens(tok: StudentTokenizer) -> None:
    ids = tok.encode("Answer: 407")
    assert [tok.decode([i]) for i in ids[-3:]] == ["4", "0", "7"]


def test_template_layout_and_special_ids(tok: StudentTokenizer) -> None:
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 3?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
             "function": {"name": "price_lookup", "arguments": "{\"item\": \"valve\"}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "2370"}]
    text = render_text(msgs, "Answer: 5")
    assert text == ("<|system|>Be brief.<|end|><|user|>2 + 3?<|end|><|assistant|>"
                    '{"tool_calls": [{"name": "price_lookup", "arguments": "{\\"item\\": \\"valve\\"}"}]}<|end|>'
                    "<|tool|>2370<|end|><|assistant|>Answer: 5<|end|>")
    assert tok.decode(tok.encode_prompt(msgs) + tok.encode_reply("Answer: 5")) == text
    assert tok.encode_reply("Answer: 5")[-1] == tok.end_id == tok.special[END] == 1 and tok.pad_id == 0
    with pytest.raises(ValueError, match="role 'robot'"):
        tok.encode_prompt([{"role": "robot", "content": "hi"}])


def test_tokenizer_is_deterministic_and_saves(tok: StudentTokenizer, tmp_path) -> None:  # noqa: ANN001
    again = build_tokenizer(reference_examples(["arithmetic"], difficulty=1, tasks=100))
    assert again.to_str() == tok.to_str()
    tok.save(tmp_path / "tokenizer.json")
    loaded = StudentTokenizer.load(tmp_path / "tokenizer.json")
    assert loaded.encode("Compute 12 * 3") == tok.encode("Compute 12 * 3") and loaded.vocab_size == tok.vocab_size


@pytest.mark.parametrize("env_name", TOKENIZER_ENVS)
def test_reference_reply_passes_truth_and_form(env_name: str) -> None:
    env = resolve(env_name).cls(max_turns=1)
    form = [g for g in env.all_graders().values() if g.signal_type.source == "rubric" and not g.signal_type.task_relevant]
    assert form, f"{env_name} has no form check"
    for difficulty in (1, 3):
        env = resolve(env_name).cls(max_turns=1, difficulty=difficulty)
        for seed in range(SEED_START, SEED_START + 10):
            env.reset(seed=seed)
            reply = env.reference_reply(env.task)
            assert env.verify(env.task, reply), (env_name, seed, reply)
            for g in form:
                assert g.grade(GradeContext(env.task, reply, (), 1)).passed is True, (env_name, g.name, reply)
