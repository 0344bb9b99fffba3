-- Requests logged in parts (realtime sessions, LogRecord.part): the highest part stored per request.
-- The consumer upserts such a request's row only with a part at least as high as the one recorded
-- here (redeliveries come out of order). Kept apart so requests keeps exactly RequestRow's columns.
CREATE TABLE request_parts (
    request_id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    part INTEGER NOT NULL
);
CREATE INDEX request_parts_created_at ON request_parts (created_at);
