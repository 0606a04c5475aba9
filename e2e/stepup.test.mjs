// Step-up (RFC 9470) and prompt in Chromium against oidc-provider: an API's
// insufficient_user_authentication challenge reaches the SPA as
// step_up_required, which the app shows as a "confirm it's you" button; the
// confirmed sign-in keeps the session and lets the call through. A sign-in
// whose acr is not one asked for is refused at the callback. prompt passes
// through, and prompt=none without an OP session comes back with
// login=required. E2E_SCREENSHOTS=1 writes docs/screenshots/step-up.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  withStack, browserLogin, pageFetch, opStats,
  ACR_PASSWORD, ACR_CONFIRMED, CONFIRMED_MAX_AGE, UPSTREAM_ONLY,
} from './harness.mjs';
import { screenshot } from './spa-harness.mjs';

/** Signs in at the OP's login form, wherever the page is on its way there. */
async function opLoginForm(s, page, login = 'alice') {
  await page.waitForURL((u) => u.href.startsWith(`${s.opURL}/interaction/`), { timeout: 10000 });
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any-password');
  await page.click('button[type="submit"]');
}

test('an API asks for step-up: "confirm it\'s you", the same session at the higher level, the call succeeds', (t) => withStack(t, { accessTTL: 60, opHost: '127.0.0.2' }, async (s) => {
  const { page, publicURL } = s;
  await browserLogin(s, 'alice');
  const before = await pageFetch(page, '/bff/user');
  // oidc-provider puts acr in the ID token only when it was asked for
  assert.notEqual(before.body.acr, ACR_CONFIRMED);

  const answers = [];
  // Recorded as soon as the response arrives; its body is read later (the
  // app may show the button before the body has been read here).
  page.on('response', (r) => {
    if (new URL(r.url()).pathname === '/api/confirmed') {
      answers.push(r.text().catch(() => '').then((body) => ({ status: r.status(), body, challenge: r.headers()['www-authenticate'] })));
    }
  });
  await page.click('#confirmed');
  const button = page.locator('#step-up a', { hasText: "Confirm it's you" });
  await button.waitFor({ timeout: 10000 });
  await screenshot(page.locator('#confirmed-card'), 'step-up');

  assert.equal(answers.length, 1);
  const [answer] = await Promise.all(answers);
  assert.equal(answer.status, 401);
  assert.ok(!answer.body.includes(UPSTREAM_ONLY) && !answer.challenge.includes(UPSTREAM_ONLY), 'the API\'s challenge text reached the browser');
  const body = JSON.parse(answer.body);
  assert.equal(body.error, 'step_up_required');
  assert.equal(body.acr_values, ACR_CONFIRMED);
  assert.equal(body.max_age, CONFIRMED_MAX_AGE);
  assert.equal(answer.challenge, `BFF error="step_up_required", acr_values="${ACR_CONFIRMED}", max_age=${CONFIRMED_MAX_AGE}`);
  assert.equal(s.upstream.seen.stepUpChallenges, 1);

  const href = new URL(await button.getAttribute('href'), publicURL);
  assert.equal(href.pathname, '/bff/login');
  assert.equal(href.searchParams.get('acr_values'), ACR_CONFIRMED);
  assert.equal(href.searchParams.get('max_age'), String(CONFIRMED_MAX_AGE));
  assert.equal(href.searchParams.get('returnTo'), '/');

  // The OP asks for the password again (its session's acr is not the one
  // asked for), and the browser comes back to the app, still signed in.
  await button.click();
  await opLoginForm(s, page);
  await page.waitForURL((u) => u.href.startsWith(`${publicURL}/`) && !u.pathname.startsWith('/bff/'), { timeout: 10000 });
  await page.locator('#status').filter({ hasText: /Signed in as alice/ }).waitFor({ timeout: 10000 });

  const stats = await opStats(s);
  const asked = stats.authorizeParams.at(-1);
  assert.equal(asked.acr_values, ACR_CONFIRMED);
  assert.equal(asked.max_age, String(CONFIRMED_MAX_AGE));
  assert.equal(stats.logins.at(-1).acr, ACR_CONFIRMED);

  const after = await pageFetch(page, '/bff/user');
  assert.equal(after.body.acr, ACR_CONFIRMED, '/bff/user shows the new acr');
  assert.equal(after.body.sid, before.body.sid, 'the step-up kept the session');
  assert.ok(Date.now() / 1000 - after.body.auth_time < 60, `auth_time ${after.body.auth_time} is the step-up's`);
  await page.locator('#claims').filter({ hasText: ACR_CONFIRMED }).waitFor({ timeout: 5000 });

  await page.click('#confirmed');
  await page.locator('#api').filter({ hasText: /^200/ }).waitFor({ timeout: 10000 });
  assert.match(await page.locator('#api').textContent(), /"confirmed": true/);
}));

