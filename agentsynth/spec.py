"""Run specs: what to run (environments × task seeds × samples), against which model, where to store.

A spec is a TOML file (see ``runs/quickstart.toml``) or a :class:`RunSpec` built in Python. The
planner turns it into episodes with stable ids.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .credentials import check_base_urls, strip_credentials

EVAL_SEED_START = 1_000_000_000
"""First task seed of held-out evaluation (``agentsynth eval``). Synthesis runs use seeds below it
and evaluation runs seeds from it up, so a model is never scored on a task drawn from a seed its
training data could have come from. The spec validator enforces both sides."""


class SpecError(ValueError):
    """The spec is malformed or names something that does not exist (message says which)."""


class SpecWarning(UserWarning):
    """The spec asks for something that has no effect (the message says what and why); the run goes on."""


class EnvSpec(BaseModel):
    """One environment in a run: which tasks, which feedback channel(s), how many turns."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="registered name, agentsynth/<name>-v0, or module:Class")
    tasks: int = Field(20, gt=0, description="number of task seeds")
    seed_start: int = Field(0, ge=0, description="first task seed")
    feedback: str | list[str] | None = Field(None, description="channel, or a list: one config per channel")
    max_turns: int = Field(3, ge=1, le=100)
    difficulty: int = Field(1, ge=1, le=10)
    kwargs: dict[str, Any] = Field(default_factory=dict, description="other constructor arguments")

    def channels(self) -> list[str | None]:
        """The feedback channels this entry expands to."""
        if self.feedback is None:
            return [None]
        return [self.feedback] if isinstance(self.feedback, str) else list(dict.fromkeys(self.feedback))


def _check_key_env(v: str | None) -> str | None:
    if v and (v.startswith("sk-") or len(v) > 64):
        raise ValueError("api_key_env names an environment variable; never put the key itself in a spec")
    return v


class JudgeSpec(BaseModel):
    """The run's judge model (the ``judge`` channel). Without one, the policy judges itself."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # a bad value may be a key

    model: str = "sim"
    base_url: str | list[str] | None = Field(None, description="endpoint URL, or a list: several endpoints serving the judge")
    api_key_env: str | None = Field(None, description="the judge's key variable; unset: the policy's, at the policy's URL")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    sim: dict[str, Any] = Field(default_factory=dict, description="sim parameters when model = 'sim'")

    _base_url = field_validator("base_url", mode="before")(check_base_urls)
    _key_env = field_validator("api_key_env")(_check_key_env)


class RaySpec(BaseModel):
    """Where a run's episodes run when it scales out on Ray (``[ray]`` table, ``--ray``): a local
    Ray instance (``address`` unset or ``"local"``) or an existing cluster (``"auto"``,
    ``"HOST:PORT"``, ``"ray://HOST:10001"``). Not part of what a run produces: a run started
    without Ray resumes with it and the other way round."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(None, description="cluster address; unset or 'local': start a local Ray instance")
    workers: int | None = Field(None, ge=1, le=10_000, description="worker actors; default: the cluster's CPUs / cpus_per_worker")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs Ray reserves for each worker actor")
    silent_s: float = Field(20.0, gt=0, le=3600, description=(
        "seconds no worker may answer the driver before the run ends interrupted (the cluster went away)"))


