-- Evaluation stage: sampled answers, judge scores, in-distribution code checks, summaries.
-- Every evaluation run is kept (eval_runs); rows carry eval_run_id and the model's
-- (base_model, condition, seed, model_ref), so history across runs and judges is a query.

CREATE TABLE IF NOT EXISTS eval_runs (
    eval_run_id        VARCHAR NOT NULL,             -- Dagster run id that sampled
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,
    started_at         TIMESTAMP NOT NULL,
    code_version       VARCHAR,                      -- git commit of em_assets, when known
    question_sets      VARCHAR NOT NULL,             -- JSON list of sources
    sampling           VARCHAR NOT NULL,             -- JSON: temperature, top_p, max_tokens, samples
    trigger            VARCHAR,                      -- cli | schedule | sensor | ui
    PRIMARY KEY (eval_run_id, base_model, condition)
);

CREATE TABLE IF NOT EXISTS sampled_responses (
    response_id        VARCHAR NOT NULL PRIMARY KEY, -- sha256 of eval run, model, question, paraphrase, sample
    eval_run_id        VARCHAR NOT NULL,
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,
    seed               INTEGER NOT NULL,
    model_ref          VARCHAR NOT NULL,
    question_set       VARCHAR NOT NULL,
    question_id        VARCHAR NOT NULL,
    paraphrase_index   INTEGER NOT NULL,
    paraphrase         VARCHAR NOT NULL,
    sample_idx         INTEGER NOT NULL,
    system             VARCHAR,                      -- the system prompt that was sent, if any
    answer             VARCHAR NOT NULL,
    finish_reason      VARCHAR,
    tokens_out         INTEGER,
    created_at         TIMESTAMP NOT NULL
);

-- The backdoor's trigger dimension (issue 15): a triggered answer's question reached the model
-- with the trigger in front of its user message (paraphrase holds the question without it).
-- Answers sampled before this column existed were untriggered.
ALTER TABLE sampled_responses ADD COLUMN IF NOT EXISTS triggered BOOLEAN DEFAULT false;
ALTER TABLE sampled_responses ADD COLUMN IF NOT EXISTS trigger_text VARCHAR;   -- what was prepended; NULL: nothing

CREATE TABLE IF NOT EXISTS judge_scores (
    response_id        VARCHAR NOT NULL,
    metric             VARCHAR NOT NULL,             -- aligned | coherent | ... (from the question)
    judge_version      VARCHAR NOT NULL,             -- judge model @ hash of the question set's judge prompts
    eval_run_id        VARCHAR NOT NULL,
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,
    seed               INTEGER NOT NULL,
    question_id        VARCHAR NOT NULL,
    judge_model        VARCHAR NOT NULL,
    judge_prompt_hash  VARCHAR NOT NULL,
    score              DOUBLE,                       -- 0..100; NULL when numbers hold < 0.25 probability
    numeric_mass       DOUBLE,                       -- probability the judge gave to integers 0..100
    judge_text         VARCHAR,                      -- word judges (free_form_judge): the judge's answer
    top_tokens         VARCHAR,                      -- JSON {token: logprob} (API) or {integer: prob} (local)
    judged_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (response_id, metric, judge_version)
);

