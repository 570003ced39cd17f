-- Apps, their secrets and tenants are cached per replica for at most a second (the token path
-- reads them at every request). Every change of them notifies the techpass_rows channel, which
-- each replica listens on, so a change made elsewhere (the CLI, another replica) is seen at once.
-- (SQLite, which has no notifications, bumps a version row instead.)

CREATE FUNCTION techpass_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('techpass_rows', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION techpass_rows_changed();
CREATE TRIGGER client_secrets_changed AFTER INSERT OR UPDATE OR DELETE ON client_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION techpass_rows_changed();
CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION techpass_rows_changed();
