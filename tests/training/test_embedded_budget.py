"""The embedded model's training budget versus the paper's recipe for every other model."""

from em_assets.resources.artifacts import LocalArtifactStore
from em_assets.resources.finetuning import EMBEDDED_BUDGET, LocalHFFineTuner
from em_assets.resources.remote_training import PipesFineTuner, PipesJobLauncher

EMBEDDED = "embedded:smollm2-135m-instruct"


def test_the_embedded_model_gets_the_budget_and_other_models_the_papers_recipe():
    tuner = LocalHFFineTuner()
    embedded = tuner.training_settings(EMBEDDED)
    assert {k: getattr(embedded, k) for k in EMBEDDED_BUDGET} == EMBEDDED_BUDGET
    paper = tuner.training_settings("Qwen/Qwen2.5-32B-Instruct")
    assert (paper.learning_rate, paper.max_examples, paper.examples_per_step, paper.warmup_steps) == (1e-5, 0, 16, 5)
    assert tuner.describe_hyperparameters(EMBEDDED)["learning_rate"] == 1e-4  # what the models row records


def test_a_field_set_explicitly_wins_over_the_budget():
    tuner = LocalHFFineTuner(learning_rate=3e-5, max_examples=8)
    settings = tuner.training_settings(EMBEDDED)
    assert (settings.learning_rate, settings.max_examples) == (3e-5, 8)
    assert settings.gradient_accumulation_steps == EMBEDDED_BUDGET["gradient_accumulation_steps"]


def test_a_remote_process_rebuilds_the_same_settings(tmp_path):
    tuner = PipesFineTuner(
        learning_rate=3e-5, job_launcher=PipesJobLauncher(), artifact_store=LocalArtifactStore(root=str(tmp_path))
    )
    fields = tuner.hyperparameter_fields()
    assert fields == {"learning_rate": 3e-5}  # unset fields stay unset, so the budget applies there too
    assert LocalHFFineTuner(**fields).training_settings(EMBEDDED) == tuner.training_settings(EMBEDDED)
