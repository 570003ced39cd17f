-- People known to TechPass, keyed by their upstream identity (Azure AD tid + oid). `id` is the
-- stable `sub` of the tokens TechPass issues.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    object_id      TEXT NOT NULL,
    email          TEXT,
    name           TEXT,
    created_at     BIGINT NOT NULL,
    last_signin_at BIGINT NOT NULL,
    -- unregistered | registered | active | suspended | disabled | expired | terminated
    status         TEXT NOT NULL,
    -- public_officer | vendor, from the verified email at the latest sign-in
    account_type   TEXT NOT NULL,
    terms_version  TEXT,
    registered_at  BIGINT,
    access_ends_at BIGINT,
    status_reason  TEXT,
    UNIQUE (tenant_id, object_id)
);
CREATE INDEX users_email ON users (email);

-- Relying parties (OIDC clients). URI lists and grant types are JSON arrays.
CREATE TABLE clients (
    client_id                 TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    confidential              BOOLEAN NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    backchannel_logout_uri    TEXT,
    grant_types               TEXT NOT NULL,
    jwks                      TEXT,
    enabled                   BOOLEAN NOT NULL,
    created_at                BIGINT NOT NULL
);

-- Client secrets, stored as keyed hashes; several may be live at once (rotation with overlap).
CREATE TABLE client_secrets (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX client_secrets_client ON client_secrets (client_id);

-- A grant: what one sign-in (or one client_credentials request) authorised for one client.
-- Every token descends from a grant; revoking it revokes them all.
CREATE TABLE grants (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    user_id      TEXT,
    session_hash TEXT,
    code_hash    TEXT,
    scope        TEXT NOT NULL,
    auth_time    BIGINT,
    amr          TEXT NOT NULL,
    acr          TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX grants_session ON grants (session_hash);
CREATE INDEX grants_code ON grants (code_hash);

-- Authorization codes (single use: `used_at` is set atomically; a second use revokes the grant).
CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    session_hash   TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      BIGINT NOT NULL,
    amr            TEXT NOT NULL,
    acr            TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

-- Refresh tokens, rotated on every use; a used one presented again revokes its grant.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- Access tokens revoked before their expiry (RFC 7009), by jti.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- `jti`s of client assertions (private_key_jwt) seen before they expire: each is single use.
CREATE TABLE used_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
