-- Cost ledger of the LLM call engine (em_assets/llm): one row per call the engine answered,
-- cache hits included. Rows arrive in batches; every row is spooled in the response cache's
-- SQLite file first, so a crashed run's rows still land here on the next flush. The flush
-- inserts only call_ids not yet here (files made before the key was added rely on that alone),
-- so replaying a spool after a kill never duplicates a row.
-- No credentials are ever stored: base_url_host is host[:port] only.
CREATE TABLE IF NOT EXISTS llm_calls (
    call_id          VARCHAR NOT NULL PRIMARY KEY,  -- uuid4 hex, one per call
    cache_key        VARCHAR NOT NULL,     -- sha256 of the normalized request (em_assets/llm/request.py)
    endpoint_family  VARCHAR NOT NULL,     -- openai | openai_compatible | local_hf
    base_url_host    VARCHAR,              -- api.openai.com, 127.0.0.1:8000, ...; NULL for local models
    model            VARCHAR NOT NULL,
    sample_index     INTEGER,              -- which of n samples of one prompt
    mode             VARCHAR NOT NULL,     -- sync | batch | local | cache
    tokens_in        BIGINT,
    tokens_out       BIGINT,
    cost_usd         DOUBLE,               -- estimate from em_assets/data/prices.yaml; 0 for hits; NULL = unpriced model.
                                           -- An upper bound: includes unconfirmed_cost_usd
    unconfirmed_attempts INTEGER DEFAULT 0, -- tries that timed out or lost their answer (maybe billed)
    unconfirmed_cost_usd DOUBLE DEFAULT 0,  -- their estimated cost (prompt ~4 chars a token, completion at max_tokens)
    cache_hit        BOOLEAN NOT NULL,
    latency_s        DOUBLE,               -- successful attempt (sync), submit-to-result (batch), share of batch (local)
    attempts         INTEGER NOT NULL,     -- tries (sync) or batch rounds; 0 for cache hits
    status           VARCHAR NOT NULL,     -- ok | error
    error            VARCHAR,              -- names the request; credentials redacted
    asset            VARCHAR,
    partition_key    VARCHAR,
    run_id           VARCHAR,
    tags             VARCHAR,              -- JSON object of the other tags
    created_at       TIMESTAMP NOT NULL    -- UTC
);
-- Files made before the unconfirmed_* columns existed get them here (a no-op otherwise).
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS unconfirmed_attempts INTEGER DEFAULT 0;
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS unconfirmed_cost_usd DOUBLE DEFAULT 0;
