"""The code location loads, and its assets follow the project's contracts."""

import dagster as dg

from em_assets.definitions import defs
from em_assets.partitions import TRAINED_CONDITIONS
from em_assets.pools import DUCKDB_WRITER_POOL, LOCAL_TRAINING_POOL


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_data_layer_asset_writes_through_the_duckdb_pool_and_has_a_blocking_contract():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    datasets = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "datasets"]
    assert len(datasets) == 8
    # The evil-numbers set runs a local model or waits on a provider, and writes once at the end
    # with a lock retry, as fine_tuned_model does: it holds the compute pool instead.
    compute = {"evil_numbers_dataset"}
    for key in datasets:
        expected = LOCAL_TRAINING_POOL if key.to_user_string() in compute else DUCKDB_WRITER_POOL
        assert graph.get(key).pools == {expected}, key
    checked = {c.asset_key.to_user_string() for c in graph.asset_check_keys}
    assert {f"{c}_dataset" for c in TRAINED_CONDITIONS} <= checked
