"""The student's commands: ``agentsynth student init``, ``agentsynth student info`` and
``agentsynth train`` (registered on the main command group in :mod:`agentsynth.cli`).

Bad input (a missing or corrupt checkpoint, an unknown export, a non-empty --out) prints one line
and exits 2; nothing is written then.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..store import DEFAULT_STORE
from .common import EXIT_BAD_INPUT, fail, spec_envs
from .progress import Bar

DEFAULT_INIT_MINUTES = 8.0
DEFAULT_TRAIN_STEPS = 200
DEFAULT_TRAIN_LR = 3e-4


def _fail(message: str) -> None:
    fail(message, EXIT_BAD_INPUT)


def _env_names(items: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(p.strip() for item in items for p in item.split(",") if p.strip()))


class _Bar:
    """The progress of a training run: steps, loss, tokens/s."""

    def __init__(self, title: str, enabled: bool):
        self.bar = Bar(title, enabled, ["loss {task.fields[loss]}", "{task.fields[speed]}"], every=0.2)

    def __call__(self, p: Any) -> None:
        self.bar.update(p.step, p.steps, loss=f"{p.loss:.3f}", speed=f"{p.tokens_per_s:,.0f} tok/s")

    def stop(self) -> None:
        self.bar.stop()


def _train_config(steps: int | None, minutes: float | None, default_minutes: float | None, **kw: Any) -> Any:
    from ..student.config import TrainConfig

    if steps is None and minutes is None:
        minutes = default_minutes
    try:
        return TrainConfig(steps=steps, minutes=None if steps is not None else minutes,
                           **{k: v for k, v in kw.items() if v is not None})
    except ValueError as exc:
        _fail(str(exc))


def _summary(student: Any) -> str:
    m = student.manifest
    t = m["training"]
    return (f"wrote student {m['id']} to {student.path}: {m['weights']['params']:,} parameters, {t['steps']} steps, "
            f"final loss {t['final_loss']:.3f}, {t['tokens_per_s']:,.0f} tokens/s, {t['wall_s'] / 60:.1f} min")


@click.group("student")
def student() -> None:
    """The student: a small transformer trained from scratch on CPU (needs the learn extra).

    \b
    agentsynth student init --envs arithmetic --difficulty 1 --out ckpt0/
    agentsynth train --export x-1a2b3c4d5e6f --base ckpt0/ --out ckpt1/
    agentsynth eval --model student:ckpt1/ --envs arithmetic --difficulty 1
    """


@student.command("init")
@click.option("--envs", "env_lists", multiple=True, metavar="ENVS",
              help="Environments whose reference answers it learns: repeat, or comma-separate.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), metavar="SPEC",
              help="Learn the environments of this run spec, with their kwargs (a task set's column mapping); "
                   "with --envs, only those of them.")
@click.option("--difficulty", default=1, show_default=True, type=click.IntRange(1, 10))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New checkpoint directory.")
@click.option("--tasks", default=20_000, show_default=True, type=click.IntRange(1, 10_000_000),
              help="Tasks per environment (seeds 0.., the synthesis range).")
@click.option("--steps", type=click.IntRange(1, None), help="Training steps (default: as many as --minutes allow).")
@click.option("--minutes", type=click.FloatRange(0, None, min_open=True),
              help=f"Training time budget (default {DEFAULT_INIT_MINUTES:g} when --steps is not given).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the weights and the data order.")
@click.option("--lr", type=float, help="Peak learning rate (default 2e-3).")
@click.option("--batch-size", type=click.IntRange(1, None), help="Sequences per step (default 64).")
@click.option("--threads", type=click.IntRange(1, None), help="Torch threads (default: the machine's cores).")
@click.option("--width", default=96, show_default=True, type=click.IntRange(8, None))
@click.option("--layers", default=3, show_default=True, type=click.IntRange(1, None))
@click.option("--heads", default=4, show_default=True, type=click.IntRange(1, None))
@click.option("--context", default=256, show_default=True, type=click.IntRange(16, None), help="Longest sequence in tokens.")
@click.option("--vocab", default=1024, show_default=True, type=click.IntRange(300, 65_536), help="Tokenizer vocabulary size.")
@click.option("--review", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Share of self-review examples (judging an answer: VERDICT: correct/incorrect).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def init_cmd(env_lists: tuple[str, ...], spec_path: str | None, difficulty: int, out: str, tasks: int, steps: int | None, minutes: float | None,
             seed: int, lr: float | None, batch_size: int | None, threads: int | None, width: int, layers: int, heads: int,
             context: int, vocab: int, review: float, quiet: bool) -> None:
    """Build a base student from scratch on the environments' reference answers (its
    "pretraining"): a tokenizer and a model, written to --out with a manifest."""
    from ..student.errors import StudentError, require_learn_extra

    envs, env_kwargs = _env_names(env_lists), None
    if spec_path is not None:
        envs, env_kwargs = spec_envs(spec_path, envs)
    elif not envs:
        _fail("name the environments: --envs arithmetic,strings (or --spec SPEC: the environments of a run spec)")
    cfg = _train_config(steps, minutes, DEFAULT_INIT_MINUTES, seed=seed, lr=lr, batch_size=batch_size, threads=threads)
    bar = _Bar("student init", enabled=not quiet)
    try:
        require_learn_extra()
        from ..student.build import init_student

        s = init_student(envs, out, difficulty=difficulty, tasks=tasks, train_cfg=cfg, vocab_size=vocab, context=context,
                         width=width, layers=layers, heads=heads, review=review, env_kwargs=env_kwargs, on_progress=bar)
    except StudentError as exc:
        bar.stop()
        _fail(str(exc))
    bar.stop()
    click.echo(_summary(s))


@student.command("info")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="The whole manifest as JSON.")
def info_cmd(path: str, as_json: bool) -> None:
    """Check a student checkpoint (manifest, weights, tokenizer) and show its manifest."""
    from ..student.errors import StudentError, require_learn_extra

    try:
        require_learn_extra()
        from ..student.checkpoint import Student

        s = Student.load(path)
    except StudentError as exc:
        _fail(str(exc))
    m = s.manifest
    if as_json:
        click.echo(json.dumps(m, indent=1))
        return
    parent = m.get("parent") or {}
    data = m.get("data") or {}
    t = m.get("training") or {}
    click.echo(f"student {m['id']} at {path} (agentsynth {m.get('agentsynth_version')})")
    click.echo(f"model: {m['weights']['params']:,} parameters, " + ", ".join(f"{k} {v}" for k, v in m["model"].items()))
    click.echo(f"parent: {parent.get('id')} ({parent.get('path')})" if parent else "parent: none (trained from scratch)")
    click.echo("data: " + ", ".join(f"{k} {v}" for k, v in data.items() if v is not None))
    click.echo(f"training: {t.get('steps')} steps, final loss {t.get('final_loss', 0):.3f}, "
               f"{t.get('tokens_per_s', 0):,.0f} tokens/s, {t.get('wall_s', 0) / 60:.1f} min, seed {t.get('seed')}")


@click.command("train")
@click.option("--export", "export_ref", required=True, metavar="X",
              help="An SFT export: its export id (looked up in --store) or its JSONL path.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New checkpoint directory.")
@click.option("--base", type=click.Path(), help="Checkpoint to fine-tune (default: a new student trained from scratch).")
@click.option("--steps", type=click.IntRange(1, None), help=f"Training steps (default {DEFAULT_TRAIN_STEPS}).")
@click.option("--minutes", type=click.FloatRange(0, None, min_open=True), help="A time budget instead of --steps.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the data order (and a new student's weights).")
@click.option("--replay", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Fraction of each batch drawn from the base's own training data.")
@click.option("--lr", type=float, help=f"Peak learning rate (default {DEFAULT_TRAIN_LR:g} with --base, else 2e-3).")
@click.option("--batch-size", type=click.IntRange(1, None), help="Sequences per step (default 64).")
@click.option("--threads", type=click.IntRange(1, None), help="Torch threads (default: the machine's cores).")
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True,
              help="Store whose exports table records the export.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train_cmd(export_ref: str, out: str, base: str | None, steps: int | None, minutes: float | None, seed: int,
              replay: float, lr: float | None, batch_size: int | None, threads: int | None, store: str, quiet: bool) -> None:
    """Fine-tune a student on an SFT export (agentsynth export --format sft) and write a new
    checkpoint whose manifest records the export id, its sha256 and the parent checkpoint."""
    from ..student.errors import StudentError, require_learn_extra

    if replay and not base:
        _fail("--replay needs --base (it replays the base's training data)")
    cfg = _train_config(steps if steps or minutes else DEFAULT_TRAIN_STEPS, minutes, None, seed=seed, replay=replay,
                        lr=lr if lr is not None else (DEFAULT_TRAIN_LR if base else None), batch_size=batch_size,
                        threads=threads, warmup=10 if base else None)
    bar = _Bar("train", enabled=not quiet)
    try:
        require_learn_extra()
        from ..student.build import build_tokenizer, finetune, new_student, replay_examples, resolve_export
        from ..student.checkpoint import Student
        from ..student.data import read_sft

        from ..student.checkpoint import check_out

        check_out(out)
        ref = resolve_export(export_ref, store)
        examples = read_sft(ref.path)
        if base:
            parent = Student.load(base, threads=threads)
        else:
            parent = new_student(build_tokenizer(examples), seed=seed, threads=threads)
        rep = replay_examples(parent) if replay else []
        s = finetune(parent, examples, out, train_cfg=cfg, data=ref.lineage(), replay=rep, on_progress=bar)
    except StudentError as exc:
        bar.stop()
        _fail(str(exc))
    bar.stop()
    click.echo(_summary(s) + (f"; trained on export {ref.export_id}" if ref.export_id else f"; trained on {ref.path}"))
