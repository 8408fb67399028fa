"""Read queries over the store shared by several commands (regrade, audit, export).

:func:`turn_answers_sql` defines, once, "the answer of a turn" (the last assistant message of
the turn that is not a tool call) and "self-consistency" (that answer's key agrees with a
plurality key among the run's first-turn answers to the same task — the model's own samples,
before any feedback).
"""

from __future__ import annotations


def turn_answers_sql(runs_param: str = "$runs") -> str:
    """SQL for one row per (episode, turn) with an answer, of the ok episodes of the runs whose
    ids are in the list parameter ``runs_param``: episode_id, turn, run_id, task_id, content,
    answer (the canonical key), samples (first-turn answers of the task in the run),
    self_consistent (NULL when samples < 2) and plurality_share."""
    return f"""
        WITH _ans AS (
            SELECT e.run_id, e.task_id, m.episode_id, m.turn,
                   last(m.content ORDER BY m.position) AS content,
                   last(m.answer ORDER BY m.position) AS answer
            FROM messages m JOIN episodes e USING (episode_id)
            WHERE list_contains({runs_param}, e.run_id) AND e.status = 'ok'
              AND m.role = 'assistant' AND m.tool_calls IS NULL
            GROUP BY ALL
        ), _firsts AS (
            SELECT run_id, task_id, answer, count(*) AS c FROM _ans
            WHERE turn = 1 AND coalesce(answer, '') <> '' GROUP BY ALL
        ), _tops AS (
            SELECT run_id, task_id, max(c) AS top, sum(c) AS samples FROM _firsts GROUP BY ALL
        )
        SELECT _ans.episode_id, _ans.turn, _ans.run_id, _ans.task_id, _ans.content, _ans.answer,
               coalesce(_tops.samples, 0) AS samples,
               CASE WHEN _tops.samples >= 2 THEN coalesce(_firsts.c, 0) = _tops.top END AS self_consistent,
               coalesce(_firsts.c, 0) / _tops.samples AS plurality_share
        FROM _ans LEFT JOIN _tops USING (run_id, task_id) LEFT JOIN _firsts USING (run_id, task_id, answer)
    """
