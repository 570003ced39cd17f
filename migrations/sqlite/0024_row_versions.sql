-- Apps, their secrets and tenants are cached per process for at most a second (the token path
-- reads them at every request). Every change of them bumps this version, which each server
-- polls, so a change made by another process (the CLI, another server on the same file) is seen
-- well within that second.
CREATE TABLE row_versions (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO row_versions (name, version) VALUES ('apps', 0);

CREATE TRIGGER clients_inserted AFTER INSERT ON clients
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
CREATE TRIGGER clients_updated AFTER UPDATE ON clients
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
CREATE TRIGGER client_secrets_inserted AFTER INSERT ON client_secrets
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
CREATE TRIGGER client_secrets_updated AFTER UPDATE ON client_secrets
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
CREATE TRIGGER client_secrets_deleted AFTER DELETE ON client_secrets
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
CREATE TRIGGER tenants_inserted AFTER INSERT ON tenants
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
CREATE TRIGGER tenants_updated AFTER UPDATE ON tenants
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
CREATE TRIGGER tenants_deleted AFTER DELETE ON tenants
BEGIN UPDATE row_versions SET version = version + 1 WHERE name = 'apps'; END;
