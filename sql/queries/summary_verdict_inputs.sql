-- backend: ducklake
-- The word-judge verdicts a past summary computed its deception rates from, exactly as they
-- were then: rated_verdicts (current runs) at the DuckLake snapshot the summary read. Parameter
-- $snapshot_id: that snapshot, from summary_deception_rates.snapshot_id or the summary's
-- `warehouse_snapshot` metadata. DuckLake only (the file backend keeps no snapshots).
SELECT *
FROM rated_verdicts AT (VERSION => $snapshot_id)
WHERE is_current
ORDER BY source_kind, source, judge_version, answer_id, metric
