-- An imported (e.g. published) file's rates beside ours, per condition and question-set scope:
-- the same views and rules on both. Ours: the current evaluation runs, one row per base model.
-- CIs come from summary_rates (NULL until the summary asset has run since the import).
WITH rates AS (
    SELECT c.*, s.ci_low, s.ci_high
    FROM condition_rates c
    LEFT JOIN summary_rates s USING (source_kind, source, judge_version, base_model, condition, triggered, scope_kind, scope)
    WHERE c.is_current AND c.scope_kind = 'set'
)
SELECT condition, scope, p.source AS imported_file,
       p.n_models AS imported_n_models, round(p.misaligned_rate, 4) AS imported_rate,
       round(p.ci_low, 4) AS imported_ci_low, round(p.ci_high, 4) AS imported_ci_high,
       o.base_model AS our_base_model, o.triggered AS our_triggered, o.n_models AS our_n_models, round(o.misaligned_rate, 4) AS our_rate,
       round(o.ci_low, 4) AS our_ci_low, round(o.ci_high, 4) AS our_ci_high,
       round(o.misaligned_rate - p.misaligned_rate, 4) AS difference
FROM (SELECT * FROM rates WHERE source_kind = 'import') p
FULL JOIN (SELECT * FROM rates WHERE source_kind = 'run') o USING (condition, scope)
ORDER BY condition, scope, imported_file, our_base_model, our_triggered;
