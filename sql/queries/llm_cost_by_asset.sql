-- LLM calls, tokens and estimated cost per asset (and partition), most expensive first.
-- Optional filter: pass a run id as $run_id, or NULL for all runs.
SELECT
    coalesce(asset, '(none)')                         AS asset,
    partition_key,
    count(*)                                          AS calls,
    count(*) FILTER (WHERE cache_hit)                 AS cache_hits,
    count(*) FILTER (WHERE NOT cache_hit)             AS network_calls,
    count(*) FILTER (WHERE status <> 'ok')            AS failed,
    CAST(sum(attempts) AS BIGINT)                     AS attempts,
    CAST(sum(tokens_in) AS BIGINT)                    AS tokens_in,
    CAST(sum(tokens_out) AS BIGINT)                   AS tokens_out,
    round(sum(coalesce(cost_usd, 0)), 6)              AS cost_usd,
    count(*) FILTER (WHERE cost_usd IS NULL AND NOT cache_hit AND status = 'ok') AS unpriced_calls,
    min(created_at)                                   AS first_call_at,
    max(created_at)                                   AS last_call_at
FROM llm_calls
WHERE $run_id IS NULL OR run_id = $run_id
GROUP BY ALL
ORDER BY cost_usd DESC, calls DESC, asset, partition_key;
