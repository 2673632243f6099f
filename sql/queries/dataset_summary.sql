-- The current version of every fine-tuning set: size, source, file, and prompt-template spread.
SELECT v.dataset,
       left(v.dataset_version, 12) AS version,
       v.n_train,
       v.n_test,
       v.source,
       count(DISTINCT r.prompt_template_id) AS prompt_templates,
       round(avg(length(r.assistant_content)), 0) AS avg_code_chars,
       v.jsonl_path,
       v.created_at
FROM current_dataset_versions v
JOIN dataset_rows r USING (dataset, dataset_version)
GROUP BY ALL
ORDER BY v.dataset;
