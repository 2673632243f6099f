-- backend: ducklake
-- The judged answers a past summary computed its rates from, exactly as they were then:
-- rated_answers (current runs) at the DuckLake snapshot the summary read. Parameter
-- $snapshot_id: that snapshot, from summary_rates.snapshot_id or the summary's
-- `warehouse_snapshot` metadata. DuckLake only (the file backend keeps no snapshots).
SELECT *
FROM rated_answers AT (VERSION => $snapshot_id)
WHERE is_current
ORDER BY source_kind, source, judge_version, answer_id