class RunSpec(BaseModel):
    """A whole run. Fields not in the content hash (concurrency, store, endpoint, key variable,
    timeouts) can change between resumes; the others cannot. A base URL with userinfo
    (``user:password@``) is refused; a query string is kept for requests but never stored.
    ``base_url`` (and the judge's) may be a list of URLs: endpoints serving the same model, calls
    spread across them (:mod:`agentsynth.models.endpoints`); ``concurrency`` is the total over them."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # a bad value may be a key

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    model: str = "sim"
    base_url: str | list[str] | None = Field(None, description=(
        "endpoint URL, or a list of URLs: several endpoints serving the model (calls spread across them)"))
    api_key_env: str | None = Field(None, description="name of the environment variable holding the API key")
    samples: int = Field(1, ge=1, le=10_000)
    concurrency: int = Field(16, ge=1, le=4096, description=(
        "episodes at work at once (one waiting out a retry's backoff lends its place), and model calls in flight at most"))
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(1024, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0, le=100, description="retries per model call, transient failures only")
    episode_retries: int = Field(3, ge=0, le=100, description=(
        "times a run runs again, before it ends, an episode whose model call ran out of retries on a transient "
        "failure (what re-running the command does)"))
    unreachable_s: float = Field(30.0, gt=0, description=(
        "seconds an endpoint may fail with connection errors or timeouts before the run stops, ends failed and "
        "leaves the remaining episodes to a re-run"))
    transport: Literal["auto", "aiohttp", "httpx"] = Field("auto", description="HTTP transport of the openai client")
    seed: int = 0
    system_prompt: str | None = None
    purpose: Literal["synthesis", "eval"] = Field(  # declared before envs: the envs validator reads it
        "synthesis", description="synthesis (seeds below EVAL_SEED_START) or eval (seeds from it up); stored as runs.kind")
    store: str = "runs/agentsynth.duckdb"
    envs: list[EnvSpec] = Field(min_length=1)
    sim: dict[str, Any] = Field(default_factory=dict, description="sim model parameters (model = 'sim')")
    judge: JudgeSpec | None = Field(None, description="a judge model other than the policy")
    ray: RaySpec | None = Field(None, description="run the episodes on Ray workers (agentsynth[ray]; README, Scaling out on Ray)")

    def judge_is_policy(self) -> bool:
        """True when the judge is the policy model itself: no [judge], or the same model at the
        same URL (query included) with the same key (``api_key_env`` unset or the same variable).
        A judge with a key of its own is another endpoint identity, even for the same model."""
        j = self.judge
        return j is None or (j.model == self.model and j.base_url == self.base_url and j.sim == self.sim
                             and j.api_key_env in (None, self.api_key_env))

    @field_validator("envs")
    @classmethod
    def _seed_ranges(cls, envs: list[EnvSpec], info: ValidationInfo) -> list[EnvSpec]:
        purpose = info.data.get("purpose", "synthesis")
        for i, e in enumerate(envs):
            last = e.seed_start + e.tasks - 1
            where = f"[[envs]] #{i + 1} ({e.id})"
            if purpose == "synthesis" and last >= EVAL_SEED_START:
                raise PydanticCustomError("eval_seeds", "{msg}", {"msg": (
                    f"{where}: seeds {e.seed_start:,}..{last:,} reach {EVAL_SEED_START:,}; seeds from "
                    f"{EVAL_SEED_START:,} up are reserved for held-out evaluation (agentsynth eval); "
                    "lower seed_start or tasks")})
            if purpose == "eval" and e.seed_start < EVAL_SEED_START:
                raise PydanticCustomError("synthesis_seeds", "{msg}", {"msg": (
                    f"{where}: an eval run must use seeds from {EVAL_SEED_START:,} up (held-out), "
                    f"not {e.seed_start:,}")})
        return envs

    _base_url = field_validator("base_url", mode="before")(check_base_urls)
    _key_env = field_validator("api_key_env")(_check_key_env)

    _RUNTIME = {"concurrency", "store", "base_url", "api_key_env", "timeout_s", "max_retries", "episode_retries",
                "unreachable_s", "transport", "ray"}

    def _dump(self, **kwargs: Any) -> dict[str, Any]:
        """The content fields as JSON data, the judge's URL without credentials."""
        data = self.model_dump(mode="json", exclude=self._RUNTIME, **kwargs)
        judge = data.get("judge")
        url = judge.get("base_url") if judge else None
        if url:
            judge["base_url"] = strip_credentials(url) if isinstance(url, str) else [strip_credentials(u) for u in url]
        return data

    def content(self) -> dict[str, Any]:
        """The fields that decide what the run produces (hashed; stored as the run's spec)."""
        return self._dump()

    def spec_hash(self) -> str:
        """Hash of the content fields that differ from their defaults: a resumed run must have the
        same. Leaving defaults out keeps stored runs resumable when a later version adds a field."""
        data = self._dump(exclude_defaults=True)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def read_toml(path: str | Path, what: str = "spec", error: type[SpecError] = SpecError) -> dict[str, Any]:
    """The table of a TOML file; ``error`` with one line naming the file when it is missing, a
    directory, unreadable, not UTF-8 (TOML is UTF-8) or malformed."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise error(f"no {what} file at {p}") from None
    except IsADirectoryError:
        raise error(f"{p} is a directory, not a {what} file") from None
    except OSError as exc:
        raise error(f"cannot read {what} file {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); TOML files are UTF-8: "
                    "save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{p}: malformed TOML: {exc}") from None


def load_spec(path: str | Path, **overrides: Any) -> RunSpec:
    """Read a TOML spec; ``overrides`` (e.g. ``model=...``) replace top-level fields when not None."""
    data = read_toml(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_spec(data, source=str(Path(path)))


def validation_errors(exc: ValidationError) -> str:
    """A pydantic validation error as ``field.path: message; ...`` (one line)."""
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors())


def parse_spec(data: dict[str, Any], source: str = "spec") -> RunSpec:
    """Validate a spec dict; errors name the field, one per line."""
    try:
        return RunSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{source}: invalid spec: " + validation_errors(exc)) from None


@dataclass(frozen=True, slots=True)
class EnvConfig:
    """One environment configuration in a plan (one entry × one feedback channel)."""

    ref: str
    kwargs: dict[str, Any]
    seeds: range

    @property
    def key(self) -> str:
        """Canonical JSON of (ref, kwargs): part of every episode id."""
        return json.dumps({"env": self.ref, **self.kwargs}, sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class PlannedEpisode:
    """One planned episode: which config, which task seed, which sample."""

    episode_id: str
    config: int
    seed: int
    sample: int


def env_configs(spec: RunSpec) -> list[EnvConfig]:
    """Expand the spec's environments (one config per feedback channel)."""
    out = []
    for e in spec.envs:
        for ch in e.channels():
            kwargs = {"max_turns": e.max_turns, "difficulty": e.difficulty, **e.kwargs}
            if ch is not None:
                kwargs["feedback"] = ch
            if ch == "judge":
                kwargs["judge_is_policy"] = spec.judge_is_policy()
            out.append(EnvConfig(e.id, kwargs, range(e.seed_start, e.seed_start + e.tasks)))
    return out


def episode_id(run_name: str, config: EnvConfig | str, seed: int, sample: int) -> str:
    """Stable id from (run name, env id, env kwargs, task seed, sample); ``config`` may be its key."""
    key = config if isinstance(config, str) else config.key
    h = hashlib.blake2b(f"{run_name}\x00{key}\x00{seed}\x00{sample}".encode(), digest_size=10)
    return "e-" + h.hexdigest()


def plan(spec: RunSpec, configs: list[EnvConfig] | None = None) -> Iterator[PlannedEpisode]:
    """All episodes of the run, in a stable order (configs × seeds × samples)."""
    for ci, cfg in enumerate(configs if configs is not None else env_configs(spec)):
        key = cfg.key
        for seed in cfg.seeds:
            for sample in range(spec.samples):
                yield PlannedEpisode(episode_id(spec.name, key, seed, sample), ci, seed, sample)


def planned_count(spec: RunSpec) -> int:
    """How many episodes the spec plans."""
    return sum(len(c.seeds) for c in env_configs(spec)) * spec.samples
