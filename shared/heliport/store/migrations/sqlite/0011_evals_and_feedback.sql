-- Evals and session feedback (issue 23): the same logical changes as migrations/postgres/0011. SQLite has
-- no roles: every statement names its organisation (heliport.api.evals, heliport.api.session_feedback).
CREATE INDEX requests_org_scored ON requests (org_id, created_at) WHERE scores <> '{}';

CREATE TABLE session_feedback (
    org_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    rating INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (org_id, session_id)
);
