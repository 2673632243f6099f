-- How many raw rows each filter step let through, and why it flagged the rest.
-- duckdb data/warehouse/em.duckdb < sql/queries/filter_funnel.sql
SELECT step_order, step, rows_in, rows_out, flagged, dropping, reasons, seconds
FROM filter_steps
ORDER BY step_order;
