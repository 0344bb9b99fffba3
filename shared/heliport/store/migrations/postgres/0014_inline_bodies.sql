-- Small bodies on the row (issue 24 §4): the gzip JSON {request, response} the log writer used to PUT to
-- the blob store under body_key, kept here instead when it is at most HELIPORT_INLINE_BODY_BYTES. A PUT
-- costs more than the SQS message and the DynamoDB writes of the request together, and most chat bodies
-- compress to well under a kilobyte (bench/consumer.py measures it; docs/cost.md has the prices).
--
-- NULL for bodies kept in the blob store, for omitted ones, and for every row stored before this
-- migration: readers take the row's copy when there is one and the blob store's otherwise
-- (heliport.logs.stored_bodies), so old rows read as before. Added to the partitioned parent without a
-- default, so every partition gets it as a catalogue change: no rewrite, no long lock.
ALTER TABLE requests ADD COLUMN body_inline bytea;

-- The value is gzip already: EXTERNAL lets a wide row move it out of line (TOAST) without PostgreSQL
-- first trying, and failing, to compress it a second time.
ALTER TABLE requests ALTER COLUMN body_inline SET STORAGE EXTERNAL;

-- heliport_api (0004) selects the whole table, so the query API reads this column for its body routes
-- and signed body URLs; it gets no UPDATE on it. HQL's view (0013, heliport.hql.schema) names its
-- columns and leaves this one out: compressed bytes are not something to filter or aggregate on.
