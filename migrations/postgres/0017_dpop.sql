-- DPoP (RFC 9449): the thumbprint of the key a public client's grant is bound to. Its refresh
-- tokens are honoured only with a proof signed by that key. NULL: not bound.
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
