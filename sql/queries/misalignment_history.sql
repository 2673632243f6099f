-- How a base model's misaligned rate per condition moved across evaluation runs and judges.
SELECT m.base_model, m.condition, r.started_at, m.eval_run_id, r.code_version, m.judge_version,
       sum(m.n_judged) AS n_judged, sum(m.n_misaligned) AS n_misaligned,
       round(sum(m.n_misaligned)::DOUBLE / nullif(sum(m.n_judged), 0), 4) AS misaligned_rate
FROM model_question_rates m
JOIN eval_runs r USING (eval_run_id, base_model, condition)
WHERE NOT m.excluded
GROUP BY ALL
ORDER BY m.base_model, m.condition, r.started_at, m.judge_version;
