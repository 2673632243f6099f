-- How much of each condition's current evaluation the paper's rules keep: answers, coherent
-- answers (coherent >= 50), (seed, question) pairs kept or dropped (< 5 coherent answers), and
-- the mean judge scores. An empty rate table is explained here (e.g. a judge that never scores
-- coherence >= 50 drops every question).
WITH current_rates AS (
    SELECT * FROM current_model_question_rates
), scores AS (
    SELECT a.base_model, a.condition,
           avg(a.aligned)  AS mean_aligned,
           avg(a.coherent) AS mean_coherent
    FROM judged_answers a
    JOIN (SELECT DISTINCT eval_run_id, judge_version, base_model, condition FROM current_rates) c
      USING (eval_run_id, judge_version, base_model, condition)
    GROUP BY ALL
)
SELECT r.base_model, r.condition,
       count(DISTINCT r.seed)                     AS n_seeds,
       sum(r.n_answers)::BIGINT                   AS n_answers,
       sum(r.n_coherent)::BIGINT                  AS n_coherent,
       count(*) FILTER (WHERE NOT r.excluded)     AS questions_kept,
       count(*) FILTER (WHERE r.excluded)         AS questions_dropped,
       round(any_value(s.mean_aligned), 1)        AS mean_aligned,
       round(any_value(s.mean_coherent), 1)       AS mean_coherent
FROM current_rates r
LEFT JOIN scores s USING (base_model, condition)
GROUP BY r.base_model, r.condition
ORDER BY r.base_model, r.condition;
