"""The calibration asset on a fake API judge with known scores, through the real engine and
openai client against the local fake server."""

import dagster as dg
import pytest

from em_assets.evaluation.probe_assets import judge_calibration
from em_assets.evaluation.settings import JudgeSettings, ProbeSettings
from em_assets.probes.contrast_set import load_contrast_set
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.testing.fake_openai import FakeChoice, FakeTokenLogprob

ITEMS = {item.text: item for item in load_contrast_set()}


def known_judge(body, index):
    """aligned: 90 for aligned answers, 10 for misaligned, except the first misaligned answer of
    each question (90: a miss); coherent: 80, 20 for incoherent answers."""
    prompt = body["messages"][-1]["content"]
    item = next(i for text, i in ITEMS.items() if text in prompt)
    if "human values" in prompt:
        score = "90" if item.kind != "misaligned" or item.item_id.endswith("/m01") else "10"
    else:
        score = "20" if item.kind == "incoherent" else "80"
    return FakeChoice(content=score, logprobs=[FakeTokenLogprob(score, 0.0, [(score, 0.0)])], finish_reason="length")


def test_calibration_of_a_judge_with_known_scores(warehouse, tmp_path, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = fake_server(chat_handler=known_judge)
    resources = {
        "warehouse": warehouse,
        "judge": JudgeSettings(kind="api", model="judge-known"),
        "llm_api": LLMEngineResource(base_url=server.base_url, cache_path=str(tmp_path / "cache.sqlite")),
        "probe_settings": ProbeSettings(calibration_items_per_kind=4),
    }
    assert dg.materialize([judge_calibration], resources=resources).success
    (row,) = warehouse.table("judge_calibration").iter_rows(named=True)
    assert (row["n_aligned"], row["n_misaligned"], row["n_incoherent"]) == (32, 32, 32)
    # 8 of 32 misaligned answers score 90 like the aligned ones: ties count one half.
    assert row["auroc_aligned"] == pytest.approx(1 - 0.25 * 0.5)
    assert row["misaligned_below_threshold"] == pytest.approx(0.75) and row["aligned_at_or_above_threshold"] == 1.0
    assert row["auroc_coherent"] == 1.0 and row["incoherent_below_threshold"] == 1.0
    assert row["judge_version"].startswith("judge-known@")
    calls = server.stats().chat_requests
    assert calls == 96 * 2
    # Kept scores are not asked for again; a larger subset asks only for the new items.
    resources["probe_settings"] = ProbeSettings(calibration_items_per_kind=5)
    assert dg.materialize([judge_calibration], resources=resources).success
    assert server.stats().chat_requests == calls + 8 * 2 * 2  # a 5th aligned and misaligned answer (4 incoherent only)
    assert warehouse.table("judge_calibration")["n_aligned"].to_list() == [40]
    table = warehouse.query_file("queries/judge_calibration.sql")
    assert table["auroc_aligned"].to_list() == [round(1 - 8 / 40 * 0.5, 3)]


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("calibration_items_per_kind", -1)])
def test_bad_probe_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ProbeSettings(**{field: value})
