-- Alerts (issue 22): each organisation's alert definitions, the state of every (alert, group), and the
-- trigger history. heliport.alerts.store holds every statement on these tables.
--
-- An alert's definition is in columns, except filter (the query API's filter AST) and channels (Slack
-- URLs and e-mail addresses), kept as JSON text because they are only ever read whole. Slack URLs are
-- credentials: the API returns them masked and nothing logs them.
--
-- The evaluator's aggregate statement reads requests by (org_id, created_at): the index
-- requests_org_created (0001) serves it, so no index on requests is added here.
CREATE TABLE alerts (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    name text NOT NULL,
    metric text NOT NULL,
    threshold double precision NOT NULL,
    window_minutes integer NOT NULL,
    minimum_requests integer NOT NULL,
    group_by text,
    aggregation text NOT NULL,
    filter text NOT NULL,
    channels text NOT NULL,
    enabled boolean NOT NULL,
    last_evaluated_at timestamptz,
    last_error text
);
CREATE INDEX alerts_org ON alerts (org_id, created_at);

-- One row per group currently over its alert's threshold (absent: ok). A transition is claimed by a
-- conditional write: INSERT ... ON CONFLICT DO NOTHING (ok -> over) or DELETE (over -> ok) changes one
-- row for exactly one evaluator, and only that one notifies, however many evaluators run at once.
CREATE TABLE alert_states (
    org_id text NOT NULL,
    alert_id text NOT NULL,
    group_key text NOT NULL,
    since timestamptz NOT NULL,
    PRIMARY KEY (org_id, alert_id, group_key)
);

CREATE TABLE alert_history (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    alert_id text NOT NULL,
    at timestamptz NOT NULL,
    state text NOT NULL,
    group_key text,
    value double precision NOT NULL,
    threshold double precision NOT NULL,
    requests integer NOT NULL,
    requests_url text NOT NULL
);
CREATE INDEX alert_history_org ON alert_history (org_id, alert_id, at);

-- All three are read and written through the heliport_api role (0004), by the query API and by the
-- evaluator alike, one organisation at a time; row-level security confines every statement to the
-- organisation set in heliport.org_id.
GRANT SELECT, INSERT, UPDATE, DELETE ON alerts TO heliport_api;
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY alerts_org_isolation ON alerts TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));

GRANT SELECT, INSERT, DELETE ON alert_states TO heliport_api;
ALTER TABLE alert_states ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_states_org_isolation ON alert_states TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));

GRANT SELECT, INSERT, DELETE ON alert_history TO heliport_api;
ALTER TABLE alert_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_history_org_isolation ON alert_history TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));

-- The evaluator's worklist: which organisations have an enabled alert. Row-level security hides that
-- from heliport_api by design, so this one question is answered by a SECURITY DEFINER function (run as
-- the owner, whom the policies do not restrict) that returns organisation ids and nothing else.
CREATE FUNCTION heliport_alert_organisations() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT DISTINCT org_id FROM alerts WHERE enabled ORDER BY org_id
$$;
REVOKE ALL ON FUNCTION heliport_alert_organisations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION heliport_alert_organisations() TO heliport_api;
