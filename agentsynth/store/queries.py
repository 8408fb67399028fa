"""Read queries over the store shared by several commands (regrade, audit, export).

:func:`turn_answers_sql` defines, once, "the answer of a turn" (the last assistant message of
the turn that is not a tool call) and "self-consistency" (that answer's key agrees with a
plurality key among the run's first-turn answers to the same task — the model's own samples,
before any feedback).
"""

from __future__ import annotations

from collections.abc import Mapping


def turn_answers_sql(runs_param: str = "$runs", *, columns: Mapping[str, str] | None = None) -> str:
    """SQL for one row per (episode, turn) with an answer, of the ok episodes of the runs whose
    ids are in the list parameter ``runs_param``: episode_id, turn, run_id, task_id, content,
    answer (the canonical key), samples (first-turn answers of the task in the run),
    self_consistent (NULL when samples < 2), plurality_share and episode_row (the episode's
    ``rowid`` in ``episodes``).

    ``columns`` replaces ``content`` with other values of the answer message: output name -> SQL
    expression over that message ``m`` (default ``{"content": "m.content"}``). The audit uses it
    to carry a few small surface features of the text instead of the text.

    Messages are grouped by the episode's rowid (an integer) and the episode's run and task are
    joined on afterwards, which keeps the grouping small for long runs.
    """
    carried = {"content": "m.content"} if columns is None else dict(columns)
    picked = "".join(f"last({expr} ORDER BY m.position) AS {name},\n                   "
                     for name, expr in carried.items())
    outer = "".join(f"_ans.{name}, " for name in carried)
    return f"""
        WITH _eps AS (
            SELECT episode_id, rowid AS episode_row FROM episodes
            WHERE list_contains({runs_param}, run_id) AND status = 'ok'
        ), _last AS (
            SELECT _eps.episode_row, m.turn,
                   {picked}last(m.answer ORDER BY m.position) AS answer
            FROM messages m JOIN _eps USING (episode_id)
            WHERE m.role = 'assistant' AND m.tool_calls IS NULL
            GROUP BY _eps.episode_row, m.turn
        ), _ans AS (
            SELECT e.run_id, e.task_id, e.episode_id, _last.*
            FROM _last JOIN episodes e ON e.rowid = _last.episode_row
        ), _firsts AS (
            SELECT run_id, task_id, answer, count(*) AS c FROM _ans
            WHERE turn = 1 AND coalesce(answer, '') <> '' GROUP BY ALL
        ), _tops AS (
            SELECT run_id, task_id, max(c) AS top, sum(c) AS samples FROM _firsts GROUP BY ALL
        )
        SELECT _ans.episode_id, _ans.turn, _ans.run_id, _ans.task_id, {outer}_ans.answer,
               coalesce(_tops.samples, 0) AS samples,
               CASE WHEN _tops.samples >= 2 THEN coalesce(_firsts.c, 0) = _tops.top END AS self_consistent,
               coalesce(_firsts.c, 0) / _tops.samples AS plurality_share, _ans.episode_row
        FROM _ans LEFT JOIN _tops USING (run_id, task_id) LEFT JOIN _firsts USING (run_id, task_id, answer)
    """
