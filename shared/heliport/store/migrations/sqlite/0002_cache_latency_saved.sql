-- A cache hit's row records the latency it saved: the original request's duration.
ALTER TABLE requests ADD COLUMN cache_latency_saved_ms REAL;
