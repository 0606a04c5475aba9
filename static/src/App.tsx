import { useEffect, useRef, useState } from 'react';
import { bffFetch, bffStream, loginUrl, type BffResult, type BffUser } from './bff';
import { useSession, type EndCause, type SessionState } from './session';
import { Devices } from './Devices';

export function App() {
  const session = useSession();
  const { state } = session;
  return (
    <>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true" />
          BFF demo
        </div>
        <div className="topbar-right">
          <span id="status" className={`pill pill-${state.status}`}>{statusText(state)}</span>
          {state.status === 'signed-in' && (
            <a id="logout" className="btn btn-ghost" href={state.user.logoutUrl}
              onClick={(e) => { e.preventDefault(); session.logout(); }}>
              Sign out
            </a>
          )}
        </div>
      </header>
      <main className="container">
        {state.status === 'loading' && <p className="muted center">Checking your session…</p>}
        {state.status === 'unavailable' && <Notice title="Cannot reach the server" text={state.message} />}
        {state.status === 'signed-out' && <SignedOut />}
        {state.status === 'ended' && <Ended cause={state.cause} reason={state.reason} />}
        {state.status === 'signed-in' && (
          <SignedIn user={state.user} expiresAt={state.expiresAt} expiring={state.expiring} onExpired={session.reload} />
        )}
      </main>
      <footer className="footer muted">
        Tokens stay on the server. This page holds one HttpOnly session cookie and nothing else.
      </footer>
    </>
  );
}

function statusText(s: SessionState): string {
  switch (s.status) {
    case 'signed-in': return `Signed in as ${s.user.preferred_username || s.user.sub}`;
    case 'signed-out': return 'Not signed in';
    case 'ended': return 'Session ended';
    case 'unavailable': return 'Offline';
    default: return 'Checking…';
  }
}

function SignedOut() {
  return (
    <section className="card hero" id="signed-out">
      <h1>Welcome</h1>
      <p>Sign in to see your profile, call the API through the BFF and manage the devices you are signed in on.</p>
      <a id="login" className="btn btn-primary" href={loginUrl()}>Sign in</a>
    </section>
  );
}

const endedText: Record<string, string> = {
  user_logout: 'You signed out in another tab.',
  user_revoked: 'This device was signed out from another of your devices.',
  admin: 'An administrator ended your session.',
  backchannel: 'You were signed out at your identity provider.',
  refresh_denied: 'Your sign-in is no longer accepted by the identity provider.',
  expired: 'Your session timed out.',
  replaced: 'You signed in again in another tab.',
};

function Ended({ cause, reason }: { cause?: EndCause; reason: string }) {
  const text = (cause && endedText[cause])
    ?? (reason === 'session_expired' ? 'Your session timed out.' : 'Your session was ended.');
  return (
    <section className="card hero" id="ended" data-cause={cause ?? reason}>
      <svg className="hero-icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round">
        <path d="M12 3v8" />
        <path d="M6.3 6.3a8 8 0 1 0 11.4 0" />
      </svg>
      <h1>Your session has ended</h1>
      <p>{text} Sign in again to continue.</p>
      <a id="login" className="btn btn-primary" href={loginUrl()}>Sign in again</a>
    </section>
  );
}

function Notice({ title, text }: { title: string; text: string }) {
  return (
    <section className="card hero">
      <h1>{title}</h1>
      <p>{text}</p>
    </section>
  );
}

function SignedIn({ user, expiresAt, expiring, onExpired }: { user: BffUser; expiresAt: number; expiring: boolean; onExpired: () => void }) {
  return (
    <>
      <Countdown expiresAt={expiresAt} expiring={expiring} onExpired={onExpired} />
      <div className="grid">
        <Profile user={user} />
        <WhoAmI />
        <ConfirmedAction />
        <LiveEvents />
        <Devices />
      </div>
    </>
  );
}

/** The session-expiry countdown, fed by sessionExpiresIn and session-expiring. */
function Countdown({ expiresAt, expiring, onExpired }: { expiresAt: number; expiring: boolean; onExpired: () => void }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, []);
  const left = Math.max(0, Math.round((expiresAt - now) / 1000));
  const fired = useRef(false);
  useEffect(() => {
    if (left === 0 && !fired.current) { fired.current = true; onExpired(); }
    if (left > 0) fired.current = false;
  }, [left, onExpired]);
  return (
    <div id="expiry" className={`banner ${expiring ? 'banner-warn' : ''}`} role="status">
      {expiring
        ? <>Your session ends in <strong id="countdown">{clock(left)}</strong>. Save your work; you will need to sign in again.</>
        : <>Session active · ends in <strong id="countdown">{clock(left)}</strong> without activity</>}
    </div>
  );
}

