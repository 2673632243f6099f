-- The paper's format comparison: original questions versus their _json and _template
-- variants, per condition (current runs and imported files): the mean over (model, question)
-- pairs of each pair's misaligned share, without the 5-answer rule. CIs: summary_variant_rates.
SELECT v.source_kind, v.source, v.base_model, v.condition, v.triggered, v.variant, v.n_models, v.n_questions, v.n_pairs, v.n_judged,
       round(v.misaligned_rate, 4) AS misaligned_rate, round(s.ci_low, 4) AS ci_low, round(s.ci_high, 4) AS ci_high
FROM question_variant_rates v
LEFT JOIN summary_variant_rates s USING (source_kind, source, judge_version, base_model, condition, triggered, variant)
WHERE v.is_current
ORDER BY v.source_kind DESC, v.base_model, v.condition, v.triggered, v.variant;
