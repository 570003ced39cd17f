-- API resources of a tenant (RFC 8707): an identifier (the `aud` of the tokens minted for it),
-- the scopes it defines, and which of the tenant's apps may ask for which of those scopes.
-- Audiences are granted here, never chosen by the caller.
CREATE TABLE api_resources (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- an absolute URI, unique across tenants: one audience, one owner
    identifier  TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    -- JSON array of scope names
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX api_resources_tenant ON api_resources (tenant_id, identifier);

-- Which app may request which scopes of a resource (a subset of the resource's scopes).
CREATE TABLE resource_grants (
    resource_id TEXT NOT NULL REFERENCES api_resources (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    -- JSON array of scope names
    scopes      TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    granted_by  TEXT NOT NULL,
    PRIMARY KEY (resource_id, client_id)
);
CREATE INDEX resource_grants_client ON resource_grants (client_id);
