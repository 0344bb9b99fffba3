-- The AI gateway records how many providers it tried for a request, the serving one included.
ALTER TABLE requests ADD COLUMN gateway_attempts integer;
