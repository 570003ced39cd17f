-- Sign-in state that spans the redirect to an upstream: looked up (and deleted) by the keyed
-- hash of the `state` parameter; bound to the browser that started it.
CREATE TABLE login_attempts (
    state_hash   TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    upstream     TEXT NOT NULL,
    return_to    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX login_attempts_expiry ON login_attempts (expires_at);

-- SSO sessions, keyed by the keyed hash of the cookie value; any replica can serve them.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    upstream     TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    identity     TEXT NOT NULL,
    auth_time    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_subject ON sessions (tenant_id, object_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Append-only security events.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    reason     TEXT,
    actor      TEXT,
    subject    TEXT,
    tenant     TEXT,
    upstream   TEXT,
    request_id TEXT,
    details    TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
