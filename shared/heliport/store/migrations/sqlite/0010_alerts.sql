-- Alerts (issue 22): the same logical tables as migrations/postgres/0010_alerts.sql. SQLite has no
-- roles: every statement names its organisation (heliport.alerts.store), the only wall here.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    threshold REAL NOT NULL,
    window_minutes INTEGER NOT NULL,
    minimum_requests INTEGER NOT NULL,
    group_by TEXT,
    aggregation TEXT NOT NULL,
    filter TEXT NOT NULL,
    channels TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    last_evaluated_at TEXT,
    last_error TEXT
);
CREATE INDEX alerts_org ON alerts (org_id, created_at);

CREATE TABLE alert_states (
    org_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    group_key TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (org_id, alert_id, group_key)
);

CREATE TABLE alert_history (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    group_key TEXT,
    value REAL NOT NULL,
    threshold REAL NOT NULL,
    requests INTEGER NOT NULL,
    requests_url TEXT NOT NULL
);
CREATE INDEX alert_history_org ON alert_history (org_id, alert_id, at);
