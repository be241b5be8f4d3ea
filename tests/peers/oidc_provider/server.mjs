// A real OpenID Connect provider (panva/oidc-provider) used as a test peer for sso_gate.
//
// Environment:
//   PORT     (required) TCP port; the server binds 127.0.0.1 only and the issuer is
//            http://127.0.0.1:$PORT
//   CLIENTS  (required) JSON array of client metadata objects, e.g.
//            [{"client_id": "rp", "client_secret": "s3cret",
//              "redirect_uris": ["http://127.0.0.1:8000/cb"],
//              "token_endpoint_auth_method": "client_secret_basic",
//              "id_token_signed_response_alg": "RS256"}]
//            Any other oidc-provider client metadata is passed through unchanged.
//
// stdout carries exactly one line, "READY http://127.0.0.1:$PORT", once listening.
// Everything else (oidc-provider notices, errors) goes to stderr.
//
// Interactions (devInteractions are disabled):
//   GET  /interaction/:uid         login page (email only); consent prompts are auto-granted
//   POST /interaction/:uid/login   urlencoded "email=..." -> logs that account in
//   GET  /interaction/:uid/abort   ends the request with error=access_denied
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

// oidc-provider prints its notices with console.info (stdout); keep stdout for READY only.
console.info = (...args) => console.error(...args);

function fail(message) {
  console.error(`oidc-provider peer: ${message}`);
  process.exit(2);
}

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail(`PORT must be set to a valid TCP port, got ${JSON.stringify(process.env.PORT)}`);
}

let clients;
try {
  clients = JSON.parse(process.env.CLIENTS ?? '[]');
} catch (err) {
  fail(`CLIENTS is not valid JSON: ${err.message}`);
}
if (!Array.isArray(clients)) {
  fail('CLIENTS must be a JSON array of client metadata objects');
}
clients = clients.map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  ...client,
}));

const issuer = `http://127.0.0.1:${port}`;

// ---------------------------------------------------------------------------
// Keys: one RS256 signing key and random cookie keys, generated at startup.
// ---------------------------------------------------------------------------
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `sig-${crypto.randomBytes(8).toString('hex')}`,
  use: 'sig',
  alg: 'RS256',
};
const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

// ---------------------------------------------------------------------------
// Accounts: any email is accepted; everything is derived from the email.
// ---------------------------------------------------------------------------
const accounts = new Map(); // accountId -> email

function capitalize(word) {
  return word ? word.charAt(0).toUpperCase() + word.slice(1) : word;
}

function accountIdFor(email) {
  return `user-${crypto.createHash('sha256').update(email).digest('hex').slice(0, 16)}`;
}

function profileFor(email) {
  const local = email.split('@')[0];
  const parts = local.split('.').filter(Boolean);
  let givenName;
  let familyName;
  if (parts.length >= 2) {
    givenName = capitalize(parts[0]);
    familyName = parts.slice(1).map(capitalize).join(' ');
  } else {
    givenName = capitalize(local);
    familyName = 'Test';
  }
  const groups = ['Engineering'];
  if (local.startsWith('admin')) {
    groups.push('Admins');
  }
  return {
    email,
    email_verified: true,
    given_name: givenName,
    family_name: familyName,
    name: `${givenName} ${familyName}`,
    groups,
  };
}

function registerAccount(rawEmail) {
  const email = rawEmail.trim().toLowerCase();
  const accountId = accountIdFor(email);
  accounts.set(accountId, email);
  return accountId;
}

async function findAccount(ctx, sub) {
  const email = accounts.get(sub);
  if (!email) {
    return undefined;
  }
  return {
    accountId: sub,
    async claims() {
      return { sub, ...profileFor(email) };
    },
  };
}

