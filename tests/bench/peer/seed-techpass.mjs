// Seeds refresh tokens of a TechPass app for tests/bench/peer.sh, as a browser and the app would
// get them: the development upstream's Alice signs in once (accepting the terms on her first
// sign-in), then each code from that SSO session (PKCE S256, a nonce) is exchanged at /token.
// Prints COUNT refresh tokens, one per line, each the head of its own family.
//
// Usage: node seed-techpass.mjs BASE CLIENT_ID CLIENT_SECRET COUNT
import { createHash, randomBytes } from 'node:crypto';

const [base, clientId, clientSecret, countText] = process.argv.slice(2);
if (!base || !clientId || !clientSecret || !countText) {
  console.error('usage: node seed-techpass.mjs BASE CLIENT_ID CLIENT_SECRET COUNT');
  process.exit(2);
}
const CALLBACK = 'https://app.example.gov.sg/callback';
const SCOPE = 'openid profile email offline_access';
const jar = new Map();

function remember(response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';');
    const at = pair.indexOf('=');
    const name = pair.slice(0, at).trim();
    const gone = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
    if (gone) jar.delete(name); else jar.set(name, pair.slice(at + 1).trim());
  }
}

async function go(url, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const response = await fetch(new URL(url, base), { ...init, headers, redirect: 'manual' });
  remember(response);
  return response;
}

async function seeOther(response, what) {
  if (response.status !== 303) {
    throw new Error(`${what}: expected 303, got ${response.status}: ${(await response.text()).slice(0, 300)}`);
  }
  return response.headers.get('location');
}

function authorizeUrl(loginHint) {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL('/authorize', base);
  url.search = new URLSearchParams({
    client_id: clientId, redirect_uri: CALLBACK, response_type: 'code', scope: SCOPE,
    state: randomBytes(8).toString('hex'), nonce: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256', ...(loginHint ? { login_hint: loginHint } : {}),
  });
  return { url: url.toString(), verifier };
}

function codeIn(location) {
  const code = new URL(location).searchParams.get('code');
  if (!code) throw new Error(`no code in ${location}`);
  return code;
}

const unescape = (s) => s.replace(/&#x2f;/g, '/').replace(/&amp;/g, '&').replace(/&#x3d;/g, '=')
  .replace(/&#x3f;/g, '?').replace(/&quot;/g, '"').replace(/&#x27;/g, "'");
function field(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m) throw new Error(`no ${name} in the registration form`);
  return unescape(m[1]);
}

async function signIn() {
  const first = authorizeUrl('alice_tan@tech.gov.sg');
  const login = await seeOther(await go(first.url), '/authorize');
  const upstream = await seeOther(await go(login), '/login');
  const picker = await go(upstream);
  if (picker.status !== 200) throw new Error(`development upstream picker: ${picker.status}`);
  const action = new URL(upstream);
  const form = new URLSearchParams(action.searchParams);
  form.append('person', 'alice');
  action.search = '';
  const callback = await seeOther(await go(action, { method: 'POST', body: form }), 'person picker');
  let next = await seeOther(await go(callback), '/callback');
  if (next.startsWith('/register')) {
    const html = await (await go(next)).text();
    const terms = new URLSearchParams({
      csrf_token: field(html, 'csrf_token'), terms_version: field(html, 'terms_version'),
      return_to: field(html, 'return_to'), accept_terms: 'yes',
    });
    next = await seeOther(await go('/register', { method: 'POST', body: terms }), '/register');
  }
  return { code: codeIn(await seeOther(await go(next), 'the return to /authorize')), verifier: first.verifier };
}

async function exchange({ code, verifier }) {
  const response = await fetch(new URL('/token', base), {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: verifier }),
  });
  const body = await response.json();
  if (response.status !== 200 || !body.refresh_token) {
    throw new Error(`code exchange: ${response.status} ${JSON.stringify(body)}`);
  }
  return body.refresh_token;
}

const tokens = [await exchange(await signIn())];
while (tokens.length < Number(countText)) {
  const next = authorizeUrl();
  const code = codeIn(await seeOther(await go(next.url), '/authorize in the SSO session'));
  tokens.push(await exchange({ code, verifier: next.verifier }));
}
process.stdout.write(tokens.join('\n') + '\n');
