-- How a base model's misaligned rate per condition and question-set scope moved across
-- evaluation runs and judges (mean over kept models, the paper's estimator; CIs of the current
-- runs are in summary_rates). Imported files are in condition_rates with source_kind 'import'.
SELECT m.base_model, m.condition, m.triggered, m.scope, r.started_at, m.source AS eval_run_id, r.code_version, m.judge_version,
       m.n_models, m.n_models_dropped, m.n_judged, round(m.misaligned_rate, 4) AS misaligned_rate
FROM condition_rates m
JOIN eval_runs r ON r.eval_run_id = m.source AND r.base_model = m.base_model AND r.condition = m.condition
WHERE m.source_kind = 'run' AND m.scope_kind = 'set'
ORDER BY m.base_model, m.condition, m.triggered, m.scope, r.started_at, m.judge_version;
