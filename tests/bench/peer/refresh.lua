-- wrk: POST refresh_token to /token with HTTP Basic client authentication, rotating: each answer's
-- refresh token goes back into a pool from which the next request takes one, so no token is
-- used twice (both servers revoke a family on reuse). Needs more tokens than connections.
-- BASIC_AUTH = base64("client_id:client_secret"); TOKENS_FILE = seeded refresh tokens, one a line.
-- Run with one thread (-t1): the pool lives in that thread's Lua state.
local auth = os.getenv("BASIC_AUTH")
assert(auth, "BASIC_AUTH is required")
local pool = {}
local tokens_file = os.getenv("TOKENS_FILE")
assert(tokens_file, "TOKENS_FILE is required")
for line in io.lines(tokens_file) do
  if #line > 0 then pool[#pool + 1] = line end
end
assert(#pool > 0, "no refresh tokens in TOKENS_FILE")
local last = pool[1]

local function form_escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

request = function()
  local token = table.remove(pool)
  if token == nil then
    -- The pool ran dry (answers that were not 200 lost their token): reuse one, which the server
    -- will refuse; counted as a non-2xx answer, never silently.
    token = last
  end
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. auth,
  }, "grant_type=refresh_token&refresh_token=" .. form_escape(token))
end

response = function(status, headers, body)
  local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if status == 200 and token then
    pool[#pool + 1] = token
    last = token
  end
end
