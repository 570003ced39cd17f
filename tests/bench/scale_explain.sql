-- The plans of the statements the token path runs (and of the per-person statements that sign-out,
-- suspension and the lifecycle run), on the seeded schema of tests/bench/scale.sh. Each must be
-- an index lookup: none may scan a table whose size grows with people, apps or grants.
\set ON_ERROR_STOP on
\pset pager off
\pset format unaligned
\pset tuples_only on
\echo '-- client authentication (on a row-cache miss): the app, its secrets'
EXPLAIN (COSTS OFF) SELECT * FROM clients WHERE client_id = 'app_seed5000';
EXPLAIN (COSTS OFF) SELECT * FROM client_secrets WHERE client_id = 'app_seed5000' ORDER BY created_at, id;
\echo '-- the gate: the app''s tenant (on a miss), the person, their upstream links'
EXPLAIN (COSTS OFF) SELECT * FROM tenants WHERE id = 'scale-tenant';
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE id = 'user-500';
EXPLAIN (COSTS OFF) SELECT * FROM upstream_links WHERE user_id = 'user-500' ORDER BY last_verified_at DESC;
\echo '-- refresh: the token with its grant and person (one read), the rotation (one statement), a replay''s revocation'
EXPLAIN (COSTS OFF) SELECT g.*, r.token_hash, u.id AS u_id, u.status AS u_status FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id LEFT JOIN users u ON u.id = g.user_id WHERE r.token_hash = translate(rtrim(encode(sha256('refresh500'), 'base64'), '='), '+/', '-_');
EXPLAIN (COSTS OFF) WITH spent AS (UPDATE refresh_tokens SET used_at = 1, successor_hash = 'x' WHERE token_hash = translate(rtrim(encode(sha256('refresh500'), 'base64'), '='), '+/', '-_') AND used_at IS NULL RETURNING token_hash, grant_id, created_at, expires_at, used_at), successor AS (INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, used_at) SELECT 'x', 'grant-500', 1, 2, NULL FROM spent WHERE 'x' IS NOT NULL) SELECT * FROM spent;
EXPLAIN (COSTS OFF) UPDATE grants SET revoked_at = 1 WHERE id = 'grant-500' AND revoked_at IS NULL;
\echo '-- code exchange: the code with its person (one read), its redemption into the grant and first refresh token (one statement); a replay revokes the grant the code names'
EXPLAIN (COSTS OFF) SELECT c.*, u.id AS u_id, u.status AS u_status FROM auth_codes c LEFT JOIN users u ON u.id = c.user_id WHERE c.code_hash = 'x';
EXPLAIN (COSTS OFF) WITH spent AS (UPDATE auth_codes SET used_at = 1, grant_id = 'g' WHERE code_hash = 'x' AND used_at IS NULL RETURNING *), new_grant AS (INSERT INTO grants (id, client_id, user_id, scope, amr, created_at, expires_at) SELECT 'g', 'app_seed1', 'user-1', 'openid', '[]', 1, 2 FROM spent RETURNING id), first_refresh AS (INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) SELECT 'y', id, 1, 2 FROM new_grant) SELECT * FROM spent;
EXPLAIN (COSTS OFF) UPDATE grants SET revoked_at = 1 WHERE id = 'grant-500' AND revoked_at IS NULL;
\echo '-- userinfo and introspection: a revoked access token, the SSO session'
EXPLAIN (COSTS OFF) SELECT expires_at FROM revoked_tokens WHERE jti = 'x';
EXPLAIN (COSTS OFF) SELECT * FROM sessions WHERE id_hash = translate(rtrim(encode(sha256('session500'), 'base64'), '='), '+/', '-_');
\echo '-- per person: sign-out everywhere, suspension, consent withdrawal, the account page'
EXPLAIN (COSTS OFF) UPDATE grants SET revoked_at = 1 WHERE user_id = 'user-500' AND revoked_at IS NULL;
EXPLAIN (COSTS OFF) SELECT * FROM grants WHERE user_id = 'user-500' AND revoked_at IS NULL AND expires_at > 1 ORDER BY created_at, id;
EXPLAIN (COSTS OFF) SELECT * FROM sessions WHERE user_id = 'user-500' ORDER BY created_at, id_hash;
EXPLAIN (COSTS OFF) UPDATE grants SET revoked_at = 1 WHERE session_hash = translate(rtrim(encode(sha256('session500'), 'base64'), '='), '+/', '-_') AND revoked_at IS NULL;
\echo '-- the lifecycle job: one page of people after the last one seen (jobs.interval_secs)'
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE exempt = FALSE AND id > 'user-500' AND status IN ('registered', 'active', 'disabled') ORDER BY id LIMIT 200;
\echo '-- the purges every replica runs (keys.reload_interval_secs)'
EXPLAIN (COSTS OFF) DELETE FROM login_attempts WHERE expires_at < 1;
EXPLAIN (COSTS OFF) DELETE FROM sessions WHERE expires_at < 1 OR last_seen_at < -1;
EXPLAIN (COSTS OFF) DELETE FROM used_assertions WHERE expires_at < 1;
