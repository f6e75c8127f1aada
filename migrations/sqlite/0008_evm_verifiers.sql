-- A model's Solidity verifier, built when first asked for and stored: its source, bytecode
-- and ABI as one JSON blob in the artifact store, under the compiler and version it was
-- built with (another version builds it again).
CREATE TABLE evm_verifiers (
    model_id TEXT PRIMARY KEY REFERENCES models(id),
    version TEXT NOT NULL,
    store_key TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
