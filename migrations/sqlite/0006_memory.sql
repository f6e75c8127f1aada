-- What a job is estimated to need in memory, in bytes (NULL until known: a setup job learns
-- it when its model is compiled). A worker claims only a job that fits what it has free.
ALTER TABLE jobs ADD COLUMN memory_bytes BIGINT;

-- The workers seen lately and the memory each may use for jobs: a model that needs more
-- than the largest of them fails model_too_large; one that needs less waits for a worker
-- it fits.
CREATE TABLE workers (
    name TEXT PRIMARY KEY,
    max_memory_bytes BIGINT NOT NULL,
    seen_ms BIGINT NOT NULL
);
