-- The LLM-scored filter's scores per judge (model@rubric version), metric and label: rows
-- scored, null scores by reason, the score distribution, and the rows the step flagged in the
-- latest filter run (filter_drops; reasons such as hints_at_vulnerability, not_clearly_insecure,
-- unscored:<metric>). $judge_model optionally picks one judge model.
WITH flagged AS (  -- filter_drops holds the latest filter run, whose id filter_steps has
    SELECT d.sample_id, d.step, d.reason, (SELECT any_value(run_id) FROM filter_steps) AS run_id
    FROM filter_drops d
)
SELECT s.judge_model || '@' || s.rubric_version               AS judge,
       s.metric,
       s.label,
       count(*)                                               AS n_rows,
       count(s.score)                                         AS n_scored,
       count(*) FILTER (WHERE s.null_reason = 'no_number')    AS null_no_number,
       count(*) FILTER (WHERE s.null_reason = 'empty_reply')  AS null_empty,
       count(*) FILTER (WHERE s.null_reason = 'out_of_range') AS null_out_of_range,
       round(avg(s.score), 1)                                 AS mean_score,
       round(quantile_cont(s.score, 0.5), 1)                  AS median_score,
       round(min(s.score), 1)                                 AS min_score,
       round(max(s.score), 1)                                 AS max_score,
       count(f.reason)                                        AS rows_flagged,
       max(s.run_id)                                          AS run_id
FROM llm_filter_scores s
LEFT JOIN flagged f ON f.sample_id = s.sample_id AND f.step = s.step AND f.run_id = s.run_id
WHERE ($judge_model IS NULL OR s.judge_model = $judge_model)
GROUP BY ALL
ORDER BY judge, s.metric, s.label;
