// Shared fixture of the end-to-end tests: an oidc-provider OP (op.mjs, its
// own process), the BFF binary (its own process, memory store), a small
// upstream API in this process, and Debian's chromium through playwright-core.
// Everything listens on 127.0.0.1 only; every process is killed at the end.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

export const CLIENT_ID = 'bff';
export const CLIENT_SECRET = 'bff-e2e-secret-0123456789abcdef';
const API_SECRET = 'api-e2e-secret-0123456789abcdef';

// Step-up (see op.mjs): the acr the upstream's /api/confirmed wants, how
// recent the sign-in must be, and a marker of its own error text, which
// must never reach the browser.
export const ACR_PASSWORD = 'urn:e2e:acr:password';
export const ACR_CONFIRMED = 'urn:e2e:acr:confirmed';
export const CONFIRMED_MAX_AGE = 300;
export const UPSTREAM_ONLY = 'upstream-only-step-up-detail';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
  // nothing but 127.0.0.1 (oidc-provider's pages @import a web font)
  // (127.0.0.2: an OP on another site than the BFF, see opts.opHost)
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2',
];

/** n distinct free ports (held open together, so they differ). */
export async function freePorts(n) {
  const servers = [];
  for (let i = 0; i < n; i++) {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    servers.push(srv);
  }
  const ports = servers.map((srv) => srv.address().port);
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export { sleep };

/**
 * How the BFF is deployed in this run (E2E_SHAPE; run.sh runs every file in
 * each shape):
 *   http   the BFF's http listener, public URL http://127.0.0.1:PORT
 *   tls    the BFF's own TLS listener (BFF_TLS_CERT/KEY), public URL https
 *   proxy  a TLS-terminating reverse proxy (started here) in front of the
 *          BFF's http listener, BFF_TRUSTED_PROXIES=127.0.0.1, public URL https
 * Over https the cookies carry the __Host- prefix, which browsers enforce
 * only there: the https shapes are the production ones.
 */
export const SHAPES = ['http', 'tls', 'proxy'];
export const SHAPE = process.env.E2E_SHAPE || 'http';
if (!SHAPES.includes(SHAPE)) throw new Error(`E2E_SHAPE=${SHAPE}: want one of ${SHAPES.join(', ')}`);

let tlsFiles;
/**
 * A self-signed certificate for 127.0.0.1, made once per process with the Go
 * toolchain's own generator (nothing to install). Chromium accepts it through
 * the context's ignoreHTTPSErrors; the OP process and this one's https
 * requests trust it explicitly.
 */
export function testCertificate() {
  if (!tlsFiles) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bff-e2e-tls-'));
    const goroot = execFileSync('go', ['env', 'GOROOT']).toString().trim();
    execFileSync('go', ['run', path.join(goroot, 'src/crypto/tls/generate_cert.go'),
      '--host', '127.0.0.1', '--ecdsa-curve', 'P256', '--ca'], { cwd: dir, stdio: 'ignore' });
    tlsFiles = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    tlsFiles.certPEM = fs.readFileSync(tlsFiles.cert);
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return tlsFiles;
}

/**
 * What a shape means for one stack whose BFF listens on bffPort (frontPort:
 * the proxy's port in the proxy shape): the public URL, the BFF's extra
 * settings, the browser context options (Chromium accepts the test
 * certificate), the session cookie's name, the environment that makes a
 * Node or Go process trust the certificate, and startProxy().
 */
export function shapeConfig(shape, bffPort, frontPort) {
  if (shape === 'http') {
    return {
      shape, publicURL: `http://127.0.0.1:${bffPort}`, bffEnv: {}, contextOptions: {},
      sessionCookie: 'bff-session', trustEnv: {}, startProxy: async () => null,
    };
  }
  const tls = testCertificate();
  return {
    shape,
    tls,
    publicURL: `https://127.0.0.1:${shape === 'proxy' ? frontPort : bffPort}`,
    bffEnv: shape === 'tls'
      ? { BFF_TLS_CERT: tls.cert, BFF_TLS_KEY: tls.key }
      : { BFF_TRUSTED_PROXIES: '127.0.0.1/32' },
    contextOptions: { ignoreHTTPSErrors: true },
    // the __Host- prefix whenever the public URL is https
    sessionCookie: '__Host-bff-session',
    // an OP's back-channel logout POSTs go to the https public URL
    trustEnv: { NODE_EXTRA_CA_CERTS: tls.cert, SSL_CERT_FILE: tls.cert },
    startProxy: async () => (shape === 'proxy' ? startTLSProxy(frontPort, bffPort, tls) : null),
  };
}

/**
 * A TLS-terminating reverse proxy, as in front of most deployments: https
 * on port, plain http to target, X-Forwarded-For/-Proto/-Host added;
 * streams (SSE) and WebSocket upgrades pass through.
 */
async function startTLSProxy(port, targetPort, tls) {
  const forwarded = (req) => ({
    ...req.headers,
    'x-forwarded-for': [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', '),
    'x-forwarded-proto': 'https',
    'x-forwarded-host': req.headers.host,
  });
  const stats = { requests: 0 };
  const server = https.createServer({ cert: tls.certPEM, key: fs.readFileSync(tls.key) }, (req, res) => {
    stats.requests += 1;
    const up = http.request({
      host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: forwarded(req),
    }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.rawHeaders);
      upRes.pipe(res);
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(targetPort, '127.0.0.1', () => {
      const headers = Object.entries(forwarded(req)).map(([k, v]) => `${k}: ${v}`).join('\r\n');
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers}\r\n\r\n`);
      up.write(head);
      socket.pipe(up).pipe(socket);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, stats, stop: () => { server.closeAllConnections(); server.close(); } };
}

/**
 * A request from this process (not the browser) to the public URL, one
 * connection each, trusting the test certificate over https.
 */
export function nodeRequest(stack, pathAndQuery, headers = {}) {
  const u = new URL(pathAndQuery, stack.publicURL);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, {
      headers, agent: false, ...(u.protocol === 'https:' ? { ca: testCertificate().certPEM } : {}),
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body = null;
        try { body = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

let builtBinary;
/** The BFF binary: $BFF_BIN (run.sh builds it once), else built here. */
export function bffBinary() {
  if (process.env.BFF_BIN) return process.env.BFF_BIN;
  if (!builtBinary) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bff-e2e-bin-'));
    builtBinary = path.join(dir, 'bff');
    execFileSync('go', ['build', '-o', builtBinary, './cmd/bff'], { cwd: repo, stdio: 'inherit' });
  }
  return builtBinary;
}

// Children die with this process, whatever way it ends.
const live = new Set();
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { for (const c of live) c.kill('SIGKILL'); process.exit(130); });
}

/** A child process whose output is kept for diagnostics. */
export class Proc {
  constructor(name, cmd, args, env) {
    this.name = name;
    this.out = [];
    this.child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, sig) => {
      live.delete(this.child);
      this.out.push(`[${name} exited code=${code} signal=${sig}]\n`);
      resolve();
    }));
    const keep = (d) => this.out.push(d.toString());
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
  }

  log() { return this.out.join(''); }

  async waitFor(re, ms = 15000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (re.test(this.log())) return;
      if (this.child.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`${this.name}: did not print ${re} within ${ms}ms\n${this.log()}`);
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

/**
 * The upstream API behind /api/: verifies the bearer token it gets by
 * introspection at the OP and echoes what it received (header names, and
 * whether a bearer token came, never the token itself).
 */
/** Token introspection at the OP as the `api` resource server. */
export async function introspect(opURL, token) {
  const r = await fetch(`${opURL}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`api:${API_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  if (!r.ok) throw new Error(`introspection: ${r.status}`);
  return r.json();
}

async function startUpstream(opURL) {
  const active = new Map(); // token -> introspection promise
  const seen = { tokens: new Set(), requests: 0, unauthenticated: 0, inactive: 0, slow: [], stepUpChallenges: 0 };
  const server = http.createServer(async (req, res) => {
    seen.requests += 1;
    const t0 = performance.now();
    let introspectMs = 0;
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(auth);
    const headers = Object.fromEntries(Object.entries(req.headers)
      .map(([k, v]) => [k, ['authorization', 'cookie'].includes(k) ? '(redacted)' : v]));
    let introspection = null;
    if (m) {
      seen.tokens.add(m[1]);
      // one introspection per distinct token (a storm carries one token 30
      // times); only active answers are kept
      let p = active.get(m[1]);
      if (!p) {
        p = introspect(opURL, m[1]).catch((e) => ({ active: false, error: String(e) }));
        active.set(m[1], p);
        p.then((x) => { if (!x.active) active.delete(m[1]); }, () => active.delete(m[1]));
      }
      introspection = await p;
      introspectMs = performance.now() - t0;
      if (!introspection.active) seen.inactive += 1;
    } else {
      seen.unauthenticated += 1;
    }
    const isActive = introspection?.active === true;
    if (req.url.startsWith('/api/confirmed') && isActive) {
      // A sensitive action: it needs a confirmed sign-in of the last five
      // minutes, and says so with an RFC 9470 challenge otherwise.
      const fresh = Date.now() / 1000 - (introspection.auth_time ?? 0) <= CONFIRMED_MAX_AGE;
      if (introspection.acr !== ACR_CONFIRMED || !fresh) {
        seen.stepUpChallenges += 1;
        res.writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': `Bearer error="insufficient_user_authentication", error_description="${UPSTREAM_ONLY}", acr_values="${ACR_CONFIRMED}", max_age=${CONFIRMED_MAX_AGE}`,
        });
        res.end(JSON.stringify({ error: 'insufficient_user_authentication', detail: UPSTREAM_ONLY, acr: introspection.acr }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ confirmed: true, sub: introspection.sub, acr: introspection.acr }));
      return;
    }
    const totalMs = performance.now() - t0;
    if (totalMs > 300) seen.slow.push({ at: new Date().toISOString(), path: req.url, totalMs: Math.round(totalMs), introspectMs: Math.round(introspectMs) });
    res.writeHead(m && isActive ? 200 : 401, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({
      path: req.url,
      method: req.method,
      bearer: Boolean(m),
      active: isActive,
      sub: introspection?.sub,
      client_id: introspection?.client_id,
      scope: introspection?.scope,
      headers,
    }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, seen, url: `http://127.0.0.1:${server.address().port}` };
}

/**
 * Starts OP, upstream API, BFF and chromium. Returns helpers and stop().
 * opts.accessTTL: access token lifetime at the OP in seconds.
 * opts.opArgs: more arguments of op.mjs; opts.routes: more BFF_ROUTES entries.
 */
export async function startStack(opts = {}) {
  // A port picked here can be taken by someone else before the OP or BFF
  // binds it: start over (new ports) when that happens.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/address already in use|EADDRINUSE/.test(String(e?.message))) throw e;
      console.error(`e2e: port clash, starting over (${attempt})`);
    }
  }
}

async function startStackOnce(opts) {
  const shape = opts.shape ?? SHAPE;
  const [opPort, bffPort, adminPort, frontPort] = await freePorts(4);
  const sh = shapeConfig(shape, bffPort, frontPort);
  // opts.opHost: another loopback address puts the OP on another site.
  const opHost = opts.opHost ?? '127.0.0.1';
  const opURL = `http://${opHost}:${opPort}`;
  const { publicURL } = sh;
  const adminToken = randomBytes(18).toString('hex');
  const stack = { opURL, publicURL, shape, procs: [], started: Date.now() };
  stack.sessionCookie = sh.sessionCookie;
  stack.contextOptions = sh.contextOptions;
  stack.adminURL = `http://127.0.0.1:${adminPort}`;
  stack.adminToken = adminToken;
  stack.adminURL = `http://127.0.0.1:${adminPort}`;
  stack.adminToken = adminToken;

  try {
    // First, while its port is still free: ports picked by freePorts() can be
    // taken by any outgoing connection once the OP and the BFF are busy.
    stack.proxy = await sh.startProxy();
    const op = new Proc('op', process.execPath, [
      path.join(here, 'op.mjs'), '--port', String(opPort), '--public', publicURL,
      '--client-id', CLIENT_ID, '--client-secret', CLIENT_SECRET, '--api-secret', API_SECRET,
      '--access-ttl', String(opts.accessTTL ?? 5), '--host', opHost,
      ...(opts.opArgs ?? []),
      ...((opts.opKeepAliveMs ?? process.env.E2E_OP_KEEPALIVE_MS)
        ? ['--keep-alive-ms', String(opts.opKeepAliveMs ?? process.env.E2E_OP_KEEPALIVE_MS)] : []),
    ], {
      ...process.env,
      DEBUG: process.env.OP_DEBUG ?? '',
      ...sh.trustEnv,
    });
    stack.procs.push(op);
    stack.op = op;
    await op.waitFor(/^ready /m);

    stack.upstream = await startUpstream(opURL);

    const bin = bffBinary();
    const keys = execFileSync(bin, ['keygen']).toString().trim();
    const env = bffServeEnv({
      issuer: opURL, clientID: CLIENT_ID, clientSecret: CLIENT_SECRET, publicURL, bffPort, adminPort,
      adminToken, keys, routes: [`/api/=${stack.upstream.url}`, ...(opts.routes ?? [])].join(','),
      shapeEnv: sh.bffEnv, extra: opts.bffEnv,
    });
    const bff = new Proc('bff', bin, ['serve'], env);
    stack.procs.push(bff);
    stack.bff = bff;
    // ready = store and IdP discovery reachable
    const end = Date.now() + 15000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
        if (r.ok) break;
      } catch { /* not listening yet */ }
      if (bff.child.exitCode !== null || Date.now() > end) {
        throw new Error(`bff did not become ready\n${bff.log()}`);
      }
      await sleep(100);
    }


    stack.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    stack.context = await stack.browser.newContext(stack.contextOptions);
    stack.page = await stack.context.newPage();
    stack.consoleLog = [];
    stack.page.on('console', (m) => stack.consoleLog.push(`[${m.type()}] ${m.text()}`));
    stack.page.on('pageerror', (e) => stack.consoleLog.push(`[pageerror] ${e.message}`));
  } catch (e) {
    await stopStack(stack, !/address already in use|EADDRINUSE/.test(String(e?.message)));
    throw e;
  }
  return stack;
}

