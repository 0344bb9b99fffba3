-- Datasets (issue 23): curated sets of logged requests, for fine-tuning exports and evaluation sets.
-- heliport.api.datasets holds every statement on these tables.
--
-- A dataset item refers to a logged request by (org_id, request_id); it does not copy the bodies,
-- which stay in the blob store. Editing an item stores its own copy of the request and response
-- bodies (JSON text, as edited) in edited_request/edited_response; an unedited item reads the
-- request's stored bodies. One request is in a dataset at most once, so adding it again is a no-op.
CREATE TABLE datasets (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    name text NOT NULL,
    description text,
    meta text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX datasets_org ON datasets (org_id, created_at);

CREATE TABLE dataset_items (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    dataset_id text NOT NULL,
    request_id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    edited_at timestamptz,
    edited_request text,
    edited_response text,
    UNIQUE (dataset_id, request_id)
);
CREATE INDEX dataset_items_dataset ON dataset_items (org_id, dataset_id, created_at);

-- Read and written by the query API through the heliport_api role (0004); row-level security
-- confines every statement to the organisation set in heliport.org_id.
GRANT SELECT, INSERT, UPDATE, DELETE ON datasets TO heliport_api;
ALTER TABLE datasets ENABLE ROW LEVEL SECURITY;
CREATE POLICY datasets_org_isolation ON datasets TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));

GRANT SELECT, INSERT, UPDATE, DELETE ON dataset_items TO heliport_api;
ALTER TABLE dataset_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY dataset_items_org_isolation ON dataset_items TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));
