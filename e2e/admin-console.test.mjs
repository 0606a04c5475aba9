// e. The admin console (admin listener, /): an operator unlocks it with the
// admin token, finds a user's sessions, ends one and then all of them; the
// ended browser sessions get 401 session_ended, another user's is untouched,
// and the token is in no storage of the console's page afterwards.
// E2E_SCREENSHOTS=1 writes docs/screenshots/admin-console.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withStack, browserLogin, pageFetch, newPage } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Everything the page could have kept: storages, IndexedDB, Cache Storage, cookies, the DOM. */
async function pageStorage(page) {
  return page.evaluate(async () => {
    const dump = (s) => Object.fromEntries(Array.from({ length: s.length }, (_, i) => [s.key(i), s.getItem(s.key(i))]));
    const dbs = indexedDB.databases ? await indexedDB.databases() : [];
    const caches_ = self.caches ? await caches.keys() : [];
    return {
      local: JSON.stringify(dump(localStorage)),
      session: JSON.stringify(dump(sessionStorage)),
      indexedDB: JSON.stringify(dbs),
      caches: JSON.stringify(caches_),
      cookie: document.cookie,
      dom: document.documentElement.outerHTML,
      inputs: JSON.stringify([...document.querySelectorAll('input')].map((i) => i.value)),
    };
  });
}

test('admin console: search, end one session, end all of a user\'s; no token kept', (t) => withStack(t, { accessTTL: 60 }, async (s) => {
  // alice on two browsers, bob on a third
  const laptop = s.page;
  await browserLogin(s, 'alice', laptop);
  const phone = await newPage(s, 'phone');
  await browserLogin(s, 'alice', phone.page);
  const bob = await newPage(s, 'bob');
  await browserLogin(s, 'bob', bob.page);
  const phoneHandle = (await pageFetch(phone.page, '/bff/user')).body.sid;
  assert.ok(phoneHandle);

  const ops = await newPage(s, 'console');
  const con = ops.page;
  const consoleResponses = [];
  con.on('response', (r) => consoleResponses.push(r));
  await con.goto(`${s.adminURL}/`);
  assert.match(await con.title(), /admin console/i);

  // a wrong token is refused and forgotten
  await con.fill('#token', 'not-the-admin-token');
  await con.click('#unlock');
  await con.locator('#message.error').filter({ hasText: /refused/ }).waitFor();
  assert.equal(await con.isVisible('#search-card'), false);

  await con.fill('#token', s.adminToken);
  await con.click('#unlock');
  await con.locator('#search-card').waitFor({ state: 'visible' });
  assert.equal(await con.inputValue('#token'), '', 'the token field is cleared once unlocked');
  await con.locator('#active-count').filter({ hasText: /^\d+$/ }).waitFor();
  assert.equal(Number(await con.textContent('#active-count')), 3, 'live count of active sessions');

  // search alice: two sessions with handle, device, times
  await con.fill('#sub', 'alice');
  await con.click('#search');
  await con.locator('#sessions tbody tr').nth(1).waitFor();
  assert.equal(await con.locator('#sessions tbody tr').count(), 2);
  assert.match(await con.textContent('#results-title'), /^2 sessions of alice$/);
  const row = con.locator(`#sessions tbody tr[data-handle="${phoneHandle}"]`);
  assert.equal(await row.locator('td.handle').textContent(), phoneHandle);
  assert.match(await row.locator('td.device').textContent(), /Chrome on Linux/);
  const cells = await row.locator('td').allTextContents();
  assert.ok(cells.slice(3, 6).every((c) => /\d{1,2}:\d{2}/.test(c)), `created, last seen, expires shown: ${cells}`);

  if (process.env.E2E_SCREENSHOTS) {
    await con.setViewportSize({ width: 1360, height: 640 });
    await con.screenshot({ path: path.join(here, '..', 'docs', 'screenshots', 'admin-console.png'), fullPage: true });
  }

  // end the phone's session: cancel first (nothing happens), then confirm
  await row.locator('button.kill').click();
  await con.locator('#confirm[open]').waitFor();
  await con.click('#confirm-cancel');
  assert.equal((await pageFetch(phone.page, '/bff/user')).status, 200, 'cancel ends nothing');
  await row.locator('button.kill').click();
  await con.click('#confirm-ok');
  await con.locator('#message').filter({ hasText: `Session ${phoneHandle} ended.` }).waitFor();
  await con.locator('#results-title').filter({ hasText: /^1 session of alice$/ }).waitFor();

  const killed = await pageFetch(phone.page, '/bff/user');
  assert.equal(killed.status, 401);
  assert.match(killed.wwwAuthenticate, /session_ended/);
  assert.equal((await pageFetch(laptop, '/bff/user')).status, 200, 'the laptop session is still live');

  // end all of alice's sessions
  await con.click('#kill-all');
  await con.locator('#confirm[open]').waitFor();
  await con.click('#confirm-ok');
  await con.locator('#message').filter({ hasText: /^1 session of alice ended\.$/ }).waitFor();
  await con.locator('#empty').waitFor({ state: 'visible' });
  const laptopNow = await pageFetch(laptop, '/bff/user');
  assert.equal(laptopNow.status, 401);
  assert.match(laptopNow.wwwAuthenticate, /session_ended/);
  assert.equal((await pageFetch(bob.page, '/bff/user')).status, 200, "another user's session is untouched");

  // the token is nowhere but in the closure: not in any storage, cookie, the DOM or an input
  const kept = await pageStorage(con);
  for (const [where, value] of Object.entries(kept)) {
    assert.ok(!value.includes(s.adminToken), `admin token found in ${where}`);
  }
  assert.deepEqual((await ops.context.cookies()).filter((c) => c.value.includes(s.adminToken)), []);
  // nor echoed in any response the console received
  for (const r of consoleResponses) {
    const body = await r.text().catch(() => '');
    assert.ok(!body.includes(s.adminToken), `admin token echoed by ${r.url()}`);
  }
  // locking forgets it: the API calls stop working until unlocked again
  await con.click('#lock');
  await con.locator('#unlock-card').waitFor({ state: 'visible' });
  assert.equal(await con.isVisible('#search-card'), false);
}));
