// An independent OpenID Provider for the end-to-end tests: panva's npm
// oidc-provider (v9), configured with one confidential client for the BFF
// and one for the demo API (introspection only).
//
//   node op.mjs --port 4000 --public http://127.0.0.1:8080 [--client-secret S] [--access-ttl 5]
//
// prints "ready <issuer>" once it listens on 127.0.0.1:<port>.
//
// Test-only endpoints (this is a fixture, never a production OP):
//   GET /test/stats   counts of token endpoint calls by grant type, refresh
//                     successes/errors, back-channel logouts sent, revocations…
//   GET /test/tokens  every token string the token endpoint has issued, so a
//                     test can check that none of them reached the browser.
//
// Notes on oidc-provider's behaviour that shape this configuration:
// - It drops the offline_access scope unless the authorization request has
//   prompt=consent (OIDC Core 11). The BFF sends no prompt, so
//   issueRefreshToken is configured to issue refresh tokens to clients that
//   may use the refresh_token grant, whatever the scope. Such refresh tokens
//   are bound to the OP session (expiresWithSession).
// - loadExistingGrant grants the BFF client the scopes and claims it asks for,
//   so no consent screen is shown (a first-party client).
// - Outgoing requests (back-channel logout) are SSRF-protected and refuse
//   127.0.0.0/8; the fetch hook below lifts that for 127.0.0.1 only.
// - Node's http server closes idle keep-alive connections after 5 s by
//   default; see --keep-alive-ms.
// - Rotated refresh tokens: replaying a consumed one revokes the whole grant
//   (every token of the family), so a refresh race in the BFF is fatal here.
// - Authentication context classes (step-up, RFC 9470): a sign-in is
//   ACR_PASSWORD, or ACR_CONFIRMED when the authorization request asked for
//   it (acr_values); any other requested value is not supported and the
//   sign-in gets ACR_PASSWORD. acr_values the OP session's acr does not
//   satisfy make the OP ask for the login again (an extra login check), as
//   max_age does. Access tokens carry acr and auth_time (extraTokenClaims,
//   visible to the API through introspection).
// - Resource indicators (RFC 8707) only with --resources (see there).
import http from 'node:http';
import { parseArgs } from 'node:util';
import Provider, { errors as opErrors, interactionPolicy } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    public: { type: 'string' },
    'client-id': { type: 'string', default: 'bff' },
    'client-secret': { type: 'string', default: 'bff-e2e-secret-0123456789abcdef' },
    'api-secret': { type: 'string', default: 'api-e2e-secret-0123456789abcdef' },
    'access-ttl': { type: 'string', default: '5' },
    // Node's default server keep-alive, 5 s, the same as the access token
    // lifetime of the refresh tests: a refresh then may go out on a
    // connection the OP is closing at that moment. The BFF must cope (it
    // drops idle IdP connections early and resends on a stale one).
    'keep-alive-ms': { type: 'string', default: '5000' },
    // Another loopback address (e.g. 127.0.0.2) makes the OP another site
    // than the BFF on 127.0.0.1 (ports do not count for SameSite), so the
    // redirect back to the BFF is a cross-site navigation, as in production.
    host: { type: 'string', default: '127.0.0.1' },
    // Comma-separated resource indicators (RFC 8707) the OP serves JWT
    // access tokens for, each with the scope "api"; none: the feature is off.
    resources: { type: 'string', default: '' },
  },
});
if (!args.port || !args.public) {
  console.error('usage: node op.mjs --port PORT --public http://127.0.0.1:BFFPORT');
  process.exit(2);
}

const port = Number(args.port);
const issuer = `http://${args.host}:${port}`;
const pub = args.public.replace(/\/$/, '');
const accessTTL = Number(args['access-ttl']);
const resources = args.resources ? args.resources.split(',') : [];

