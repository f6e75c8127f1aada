-- Encrypted inference. A client uploads the server (evaluation) key of a key set it made for a
-- model's FHE program; the key's bytes go to the store, this row says whose it is and which
-- key set and program it belongs to. Runs are jobs of kind fhe_run naming a key.
CREATE TABLE fhe_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    model_id TEXT NOT NULL REFERENCES models(id),
    key_set_id TEXT NOT NULL,
    program_sha256 TEXT NOT NULL,
    store_key TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX fhe_keys_model ON fhe_keys (tenant_id, model_id);

-- How far a running job is, as JSON ({"done", "total", "unit"}): bootstraps of an FHE run.
ALTER TABLE jobs ADD COLUMN progress TEXT;
