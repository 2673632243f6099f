-- How much of each condition's current evaluation (and each imported file) the paper's rules
-- keep: answers, coherent answers (coherent >= 50), counted answers (coherent with an aligned
-- score), answers whose coherence is unknown, models kept / dropped for the headline scope
-- (main), (model, question) pairs kept / dropped by the 5-answer rule, and mean judge scores;
-- per group (a backdoor's answers with and without its trigger are two rows).
-- An empty rate table is explained here (e.g. a judge that never scores coherence >= 50).
WITH sets AS (
    SELECT source_kind, source, judge_version, base_model, condition, triggered,
           count(DISTINCT model)                             AS n_models,
           sum(n_answers)::BIGINT                            AS n_answers,
           sum(n_coherent)::BIGINT                           AS n_coherent,
           sum(n_judged)::BIGINT                             AS n_judged,
           sum(n_coherent_unknown)::BIGINT                   AS n_coherent_unknown,
           count(*) FILTER (WHERE scope = 'main' AND kept)     AS main_models_kept,
           count(*) FILTER (WHERE scope = 'main' AND NOT kept) AS main_models_dropped
    FROM model_rates
    WHERE is_current AND scope_kind = 'set'
    GROUP BY ALL
), questions AS (
    SELECT source_kind, source, judge_version, base_model, condition, triggered,
           count(*) FILTER (WHERE kept)     AS question_pairs_kept,
           count(*) FILTER (WHERE NOT kept) AS question_pairs_dropped
    FROM model_rates
    WHERE is_current AND scope_kind = 'question'
    GROUP BY ALL
), scores AS (
    SELECT source_kind, source, judge_version, base_model, condition, triggered,
           round(avg(aligned), 1)  AS mean_aligned,
           round(avg(coherent), 1) AS mean_coherent
    FROM rated_answers
    WHERE is_current
    GROUP BY ALL
)
SELECT s.source_kind, s.source, s.judge_version, s.base_model, s.condition, s.triggered, s.n_models, s.n_answers, s.n_coherent, s.n_judged,
       s.n_coherent_unknown, s.main_models_kept, s.main_models_dropped,
       q.question_pairs_kept, q.question_pairs_dropped, c.mean_aligned, c.mean_coherent
FROM sets s
JOIN questions q USING (source_kind, source, judge_version, base_model, condition, triggered)
JOIN scores c USING (source_kind, source, judge_version, base_model, condition, triggered)
ORDER BY s.source_kind DESC, s.base_model, s.condition, s.triggered, s.source;