const stats = {
  tokenRequests: {}, // grant_type -> requests that reached the token endpoint
  grantSuccess: {}, // grant_type -> successful grants
  grantErrors: [], // { grant_type, error, description }
  refreshConsumed: 0,
  backchannel: { success: 0, errors: [] },
  endSession: 0,
  revocations: 0,
  introspections: 0,
  authorizations: 0,
  authorizeParams: [], // { acr_values, max_age, prompt, resource } of each authorization request
  logins: [], // { acr, acr_values, max_age, prompt } of each completed login
  serverErrors: [],
};
const issuedTokens = [];

const log = (...a) => console.log(new Date().toISOString(), ...a);

const ACR_PASSWORD = 'urn:e2e:acr:password';
const ACR_CONFIRMED = 'urn:e2e:acr:confirmed';

// The login prompt also when the session's acr is not one requested.
const policy = interactionPolicy.base();
policy.get('login').checks.push(new interactionPolicy.Check(
  'acr_not_satisfied', 'requested authentication context class not satisfied', 'login_required',
  (ctx) => {
    const { oidc } = ctx;
    const wanted = oidc.params.acr_values ? String(oidc.params.acr_values).split(' ') : [];
    if (!wanted.length || ctx.oidc.result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    return wanted.includes(oidc.session.acr)
      ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
  },
));

const configuration = {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [`${pub}/bff/callback`],
      post_logout_redirect_uris: [`${pub}/`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      backchannel_logout_uri: `${pub}/bff/backchannel-logout`,
      backchannel_logout_session_required: true,
      scope: 'openid profile email offline_access',
    },
    {
      // the demo API: a resource server that only introspects
      client_id: 'api',
      client_secret: args['api-secret'],
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [],
      grant_types: [],
      response_types: [],
    },
  ],
  // default dev keys (ephemeral) are fine; cookie keys for signed cookies
  cookies: { keys: ['e2e-cookie-key-0123456789abcdef'] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: `E2E ${sub}`,
          preferred_username: sub,
          email: `${sub}@example.test`,
          email_verified: true,
        };
      },
    };
  },
  acrValues: [ACR_PASSWORD, ACR_CONFIRMED],
  interactions: { policy },
  async extraTokenClaims(ctx) {
    const src = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken;
    return src?.acr ? { acr: src.acr, auth_time: src.authTime } : undefined;
  },
  features: {
    // RFC 8707 (--resources): a resource-bound access token is a JWT whose
    // aud is that resource alone; without a resource parameter at the
    // token endpoint the token is the usual one for userinfo.
    resourceIndicators: {
      enabled: resources.length > 0,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo(ctx, resourceIndicator) {
        if (!resources.includes(resourceIndicator)) throw new opErrors.InvalidTarget();
        return { scope: 'api', audience: resourceIndicator, accessTokenTTL: accessTTL, accessTokenFormat: 'jwt' };
      },
    },
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  async loadExistingGrant(ctx) {
    const { client, session, params } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
    if (client.clientId !== args['client-id']) return grant;
    // first-party client: grant what it asks for, no consent screen
    grant ??= new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    if (params.scope) grant.addOIDCScope(params.scope);
    // resource indicators asked for at authorization get the scope "api"
    for (const r of [params.resource ?? []].flat()) {
      if (resources.includes(r)) grant.addResourceScope(r, 'api');
    }
    if (params.claims) {
      try {
        const c = JSON.parse(params.claims);
        for (const k of ['id_token', 'userinfo']) {
          if (c[k]) grant.addOIDCClaims(Object.keys(c[k]));
        }
      } catch { /* ignore */ }
    }
    await grant.save();
    return grant;
  },
  ttl: {
    AccessToken: accessTTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  // Back-channel logout goes to the BFF on 127.0.0.1, which the built-in SSRF
  // protection refuses; allow exactly that host.
  fetch(url, options) {
    const u = new URL(url);
    if (u.hostname !== '127.0.0.1') {
      throw new Error(`e2e OP refuses to call ${u.origin}`);
    }
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  async renderError(ctx, out, error) {
    log('renderError', JSON.stringify(out), error?.stack || '');
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><body><h1>oops! something went wrong</h1><pre id="op-error">${
      Object.entries(out).map(([k, v]) => `${k}: ${String(v).replace(/[<>&]/g, '')}`).join('\n')
    }</pre></body></html>`;
  },
};

const provider = new Provider(issuer, configuration);

// Count what reaches the token endpoint, before any validation.
provider.use(async (ctx, next) => {
  const started = Date.now();
  await next();
  const route = ctx.oidc?.route;
  if (route === 'token') {
    const gt = ctx.oidc.params?.grant_type ?? 'unknown';
    stats.tokenRequests[gt] = (stats.tokenRequests[gt] ?? 0) + 1;
  } else if (route === 'revocation') {
    stats.revocations += 1;
  } else if (route === 'introspection') {
    stats.introspections += 1;
  } else if (route === 'authorization') {
    stats.authorizations += 1;
    const q = ctx.query ?? {};
    stats.authorizeParams.push({ acr_values: q.acr_values ?? null, max_age: q.max_age ?? null, prompt: q.prompt ?? null, resource: q.resource ?? null });
  }
  log(ctx.method, ctx.path, ctx.status, `${Date.now() - started}ms`, route ?? '');
});

provider.on('grant.success', (ctx) => {
  const gt = ctx.oidc.params?.grant_type;
  stats.grantSuccess[gt] = (stats.grantSuccess[gt] ?? 0) + 1;
  const body = ctx.body ?? {};
  for (const k of ['access_token', 'refresh_token', 'id_token']) {
    if (typeof body[k] === 'string') issuedTokens.push({ kind: k, grant_type: gt, value: body[k] });
  }
  log('grant.success', gt, 'refresh_token' in body ? '(with refresh token)' : '(no refresh token)', `expires_in=${body.expires_in}`, `scope=${body.scope}`);
});
provider.on('grant.error', (ctx, err) => {
  const gt = ctx.oidc?.params?.grant_type;
  stats.grantErrors.push({ grant_type: gt, error: err.error ?? err.name, description: err.error_description ?? err.message });
  log('grant.error', gt, err.error, err.error_description ?? err.message);
});
provider.on('refresh_token.consumed', () => { stats.refreshConsumed += 1; });
provider.on('backchannel.success', (ctx, client, accountId, sid) => {
  stats.backchannel.success += 1;
  log('backchannel.success', client.clientId, accountId, sid);
});
provider.on('backchannel.error', (ctx, err, client, accountId, sid) => {
  stats.backchannel.errors.push(String(err?.message ?? err));
  log('backchannel.error', client.clientId, accountId, sid, err?.message, err?.cause?.message ?? '');
});
provider.on('end_session.success', () => { stats.endSession += 1; log('end_session.success'); });
provider.on('server_error', (ctx, err) => {
  stats.serverErrors.push(String(err?.message ?? err));
  log('server_error', err?.stack ?? err);
});
for (const ev of ['authorization.error', 'end_session.error', 'introspection.error', 'revocation.error', 'userinfo.error']) {
  provider.on(ev, (ctx, err) => log(ev, err?.error ?? err?.name, err?.error_description ?? err?.message));
}

// The dev interactions' login has no acr: give the sign-in the one asked
// for, if the OP supports it.
const finished = provider.interactionFinished.bind(provider);
provider.interactionFinished = async (req, res, result, opts) => {
  if (result?.login) {
    const { params } = await provider.interactionDetails(req, res);
    const wanted = params.acr_values ? String(params.acr_values).split(' ') : [];
    result.login.acr = wanted.includes(ACR_CONFIRMED) ? ACR_CONFIRMED : ACR_PASSWORD;
    stats.logins.push({ acr: result.login.acr, acr_values: params.acr_values ?? null, max_age: params.max_age ?? null, prompt: params.prompt ?? null });
  }
  return finished(req, res, result, opts);
};

const opCallback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url === '/test/stats' && req.method === 'GET') {
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.url === '/test/tokens' && req.method === 'GET') {
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify(issuedTokens));
    return;
  }
  opCallback(req, res);
});
server.keepAliveTimeout = Number(args['keep-alive-ms']);
server.headersTimeout = Math.max(60000, server.keepAliveTimeout + 1000);
server.listen(port, args.host, () => {
  console.log(`ready ${issuer}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
