-- HQL saved queries (issue 23): the same logical table as migrations/postgres/0013_hql.sql. SQLite has
-- no roles: every statement names its organisation (heliport.api.hql), the only wall here.
CREATE TABLE hql_saved_queries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    sql TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX hql_saved_queries_org ON hql_saved_queries (org_id, created_at);
