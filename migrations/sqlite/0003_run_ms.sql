-- How long the attempt that ended a job ran, for the prove-seconds histogram of /metrics.
ALTER TABLE jobs ADD COLUMN run_ms BIGINT;
