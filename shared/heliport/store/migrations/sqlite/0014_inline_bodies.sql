-- Small bodies on the row (issue 24 §4): the same logical column as
-- migrations/postgres/0014_inline_bodies.sql, the gzip JSON of the bodies as a BLOB, NULL when they are
-- in the blob store (every row stored before this migration).
ALTER TABLE requests ADD COLUMN body_inline BLOB;
