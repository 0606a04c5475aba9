// d. Refresh storm against oidc-provider, which rotates refresh tokens and
// revokes the whole token family when a consumed one is replayed: after the
// access token expired, 30 concurrent API calls cause exactly one
// refresh_token grant, all succeed, and no invalid_grant happens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  withStack, browserLogin, pageFetch, opStats, sleep, nodeRequest,
} from './harness.mjs';

const ACCESS_TTL = 5; // seconds, at the OP
// The BFF refreshes min(skew, lifetime/2) before expiry. With the default
// skew that is 2.5 s here, so a round that lasted longer than 2.5 s would
// legitimately refresh a second time; a 1 s skew leaves each round 4 s.
const BFF_REFRESH_SKEW = '1s';

async function untilExpired(since) {
  const wait = since + ACCESS_TTL * 1000 + 700 - Date.now();
  if (wait > 0) await sleep(wait);
}

test('30 concurrent API calls after expiry: one refresh at oidc-provider, all 200', (t) => withStack(t, { accessTTL: ACCESS_TTL, bffEnv: { BFF_REFRESH_SKEW } }, async (s) => {
  const { page, publicURL } = s;
  await browserLogin(s, 'dave');
  const issuedAt = Date.now(); // the first access token was issued before this
  const warm = await pageFetch(page, '/api/whoami');
  assert.equal(warm.status, 200);
  let stats = await opStats(s);
  assert.equal(stats.tokenRequests.refresh_token ?? 0, 0, 'no refresh yet');
  assert.equal(stats.grantSuccess.authorization_code, 1);

  // Round 1: from the page (chromium caps connections per host at 6, so the
  // 30 fetches overlap in waves).
  await untilExpired(issuedAt);
  const round1At = Date.now();
  const tokensBefore = new Set(s.upstream.seen.tokens);
  const results = await page.evaluate(async () => Promise.all(Array.from({ length: 30 }, async (_, i) => {
    const r = await fetch(`/api/storm?i=${i}`, { headers: { 'X-CSRF': '1' } });
    const body = await r.json().catch(() => null);
    return { status: r.status, active: body?.active, error: body?.error };
  })));
  t.diagnostic(`round 1 (page) took ${Date.now() - round1At} ms`);
  const bad = results.filter((r) => r.status !== 200 || r.active !== true);
  stats = await opStats(s);
  assert.deepEqual(bad, [], `every call 200 with an active token; OP grant errors: ${JSON.stringify(stats.grantErrors)}`);
  assert.equal(stats.tokenRequests.refresh_token, 1, 'exactly one refresh_token grant reached the OP');
  assert.equal(stats.grantSuccess.refresh_token, 1);
  assert.deepEqual(stats.grantErrors, [], 'no invalid_grant');
  const newTokens = [...s.upstream.seen.tokens].filter((x) => !tokensBefore.has(x));
  assert.equal(newTokens.length, 1, 'all 30 calls carried the one new access token');

  // Round 2: 30 truly parallel requests (one connection each) with the
  // browser's session cookie, after the refreshed token expired in turn.
  const cookie = (await s.context.cookies(publicURL)).find((c) => c.name === s.sessionCookie);
  assert.ok(cookie, 'session cookie present');
  await untilExpired(round1At);
  const round2At = Date.now();
  const results2 = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
    const r = await nodeRequest(s, `/api/storm2?i=${i}`, { 'X-CSRF': '1', cookie: `${cookie.name}=${cookie.value}` });
    return { status: r.status, active: r.body?.active, error: r.body?.error };
  }));
  t.diagnostic(`round 2 (node) took ${Date.now() - round2At} ms`);
  stats = await opStats(s);
  assert.deepEqual(results2.filter((r) => r.status !== 200 || r.active !== true), [],
    `round 2: every call 200; OP grant errors: ${JSON.stringify(stats.grantErrors)}`);
  assert.equal(stats.tokenRequests.refresh_token, 2, 'exactly one more refresh_token grant');
  assert.deepEqual(stats.grantErrors, []);

  // the session is still alive and usable from the page
  const user = await pageFetch(page, '/bff/user');
  assert.equal(user.status, 200);
  assert.equal(await page.textContent('#status'), 'Signed in as dave');
  const last = await pageFetch(page, '/api/whoami');
  assert.equal(last.status, 200);
  assert.equal(last.body.active, true);
}));
