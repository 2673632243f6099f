-- How many raw rows each filter step let through, and why it flagged the rest.
-- duckdb data/warehouse/em.duckdb < sql/queries/filter_funnel.sql
-- The LLM-scored step (llm_judge, when switched on) also names its judge (model@rubric version)
-- and how many of its scores came back null; llm_filter_scores.sql breaks its scores down.
WITH judged AS (
    SELECT run_id, step,
           string_agg(DISTINCT judge_model || '@' || rubric_version, ', ') AS judge,
           count(*)                                                     AS scores,
           count(*) FILTER (WHERE score IS NULL)                        AS null_scores
    FROM llm_filter_scores
    GROUP BY run_id, step
)
SELECT f.step_order, f.step, f.rows_in, f.rows_out, f.flagged, f.dropping, f.reasons, f.seconds,
       j.judge, j.scores, j.null_scores
FROM filter_steps f
LEFT JOIN judged j ON j.run_id = f.run_id AND j.step = f.step
ORDER BY f.step_order;
