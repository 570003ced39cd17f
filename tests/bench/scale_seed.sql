-- Seeds a migrated TechPass schema (search_path) for tests/bench/scale.sh: :people registered
-- officers with an upstream link and a session each, :apps confidential apps (half of them a
-- tenant's) with a secret each, and :families live refresh token families (a grant and its
-- current refresh token), spread over the people and apps. Nothing here is used by the
-- benchmark's own person and apps; it only makes every table the token path reads large. The
-- people signed in just now (to TechPass and to an app), so the lifecycle job finds nothing due
-- and reads them all: its steady state, not a storm of transitions.
\set ON_ERROR_STOP on
-- Hashes of sessions, codes and refresh tokens in the shape TechPass stores (a keyed SHA-256,
-- base64url without padding, 43 characters), so that the benchmark's own rows land among the
-- seeded ones in every index, as in a database that grew in use. (With md5's hex, a narrower
-- alphabet, most of the benchmark's keys sorted into a few pages between and after the seeded
-- ones, and its inserts never met the million-row indexes.) The refresh tokens are keyed as
-- before 241be9f, by their hash alone (a database just upgraded): the benchmark's own, keyed by
-- minting time, land together among them.
CREATE FUNCTION pg_temp.hashed(v text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT translate(rtrim(encode(sha256(convert_to(v, 'UTF8')), 'base64'), '='), '+/', '-_') $$;

INSERT INTO tenants (id, slug, name, description, purpose, status, requested_by, created_at)
VALUES ('scale-tenant', 'scale', 'Scale', 'Seeded', 'Benchmark', 'active', 'seed', 0);

INSERT INTO users (id, tenant_id, object_id, email, name, created_at, last_signin_at, status,
                   account_type, registered_at, terms_version, app_signin_at)
SELECT 'user-' || i, 'seed-tid', 'oid-' || i, 'person' || i || '@tech.gov.sg', 'Person ' || i,
       t.now, t.now, 'active', 'public_officer', t.now, '1', t.now
FROM generate_series(1, :people) i, (SELECT extract(epoch FROM now())::bigint AS now) t;

INSERT INTO upstream_links (user_id, upstream, last_verified_at)
SELECT 'user-' || i, 'wog', 0 FROM generate_series(1, :people) i;

INSERT INTO sessions (id_hash, user_id, upstream, tenant_id, object_id, identity, auth_time,
                      created_at, last_seen_at, expires_at)
SELECT pg_temp.hashed('session' || i), 'user-' || i, 'wog', 'seed-tid', 'oid-' || i, '{}', t.now, t.now, t.now,
       4102444800
FROM generate_series(1, :people) i, (SELECT extract(epoch FROM now())::bigint AS now) t;

INSERT INTO clients (client_id, name, confidential, redirect_uris, post_logout_redirect_uris,
                     grant_types, enabled, created_at, tenant_id, access_policy)
SELECT 'app_seed' || i, 'Seeded app ' || i, true, '["https://app' || i || '.example/cb"]', '[]',
       '["authorization_code","refresh_token"]', true, 0,
       CASE WHEN i % 2 = 0 THEN 'scale-tenant' END, 'officers'
FROM generate_series(1, :apps) i;

INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at)
SELECT 'secret-' || i, 'app_seed' || i, md5('secret' || i), 0, 4102444800
FROM generate_series(1, :apps) i;

INSERT INTO grants (id, client_id, user_id, session_hash, scope, auth_time, amr, created_at,
                    expires_at)
SELECT 'grant-' || i, 'app_seed' || (1 + i % :apps), 'user-' || (1 + i % :people),
       pg_temp.hashed('session' || (1 + i % :people)), 'openid offline_access', 0, '[]', 0,
       4102444800
FROM generate_series(1, :families) i;

INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at)
SELECT pg_temp.hashed('refresh' || i), 'grant-' || i, 0, 4102444800
FROM generate_series(1, :families) i;

ANALYZE;
