// useSession: the signed-in user and every change of the session, for
// React. One source of truth per tab — GET /bff/user, then the BFF's
// session event stream (/bff/session/events) — and a BroadcastChannel so
// that what one tab learns (the session ended, the user signed in again)
// every open tab of the app learns at once.
import { useCallback, useEffect, useRef, useState } from 'react';
import { BFF_PREFIX, bffFetch, loginUrl, onUnauthenticated, type BffUser, type UnauthenticatedReason } from './bff';

/** Why a session ended, as the BFF's session-ended event names it. */
export type EndCause = 'user_logout' | 'user_revoked' | 'admin' | 'backchannel' | 'refresh_denied' | 'expired' | 'replaced' | string;

export type SessionState =
  /** First answer of /bff/user not in yet. */
  | { status: 'loading' }
  /** No session: show a sign-in button. */
  | { status: 'signed-out' }
  | {
      status: 'signed-in';
      user: BffUser;
      /** When the session ends without further activity (epoch ms). */
      expiresAt: number;
      /** The BFF warned that the session ends soon (session-expiring). */
      expiring: boolean;
    }
  /** The session ended while the app was open: say so, offer to sign in again. */
  | { status: 'ended'; reason: Exclude<UnauthenticatedReason, 'login_required'>; cause?: EndCause }
  /** The BFF cannot be reached; the hook keeps trying. */
  | { status: 'unavailable'; message: string };

export interface Session {
  state: SessionState;
  /** Navigates to the BFF's sign-in, returning to returnTo (default: this page). */
  login: (returnTo?: string) => void;
  /** Navigates to the BFF's logout URL; every other tab is told at once. */
  logout: () => void;
  /** Re-reads /bff/user (e.g. after an API call said the session changed). */
  reload: () => void;
}

/** Name of the channel the tabs of the app share. */
export const SESSION_CHANNEL = 'bff-session';

type TabMessage =
  | { type: 'ended'; reason: 'session_ended' | 'session_expired'; cause?: EndCause }
  | { type: 'signed-in'; sid: string };

/** Reconnect delays for the event stream: 1 s doubling to 30 s, with jitter. */
export function backoff(attempt: number): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
  return base / 2 + Math.random() * (base / 2);
}

/**
 * The session of this browser, kept current:
 * - signed-in with the user and the session's expiry (from sessionExpiresIn,
 *   moved by session-expiring);
 * - ended, with the cause, when the BFF pushes session-ended (logout in
 *   another tab, admin kill, back-channel logout, "sign out everywhere
 *   else"), when any bffFetch gets session_ended / session_expired, or when
 *   another tab says so;
 * - on server-shutdown (a BFF instance going away) or a broken stream it
 *   reconnects with backoff, re-reading /bff/user first, so a session that
 *   ended meanwhile is noticed.
 */
