-- Datasets (issue 23): the same logical tables as migrations/postgres/0012_datasets.sql. SQLite has
-- no roles: every statement names its organisation (heliport.api.datasets), the only wall here.
CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    meta TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX datasets_org ON datasets (org_id, created_at);

CREATE TABLE dataset_items (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    edited_at TEXT,
    edited_request TEXT,
    edited_response TEXT,
    UNIQUE (dataset_id, request_id)
);
CREATE INDEX dataset_items_dataset ON dataset_items (org_id, dataset_id, created_at);
