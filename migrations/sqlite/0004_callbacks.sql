-- Callbacks. When a job with a callback_url ends, its delivery falls due; a dispatcher in any
-- process claims it under a short lease (as workers claim jobs), POSTs the job, and records
-- the attempt. callback_state: pending, delivered, or failed (attempts used up).
ALTER TABLE jobs ADD COLUMN callback_state TEXT;
ALTER TABLE jobs ADD COLUMN callback_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN callback_next_ms BIGINT;
ALTER TABLE jobs ADD COLUMN callback_holder TEXT;
ALTER TABLE jobs ADD COLUMN callback_lease_until_ms BIGINT;
CREATE INDEX jobs_callbacks ON jobs (callback_state, callback_next_ms);

CREATE TABLE callback_attempts (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    attempt INTEGER NOT NULL,
    at_ms BIGINT NOT NULL,
    status_code INTEGER,
    error TEXT,
    PRIMARY KEY (job_id, attempt)
);
