-- The outcome of a webhook's last challenge, so its page says why it is not verified.
ALTER TABLE webhooks ADD COLUMN challenge_at BIGINT;
ALTER TABLE webhooks ADD COLUMN challenge_error TEXT;
