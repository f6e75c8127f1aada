-- When a deleted model's rows and blobs were purged (after the retention period).
ALTER TABLE models ADD COLUMN purged_ms BIGINT;
CREATE INDEX models_deleted ON models (status, purged_ms, updated_ms);

-- Since when a queued job has needed more memory than the largest live worker allows: it
-- fails only once that has lasted a grace period (a large worker restarting is not gone).
ALTER TABLE jobs ADD COLUMN unplaceable_ms BIGINT;

-- Deliveries in flight per tenant, counted at each callback claim.
CREATE INDEX jobs_callbacks_tenant ON jobs (tenant_id, callback_state, callback_lease_until_ms);
