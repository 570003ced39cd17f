-- Tenants: the services onboarded to the toolchain. An officer requests one; a platform admin
-- approves (active) or rejects it; an active tenant may be suspended and reinstated.
CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    -- short unique name, the prefix of the tenant's group names in tokens (`slug:group`)
    slug          TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    -- requested | active | rejected | suspended
    status        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    status_at     INTEGER,
    status_by     TEXT,
    status_reason TEXT
);
CREATE INDEX tenants_status ON tenants (status, created_at);

-- Who administers which tenant. A tenant keeps at least one admin once it has one.
CREATE TABLE tenant_admins (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    added_at  INTEGER NOT NULL,
    added_by  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX tenant_admins_user ON tenant_admins (user_id);

-- Platform admins: approve tenants, see every tenant.
CREATE TABLE platform_admins (
    user_id    TEXT PRIMARY KEY,
    granted_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL
);

-- Invitations to a tenant, by email (lowercased). The link's secret is stored as a keyed hash.
-- At most one pending invitation per tenant and email: a new one replaces the old.
CREATE TABLE invitations (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    invited_by     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    access_ends_at INTEGER,
    -- pending | accepted | revoked | expired | replaced
    status         TEXT NOT NULL,
    status_at      INTEGER,
    accepted_by    TEXT,
    sent_count     INTEGER NOT NULL
);
CREATE UNIQUE INDEX invitations_one_pending ON invitations (tenant_id, email)
    WHERE status = 'pending';
CREATE INDEX invitations_tenant ON invitations (tenant_id, created_at);
CREATE INDEX invitations_pending_expiry ON invitations (expires_at) WHERE status = 'pending';

-- People who accepted an invitation to a tenant, with the access end date it gave them.
CREATE TABLE tenant_members (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL,
    joined_at      INTEGER NOT NULL,
    access_ends_at INTEGER,
    invitation_id  TEXT,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX tenant_members_user ON tenant_members (user_id);

-- Groups of people within a tenant (shown in tokens as `tenant-slug:name`).
CREATE TABLE groups (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

-- The apps' owners, lifetimes, assignment rule and automation API access. Existing (platform)
-- apps have no tenant and admit any registered user.
ALTER TABLE clients ADD COLUMN tenant_id TEXT REFERENCES tenants (id);
ALTER TABLE clients ADD COLUMN homepage TEXT;
ALTER TABLE clients ADD COLUMN user_assignment_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN access_token_lifetime_secs INTEGER;
ALTER TABLE clients ADD COLUMN refresh_token_idle_secs INTEGER;
ALTER TABLE clients ADD COLUMN api_access INTEGER NOT NULL DEFAULT 0;
CREATE INDEX clients_tenant ON clients (tenant_id);

-- Revoked secrets stay listed but never authenticate.
ALTER TABLE client_secrets ADD COLUMN revoked_at INTEGER;
CREATE INDEX client_secrets_expiry ON client_secrets (expires_at);

-- Lifecycle: exempt people are left alone by the lifecycle jobs; the last app sign-in drives
-- the dormancy rules.
ALTER TABLE users ADD COLUMN exempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN app_signin_at INTEGER;

-- Who (a user or a group, by id) may sign in to which app.
CREATE TABLE app_assignments (
    client_id      TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    -- user | group
    principal_type TEXT NOT NULL,
    principal_id   TEXT NOT NULL,
    assigned_at    INTEGER NOT NULL,
    assigned_by    TEXT NOT NULL,
    PRIMARY KEY (client_id, principal_type, principal_id)
);
CREATE INDEX app_assignments_principal ON app_assignments (principal_type, principal_id);

-- The roles an app defines (released in its tokens).
CREATE TABLE app_roles (
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    PRIMARY KEY (client_id, role)
);

-- Which user or group holds which role of an app.
CREATE TABLE role_assignments (
    client_id      TEXT NOT NULL,
    role           TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    principal_id   TEXT NOT NULL,
    PRIMARY KEY (client_id, role, principal_type, principal_id),
    FOREIGN KEY (client_id, role) REFERENCES app_roles (client_id, role) ON DELETE CASCADE
);
CREATE INDEX role_assignments_principal
    ON role_assignments (client_id, principal_type, principal_id);

-- Emails to send, written in the request that decides to send them and delivered by a job on
-- any replica. `next_attempt_at` is a lease while sending and a back-off after a failure;
-- 9223372036854775807 (i64::MAX) means given up.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);

-- Lifecycle notices already sent: one per person, kind and due date.
CREATE TABLE notices (
    subject TEXT NOT NULL,
    kind    TEXT NOT NULL,
    due_at  INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (subject, kind, due_at)
);

-- Tenants' webhook endpoints. The signing secret is sealed under the master key.
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    -- JSON array of event names
    events        TEXT NOT NULL,
    secret_sealed BLOB NOT NULL,
    verified_at   INTEGER,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at);

-- Webhook deliveries, leased like outbox emails; `payload` is the exact signed body.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    -- pending | delivered | failed (given up)
    status           TEXT NOT NULL,
    last_status_code INTEGER,
    last_error       TEXT,
    delivered_at     INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
