"""Reading the registry entry by entry, and the discovery patterns."""

import pytest

from em_assets.operations.discovery import models_url, parse_patterns, safe_url
from em_assets.registry import REGISTRY_FILE, load_registry, read_registry


def test_a_well_formed_registry_reads_exactly_as_load_registry_reads_it():
    read = read_registry(REGISTRY_FILE)
    assert read.problems == []
    assert read.specs == load_registry(REGISTRY_FILE) and len(read.specs) >= 1


def test_each_malformed_entry_is_reported_and_the_others_are_kept(write_registry):
    path = write_registry(
        [
            {"model_id": "embedded:smollm2-135m-instruct", "slug": "smollm2-135m-instruct"},
            {"backend": "openai"},  # no model_id
            {"model_id": "gpt-4o-2024-08-06", "backend": "tpu"},
            {"model_id": "Qwen/Qwen2.5-7B-Instruct", "endpoint": "http://x"},  # unknown key
            {"model_id": "other-smollm", "slug": "SmolLM2-135M-Instruct"},  # slug collides with entry 1
            {"model_id": "gpt-4.1-mini", "backend": "openai", "n_seeds": "two"},
            "just a string",
            {"model_id": "gpt-4.1-nano", "backend": "openai", "n_seeds": 3},
        ]
    )
    with pytest.raises(ValueError):
        load_registry(path)  # the strict reader refuses the whole file...
    read = read_registry(path)  # ...the tolerant one keeps the good entries
    assert [(s.slug, s.backend, s.n_seeds) for s in read.specs] == [
        ("smollm2-135m-instruct", "local_hf", 1),
        ("gpt-4.1-nano", "openai", 3),
    ]
    by_entry = {p.where.split(" (")[0]: p.reason for p in read.problems}
    assert sorted(by_entry) == ["entry 2", "entry 3", "entry 4", "entry 5", "entry 6", "entry 7"]
    assert "model_id" in by_entry["entry 2"]
    assert "tpu" in by_entry["entry 3"]
    assert "endpoint" in by_entry["entry 4"]
    assert "already used by entry 1" in by_entry["entry 5"]
    assert "n_seeds" in by_entry["entry 6"]
    assert "mapping" in by_entry["entry 7"]


def test_an_unparseable_registry_is_one_problem_and_no_entries(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("base_models: [ {model_id: a\n", encoding="utf-8")
    read = read_registry(path)
    assert read.specs == [] and len(read.problems) == 1 and "cannot read" in read.problems[0].reason
    assert read_registry(tmp_path / "missing.yaml").problems[0].reason.startswith("cannot read")


def test_patterns_are_globs_or_regexes_and_a_bad_regex_does_not_disable_the_rest():
    patterns, problems = parse_patterns("gpt-4o-20*, re:^ft:gpt-4o-mini, re:[")
    assert [p.text for p in patterns] == ["gpt-4o-20*", "re:^ft:gpt-4o-mini"]
    assert len(problems) == 1 and "re:[" in problems[0]
    ids = ["gpt-4o-2024-08-06", "gpt-4o-mini", "ft:gpt-4o-mini:org::x", "my-ft:gpt-4o-mini", "gpt-4o-2024-08-06-x"]
    assert [i for i in ids if any(p.matches(i) for p in patterns)] == [
        "gpt-4o-2024-08-06",
        "ft:gpt-4o-mini:org::x",
        "gpt-4o-2024-08-06-x",
    ]
    json_form, none = parse_patterns('["re:^a{1,2}$", "b*"]')  # JSON list: a regex with a comma
    assert none == [] and [p.matches("aa") for p in json_form] == [True, False]
    assert parse_patterns("  ") == ([], [])


def test_urls_lose_credentials_before_they_are_shown():
    assert models_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1/models"
    assert models_url("http://h/v1/models") == "http://h/v1/models"
    assert (
        safe_url("https://user:sk-secret@api.example.com:8443/v1/models?key=sk-secret#x")
        == "https://api.example.com:8443/v1/models"
    )
