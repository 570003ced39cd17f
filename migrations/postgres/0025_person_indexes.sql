-- Signing a person out everywhere, suspending them, ending their membership, withdrawing a
-- consent and the account page find the person's grants and sessions by user, and the purges
-- every replica runs find idle sessions and spent assertions (client assertions, CI job tokens)
-- by time: without these, each of them scanned the whole table (tests/bench/scale_explain.sql).
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
CREATE INDEX used_assertions_expiry ON used_assertions (expires_at);
