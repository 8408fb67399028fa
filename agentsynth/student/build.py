"""Making students: a base from the environments' references (:func:`init_student`), a fine-tuned
child from an SFT export or any examples (:func:`finetune`), and finding an export's file and
lineage (:func:`resolve_export`).

Every function here writes a checkpoint whose manifest says where it came from: the parent
checkpoint (id and path), the data (environments and seeds, or the export id and its sha256),
the replay, the settings and the training figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import Student, check_out
from .config import GPTConfig, TrainConfig
from .data import EnvKwargs, Example, file_sha256, read_sft, reference_examples, review_examples, review_tasks
from .errors import StudentError, require_learn_extra
from .tokenizer import DEFAULT_VOCAB, StudentTokenizer
from .training import Progress, TrainReport, set_threads, train

TOKENIZER_ENVS: tuple[str, ...] = ("algebra", "arithmetic", "code", "countdown", "extraction", "lists", "logic", "pairs",
                                   "sql", "strings", "tools", "units")
"""The built-in environments whose texts every tokenizer is trained on (besides its own training
data), so a base made on two domains still tokenizes the others compactly when fine-tuned on them."""
TOKENIZER_DIFFICULTIES = (1, 2, 3)
TOKENIZER_TASKS = 100
"""Tasks per environment and difficulty in the tokenizer corpus (code: 40; its tasks are slow to draw)."""
TOKENIZER_SEED_START = 900_000_000
"""Seeds of the tokenizer corpus: synthesis range, away from the seeds runs usually draw."""


def tokenizer_corpus(envs: Sequence[str] = TOKENIZER_ENVS) -> list[str]:
    """Prompts and reference replies of ``envs`` at difficulties 1-3 (deterministic)."""
    texts: list[str] = []
    for name in envs:
        for d in TOKENIZER_DIFFICULTIES:
            n = 40 if name == "code" else TOKENIZER_TASKS
            for ex in reference_examples([name], difficulty=d, tasks=n, seed_start=TOKENIZER_SEED_START):
                texts += [str(m.get("content") or "") for m in ex.messages] + [ex.reply]
    return texts


def build_tokenizer(examples: Sequence[Example], *, vocab_size: int = DEFAULT_VOCAB,
                    envs: Sequence[str] = TOKENIZER_ENVS) -> StudentTokenizer:
    """A tokenizer trained on the texts of ``envs`` (:func:`tokenizer_corpus`) and of ``examples``."""
    texts = tokenizer_corpus(envs)
    for ex in examples:
        texts += [str(m.get("content") or "") for m in ex.messages] + [ex.reply]
    return StudentTokenizer.train(texts, vocab_size)


def new_student(tokenizer: StudentTokenizer, *, seed: int = 0, context: int = 256, width: int = 96, layers: int = 3,
                heads: int = 4, threads: int | None = None) -> Student:
    """A freshly initialized student (weights drawn from ``seed``)."""
    require_learn_extra()
    import torch

    from .model import GPT

    try:
        cfg = GPTConfig(vocab_size=tokenizer.vocab_size, context=context, width=width, layers=layers, heads=heads)
    except ValueError as exc:
        raise StudentError(f"model: {exc}") from None
    set_threads(threads)
    torch.manual_seed(seed)
    return Student(GPT(cfg), tokenizer, {})


def _figures(report: TrainReport, cfg: TrainConfig) -> dict[str, Any]:
    return {**report.to_dict(), "config": cfg.to_dict()}


def init_student(envs: Sequence[str], out: str | Path, *, difficulty: int = 1, tasks: int = 20_000, seed_start: int = 0,
                 train_cfg: TrainConfig, vocab_size: int = DEFAULT_VOCAB, context: int = 256, width: int = 96,
                 layers: int = 3, heads: int = 4, review: float = 0.0, env_kwargs: EnvKwargs | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> Student:
    """Build a base student from scratch: ``tasks`` tasks per environment (seeds ``seed_start..``)
    with their reference replies, a tokenizer trained on them and on every built-in domain, and
    a model trained on them; write it to ``out``. ``review`` in [0, 1): the share of the training
    examples that are self-review conversations (:func:`~agentsynth.student.data.review_examples`),
    drawn from other seeds of the same environments. ``env_kwargs``: constructor arguments per
    environment (a task set's column mapping); the manifest records them, so replay rebuilds the
    same examples."""
    names = list(dict.fromkeys(envs))
    if not names:
        raise StudentError("no environments: pass --envs, e.g. --envs arithmetic,strings")
    if tasks < 1:
        raise StudentError(f"--tasks must be at least 1, got {tasks}")
    if not 0 <= review < 1:
        raise StudentError(f"--review must be in [0, 1), got {review}")
    check_out(out)
    kwargs = {ref: dict(env_kwargs[ref]) for ref in names if (env_kwargs or {}).get(ref)}  # type: ignore[index]
    examples = reference_examples(names, difficulty=difficulty, tasks=tasks, seed_start=seed_start, env_kwargs=kwargs)
    n_review = review_tasks(tasks, review)
    review_start = seed_start + tasks
    if n_review:
        examples += review_examples(names, difficulty=difficulty, tasks=n_review, seed_start=review_start, seed=train_cfg.seed,
                                    env_kwargs=kwargs)
    tokenizer = build_tokenizer(examples, vocab_size=vocab_size)
    student = new_student(tokenizer, seed=train_cfg.seed, context=context, width=width, layers=layers, heads=heads,
                          threads=train_cfg.threads)
    report = train(student.model, tokenizer, examples, train_cfg, on_progress=on_progress)
    student.save(out, {
        "parent": None,
        "data": {"source": "references", "envs": names, "difficulty": difficulty, "tasks_per_env": tasks,
                 "seed_start": seed_start, "examples": len(examples), **({"env_kwargs": kwargs} if kwargs else {}),
                 "review": {"share": review, "tasks_per_env": n_review, "seed_start": review_start} if n_review else None},
        "tokenizer": {**tokenizer.describe(), "corpus_envs": list(TOKENIZER_ENVS), "corpus_difficulties":
                      list(TOKENIZER_DIFFICULTIES), "corpus_seed_start": TOKENIZER_SEED_START},
        "training": _figures(report, train_cfg),
    })
    return student


@dataclass(frozen=True)
class ExportRef:
    """An SFT file to train on and, when the store records it, its export id."""

    path: Path
    sha256: str
    export_id: str | None = None
    run_id: str | None = None

    def lineage(self) -> dict[str, Any]:
        """The manifest's ``data`` entry."""
        return {"source": "export", "export_id": self.export_id, "sha256": self.sha256, "path": str(self.path),
                "run_id": self.run_id}


def resolve_export(ref: str, store: str | Path | None) -> ExportRef:
    """``ref`` is an export id (looked up in ``store``'s ``exports`` table) or an SFT JSONL path
    (whose export id is found by its sha256 when the store records it). The file must still have
    the sha256 the store recorded."""
    from ..store.connection import StoreError

    p = Path(ref)
    store_p = Path(store) if store is not None else None
    have_store = store_p is not None and store_p.exists()
    if p.is_file():
        digest = file_sha256(p)
        row = None
        if have_store:
            try:
                row = _export_row(store_p, "sha256 = ?", digest)  # type: ignore[arg-type]
            except StoreError as exc:
                raise StudentError(str(exc)) from None
        return ExportRef(p.resolve(), digest, row[0] if row else None, row[3] if row else None)
    if not have_store:
        where = f"no store at {store_p}" if store_p is not None else "no --store given"
        raise StudentError(f"--export {ref}: no such file, and {where} to look the export id up in")
    try:
        row = _export_row(store_p, "export_id = ?", ref)  # type: ignore[arg-type]
    except StoreError as exc:
        raise StudentError(str(exc)) from None
    if row is None:
        raise StudentError(f"--export {ref}: no such file, nor an export with that id in {store_p}")
    export_id, path, fmt, run_id, sha = row
    if fmt != "sft":
        raise StudentError(f"export {export_id} is {fmt}; the student trains on sft exports")
    fp = Path(path)
    if not fp.is_file():
        raise StudentError(f"export {export_id}: its file {fp} is gone")
    digest = file_sha256(fp)
    if digest != sha:
        raise StudentError(f"export {export_id}: {fp} changed since it was exported (sha256 differs)")
    return ExportRef(fp, digest, export_id, run_id)


def _export_row(store: Path, where: str, value: str) -> tuple[Any, ...] | None:
    from ..store.connection import connect

    con = connect(store, read_only=True)
    try:
        return con.execute(f"SELECT export_id, path, format, run_id, sha256 FROM exports WHERE {where} "  # noqa: S608 - fixed text
                           "ORDER BY created_at DESC LIMIT 1", [value]).fetchone()
    finally:
        con.close()


def replay_examples(base: Student, limit: int = 20_000) -> list[Example]:
    """The base's own training data, rebuilt from its manifest (references are regenerated from the
    environments and seeds; an export is read back if its file still has its sha256); at most
    ``limit`` examples."""
    data = base.manifest.get("data") or {}
    if data.get("source") == "references":
        rev = data.get("review") or {}
        n_rev = int(rev.get("tasks_per_env") or 0)
        total = int(data["tasks_per_env"]) + n_rev
        per_env = max(1, min(total, limit // max(1, len(data["envs"]))))
        n_ref = max(1, round(per_env * int(data["tasks_per_env"]) / total))
        kwargs = data.get("env_kwargs") or {}
        out = reference_examples(data["envs"], difficulty=int(data["difficulty"]), tasks=n_ref,
                                 seed_start=int(data["seed_start"]), env_kwargs=kwargs)
        if n_rev and per_env > n_ref:
            out += review_examples(data["envs"], difficulty=int(data["difficulty"]), tasks=per_env - n_ref,
                                   seed_start=int(rev["seed_start"]), seed=int((base.manifest.get("training") or {}).get("seed", 0)),
                                   env_kwargs=kwargs)
        return out
    if data.get("source") == "export":
        p = Path(data.get("path") or "")
        if not p.is_file() or file_sha256(p) != data.get("sha256"):
            raise StudentError(f"cannot replay the base's data: its export file {p} is gone or changed")
        return read_sft(p)[:limit]
    raise StudentError(f"cannot replay the base's data: its manifest records no replayable source ({data.get('source')!r})")


def finetune(base: Student, examples: Sequence[Example], out: str | Path, *, train_cfg: TrainConfig,
             data: dict[str, Any], replay: Sequence[Example] = (),
             on_progress: Callable[[Progress], None] | None = None) -> Student:
    """Train a copy of ``base`` on ``examples`` (plus ``train_cfg.replay`` of each batch from
    ``replay``) and write it to ``out``; ``data`` describes the examples for the manifest
    (e.g. :meth:`ExportRef.lineage`). ``base`` itself is not changed."""
    import copy

    if train_cfg.replay and not replay:
        raise StudentError("--replay needs replay data (the base's training data)")
    check_out(out)
    child = Student(copy.deepcopy(base.model), base.tokenizer, {})
    report = train(child.model, base.tokenizer, examples, train_cfg, replay=replay, on_progress=on_progress)
    child.save(out, {
        "parent": {"id": base.id, "path": str(base.path.resolve())} if base.path else None,
        "data": {**data, "examples": len(examples),
                 "replay": {"fraction": train_cfg.replay, "examples": len(replay), "of": base.id} if train_cfg.replay else None},
        "tokenizer": base.manifest.get("tokenizer", base.tokenizer.describe()),
        "training": _figures(report, train_cfg),
    })
    return child
