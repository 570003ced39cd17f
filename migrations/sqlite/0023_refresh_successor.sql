-- A lost refresh response (issue 15 item 8): each redeemed refresh token names the token it
-- was rotated to, so a client that retries with the old token within
-- tokens.refresh_reuse_grace_secs gets a new successor in place of the one it never received
-- (which is deleted unused) instead of being treated as a replay.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;
