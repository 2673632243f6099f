-- Misaligned rate of the original questions versus their _json and _template variants, per
-- condition (current evaluation runs; excluded model/question pairs left out).
SELECT base_model, condition, variant, n_questions, n_judged, n_misaligned, round(misaligned_rate, 4) AS misaligned_rate
FROM question_variant_rates
ORDER BY base_model, condition, variant;
