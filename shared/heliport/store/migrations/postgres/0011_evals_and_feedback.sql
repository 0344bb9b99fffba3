-- Evals and session feedback (issue 23).
--
-- Scores have one store: the requests.scores object (0001), written by POST /v1/request/{id}/score and
-- POST /v1/evals/{id} alike and aggregated from there (heliport.api.evals). Aggregations read only the
-- scored rows of a time range, so a partial index keeps them off the unscored majority. Its predicate
-- is the one heliport.api.evals writes (scores <> '{}'), which is what lets the planner use it.
CREATE INDEX requests_org_scored ON requests (org_id, created_at) WHERE scores <> '{}'::jsonb;

-- A session's feedback (POST /v1/session/{sessionId}/feedback): one rating per (organisation, session),
-- the last one given. Helicone writes it as a property of the session's first request; a row of its own
-- survives that request's retention and is read by the session query with one join.
CREATE TABLE session_feedback (
    org_id text NOT NULL,
    session_id text NOT NULL,
    rating boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, session_id)
);

-- Read and upserted through the heliport_api role (0004); row-level security confines every statement
-- to the organisation set in heliport.org_id.
GRANT SELECT, INSERT, UPDATE ON session_feedback TO heliport_api;
ALTER TABLE session_feedback ENABLE ROW LEVEL SECURITY;
CREATE POLICY session_feedback_org_isolation ON session_feedback TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));
