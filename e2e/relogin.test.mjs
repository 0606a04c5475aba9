// f. One browser, one session: signing in again ends the browser's previous
// session, although under SameSite=Strict the IdP's redirect back to the
// callback (a cross-site navigation: the OP runs on 127.0.0.2) carries no
// session cookie. /bff/login, a same-site navigation, does carry it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withStack, browserLogin, pageFetch, sleep } from './harness.mjs';

async function adminSessions(s, sub) {
  const r = await fetch(`${s.adminURL}/admin/sessions?sub=${encodeURIComponent(sub)}`, {
    headers: { authorization: `Bearer ${s.adminToken}` },
  });
  assert.equal(r.status, 200);
  return (await r.json()).sessions;
}

test('a second sign-in in the same browser ends the first session', (t) => withStack(t, { accessTTL: 60, opHost: '127.0.0.2' }, async (s) => {
  const { page, publicURL, opURL } = s;
  await browserLogin(s, 'alice');
  const first = await pageFetch(page, '/bff/user');
  assert.equal(first.status, 200);
  assert.equal((await adminSessions(s, 'alice')).length, 1);

  // which cookies reach the BFF on the way
  const sent = {};
  page.on('request', async (r) => {
    const u = new URL(r.url());
    if (u.origin === publicURL && ['/bff/login', '/bff/callback'].includes(u.pathname)) {
      const cookie = (await r.allHeaders().catch(() => ({}))).cookie ?? '';
      sent[u.pathname] = cookie.split(/;\s*/).map((c) => c.split('=')[0]);
    }
  });

  // The OP's own session has ended (it expired, or the user signed out at
  // the OP): the next sign-in goes through its login form, and the form's
  // submission makes the redirect back a cross-site navigation. (A chain
  // that only bounces through the OP counts as same-site in Chromium.)
  await s.context.clearCookies({ domain: new URL(opURL).hostname });

  // Sign in again from the SPA's page (a same-site navigation).
  await page.evaluate(() => { window.location.href = '/bff/login?returnTo=/'; });
  const end = Date.now() + 20000;
  while (Date.now() < end) {
    const u = new URL(page.url());
    if (u.origin === publicURL && !u.pathname.startsWith('/bff/') && sent['/bff/callback']) break;
    if (u.origin === opURL && await page.locator('input[name="login"]').count().catch(() => 0)) {
      await page.fill('input[name="login"]', 'alice');
      await page.fill('input[name="password"]', 'any-password');
      await page.click('button[type="submit"]');
    }
    await sleep(100);
  }
  await page.locator('#status').filter({ hasText: /Signed in as alice/ }).waitFor({ timeout: 10000 });

  assert.ok(sent['/bff/login']?.includes(s.sessionCookie), `/bff/login carried the session cookie (${sent['/bff/login']})`);
  assert.ok(sent['/bff/callback'] && !sent['/bff/callback'].includes(s.sessionCookie),
    `the callback came cross-site, without the Strict session cookie (${sent['/bff/callback']})`);

  const second = await pageFetch(page, '/bff/user');
  assert.equal(second.status, 200);
  assert.notEqual(second.body.sid, first.body.sid, 'a new session');
  const sessions = await adminSessions(s, 'alice');
  assert.deepEqual(sessions.map((x) => x.handle), [second.body.sid], 'only the new session is alive');
}));
