-- Grants to a person named by email before they have an account: access to an app, the
-- administration of a tenant, or of the platform. When someone whose verified email (lowercased)
-- matches signs in, each grant they are eligible for becomes the real one and its row goes.
-- Until then it is listed and revocable. At most one pending grant of a kind per email and
-- target.
CREATE TABLE pending_grants (
    id         TEXT PRIMARY KEY,
    -- lowercased
    email      TEXT NOT NULL,
    -- app_access | tenant_admin | platform_admin
    kind       TEXT NOT NULL,
    -- the tenant (of the app, for app_access); none for platform_admin
    tenant_id  TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    -- the app, for app_access only
    client_id  TEXT REFERENCES clients (client_id) ON DELETE CASCADE,
    granted_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX pending_grants_one_app_access ON pending_grants (client_id, email)
    WHERE kind = 'app_access';
CREATE UNIQUE INDEX pending_grants_one_tenant_admin ON pending_grants (tenant_id, email)
    WHERE kind = 'tenant_admin';
CREATE UNIQUE INDEX pending_grants_one_platform_admin ON pending_grants (email)
    WHERE kind = 'platform_admin';
CREATE INDEX pending_grants_email ON pending_grants (email);
CREATE INDEX pending_grants_tenant ON pending_grants (tenant_id, granted_at);

-- Invitations to one address in one tenant (the vendor rule of pending grants).
CREATE INDEX invitations_tenant_email ON invitations (tenant_id, email);
