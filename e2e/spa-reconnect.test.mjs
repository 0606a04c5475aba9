// useSession keeps the session's events flowing when things break: a tab
// whose own event stream is blocked still ends with the others (the
// BroadcastChannel), and a BFF that restarts (SIGTERM: server-shutdown to
// every stream) is reconnected to with backoff, without a reload. Against
// the embedded OP only: both behaviours are the app's and the BFF's, not
// the IdP's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OPS, watchPage, markPage, adminKill } from './spa-harness.mjs';

const op = OPS.find((o) => o.name.startsWith('embedded'));

test('a tab without its own event stream ends with the others (BroadcastChannel)', (t) => op.withStack(t, { accessTTL: 60 }, async (s) => {
  const { page, publicURL } = s;
  const listening = page.waitForResponse((r) => r.url() === `${publicURL}/bff/session/events` && r.status() === 200);
  await op.login(s, 'alice');
  await listening;
  const deaf = await s.context.newPage();
  watchPage(s, deaf, 'deaf');
  await deaf.route('**/bff/session/events', (route) => route.abort());
  await deaf.goto(`${publicURL}/`);
  await deaf.locator('#status').filter({ hasText: 'Signed in as alice' }).waitFor();
  const marks = [await markPage(page), await markPage(deaf)];

  const at = Date.now();
  await adminKill(s, op.sub('alice'));
  await page.locator('#ended').waitFor({ timeout: 2000 });
  await deaf.locator('#ended').waitFor({ timeout: 2000 });
  const took = Date.now() - at;
  assert.equal(await deaf.getAttribute('#ended', 'data-cause'), 'admin', 'the cause came from the other tab');
  assert.deepEqual([await page.evaluate(() => window.__noReload), await deaf.evaluate(() => window.__noReload)], marks);
  console.log(`tab without event stream ended ${took} ms after the kill`);
}));

test('a restarted BFF: server-shutdown, reconnect with backoff, events flow again', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bff-e2e-restart-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return op.withStack(t, { accessTTL: 60, bffEnv: { BFF_STORE: `sqlite:${path.join(dir, 'sessions.db')}`, BFF_SHUTDOWN_TIMEOUT: '2s' } }, async (s) => {
    const { page, publicURL } = s;
    const listening = page.waitForResponse((r) => r.url() === `${publicURL}/bff/session/events` && r.status() === 200);
    await op.login(s, 'alice');
    await listening;
    const mark = await markPage(page);

    await s.bff.stop(); // SIGTERM: the stream gets server-shutdown
    assert.match(s.bff.log(), /shutting down/);
    const back = page.waitForResponse((r) => r.url() === `${publicURL}/bff/session/events` && r.status() === 200, { timeout: 20000 });
    const restartedAt = Date.now();
    await s.startBFF();
    await back;
    console.log(`event stream back ${Date.now() - restartedAt} ms after the restart began`);
    assert.equal(await page.textContent('#status'), 'Signed in as alice', 'the session survived the restart');

    const at = Date.now();
    await adminKill(s, op.sub('alice'));
    await page.locator('#ended').waitFor({ timeout: 2000 });
    console.log(`after the restart, the kill reached the tab in ${Date.now() - at} ms`);
    assert.equal(await page.evaluate(() => window.__noReload), mark, 'the page was reloaded');
  });
});
