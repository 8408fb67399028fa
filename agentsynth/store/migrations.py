"""The store's schema, as a list of small named migrations applied once each, in order.

Each migration is a function of a DuckDB connection; the ``_migrations`` table records which ones
ran. A store whose ``_migrations`` names one this code does not know was written by a newer
agentsynth and is refused. Add a migration by appending a function; never change what a released
one makes (m002 was reworded for DuckDB 1.x, to the same schema).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from ..answers import final_answer, normalize
from .clock import utcnow
from .transaction import transaction

Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration (its name is recorded)."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_core_tables(con: duckdb.DuckDBPyConnection) -> None:
    """runs, tasks, episodes, messages, signals, signal_types.

    messages and signals have no primary key: their rows are unique by construction (one writer,
    an episode's rows replaced as a whole), and DuckDB keeps every key's index in memory, which
    would make a long run's memory grow with its length.
    """
    con.execute(
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            spec JSON NOT NULL,
            spec_hash VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            base_url VARCHAR,
            status VARCHAR NOT NULL,
            planned INTEGER NOT NULL,
            sessions INTEGER NOT NULL DEFAULT 1,
            created_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            agentsynth_version VARCHAR NOT NULL
        );
        CREATE TABLE tasks (
            task_id VARCHAR PRIMARY KEY,
            env_id VARCHAR NOT NULL,
            domain VARCHAR NOT NULL,
            seed BIGINT NOT NULL,
            prompt VARCHAR NOT NULL,
            answer VARCHAR NOT NULL,
            metadata JSON
        );
        CREATE TABLE episodes (
            episode_id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            task_id VARCHAR,
            env_id VARCHAR NOT NULL,
            env_config JSON,
            feedback VARCHAR NOT NULL,
            domain VARCHAR,
            seed BIGINT NOT NULL,
            sample INTEGER NOT NULL,
            status VARCHAR NOT NULL,
            error VARCHAR,
            turns INTEGER NOT NULL,
            reward DOUBLE,
            terminated BOOLEAN,
            truncated BOOLEAN,
            passed_first BOOLEAN,
            passed_last BOOLEAN,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            judge_tokens BIGINT NOT NULL,
            attempts INTEGER NOT NULL,
            tries INTEGER NOT NULL,
            latency_s DOUBLE,
            started_at TIMESTAMP,
            finished_at TIMESTAMP
        );
        CREATE TABLE messages (
            episode_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            turn INTEGER NOT NULL,
            role VARCHAR NOT NULL,
            content VARCHAR,
            tool_calls JSON,
            tool_call_id VARCHAR
        );
        CREATE TABLE signals (
            episode_id VARCHAR NOT NULL,
            turn INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            role VARCHAR NOT NULL,
            value DOUBLE,
            passed BOOLEAN,
            feedback VARCHAR,
            details JSON,
            tokens INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE signal_types (
            name VARCHAR PRIMARY KEY,
            source VARCHAR NOT NULL,
            openness VARCHAR NOT NULL,
            meta_level INTEGER NOT NULL,
            task_relevant BOOLEAN NOT NULL,
            description VARCHAR
        );
        """
    )


