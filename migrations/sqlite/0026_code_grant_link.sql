-- A code names the grant it was redeemed into, and a replayed code revokes that grant by its key
-- (RFC 6749 §10.5, RFC 8628 §3.5's device code likewise). It was the other way round: each grant
-- kept the hash of its code, and a replay looked grants up by it, through an index on a random
-- key that every code exchange inserted into (issue 17 item 5: the first pages of a million-row
-- index each write met after a checkpoint went into the WAL whole). A code's row is updated by
-- its redemption anyway. No foreign key: a grant purged before its code leaves an id that
-- revokes nothing.
ALTER TABLE auth_codes ADD COLUMN grant_id TEXT;
ALTER TABLE device_codes ADD COLUMN grant_id TEXT;
-- One grant per code: a code is spent by one conditional update, its grant made with it.
UPDATE auth_codes SET grant_id = (SELECT g.id FROM grants g
                                  WHERE g.code_hash = auth_codes.code_hash LIMIT 1)
WHERE used_at IS NOT NULL;
UPDATE device_codes SET grant_id = (SELECT g.id FROM grants g
                                    WHERE g.code_hash = device_codes.device_code_hash LIMIT 1)
WHERE status = 'redeemed';
DROP INDEX grants_code;
ALTER TABLE grants DROP COLUMN code_hash;
