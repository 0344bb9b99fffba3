-- Request ids are unique per organisation, not across organisations (issue 18).
--
-- The key was (created_at, request_id). A redelivered record keeps its created_at and is still
-- ignored; but request_parts was keyed by request_id alone, so a realtime part of organisation B
-- reusing an id of A's competed with A's parts. Both keys now hold org_id. A repeat inside one
-- organisation (same id, another created_at) cannot be refused by a partitioned table's unique index;
-- the log writer renames it before inserting (heliport.logs.consumer).
-- Adding the key builds a unique index on every partition under an exclusive lock: on a large log,
-- run `heliport migrate` in a quiet hour (the consumer's batches wait and are redelivered meanwhile).
ALTER TABLE requests DROP CONSTRAINT requests_pkey;
ALTER TABLE requests ADD PRIMARY KEY (created_at, org_id, request_id);

ALTER TABLE request_parts ADD COLUMN org_id text;
UPDATE request_parts p SET org_id = r.org_id FROM requests r WHERE r.request_id = p.request_id;
-- A part whose row was never written has no organisation to go by; the next part writes both again.
DELETE FROM request_parts WHERE org_id IS NULL;
ALTER TABLE request_parts ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE request_parts DROP CONSTRAINT request_parts_pkey;
ALTER TABLE request_parts ADD PRIMARY KEY (org_id, request_id);
