// A CI system's OIDC issuer for TechPass's CI workload identity tests (issue 14 item 3), as
// GitLab CI publishes one: a discovery document and a JWKS over loopback, and ID tokens signed
// with its own RSA key (RS256, via panva's jose) carrying GitLab's claims (project_path, ref,
// ref_type, ref_protected, namespace_path, pipeline_id, …). It can rotate its key, and forge
// the tokens an attacker would try.
//
// It listens on 127.0.0.1, on a free port, and prints that port alone as its first line of
// standard output. Its issuer is http://127.0.0.1:<port>. It serves:
//   GET  /.well-known/openid-configuration   the discovery document
//   GET  /oauth/discovery/keys               the JWKS: the current public key only
//   POST /token   {"aud": A, "claims": {…}, "forge": F}  a job's ID token for audience A, with
//                 claims overriding or adding to the defaults (null removes one). F is one of:
//                 "none" (alg none, no signature), "hs256" (HMAC keyed with the published
//                 public key: the key-confusion attack), "foreign" (signed by a key that is not
//                 published, under the current kid), "unknown-kid" (a real signature but a kid
//                 that is not published)
//   POST /rotate  a new key pair and kid; the old key is no longer published
//   GET  /state   {"jwks_fetches": N, "kid": K}

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';

let port = 0;
const issuer = () => `http://127.0.0.1:${port}`;

const newKey = async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID();
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' };
  return { publicKey, privateKey, kid, jwk };
};

let key = await newKey();
let jwksFetches = 0;

const defaults = (aud) => {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: issuer(),
    aud,
    sub: 'project_path:platform/deployer:ref_type:branch:ref:main',
    namespace_path: 'platform',
    project_path: 'platform/deployer',
    ref: 'main',
    ref_type: 'branch',
    ref_protected: 'true',
    pipeline_id: '1207',
    user_login: 'alice',
    jti: randomUUID(),
    iat: now,
    nbf: now - 5,
    exp: now + 300,
  };
};

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

const mint = async ({ aud, claims = {}, forge }) => {
  const payload = { ...defaults(aud), ...claims };
  for (const [name, value] of Object.entries(payload)) {
    if (value === null) delete payload[name];
  }
  switch (forge) {
    case undefined:
    case null:
      return new jose.SignJWT(payload)
        .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
        .sign(key.privateKey);
    case 'none':
      return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
    case 'hs256': {
      const secret = new TextEncoder().encode(JSON.stringify(key.jwk));
      return new jose.SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: 'JWT' })
        .sign(secret);
    }
    case 'foreign': {
      const other = await newKey();
      return new jose.SignJWT(payload)
        .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
        .sign(other.privateKey);
    }
    case 'unknown-kid':
      return new jose.SignJWT(payload)
        .setProtectedHeader({ alg: 'RS256', kid: 'not-published', typ: 'JWT' })
        .sign(key.privateKey);
    default:
      throw new Error(`unknown forge ${forge}`);
  }
};

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const readBody = (req) =>
  new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => {
      data += chunk;
      if (data.length > 65536) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: issuer(),
        jwks_uri: `${issuer()}/oauth/discovery/keys`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (req.method === 'GET' && req.url === '/oauth/discovery/keys') {
      jwksFetches += 1;
      return json(res, 200, { keys: [key.jwk] });
    }
    if (req.method === 'POST' && req.url === '/token') {
      const asked = JSON.parse((await readBody(req)) || '{}');
      return json(res, 200, { token: await mint(asked) });
    }
    if (req.method === 'POST' && req.url === '/rotate') {
      key = await newKey();
      return json(res, 200, { kid: key.kid });
    }
    if (req.method === 'GET' && req.url === '/state') {
      return json(res, 200, { jwks_fetches: jwksFetches, kid: key.kid });
    }
    json(res, 404, { error: 'not found' });
  } catch (e) {
    process.stderr.write(`${e.stack}\n`);
    json(res, 500, { error: String(e) });
  }
});

server.listen(0, '127.0.0.1', () => {
  port = server.address().port;
  process.stdout.write(`${port}\n`);
});