@migration
def m002_analysis_tables(con: duckdb.DuckDBPyConnection) -> None:
    """messages.answer, runs.kind, and the tables of the audit, exports and held-out evaluation.

    ``messages.answer`` is the normalized final answer of an assistant message (backfilled here for
    stores written before it existed); ``runs.kind`` tells synthesis runs from evaluation runs.
    """
    con.execute("ALTER TABLE messages ADD COLUMN answer VARCHAR")
    con.create_function("_agentsynth_answer", lambda text: normalize(final_answer(text)), ["VARCHAR"], "VARCHAR",
                        null_handling="special")
    try:
        con.execute("UPDATE messages SET answer = _agentsynth_answer(content) WHERE role = 'assistant' AND tool_calls IS NULL")
    finally:
        con.remove_function("_agentsynth_answer")
    # Two statements, not ``ADD COLUMN kind VARCHAR NOT NULL DEFAULT ...``: DuckDB 1.x refuses
    # a constraint in ADD COLUMN ("Adding columns with constraints not yet supported"). The default
    # fills the existing rows first, so SET NOT NULL holds; the schema is the same either way.
    con.execute("ALTER TABLE runs ADD COLUMN kind VARCHAR DEFAULT 'synthesis'")
    con.execute("ALTER TABLE runs ALTER COLUMN kind SET NOT NULL")
    con.execute(
        """
        CREATE TABLE audits (
            audit_id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            run_ids JSON NOT NULL,
            run_names JSON NOT NULL,
            by_domain BOOLEAN NOT NULL,
            bootstrap INTEGER NOT NULL,
            confidence DOUBLE NOT NULL,
            seed BIGINT NOT NULL,
            min_tasks INTEGER NOT NULL,
            agentsynth_version VARCHAR NOT NULL
        );
        CREATE TABLE audit_results (
            audit_id VARCHAR NOT NULL,
            scope VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            domain VARCHAR,
            metric VARCHAR NOT NULL,
            estimate DOUBLE,
            ci_low DOUBLE,
            ci_high DOUBLE,
            n BIGINT NOT NULL,
            n_tasks BIGINT NOT NULL,
            note VARCHAR
        );
        CREATE TABLE exports (
            export_id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            signal VARCHAR NOT NULL,
            min_value DOUBLE,
            domain_filter JSON,
            domains JSON NOT NULL,
            format VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            rows BIGINT NOT NULL,
            sha256 VARCHAR NOT NULL,
            options JSON,
            created_at TIMESTAMP NOT NULL,
            agentsynth_version VARCHAR NOT NULL
        );
        CREATE TABLE export_items (
            export_id VARCHAR NOT NULL,
            item BIGINT NOT NULL,
            part VARCHAR NOT NULL,
            episode_id VARCHAR NOT NULL,
            turn INTEGER NOT NULL,
            task_id VARCHAR,
            domain VARCHAR,
            content_hash VARCHAR NOT NULL
        );
        CREATE TABLE evaluations (
            evaluation_id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            base_url VARCHAR,
            base_model VARCHAR NOT NULL,
            trained_on VARCHAR,
            env_id VARCHAR NOT NULL,
            domain VARCHAR NOT NULL,
            env_config JSON,
            seed_start BIGINT NOT NULL,
            seed_end BIGINT NOT NULL,
            n INTEGER NOT NULL,
            correct INTEGER NOT NULL,
            accuracy DOUBLE,
            ci_low DOUBLE,
            ci_high DOUBLE,
            created_at TIMESTAMP NOT NULL
        );
        """
    )


@migration
def m003_generalization_view(con: duckdb.DuckDBPyConnection) -> None:
    """The ``generalization`` view: what training on an export did to held-out accuracy, per
    evaluated environment, in the export's domains (``in-domain``) and outside them.

    Each row is one evaluation of a trained model (``evaluations.trained_on`` = an export), with
    the export's signal and that signal's labels, next to the latest evaluation of its base
    model (``trained_on IS NULL``, ``model`` = the trained row's ``base_model``) on the same
    environment configuration, domain and task seeds. ``delta`` = trained − base accuracy, with
    Newcombe's hybrid score interval (his method 10), built from the two stored 95% Wilson
    intervals: ``delta − sqrt((p1 − l1)² + (u2 − p2)²)``, ``delta + sqrt((u1 − p1)² + (p2 − l2)²)``.
    That interval treats the two evaluations as independent samples; they score the same tasks,
    and a model's and its fine-tune's outcomes on a task are positively correlated, so for these
    paired data it is conservative (wider than a paired interval). Without a matching base
    evaluation the base columns and the delta are NULL.
    """
    con.execute(
        """
        CREATE VIEW generalization AS
        WITH paired AS (
            SELECT t.*, x.signal, x.domains AS export_domains,
                   b.evaluation_id AS base_evaluation_id, b.accuracy AS base_accuracy, b.n AS n_base,
                   b.ci_low AS base_low, b.ci_high AS base_high
            FROM evaluations t
            JOIN exports x ON x.export_id = t.trained_on
            LEFT JOIN evaluations b
              ON b.trained_on IS NULL AND b.model = t.base_model AND b.env_id = t.env_id
             AND b.domain = t.domain AND b.seed_start = t.seed_start AND b.seed_end = t.seed_end
             AND b.env_config::VARCHAR IS NOT DISTINCT FROM t.env_config::VARCHAR
            WHERE t.trained_on IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY t.evaluation_id
                                       ORDER BY b.created_at DESC NULLS LAST, b.evaluation_id) = 1
        ),
        scored AS (
            SELECT *, from_json(export_domains, '["VARCHAR"]') AS trained_domains,
                   accuracy - base_accuracy AS delta
            FROM paired
        )
        SELECT s.signal, st.source, st.openness, st.meta_level,
               s.trained_on AS export_id, s.trained_domains, s.domain AS eval_domain, s.env_id,
               CASE WHEN list_contains(s.trained_domains, s.domain) THEN 'in-domain' ELSE 'out-of-domain' END AS split,
               s.model, s.base_model,
               s.accuracy AS trained_accuracy, s.base_accuracy, s.delta,
               s.delta - sqrt((s.accuracy - s.ci_low) ** 2 + (s.base_high - s.base_accuracy) ** 2) AS delta_low,
               s.delta + sqrt((s.ci_high - s.accuracy) ** 2 + (s.base_accuracy - s.base_low) ** 2) AS delta_high,
               s.n AS n_trained, s.n_base,
               s.seed_start, s.seed_end, s.evaluation_id, s.base_evaluation_id
        FROM scored s
        LEFT JOIN signal_types st ON st.name = s.signal
        """
    )



