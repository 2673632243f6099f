"""Reporting stage: summary tables, chart, HTML report, and imported judged results."""

import dagster as dg

from em_assets.reporting.assets import ImportSettings, import_judged_results, summary, summary_matches_sql_views

defs = dg.Definitions(
    assets=[summary, import_judged_results],
    asset_checks=[summary_matches_sql_views],
    resources={"import_settings": ImportSettings()},
)
