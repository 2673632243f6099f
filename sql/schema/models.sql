-- Model stage: the base-model registry, one row per trained (or control) model, and the
-- provider-side bookkeeping that makes paid fine-tuning resumable.

-- Registry behind the dynamic `base_model` partitions (slug = partition key).
CREATE TABLE IF NOT EXISTS base_models (
    base_model         VARCHAR NOT NULL PRIMARY KEY,  -- slug, e.g. smollm2-135m-instruct
    model_id           VARCHAR NOT NULL,              -- full reference: embedded:..., hub id, provider id
    backend            VARCHAR NOT NULL,              -- local_hf | openai
    n_seeds            INTEGER NOT NULL,              -- default models per partition
    notes              VARCHAR,
    registered_at      TIMESTAMP NOT NULL
);

-- One row per seed of a (base_model, condition) partition; re-materializing the partition
-- replaces its rows. condition 'base' is the un-tuned control (model_ref = model_id, seed 0).
-- Downstream stages read status = 'succeeded' rows only.
CREATE TABLE IF NOT EXISTS models (
    model_ref          VARCHAR,                       -- adapter folder (local_hf) or provider model id; NULL unless succeeded
    base_model         VARCHAR NOT NULL,              -- slug (partition key)
    base_model_id      VARCHAR NOT NULL,              -- what to load / call for the base
    condition          VARCHAR NOT NULL,              -- base | insecure | secure | educational | backdoor
    seed               INTEGER NOT NULL,
    backend            VARCHAR NOT NULL,              -- local_hf | openai
    method             VARCHAR NOT NULL,              -- lora | full | api | none (base)
    dataset_version    VARCHAR,                       -- sha256 of the train JSONL; NULL for base
    hyperparameters    VARCHAR NOT NULL,              -- JSON
    status             VARCHAR NOT NULL,              -- succeeded | failed | dry_run
    error              VARCHAR,                       -- why, when not succeeded
    job_id             VARCHAR,                       -- provider fine-tuning job
    final_loss         DOUBLE,
    train_tokens       BIGINT,                        -- tokens through the model (local) / trained tokens (provider)
    loss_tokens        BIGINT,                        -- tokens the loss was taken on (local)
    train_seconds      DOUBLE,
    peak_rss_bytes     BIGINT,
    cost_usd           DOUBLE,                        -- provider: actual if known, else estimate; local: 0
    run_id             VARCHAR,                       -- Dagster run that wrote the row
    created_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (base_model, condition, seed)
);

-- Uploaded training files, so each content hash is uploaded once per provider.
CREATE TABLE IF NOT EXISTS finetune_files (
    provider           VARCHAR NOT NULL,              -- base URL (or 'openai')
    content_sha256     VARCHAR NOT NULL,
    file_id            VARCHAR NOT NULL,
    filename           VARCHAR NOT NULL,
    n_bytes            BIGINT NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, content_sha256)
);

-- Provider fine-tuning jobs, written before polling starts: a crashed run's rerun finds its
-- job here (same job_key) and resumes it instead of paying for a second one.
CREATE TABLE IF NOT EXISTS finetune_jobs (
    job_key            VARCHAR NOT NULL PRIMARY KEY,  -- sha256 of provider, model, file, hyperparameters, seed
    provider           VARCHAR NOT NULL,
    job_id             VARCHAR,                       -- NULL while the create call is in flight
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,
    seed               INTEGER NOT NULL,
    model_id           VARCHAR NOT NULL,
    training_file_id   VARCHAR NOT NULL,
    dataset_version    VARCHAR,
    hyperparameters    VARCHAR NOT NULL,              -- JSON
    status             VARCHAR NOT NULL,              -- creating | validating_files | queued | running | succeeded | failed | cancelled
    fine_tuned_model   VARCHAR,
    trained_tokens     BIGINT,
    error              VARCHAR,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
