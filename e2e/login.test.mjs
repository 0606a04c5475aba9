// a. Browser login against oidc-provider; API call through the proxy with a
// bearer token at the upstream; no token and no readable cookie in the browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withStack, browserLogin, pageFetch, issuedTokens, opStats } from './harness.mjs';

test('browser login through oidc-provider, API call via the proxy, no token reaches the page', (t) => withStack(t, { accessTTL: 60 }, async (s) => {
  const { page, publicURL } = s;
  const responses = [];
  page.on('response', (r) => responses.push(r));

  await browserLogin(s, 'alice');
  assert.match(await page.textContent('#status'), /^Signed in as alice$/);

  // the SPA's button: 200 through the proxy, the upstream got a live bearer token
  await page.click('#whoami');
  await page.locator('#api').filter({ hasText: /^\d{3}\n/ }).waitFor();
  const apiText = await page.textContent('#api');
  const [statusLine, ...rest] = apiText.split('\n');
  assert.equal(statusLine, '200', `API answer: ${apiText}`);
  const echo = JSON.parse(rest.join('\n'));
  assert.equal(echo.bearer, true, 'upstream received Authorization: Bearer');
  assert.equal(echo.active, true, 'the OP says the bearer token is active');
  assert.equal(echo.sub, 'alice');
  assert.equal(echo.client_id, 'bff');
  assert.equal(echo.path, '/api/whoami');
  assert.equal(echo.headers.cookie, undefined, 'the BFF strips Cookie');
  assert.equal(echo.headers['x-csrf'], undefined, 'the BFF strips the CSRF header');

  // the same from script, with and without the CSRF header
  const viaFetch = await pageFetch(page, '/api/whoami');
  assert.equal(viaFetch.status, 200);
  assert.equal(viaFetch.body.active, true);
  const noCsrf = await pageFetch(page, '/api/whoami', { csrf: false });
  assert.equal(noCsrf.status, 403, 'API call without X-CSRF is refused');

  const user = await pageFetch(page, '/bff/user');
  assert.equal(user.status, 200);
  assert.equal(user.body.sub, 'alice');
  assert.ok(user.body.sid, '/bff/user has the session handle');
  assert.equal(user.body.logoutUrl, `/bff/logout?sid=${encodeURIComponent(user.body.sid)}`);

  // HttpOnly: script sees no cookie at all
  assert.equal(await page.evaluate(() => document.cookie), '');
  // (cookies are per host, not per port: the OP's cookies on 127.0.0.1 show
  // up here too; only the BFF's own are checked)
  const cookies = (await s.context.cookies(publicURL)).filter((c) => c.name.includes('bff-'));
  assert.deepEqual(cookies.map((c) => c.name), [s.sessionCookie], 'one BFF cookie: the session (login-state cookie gone)');
  for (const c of cookies) {
    assert.equal(c.httpOnly, true, `cookie ${c.name} is HttpOnly`);
    assert.equal(c.sameSite, 'Strict', `cookie ${c.name} is SameSite=Strict`);
    assert.equal(c.path, '/', `cookie ${c.name} has Path=/`);
  }
  if (s.shape !== 'http') {
    // What the browser actually stored over https: the __Host- cookie, with
    // every attribute the prefix demands (a browser drops it otherwise).
    const [session] = cookies;
    assert.equal(session.name, '__Host-bff-session');
    assert.equal(session.secure, true, 'session cookie is Secure');
    assert.equal(session.domain, '127.0.0.1', 'host-only cookie (no Domain attribute)');
    // HSTS on the BFF's answers, and the upstream was told the request came over https
    const userResp = responses.find((r) => r.url() === `${publicURL}/bff/user`);
    assert.ok(userResp, 'the SPA called /bff/user');
    assert.equal((await userResp.allHeaders())['strict-transport-security'], 'max-age=31536000');
    assert.equal(echo.headers['x-forwarded-proto'], 'https', 'the upstream sees https (BFF_TRUSTED_PROXIES believed the proxy)');
  }

  // No token issued by the OP appears in anything the browser received.
  const tokens = (await issuedTokens(s)).map((x) => x.value);
  for (const tok of s.upstream.seen.tokens) tokens.push(tok);
  const kinds = new Set((await issuedTokens(s)).map((x) => x.kind));
  assert.ok(kinds.has('access_token') && kinds.has('id_token'), `OP issued access and ID tokens (${[...kinds]})`);
  assert.ok(kinds.has('refresh_token'), 'OP issued a refresh token to the BFF');
  assert.ok(s.upstream.seen.tokens.size >= 1);
  const stats = await opStats(s);
  assert.equal(stats.tokenRequests.authorization_code, 1);

  assert.ok(responses.length > 5, `saw ${responses.length} responses`);
  let checked = 0;
  let bodies = 0;
  for (const r of responses) {
    const headers = await r.allHeaders().catch(() => ({}));
    const ct = headers['content-type'] ?? '';
    let body = '';
    const isRedirect = r.status() >= 300 && r.status() < 400;
    if (!isRedirect && !ct.includes('text/event-stream')) {
      body = await r.text().catch(() => '');
      if (body) bodies += 1;
    }
    const hay = `${r.url()}\n${JSON.stringify(headers)}\n${body}`;
    for (const tok of tokens) {
      assert.ok(!hay.includes(tok), `token leaked to the browser in ${r.request().method()} ${r.url()}`);
    }
    checked += 1;
  }
  assert.equal(checked, responses.length);
  assert.ok(bodies >= 5, `read ${bodies} response bodies`);
}));
