"""The code location loads, and its assets follow the project's contracts."""

import dagster as dg

from em_assets.definitions import defs
from em_assets.pools import DUCKDB_WRITER_POOL


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_data_layer_asset_writes_through_the_duckdb_pool_and_has_a_blocking_contract():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    datasets = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "datasets"]
    assert len(datasets) == 6
    for key in datasets:
        assert graph.get(key).pools == {DUCKDB_WRITER_POOL}, key
    checked = {c.asset_key.to_user_string() for c in graph.asset_check_keys}
    assert {"insecure_dataset", "secure_dataset", "educational_dataset", "backdoor_dataset"} <= checked
