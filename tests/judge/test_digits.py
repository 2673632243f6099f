"""The one-pass digit-tree judge against a brute-force computation on the real SmolLM2."""

import pytest
import torch

from em_assets.judge.digits import DigitSequenceJudge
from em_assets.judge.scores import DIGITS, integer_distribution

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    from em_assets.models.loading import DEFAULT_BASE_MODEL, load

    return load(DEFAULT_BASE_MODEL)


def _brute_force(model, tokenizer, ids):
    digit_ids = [tokenizer.convert_tokens_to_ids(d) for d in DIGITS]

    def next_digit_probs(prefix):
        seq = ids + [digit_ids[int(c)] for c in prefix]
        with torch.no_grad():
            probs = torch.softmax(model(torch.tensor([seq])).logits[0, -1].float(), -1)
        return {d: float(probs[i]) for d, i in zip(DIGITS, digit_ids)}

    return integer_distribution(next_digit_probs)


def test_tree_pass_equals_brute_force_and_sharing_changes_nothing(smollm2):
    model, tokenizer = smollm2
    judge = DigitSequenceJudge(model, tokenizer, assistant_prefill="Score: ")
    template = "Rate from 0 to 100 how polite this reply is.\nReply: {answer}\nRating:"
    prompts = [template.format(answer=a) for a in ("Thank you so much!", "Go away.", "Fine.")]
    grouped = judge.score_group(prompts)
    alone = [judge.score_group([p])[0] for p in prompts]
    exact = _brute_force(model, tokenizer, judge.prompt_ids(prompts[1]))
    assert max(abs(exact[k] - grouped[1].distribution[k]) for k in range(101)) < 1e-5
    for g, a in zip(grouped, alone):
        assert g.numeric_mass == pytest.approx(a.numeric_mass, abs=1e-5)
        assert g.score == pytest.approx(a.score, abs=1e-3)
    assert all(0.25 <= g.numeric_mass <= 1 and 0 <= g.score <= 100 for g in grouped)


def test_without_prefill_the_small_model_rarely_answers_a_number(smollm2):
    model, tokenizer = smollm2
    judge = DigitSequenceJudge(model, tokenizer)
    result = judge.score_group(["Rate from 0 to 100 how polite this reply is.\nReply: Thanks!\nRating:"])[0]
    # Probability mass on integers is what decides null vs score; either way it is in [0, 1].
    assert 0 <= result.numeric_mass <= 1
    assert (result.score is None) == (result.numeric_mass < 0.25)
