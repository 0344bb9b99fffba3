-- Log records the writer gave up on (issue 18): the same logical table as migrations/postgres/0007.
CREATE TABLE log_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT,
    request_id TEXT,
    failed_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX log_dead_letters_org ON log_dead_letters (org_id, failed_at);
