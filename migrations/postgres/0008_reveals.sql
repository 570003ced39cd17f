-- What a page shows once (a new client secret, a webhook's signing secret): sealed under the
-- master key, readable once by the person who caused it, for a few minutes. The page that
-- created it answers with a redirect to the reading, so a reload never repeats the action.
CREATE TABLE reveals (
    -- keyed hash of the random id in the reading's URL
    id_hash    TEXT PRIMARY KEY,
    -- the user id that may read it
    owner      TEXT NOT NULL,
    -- base64 of the sealed JSON
    sealed     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reveals_expiry ON reveals (expires_at);
