-- Signing keys of the provider. The private key is sealed (AES-256-GCM under the master key);
-- `generation` is unique so that two replicas rotating at once cannot both add a key.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    generation         BIGINT NOT NULL UNIQUE,
    algorithm          TEXT NOT NULL,
    public_jwk         TEXT NOT NULL,
    private_key_sealed BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    activates_at       BIGINT NOT NULL
);
