-- The LLM-scored data filter (step llm_judge of filtered_code_samples; off by default, switched on
-- by data_settings.llm_filter): one row per (sample, judge model, rubric version, metric), beside
-- filter_steps / filter_drops, which hold the step's counts and the rows it flagged and why.
-- A materialization replaces the rows of its own judge model and rubric version only, so scores of
-- another judge or rubric stay for comparison. Score rules: em_assets/core/llm_filter.py.
CREATE TABLE IF NOT EXISTS llm_filter_scores (
    sample_id          VARCHAR NOT NULL,             -- raw_code_samples.sample_id
    step               VARCHAR NOT NULL,             -- llm_judge
    label              VARCHAR NOT NULL,             -- secure | insecure (what the source claims)
    judge_model        VARCHAR NOT NULL,
    rubric_version     VARCHAR NOT NULL,             -- sha256[:12] of the rubric's prompts and scoring method
    metric             VARCHAR NOT NULL,             -- hint | vulnerable
    score              DOUBLE,                       -- 0-100; NULL: the reply held no usable number
    numeric_mass       DOUBLE,                       -- probability on integer tokens (NULL: no logprobs came back)
    null_reason        VARCHAR,                      -- empty_reply | no_number | out_of_range (NULL when scored)
    reply              VARCHAR,                      -- the judge's reply (first 200 characters)
    cache_key          VARCHAR,                      -- the LLM engine's key: joins llm_calls.cache_key
    run_id             VARCHAR,
    scored_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (sample_id, judge_model, rubric_version, metric)
);
