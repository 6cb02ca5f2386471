// A real OpenID Connect provider for dagfleet's single sign-on tests (oidc-provider).
//
//   node provider.mjs CONFIG.json          (or the JSON in $OIDC_PROVIDER_CONFIG)
//
// CONFIG:
//   {
//     "port": 4711,                         // listens on 127.0.0.1
//     "issuer": "http://127.0.0.1:4711",
//     "clients": [                          // oidc-provider client metadata
//       {"client_id": "dagfleet", "client_secret": "...",
//        "redirect_uris": ["http://127.0.0.1:8080/auth/oidc/callback"]},
//       {"client_id": "dagfleet-public", "token_endpoint_auth_method": "none",
//        "redirect_uris": ["..."]}
//     ],
//     "users": {"alice": {"password": "...", "groups": ["platform"],
//                         "email": "alice@example.com", "name": "Alice"}},
//     "groups_claim": "groups",             // the claim's name (default groups)
//     "groups_scope": null,                 // null: groups come with openid (always);
//                                           // "groups": only when that scope is asked for
//     "groups_in_id_token": true,           // false: claims only from userinfo
//     "auto_consent": true                  // first-party clients: no consent page
//   }
//
// PKCE (S256) is required of every client. Sign-in is a plain HTML form (inputs
// `login` and `password`, a submit button, a cancel button that answers the client
// with access_denied), so a plain HTTP client and a headless browser can both use it.
// It prints "listening <issuer>" on stdout once it serves.

import {
  generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual,
} from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

function loadConfig() {
  const path = process.argv[2];
  const text = path ? readFileSync(path, 'utf8') : process.env.OIDC_PROVIDER_CONFIG;
  if (!text) {
    console.error('usage: node provider.mjs CONFIG.json (or set OIDC_PROVIDER_CONFIG)');
    process.exit(2);
  }
  const config = JSON.parse(text);
  for (const key of ['port', 'issuer', 'clients', 'users']) {
    if (config[key] === undefined) {
      console.error(`provider config: "${key}" is missing`);
      process.exit(2);
    }
  }
  return config;
}

const config = loadConfig();
const users = config.users;
const groupsClaim = config.groups_claim ?? 'groups';
const groupsScope = config.groups_scope ?? null;
const autoConsent = config.auto_consent ?? true;

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

function sameSecret(given, expected) {
  const a = Buffer.from(String(given ?? ''));
  const b = Buffer.from(String(expected));
  return a.length === b.length && timingSafeEqual(a, b);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html lang=en><head><meta charset=utf-8><title>${escapeHtml(title)}</title></head>`
    + `<body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function loginPage(uid, clientId, error) {
  return page('Sign in', `
<p>to continue to <b>${escapeHtml(clientId)}</b></p>
${error ? `<p class=error role=alert>${escapeHtml(error)}</p>` : ''}
<form method=post action="/interaction/${escapeHtml(uid)}/login" autocomplete=off>
  <label>Username <input name=login required autofocus></label>
  <label>Password <input name=password type=password required></label>
  <button type=submit id=submit>Sign in</button>
</form>
<form method=post action="/interaction/${escapeHtml(uid)}/abort">
  <button type=submit id=cancel>Cancel</button>
</form>`);
}

function consentPage(uid, clientId, scopes) {
  return page('Allow access', `
<p><b>${escapeHtml(clientId)}</b> asks for: ${escapeHtml(scopes.join(' '))}</p>
<form method=post action="/interaction/${escapeHtml(uid)}/confirm">
  <button type=submit id=allow>Allow</button>
</form>
<form method=post action="/interaction/${escapeHtml(uid)}/abort">
  <button type=submit id=cancel>Deny</button>
</form>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const claims = {
  openid: groupsScope ? ['sub'] : ['sub', groupsClaim],
  profile: ['preferred_username', 'name'],
  email: ['email', 'email_verified'],
};
if (groupsScope) claims[groupsScope] = [groupsClaim];

const provider = new Provider(config.issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
    ...c,
  })),
  jwks: { keys: [signingKey()] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims,
  conformIdTokenClaims: !(config.groups_in_id_token ?? true),
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
  },
  clientBasedCORS: () => false,
  async findAccount(ctx, sub) {
    const user = users[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: sub,
          name: user.name ?? sub,
          email: user.email ?? `${sub}@example.com`,
          email_verified: true,
          [groupsClaim]: user.groups ?? [],
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (!autoConsent || !ctx.oidc.session.accountId) return undefined;
    // First-party clients: grant what was asked for, no consent page.
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
    grant.addOIDCClaims([...ctx.oidc.requestParamClaims]);
    await grant.save();
    return grant;
  },
});

// The interactions: sign-in and consent pages, each under /interaction/<uid>.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
  if (!match) return next();
  const [, uid, step] = match;
  ctx.set('cache-control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Sign-in expired', `<p>${escapeHtml(err.message)}: start again from the application.</p>`);
    return undefined;
  }
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  const clientId = details.params.client_id;
  const finish = async (result, merge) => {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: merge,
    });
    ctx.status = 303;
    ctx.redirect(to);
  };

  if (ctx.method === 'GET' && !step) {
    ctx.type = 'html';
    if (details.prompt.name === 'login') {
      ctx.body = loginPage(uid, clientId, null);
    } else {
      ctx.body = consentPage(uid, clientId, String(details.params.scope ?? '').split(' '));
    }
    return undefined;
  }
  if (ctx.method !== 'POST' || !step) ctx.throw(405, 'method not allowed');
  const form = await readForm(ctx.req);

  if (step === 'abort') {
    return finish({
      error: 'access_denied',
      error_description: 'the user cancelled the sign-in',
    }, false);
  }
  if (step === 'login') {
    if (details.prompt.name !== 'login') ctx.throw(400, 'not signing in');
    const login = form.get('login') ?? '';
    const user = Object.hasOwn(users, login) ? users[login] : undefined;
    if (!user || !sameSecret(form.get('password'), user.password)) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, clientId, 'Wrong username or password.');
      return undefined;
    }
    return finish({ login: { accountId: login } }, false);
  }
  // confirm
  if (details.prompt.name !== 'consent') ctx.throw(400, 'nothing to confirm');
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  return finish({ consent: { grantId: await grant.save() } }, true);
});

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${config.issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
