// The browser tests of the SPA run against two OpenID Providers: the
// independent oidc-provider (harness.mjs) and the embedded zitadel OP,
// served standalone by `bff dev --op-only` next to a real `bff serve`.
// Each OP is a driver with the same shape, so one test body covers both.
//
// The embedded OP listens on 127.0.0.2, another site than the BFF on
// 127.0.0.1: its redirect back to the BFF is a cross-site navigation, as
// with a real IdP, so SameSite=Strict is exercised for real.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  Proc, freePorts, sleep, CHROMIUM, CHROMIUM_ARGS, bffBinary, stopStack, dumpLogs, SHAPE, shapeConfig,
  withStack as withOidcProviderStack, withStackFrom, bffServeEnv, browserLogin as oidcProviderLogin, issuedTokens,
} from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = path.resolve(here, '..', 'docs', 'screenshots');

const EMBEDDED_CLIENT_ID = 'bff-e2e';
const EMBEDDED_CLIENT_SECRET = 'bff-e2e-embedded-secret-0123456789';

/** A browser context with console capture and the app's viewport. */
export async function newBrowserContext(stack, label, options = {}) {
  const context = await stack.browser.newContext({
    viewport: { width: 1180, height: 820 }, ...stack.contextOptions, ...options,
  });
  const page = await context.newPage();
  watchPage(stack, page, label);
  return { context, page };
}

export function watchPage(stack, page, label, { log = true } = {}) {
  stack.consoleLog ??= [];
  stack.cspViolations ??= [];
  page.on('console', (m) => {
    if (log) stack.consoleLog.push(`[${label}] [${m.type()}] ${m.text()}`);
    if (/Content Security Policy/i.test(m.text())) stack.cspViolations.push(m.text());
  });
  if (log) page.on('pageerror', (e) => stack.consoleLog.push(`[${label}] [pageerror] ${e.message}`));
}

async function startEmbeddedStack(opts = {}) {
  const [opPort, bffPort, adminPort, controlPort, frontPort] = await freePorts(5);
  // the deployment shape of this run (harness.mjs): http, own TLS, or behind a TLS proxy
  const sh = shapeConfig(SHAPE, bffPort, frontPort);
  const { publicURL } = sh;
  const adminToken = randomBytes(18).toString('hex');
  const stack = {
    kind: 'zitadel', publicURL, procs: [], consoleLog: [],
    shape: SHAPE, sessionCookie: sh.sessionCookie, contextOptions: sh.contextOptions,
    adminURL: `http://127.0.0.1:${adminPort}`, adminToken, controlURL: `http://127.0.0.1:${controlPort}`,
  };
  try {
    // First, while its port is still free: ports picked by freePorts() can be
    // taken by any outgoing connection once the OP and the BFF are busy.
    stack.proxy = await sh.startProxy();
    const bin = bffBinary();
    const op = new Proc('op', bin, [
      'dev', '--op-only', '--op-listen', `127.0.0.2:${opPort}`, '--api-listen', '127.0.0.1:0',
      '--control-listen', `127.0.0.1:${controlPort}`, '--public-url', publicURL,
      '--client-id', EMBEDDED_CLIENT_ID, '--client-secret', EMBEDDED_CLIENT_SECRET,
      '--access-token-lifetime', `${opts.accessTTL ?? 60}s`,
    ], { PATH: process.env.PATH, HOME: process.env.HOME ?? os.tmpdir(), ...sh.trustEnv });
    stack.procs.push(op);
    await op.waitFor(/^ready issuer=/m);
    const m = /^ready issuer=(\S+) api=(\S+) control=(\S+)/m.exec(op.log());
    [, stack.opURL, stack.apiURL] = m;

    const keys = execFileSync(bin, ['keygen']).toString().trim();
    const env = bffServeEnv({
      issuer: stack.opURL, clientID: EMBEDDED_CLIENT_ID, clientSecret: EMBEDDED_CLIENT_SECRET, publicURL,
      bffPort, adminPort, adminToken, keys, routes: `/api/=${stack.apiURL}`,
      shapeEnv: sh.bffEnv, extra: opts.bffEnv,
    });
    // startBFF starts (or, after a stop, restarts) `bff serve` with the same
    // settings, keys and store.
    stack.startBFF = async () => {
      const bff = new Proc('bff', bin, ['serve'], env);
      stack.procs.push(bff);
      stack.bff = bff;
      const end = Date.now() + 15000;
      for (;;) {
        try {
          if ((await fetch(`${stack.adminURL}/readyz`)).ok) break;
        } catch { /* not listening yet */ }
        if (bff.child.exitCode !== null || Date.now() > end) throw new Error(`bff did not become ready\n${bff.log()}`);
        await sleep(100);
      }
    };
    await stack.startBFF();
    stack.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const { context, page } = await newBrowserContext(stack, 'main');
    stack.context = context;
    stack.page = page;
  } catch (e) {
    await stopStack(stack, true);
    throw e;
  }
  return stack;
}

