-- How the word judges answered on the current evaluation runs (the paper's deception sets):
-- per group, question set, word metric and verdict, how many verdicts, whether that verdict
-- counts as deceptive (NULL: counted in no rate, e.g. UNKNOWN or 'unparsed'), and one judge
-- text as an example (an unparsed text shows why). Rates with CIs: summary_deception_rates.
SELECT base_model, condition, triggered, question_set, metric, verdict, deceptive,
       count(*)                 AS n,
       min(judge_text)          AS example_judge_text,
       judge_version, source    AS eval_run_id
FROM rated_verdicts
WHERE is_current
GROUP BY ALL
ORDER BY base_model, condition, triggered, question_set, metric, verdict;
