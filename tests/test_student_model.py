"""The student's training and sampling are deterministic; sampling is batched without changing
what any request gets; the ChatModel batches concurrent calls."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import agentsynth.student  # noqa: F401 - first, so its OpenMP setting precedes torch's load
import pytest

torch = pytest.importorskip("torch")

from agentsynth.student import StudentModel, TrainConfig, reference_examples  # noqa: E402
from agentsynth.student.build import build_tokenizer, new_student  # noqa: E402
from agentsynth.student.sampling import Request, generate  # noqa: E402
from agentsynth.student.training import lr_at, train  # noqa: E402

EXAMPLES = reference_examples(["arithmetic", "strings"], difficulty=1, tasks=200)
PROMPTS = [ex.messages for ex in reference_examples(["arithmetic", "strings"], difficulty=2, tasks=6, seed_start=777)]


@pytest.fixture(scope="module")
def tokenizer():  # noqa: ANN201
    return build_tokenizer(EXAMPLES)


def trained(tokenizer, seed: int, steps: int = 12):  # noqa: ANN001, ANN201
    s = new_student(tokenizer, seed=seed, width=48, layers=2, heads=4, context=160)
    report = train(s.model, tokenizer, EXAMPLES, TrainConfig(steps=steps, batch_size=24, seed=seed, lr=3e-3, warmup=4))
    return s, report


def weights_hash(model) -> str:  # noqa: ANN001
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def texts(student, temperature: float, seed: int, n: int = 3) -> list[list[str]]:  # noqa: ANN001
    return [[r.text for r in rs] for rs in StudentModel(student).generate(PROMPTS, n=n, temperature=temperature, seed=seed,
                                                                          max_tokens=24)]


def test_same_seed_same_weights_and_samples(tokenizer, tmp_path: Path) -> None:  # noqa: ANN001
    a, ra = trained(tokenizer, seed=1)
    b, rb = trained(tokenizer, seed=1)
    c, _ = trained(tokenizer, seed=2)
    assert weights_hash(a.model) == weights_hash(b.model) != weights_hash(c.model)
    assert ra.final_loss == rb.final_loss and ra.steps == rb.steps == 12
    assert texts(a, 1.0, seed=5) == texts(b, 1.0, seed=5)
    assert texts(a, 1.0, seed=5) != texts(a, 1.0, seed=6)  # the seed matters
    assert texts(a, 0.0, seed=5) == texts(b, 0.0, seed=9)  # greedy: no randomness
    greedy = texts(a, 0.0, seed=5)
    assert all(len(set(rs)) == 1 for rs in greedy)  # every greedy sample of a prompt is the same
    # the checkpoint id is the weights' content: the same training writes the same id
    a.save(tmp_path / "a", {"parent": None})
    b.save(tmp_path / "b", {"parent": None})
    assert a.id == b.id and a.id.startswith("s-")


def test_a_request_gets_the_same_replies_whatever_it_is_batched_with(tokenizer) -> None:  # noqa: ANN001
    s, _ = trained(tokenizer, seed=3)
    end = s.tokenizer.end_id
    reqs = [Request(s.tokenizer.encode_prompt(p), n=4, temperature=1.0, seed=100 + i, max_tokens=20) for i, p in enumerate(PROMPTS)]
    together = generate(s.model, reqs, end_id=end)
    alone = [generate(s.model, [r], end_id=end)[0] for r in reqs]
    assert [[x.ids for x in xs] for xs in together] == [[x.ids for x in xs] for xs in alone]
    assert len({tuple(x.ids) for xs in together for x in xs}) > len(PROMPTS)  # samples differ at temperature 1
    for xs, r in zip(together, reqs):
        assert all(x.prompt_tokens == len(r.prompt) and len(x.ids) <= 20 for x in xs)
        assert all(x.finish_reason in ("stop", "length") for x in xs)
        assert all(x.finish_reason == "stop" or len(x.ids) == 20 for x in xs)


def test_long_prompts_are_cut_from_the_left_to_fit_the_context(tokenizer) -> None:  # noqa: ANN001
    s, _ = trained(tokenizer, seed=3, steps=1)
    long_prompt = [{"role": "user", "content": "word " * 400}]
    [[r]] = StudentModel(s).generate([long_prompt], max_tokens=10)
    assert r.prompt_tokens <= s.model.cfg.context - 10 and r.completion_tokens <= 10


def test_chat_model_batches_concurrent_calls(tokenizer) -> None:  # noqa: ANN001
    s, _ = trained(tokenizer, seed=4)
    model = StudentModel(s)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(32)]

    async def calls() -> list:
        try:
            return await asyncio.gather(*[model.complete(p, temperature=1.0, seed=i, max_tokens=16)
                                          for i, p in enumerate(prompts)])
        finally:
            await model.aclose()

    got = asyncio.run(calls())
    assert model.batches < 8  # 32 concurrent calls, a handful of batched generations
    alone = [model.generate([p], n=1, temperature=1.0, seed=i, max_tokens=16)[0][0].text for i, p in enumerate(prompts)]
    assert [c.message["content"] for c in got] == alone
    assert all(c.message["role"] == "assistant" and c.prompt_tokens > 0 and c.completion_tokens >= 1 for c in got)

    async def n_choices() -> tuple:
        try:
            return await model.choices(PROMPTS[0], n=5, temperature=1.0, seed=1, max_tokens=16)
        finally:
            await model.aclose()

    choices, prompt_tokens = asyncio.run(n_choices())  # a second event loop: the model follows it
    assert len(choices) == 5 and prompt_tokens == len(s.tokenizer.encode_prompt(PROMPTS[0]))
    assert [c.message["content"] for c in choices] == [r.text for r in model.generate([PROMPTS[0]], n=5, temperature=1.0,
                                                                                      seed=1, max_tokens=16)[0]]


def test_learning_rate_schedule() -> None:
    cfg = TrainConfig(steps=100, lr=1e-3, warmup=10, min_lr_ratio=0.1)
    lrs = [lr_at(i, 100, cfg) for i in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] == pytest.approx(1e-4, rel=0.05)


def test_training_lowers_the_reply_loss(tokenizer) -> None:  # noqa: ANN001
    from agentsynth.student.data import encode_examples, pad_batch

    enc, _ = encode_examples(tokenizer, EXAMPLES[:64], 160)
    x, y = (torch.from_numpy(a) for a in pad_batch(enc, tokenizer.pad_id))
    s = new_student(tokenizer, seed=5, width=48, layers=2, heads=4, context=160)
    with torch.no_grad():
        before = s.model.loss(x, y).item()
    report = train(s.model, tokenizer, EXAMPLES, TrainConfig(steps=120, batch_size=24, seed=5, lr=3e-3, warmup=4))
    with torch.no_grad():
        after = s.model.loss(x, y).item()
    assert before > 6.0 and after < before - 3.0 and report.final_loss < before - 3.0
    assert report.tokens > 0 and report.tokens_per_s > 0 and report.examples == len(EXAMPLES) and report.steps == 120
