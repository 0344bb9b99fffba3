-- The request log: one row per proxied request (heliport.logs.row.RequestRow), partitioned by month.
--
-- Applied by PostgresLogDb.migrate() inside one transaction, under an advisory lock.
--
-- Partitioning: RANGE on created_at, one partition per UTC month named requests_YYYY_MM, made ahead
-- of time by heliport_ensure_request_partition(); retention drops whole partitions
-- (heliport_drop_request_partitions_before), which is cheap and leaves no bloat. The DEFAULT
-- partition is a safety net so an insert never fails for want of a partition; creating the month
-- later moves such rows out of it.
--
-- Identity: the primary key is (created_at, request_id). PostgreSQL cannot enforce a unique index
-- on request_id alone in a partitioned table (every unique index must contain the partition key),
-- so idempotency relies on a redelivered record carrying the same created_at as the first delivery,
-- which it does: the proxy stamps created_at once, in the record. created_at leads the key so
-- inserts append to the right edge of the index instead of landing at random uuid positions.
--
-- Ids: request_id is a uuid (the proxy validates Helicone-Request-Id or generates a uuid4);
-- org_id and key_id are text so an id scheme change never needs a migration. org_id leads every
-- composite index: every query is scoped to one organisation (row-level security will key on it).

CREATE TABLE requests (
    request_id uuid NOT NULL,
    org_id text NOT NULL,
    key_id text NOT NULL,
    created_at timestamptz NOT NULL,
    response_created_at timestamptz,
    status integer NOT NULL,
    provider text NOT NULL,
    target_url text NOT NULL,
    path text NOT NULL,
    method text NOT NULL,
    is_stream boolean NOT NULL,
    model text,
    request_model text,
    response_model text,
    model_override text,
    user_id text,
    properties jsonb NOT NULL DEFAULT '{}',
    session_id text,
    session_path text,
    session_name text,
    prompt_id text,
    delay_ms double precision,
    time_to_first_token double precision,
    prompt_tokens integer,
    completion_tokens integer,
    total_tokens integer,
    prompt_cache_read_tokens integer,
    prompt_cache_write_tokens integer,
    prompt_cache_write_5m_tokens integer,
    prompt_cache_write_1h_tokens integer,
    reasoning_tokens integer,
    prompt_audio_tokens integer,
    completion_audio_tokens integer,
    usage_source text NOT NULL,
    -- Unconstrained numeric keeps the exact Decimal the pricer produced (numeric(20,10) would round
    -- sub-1e-10 products such as 1.875e-8 USD/token × n).
    cost numeric,
    cost_source text,
    cache_hit boolean NOT NULL,
    cache_reference_id text,
    rate_limited boolean NOT NULL,
    retry_count integer NOT NULL,
    fallback_index integer,
    gateway_provider text,
    gateway_model text,
    errors jsonb NOT NULL DEFAULT '[]',
    omit_request boolean NOT NULL,
    omit_response boolean NOT NULL,
    body_key text,
    request_preview text,
    response_preview text,
    scores jsonb NOT NULL DEFAULT '{}',
    feedback_rating boolean,
    feedback_created_at timestamptz,
    PRIMARY KEY (created_at, request_id)
) PARTITION BY RANGE (created_at);

CREATE TABLE requests_default PARTITION OF requests DEFAULT;

-- Indexes on the parent propagate to every partition, present and future. Each serves one access
-- path of the query API (filters of Helicone's /v1/request/query); all lead with org_id.
-- Lists and time ranges ("the last 24 hours of this org"), newest first.
CREATE INDEX requests_org_created ON requests (org_id, created_at DESC);
-- Point lookup by id (not unique: see the header).
CREATE INDEX requests_org_request ON requests (org_id, request_id);
-- Per-user and per-session views; most rows have neither, so the indexes skip them.
CREATE INDEX requests_org_user ON requests (org_id, user_id, created_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX requests_org_session ON requests (org_id, session_id, created_at) WHERE session_id IS NOT NULL;
CREATE INDEX requests_org_model ON requests (org_id, model, created_at DESC);
CREATE INDEX requests_org_status ON requests (org_id, status, created_at DESC);
-- Custom properties: jsonb_ops (not jsonb_path_ops) so both containment (properties @> '{"k":"v"}',
-- the equals filter) and key existence (properties ? 'k', the property_key filter) use the index.
-- The planner combines it with requests_org_created in a bitmap AND.
CREATE INDEX requests_properties ON requests USING gin (properties);


-- Make the partition for the UTC month containing at_time, moving any rows the DEFAULT partition
-- already holds for that month into it. Returns the partition name, or NULL if it already existed.
-- Serialised by an advisory lock so consumers starting together do not race on CREATE TABLE.
-- Bounds are computed on UTC wall-clock timestamps, so the session TimeZone cannot shift them.
CREATE FUNCTION heliport_ensure_request_partition(at_time timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo_utc timestamp := date_trunc('month', at_time AT TIME ZONE 'UTC');
    hi_utc timestamp := date_trunc('month', at_time AT TIME ZONE 'UTC') + interval '1 month';
    lo timestamptz := lo_utc AT TIME ZONE 'UTC';
    hi timestamptz := hi_utc AT TIME ZONE 'UTC';
    part text := 'requests_' || to_char(lo_utc, 'YYYY_MM');
    lo_literal text := to_char(lo_utc, 'YYYY-MM-DD HH24:MI:SS') || '+00';
    hi_literal text := to_char(hi_utc, 'YYYY-MM-DD HH24:MI:SS') || '+00';
BEGIN
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'requests'::regclass AND c.relname = part) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('heliport.requests.partitions'));
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'requests'::regclass AND c.relname = part) THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM requests_default WHERE created_at >= lo AND created_at < hi) THEN
        -- CREATE ... PARTITION OF would fail: the DEFAULT partition holds rows of this range.
        -- Move them into a plain table first, then attach it (which builds the indexes).
        EXECUTE format('CREATE TABLE %I (LIKE requests INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM requests_default WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
            'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
        EXECUTE format('ALTER TABLE requests ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, lo_literal, hi_literal);
    ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF requests FOR VALUES FROM (%L) TO (%L)',
                       part, lo_literal, hi_literal);
    END IF;
    RETURN part;
END;
$$;


-- Retention: drop every monthly partition that ends at or before cutoff, and delete the DEFAULT
-- partition's rows of those months. Returns the months removed, as partition names.
CREATE FUNCTION heliport_drop_request_partitions_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    floor_utc timestamp := date_trunc('month', cutoff AT TIME ZONE 'UTC');
    part text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('heliport.requests.partitions'));
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'requests'::regclass
          AND c.relname ~ '^requests_[0-9]{4}_[0-9]{2}$'
          AND make_date(substr(c.relname, 10, 4)::int, substr(c.relname, 15, 2)::int, 1) < floor_utc::date
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part);
        RETURN NEXT part;
    END LOOP;
    RETURN QUERY
        WITH gone AS (
            DELETE FROM requests_default WHERE created_at < floor_utc AT TIME ZONE 'UTC' RETURNING created_at
        )
        SELECT DISTINCT 'requests_' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY_MM') FROM gone;
END;
$$;