test('a sign-in with another acr than asked for is refused at the callback, the session unchanged', (t) => withStack(t, { accessTTL: 60, opHost: '127.0.0.2' }, async (s) => {
  const { page, publicURL } = s;
  await browserLogin(s, 'alice');
  const before = await pageFetch(page, '/bff/user');

  await page.goto(`${publicURL}/bff/login?acr_values=urn:e2e:acr:hardware-key&returnTo=/`);
  await opLoginForm(s, page);
  await page.waitForURL((u) => u.href.startsWith(`${publicURL}/bff/callback`), { timeout: 10000 });
  await page.getByText('did not confirm the sign-in that was asked for').waitFor({ timeout: 5000 });
  assert.match(await page.content(), /step_up_failed/);
  assert.equal((await opStats(s)).logins.at(-1).acr, ACR_PASSWORD);

  await page.goto(`${publicURL}/`);
  const after = await pageFetch(page, '/bff/user');
  assert.equal(after.status, 200);
  assert.equal(after.body.sid, before.body.sid);
  assert.equal(after.body.acr, before.body.acr);
  assert.equal(after.body.auth_time, before.body.auth_time);
}));

test('prompt passes through; prompt=none comes back with login=required, or signed in when the OP has a session', (t) => withStack(t, { accessTTL: 60, opHost: '127.0.0.2' }, async (s) => {
  const { page, publicURL } = s;

  // No OP session: back to the page, marked, no error page.
  await page.goto(`${publicURL}/bff/login?prompt=none&returnTo=${encodeURIComponent('/x?tab=2')}`);
  await page.waitForURL((u) => u.origin === publicURL && u.pathname === '/x', { timeout: 10000 });
  const probed = new URL(page.url());
  assert.equal(probed.searchParams.get('login'), 'required');
  assert.equal(probed.searchParams.get('tab'), '2');
  assert.equal((await opStats(s)).authorizeParams.at(-1).prompt, 'none');
  assert.equal((await pageFetch(page, '/bff/user')).status, 401);

  // With an OP session (and none at the BFF): back to the page, signed in.
  await browserLogin(s, 'alice');
  await s.context.clearCookies({ domain: '127.0.0.1' }); // the BFF's cookies only; the OP is 127.0.0.2
  assert.equal((await pageFetch(page, '/bff/user')).status, 401);
  await page.goto(`${publicURL}/bff/login?prompt=none&returnTo=/y`);
  await page.waitForURL((u) => u.origin === publicURL && u.pathname === '/y', { timeout: 10000 });
  assert.equal(new URL(page.url()).searchParams.get('login'), null);
  const user = await pageFetch(page, '/bff/user');
  assert.equal(user.status, 200);
  assert.equal(user.body.sub, 'alice');

  // prompt=login makes the OP ask again despite its session.
  await page.goto(`${publicURL}/bff/login?prompt=login&returnTo=/`);
  await opLoginForm(s, page);
  await page.waitForURL((u) => u.href.startsWith(`${publicURL}/`) && !u.pathname.startsWith('/bff/'), { timeout: 10000 });
  assert.equal((await opStats(s)).authorizeParams.at(-1).prompt, 'login');
}));