// ---------------------------------------------------------------------------
// Automatic consent: every grant covers whatever OIDC scopes/claims were requested.
// ---------------------------------------------------------------------------
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const accountId = oidc.account.accountId;
  const clientId = oidc.client.clientId;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
  let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
    grant = new oidc.provider.Grant({ accountId, clientId });
  }
  const scopes = [...oidc.requestParamOIDCScopes];
  if (scopes.length) {
    grant.addOIDCScope(scopes.join(' '));
  }
  const claims = [...oidc.requestParamClaims];
  if (claims.length) {
    grant.addOIDCClaims(claims);
  }
  await grant.save();
  return grant;
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  cookies: {
    keys: cookieKeys,
    // Distinct names so they never collide with a relying party's cookies on 127.0.0.1
    // (cookies are not port-scoped).
    names: {
      session: 'op_session',
      interaction: 'op_interaction',
      resume: 'op_interaction_resume',
    },
    // Plain http on loopback: never mark cookies Secure.
    long: { httpOnly: true, sameSite: 'lax', secure: false },
    short: { httpOnly: true, sameSite: 'lax', secure: false },
  },
  scopes: ['openid', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'groups'],
  },
  // Put scope-derived claims into the ID token (not only the userinfo response).
  conformIdTokenClaims: false,
  responseTypes: ['code'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: false },
    introspection: { enabled: false },
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  findAccount,
  loadExistingGrant,
  ttl: {
    AccessToken: 60 * 60,
    AuthorizationCode: 60,
    IdToken: 60 * 60,
    Interaction: 60 * 60,
    Session: 24 * 60 * 60,
    Grant: 24 * 60 * 60,
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>OP error</title></head><body>`
      + `<h1>oidc-provider error</h1>`
      + Object.entries(out)
        .map(([key, value]) => `<p id="${escapeHtml(key)}">${escapeHtml(key)}: ${escapeHtml(value)}</p>`)
        .join('')
      + `</body></html>`;
  },
});

function logEvent(name) {
  provider.on(name, (ctx, err) => {
    const route = ctx?.oidc?.route ?? ctx?.path ?? '?';
    const detail = err?.error_description ? ` (${err.error_description})` : '';
    console.error(`oidc-provider ${name} [${route}]: ${err?.message ?? err}${detail}`);
    if (name === 'server_error' && err?.stack) {
      console.error(err.stack);
    }
  });
}
for (const name of [
  'server_error',
  'authorization.error',
  'grant.error',
  'userinfo.error',
  'end_session.error',
  'jwks.error',
  'discovery.error',
]) {
  logEvent(name);
}

// ---------------------------------------------------------------------------
// Interaction routes, served with node:http only.
// ---------------------------------------------------------------------------
function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function send(res, status, body, contentType = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

function loginPage(uid, details, message) {
  const clientId = escapeHtml(details.params.client_id ?? '');
  const hint = escapeHtml(details.params.login_hint ?? '');
  const action = `/interaction/${escapeHtml(uid)}/login`;
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in to ${clientId}</h1>
${message ? `<p id="message">${escapeHtml(message)}</p>` : ''}
<form method="post" action="${action}">
<input name="email" type="email" id="email" value="${hint}" autofocus required>
<button type="submit" id="submit">Sign in</button>
</form>
<p><a id="abort" href="/interaction/${escapeHtml(uid)}/abort">Cancel</a></p>
</body>
</html>
`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) {
      throw new Error('request body too large');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function consentResult(details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details ?? {};
  if (missing.missingOIDCScope) {
    grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  }
  if (missing.missingOIDCClaims) {
    grant.addOIDCClaims(missing.missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return { consent: { grantId: await grant.save() } };
}

async function handleInteraction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    console.error(`oidc-provider interaction ${uid}: ${err.message}`);
    send(res, 400, `<!DOCTYPE html><p id="error">${escapeHtml(err.message)}</p>`);
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, '<!DOCTYPE html><p id="error">interaction mismatch</p>');
    return;
  }

  if (action === 'abort' && req.method === 'GET') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
    return;
  }

  if (action === undefined && req.method === 'GET') {
    if (details.prompt.name === 'consent') {
      const result = await consentResult(details);
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
      return;
    }
    send(res, 200, loginPage(uid, details));
    return;
  }

  if (action === 'login' && req.method === 'POST') {
    const form = await readForm(req);
    const email = (form.get('email') ?? '').trim();
    if (!email || !email.includes('@')) {
      send(res, 400, loginPage(uid, details, 'Enter a valid email address.'));
      return;
    }
    if (details.prompt.name === 'consent') {
      // Already logged in; just grant.
      const result = await consentResult(details);
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
      return;
    }
    const accountId = registerAccount(email);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId, amr: ['pwd'] } },
      { mergeWithLastSubmission: false },
    );
    return;
  }

  send(res, 405, '<!DOCTYPE html><p id="error">method not allowed</p>');
}

const providerCallback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?\/?$/;

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  const match = INTERACTION.exec(path);
  if (!match) {
    providerCallback(req, res);
    return;
  }
  handleInteraction(req, res, match[1], match[2]).catch((err) => {
    console.error(`oidc-provider interaction error: ${err.stack ?? err}`);
    if (!res.headersSent) {
      send(res, 500, `<!DOCTYPE html><p id="error">${escapeHtml(err.message)}</p>`);
    } else {
      res.end();
    }
  });
});

server.on('error', (err) => {
  console.error(`oidc-provider peer: server error: ${err.stack ?? err}`);
  process.exit(1);
});

// oidc-provider validates static clients lazily; validate them now so a bad CLIENTS value
// fails at startup instead of at the first request.
for (const client of clients) {
  try {
    if (!(await provider.Client.find(client.client_id))) {
      throw new Error('missing or duplicate client_id');
    }
  } catch (err) {
    fail(`invalid client ${JSON.stringify(client.client_id)}: ${err.error_description ?? err.message}`);
  }
}

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${issuer}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
