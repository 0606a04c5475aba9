// Resource indicators (RFC 8707) against oidc-provider: two routes with
// different resource= each send their upstream a token whose aud is their
// own resource, never the other's nor the session's token; a storm of calls
// on both reaches the OP's token endpoint once per resource.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { withStack, browserLogin, pageFetch, opStats, issuedTokens } from './harness.mjs';

const ORDERS = 'https://orders.e2e.test/';
const BILLING = 'https://billing.e2e.test/';

/** An upstream that reports the aud of the JWT it got (and keeps the token). */
async function audienceUpstream() {
  const received = [];
  const server = http.createServer((req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    let aud = null;
    try { aud = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).aud; } catch { /* not a JWT */ }
    received.push({ path: req.url, token, aud });
    res.writeHead(token ? 200 : 401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ aud }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, received, url: `http://127.0.0.1:${server.address().port}` };
}

test('two resource routes: each upstream gets a token for its own resource; one grant per resource for a storm', async (t) => {
  const up = await audienceUpstream();
  t.after(() => { up.server.closeAllConnections(); up.server.close(); });
  await withStack(t, {
    accessTTL: 60,
    opArgs: ['--resources', `${ORDERS},${BILLING}`],
    routes: [`/orders/=${up.url};resource=${ORDERS}`, `/billing/=${up.url};resource=${BILLING}`],
  }, async (s) => {
    const { page } = s;
    await browserLogin(s, 'alice');
    const asked = (await opStats(s)).authorizeParams.at(-1).resource;
    assert.deepEqual([asked].flat(), [ORDERS, BILLING], 'every resource is asked for at authorization');

    const before = (await opStats(s)).tokenRequests.refresh_token ?? 0;
    const calls = await page.evaluate(async () => Promise.all(Array.from({ length: 40 }, (_, i) =>
      fetch(i % 2 ? '/billing/x' : '/orders/x', { headers: { 'X-CSRF': '1' } }).then(async (r) => ({ i, status: r.status, body: await r.json() })))));
    for (const c of calls) {
      assert.equal(c.status, 200);
      assert.deepEqual([c.body.aud].flat(), [c.i % 2 ? BILLING : ORDERS], `call ${c.i} got a token for ${c.body.aud}`);
    }
    const stats = await opStats(s);
    assert.equal((stats.tokenRequests.refresh_token ?? 0) - before, 2, 'one refresh-token grant per resource');
    assert.deepEqual(stats.grantErrors, []);

    // The tokens are the OP's, from those grants; neither is the session's.
    const issued = await issuedTokens(s);
    const byValue = new Map(issued.map((x) => [x.value, x]));
    const sessionToken = issued.find((x) => x.kind === 'access_token' && x.grant_type === 'authorization_code').value;
    for (const r of up.received) {
      assert.equal(byValue.get(r.token)?.grant_type, 'refresh_token');
      assert.notEqual(r.token, sessionToken);
    }
    assert.equal(new Set(up.received.map((r) => r.token)).size, 2);

    // The default route still works with the session's token.
    assert.equal((await pageFetch(page, '/api/whoami')).status, 200);
  });
});
