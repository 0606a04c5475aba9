// The typed helpers against a real HTTP server: every answer of the BFF's
// contract maps to one typed result, the CSRF header is always sent, and
// nothing throws. Run by static/check.sh, which compiles src/bff.ts for Node
// and passes its path in BFF_HELPERS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';

const helpers = process.env.BFF_HELPERS;
if (!helpers) throw new Error('BFF_HELPERS must name the compiled bff.js (see static/check.sh)');

let server;
let base;
const seen = [];
// Each path answers one shape of the BFF's contract.
const routes = {
  '/ok': (res) => json(res, 200, { hello: 'world' }),
  '/step-up': (res) => json(res, 401, {
    error: 'step_up_required', acr_values: 'urn:example:mfa', max_age: 300,
    login: '/bff/login?acr_values=urn%3Aexample%3Amfa&max_age=300&returnTo=%2Fpay',
  }, { 'WWW-Authenticate': 'BFF error="step_up_required"' }),
  '/step-up-bare': (res) => json(res, 401, { error: 'step_up_required', acr_values: 'urn:example:mfa', login: '/bff/login?acr_values=urn%3Aexample%3Amfa' }),
  '/ended': (res) => json(res, 401, { error: 'session_ended', login: '/bff/login' }, { 'WWW-Authenticate': 'BFF error="session_ended"' }),
  '/expired-header-only': (res) => { res.writeHead(401, { 'WWW-Authenticate': 'BFF error="session_expired"', 'Content-Type': 'text/plain' }); res.end('no'); },
  '/login-required': (res) => json(res, 401, { error: 'login_required', login: '/bff/login' }),
  '/foreign-login': (res) => json(res, 401, { error: 'session_ended', login: 'https://evil.example/phish' }),
  '/csrf': (res) => json(res, 403, { error: 'csrf_failed', message: 'missing X-CSRF header', requestId: 'r1' }),
  '/busy': (res) => json(res, 503, { error: 'store_unavailable', message: 'try again', requestId: 'r2' }, { 'Retry-After': '5' }),
  '/html-500': (res) => { res.writeHead(500, { 'Content-Type': 'text/html' }); res.end('<h1>oops</h1>'); },
  '/events': (res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write(': hello\n\n');
    res.write('id: 1\nevent: tick\ndata: {"n":1}\n\n');
    res.write(': heartbeat\n\nevent: tick\r\ndata: {"n":2}\r\n\r\n');
    res.end('data: line one\ndata: line two\n\n');
  },
};

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

let bff;
before(async () => {
  server = http.createServer((req, res) => {
    seen.push({ path: req.url, method: req.method, csrf: req.headers['x-csrf'], type: req.headers['content-type'] });
    (routes[req.url] ?? ((r) => json(r, 404, { error: 'not_found' })))(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${server.address().port}`;
  // the helpers read the page's location for returnTo
  globalThis.window = { location: new URL(`${base}/orders/42?tab=items#top`) };
  bff = await import(helpers);
});
after(() => server.close());

test('2xx is ok with the parsed body, and the CSRF header is always sent', async () => {
  const r = await bff.bffFetch(`${base}/ok`);
  assert.equal(r.kind, 'ok');
  assert.deepEqual(r.data, { hello: 'world' });
  const p = await bff.bffFetch(`${base}/ok`, { method: 'POST', json: { a: 1 } });
  assert.equal(p.kind, 'ok');
  assert.deepEqual(seen.slice(-2).map((x) => [x.method, x.csrf]), [['GET', '1'], ['POST', '1']]);
  assert.equal(seen.at(-1).type, 'application/json');
});

test('step_up_required is a typed result with acr_values, max_age and the login link', async () => {
  const r = await bff.bffFetch(`${base}/step-up`);
  assert.deepEqual(r, {
    kind: 'step_up_required', status: 401, acrValues: 'urn:example:mfa', maxAge: 300,
    login: '/bff/login?acr_values=urn%3Aexample%3Amfa&max_age=300&returnTo=%2Fpay',
  });
  // a login link without returnTo comes back to the current page
  const bare = await bff.bffFetch(`${base}/step-up-bare`);
  assert.equal(bare.kind, 'step_up_required');
  assert.equal(bare.maxAge, undefined);
  const u = new URL(bare.login, base);
  assert.equal(u.pathname, '/bff/login');
  assert.equal(u.searchParams.get('acr_values'), 'urn:example:mfa');
  assert.equal(u.searchParams.get('returnTo'), '/orders/42?tab=items#top');
});

test('the 401 contract maps to unauthenticated with its reason, and listeners hear it', async () => {
  const heard = [];
  const off = bff.onUnauthenticated((x) => heard.push(x.reason));
  try {
    const ended = await bff.bffFetch(`${base}/ended`);
    assert.equal(ended.kind, 'unauthenticated');
    assert.equal(ended.reason, 'session_ended');
    assert.equal(new URL(ended.login, base).searchParams.get('returnTo'), '/orders/42?tab=items#top');
    const expired = await bff.bffFetch(`${base}/expired-header-only`);
    assert.equal(expired.reason, 'session_expired', 'the WWW-Authenticate header alone is enough');
    const required = await bff.bffFetch(`${base}/login-required`);
    assert.equal(required.reason, 'login_required');
    assert.deepEqual(heard, ['session_ended', 'session_expired', 'login_required']);
    // a login link to another origin is never followed
    const foreign = await bff.bffFetch(`${base}/foreign-login`);
    assert.equal(foreign.login, '/bff/login');
  } finally {
    off();
  }
  await bff.bffFetch(`${base}/ended`);
  assert.equal(heard.length, 4, 'unsubscribed listeners hear nothing more');
});

test('403, 5xx, HTML errors and network failures are typed results, never thrown', async () => {
  assert.deepEqual(await bff.bffFetch(`${base}/csrf`), { kind: 'forbidden', status: 403, error: 'csrf_failed', message: 'missing X-CSRF header' });
  const busy = await bff.bffFetch(`${base}/busy`);
  assert.equal(busy.kind, 'error');
  assert.equal(busy.error, 'store_unavailable');
  assert.equal(busy.retryAfter, 5);
  assert.equal(busy.requestId, 'r2');
  const html = await bff.bffFetch(`${base}/html-500`);
  assert.equal(html.kind, 'error');
  assert.equal(html.status, 500);
  assert.equal(html.error, 'http_500');
  const down = await bff.bffFetch('http://127.0.0.1:1/nothing-listens');
  assert.equal(down.kind, 'network_error');
  assert.equal(down.aborted, false);
});

test('bffStream parses Server-Sent Events and skips heartbeats', async () => {
  const events = [];
  const r = await bff.bffStream(`${base}/events`, (ev) => events.push(ev));
  assert.equal(r.kind, 'ok');
  assert.deepEqual(events, [
    { event: 'tick', data: '{"n":1}', id: '1' },
    { event: 'tick', data: '{"n":2}', id: undefined },
    { event: 'message', data: 'line one\nline two', id: undefined },
  ]);
  assert.equal(seen.find((x) => x.path === '/events').csrf, '1');
  const denied = await bff.bffStream(`${base}/ended`, () => {});
  assert.equal(denied.kind, 'unauthenticated');
});
