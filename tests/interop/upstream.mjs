// An Azure AD (Entra ID) v2.0 stand-in for TechPass's interop tests, on panva's certified
// oidc-provider: one tenant, its tenant-specific issuer http://127.0.0.1:<port>/<tid>/v2.0
// (../../../shared/AZURE.md §1), ID tokens with Azure's claims (oid, tid, acct, idp, amr), a
// sign-in page a browser can complete (one button per test person, and Cancel), and knobs that
// make it answer badly, for the checks TechPass must make on what its upstream says.
//
// Environment:
//   UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET  the client TechPass is at this upstream (required)
//   UPSTREAM_REDIRECT_URI                       TechPass's /callback (required)
//   UPSTREAM_TENANT_ID                          the tenant (default: a fixed test GUID)
//   UPSTREAM_MISBEHAVE                          the initial knob (see MODES; default "none")
//   UPSTREAM_HANG_MS                            how long "token-hang" waits (default 15000)
//
// It listens on 127.0.0.1, on a free port, and prints that port alone as its first line of
// standard output. Besides the provider under /<tid>/v2.0/ it serves:
//   GET  /interaction/<uid>   the sign-in page
//   POST /control             {"misbehave": MODE} sets the knob, {"disable": PERSON} or
//                             {"enable": PERSON} disables a test person as an Azure AD
//                             administrator would: no sign-in, and their refresh tokens are
//                             refused with invalid_grant (loopback test harness only)
//   GET  /state               what it saw: authorization requests, sign-ins, token requests,
//                             refresh grants (accepted and refused), who is disabled
//
// Refresh tokens are issued, so TechPass can re-verify people (issue 13 item 6). oidc-provider
// grants `offline_access` only with `prompt=consent`, which Azure AD does not need, so here every
// code yields a refresh token that does not end with the upstream session, and a refresh
// request's `scope` may name `offline_access` (Azure AD's v2.0 refresh requests carry it) though
// the token's scopes lack it: it is dropped from that request before oidc-provider sees it.

import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const MODES = new Set([
  'none',
  // The authorization response carries an `iss` parameter (RFC 9207) naming another issuer.
  'wrong-iss',
  // The ID token's `nbf` is an hour ahead (RFC 7519 §4.1.5).
  'future-nbf',
  // The ID token carries a 20 KiB claim (above the 16 KiB bound of issue 11 item 3).
  'oversized-id-token',
  // The token endpoint fails with a bare 500.
  'token-500',
  // The token endpoint answers only after UPSTREAM_HANG_MS, past TechPass's upstream timeout.
  'token-hang',
]);

const env = (name, fallback) => {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  console.error(`upstream: ${name} must be set`);
  process.exit(2);
};

const TENANT = env('UPSTREAM_TENANT_ID', '3f5c1b7e-0000-4000-8000-00000000a001');
const OTHER_TENANT = '7a7a7a7a-0000-4000-8000-00000000b002';
const VENDOR_HOME_TENANT = '9d2e4f60-0000-4000-8000-00000000c003';
const CLIENT_ID = env('UPSTREAM_CLIENT_ID');
const CLIENT_SECRET = env('UPSTREAM_CLIENT_SECRET');
const REDIRECT_URI = env('UPSTREAM_REDIRECT_URI');
const HANG_MS = Number(env('UPSTREAM_HANG_MS', '15000'));
let misbehave = env('UPSTREAM_MISBEHAVE', 'none');
// Test people disabled through /control.
const disabled = new Set();
if (!MODES.has(misbehave)) {
  console.error(`upstream: unknown UPSTREAM_MISBEHAVE ${misbehave}`);
  process.exit(2);
}

