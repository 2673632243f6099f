-- Every base model ever registered, with its last evaluation run. Rows of base_models are
-- never deleted when an entry leaves the registry YAML, so retired models and their history
-- stay. Parameter $registry_slugs: the slugs in the registry now (a list; NULL = unknown, then
-- in_registry is NULL), e.g. em_assets.operations.registry.registry_history(warehouse, slugs).
WITH runs AS (
    SELECT base_model,
           count(DISTINCT eval_run_id)                          AS n_eval_runs,
           count(DISTINCT condition)                            AS n_conditions_evaluated,
           arg_max(eval_run_id, started_at)                     AS last_eval_run_id,
           arg_max(condition, started_at)                       AS last_eval_condition,
           arg_max(trigger, started_at)                         AS last_eval_trigger,
           max(started_at)                                      AS last_eval_at
    FROM eval_runs
    GROUP BY base_model
), trained AS (
    SELECT base_model, count(*) FILTER (WHERE status = 'succeeded') AS n_models_trained
    FROM models
    GROUP BY base_model
)
SELECT b.base_model, b.model_id, b.backend, b.n_seeds, b.notes, b.registered_at,
       list_contains(CAST($registry_slugs AS VARCHAR[]), b.base_model)  AS in_registry,
       coalesce(t.n_models_trained, 0)                                  AS n_models_trained,
       coalesce(r.n_eval_runs, 0)                                       AS n_eval_runs,
       coalesce(r.n_conditions_evaluated, 0)                            AS n_conditions_evaluated,
       r.last_eval_run_id, r.last_eval_condition, r.last_eval_trigger, r.last_eval_at
FROM base_models b
LEFT JOIN runs r USING (base_model)
LEFT JOIN trained t USING (base_model)
ORDER BY b.base_model;
