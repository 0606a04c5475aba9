// The SPA against both OPs: sign-in through the OP's form, the user and the
// token's claims on screen, nothing token-like anywhere a script or the page
// could read, "your devices" with "sign out everywhere else" across two
// browsers, and logout — after which a copied cookie is worthless.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  OPS, newBrowserContext, screenshot, markPage, browserStorage, IPHONE_SAFARI,
} from './spa-harness.mjs';
import { nodeRequest } from './harness.mjs';

for (const op of OPS) {
  test(`${op.name}: sign in, whoami, no token in the browser, your devices, logout`, (t) => op.withStack(t, { accessTTL: 60 }, async (s) => {
    const { page, publicURL } = s;
    const responses = [];
    const record = (p) => p.on('response', (r) => responses.push(r));
    record(page);
    const navigations = [];
    page.on('request', (r) => { if (r.isNavigationRequest()) navigations.push(r); });

    await page.goto(`${publicURL}/`);
    await page.locator('#signed-out').waitFor();
    if (op.screenshots) await screenshot(page, 'signed-out');

    await op.login(s, 'alice');
    // The first page load after the IdP's redirect: under SameSite=Strict it
    // carries no session cookie when the IdP is another site; the app, whose
    // same-origin fetches do carry it, still comes up signed in.
    const landing = navigations.filter((r) => r.url().startsWith(publicURL) && !new URL(r.url()).pathname.startsWith('/bff/')).at(-1);
    assert.ok(landing, 'saw the landing page load');
    const landingCookie = (await landing.allHeaders()).cookie ?? '';
    if (op.crossSiteIdP) {
      assert.doesNotMatch(landingCookie, /bff-session=/, 'the landing page load after the cross-site redirect carried the Strict cookie');
      const callback = navigations.find((r) => new URL(r.url()).pathname === '/bff/callback');
      assert.ok(callback, 'went through /bff/callback');
    }
    // ... while the app's same-origin fetch of /bff/user did carry it (and
    // shows that the recorded headers include cookies at all)
    const userCall = responses.find((r) => r.url() === `${publicURL}/bff/user` && r.status() === 200);
    assert.ok(userCall, 'the app read /bff/user');
    assert.match((await userCall.request().allHeaders()).cookie ?? '', /bff-session=/);
    assert.match(await page.textContent('#status'), /^Signed in as alice$/);

    // the user's name and claims
    const claims = await page.textContent('#claims');
    assert.match(claims, new RegExp(`sub${op.sub('alice')}`));
    assert.ok((await page.textContent('#user-name')).length > 0);

    // /api/whoami through the proxy shows the token's claims
    const [whoami] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${publicURL}/api/whoami`),
      page.click('#whoami'),
    ]);
    assert.equal(whoami.status(), 200);
    await page.locator('#api').filter({ hasText: /^200\n/ }).waitFor();
    const echo = JSON.parse((await page.textContent('#api')).split('\n').slice(1).join('\n'));
    assert.equal(echo.sub, op.sub('alice'), `whoami answer: ${JSON.stringify(echo)}`);

    // a second browser, same user
    const second = await newBrowserContext(s, 'second', { userAgent: IPHONE_SAFARI });
    record(second.page);
    await op.login(s, 'alice', second.page);
    const secondMark = await markPage(second.page);

    // "Your devices" lists both, this one marked
    await page.click('#devices-card .btn-link');
    await page.locator('#devices li.device').nth(1).waitFor();
    const devices = await page.locator('#devices li.device').evaluateAll((els) => els.map((e) => ({
      current: e.dataset.current === 'true', text: e.textContent,
    })));
    assert.equal(devices.length, 2, JSON.stringify(devices));
    assert.deepEqual(devices.map((d) => d.current), [true, false]);
    assert.match(devices[0].text, /^Chrome \(headless\) on Linux\s*This device/);
    assert.match(devices[1].text, /^Safari on iPhone/);
    if (op.screenshots) await screenshot(page.locator('#devices-card'), 'devices');

    // "Sign out everywhere else": the second browser's tab shows the ended
    // view by itself, without a reload; this one keeps working
    const endedAt = Date.now();
    await page.click('#signout-others');
    await second.page.locator('#ended').waitFor({ timeout: 2000 });
    const tookMs = Date.now() - endedAt;
    assert.equal(await second.page.getAttribute('#ended', 'data-cause'), 'user_revoked');
    assert.equal(await second.page.evaluate(() => window.__noReload), secondMark, 'the second tab was reloaded');
    console.log(`[${op.name}] sign out everywhere else → other browser's ended view in ${tookMs} ms`);
    await page.locator('#devices li.device').nth(1).waitFor({ state: 'detached' });
    const [again] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${publicURL}/api/whoami`),
      page.click('#whoami'),
    ]);
    assert.equal(again.status(), 200, 'this browser keeps working');

    // Nothing token-like where a script could read it ...
    for (const p of [page, second.page]) {
      const stored = await browserStorage(p);
      assert.deepEqual(stored, { localStorage: {}, sessionStorage: {}, indexedDB: [], cookie: '' });
    }
    // ... nor in any response either browser received (the tokens are the
    // OP's own list of what it issued)
    const tokens = await op.tokens(s);
    assert.ok(tokens.length >= 6, `the OP issued ${tokens.length} tokens`);
    let bodies = 0;
    for (const r of responses) {
      const headers = await r.allHeaders().catch(() => ({}));
      let body = '';
      const redirect = r.status() >= 300 && r.status() < 400;
      if (!redirect && !(headers['content-type'] ?? '').includes('text/event-stream')) {
        body = await r.text().catch(() => '');
        if (body) bodies += 1;
      }
      const hay = `${r.url()}\n${JSON.stringify(headers)}\n${body}`;
      for (const tok of tokens) assert.ok(!hay.includes(tok), `a token reached the browser in ${r.url()}`);
    }
    assert.ok(bodies >= 10, `read ${bodies} response bodies`);
    await second.context.close();

    // Logout ends at the post-logout page, signed out; the cookie copied
    // before gets 401.
    const [cookie] = (await s.context.cookies(publicURL)).filter((c) => c.name.endsWith('bff-session'));
    assert.ok(cookie, 'the browser had a session cookie');
    await page.click('#logout');
    await op.finishLogout(page);
    await page.waitForURL((u) => u.origin === publicURL && u.pathname === "/");
    await page.locator('#signed-out').waitFor();
    assert.equal(await page.textContent('#status'), 'Not signed in');
    const replay = await nodeRequest(s, '/bff/user', { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf': '1' });
    assert.equal(replay.status, 401);
    const replayAPI = await nodeRequest(s, '/api/whoami', { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf': '1' });
    assert.equal(replayAPI.status, 401);

    assert.deepEqual(s.cspViolations ?? [], [], 'the app broke its Content-Security-Policy');
  }));
}
