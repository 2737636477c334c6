// panva's oidc-provider as a FAPI 2.0 provider for pipaauth's interop test
// (e2e/interop): FAPI 2.0 profile, pushed authorization requests required,
// private_key_jwt only, DPoP-bound tokens with nonces, refresh tokens,
// revocation, RP-initiated logout. Logins are approved at once for the
// user "alice".
//
// Input (environment):
//   CLIENT_ID         the client's id
//   CLIENT_JWK        the client's public key, a JWK (JSON)
//   REDIRECT_URI      the client's redirect URI
//   POST_LOGOUT_URI   the client's post-logout redirect URI
// It listens on 127.0.0.1 on a port of the system's choosing and prints
// "issuer <URL>" on stdout once ready. It exits when stdin closes, so that
// it never outlives the test that started it.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const need = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`oidcprovider: ${name} is not set`);
    process.exit(2);
  }
  return v;
};

const clientID = need('CLIENT_ID');
const clientJWK = JSON.parse(need('CLIENT_JWK'));
const redirectURI = need('REDIRECT_URI');
const postLogoutURI = need('POST_LOGOUT_URI');

const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
signing.kid = 'op-es256';
signing.alg = 'ES256';
signing.use = 'sig';

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientID,
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: clientJWK.alg || 'ES256',
      jwks: { keys: [clientJWK] },
      redirect_uris: [redirectURI],
      post_logout_redirect_uris: [postLogoutURI],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'ES256',
      dpop_bound_access_tokens: true,
      require_pushed_authorization_requests: true,
    }],
    jwks: { keys: [signing] },
    clientAuthMethods: ['private_key_jwt'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['ES256', 'PS256'],
      dPoPSigningAlgValues: ['ES256', 'PS256'],
      idTokenSigningAlgValues: ['ES256'],
    },
    features: {
      fapi: { enabled: true, profile: '2.0' },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
      dPoP: { enabled: true, nonceSecret: Buffer.alloc(32, 7), requireNonce: () => true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      devInteractions: { enabled: false },
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'email', 'offline_access'],
    pkce: { required: () => true },
    ttl: { AccessToken: 6, IdToken: 3600, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
    issueRefreshToken: async () => true,
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@example.com`, email_verified: true };
        },
      };
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['pipaauth-interop-cookie-key'] },
  });
  provider.on('server_error', (ctx, err) => console.error('oidcprovider: server_error', err));

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    if (!req.url.startsWith('/interaction/')) {
      callback(req, res);
      return;
    }
    try {
      // Approve at once: alice signs in and consents to what is asked.
      const details = await provider.interactionDetails(req, res);
      const { prompt, params, session } = details;
      if (prompt.name === 'login') {
        await provider.interactionFinished(req, res, { login: { accountId: 'alice' } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (err) {
      console.error('oidcprovider: interaction', err);
      res.statusCode = 500;
      res.end(String(err));
    }
  });
  console.log(`issuer ${issuer}`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
