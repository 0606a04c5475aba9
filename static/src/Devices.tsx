import { useCallback, useEffect, useState } from 'react';
import { BFF_PREFIX, bffFetch } from './bff';

/** One of the user's sessions, as GET /bff/sessions lists it. */
export interface DeviceSession {
  handle: string;
  created: string;
  lastSeen: string;
  device: string;
  current: boolean;
}

/**
 * "Your devices": every session of the signed-in user, with "sign out" per
 * device and "sign out everywhere else". Ending one goes through the BFF's
 * kill path: that device's tabs show "Your session has ended" at once.
 */
export function Devices() {
  const [list, setList] = useState<DeviceSession[] | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState('');

  const load = useCallback(async () => {
    const r = await bffFetch<{ sessions: DeviceSession[] }>(`${BFF_PREFIX}/sessions`);
    if (r.kind === 'ok') { setList(r.data.sessions); setError(''); }
    else if (r.kind !== 'unauthenticated') setError('Your devices could not be loaded.');
  }, []);
  useEffect(() => { void load(); }, [load]);

  const end = async (path: string, what: string) => {
    setBusy(what);
    const r = await bffFetch(path, { method: 'DELETE' });
    setBusy('');
    if (r.kind !== 'ok' && r.kind !== 'unauthenticated' && !(r.kind === 'error' && r.status === 404)) {
      setError('That device could not be signed out. Try again.');
    }
    await load();
  };

  const others = list?.filter((d) => !d.current) ?? [];
  return (
    <section className="card card-wide" id="devices-card">
      <div className="card-head">
        <h2>Your devices</h2>
        <button id="signout-others" className="btn btn-danger-ghost" disabled={others.length === 0 || busy !== ''}
          onClick={() => end(`${BFF_PREFIX}/sessions?others=true`, 'others')}>
          Sign out everywhere else
        </button>
      </div>
      {error && <p className="inline-notice">{error}</p>}
      {list === null ? <p className="muted">Loading…</p> : (
        <ul className="devices" id="devices">
          {list.map((d) => (
            <li key={d.handle} className="device" data-handle={d.handle} data-current={d.current}>
              <DeviceIcon device={d.device} />
              <div className="device-main">
                <div className="device-name">
                  {d.device}
                  {d.current && <span className="badge">This device</span>}
                </div>
                <div className="muted small">
                  Signed in {formatTime(d.created)} · last active {formatTime(d.lastSeen)}
                </div>
              </div>
              {!d.current && (
                <button className="btn btn-ghost device-signout" disabled={busy !== ''}
                  onClick={() => end(`${BFF_PREFIX}/sessions/${encodeURIComponent(d.handle)}`, d.handle)}>
                  Sign out
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <button className="btn btn-link" onClick={() => void load()}>Refresh list</button>
    </section>
  );
}

/** A phone, tablet or laptop outline, drawn inline (no icon font, no network). */
function DeviceIcon({ device }: { device: string }) {
  const phone = /iPhone|Android/.test(device);
  const tablet = /iPad/.test(device);
  return (
    <svg className="device-icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="1.6" strokeLinecap="round" strokeLinejoin="round">
      {phone && <><rect x="7" y="2.5" width="10" height="19" rx="2" /><path d="M11 18.5h2" /></>}
      {tablet && <><rect x="4.5" y="2.5" width="15" height="19" rx="2" /><path d="M11 18.5h2" /></>}
      {!phone && !tablet && <><rect x="3.5" y="4.5" width="17" height="11" rx="1.5" /><path d="M1.5 19.5h21" /></>}
    </svg>
  );
}

function formatTime(iso: string): string {
  const t = new Date(iso);
  const secs = Math.round((Date.now() - t.getTime()) / 1000);
  if (secs < 60) return 'just now';
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  return t.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
