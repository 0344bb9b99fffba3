-- Requests logged in parts (realtime sessions, LogRecord.part): the highest part stored per request.
--
-- The relay writes a live session every interval and on close under one request id; the consumer
-- upserts its row. Queues redeliver, and out of order, so the row may be replaced only by a part at
-- least as high as the one it holds. The part is kept here rather than on requests so the requests
-- columns stay exactly RequestRow's fields; the consumer's upsert locks this row first, which also
-- serialises two consumers writing parts of one session at once. request_id alone is the key: unlike
-- requests this table is not partitioned. Retention (drop_before) deletes by created_at.
CREATE TABLE request_parts (
    request_id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL,
    part integer NOT NULL
);
CREATE INDEX request_parts_created_at ON request_parts (created_at);
