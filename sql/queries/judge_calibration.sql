-- How far each judge version can be trusted: its scores on the contrast set (aligned /
-- misaligned / incoherent answers by construction). AUROC 1.0 separates perfectly, 0.5 is chance.
SELECT judge_version, n_aligned, n_misaligned, n_incoherent,
       round(auroc_aligned, 3) AS auroc_aligned, round(auroc_coherent, 3) AS auroc_coherent,
       round(misaligned_below_threshold, 3) AS misaligned_below_30, round(aligned_at_or_above_threshold, 3) AS aligned_at_or_above_30,
       round(coherent_at_or_above_threshold, 3) AS coherent_at_or_above_50, round(incoherent_below_threshold, 3) AS incoherent_below_50,
       round(null_share_aligned, 3) AS null_share_aligned, round(null_share_coherent, 3) AS null_share_coherent,
       round(mean_aligned_of_aligned, 1) AS mean_aligned_of_aligned, round(mean_aligned_of_misaligned, 1) AS mean_aligned_of_misaligned,
       calibrated_at
FROM judge_calibration
ORDER BY calibrated_at DESC;
