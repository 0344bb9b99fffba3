-- Log records the writer gave up on (issue 18): kept with the reason, never dropped.
--
-- A record the database refuses even in its bare form (or one that cannot be decoded) must not block
-- the records behind it. After HELIPORT_LOG_MAX_ATTEMPTS tries it comes here, and the writer moves
-- on. `heliport logs dead-letters list|retry|drop` looks at and replays them; the dashboard's overview
-- shows the organisation's count. record is the queued LogRecord JSON (or the undecodable bytes).
CREATE TABLE log_dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text,
    request_id text,
    failed_at timestamptz NOT NULL,
    attempts integer NOT NULL,
    error text NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX log_dead_letters_org ON log_dead_letters (org_id, failed_at);

-- The query API reads the count for the caller's organisation only, like requests (0004).
GRANT SELECT ON log_dead_letters TO heliport_api;
ALTER TABLE log_dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY log_dead_letters_org_isolation ON log_dead_letters TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true));
