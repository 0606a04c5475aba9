// The session-expiry countdown: fed by sessionExpiresIn, warned by the
// session-expiring event, and at zero the app shows "Your session has
// ended" (timed out) by itself. Short timeouts; against the embedded OP
// only, since expiry is the BFF's own rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPS, markPage } from './spa-harness.mjs';
import { SHAPE } from './harness.mjs';

const op = OPS.find((o) => o.name.startsWith('embedded'));

// Timing of the BFF alone, the same in every deployment shape: run once.
const once = SHAPE === 'http' ? {} : { skip: 'shape-independent; runs in the http shape' };

test('the countdown warns on session-expiring and ends the app at zero', once, (t) => op.withStack(t, {
  accessTTL: 60,
  // session-expiring comes two minutes before the absolute timeout: at once here
  bffEnv: { BFF_ABSOLUTE_TIMEOUT: '10s', BFF_IDLE_TIMEOUT: '10s', BFF_TOUCH_INTERVAL: '5s' },
}, async (s) => {
  const { page } = s;
  const signedInAt = Date.now();
  await op.login(s, 'alice');
  const mark = await markPage(page);
  await page.locator('#expiry.banner-warn').waitFor({ timeout: 3000 });
  const shown = await page.textContent('#countdown');
  const [m, sec] = shown.split(':').map(Number);
  assert.ok(m === 0 && sec > 0 && sec <= 10, `countdown shows ${shown}`);
  assert.match(await page.textContent('#expiry'), /Your session ends in/);

  await page.locator('#ended').waitFor({ timeout: 15000 });
  const after = (Date.now() - signedInAt) / 1000;
  assert.ok(after >= 8, `ended after ${after} s, before the timeout`);
  assert.equal(await page.getAttribute('#ended', 'data-cause'), 'expired');
  assert.match(await page.textContent('#ended'), /timed out/);
  assert.equal(await page.evaluate(() => window.__noReload), mark, 'the page was reloaded');
  console.log(`session of 10 s: warned at once, ended view after ${after.toFixed(1)} s`);
}));
