// The way an SPA talks to the BFF on its own origin. The browser holds one
// HttpOnly cookie and no token; these helpers add the CSRF header every BFF
// and API call needs, and turn the BFF's answers into typed results, so the
// app decides what to show without ever parsing an error body itself.
//
//   bffFetch(path, init)      fetch with X-CSRF: 1 → BffResult<T>, never throws
//   bffStream(path, onEvent)  Server-Sent Events from an API through the proxy
//   useSession()              (session.ts) the signed-in user, expiry, and
//                             every change of the session, shared by all tabs

/** The BFF's prefix for its own endpoints (BFF_PREFIX). */
export const BFF_PREFIX = '/bff';

/** Why a request had no session: the 401 contract's error codes. */
export type UnauthenticatedReason = 'login_required' | 'session_expired' | 'session_ended';

/** What the BFF says about the signed-in user (GET /bff/user). */
export interface BffUser {
  sub: string;
  name?: string;
  email?: string;
  preferred_username?: string;
  /** The session's public handle (never the cookie value). */
  sid: string;
  /** Where to navigate to sign out (carries the sid, so no other site can). */
  logoutUrl: string;
  /** Seconds until the session ends without further activity. */
  sessionExpiresIn: number;
  /** Authentication context class and time, when the IdP sent them. */
  acr?: string;
  auth_time?: number;
  [claim: string]: unknown;
}

/**
 * The outcome of a call through the BFF. Every answer maps to exactly one
 * kind; the app switches on `kind` and never sees a raw error body.
 */
export type BffResult<T> =
  | { kind: 'ok'; status: number; data: T; headers: Headers }
  /** 401: no session, or the session ended or expired. `login` is where to sign in. */
  | { kind: 'unauthenticated'; status: 401; reason: UnauthenticatedReason; login: string }
  /**
   * 401 step_up_required: the API wants a stronger or more recent sign-in.
   * Navigate to `login` (it names the acr_values / max_age to ask for).
   */
  | { kind: 'step_up_required'; status: 401; acrValues?: string; maxAge?: number; login: string }
  /** 403: the BFF refused the request (CSRF check), or the API forbade it. */
  | { kind: 'forbidden'; status: 403; error: string; message: string }
  /** Any other non-2xx answer, with the BFF's code and request id when it has them. */
  | { kind: 'error'; status: number; error: string; message: string; requestId?: string; retryAfter?: number }
  /** The request did not complete (offline, BFF unreachable, aborted). */
  | { kind: 'network_error'; status: 0; message: string; aborted: boolean };

/** Options of bffFetch: those of fetch, plus a JSON body shortcut. */
export interface BffFetchInit extends Omit<RequestInit, 'body'> {
  body?: BodyInit | null;
  /** Sent as JSON with Content-Type: application/json. */
  json?: unknown;
}

type Listener = (result: Extract<BffResult<unknown>, { kind: 'unauthenticated' }>) => void;
const unauthenticatedListeners = new Set<Listener>();

/**
 * Calls fn whenever any bffFetch gets the 401 contract, so one place (the
 * session hook) can switch the whole app to "signed out" or "session ended".
 * Returns the unsubscribe function.
 */
export function onUnauthenticated(fn: Listener): () => void {
  unauthenticatedListeners.add(fn);
  return () => unauthenticatedListeners.delete(fn);
}

/**
 * fetch through the BFF: same-origin credentials, the X-CSRF: 1 header that
 * every BFF and API call needs, and a typed result. It never throws, and
 * never hands an error body to the app as if it were data.
 */
export async function bffFetch<T = unknown>(path: string, init: BffFetchInit = {}): Promise<BffResult<T>> {
  const { json, headers: extra, ...rest } = init;
  const headers = new Headers(extra);
  headers.set('X-CSRF', '1');
  let body = rest.body;
  if (json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(json);
  }
  if (!headers.has('Accept')) headers.set('Accept', 'application/json');

  let res: Response;
  try {
    res = await fetch(path, { ...rest, body, headers, credentials: 'same-origin', redirect: 'manual' });
  } catch (e) {
    const aborted = e instanceof DOMException && e.name === 'AbortError';
    return { kind: 'network_error', status: 0, message: aborted ? 'request aborted' : 'the server could not be reached', aborted };
  }
  if (res.type === 'opaqueredirect') {
    // API calls are never redirected by the BFF; an upstream redirect is an error here.
    return { kind: 'error', status: 0, error: 'redirected', message: 'the request was redirected' };
  }
  return toResult<T>(res);
}