export function useSession(): Session {
  const [state, setState] = useState<SessionState>({ status: 'loading' });
  const stateRef = useRef(state);
  stateRef.current = state;
  const channel = useRef<BroadcastChannel | null>(null);
  const events = useRef<EventSource | null>(null);
  const retry = useRef<{ timer?: number; attempt: number }>({ attempt: 0 });
  const alive = useRef(true);

  const closeEvents = useCallback(() => {
    events.current?.close();
    events.current = null;
    window.clearTimeout(retry.current.timer);
  }, []);

  const end = useCallback((reason: 'session_ended' | 'session_expired', cause: EndCause | undefined, tell: boolean) => {
    closeEvents();
    setState((prev) => (prev.status === 'ended' ? prev : { status: 'ended', reason, cause }));
    if (tell) channel.current?.postMessage({ type: 'ended', reason, cause } satisfies TabMessage);
  }, [closeEvents]);

  // load reads /bff/user and, when signed in, (re)opens the event stream.
  const load = useCallback(async () => {
    const res = await bffFetch<BffUser>(`${BFF_PREFIX}/user`);
    if (!alive.current) return;
    switch (res.kind) {
      case 'ok': {
        // The backoff is reset only once the stream is open (onopen): a
        // stream that keeps failing while /bff/user works must not be
        // retried every second forever.
        const user = res.data;
        const prev = stateRef.current;
        setState({
          status: 'signed-in', user, expiresAt: Date.now() + user.sessionExpiresIn * 1000,
          expiring: prev.status === 'signed-in' && prev.user.sid === user.sid && prev.expiring,
        });
        if (!events.current) openEvents();
        return;
      }
      case 'unauthenticated':
        if (res.reason === 'login_required') {
          closeEvents();
          // A tab that saw the session end keeps saying so until the user acts.
          setState((prev) => (prev.status === 'ended' ? prev : { status: 'signed-out' }));
        } else {
          end(res.reason, undefined, true);
        }
        return;
      default:
        setState((prev) => (prev.status === 'signed-in' ? prev : { status: 'unavailable', message: 'The sign-in service cannot be reached. Retrying…' }));
        scheduleReconnect();
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [closeEvents, end]);

  const scheduleReconnect = useCallback(() => {
    window.clearTimeout(retry.current.timer);
    const delay = backoff(retry.current.attempt++);
    retry.current.timer = window.setTimeout(() => { void load(); }, delay);
  }, [load]);

  const openEvents = useCallback(() => {
    closeEvents();
    const es = new EventSource(`${BFF_PREFIX}/session/events`);
    events.current = es;
    es.addEventListener('session-ended', (e) => {
      const cause = parse<{ cause?: string }>((e as MessageEvent).data)?.cause;
      const reason = cause === 'expired' || cause === 'refresh_denied' ? 'session_expired' : 'session_ended';
      end(reason, cause, true);
    });
    es.addEventListener('session-expiring', (e) => {
      const expiresIn = parse<{ expiresIn?: number }>((e as MessageEvent).data)?.expiresIn;
      setState((prev) => prev.status !== 'signed-in' ? prev : {
        ...prev, expiring: true,
        expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : prev.expiresAt,
      });
    });
    // A BFF instance going away says so first: reconnect (to another
    // instance) soon, without waiting for the connection to break.
    es.addEventListener('server-shutdown', () => {
      if (events.current !== es) return;
      es.close();
      events.current = null;
      retry.current.attempt = 0;
      scheduleReconnect();
    });
    es.onopen = () => { retry.current.attempt = 0; };
    es.onerror = () => {
      // EventSource retries by itself only while the server keeps answering
      // 200; a 401 or a network error closes it for good. Either way, ask
      // /bff/user what happened, with backoff.
      if (events.current !== es) return;
      es.close();
      events.current = null;
      scheduleReconnect();
    };
  }, [closeEvents, end, scheduleReconnect]);

  useEffect(() => {
    alive.current = true;
    const ch = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(SESSION_CHANNEL);
    channel.current = ch;
    if (ch) {
      ch.onmessage = (e: MessageEvent<TabMessage>) => {
        const msg = e.data;
        if (msg?.type === 'ended') end(msg.reason, msg.cause, false);
        else if (msg?.type === 'signed-in') void load();
      };
    }
    const offUnauth = onUnauthenticated((r) => {
      const s = stateRef.current;
      if (r.reason !== 'login_required') end(r.reason, undefined, true);
      // A session that simply ran out leaves no tombstone: the BFF says
      // login_required. Past the expiry we announced, that is an expiry.
      else if (s.status === 'signed-in') {
        if (Date.now() >= s.expiresAt - 2000) end('session_expired', 'expired', true);
        else end('session_ended', undefined, true);
      }
    });
    const onVisible = () => {
      if (document.visibilityState === 'visible' && stateRef.current.status === 'signed-in') void load();
    };
    document.addEventListener('visibilitychange', onVisible);
    void load().then(() => {
      const s = stateRef.current;
      if (s.status === 'signed-in') ch?.postMessage({ type: 'signed-in', sid: s.user.sid } satisfies TabMessage);
    });
    return () => {
      alive.current = false;
      offUnauth();
      document.removeEventListener('visibilitychange', onVisible);
      ch?.close();
      closeEvents();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const login = useCallback((returnTo?: string) => {
    window.location.assign(loginUrl(returnTo));
  }, []);

  const logout = useCallback(() => {
    const s = stateRef.current;
    if (s.status !== 'signed-in') return;
    closeEvents();
    channel.current?.postMessage({ type: 'ended', reason: 'session_ended', cause: 'user_logout' } satisfies TabMessage);
    window.location.assign(s.user.logoutUrl);
  }, [closeEvents]);

  const reload = useCallback(() => { void load(); }, [load]);

  return { state, login, logout, reload };
}

function parse<T>(data: string): T | undefined {
  try { return JSON.parse(data) as T; } catch { return undefined; }
}