@migration
def m004_loops(con: duckdb.DuckDBPyConnection) -> None:
    """The ``loops`` table: one row per step of a generation-training loop (``agentsynth loop``).

    A step is (loop, arm, seed, generation); generation 0 is the base. Its synthesis run, export,
    checkpoint and evaluations are ordinary rows of ``runs``, ``exports`` and ``evaluations``;
    this table ties them together. ``phase`` is the last finished phase (``synthesized``,
    ``exported``, ``trained``, ``evaluated``); ``figures`` holds the step's counts and timings.
    """
    con.execute(
        """
        CREATE TABLE loops (
            loop VARCHAR NOT NULL,
            arm VARCHAR NOT NULL,
            seed INTEGER NOT NULL,
            generation INTEGER NOT NULL,
            signal VARCHAR,
            phase VARCHAR NOT NULL,
            run_id VARCHAR,
            export_id VARCHAR,
            parent VARCHAR,
            checkpoint VARCHAR,
            model VARCHAR,
            evaluation_ids JSON,
            figures JSON,
            spec_hash VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (loop, arm, seed, generation)
        )
        """
    )


@migration
def m005_probes(con: duckdb.DuckDBPyConnection) -> None:
    """The ``probes`` table: one row per grader × strategy of a probe (``agentsynth probe``).

    ``kind`` is ``hack`` (``failures`` = false accepts of replies wrong by construction) or
    ``brittle`` (false rejects of equivalent correct replies); ``rate`` and its 95% Wilson
    interval ``ci_low``..``ci_high`` are failures / n; ``flagged``: the interval's lower bound is
    above 0 on a grader that is not a surface check (``surface``). ``grader`` joins
    ``signal_types.name``; ``difficulty`` lists the levels probed, ``tasks`` the tasks per level
    (seeds 0 .. tasks - 1), ``judge_model`` the model asked by judge graders (NULL: none).
    """
    con.execute(
        """
        CREATE TABLE probes (
            probe_id VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            env_id VARCHAR NOT NULL,
            grader VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            n INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            rate DOUBLE,
            ci_low DOUBLE,
            ci_high DOUBLE,
            example VARCHAR,
            flagged BOOLEAN NOT NULL,
            surface BOOLEAN NOT NULL,
            difficulty INTEGER[] NOT NULL,
            tasks INTEGER NOT NULL,
            judge_model VARCHAR,
            agentsynth_version VARCHAR NOT NULL
        )
        """
    )


@migration
def m006_episode_seq(con: duckdb.DuckDBPyConnection) -> None:
    """``episode_seq`` on ``episodes``, ``messages`` and ``signals``: the episode's place in the
    order the store's writer committed episodes (1, 2, 3, …), carried by its messages and signals.

    DuckDB keeps each column's min and max per row group; episode ids are random strings, so finding
    one episode's messages and signals meant scanning both tables (a few hundred ms at a million
    episodes). Rows are written in episode order, so ``WHERE episode_seq = ?`` reads one row group
    of each. NULL in rows written before this migration (found by ``episode_id`` as before)."""
    for table in ("episodes", "messages", "signals"):
        con.execute(f"ALTER TABLE {table} ADD COLUMN episode_seq BIGINT")


def applied(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the migrations recorded in the store ([] for a new or foreign file)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = '_migrations'"
    ).fetchone()[0]
    if not exists:
        return []
    return [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY applied_order").fetchall()]


def known() -> list[str]:
    """Names of the migrations this code knows, in order."""
    return [m.__name__ for m in MIGRATIONS]


def check(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return the pending migrations; raise if the store was written by a newer agentsynth."""
    done = applied(con)
    names = known()
    unknown = [n for n in done if n not in names]
    if unknown:
        raise RuntimeError(
            f"the store was written by a newer agentsynth (unknown schema migrations: {', '.join(unknown)}); upgrade agentsynth to read it"
        )
    return [n for n in names if n not in done]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations, each in its own transaction; return their names."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_order INTEGER, applied_at TIMESTAMP)"
    )
    pending = check(con)
    done = len(applied(con))
    for i, fn in enumerate(MIGRATIONS):
        if fn.__name__ not in pending:
            continue
        with transaction(con):
            fn(con)
            con.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [fn.__name__, done + i, utcnow()])
    return pending
