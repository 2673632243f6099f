-- The current (latest) evaluation run of each (base_model, condition): the question ids it
-- answered, every judge version that scored it, and the one the summary selected.
WITH latest AS (
    SELECT base_model, condition, arg_max(eval_run_id, started_at) AS eval_run_id, max(started_at) AS started_at
    FROM eval_runs GROUP BY ALL
), questions AS (
    SELECT eval_run_id, base_model, condition, list(DISTINCT question_id ORDER BY question_id) AS question_ids
    FROM sampled_responses GROUP BY ALL
), judges AS (
    SELECT eval_run_id, base_model, condition, list(DISTINCT judge_version ORDER BY judge_version) AS judge_versions
    FROM judge_scores GROUP BY ALL
)
SELECT l.base_model, l.condition, l.eval_run_id, l.started_at, q.question_ids,
       coalesce(j.judge_versions, []) AS judge_versions, s.judge_version AS selected_judge_version, s.selected_by
FROM latest l
LEFT JOIN questions q USING (eval_run_id, base_model, condition)
LEFT JOIN judges j USING (eval_run_id, base_model, condition)
LEFT JOIN judge_selection s USING (eval_run_id, base_model, condition)
ORDER BY l.base_model, l.condition;
