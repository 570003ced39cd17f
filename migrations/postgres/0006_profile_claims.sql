-- What the upstream proved about a person beyond the name: given and family names (OpenID
-- Connect Core §5.1) and whether the email address is verified (Azure AD: xms_edov or an
-- authoritative verified email attribute; other upstreams: their own email_verified).
ALTER TABLE users
    ADD COLUMN given_name TEXT,
    ADD COLUMN family_name TEXT,
    ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
