-- A webhook's secret rotated with overlap: the previous secret (sealed like the current one)
-- still signs deliveries, next to the new one, until previous_until.
ALTER TABLE webhooks ADD COLUMN previous_secret_sealed BYTEA;
ALTER TABLE webhooks ADD COLUMN previous_until BIGINT;
