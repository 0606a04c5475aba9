// Five-second access tokens and twenty seconds of use of the app: the BFF
// refreshes behind the page; the page sees no error and never reloads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPS, markPage, screenshot } from './spa-harness.mjs';
import { opStats, sleep, SHAPE } from './harness.mjs';

for (const op of OPS) {
  // Refresh happens on the server, whatever the deployment shape: this
  // twenty-second flow runs in the http shape; refresh.test.mjs refreshes
  // in every shape (CI time).
  const skip = SHAPE !== 'http' ? { skip: 'shape-independent; runs in the http shape' } : {};
  test(`${op.name}: 5 s access tokens, 20 s of use, no error, no reload`, skip, (t) => op.withStack(t, { accessTTL: 5 }, async (s) => {
    const { page, publicURL } = s;
    await op.login(s, 'alice');
    const failures = []; // from here on, signed in: no answer may fail
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (u.origin === publicURL && r.status() >= 400) failures.push(`${r.status()} ${u.pathname}`);
    });
    const mark = await markPage(page);
    // the demo API behind the embedded OP streams events; keep its panel open
    if (op.screenshots) await page.click('#live-toggle');

    let calls = 0;
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      const [r] = await Promise.all([
        page.waitForResponse((x) => x.url() === `${publicURL}/api/whoami`),
        page.click('#whoami'),
      ]);
      calls += 1;
      assert.equal(r.status(), 200, `call ${calls} at ${Math.round((end - Date.now()) / 1000)} s left`);
      await page.locator('#api').filter({ hasText: /^200\n/ }).waitFor();
      await sleep(900);
    }
    assert.ok(calls >= 15, `${calls} calls in 20 s`);
    assert.deepEqual(failures, [], 'no failed request from the page');
    assert.equal(await page.textContent('#status'), 'Signed in as alice');
    assert.equal(await page.locator('#ended').count(), 0);
    assert.equal(await page.evaluate(() => window.__noReload), mark, 'the page was reloaded');

    // the tokens were really short-lived: the BFF refreshed several times
    const refreshes = s.kind === 'oidc-provider'
      ? (await opStats(s)).tokenRequests.refresh_token
      : (await (await fetch(`${s.controlURL}/tokens`)).json()).filter((x) => x.kind === 'refresh_token').length - 1;
    assert.ok(refreshes >= 3, `${refreshes} refreshes in 20 s of 5 s tokens`);
    console.log(`[${op.name}] ${calls} API calls over 20 s, ${refreshes} refreshes, no error`);

    if (op.screenshots) {
      // the live panel has been streaming through the proxy all along
      const ticks = await page.locator('#live li .tick-n').count();
      assert.ok(ticks >= 3, `${ticks} live events shown`);
      assert.equal(await page.textContent('#live-state'), 'live');
      await screenshot(page, 'signed-in');
    }
    assert.deepEqual(s.cspViolations ?? [], []);
  }));
}
