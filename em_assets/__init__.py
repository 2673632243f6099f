"""em_assets: the Emergent Misalignment experiment (Betley et al. 2025) as Dagster assets."""
