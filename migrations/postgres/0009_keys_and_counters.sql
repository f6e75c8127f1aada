-- API keys get an id to list and revoke them by (a key is never shown again after it is made;
-- keys made before this migration take the first 16 hex digits of their hash), an optional
-- expiry and a revocation time.
ALTER TABLE api_keys ADD COLUMN id TEXT;
ALTER TABLE api_keys ADD COLUMN expires_ms BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_ms BIGINT;
UPDATE api_keys SET id = 'ak_' || substr(key_hash, 1, 16);
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_ms);

-- Counters /metrics reads instead of scanning jobs: each is added to in the transaction that
-- ends a job. They start from zero at this migration (Prometheus takes counter resets).
CREATE TABLE counters (
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (name, label)
);

-- The 64-hex model id of a set-up model beside its handle (id), so jobs show it from the
-- start and can be listed by it.
ALTER TABLE models ADD COLUMN model_id TEXT;
-- A pattern, not a JSON cast: a summary PostgreSQL's JSON parser refused would stop the
-- migration, and with it the service.
UPDATE models SET model_id = substring(summary from '"model_id":"([0-9a-f]{64})"')
WHERE summary IS NOT NULL;
CREATE INDEX models_model_id ON models (tenant_id, model_id);