function withEmbeddedStack(t, opts, body) {
  return withStackFrom(startEmbeddedStack, opts, body);
}

/** Sign in through the embedded OP's form, starting from the app's button. */
async function embeddedLogin(stack, user = 'alice', page = stack.page) {
  await page.goto(`${stack.publicURL}/`);
  await page.locator('#status').filter({ hasText: /Not signed in/ }).waitFor();
  await page.click('#login');
  await page.waitForURL((u) => u.href.startsWith(`${stack.opURL}/login`));
  await page.fill('#username', user);
  await page.fill('#password', `${user}-pass`);
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.href.startsWith(`${stack.publicURL}/`) && !u.pathname.startsWith('/bff/'));
  await page.locator('#status').filter({ hasText: `Signed in as ${user}` }).waitFor({ timeout: 10000 });
}

/**
 * The two OPs. users: two distinct users; sub(user): the subject the OP
 * gives that user; tokens(stack): every token the OP issued; signOutAtIdP:
 * make the IdP send a real back-channel logout for the user's session.
 */
export const OPS = [
  {
    name: 'embedded zitadel OP',
    screenshots: true,
    crossSiteIdP: true,
    withStack: withEmbeddedStack,
    login: embeddedLogin,
    sub: (user) => `user-${user}`,
    async tokens(stack) {
      return (await (await fetch(`${stack.controlURL}/tokens`)).json()).map((x) => x.value);
    },
    async signOutAtIdP(stack, user) {
      const at = Date.now();
      const r = await fetch(`${stack.controlURL}/backchannel-logout?sub=user-${user}`, { method: 'POST' });
      const text = await r.text();
      if (!r.ok || !/answered 200/.test(text)) throw new Error(`back-channel logout: ${r.status} ${text}`);
      return at;
    },
    async finishLogout() { /* the OP redirects back at once with id_token_hint */ },
  },
  {
    name: 'oidc-provider',
    screenshots: false,
    crossSiteIdP: true, // on 127.0.0.2: another site than the BFF
    withStack: (t, opts, body) => withOidcProviderStack(t, { ...opts, opHost: '127.0.0.2' }, async (s) => {
      s.kind = 'oidc-provider';
      watchPage(s, s.page, 'main', { log: false }); // harness.mjs logs the console
      await s.page.setViewportSize({ width: 1180, height: 820 });
      await body(s);
    }),
    login: oidcProviderLogin,
    sub: (user) => user,
    async tokens(stack) {
      return (await issuedTokens(stack)).map((x) => x.value);
    },
    async signOutAtIdP(stack, user, context = stack.context) {
      // End the OP session at the OP itself, in another tab of the same
      // browser; the OP then POSTs a real logout token to the BFF.
      const tab = await context.newPage();
      await tab.goto(`${stack.opURL}/session/end`);
      const at = Date.now();
      await tab.click('button[name="logout"][value="yes"]');
      await tab.waitForURL((u) => u.pathname.startsWith('/session/end/success'));
      await tab.close();
      return at;
    },
    async finishLogout(page) {
      // oidc-provider asks for confirmation on its end-session page.
      await page.waitForURL((u) => u.pathname.startsWith('/session/end'));
      await page.click('button[name="logout"][value="yes"]').catch(() => {});
    },
  },
];

/** A phone's browser, so the device list has something to tell apart. */
export const IPHONE_SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

/**
 * Writes a screenshot of the app (a page or one element) to docs/screenshots
 * when E2E_SCREENSHOTS=1: they are committed and shown in the README, and a
 * plain test run must not leave changed files behind.
 */
export async function screenshot(target, name) {
  if (!process.env.E2E_SCREENSHOTS) return;
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await target.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** Marks the page so a later check can tell it was never reloaded. */
export async function markPage(page) {
  await page.evaluate(() => { window.__noReload = Math.random().toString(36).slice(2); });
  return page.evaluate(() => window.__noReload);
}

/** Every place a script could keep a token: storage, IndexedDB, cookies. */
export async function browserStorage(page) {
  return page.evaluate(async () => {
    const dump = (s) => Object.fromEntries(Array.from({ length: s.length }, (_, i) => [s.key(i), s.getItem(s.key(i))]));
    const dbs = indexedDB.databases ? await indexedDB.databases() : [];
    return {
      localStorage: dump(localStorage),
      sessionStorage: dump(sessionStorage),
      indexedDB: dbs.map((d) => d.name),
      cookie: document.cookie,
    };
  });
}

export async function adminKill(stack, sub) {
  const h = { authorization: `Bearer ${stack.adminToken}` };
  const list = await (await fetch(`${stack.adminURL}/admin/sessions?sub=${encodeURIComponent(sub)}`, { headers: h })).json();
  if (list.sessions.length !== 1) throw new Error(`admin: ${list.sessions.length} sessions of ${sub}`);
  const r = await fetch(`${stack.adminURL}/admin/sessions/${list.sessions[0].handle}`, { method: 'DELETE', headers: h });
  if (!r.ok) throw new Error(`admin kill: ${r.status}`);
}
