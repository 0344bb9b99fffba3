-- HQL saved queries (issue 23): each organisation's named HQL statements (heliport.api.hql), as
-- Helicone's /v1/helicone-sql/saved-query routes keep them. The SQL is stored as written (ClickHouse
-- dialect); it is compiled and confined to the organisation each time it runs, never here.
CREATE TABLE hql_saved_queries (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    name text NOT NULL,
    sql text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX hql_saved_queries_org ON hql_saved_queries (org_id, created_at);

-- Read and written through the heliport_api role (0004) by the query API; row-level security confines
-- every statement to the organisation set in heliport.org_id.
GRANT SELECT, INSERT, UPDATE, DELETE ON hql_saved_queries TO heliport_api;
ALTER TABLE hql_saved_queries ENABLE ROW LEVEL SECURITY;
CREATE POLICY hql_saved_queries_org_isolation ON hql_saved_queries TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));
