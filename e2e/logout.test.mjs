// b. Logout: "Sign out" → BFF 302 to oidc-provider's end_session → its
// confirmation form → back at the SPA, signed out; refresh token revoked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  withStack, browserLogin, pageFetch, issuedTokens, opStats, sleep, introspect,
} from './harness.mjs';

test('sign out through the BFF and oidc-provider end_session', (t) => withStack(t, { accessTTL: 60 }, async (s) => {
  const { page, publicURL, opURL } = s;
  await browserLogin(s, 'bob');
  const user = await pageFetch(page, '/bff/user');
  assert.equal(user.status, 200);
  const { logoutUrl } = user.body;

  const endSessionRequests = [];
  page.on('request', (r) => {
    if (r.url().startsWith(`${opURL}/session/end`)) endSessionRequests.push(r.url());
  });

  await page.click('#logout');
  // oidc-provider's confirmation page: "Yes, sign me out"
  await page.waitForURL((u) => u.href.startsWith(`${opURL}/session/end`));
  await page.click('button[name="logout"][value="yes"]');
  await page.waitForURL((u) => u.origin === publicURL && u.pathname === '/');
  await page.locator('#status').filter({ hasText: /Not signed in/ }).waitFor();

  // the BFF's redirect to the OP
  const first = new URL(endSessionRequests[0]);
  assert.equal(first.pathname, '/session/end');
  assert.equal(first.searchParams.get('client_id'), 'bff');
  assert.equal(first.searchParams.get('post_logout_redirect_uri'), `${publicURL}/`);
  assert.ok(first.searchParams.get('id_token_hint'), 'id_token_hint sent');
  assert.ok(first.searchParams.get('state'), 'state sent');
  assert.match(page.url(), /[?&]state=/, 'the OP returned to the post-logout URI with state');

  const after = await pageFetch(page, '/bff/user');
  assert.equal(after.status, 401);
  assert.match(after.wwwAuthenticate ?? '', /^BFF error="(login_required|session_ended)"/);
  assert.equal(after.body.login, '/bff/login');
  const cookies = (await s.context.cookies(publicURL)).filter((c) => c.name.includes('bff-session'));
  assert.deepEqual(cookies, [], 'session cookie expired');

  // the old sign-out link does nothing now
  const again = await pageFetch(page, logoutUrl);
  assert.equal(again.status, 400);

  // the BFF revoked its refresh token at the OP (RFC 7009)
  const stats = await opStats(s);
  assert.ok(stats.revocations >= 1, `revocation requests: ${stats.revocations}`);
  const rt = (await issuedTokens(s)).filter((x) => x.kind === 'refresh_token').at(-1);
  const intro = await introspect(opURL, rt.value);
  assert.equal(intro.active, false, 'refresh token no longer active');

  // oidc-provider also sends a back-channel logout for the session the BFF
  // already ended: that must be a 200 (it would log backchannel.error otherwise)
  for (let i = 0; i < 20 && stats.backchannel.success + stats.backchannel.errors.length === 0; i++) {
    await sleep(100);
    Object.assign(stats, await opStats(s));
  }
  assert.deepEqual(stats.backchannel.errors, []);
  assert.equal(stats.backchannel.success, 1);
}));
