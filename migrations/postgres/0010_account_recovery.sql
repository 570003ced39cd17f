-- Account recovery (issue 13 item 8). `enabled_at`: when a platform admin last re-enabled a
-- disabled account (the lifecycle counts inactivity from then at the earliest).
-- `terminated_at`: when the lifecycle terminated the account; it is deleted
-- `accounts.delete_terminated_after_days` later.
ALTER TABLE users
    ADD COLUMN enabled_at BIGINT,
    ADD COLUMN terminated_at BIGINT;
-- Accounts terminated before this step count from the upgrade.
UPDATE users SET terminated_at = CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)
 WHERE status = 'terminated';
CREATE INDEX users_terminated ON users (terminated_at) WHERE status = 'terminated';
