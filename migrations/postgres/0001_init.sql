-- Tenants, their API keys (sha256 of the key, never the key), models and jobs.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    callback_secret TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    created_ms BIGINT NOT NULL
);

CREATE TABLE models (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    status TEXT NOT NULL,
    error_code TEXT,
    error TEXT,
    summary TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX models_tenant ON models (tenant_id, created_ms);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    model_id TEXT NOT NULL REFERENCES models(id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    phase TEXT,
    payload TEXT NOT NULL,
    result TEXT,
    error_code TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    worker TEXT,
    lease_until_ms BIGINT,
    idempotency_key TEXT,
    request_hash TEXT,
    callback_url TEXT,
    created_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX jobs_queue ON jobs (status, created_ms);
CREATE INDEX jobs_tenant ON jobs (tenant_id, created_ms);
