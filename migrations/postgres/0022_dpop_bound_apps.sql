-- RFC 9449 §5.2 client metadata dpop_bound_access_tokens (issue 14 item 4): an app that sets
-- it gets tokens only for requests that prove a DPoP key, so none of its access tokens is a
-- bearer token and its public clients' refresh tokens are always bound.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
