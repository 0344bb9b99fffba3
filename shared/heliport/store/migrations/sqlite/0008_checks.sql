-- What the checks a request asked for found (issue 20): the same logical column as
-- migrations/postgres/0008_checks.sql, a JSON object as text, NULL when no check ran (read as {}).
ALTER TABLE requests ADD COLUMN checks TEXT;
