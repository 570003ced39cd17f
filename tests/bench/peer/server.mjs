// The peer for tests/bench/peer.sh: node-oidc-provider (OpenID-certified), configured like the
// TechPass side of the comparison. Copied by peer.sh into a scratch folder outside the
// repository, next to the oidc-provider it installs there; loopback only.
//
// Env: PORT (3000), ALG = RS256 | ES256 (RS256), REFRESH_TOKENS (64), TOKENS_FILE (where the
// seeded refresh tokens are written, one per line).
// One confidential client, bench-client, authenticating with client_secret_basic (as TechPass's
// apps do), allowed client_credentials and refresh_token. Its ID tokens and its JWT access tokens
// are signed with ALG by a key generated at start (RSA-2048 or P-256) and published in the JWKS.
// Refresh tokens rotate on every use, as TechPass's do; the seeded ones are created through the
// provider's own models (a grant for one account with openid + offline_access + the API scope),
// which is what a code exchange would have stored.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT || 3000);
const HOST = '127.0.0.1';
const ALG = process.env.ALG === 'ES256' ? 'ES256' : 'RS256';
const REFRESH_TOKENS = Number(process.env.REFRESH_TOKENS || 64);
const TOKENS_FILE = process.env.TOKENS_FILE;
const RESOURCE = 'urn:bench:api';
const CLIENT_ID = 'bench-client';

const { privateKey } = ALG === 'ES256'
  ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
  : generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: ALG, use: 'sig', kid: `bench-${ALG.toLowerCase()}` };

const provider = new Provider(`http://${HOST}:${PORT}`, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: 'bench-secret-0123456789abcdef0123456789abcdef',
    grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
    redirect_uris: ['https://app.example.gov.sg/callback'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid offline_access api:read',
    id_token_signed_response_alg: ALG,
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'api:read'],
  claims: { openid: ['sub'] },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Resource indicators give the access tokens a resource server, and with it the format:
    // JWTs signed with ALG (RFC 9068), as TechPass's are.
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api:read',
        audience: RESOURCE,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: ALG } },
      }),
    },
  },
});

async function seedRefreshTokens() {
  const client = await provider.Client.find(CLIENT_ID);
  const now = Math.floor(Date.now() / 1000);
  const tokens = [];
  for (let i = 0; i < REFRESH_TOKENS; i++) {
    const accountId = `bench-user-${i}`;
    const grant = new provider.Grant({ accountId, clientId: CLIENT_ID });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(RESOURCE, 'api:read');
    const grantId = await grant.save();
    const refresh = new provider.RefreshToken({
      client,
      accountId,
      grantId,
      gty: 'authorization_code',
      scope: 'openid offline_access',
      resource: RESOURCE,
      authTime: now,
      iiat: now,
      rotations: 0,
    });
    tokens.push(await refresh.save());
  }
  if (TOKENS_FILE) writeFileSync(TOKENS_FILE, tokens.join('\n') + '\n');
}

await seedRefreshTokens();
provider.listen(PORT, HOST, () => {
  console.log(`oidc-provider pid=${process.pid} http://${HOST}:${PORT} alg=${ALG} refresh_tokens=${REFRESH_TOKENS}`);
});
