-- Request ids are unique per organisation, not across organisations (issue 18).
--
-- A request id comes from the caller (Helicone-Request-Id) or is generated; with request_id alone as
-- the key, organisation B sending an id that A had used lost B's row to INSERT OR IGNORE, and a
-- realtime part of B's could overwrite A's row. The key becomes (org_id, request_id); a repeat inside
-- one organisation is renamed by the log writer before it gets here (heliport.logs.consumer).
-- SQLite cannot change a primary key in place, so both tables are rebuilt, keeping column order.

CREATE TABLE requests_by_org (
    request_id TEXT NOT NULL,
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
    feedback_created_at TEXT,
    cache_latency_saved_ms REAL,
    gateway_attempts INTEGER,
    PRIMARY KEY (org_id, request_id)
);
INSERT INTO requests_by_org SELECT * FROM requests;
DROP TABLE requests;
ALTER TABLE requests_by_org RENAME TO requests;
CREATE INDEX requests_org_created ON requests (org_id, created_at);
CREATE INDEX requests_org_user ON requests (org_id, user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX requests_org_session ON requests (org_id, session_id, created_at) WHERE session_id IS NOT NULL;
CREATE INDEX requests_created ON requests (created_at);

CREATE TABLE request_parts_by_org (
    org_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    part INTEGER NOT NULL,
    PRIMARY KEY (org_id, request_id)
);
-- A part whose row was never written has no organisation to go by; the next part writes both again.
INSERT INTO request_parts_by_org (org_id, request_id, created_at, part)
    SELECT r.org_id, p.request_id, p.created_at, p.part FROM request_parts p JOIN requests r USING (request_id);
DROP TABLE request_parts;
ALTER TABLE request_parts_by_org RENAME TO request_parts;
CREATE INDEX request_parts_created_at ON request_parts (created_at);
