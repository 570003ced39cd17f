-- The device authorization grant (RFC 8628): a device code the device polls with and a user code
-- the person types at the verification page, both stored as keyed hashes. A row is pending until
-- the person approves or denies it, then redeemed once at the token endpoint; it is kept an hour
-- past its expiry so late polls still get expired_token.
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash   TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    -- space-separated, as requested and checked
    scope            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    -- the polling interval the device must keep (RFC 8628 §3.5: raised by slow_down)
    interval_secs    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    -- pending | approved | denied | redeemed
    status           TEXT NOT NULL,
    decided_at       BIGINT,
    -- the person who approved, and the sign-in they approved from
    user_id          TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_hash     TEXT,
    auth_time        BIGINT,
    amr              TEXT,
    acr              TEXT
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);
