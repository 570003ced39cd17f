-- Signing keys per algorithm (issue 17 item 3): RS256, ES256 and EdDSA each have their own
-- series of generations, so a generation is unique per algorithm (two replicas rotating the
-- same algorithm at once still cannot both add a key).
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_generation_key;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_algorithm_generation_key
    UNIQUE (algorithm, generation);

-- The algorithms an app chose for its ID tokens (OpenID Connect Dynamic Client Registration
-- §2 `id_token_signed_response_alg`) and its JWT access tokens; NULL: the platform default
-- (RS256). The service accepts only the algorithms it has keys for.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT;
ALTER TABLE clients ADD COLUMN access_token_signed_response_alg TEXT;
