// An independent command-line client with DPoP (RFC 9449), on openid-client: the device grant
// for a public app with an ES256 DPoP key, then userinfo and a refresh with proofs of that key,
// and userinfo once more with the bound token presented as a bearer token (which must fail).
// Prints {"user_code": …} when the person should approve, then one JSON line of results.
// Environment: ISSUER, CLIENT_ID.
import * as client from 'openid-client';

const { ISSUER, CLIENT_ID } = process.env;
const line = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

try {
  // TechPass runs on plain http on loopback in the tests.
  const config = await client.discovery(new URL(ISSUER), CLIENT_ID, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
    timeout: 10,
  });
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const device = await client.initiateDeviceAuthorization(config, {
    scope: 'openid offline_access',
  });
  line({ user_code: device.user_code });
  const tokens = await client.pollDeviceAuthorizationGrant(config, device, undefined, { DPoP });
  const sub = tokens.claims().sub;
  const info = await client.fetchUserInfo(config, tokens.access_token, sub, { DPoP });
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, {
    DPoP,
  });
  let bearer = 'accepted';
  try {
    await client.fetchUserInfo(config, refreshed.access_token, sub);
  } catch (e) {
    // The challenges the server answered with (scheme and error), as openid-client parsed them.
    bearer = `${e.name}: ${JSON.stringify(e.cause ?? e.message)}`;
  }
  line({
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    sub,
    userinfo_sub: info.sub,
    refreshed_type: refreshed.token_type,
    refreshed_access_token: refreshed.access_token,
    bearer,
  });
} catch (e) {
  line({ error: `${e.name}: ${e.message}`, cause: String(e.cause ?? '') });
  process.exitCode = 1;
}
