-- What fine-tuning moved, judge-free: each condition's probe shifts versus the un-tuned base
-- model (and insecure versus secure), with 95 % bootstrap CIs, as the last summary computed them.
SELECT base_model, probe, condition, reference, unit, round(estimate, 4) AS estimate,
       round(ci_low, 4) AS ci_low, round(ci_high, 4) AS ci_high, n_items, n_groups, n_seeds, n_seeds_reference
FROM summary_probe_shifts
ORDER BY base_model, probe, unit, condition, reference;