/** Maps a response to a BffResult: the one place the 401 contract is read. */
async function toResult<T>(res: Response): Promise<BffResult<T>> {
  const payload = await readBody(res);
  if (res.ok) return { kind: 'ok', status: res.status, data: payload as T, headers: res.headers };

  const err = isRecord(payload) ? payload : {};
  const code = str(err.error) ?? challengeError(res.headers.get('WWW-Authenticate')) ?? '';
  if (res.status === 401) {
    const login = withReturnTo(str(err.login) ?? `${BFF_PREFIX}/login`);
    if (code === 'step_up_required') {
      const maxAge = typeof err.max_age === 'number' ? err.max_age : Number(err.max_age);
      return {
        kind: 'step_up_required', status: 401, login,
        acrValues: str(err.acr_values),
        maxAge: Number.isFinite(maxAge) ? maxAge : undefined,
      };
    }
    const reason: UnauthenticatedReason =
      code === 'session_expired' || code === 'session_ended' ? code : 'login_required';
    const result = { kind: 'unauthenticated', status: 401, reason, login } as const;
    for (const fn of unauthenticatedListeners) fn(result);
    return result;
  }
  const message = str(err.message) ?? str(err.error_description) ?? (res.statusText || 'request failed');
  if (res.status === 403) return { kind: 'forbidden', status: 403, error: code || 'forbidden', message };
  const retry = Number(res.headers.get('Retry-After'));
  return {
    kind: 'error', status: res.status, error: code || `http_${res.status}`, message,
    requestId: str(err.requestId) ?? res.headers.get('X-Request-Id') ?? undefined,
    retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined,
  };
}

/**
 * The sign-in URL that brings the browser back to returnTo (default: the
 * current page). Sign-in is a top-level navigation, never a fetch.
 */
export function loginUrl(returnTo: string = currentPath(), login = `${BFF_PREFIX}/login`): string {
  const u = new URL(login, window.location.origin);
  u.searchParams.set('returnTo', returnTo);
  return u.pathname + u.search;
}

/** One Server-Sent Event received through bffStream. */
export interface StreamEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Reads Server-Sent Events from an API route through the proxy. Unlike
 * EventSource, it sends the X-CSRF header, so it passes the same guard as
 * every other API call. Resolves when the stream ends; the result says why
 * (ok: the server closed it, or it was aborted through signal).
 */
export async function bffStream(
  path: string,
  onEvent: (ev: StreamEvent) => void,
  signal?: AbortSignal,
): Promise<BffResult<null>> {
  let res: Response;
  try {
    res = await fetch(path, { headers: { 'X-CSRF': '1', Accept: 'text/event-stream' }, credentials: 'same-origin', signal });
  } catch (e) {
    const aborted = e instanceof DOMException && e.name === 'AbortError';
    return { kind: 'network_error', status: 0, message: aborted ? 'stream aborted' : 'the server could not be reached', aborted };
  }
  if (!res.ok || !res.body) {
    return toResult<null>(res);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let cut: number;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
        const ev = parseEvent(block);
        if (ev) onEvent(ev);
      }
    }
  } catch (e) {
    const aborted = e instanceof DOMException && e.name === 'AbortError';
    return { kind: 'network_error', status: 0, message: aborted ? 'stream aborted' : 'the stream broke off', aborted };
  }
  return { kind: 'ok', status: res.status, data: null, headers: res.headers };
}

/** Parses one SSE block; comments-only blocks (heartbeats) give null. */
export function parseEvent(block: string): StreamEvent | null {
  let event = 'message';
  const data: string[] = [];
  let id: string | undefined;
  let any = false;
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') { event = value; any = true; }
    else if (field === 'data') { data.push(value); any = true; }
    else if (field === 'id') id = value;
  }
  return any ? { event, data: data.join('\n'), id } : null;
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text().catch(() => '');
  if (!text) return null;
  if ((res.headers.get('Content-Type') ?? '').includes('json')) {
    try { return JSON.parse(text); } catch { return text; }
  }
  return text;
}

/** The error="…" of a `WWW-Authenticate: BFF error="…"` header. */
function challengeError(h: string | null): string | undefined {
  return h ? /error="([^"]*)"/.exec(h)?.[1] : undefined;
}

/** Adds returnTo (the current page) to a login link that has none. */
function withReturnTo(login: string): string {
  const u = new URL(login, window.location.origin);
  if (u.origin !== window.location.origin) return `${BFF_PREFIX}/login`; // never leave the origin
  if (!u.searchParams.has('returnTo')) u.searchParams.set('returnTo', currentPath());
  return u.pathname + u.search;
}

function currentPath(): string {
  const { pathname, search, hash } = window.location;
  return pathname + search + hash;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
