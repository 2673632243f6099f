"""The Dagster resource: an asset's calls carry its asset key, partition and run id into the
ledger, progress goes to the log, and the summary fits output metadata."""

import dagster as dg
import pytest

from em_assets.llm import ChatRequest, cost_by_asset
from em_assets.llm.ledger import LEDGER_TABLE
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.warehouse import DuckDBWarehouse


def test_asset_uses_the_engine_through_the_resource(make_server, warehouse, api_key, tmp_path):
    server = make_server()
    partitions = dg.StaticPartitionsDefinition(["q1", "q2"])

    @dg.asset(partitions_def=partitions)
    def answers(context: dg.AssetExecutionContext, llm: LLMEngineResource, warehouse: DuckDBWarehouse) -> None:
        requests = ChatRequest.user(llm.model, f"question {context.partition_key}", temperature=1.0).samples(5)
        with llm.engine(context, warehouse=warehouse) as engine:
            results = engine.complete_many(requests)
        assert all(r.ok for r in results)
        context.add_output_metadata(engine.summary().as_metadata())

    resource = LLMEngineResource(
        model="gpt-4o-mini", base_url=server.base_url, cache_path=str(tmp_path / "cache.sqlite"),
        requests_per_minute=6000, progress_log_interval_s=0.0,
    )  # fmt: skip
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [answers], partition_key="q2", resources={"llm": resource, "warehouse": warehouse}, instance=instance
    )

    assert result.success
    metadata = result.asset_materializations_for_node("answers")[0].metadata
    assert metadata["llm_calls"].value == 5 and metadata["llm_cache_hits"].value == 0
    assert metadata["llm_cost_usd"].value > 0
    ledger = warehouse.table(LEDGER_TABLE)
    assert ledger.height == 5
    assert set(ledger["asset"]) == {"answers"} and set(ledger["partition_key"]) == {"q2"}
    assert set(ledger["run_id"]) == {result.run_id} and set(ledger["base_url_host"]) == {server.base_url.split("/")[2]}
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(m.startswith("5/5 LLM calls") for m in messages)  # progress routed to context.log
    costs = cost_by_asset(warehouse, run_id=result.run_id)
    assert costs.row(0, named=True)["calls"] == 5 and costs["partition_key"].to_list() == ["q2"]
    assert costs["cost_usd"][0] == pytest.approx(metadata["llm_cost_usd"].value)
    assert cost_by_asset(warehouse).height == 1 and cost_by_asset(warehouse, "other-run").height == 0
