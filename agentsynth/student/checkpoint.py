"""Student checkpoints: a directory with the weights, the tokenizer and a manifest.

::

    ckpt/
      manifest.json   format, id, model config, tokenizer facts, weights sha256 and size,
                      parent (id, path), training data (e.g. the export id and its sha256),
                      training figures (steps, final loss, tokens/s, wall time, seed), version
      weights.pt      torch.save(state_dict), loaded with weights_only=True
      tokenizer.json  the tokenizer (Hugging Face tokenizers JSON)

A checkpoint's id is ``s-`` + the first 12 hex digits of its weights' sha256: the same training
(same seed, data, settings, thread count) gives the same id. A directory is written under a
temporary name and renamed into place, so a checkpoint is either whole or absent; an existing
non-empty directory is never overwritten.

Loading checks everything and raises :class:`StudentError` with one line: a missing directory,
a manifest that is not JSON or not a student manifest, missing or truncated weights (size and
sha256 are checked), weights whose shapes do not fit the config, a bad tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import GPTConfig
from .errors import StudentError, require_learn_extra
from .tokenizer import StudentTokenizer

FORMAT = "agentsynth-student"
FORMAT_VERSION = 1
MANIFEST, WEIGHTS, TOKENIZER = "manifest.json", "weights.pt", "tokenizer.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of checkpoint ``path`` (checked for form, not against the files)."""
    p = Path(path)
    if not p.exists():
        raise StudentError(f"no student checkpoint at {p}")
    if not p.is_dir():
        raise StudentError(f"{p} is not a student checkpoint (a checkpoint is a directory)")
    mf = p / MANIFEST
    try:
        data = json.loads(mf.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudentError(f"{p} is not a student checkpoint (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudentError(f"cannot read {mf}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise StudentError(f"{mf} is corrupt: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StudentError(f"{mf} is not a student manifest (no \"format\": \"{FORMAT}\")")
    if data.get("format_version") != FORMAT_VERSION:
        raise StudentError(f"{mf}: format version {data.get('format_version')!r} is not supported (expected {FORMAT_VERSION})")
    weights = data.get("weights")
    if not isinstance(weights, dict) or not isinstance(weights.get("sha256"), str) or not isinstance(weights.get("bytes"), int):
        raise StudentError(f"{mf} is corrupt: no weights sha256 and size")
    return data


def check_out(out: str | Path) -> Path:
    """Refuse an ``--out`` that cannot take a new checkpoint (checked before training, so a bad
    path costs nothing): an existing non-empty directory, a file, a missing parent directory."""
    dest = Path(out)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise StudentError(f"{dest} already exists and is not empty; choose a new --out directory")
    parent = dest.resolve().parent
    if not parent.is_dir():
        raise StudentError(f"cannot write {dest}: directory {parent} does not exist")
    return dest


@dataclass
class Student:
    """A loaded student: the network, its tokenizer, and its manifest (``path`` None until saved)."""

    model: Any  # model.GPT
    tokenizer: StudentTokenizer
    manifest: dict[str, Any]
    path: Path | None = None

    @property
    def id(self) -> str:
        """The checkpoint id (``s-`` + 12 hex digits of the weights' sha256), or "" before saving."""
        return str(self.manifest.get("id", ""))

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None) -> Student:
        """Load and check checkpoint ``path`` (see the module docstring)."""
        require_learn_extra()
        import torch

        from .model import GPT
        from .training import set_threads

        p = Path(path)
        manifest = read_manifest(p)
        cfg = GPTConfig.from_dict(manifest.get("model"))
        wp = p / WEIGHTS
        if not wp.is_file():
            raise StudentError(f"{wp} is missing")
        size, want = wp.stat().st_size, manifest["weights"]["bytes"]
        if size != want:
            raise StudentError(f"{wp} is {size:,} bytes, its manifest says {want:,}: truncated or replaced")
        if _sha256(wp) != manifest["weights"]["sha256"]:
            raise StudentError(f"{wp} does not match the sha256 in its manifest: corrupt or replaced")
        tokenizer = StudentTokenizer.load(p / TOKENIZER)
        if tokenizer.vocab_size != cfg.vocab_size:
            raise StudentError(f"{p / TOKENIZER} has {tokenizer.vocab_size} tokens, the model {cfg.vocab_size}")
        try:
            state = torch.load(wp, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - unpickling errors vary: one line
            raise StudentError(f"cannot load {wp}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        set_threads(threads)
        model = GPT(cfg)
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc).splitlines()[0])
            raise StudentError(f"{wp} does not fit the model in {MANIFEST}: {first[:160]}") from None
        model.eval()
        return cls(model, tokenizer, manifest, p)

    def save(self, out: str | Path, manifest: dict[str, Any]) -> Path:
        """Write this student to the new directory ``out`` with ``manifest`` (the format, id and
        weights fields are filled in here); returns the path. Refuses an existing non-empty ``out``."""
        import torch

        from .. import __version__

        dest = check_out(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.resolve().parent))
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a checkpoint is an ordinary directory
            torch.save(self.model.state_dict(), tmp / WEIGHTS)
            digest = _sha256(tmp / WEIGHTS)
            self.tokenizer.save(tmp / TOKENIZER)
            full = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": "s-" + digest[:12],
                    "agentsynth_version": __version__, **manifest,
                    "model": self.model.cfg.to_dict(),
                    "weights": {"file": WEIGHTS, "sha256": digest, "bytes": (tmp / WEIGHTS).stat().st_size,
                                "params": self.model.n_params()}}
            (tmp / MANIFEST).write_text(json.dumps(full, indent=1, sort_keys=False) + "\n", encoding="utf-8")
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            if dest.exists():
                dest.rmdir()  # empty: checked above
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.manifest, self.path = full, dest
        return dest
