-- Webhooks (issue 22): the same logical tables as migrations/postgres/0009_webhooks.sql. SQLite has no
-- roles: every statement names its organisation (heliport.webhooks.store), the only wall here.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    destination TEXT NOT NULL,
    version TEXT NOT NULL,
    config TEXT NOT NULL,
    include_data INTEGER NOT NULL,
    hmac_key TEXT NOT NULL,
    base_url TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    last_attempt_at TEXT
);
CREATE INDEX webhooks_org ON webhooks (org_id, created_at);

CREATE TABLE webhook_dead_letters (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status INTEGER,
    error TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX webhook_dead_letters_org ON webhook_dead_letters (org_id, webhook_id, failed_at);
