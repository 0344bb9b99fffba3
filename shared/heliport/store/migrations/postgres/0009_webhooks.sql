-- Webhooks (issue 22): each organisation's receivers of its logged requests, with a delivery log.
--
-- One row per webhook. config is Helicone's config object as JSON text (sampleRate, propertyFilters),
-- kept as text because it is only ever read whole. base_url is where the query API was reached when
-- the webhook was made: the signed request_response_url of a delivery points there. The delivery log
-- (delivered, failed, last_*) is updated by the log consumer after each delivery.
CREATE TABLE webhooks (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    created_at timestamptz NOT NULL,
    destination text NOT NULL,
    version text NOT NULL,
    config text NOT NULL,
    include_data boolean NOT NULL,
    hmac_key text NOT NULL,
    base_url text NOT NULL,
    delivered integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    last_status integer,
    last_error text,
    last_attempt_at timestamptz
);
CREATE INDEX webhooks_org ON webhooks (org_id, created_at);

-- Deliveries given up on (retries exhausted, a final 4xx, a refused destination): kept with the reason
-- and the exact body that was (or would have been) sent, so the API can list them.
CREATE TABLE webhook_dead_letters (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    webhook_id text NOT NULL,
    request_id text NOT NULL,
    failed_at timestamptz NOT NULL,
    attempts integer NOT NULL,
    status integer,
    error text NOT NULL,
    payload bytea NOT NULL
);
CREATE INDEX webhook_dead_letters_org ON webhook_dead_letters (org_id, webhook_id, failed_at);

-- Both tables are read and written through the heliport_api role (0004): the query API for the CRUD,
-- and the consumer's deliveries, which run per organisation through the same reader. Row-level
-- security confines every statement to the organisation set in heliport.org_id; the role may update
-- only the delivery log's columns, never a webhook's destination or key.
GRANT SELECT, INSERT, DELETE ON webhooks TO heliport_api;
GRANT UPDATE (delivered, failed, last_status, last_error, last_attempt_at) ON webhooks TO heliport_api;
ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
CREATE POLICY webhooks_org_isolation ON webhooks TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));

GRANT SELECT, INSERT, DELETE ON webhook_dead_letters TO heliport_api;
ALTER TABLE webhook_dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY webhook_dead_letters_org_isolation ON webhook_dead_letters TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));
