-- Signing keys per algorithm (issue 17 item 3): RS256, ES256 and EdDSA each have their own
-- series of generations, so a generation is unique per algorithm (two replicas rotating the
-- same algorithm at once still cannot both add a key). SQLite cannot change a constraint in
-- place: the table is rebuilt with the same rows.
CREATE TABLE signing_keys_by_algorithm (
    kid                TEXT PRIMARY KEY,
    generation         INTEGER NOT NULL,
    algorithm          TEXT NOT NULL,
    public_jwk         TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    activates_at       INTEGER NOT NULL,
    UNIQUE (algorithm, generation)
);
INSERT INTO signing_keys_by_algorithm
       (kid, generation, algorithm, public_jwk, private_key_sealed, created_at, activates_at)
SELECT kid, generation, algorithm, public_jwk, private_key_sealed, created_at, activates_at
  FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_by_algorithm RENAME TO signing_keys;

-- The algorithms an app chose for its ID tokens (OpenID Connect Dynamic Client Registration
-- §2 `id_token_signed_response_alg`) and its JWT access tokens; NULL: the platform default
-- (RS256). The service accepts only the algorithms it has keys for.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT;
ALTER TABLE clients ADD COLUMN access_token_signed_response_alg TEXT;
