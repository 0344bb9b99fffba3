-- What the checks a request asked for found (issue 20), by check name: moderation (flagged, categories,
-- scores), llm_security (verdicts, classifier), token_limit (tokens before/after, strategy, chosen
-- model), and posthog (delivery, merged in by the log consumer after the row was stored).
--
-- NULL when no check ran, which is almost every row: the writer sends a NULL instead of '{}', so an
-- insert without checks parses no JSON and the row stores nothing more than a bit in its null bitmap.
-- Readers see NULL as an empty object. Added to the partitioned parent without a default, so every
-- partition (and the default one) gets it as a catalogue change: no table rewrite, no long lock.
ALTER TABLE requests ADD COLUMN checks jsonb;

-- heliport_api (0004) selects the whole table, this column included; it gets no UPDATE on it: checks
-- are written by the log writer only (the connecting user), never through the query API.
