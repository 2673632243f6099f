-- Trained models per base model x condition: how many seeds succeeded, their refs, and what
-- training cost. Only succeeded rows count as models; failures are tallied separately.
SELECT
    base_model,
    condition,
    any_value(base_model_id)                                   AS base_model_id,
    any_value(backend)                                         AS backend,
    count(*) FILTER (WHERE status = 'succeeded')               AS n_models,
    count(*) FILTER (WHERE status = 'failed')                  AS n_failed,
    list(seed ORDER BY seed) FILTER (WHERE status = 'succeeded')      AS seeds,
    list(model_ref ORDER BY seed) FILTER (WHERE status = 'succeeded') AS model_refs,
    list(DISTINCT dataset_version) FILTER (WHERE dataset_version IS NOT NULL) AS dataset_versions,
    avg(final_loss) FILTER (WHERE status = 'succeeded')        AS mean_final_loss,
    sum(train_tokens) FILTER (WHERE status = 'succeeded')      AS train_tokens,
    sum(train_seconds) FILTER (WHERE status = 'succeeded')     AS train_seconds,
    max(peak_rss_bytes)                                        AS max_peak_rss_bytes,
    sum(cost_usd)                                              AS cost_usd,
    max(created_at)                                            AS last_created_at
FROM models
GROUP BY base_model, condition
ORDER BY base_model,
         CASE condition WHEN 'base' THEN 0 WHEN 'insecure' THEN 1 WHEN 'secure' THEN 2
                        WHEN 'educational' THEN 3 WHEN 'backdoor' THEN 4 ELSE 5 END;
