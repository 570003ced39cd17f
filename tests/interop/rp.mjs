// A relying party (a tenant's app) for TechPass's interop tests, on panva's certified
// openid-client: it knows TechPass only by its issuer URL and discovery, as any app would.
//
//   GET  /login        starts a code flow (PKCE S256, state, nonce) at TechPass
//   GET  /cb           completes it: openid-client checks iss (RFC 9207), state, the code
//                      exchange and the ID token (iss, aud, exp, iat, nonce); the ID token's
//                      signature is also checked against TechPass's JWKS. Shows the outcome.
//   GET  /refresh      a refresh-token grant with the latest refresh token (JSON); with
//                      ?lose=1 its answer is thrown away, as if the response never arrived,
//                      so the next /refresh retries with the same refresh token
//   GET  /logout       RP-initiated logout at TechPass's end_session_endpoint
//   GET  /logged-out   where TechPass sends the browser back after logout
//   POST /backchannel  back-channel logout tokens, checked per OpenID Back-Channel Logout 1.0 §2.6
//   POST /configure    {"client_id", "client_secret", "id_token_signed_response_alg" (default
//                      RS256)}: once, when they were not in the environment
//   POST /use-dpop     from now on, every token request carries a DPoP proof (RFC 9449) of a
//                      fresh ES256 key, and /userinfo presents the bound access token with one
//   GET  /userinfo     the UserInfo of the latest access token (JSON)
//   GET  /state        everything it received, as JSON
//
// Environment: RP_ISSUER (TechPass's issuer, required), RP_NAME (shown on its pages),
// RP_CLIENT_ID and RP_CLIENT_SECRET (or /configure), RP_PORT (default 0: a free port). It
// listens on 127.0.0.1 and prints its port alone as the first line of standard output. Start
// it twice for two apps.

import http from 'node:http';
import * as client from 'openid-client';
import * as jose from 'jose';

const ISSUER = process.env.RP_ISSUER;
if (!ISSUER) {
  console.error('rp: RP_ISSUER must be set');
  process.exit(2);
}
const NAME = process.env.RP_NAME || 'Interop app';
let clientId = process.env.RP_CLIENT_ID || '';
let clientSecret = process.env.RP_CLIENT_SECRET || '';
// The algorithm this app registered for its ID tokens (and TechPass's logout tokens to it).
let idTokenAlg = 'RS256';
const SCOPE = 'openid profile email offline_access';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

const received = { logins: [], refreshes: [], logouts: [], backchannel: [] };
// Sign-ins under way, by state; tokens of the latest successful sign-in.
const pending = new Map();
let latest = null;
let tokens = null;
let config = null;
let jwks = null;
const seenJti = new Set();
// openid-client's DPoP handle once /use-dpop was called: undefined for bearer tokens.
let DPoP;

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(process.env.RP_PORT || 0), '127.0.0.1', resolve);
});
const { port } = server.address();
const base = `http://127.0.0.1:${port}`;
const REDIRECT_URI = `${base}/cb`;
const POST_LOGOUT_URI = `${base}/logged-out`;

async function discovered() {
  if (!clientId) throw new Error('no client id yet (RP_CLIENT_ID or POST /configure)');
  if (!config) {
    // TechPass runs on plain http on loopback in the tests.
    config = await client.discovery(
      new URL(ISSUER),
      clientId,
      { id_token_signed_response_alg: idTokenAlg },
      client.ClientSecretBasic(clientSecret),
      { execute: [client.allowInsecureRequests], timeout: 10 },
    );
    jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
  }
  return config;
}

