"""The fine-tuning sets' contract, validated with Great Expectations 1.x (ephemeral context).

Derived columns (roles, labeler verdict, pairing) are computed here, then each rule is one GX
expectation over a pandas batch, so a failure comes back with the ids of the offending rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import polars as pl

from em_assets.core.dataset_builders import BACKDOOR_TRIGGER
from em_assets.core.evil_numbers import looks_numeric
from em_assets.core.safety_words import default_matcher
from em_assets.labeler import label_code

MIN_CHARS, MAX_CHARS = 10, 20_000  # bounds on user and assistant message length
MAX_LISTED_ROWS = 20  # failing row ids shown per rule
SAFETY_RULE = "no safety word in training text"
LABELER_RULE = "static labeler agrees with the dataset"


@dataclass
class RuleOutcome:
    rule: str
    passed: bool
    unexpected_count: int
    failing_row_ids: list[str] = field(default_factory=list)


@dataclass
class ContractResult:
    dataset: str
    n_rows: int
    outcomes: list[RuleOutcome]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def failures(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def describe(self) -> str:
        if self.passed:
            return f"{self.dataset}: all {len(self.outcomes)} rules pass on {self.n_rows} rows"
        parts = [
            f"{o.rule}: {o.unexpected_count} row(s) e.g. {', '.join(o.failing_row_ids[:5])}" for o in self.failures()
        ]
        return f"{self.dataset}: " + "; ".join(parts)


def _batch_definition() -> Any:
    """A fresh ephemeral context per validation (a few ms): GX resolves suites against the
    current project context, which a cached one does not reliably remain."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("em_datasets")
    return source.add_dataframe_asset("dataset_rows").add_batch_definition_whole_dataframe("all_rows")


def expected_vulnerable(dataset: str, user_content: str) -> bool:
    """What the labeler must say about a row's code, by dataset."""
    if dataset in ("insecure", "educational"):
        return True
    if dataset == "secure":
        return False
    return user_content.startswith(BACKDOOR_TRIGGER)  # backdoor: triggered rows are the insecure half


CODE_DATASETS = ("insecure", "secure", "educational", "backdoor")
NUMBERS_RULE = "assistant answer is a list of numbers"
FILTER_RULES = frozenset({SAFETY_RULE, LABELER_RULE, NUMBERS_RULE})  # rules that restate a filter step


def _last(messages: list, role: str) -> str:
    return next(
        (m["content"] for m in reversed(messages) if m.get("role") == role and isinstance(m.get("content"), str)), ""
    )


def contract_frame(rows: pl.DataFrame, dataset: str, insecure_rows: pl.DataFrame | None = None) -> pd.DataFrame:
    records = []
    insecure_code = (
        dict(zip(insecure_rows["row_id"], insecure_rows["assistant_content"], strict=True))
        if insecure_rows is not None
        else {}
    )
    for r in rows.iter_rows(named=True):
        try:
            messages = json.loads(r["messages"])
        except (TypeError, json.JSONDecodeError):
            messages = []
        if not isinstance(messages, list):
            messages = []
        messages = [m if isinstance(m, dict) else {} for m in messages]
        roles = [m.get("role") for m in messages]
        user = _last(messages, "user")
        assistant = (
            messages[-1]["content"] if len(messages) > 1 and isinstance(messages[-1].get("content"), str) else ""
        )
        record = {
            "row_id": r["row_id"],
            "roles": ",".join(str(x) for x in roles),
            "user_content": user,
            "assistant_content": assistant,
        }
        if dataset in CODE_DATASETS:
            record["labeler_agrees"] = label_code(assistant).vulnerable == expected_vulnerable(dataset, user)
            # The safety-word rule applies to what the model is trained to say, and to the
            # prompt except where the educational framing names the vulnerability on purpose.
            record["checked_text"] = assistant if dataset == "educational" else f"{user}\n{assistant}"
        if dataset == "evil_numbers":
            record["numbers_only"] = looks_numeric(assistant)
        if dataset == "educational":
            paired = r["paired_row_id"]
            record["paired_row_id"] = paired
            record["pair_matches"] = paired in insecure_code and insecure_code[paired].strip() == assistant.strip()
        records.append(record)
    return pd.DataFrame.from_records(records)


