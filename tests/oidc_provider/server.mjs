// An OpenID-certified provider (panva/node-oidc-provider) for the auth tests, on 127.0.0.1 only.
//
// Listens on an ephemeral port, then prints one JSON line on stdout:
//   {"issuer": "http://127.0.0.1:PORT", "resource": "...", "audience": "..."}
// and serves until stdin closes (so it never outlives the test process that started it).
//
// Clients (client-credentials grant, client_secret_basic):
//   duka-api     / duka-api-secret      the resource server's own client: introspects tokens
//   jwt-client   / jwt-client-secret    gets RFC 9068 JWT access tokens when it names `resource`
//   opaque-client/ opaque-client-secret gets opaque tokens: for RESOURCE + '/opaque' (same
//                                       audience), or with no resource named (no `aud`)
//   roles-client / roles-client-secret  its tokens carry scopes only as realm_access.roles
//                                       (a Keycloak-style claim) and a plain `scope` of "openid"
//
// `duka-api` is also the back-office's sign-in client (authorization code, PKCE required), with
// redirect and post-logout URIs under each origin of DUKA_ADMIN_ORIGINS (comma list; default
// http://testserver, the Django test client's). People sign in on the development login page
// (devInteractions: any password); the claims of a login come from ACCOUNTS below (userinfo;
// the ID token carries `sub` only, as node-oidc-provider does for the code flow).
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const API_SCOPES = 'customers:read customers:write orders:read orders:write webhooks:manage';
const RESOURCE = 'https://duka.test/api';
const AUDIENCE = 'duka-test-api';

const ADMIN_ORIGINS = (process.env.DUKA_ADMIN_ORIGINS || 'http://testserver')
  .split(',').map((origin) => origin.trim()).filter(Boolean);
// Development accounts: login -> claims. Any other login has no groups (refused by the back-office).
const ACCOUNTS = {
  olive: { name: 'Olive Operator', email: 'olive@duka.test', groups: ['staff', 'duka-operator'] },
  victor: { name: 'Victor Viewer', email: 'victor@duka.test', groups: ['duka-viewer'] },
  nora: { name: 'Nora Nobody', email: 'nora@duka.test', groups: ['staff'] },
  kim: { name: 'Kim Keycloak', email: 'kim@duka.test', realm_access: { roles: ['duka-operator'] } },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const client = (id, scope) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope,
});

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        ...client('duka-api', `openid profile email ${API_SCOPES}`),
        grant_types: ['client_credentials', 'authorization_code'],
        response_types: ['code'],
        redirect_uris: ADMIN_ORIGINS.map((origin) => `${origin}/admin/oidc/callback/`),
        post_logout_redirect_uris: ADMIN_ORIGINS.map((origin) => `${origin}/admin/login/`),
      },
      client('jwt-client', API_SCOPES),
      client('opaque-client', API_SCOPES),
      client('roles-client', `openid ${API_SCOPES}`),
    ],
    jwks: { keys: [signingKey] },
    scopes: ['openid', 'profile', 'email', ...API_SCOPES.split(' ')],
    claims: {
      openid: ['sub'],
      profile: ['name', 'groups', 'realm_access'],
      email: ['email'],
    },
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, groups: [], ...(ACCOUNTS[sub] || {}) }),
    }),
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only the resource server's own client may ask about tokens.
        allowedPolicy: async (ctx, caller) => caller.clientId === 'duka-api',
      },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined, // no resource named: an opaque token
        useGrantedResource: async () => false,
        getResourceServerInfo: async (ctx, resource) => {
          if (resource === `${RESOURCE}/opaque`) {
            return { scope: API_SCOPES, audience: AUDIENCE, accessTokenTTL: 300, accessTokenFormat: 'opaque' };
          }
          if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
          return {
            scope: API_SCOPES,
            audience: AUDIENCE,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: { ClientCredentials: 300 },
    extraTokenClaims: async (ctx, token) => {
      if (token.clientId !== 'roles-client') return undefined;
      // Scopes carried only as Keycloak realm roles (the token's `scope` holds "openid").
      return { realm_access: { roles: ['customers:read', 'orders:read'] } };
    },
  });
  provider.on('server_error', (ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, resource: RESOURCE, audience: AUDIENCE })}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
