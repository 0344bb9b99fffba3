-- The request log for `heliport serve`: the same logical schema as migrations/postgres/0001_requests.sql.
--
-- Applied by SqliteLogDb.migrate() statement by statement inside one BEGIN IMMEDIATE transaction.
--
-- Storage conventions (SQLite has no timestamptz, numeric or jsonb):
-- * datetimes: ISO 8601 text in UTC, always with microseconds and "+00:00", so text order is time
--   order and range filters work on the indexes;
-- * cost: the exact Decimal as text (CAST(cost AS REAL) to sum);
-- * properties, errors, scores: JSON text (json_extract / json_each to filter);
-- * booleans: 0/1.
-- request_id alone is the primary key here (no partitions), so INSERT OR IGNORE dedupes redelivery.

CREATE TABLE requests (
    request_id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    response_created_at TEXT,
    status INTEGER NOT NULL,
    provider TEXT NOT NULL,
    target_url TEXT NOT NULL,
    path TEXT NOT NULL,
    method TEXT NOT NULL,
    is_stream INTEGER NOT NULL,
    model TEXT,
    request_model TEXT,
    response_model TEXT,
    model_override TEXT,
    user_id TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    session_id TEXT,
    session_path TEXT,
    session_name TEXT,
    prompt_id TEXT,
    delay_ms REAL,
    time_to_first_token REAL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    total_tokens INTEGER,
    prompt_cache_read_tokens INTEGER,
    prompt_cache_write_tokens INTEGER,
    prompt_cache_write_5m_tokens INTEGER,
    prompt_cache_write_1h_tokens INTEGER,
    reasoning_tokens INTEGER,
    prompt_audio_tokens INTEGER,
    completion_audio_tokens INTEGER,
    usage_source TEXT NOT NULL,
    cost TEXT,
    cost_source TEXT,
    cache_hit INTEGER NOT NULL,
    cache_reference_id TEXT,
    rate_limited INTEGER NOT NULL,
    retry_count INTEGER NOT NULL,
    fallback_index INTEGER,
    gateway_provider TEXT,
    gateway_model TEXT,
    errors TEXT NOT NULL DEFAULT '[]',
    omit_request INTEGER NOT NULL,
    omit_response INTEGER NOT NULL,
    body_key TEXT,
    request_preview TEXT,
    response_preview TEXT,
    scores TEXT NOT NULL DEFAULT '{}',
    feedback_rating INTEGER,
    feedback_created_at TEXT
);

-- org_id leads every index: every query is scoped to one organisation.
CREATE INDEX requests_org_created ON requests (org_id, created_at);
CREATE INDEX requests_org_user ON requests (org_id, user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX requests_org_session ON requests (org_id, session_id, created_at) WHERE session_id IS NOT NULL;
-- Retention (drop_before) deletes by time across organisations.
CREATE INDEX requests_created ON requests (created_at);