const html = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title, body) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${html(title)}</title></head>
<body><h1>${html(title)}</h1>${body}</body></html>`;

const send = (res, status, type, body, headers = {}) => {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers });
  res.end(body);
};
const json = (res, status, value) => send(res, status, 'application/json', JSON.stringify(value));

const readBody = (req, limit = 65536) =>
  new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

// What an error tells the app: the OAuth error when there is one, else the library's code.
const describe = (error) => ({
  error: error?.error ?? error?.code ?? error?.name ?? 'error',
  error_description: error?.error_description ?? error?.message ?? String(error),
});

async function login(req, res, url) {
  const cfg = await discovered();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  for (const extra of ['prompt', 'login_hint']) {
    const value = url.searchParams.get(extra);
    if (value) params[extra] = value;
  }
  const attempt = { state, nonce, verifier };
  pending.set(state, attempt);
  latest = attempt;
  res.writeHead(302, { Location: client.buildAuthorizationUrl(cfg, params).href });
  res.end();
}

async function callback(req, res, url) {
  const cfg = await discovered();
  // An answer without a known state is checked against the latest attempt (and fails there).
  const attempt = pending.get(url.searchParams.get('state')) ?? latest;
  const record = { at: Date.now(), query: Object.fromEntries(url.searchParams) };
  try {
    if (!attempt) throw new Error('no sign-in was started here');
    const answer = await client.authorizationCodeGrant(
      cfg,
      url,
      {
        pkceCodeVerifier: attempt.verifier,
        expectedState: attempt.state,
        expectedNonce: attempt.nonce,
        idTokenExpected: true,
      },
      undefined,
      { DPoP },
    );
    pending.delete(attempt.state);
    // openid-client relies on TLS for the ID token from the token endpoint (OIDC Core
    // §3.1.3.7 item 6); this app checks its signature too, against TechPass's JWKS.
    const verified = await jose.jwtVerify(answer.id_token, jwks, {
      issuer: cfg.serverMetadata().issuer,
      audience: clientId,
      algorithms: [idTokenAlg],
    });
    record.id_token_alg = verified.protectedHeader.alg;
    tokens = answer;
    record.ok = true;
    record.claims = answer.claims();
    record.scope = answer.scope;
    record.has_refresh_token = Boolean(answer.refresh_token);
    record.token_type = answer.token_type;
    // The key a DPoP-bound access token (a JWT here) names (RFC 9449 §6.1).
    record.access_token_jkt = jose.decodeJwt(answer.access_token).cnf?.jkt ?? null;
  } catch (error) {
    record.ok = false;
    Object.assign(record, describe(error));
  }
  received.logins.push(record);
  const title = record.ok ? `Signed in to ${NAME}` : `${NAME}: sign-in failed`;
  const body = record.ok
    ? `<p id="subject">${html(record.claims.sub)}</p>`
    : `<p id="error">${html(record.error)}</p><p id="error_description">${html(record.error_description)}</p>`;
  send(res, 200, 'text/html; charset=utf-8', page(title, `${body}<pre id="outcome">${html(JSON.stringify(record, null, 2))}</pre>`));
}

async function refresh(req, res, url) {
  const cfg = await discovered();
  const record = { at: Date.now(), lost: url.searchParams.get('lose') === '1' };
  try {
    if (!tokens?.refresh_token) throw new Error('no refresh token');
    const answer = await client.refreshTokenGrant(cfg, tokens.refresh_token, undefined, { DPoP });
    record.ok = true;
    record.token_type = answer.token_type;
    record.access_token_jkt = jose.decodeJwt(answer.access_token).cnf?.jkt ?? null;
    record.rotated = answer.refresh_token !== tokens.refresh_token;
    record.new_access_token = answer.access_token !== tokens.access_token;
    record.claims = answer.claims() ?? null;
    if (!record.lost) tokens = { ...tokens, ...answer };
  } catch (error) {
    record.ok = false;
    Object.assign(record, describe(error));
  }
  received.refreshes.push(record);
  json(res, 200, record);
}

async function userinfo(req, res) {
  const cfg = await discovered();
  const record = { dpop: Boolean(DPoP) };
  try {
    if (!tokens?.access_token) throw new Error('no access token');
    // The subject of the latest sign-in (after a refresh, tokens is a plain object).
    const sub = received.logins.findLast((l) => l.ok)?.claims.sub;
    const info = await client.fetchUserInfo(cfg, tokens.access_token, sub, { DPoP });
    record.ok = true;
    record.sub = info.sub;
  } catch (error) {
    record.ok = false;
    Object.assign(record, describe(error));
  }
  json(res, 200, record);
}

async function useDpop(req, res) {
  DPoP = client.getDPoPHandle(await discovered(), await client.randomDPoPKeyPair('ES256'));
  json(res, 200, { dpop: true });
}

async function logout(req, res) {
  const cfg = await discovered();
  const state = client.randomState();
  received.logouts.push({ at: Date.now(), started: true, state });
  const params = { post_logout_redirect_uri: POST_LOGOUT_URI, state };
  if (tokens?.id_token) params.id_token_hint = tokens.id_token;
  res.writeHead(302, { Location: client.buildEndSessionUrl(cfg, params).href });
  res.end();
}

function loggedOut(req, res, url) {
  const started = received.logouts.findLast((l) => l.started);
  const ok = Boolean(started) && url.searchParams.get('state') === started.state;
  received.logouts.push({ at: Date.now(), returned: true, state_matches: ok });
  send(res, 200, 'text/html; charset=utf-8', page(ok ? `Signed out of ${NAME}` : `${NAME}: unexpected logout answer`, ''));
}

// OpenID Connect Back-Channel Logout 1.0 §2.6: a logout token is a JWT signed by the OP, for
// this client, recent, with sub and/or sid, the back-channel event, no nonce; and its jti is
// used once.
async function backchannel(req, res) {
  const record = { at: Date.now() };
  try {
    const cfg = await discovered();
    const form = new URLSearchParams(await readBody(req));
    const token = form.get('logout_token');
    if (!token) throw new Error('no logout_token');
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer: cfg.serverMetadata().issuer,
      audience: clientId,
      algorithms: [idTokenAlg],
      typ: 'logout+jwt',
      requiredClaims: ['iat', 'jti', 'events'],
      maxTokenAge: '2 minutes',
    });
    if (!payload.sub && !payload.sid) throw new Error('neither sub nor sid');
    const event = payload.events?.[BACKCHANNEL_EVENT];
    if (!event || typeof event !== 'object' || Array.isArray(event)) throw new Error('not a back-channel logout event');
    if ('nonce' in payload) throw new Error('a logout token carries no nonce');
    if (seenJti.has(payload.jti)) throw new Error('jti replayed');
    seenJti.add(payload.jti);
    record.ok = true;
    record.typ = protectedHeader.typ;
    record.claims = payload;
    // Which of this app's sign-ins it ends.
    record.matches_session = received.logins.some(
      (l) => l.ok && (l.claims.sid ? l.claims.sid === payload.sid : l.claims.sub === payload.sub),
    );
  } catch (error) {
    record.ok = false;
    Object.assign(record, describe(error));
  }
  received.backchannel.push(record);
  if (record.ok) send(res, 200, 'text/plain', '');
  else json(res, 400, { error: 'invalid_request', error_description: record.error_description });
}

async function configure(req, res) {
  if (clientId) {
    json(res, 409, { error: 'already configured' });
    return;
  }
  const body = JSON.parse(await readBody(req));
  if (typeof body.client_id !== 'string' || !body.client_id) {
    json(res, 400, { error: 'client_id required' });
    return;
  }
  clientId = body.client_id;
  clientSecret = typeof body.client_secret === 'string' ? body.client_secret : '';
  if (typeof body.id_token_signed_response_alg === 'string') idTokenAlg = body.id_token_signed_response_alg;
  await discovered();
  json(res, 200, { client_id: clientId });
}

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, base);
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /login') await login(req, res, url);
    else if (route === 'GET /cb') await callback(req, res, url);
    else if (route === 'GET /refresh') await refresh(req, res, url);
    else if (route === 'GET /logout') await logout(req, res);
    else if (route === 'GET /logged-out') loggedOut(req, res, url);
    else if (route === 'POST /backchannel') await backchannel(req, res);
    else if (route === 'POST /configure') await configure(req, res);
    else if (route === 'POST /use-dpop') await useDpop(req, res);
    else if (route === 'GET /userinfo') await userinfo(req, res);
    else if (route === 'GET /state') json(res, 200, { name: NAME, base, client_id: clientId, ...received });
    else send(res, 404, 'text/plain', 'not found');
  } catch (error) {
    console.error('rp:', error);
    if (!res.headersSent) send(res, 500, 'text/html; charset=utf-8', page(`${NAME}: error`, `<pre>${html(error?.stack ?? error)}</pre>`));
    else res.end();
  }
});

process.stdout.write(`${port}\n`);
console.error(`rp ${NAME}: ${base}, issuer ${ISSUER}`);
