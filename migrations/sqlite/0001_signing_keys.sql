-- Signing keys of the provider. The private key is sealed (AES-256-GCM under the master key);
-- `generation` is unique so that two replicas rotating at once cannot both add a key.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    generation         INTEGER NOT NULL UNIQUE,
    algorithm          TEXT NOT NULL,
    public_jwk         TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    activates_at       INTEGER NOT NULL
);
