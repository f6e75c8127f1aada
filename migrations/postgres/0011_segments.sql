-- A segmented model's setup and proofs fan out one child job per segment: the parent waits
-- (status 'waiting': no worker, no lease) until every child has succeeded, then is queued
-- again for its `step` ('assemble'); a child that fails for good fails the parent.
ALTER TABLE jobs ADD COLUMN parent_id TEXT;
ALTER TABLE jobs ADD COLUMN segment BIGINT;
ALTER TABLE jobs ADD COLUMN step TEXT;
ALTER TABLE jobs ADD COLUMN segments_left BIGINT;
-- One child per segment: a fan-out repeated by a worker that lost its lease cannot double it.
CREATE UNIQUE INDEX jobs_parent_segment ON jobs (parent_id, segment);
