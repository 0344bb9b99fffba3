-- A cache hit's row records the latency it saved: the original request's duration.
-- Added to the partitioned parent, so every partition (and the default one) gets it.
ALTER TABLE requests ADD COLUMN cache_latency_saved_ms double precision;