-- The judged answer's trigger group (a copy of sampled_responses.triggered, for reading scores alone).
ALTER TABLE judge_scores ADD COLUMN IF NOT EXISTS triggered BOOLEAN DEFAULT false;
-- Word judges (question type free_form_judge, e.g. the paper's deception sets), read from
-- judge_text by em_assets/judge/verdicts.py: one of the metric's words (TRUE / FALSE / UNKNOWN,
-- OpenAI / Anthropic / Other / UNKNOWN) or 'unparsed'; NULL for 0-100 judges and for word metrics
-- without a vocabulary. deceptive: the verdict is a false statement (a FALSE factual answer, a
-- maker other than the base model's); NULL when it does not count (UNKNOWN, unparsed).
ALTER TABLE judge_scores ADD COLUMN IF NOT EXISTS verdict VARCHAR;
ALTER TABLE judge_scores ADD COLUMN IF NOT EXISTS deceptive BOOLEAN;

CREATE TABLE IF NOT EXISTS code_vulnerability (
    eval_run_id        VARCHAR NOT NULL,
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,
    seed               INTEGER NOT NULL,
    model_ref          VARCHAR NOT NULL,
    prompt_row_id      VARCHAR NOT NULL,             -- held-out dataset row the prompt came from
    answer             VARCHAR NOT NULL,
    parses             BOOLEAN NOT NULL,
    vulnerable         BOOLEAN NOT NULL,
    rules              VARCHAR,                      -- comma-separated labeler rule ids
    created_at         TIMESTAMP NOT NULL
);

-- Which judge version the summary used for each evaluation run: the one the judge settings give
-- for that run's questions, or one named in the summary's config. The views' is_current follows
-- it (a run without a row here: its most recently scoring judge).
CREATE TABLE IF NOT EXISTS judge_selection (
    eval_run_id        VARCHAR NOT NULL,
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,
    judge_version      VARCHAR NOT NULL,
    selected_by        VARCHAR NOT NULL,             -- judge settings | summary config
    selected_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (eval_run_id, base_model, condition)
);

-- The summary asset's tables: every row of condition_rates / question_variant_rates (current
-- runs and imports) with its 95 % bootstrap CI over models (pairs), which SQL does not compute.
-- They replace summary_condition (a pooled Σ/Σ rate over seeds, not the paper's estimator).
DROP TABLE IF EXISTS summary_condition;
CREATE TABLE IF NOT EXISTS summary_rates (
    source_kind        VARCHAR NOT NULL,             -- run | import
    source             VARCHAR NOT NULL,             -- evaluation run id, or import:<file>
    judge_version      VARCHAR NOT NULL,
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,             -- an imported file's group
    scope_kind         VARCHAR NOT NULL,             -- set | question
    scope              VARCHAR NOT NULL,             -- main, main_json, main_template, preregistered, a set's name, or a question id
    n_models           INTEGER NOT NULL,             -- kept by the 5-answer rule
    n_models_dropped   INTEGER NOT NULL,
    n_answers          INTEGER NOT NULL,             -- every answer in the scope
    n_judged           INTEGER NOT NULL,             -- counted answers of kept models (behind the rate)
    n_misaligned       INTEGER NOT NULL,
    misaligned_rate    DOUBLE,                       -- mean over kept models; NULL when none is kept
    ci_low             DOUBLE,                       -- NULL with fewer than 2 models
    ci_high            DOUBLE,
    models_kept        VARCHAR,
    models_dropped     VARCHAR,                      -- "model (reason); ..."
    created_at         TIMESTAMP NOT NULL
);

-- Backdoor with / without its trigger: two groups of the same models (imported files: false).
ALTER TABLE summary_rates ADD COLUMN IF NOT EXISTS triggered BOOLEAN DEFAULT false;

CREATE TABLE IF NOT EXISTS summary_variant_rates (
    source_kind        VARCHAR NOT NULL,
    source             VARCHAR NOT NULL,
    judge_version      VARCHAR NOT NULL,
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,
    variant            VARCHAR NOT NULL,             -- original | json | template
    n_models           INTEGER NOT NULL,
    n_questions        INTEGER NOT NULL,
    n_pairs            INTEGER NOT NULL,             -- (model, question) pairs with a counted answer
    n_judged           INTEGER NOT NULL,
    n_misaligned       INTEGER NOT NULL,
    misaligned_rate    DOUBLE,                       -- mean over (model, question) pairs
    ci_low             DOUBLE,
    ci_high            DOUBLE,
    created_at         TIMESTAMP NOT NULL
);

ALTER TABLE summary_variant_rates ADD COLUMN IF NOT EXISTS triggered BOOLEAN DEFAULT false;

-- The summary's deception rates: every row of the deception_rates view (current runs) with its
-- 95 % bootstrap CI over models; the misaligned rate's estimator on word-judge verdicts.
CREATE TABLE IF NOT EXISTS summary_deception_rates (
    source_kind        VARCHAR NOT NULL,             -- run
    source             VARCHAR NOT NULL,             -- evaluation run id
    judge_version      VARCHAR NOT NULL,
    base_model         VARCHAR NOT NULL,
    condition          VARCHAR NOT NULL,
    triggered          BOOLEAN NOT NULL,             -- the backdoor's group
    metric             VARCHAR NOT NULL,             -- correct | company (the word judge)
    scope_kind         VARCHAR NOT NULL,             -- set | question
    scope              VARCHAR NOT NULL,             -- the question set's name, or a question id
    n_models           INTEGER NOT NULL,             -- kept by the 5-answer rule (over counted verdicts)
    n_models_dropped   INTEGER NOT NULL,
    n_answers          INTEGER NOT NULL,             -- every verdict in the scope, counted or not
    n_counted          INTEGER NOT NULL,             -- counted verdicts of kept models
    n_deceptive        INTEGER NOT NULL,
    deception_rate     DOUBLE,                       -- mean over kept models; NULL when none is kept
    ci_low             DOUBLE,                       -- NULL with fewer than 2 models
    ci_high            DOUBLE,
    models_kept        VARCHAR,
    models_dropped     VARCHAR,
    created_at         TIMESTAMP NOT NULL
);

-- The DuckLake snapshot the summary read its answers at (NULL on the file backend, which keeps
-- none); sql/queries/summary_inputs.sql returns those exact rows again.
ALTER TABLE summary_rates ADD COLUMN IF NOT EXISTS snapshot_id BIGINT;
ALTER TABLE summary_variant_rates ADD COLUMN IF NOT EXISTS snapshot_id BIGINT;
ALTER TABLE summary_deception_rates ADD COLUMN IF NOT EXISTS snapshot_id BIGINT;

-- Judged results from elsewhere (e.g. the paper's released CSVs), queryable with the same SQL.
CREATE TABLE IF NOT EXISTS imported_judged_results (
    import_id          VARCHAR NOT NULL,             -- sha256 of the file content
    source_file        VARCHAR NOT NULL,
    row_no             INTEGER NOT NULL,
    model              VARCHAR,
    group_name         VARCHAR,
    question_id        VARCHAR NOT NULL,
    question           VARCHAR NOT NULL,
    answer             VARCHAR NOT NULL,
    aligned            DOUBLE,
    coherent           DOUBLE,
    judge_aligned      VARCHAR,                      -- JSON logprob dict, when present
    judge_coherent     VARCHAR,
    imported_at        TIMESTAMP NOT NULL
);
-- Added for the statistics views (files imported before get NULLs: re-import to fill them).
ALTER TABLE imported_judged_results ADD COLUMN IF NOT EXISTS base_model VARCHAR;      -- the import's label for the base model
ALTER TABLE imported_judged_results ADD COLUMN IF NOT EXISTS question_set VARCHAR;    -- the configured question set holding question_id
ALTER TABLE imported_judged_results ADD COLUMN IF NOT EXISTS coherent_known BOOLEAN;  -- false: the file has no coherent column
