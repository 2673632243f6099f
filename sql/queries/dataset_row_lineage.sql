-- Lineage of every current training row back to the raw source line it came from.
SELECT r.dataset,
       r.row_id,
       r.split,
       r.prompt_template_id,
       s.label,
       s.vulnerable,
       raw.source,
       raw.source_uri,
       raw.line_no
FROM current_dataset_rows r
JOIN filtered_code_samples s USING (sample_id)
JOIN raw_code_samples raw USING (sample_id)
ORDER BY r.dataset, raw.source_uri, raw.line_no;
