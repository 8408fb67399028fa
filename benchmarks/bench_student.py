"""The student on this machine: training speed, the learning curve, sampling speed, memory.

Default run (about 10 minutes): a base student as ``agentsynth student init`` builds it
(difficulty-1 arithmetic references, the default model and settings) trained for ``--minutes``;
along the way, at each ``--evals`` mark (minutes of training, evaluation time excluded), greedy
accuracy on ``--held-out`` held-out tasks (seeds from 1,000,000,000 up) graded by the environment's
own ``verify``, on all of them and on those whose task is not in the training set (a small task
space: difficulty-1 arithmetic has ~16k distinct tasks). Then, with the final model: ``--k``
samples at temperature 1 for every held-out prompt (samples/s, share of correct samples, pass@k);
one verifier-selected round (sample, keep what the environment verifies, fine-tune ``--round-steps``
steps, held-out accuracy before and after); and a real run (``Runner``, ``model = "student:PATH"``, concurrency 32) of the held-out tasks
(episodes/s through the batching ChatModel). Peak RSS at the end.

    python benchmarks/bench_student.py                          # --minutes 8 --evals 1,2,4,6,8
    python benchmarks/bench_student.py --minutes 3 --evals 1,2,3 --width 128 --layers 4 --batch-size 128 --lr 3e-3
    python benchmarks/bench_student.py --speed                  # training tokens/s: threads, widths
    python benchmarks/bench_student.py --tokenizer              # tokens per prompt/reply by domain and vocabulary

The machine may be shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import agentsynth.student  # noqa: E402,F401 - sets OMP_WAIT_POLICY before torch loads


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def held_out(env_name: str, difficulty: int, n: int):  # noqa: ANN201
    from agentsynth.registry import resolve
    from agentsynth.spec import EVAL_SEED_START

    env = resolve(env_name).cls(difficulty=difficulty, max_turns=1)
    tasks = []
    for s in range(EVAL_SEED_START, EVAL_SEED_START + n):
        env.reset(seed=s)
        tasks.append(env.task)
    return env, tasks


def accuracy(model, env, tasks, train_ids: set[str]) -> tuple[float, float, int, float]:  # noqa: ANN001
    """(accuracy on all, on tasks not trained on, how many those are, seconds)."""
    t = time.perf_counter()
    replies = model.generate([[{"role": "user", "content": tk.prompt}] for tk in tasks], max_tokens=32)
    dt = time.perf_counter() - t
    ok = [env.verify(tk, r[0].text) for tk, r in zip(tasks, replies)]
    unseen = [o for o, tk in zip(ok, tasks) if tk.task_id not in train_ids]
    return sum(ok) / len(ok), sum(unseen) / max(1, len(unseen)), len(unseen), dt


def curve(args: argparse.Namespace) -> None:
    from agentsynth.student import StudentModel, TrainConfig, reference_examples, train
    from agentsynth.student.build import build_tokenizer, new_student

    print(_load())
    t = time.perf_counter()
    examples = reference_examples([args.env], difficulty=args.difficulty, tasks=args.tasks)
    tok = build_tokenizer(examples, vocab_size=args.vocab)
    student = new_student(tok, seed=args.seed, width=args.width, layers=args.layers, heads=args.heads, threads=args.threads)
    train_ids = {e.task_id for e in examples if e.task_id}
    env, tasks = held_out(args.env, args.difficulty, args.held_out)
    chat = StudentModel(student, name="bench")
    print(f"data + tokenizer {time.perf_counter() - t:.1f}s: {len(examples)} examples ({len(train_ids)} distinct tasks), "
          f"vocab {tok.vocab_size}, {student.model.n_params():,} parameters, threads {args.threads or os.cpu_count()}")
    marks = [float(x) for x in args.evals.split(",")]
    spent = {"eval": 0.0}
    rows = []

    def on_progress(p) -> None:  # noqa: ANN001
        train_min = (p.elapsed_s - spent["eval"]) / 60
        if marks and train_min >= marks[0] or p.step == p.steps:
            while marks and train_min >= marks[0]:
                marks.pop(0)
            acc, acc_u, n_u, dt = accuracy(chat, env, tasks, train_ids)
            student.model.train()
            spent["eval"] += dt
            rows.append((train_min, p.step, p.loss, p.tokens_per_s, acc, acc_u, n_u))
            print(f"  {train_min:5.2f} min  step {p.step:5d}  loss {p.loss:.3f}  {p.tokens_per_s:7.0f} tok/s  "
                  f"held-out greedy {100 * acc:5.1f}%  not trained on {100 * acc_u:5.1f}% (n={n_u})  [{_load()}]", flush=True)

    cfg = TrainConfig(minutes=args.minutes, lr=args.lr, batch_size=args.batch_size, seed=args.seed, threads=args.threads,
                      warmup=args.warmup)
    report = train(student.model, tok, examples, cfg, on_progress=on_progress)
    print(f"trained {report.steps} steps in {report.wall_s / 60:.2f} min (evaluations included), "
          f"final loss {report.final_loss:.3f}, {report.tokens_per_s:,.0f} tokens/s over the run")
    if args.curve_only:
        print(f"peak RSS {_peak_mb():.0f} MB")
        return

    t = time.perf_counter()
    samples = chat.generate([[{"role": "user", "content": tk.prompt}] for tk in tasks], n=args.k, temperature=1.0,
                            seed=0, max_tokens=32)
    dt = time.perf_counter() - t
    good = [[env.verify(tk, s.text) for s in ss] for tk, ss in zip(tasks, samples)]
    n = sum(len(g) for g in good)
    print(f"sampling: {len(tasks)} prompts x {args.k} at T=1 in {dt:.1f}s ({n / dt:,.0f} samples/s); "
          f"{100 * sum(map(sum, good)) / n:.1f}% of samples correct, pass@{args.k} {100 * sum(map(any, good)) / len(good):.1f}% "
          f"[{_load()}]")

    if args.round_steps:
        one_round(args, student, chat, env, tasks, train_ids, examples)

    with tempfile.TemporaryDirectory(prefix="agentsynth-bench-student-") as tmp:
        student.save(Path(tmp) / "ckpt", {"parent": None, "data": {"source": "bench"}, "training": report.to_dict()})
        from agentsynth import EnvSpec, RunSpec
        from agentsynth.runner import Runner

        spec = RunSpec(name="bench-student", model=f"student:{tmp}/ckpt", store=f"{tmp}/s.duckdb", temperature=0.0,
                       concurrency=32, envs=[EnvSpec(id=args.env, tasks=args.held_out, difficulty=args.difficulty,
                                                     max_turns=1, feedback="none")])
        t = time.perf_counter()
        res = Runner(spec).run()
        dt = time.perf_counter() - t
        print(f"runner (student:PATH in process, concurrency 32, greedy, seeds 0..{args.held_out - 1}): {res.ok} episodes in {dt:.1f}s "
              f"({res.ok / dt:.0f} episodes/s), pass rate {100 * (res.first_pass_rate or 0):.1f}% [{_load()}]")
    print(f"peak RSS {_peak_mb():.0f} MB")


def one_round(args: argparse.Namespace, student, chat, env, tasks, train_ids: set[str], base_examples) -> None:  # noqa: ANN001
    """One verifier-selected round, as the loop will run it: sample ``--k`` replies at T=1 for
    ``--round-tasks`` fresh training-range tasks, keep the ones the environment verifies, fine-tune
    a copy ``--round-steps`` steps at each of ``--round-lrs`` (``agentsynth train``'s default is
    3e-4) with each ``--round-replays`` fraction of the base's data, and measure held-out greedy
    accuracy before and after."""
    import copy

    from agentsynth.student import Example, StudentModel, TrainConfig, train
    from agentsynth.student.checkpoint import Student

    t = time.perf_counter()
    pool = []
    for s in range(args.tasks, args.tasks + args.round_tasks):  # seeds the base did not train on
        env.reset(seed=s)
        pool.append(env.task)
    prompts = [[{"role": "user", "content": tk.prompt}] for tk in pool]
    samples = chat.generate(prompts, n=args.k, temperature=1.0, seed=1, max_tokens=32)
    kept = [Example(p, r.text) for p, tk, rs in zip(prompts, pool, samples) for r in rs if env.verify(tk, r.text)]
    before = accuracy(chat, env, tasks, train_ids)
    print(f"one verifier-selected round: {len(kept)} of {len(pool) * args.k} samples kept "
          f"({time.perf_counter() - t:.1f}s); held-out greedy before {100 * before[0]:.1f}% "
          f"(not trained on {100 * before[1]:.1f}%)")
    for lr in (float(x) for x in args.round_lrs.split(",")):
        for replay in (float(x) for x in args.round_replays.split(",")):
            child = Student(copy.deepcopy(student.model), student.tokenizer, {})
            t = time.perf_counter()
            train(child.model, child.tokenizer, kept, TrainConfig(steps=args.round_steps, lr=lr, warmup=10, seed=1,
                                                                  replay=replay), replay=base_examples if replay else ())
            t_train = time.perf_counter() - t
            after = accuracy(StudentModel(child, name="child"), env, tasks, train_ids)
            print(f"  {args.round_steps} steps at lr {lr:g}, replay {replay:g} ({t_train:.1f}s): held-out greedy "
                  f"{100 * after[0]:.1f}% ({100 * (after[0] - before[0]):+.1f}), not trained on {100 * after[1]:.1f}% "
                  f"({100 * (after[1] - before[1]):+.1f}) [{_load()}]", flush=True)


def speed(args: argparse.Namespace) -> None:
    import torch

    from agentsynth.student import TrainConfig, reference_examples, train
    from agentsynth.student.build import build_tokenizer, new_student

    examples = reference_examples(["arithmetic"], difficulty=1, tasks=5000)
    tok = build_tokenizer(examples)
    for width, layers in ((96, 3), (128, 4), (64, 3)):
        for threads in (1, 2):
            student = new_student(tok, width=width, layers=layers, threads=threads)
            r = train(student.model, tok, examples, TrainConfig(steps=args.steps, threads=threads, batch_size=args.batch_size))
            print(f"width {width} layers {layers}: {student.model.n_params():,} params, {threads} thread(s): "
                  f"{r.tokens_per_s:,.0f} tokens/s ({r.wall_s / r.steps * 1000:.0f} ms/step of {args.batch_size}) [{_load()}]", flush=True)
    print(f"torch {torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")


def tokenizer(args: argparse.Namespace) -> None:
    from agentsynth.student import StudentTokenizer, reference_examples
    from agentsynth.student.build import TOKENIZER_ENVS, tokenizer_corpus

    corpus = tokenizer_corpus()
    held = {e: reference_examples([e], difficulty=2, tasks=50, seed_start=500_000) for e in TOKENIZER_ENVS}
    print("mean tokens per prompt / reply (difficulty 2, 50 tasks each), by vocabulary size; characters for scale")
    print("vocab  " + "  ".join(f"{e:>13}" for e in TOKENIZER_ENVS))
    chars = {e: (sum(len(x.messages[0]["content"]) for x in v) / len(v), sum(len(x.reply) for x in v) / len(v))
             for e, v in held.items()}
    print("chars  " + "  ".join(f"{p:6.0f}/{r:<6.0f}" for p, r in chars.values()))
    for vs in (512, 1024, 2048, 4096):
        tok = StudentTokenizer.train(corpus, vs)
        cells = []
        for v in held.values():
            p = sum(len(tok.encode(x.messages[0]["content"])) for x in v) / len(v)
            r = sum(len(tok.encode(x.reply)) for x in v) / len(v)
            cells.append(f"{p:6.0f}/{r:<6.0f}")
        print(f"{vs:5d}  " + "  ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", action="store_true", help="training tokens/s by threads and width")
    ap.add_argument("--tokenizer", action="store_true", help="sequence lengths by domain and vocabulary size")
    ap.add_argument("--env", default="arithmetic")
    ap.add_argument("--difficulty", type=int, default=1)
    ap.add_argument("--tasks", type=int, default=20_000, help="training tasks (seeds 0..)")
    ap.add_argument("--held-out", type=int, default=500)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--evals", default="1,2,4,6,8", help="minutes of training at which to evaluate")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=16, help="samples per prompt in the sampling measurement")
    ap.add_argument("--steps", type=int, default=30, help="--speed: steps per measurement")
    ap.add_argument("--curve-only", action="store_true", help="only the learning curve (no sampling or runner measurement)")
    ap.add_argument("--round-tasks", type=int, default=2000, help="tasks sampled in the verifier-selected round")
    ap.add_argument("--round-steps", type=int, default=200, help="fine-tuning steps of that round (0: skip it)")
    ap.add_argument("--round-lrs", default="1e-3,3e-4", help="learning rates tried in that round")
    ap.add_argument("--round-replays", default="0,0.5", help="replay fractions (of the base's data) tried in that round")
    args = ap.parse_args()
    if args.tokenizer:
        tokenizer(args)
    elif args.speed:
        speed(args)
    else:
        curve(args)


if __name__ == "__main__":
    main()