// The test people. `sub` is pairwise per application in Azure AD; `oid` is the stable key.
const PEOPLE = {
  alice: {
    name: 'Alice Tan',
    email: 'alice_tan@tech.gov.sg',
    amr: ['pwd', 'mfa'],
    note: 'officer, signs in with MFA',
  },
  bob: {
    name: 'Bob Lim',
    email: 'bob_lim@hdb.gov.sg',
    amr: ['pwd', 'mfa'],
    note: 'second officer, signs in with MFA',
  },
  carol: {
    name: 'Carol Ng',
    email: 'carol_ng@tech.gov.sg',
    amr: ['pwd'],
    note: 'officer, signs in without MFA',
  },
  dave: {
    name: 'Dave Kumar',
    email: 'dave@vendorco.example',
    amr: ['pwd', 'mfa'],
    guest: true,
    note: 'vendor, a B2B guest in this tenant, not invited to TechPass',
  },
};
for (const person of Object.values(PEOPLE)) {
  person.oid = randomUUID();
  person.sub = randomBytes(32).toString('base64url');
}

const seen = {
  authorizations: 0,
  signins: [],
  cancels: 0,
  token_requests: 0,
  refreshes: 0,
  refresh_refusals: 0,
};

const html = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title, body) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${html(title)}</title>
<style>body{font-family:sans-serif;max-width:40rem;margin:2rem auto}button{display:block;margin:.5rem 0;padding:.5rem 1rem}</style>
</head><body>${body}</body></html>`;

// The signing key: generated at start, kept so the knobs can re-sign a tampered ID token.
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const { port } = server.address();
const origin = `http://127.0.0.1:${port}`;
const mount = `/${TENANT}/v2.0`;
const issuer = `${origin}${mount}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // Azure AD v2.0 puts these in the ID token of a code flow (no userinfo round trip needed).
  claims: {
    openid: ['sub', 'oid', 'tid', 'ver', 'acct', 'idp', 'amr', 'acr'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
  },
  conformIdTokenClaims: false,
  // Azure AD-like refresh tokens (see the header).
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  async expiresWithSession() {
    return false;
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // The directory's users consented for the whole tenant: no consent prompt.
  async loadExistingGrant(ctx) {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email offline_access');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    const person = PEOPLE[id];
    // A disabled account is not found: its sign-in fails and its refresh tokens are refused
    // with invalid_grant, as Azure AD refuses a disabled user's (AADSTS50057).
    if (!person || disabled.has(id)) return undefined;
    return {
      accountId: id,
      async claims() {
        const claims = {
          sub: person.sub,
          oid: person.oid,
          tid: TENANT,
          ver: '2.0',
          name: person.name,
          preferred_username: person.email,
          email: person.email,
        };
        if (person.guest) {
          claims.acct = 1;
          claims.idp = `https://sts.windows.net/${VENDOR_HOME_TENANT}/`;
        }
        return claims;
      },
    };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Sign-in error', `<h1>Sign-in error at the upstream</h1><pre>${html(JSON.stringify(out, null, 2))}</pre>`);
  },
});

// Misbehaviour, around the provider's own handling (provider.use runs before its routes).
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/auth') seen.authorizations += 1;
  if (ctx.method === 'POST' && ctx.path === '/token') {
    seen.token_requests += 1;
    // Read here (oidc-provider then uses it) to drop offline_access from a refresh's scope.
    const form = new URLSearchParams(await readBody(ctx.req));
    if (form.get('grant_type') === 'refresh_token' && form.has('scope')) {
      form.set('scope', form.get('scope').split(' ').filter((s) => s !== 'offline_access').join(' '));
    }
    ctx.request.body = Object.fromEntries(form);
    if (misbehave === 'token-500') {
      ctx.status = 500;
      ctx.type = 'text';
      ctx.body = 'Internal Server Error';
      return;
    }
    if (misbehave === 'token-hang') {
      await new Promise((resolve) => setTimeout(resolve, HANG_MS));
    }
  }
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token' && ctx.oidc?.params?.grant_type === 'refresh_token') {
    if (ctx.status === 200) seen.refreshes += 1;
    else seen.refresh_refusals += 1;
  }
  if (misbehave === 'wrong-iss' && ctx.status >= 300 && ctx.status < 400) {
    const location = ctx.response.get('Location');
    if (location && location.startsWith(REDIRECT_URI)) {
      const url = new URL(location);
      url.searchParams.set('iss', `${origin}/${OTHER_TENANT}/v2.0`);
      ctx.redirect(url.href);
    }
  }
  if (ctx.method === 'POST' && ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token) {
    if (misbehave === 'future-nbf' || misbehave === 'oversized-id-token') {
      const claims = jose.decodeJwt(ctx.body.id_token);
      if (misbehave === 'future-nbf') claims.nbf = Math.floor(Date.now() / 1000) + 3600;
      if (misbehave === 'oversized-id-token') claims.xms_padding = 'x'.repeat(20 * 1024);
      ctx.body = {
        ...ctx.body,
        id_token: await new jose.SignJWT(claims)
          .setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid, typ: 'JWT' })
          .sign(privateKey),
      };
    }
  }
});

