// c. Back-channel logout sent by oidc-provider itself: the OP session is
// ended at the OP (not through the BFF); the OP POSTs a real logout_token to
// /bff/backchannel-logout; the BFF ends exactly that session and the open
// page hears session-ended on its EventSource.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  withStack, browserLogin, pageFetch, opStats, newPage, recordStatus, sleep,
} from './harness.mjs';

test('oidc-provider back-channel logout ends the BFF session and notifies the page', (t) => withStack(t, { accessTTL: 60 }, async (s) => {
  const { page, publicURL, opURL } = s;

  // the page's EventSource must be connected before the OP logs out
  const eventsOpen = page.waitForResponse((r) => r.url() === `${publicURL}/bff/session/events` && r.status() === 200);
  await browserLogin(s, 'alice');
  await eventsOpen;
  const history = await recordStatus(page);

  // another browser, another user, another OP session: must survive
  const other = await newPage(s, 'carol');
  await browserLogin(s, 'carol', other.page);

  // End alice's OP session at the OP, in the same browser (same OP cookie),
  // in a second tab, without going through the BFF.
  const tab = await s.context.newPage();
  await tab.goto(`${opURL}/session/end`);
  await tab.click('button[name="logout"][value="yes"]');
  await tab.waitForURL((u) => u.pathname.startsWith('/session/end/success'));

  const stats = await opStats(s);
  assert.deepEqual(stats.backchannel.errors, [], 'the BFF accepted the logout token');
  assert.equal(stats.backchannel.success, 1, 'one back-channel logout sent');

  // the page heard it
  await page.waitForFunction(() => window.__statusHistory.some((x) => x === 'Session ended'), null, { timeout: 5000 })
    .catch(async () => assert.fail(`#status never showed "Session ended": ${JSON.stringify(await history())}`));
  await page.locator('#ended[data-cause="backchannel"]').waitFor({ timeout: 5000 });

  // and the BFF session is gone, with the cause
  const user = await pageFetch(page, '/bff/user');
  assert.equal(user.status, 401);
  assert.equal(user.wwwAuthenticate, 'BFF error="session_ended"');
  assert.equal(user.body.error, 'session_ended');
  const api = await pageFetch(page, '/api/whoami');
  assert.equal(api.status, 401);
  assert.equal(s.upstream.seen.requests, 0, 'no API call reached the upstream after the logout');

  // carol's session is untouched
  const carol = await pageFetch(other.page, '/bff/user');
  assert.equal(carol.status, 200);
  assert.equal(carol.body.sub, 'carol');
  assert.equal(await other.page.textContent('#status'), 'Signed in as carol');
  await sleep(200);
  assert.equal(await other.page.textContent('#status'), 'Signed in as carol', 'carol\'s page got no session-ended');
  await other.context.close();
}));
