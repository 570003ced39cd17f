-- Bounded staleness against the upstream (issue 13 item 6). One row per person and upstream
-- they signed in through: the upstream's refresh token, sealed under the master key (NULL when
-- the upstream issued none), and when the upstream last confirmed the person. A TechPass
-- refresh or SSO reuse more than `upstream.reverify_after_secs` after `last_verified_at`
-- refreshes at the upstream first.
CREATE TABLE upstream_links (
    user_id          TEXT NOT NULL,
    upstream         TEXT NOT NULL,
    -- base64 of the sealed refresh token; never the plaintext
    sealed_refresh_token TEXT,
    last_verified_at INTEGER NOT NULL,
    -- consecutive re-verifications that got no answer (outage), reset by a success
    failures         INTEGER NOT NULL DEFAULT 0,
    -- a re-verification under way (claimed by one request, on any replica) until then, so
    -- that an upstream which rotates refresh tokens strictly is never shown a rotated one
    checking_until   INTEGER,
    PRIMARY KEY (user_id, upstream)
);

-- The development upstream's disabled test people (its directory is fixed in code): a row
-- means the person cannot sign in there and their refresh tokens are refused. In the database
-- so that every replica's development upstream and the CLI agree.
CREATE TABLE dev_upstream_disabled (
    person      TEXT PRIMARY KEY,
    disabled_at INTEGER NOT NULL
);
