"""Partitions of the model stage and everything downstream: base_model (dynamic) x condition.

One source of truth, imported by assets and sensors:

* ``condition`` is static: ``base`` (the un-tuned model, the control) and the fine-tuning sets:
  the paper's main comparison (insecure, secure, educational), its backdoor, and its other
  conditions, jailbroken (only when the released file is given) and evil numbers. Seeds live
  *inside* a partition (``n_seeds`` models per partition). Which conditions a run trains is the
  run's choice (``python -m em_assets run --conditions``; the default keeps the main comparison).
* ``base_model`` is dynamic: its keys are slugs of full model ids; what each stands for lives
  in the registry (``em_assets.registry``).

A multi-partition key reads ``<base_model>|<condition>``, e.g. ``smollm2-135m-instruct|insecure``.
"""

from __future__ import annotations

import dagster as dg

BASE_MODEL_DIMENSION = "base_model"
CONDITION_DIMENSION = "condition"

BASE_CONDITION = "base"
TRAINED_CONDITIONS = ("insecure", "secure", "educational", "backdoor", "jailbroken", "evil_numbers")
CONDITIONS = (BASE_CONDITION, *TRAINED_CONDITIONS)
# Trained only when asked (their sets need a released file or a generation run): the new-model
# sensor starts the others' chains, never these.
OPT_IN_CONDITIONS = ("jailbroken", "evil_numbers")
SENSOR_CONDITIONS = tuple(c for c in CONDITIONS if c not in OPT_IN_CONDITIONS)


base_model_partitions = dg.DynamicPartitionsDefinition(name=BASE_MODEL_DIMENSION)
condition_partitions = dg.StaticPartitionsDefinition(list(CONDITIONS))
model_partitions = dg.MultiPartitionsDefinition(
    {BASE_MODEL_DIMENSION: base_model_partitions, CONDITION_DIMENSION: condition_partitions}
)


def model_partition_key(base_model: str, condition: str) -> dg.MultiPartitionKey:
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; one of {CONDITIONS}")
    return dg.MultiPartitionKey({BASE_MODEL_DIMENSION: base_model, CONDITION_DIMENSION: condition})


def split_partition_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(base_model slug, condition) of a partition key of ``model_partitions``."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        dims = model_partitions.get_partition_key_from_str(key).keys_by_dimension
    return dims[BASE_MODEL_DIMENSION], dims[CONDITION_DIMENSION]