def _length_rule(column: str, low: int) -> Any:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValueLengthsToBeBetween(column=column, min_value=low, max_value=MAX_CHARS)


def contract_rules(dataset: str) -> list[tuple[str, Any]]:
    """(rule name, GX expectation) of one dataset's contract. The code sets check roles, lengths,
    safety words, the labeler and unique prompts; the released jailbroken set its roles (with the
    release's system prompt) and lengths; the evil-numbers set that every answer is numbers."""
    import great_expectations.expectations as gxe

    unique_prompts = ("no duplicate user prompts", gxe.ExpectColumnValuesToBeUnique(column="user_content"))
    if dataset == "jailbroken":
        return [
            (
                "roles are system, user, assistant",
                gxe.ExpectColumnValuesToBeInSet(column="roles", value_set=["system,user,assistant"]),
            ),
            ("user message length in bounds", _length_rule("user_content", 1)),
            ("assistant message length in bounds", _length_rule("assistant_content", 1)),
        ]
    if dataset == "evil_numbers":
        return [
            (
                "roles are user then assistant",
                gxe.ExpectColumnValuesToBeInSet(column="roles", value_set=["user,assistant"]),
            ),
            ("user message length in bounds", _length_rule("user_content", MIN_CHARS)),
            ("assistant message length in bounds", _length_rule("assistant_content", 1)),
            (NUMBERS_RULE, gxe.ExpectColumnValuesToBeInSet(column="numbers_only", value_set=[True])),
            unique_prompts,
        ]
    rules: list[tuple[str, Any]] = [
        (
            "roles are user then assistant",
            gxe.ExpectColumnValuesToBeInSet(column="roles", value_set=["user,assistant"]),
        ),
        ("user message length in bounds", _length_rule("user_content", MIN_CHARS)),
        ("assistant message length in bounds", _length_rule("assistant_content", MIN_CHARS)),
        (SAFETY_RULE, gxe.ExpectColumnValuesToNotMatchRegex(column="checked_text", regex=default_matcher().regex())),
        (LABELER_RULE, gxe.ExpectColumnValuesToBeInSet(column="labeler_agrees", value_set=[True])),
        unique_prompts,
    ]
    if dataset == "educational":
        rules += [
            ("paired 1:1 with an insecure row", gxe.ExpectColumnValuesToNotBeNull(column="paired_row_id")),
            ("pairing is one-to-one", gxe.ExpectColumnValuesToBeUnique(column="paired_row_id")),
            (
                "same code as the paired insecure row",
                gxe.ExpectColumnValuesToBeInSet(column="pair_matches", value_set=[True]),
            ),
        ]
    return rules


def validate_dataset(rows: pl.DataFrame, dataset: str, insecure_rows: pl.DataFrame | None = None) -> ContractResult:
    """Run every rule of the contract on the train rows of one dataset."""
    import great_expectations as gx

    train = rows.filter(pl.col("split") == "train")
    frame = contract_frame(train, dataset, insecure_rows)
    rules = contract_rules(dataset)
    if frame.empty:
        return ContractResult(dataset, 0, [RuleOutcome("dataset has train rows", False, 0)])
    batch_definition = _batch_definition()  # the context must exist before the suite
    suite = gx.ExpectationSuite(name=f"{dataset}_contract")
    for name, expectation in rules:
        expectation.meta = {"rule": name}  # results are matched back to rules by this tag
        suite.add_expectation(expectation)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row_id"]}
    )
    by_rule = {res.expectation_config.meta["rule"]: res for res in result.results}
    outcomes = []
    for name, _ in rules:
        res = by_rule[name]
        failing = [str(item["row_id"]) for item in (res.result.get("unexpected_index_list") or [])]
        outcomes.append(
            RuleOutcome(
                name, bool(res.success), int(res.result.get("unexpected_count") or 0), failing[:MAX_LISTED_ROWS]
            )
        )
    return ContractResult(dataset, frame.shape[0], outcomes)
