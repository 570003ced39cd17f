-- wrk: POST client_credentials to /token with HTTP Basic client authentication.
-- BASIC_AUTH = base64("client_id:client_secret"); BODY_EXTRA = more form parameters (e.g.
-- "&scope=api%3Aread" for the peer, whose resource server grants that scope).
local auth = os.getenv("BASIC_AUTH")
assert(auth, "BASIC_AUTH is required")
wrk.method = "POST"
wrk.path   = "/token"
wrk.body   = "grant_type=client_credentials" .. (os.getenv("BODY_EXTRA") or "")
wrk.headers["Content-Type"]  = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. auth
