-- Static labeler findings on the filtered samples, by CWE and by what the source called the row.
SELECT f.cwe,
       s.label,
       count(*) AS findings,
       count(DISTINCT f.sample_id) AS samples,
       string_agg(DISTINCT f.rule_id, ', ' ORDER BY f.rule_id) AS rules
FROM code_findings f
JOIN filtered_code_samples s USING (sample_id)
GROUP BY f.cwe, s.label
ORDER BY samples DESC, f.cwe;
