// "Your session has ended" in every open tab, by itself: an admin kill and
// a back-channel logout from the IdP, each with two tabs of the app open.
// Both tabs must show the ended view within two seconds, without a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPS, newBrowserContext, watchPage, screenshot, markPage, adminKill } from './spa-harness.mjs';

/** Signs in in a fresh browser and opens a second tab; both listen for session events. */
async function twoTabs(s, op, label) {
  const { context, page } = await newBrowserContext(s, label);
  const listening = (p) => p.waitForResponse((r) => r.url() === `${s.publicURL}/bff/session/events` && r.status() === 200);
  const first = listening(page);
  await op.login(s, 'alice', page);
  await first;
  const tab2 = await context.newPage();
  watchPage(s, tab2, `${label}-tab2`);
  const second = listening(tab2);
  await tab2.goto(`${s.publicURL}/`);
  await tab2.locator('#status').filter({ hasText: 'Signed in as alice' }).waitFor();
  await second;
  const tabs = [page, tab2];
  const marks = await Promise.all(tabs.map(markPage));
  return { context, tabs, marks };
}

async function assertEndedInTime(tabs, marks, since, cause, what) {
  await Promise.all(tabs.map((p) => p.locator('#ended').waitFor({ timeout: 2000 })
    .catch(() => assert.fail(`${what}: a tab did not show "Your session has ended" within 2 s`))));
  const took = Date.now() - since;
  assert.ok(took <= 2000, `${what}: ${took} ms`);
  for (const [i, p] of tabs.entries()) {
    assert.equal(await p.getAttribute('#ended', 'data-cause'), cause);
    assert.equal(await p.textContent('#ended h1'), 'Your session has ended');
    assert.equal(await p.evaluate(() => window.__noReload), marks[i], `${what}: tab ${i + 1} was reloaded`);
  }
  return took;
}

for (const op of OPS) {
  test(`${op.name}: admin kill and back-channel logout end every open tab at once`, (t) => op.withStack(t, { accessTTL: 60 }, async (s) => {
    // admin kill
    const a = await twoTabs(s, op, 'kill');
    const killAt = Date.now();
    await adminKill(s, op.sub('alice'));
    const killMs = await assertEndedInTime(a.tabs, a.marks, killAt, 'admin', 'admin kill');
    if (op.screenshots) await screenshot(a.tabs[0], 'session-ended');
    // the ended view's button signs in again
    assert.match(await a.tabs[0].getAttribute('#login', 'href'), /^\/bff\/login\?returnTo=%2F/);
    await a.context.close();

    // back-channel logout sent by the IdP
    const b = await twoTabs(s, op, 'backchannel');
    const bcAt = await op.signOutAtIdP(s, 'alice', b.context);
    const bcMs = await assertEndedInTime(b.tabs, b.marks, bcAt, 'backchannel', 'back-channel logout');
    console.log(`[${op.name}] both tabs ended: admin kill ${killMs} ms, back-channel ${bcMs} ms`);
    await b.context.close();
    assert.deepEqual(s.cspViolations ?? [], []);
  }));
}
