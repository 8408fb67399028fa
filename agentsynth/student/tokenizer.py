"""The student's tokenizer: a byte-level BPE (Hugging Face ``tokenizers``) with every digit its
own token, trained on the environments' own texts.

Why this one:

- **byte-level**: any text encodes (unknown characters fall back to bytes) and decodes back
  exactly: ``decode(encode(t)) == t`` for every string (tested on every domain's prompts and
  references);
- **single digits**: numbers are spelled digit by digit, so ``407`` and ``470`` share their
  pieces and the model can learn arithmetic on digits instead of memorizing number tokens;
- **BPE merges** on the prompts' fixed wording make sequences ~3x shorter than characters
  (an arithmetic prompt is ~38 tokens, ~100 characters), and the cost of a step is linear in
  the sequence length (quadratic in attention);
- a vocabulary of 1,024 (default): 2,048 leaves arithmetic prompts at 38 tokens and shortens
  SQL / extraction / code prompts by 7-23% for an output layer twice as big; 512 makes arithmetic
  prompts ~45% longer (measured: ``benchmarks/bench_student.py --tokenizer``).

Special tokens come from :mod:`.template` (``<|pad|>`` = 0, ``<|end|>`` = 1, the role markers).
``tokenizers`` is imported when a tokenizer is trained or loaded, not with this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import StudentError
from .template import END, PAD, SPECIAL_TOKENS, Segment, prompt_segments, reply_segments

DEFAULT_VOCAB = 1024


class StudentTokenizer:
    """Text ⇄ ids for the student; wraps a ``tokenizers.Tokenizer``."""

    def __init__(self, tok: Any):
        self._tok = tok
        ids = [tok.token_to_id(t) for t in SPECIAL_TOKENS]
        if ids != list(range(len(SPECIAL_TOKENS))):
            raise StudentError(f"tokenizer: special tokens {list(SPECIAL_TOKENS)} are not ids 0..{len(SPECIAL_TOKENS) - 1}")
        self.special = dict(zip(SPECIAL_TOKENS, ids))
        self.pad_id = self.special[PAD]
        self.end_id = self.special[END]

    # ---- building ------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB) -> StudentTokenizer:
        """Train a byte-level BPE with single-digit tokens on ``texts`` (deterministic for the
        same texts in the same order)."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(list(texts), trainer)
        return cls(tok)

    @classmethod
    def from_str(cls, data: str) -> StudentTokenizer:
        """A tokenizer from its JSON (``tokenizer.json``)."""
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_str(data))
        except Exception as exc:  # noqa: BLE001 - the library's errors vary; one line for the user
            raise StudentError(f"tokenizer.json is not a valid tokenizer: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None

    @classmethod
    def load(cls, path: str | Path) -> StudentTokenizer:
        """Read ``tokenizer.json``."""
        try:
            return cls.from_str(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise StudentError(f"cannot read tokenizer {path}: {exc}") from None

    def to_str(self) -> str:
        """The tokenizer as JSON."""
        return str(self._tok.to_str())

    def save(self, path: str | Path) -> None:
        """Write ``tokenizer.json``."""
        Path(path).write_text(self.to_str(), encoding="utf-8")

    # ---- using ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids (special tokens included)."""
        return int(self._tok.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        """Ids of plain text (special-token spellings in it are matched as special tokens)."""
        return list(self._tok.encode(text, add_special_tokens=False).ids) if text else []

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ids, special tokens spelled out: ``decode(encode(t)) == t``."""
        return str(self._tok.decode(list(ids), skip_special_tokens=False))

    def encode_segments(self, segments: Iterable[Segment]) -> list[int]:
        """Ids of template segments (:mod:`.template`): special tokens by id, text by BPE."""
        out: list[int] = []
        for special, text in segments:
            out.extend([self.special[text]] if special else self.encode(text))
        return out

    def encode_prompt(self, messages: Sequence[Mapping[str, Any]]) -> list[int]:
        """Ids of a chat prompt, ending with the assistant marker."""
        return self.encode_segments(prompt_segments(messages))

    def encode_reply(self, reply: str) -> list[int]:
        """Ids of a reply the student is trained to write, ending with ``<|end|>``."""
        return self.encode_segments(reply_segments(reply))

    def decode_reply(self, ids: Sequence[int]) -> str:
        """The text of generated reply ids (up to, not including, ``<|end|>``)."""
        ids = list(ids)
        if self.end_id in ids:
            ids = ids[: ids.index(self.end_id)]
        return str(self._tok.decode(ids, skip_special_tokens=True))

    def describe(self) -> dict[str, Any]:
        """Facts for a manifest."""
        return {"kind": "byte-level BPE, single-digit tokens", "vocab_size": self.vocab_size,
                "special_tokens": list(SPECIAL_TOKENS)}