const signInPage = (uid, details) => {
  const hint = details.params.login_hint;
  const buttons = Object.entries(PEOPLE)
    .map(
      ([id, p]) =>
        `<li><button type="submit" name="person" value="${html(id)}">${html(p.name)} (${html(p.email)})</button> ${html(p.note)}</li>`,
    )
    .join('\n');
  return page(
    'Sign in to the Azure AD stand-in',
    `<h1>Azure AD stand-in: pick an account</h1>
<p>Tenant ${html(TENANT)}${hint ? `, login hint ${html(hint)}` : ''}.</p>
<form method="post" action="/interaction/${html(uid)}/login"><ul>${buttons}</ul></form>
<form method="post" action="/interaction/${html(uid)}/cancel"><button type="submit">Cancel</button></form>`,
  );
};

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

const send = (res, status, type, body) => {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
};

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, 'text/plain', 'interaction mismatch');
    return;
  }
  if (req.method === 'GET' && !action) {
    send(res, 200, 'text/html; charset=utf-8', signInPage(uid, details));
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, 'text/plain', 'method not allowed');
    return;
  }
  const form = new URLSearchParams(await readBody(req));
  if (action === 'cancel') {
    seen.cancels += 1;
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'The user cancelled the sign-in' },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  const id = form.get('person');
  const person = PEOPLE[id];
  if (action !== 'login' || !person) {
    send(res, 400, 'text/plain', 'unknown person');
    return;
  }
  seen.signins.push(id);
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: id, amr: person.amr, acr: '1' } },
    { mergeWithLastSubmission: false },
  );
}

const providerCallback = provider.callback();

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, origin);
    if (url.pathname === mount || url.pathname.startsWith(`${mount}/`)) {
      // Mounted like an Express sub-app: the provider sees the path below its issuer.
      req.originalUrl = req.url;
      req.url = req.url.slice(mount.length) || '/';
      providerCallback(req, res);
      return;
    }
    const match = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|cancel))?$/);
    if (match) {
      await interaction(req, res, match[1], match[2]);
      return;
    }
    if (url.pathname === '/control' && req.method === 'POST') {
      const control = JSON.parse(await readBody(req));
      if (control.disable !== undefined || control.enable !== undefined) {
        const id = control.disable ?? control.enable;
        if (!PEOPLE[id]) {
          send(res, 400, 'application/json', JSON.stringify({ error: `unknown person ${id}` }));
          return;
        }
        if (control.disable !== undefined) disabled.add(id);
        else disabled.delete(id);
        send(res, 200, 'application/json', JSON.stringify({ disabled: [...disabled] }));
        return;
      }
      const { misbehave: mode } = control;
      if (!MODES.has(mode)) {
        send(res, 400, 'application/json', JSON.stringify({ error: `unknown mode ${mode}` }));
        return;
      }
      misbehave = mode;
      send(res, 200, 'application/json', JSON.stringify({ misbehave }));
      return;
    }
    if (url.pathname === '/state' && req.method === 'GET') {
      send(res, 200, 'application/json', JSON.stringify({ issuer, misbehave, disabled: [...disabled], ...seen }));
      return;
    }
    send(res, 404, 'text/plain', 'not found');
  } catch (error) {
    console.error('upstream:', error);
    if (!res.headersSent) send(res, 500, 'text/plain', String(error?.message ?? error));
    else res.end();
  }
});

// The harness reads the port from the first line.
process.stdout.write(`${port}\n`);
console.error(`upstream: ${issuer} (misbehave: ${misbehave})`);