function clock(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0');
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

function Profile({ user }: { user: BffUser }) {
  const shown = ['sub', 'preferred_username', 'email', 'sid', 'acr', 'auth_time'];
  const initials = (user.name || user.preferred_username || user.sub).split(/\s+/).map((w) => w[0]).join('').slice(0, 2).toUpperCase();
  return (
    <section className="card" id="profile">
      <div className="profile-head">
        <div className="avatar" aria-hidden="true">{initials}</div>
        <div>
          <h2 id="user-name">{user.name || user.preferred_username || user.sub}</h2>
          {user.email && <div className="muted">{user.email}</div>}
        </div>
      </div>
      <table className="claims" id="claims">
        <tbody>
          {shown.filter((k) => user[k] !== undefined && user[k] !== '').map((k) => (
            <tr key={k}><th>{k}</th><td><code>{String(user[k])}</code></td></tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

interface WhoAmIAnswer {
  sub?: string;
  claims?: Record<string, unknown>;
  [k: string]: unknown;
}

function WhoAmI() {
  const [result, setResult] = useState<BffResult<WhoAmIAnswer> | null>(null);
  const [busy, setBusy] = useState(false);
  const call = async () => {
    setBusy(true);
    setResult(await bffFetch<WhoAmIAnswer>('/api/whoami'));
    setBusy(false);
  };
  return (
    <section className="card" id="api-card">
      <h2>API call</h2>
      <p className="muted">The BFF attaches your access token to <code>/api/whoami</code>; the API answers with the token's claims.</p>
      <button id="whoami" className="btn btn-primary" onClick={call} disabled={busy}>Call /api/whoami</button>
      {result && <ApiResult result={result} />}
    </section>
  );
}

/**
 * An action the API allows only after a recent "confirm it's you" sign-in
 * (step-up): /api/confirmed answers with a step-up challenge until then,
 * which bffFetch hands over as a step_up_required result.
 */
function ConfirmedAction() {
  const [result, setResult] = useState<BffResult<WhoAmIAnswer> | null>(null);
  const [busy, setBusy] = useState(false);
  const call = async () => {
    setBusy(true);
    setResult(await bffFetch<WhoAmIAnswer>('/api/confirmed', { method: 'POST' }));
    setBusy(false);
  };
  return (
    <section className="card" id="confirmed-card">
      <h2>Sensitive action</h2>
      <p className="muted">The API behind <code>/api/confirmed</code> asks for a recent, confirmed sign-in (RFC 9470 step-up).</p>
      <button id="confirmed" className="btn btn-primary" onClick={call} disabled={busy}>Do the sensitive action</button>
      {result && <ApiResult result={result} />}
    </section>
  );
}

function ApiResult({ result }: { result: BffResult<WhoAmIAnswer> }) {
  switch (result.kind) {
    case 'ok':
      return <pre id="api" className="code">{`${result.status}\n${JSON.stringify(result.data, null, 2)}`}</pre>;
    case 'step_up_required':
      return (
        <div className="inline-notice" id="step-up">
          <p>This action needs you to confirm it's you.</p>
          <a className="btn btn-primary" href={result.login}>Confirm it's you</a>
        </div>
      );
    case 'unauthenticated':
      return <p className="inline-notice" id="api">{result.status}: sign-in required</p>;
    case 'network_error':
      return <p className="inline-notice" id="api">The server could not be reached. Try again.</p>;
    default:
      return <p className="inline-notice" id="api">{`${result.status}: ${result.message}`}</p>;
  }
}

interface Tick { n: number; time: string; sub?: string }

/**
 * A live panel fed by /api/events: Server-Sent Events through the proxy,
 * opened when the user asks (a stream holds a connection to the API open).
 */
function LiveEvents() {
  const [ticks, setTicks] = useState<Tick[]>([]);
  const [state, setState] = useState<'off' | 'connecting' | 'live' | 'closed'>('off');
  const ctl = useRef<AbortController | null>(null);
  const start = () => {
    ctl.current?.abort();
    const c = new AbortController();
    ctl.current = c;
    setTicks([]);
    setState('connecting');
    void bffStream('/api/events?interval=2s', (ev) => {
      if (ev.event !== 'tick') return;
      try {
        const t = JSON.parse(ev.data) as Tick;
        setState('live');
        setTicks((prev) => [t, ...prev].slice(0, 5));
      } catch { /* not a tick */ }
    }, c.signal).then(() => {
      // Ended by the server, a dropped connection or a 401.
      if (!c.signal.aborted) setState('closed');
    });
  };
  const stop = () => { ctl.current?.abort(); ctl.current = null; setState('off'); };
  useEffect(() => () => ctl.current?.abort(), []);
  const running = state === 'connecting' || state === 'live';
  return (
    <section className="card" id="live-card">
      <div className="card-head">
        <h2>
          Live events
          <span id="live-state" className={`dot dot-${state}`}>{state}</span>
        </h2>
        <button id="live-toggle" className="btn btn-ghost" onClick={running ? stop : start}>{running ? 'Stop' : 'Start'}</button>
      </div>
      <p className="muted">A Server-Sent Events stream from <code>/api/events</code>, proxied with your token.</p>
      <ul className="ticks" id="live">
        {ticks.map((t) => (
          <li key={t.n}><span className="tick-n">Event #{t.n}</span><span className="muted">{new Date(t.time).toLocaleTimeString()}</span></li>
        ))}
        {ticks.length === 0 && <li className="muted">{running ? 'Waiting for the first event…' : 'Not connected.'}</li>}
      </ul>
    </section>
  );
}