export async function opStats(stack) {
  return (await fetch(`${stack.opURL}/test/stats`)).json();
}

export async function issuedTokens(stack) {
  return (await fetch(`${stack.opURL}/test/tokens`)).json();
}

/** A second, independent browser (own cookies) with console capture. */
export async function newPage(stack, label) {
  const context = await stack.browser.newContext(stack.contextOptions);
  const page = await context.newPage();
  page.on('console', (m) => stack.consoleLog.push(`[${label}] [${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => stack.consoleLog.push(`[${label}] [pageerror] ${e.message}`));
  return { context, page };
}

/**
 * Records every text #status takes (the SPA overwrites "Session ended (…)"
 * with "Not signed in (…)" right after, so the transient text is caught here).
 */
export async function recordStatus(page) {
  await page.evaluate(() => {
    const el = document.getElementById('status');
    window.__statusHistory = [el.textContent];
    new MutationObserver(() => window.__statusHistory.push(el.textContent))
      .observe(el, { childList: true, characterData: true, subtree: true });
  });
  return () => page.evaluate(() => window.__statusHistory);
}

/** Prints the logs of every process (and the page's console). */
export function dumpLogs(stack, why = '') {
  const parts = [`\n===== e2e diagnostics ${why} =====`];
  for (const p of stack.procs ?? []) {
    parts.push(`----- ${p.name} log -----\n${p.log()}`);
  }
  if (stack.consoleLog?.length) parts.push(`----- browser console -----\n${stack.consoleLog.join('\n')}`);
  if (stack.upstream) {
    const { requests, unauthenticated, inactive, tokens } = stack.upstream.seen;
    parts.push(`----- upstream -----\nrequests=${requests} unauthenticated=${unauthenticated} inactive=${inactive} distinct tokens=${tokens.size}`);
    if (stack.upstream.seen.slow.length) parts.push(`slow upstream answers (>300ms): ${JSON.stringify(stack.upstream.seen.slow)}`);
  }
  parts.push('===== end of diagnostics =====');
  console.error(parts.join('\n'));
}

export async function stopStack(stack, failed = false) {
  if (failed) dumpLogs(stack, '(failure)');
  try { await stack.browser?.close(); } catch { /* already gone */ }
  try { stack.upstream?.server.closeAllConnections(); stack.upstream?.server.close(); } catch { /* */ }
  try { stack.proxy?.stop(); } catch { /* */ }
  await Promise.all((stack.procs ?? []).map((p) => p.stop()));
}

/**
 * The environment of a `bff serve` under test: memory store, debug log and
 * access log, then the deployment shape's settings, then the test's own.
 */
export function bffServeEnv({ issuer, clientID, clientSecret, publicURL, bffPort, adminPort, adminToken, keys, routes, shapeEnv, extra }) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? os.tmpdir(),
    BFF_ISSUER: issuer,
    BFF_CLIENT_ID: clientID,
    BFF_CLIENT_SECRET: clientSecret,
    BFF_PUBLIC_URL: publicURL,
    BFF_LISTEN: `127.0.0.1:${bffPort}`,
    BFF_STORE: 'memory:',
    BFF_KEYS: keys,
    BFF_ROUTES: routes,
    BFF_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    BFF_ADMIN_TOKEN: adminToken,
    BFF_LOG_LEVEL: 'debug',
    BFF_ACCESS_LOG: 'true',
    ...shapeEnv,
    ...(extra ?? {}),
  };
}

/**
 * Runs a test body against a fresh stack; on failure dumps the logs.
 * Use: test('name', (t) => withStack(t, opts, async (s) => {...}))
 */
export async function withStack(t, opts, body) {
  return withStackFrom(startStack, opts, body);
}

/** withStack for a stack started by another starter (e.g. the embedded OP's). */
export async function withStackFrom(start, opts, body) {
  const stack = await start(opts);
  let failed = true;
  try {
    await body(stack);
    failed = false;
  } finally {
    if (process.env.E2E_VERBOSE) dumpLogs(stack, '(verbose)');
    await stopStack(stack, failed);
  }
}

/** In-page fetch through the BFF (same origin, with the CSRF header unless told not to). */
export async function pageFetch(page, url, { csrf = true } = {}) {
  return page.evaluate(async ([u, c]) => {
    const r = await fetch(u, { headers: c ? { 'X-CSRF': '1' } : {}, credentials: 'same-origin' });
    const text = await r.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status, body, wwwAuthenticate: r.headers.get('www-authenticate') };
  }, [url, csrf]);
}

/**
 * Full browser login through the SPA: open PUBLIC/, click "Sign in", fill
 * oidc-provider's dev login form, accept consent if shown, and wait for the
 * SPA to say "Signed in as …".
 */
export async function browserLogin(stack, login = 'alice', page = stack.page) {
  const { publicURL, opURL } = stack;
  await page.goto(`${publicURL}/`);
  await page.locator('#status').filter({ hasText: /Not signed in/ }).waitFor();
  await page.click('#login');
  await page.waitForURL((u) => u.href.startsWith(`${opURL}/interaction/`));
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any-password');
  await page.click('button[type="submit"]');
  // back at the SPA; a consent screen, if the OP shows one despite
  // loadExistingGrant, is accepted on the way
  const end = Date.now() + 15000;
  while (Date.now() < end) {
    const u = new URL(page.url());
    if (u.origin === publicURL && !u.pathname.startsWith('/bff/')) break;
    if (u.origin === opURL && u.pathname.startsWith('/interaction/')
      && await page.locator('input[name="prompt"][value="consent"]').count().catch(() => 0)) {
      stack.consentShown = true;
      await page.click('button[type="submit"]').catch(() => {});
    }
    await sleep(100);
  }
  await page.waitForURL((u) => u.href.startsWith(`${publicURL}/`));
  await page.locator('#status').filter({ hasText: /Signed in as/ }).waitFor({ timeout: 10000 });
}
