-- The query API's second wall: row-level security on requests, for the heliport_api role.
--
-- heliport.api.database runs every API statement in a transaction that does SET LOCAL ROLE
-- heliport_api and sets heliport.org_id to the caller's organisation. This policy then hides every
-- other organisation's row from that role, whatever the statement says. The consumer and
-- migrations run as the connecting (owning) user, which row-level security does not restrict
-- (the table is not FORCEd), so inserts and partition maintenance are unchanged.
--
-- Roles belong to the cluster, not the database: several heliport databases on one server share the
-- role, so it is made only when missing (and a concurrent migration that made it first is fine).
DO $$
BEGIN
    CREATE ROLE heliport_api NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The connecting user must be able to SET ROLE to it (Aurora's master user is not a superuser).
GRANT heliport_api TO CURRENT_USER;

-- Reads, and updates of exactly the columns the API writes (feedback, scores, properties).
GRANT SELECT ON requests TO heliport_api;
GRANT UPDATE (properties, scores, feedback_rating, feedback_created_at) ON requests TO heliport_api;

ALTER TABLE requests ENABLE ROW LEVEL SECURITY;
-- current_setting(..., true) is NULL when unset, and NULL matches no row: a statement that forgot to
-- set the organisation sees nothing rather than everything.
CREATE POLICY requests_org_isolation ON requests TO heliport_api
    USING (org_id = current_setting('heliport.org_id', true))
    WITH CHECK (org_id = current_setting('heliport.org_id', true));
