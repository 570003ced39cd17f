-- CI workload identity (issue 14 item 3): the CI issuers an app trusts. A CI job presents its
-- own OIDC ID token (GitLab CI id_tokens, GitHub Actions) at /token (RFC 8693 token exchange);
-- it is accepted for the app when a row here names its issuer, the audience it must carry, and
-- claim rules it all meets. The jti of each accepted token is kept in used_assertions under
-- client_id 'ci|<issuer>' until it expires, so a token is exchanged once.
CREATE TABLE ci_issuers (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    -- the issuer URL exactly as its tokens' iss says it (its discovery document is under it)
    issuer     TEXT NOT NULL,
    -- the aud the job's token must carry (GitLab: id_tokens aud; GitHub: the audience asked for)
    audience   TEXT NOT NULL,
    -- JSON list of {"claim": NAME, "pattern": TEXT}: every rule must match (* is a wildcard)
    rules      TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX ci_issuers_by_client ON ci_issuers (client_id);
