// The admin console: a thin page over the admin API. The admin token lives
// in one variable of this closure — never in any kind of browser storage
// or a cookie — so it is gone when the tab is locked, closed or reloaded. Values from the API (subjects, user agents) are only ever set
// as textContent, never parsed as HTML.
(() => {
  'use strict';
  let token = null;
  let currentSub = null;
  let countTimer = null;
  const $ = (id) => document.getElementById(id);

  function show(el, on) { el.hidden = !on; }

  function say(text, isError = false) {
    const m = $('message');
    m.textContent = text;
    m.classList.toggle('error', isError);
    show(m, true);
  }

  async function api(method, path) {
    const r = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token}` },
      cache: 'no-store',
      credentials: 'omit',
    });
    if (r.status === 401) {
      lock();
      throw new Error('The admin token was refused. Unlock again.');
    }
    if (r.status === 429) throw new Error('Too many failed attempts from this address; wait a minute.');
    const type = r.headers.get('content-type') || '';
    const body = type.includes('json') ? await r.json() : await r.text();
    if (!r.ok) throw new Error((body && body.message) || `The admin API answered ${r.status}.`);
    return body;
  }

  // Live count: bff_sessions_active from /metrics (the BFF counts at most
  // every 15 s, so polling faster would show nothing new).
  async function refreshCount() {
    if (!token) return;
    try {
      const text = await api('GET', '/metrics');
      const m = /^bff_sessions_active (\S+)$/m.exec(text);
      $('active-count').textContent = m ? String(Number(m[1])) : 'n/a';
    } catch {
      $('active-count').textContent = '–';
    }
  }

  // A short device description from a User-Agent string.
  function device(ua) {
    if (!ua) return 'Unknown device';
    const browsers = [[/Edg\//, 'Edge'], [/OPR\//, 'Opera'], [/Firefox\//, 'Firefox'], [/HeadlessChrome\//, 'Headless Chrome'],
      [/Chrome\//, 'Chrome'], [/Version\/[\d.]+.*Safari\//, 'Safari'], [/curl\//, 'curl'], [/Go-http-client/, 'Go client']];
    const systems = [[/iPhone|iPad|iPod/, 'iOS'], [/Android/, 'Android'], [/Windows/, 'Windows'], [/Mac OS X|Macintosh/, 'macOS'],
      [/CrOS/, 'ChromeOS'], [/Linux/, 'Linux']];
    const b = browsers.find(([re]) => re.test(ua));
    const s = systems.find(([re]) => re.test(ua));
    if (b && s) return `${b[1]} on ${s[1]}`;
    if (b || s) return (b || s)[1];
    return 'Other client';
  }

  const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  function when(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '–' : dateFmt.format(d);
  }

  function cell(text, className) {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function render(sessions) {
    const tbody = $('sessions').querySelector('tbody');
    tbody.replaceChildren();
    for (const s of sessions) {
      const tr = document.createElement('tr');
      tr.dataset.handle = s.handle;
      tr.append(cell(s.handle, 'mono handle'));
      const dev = cell(device(s.userAgent), 'device');
      const ua = document.createElement('span');
      ua.className = 'sub-ua';
      ua.textContent = s.userAgent || '';
      ua.title = s.userAgent || '';
      dev.append(ua);
      tr.append(dev, cell(s.clientIp || '–', 'mono'), cell(when(s.created), 'time'), cell(when(s.lastSeen), 'time'), cell(when(s.expires), 'time'));
      const act = cell('', 'actions');
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'danger kill';
      btn.textContent = 'End session';
      btn.addEventListener('click', () => killOne(s));
      act.append(btn);
      tr.append(act);
      tbody.append(tr);
    }
    const n = sessions.length;
    $('results-title').textContent = `${n} session${n === 1 ? '' : 's'} of ${currentSub}`;
    show($('sessions'), n > 0);
    show($('empty'), n === 0);
    $('kill-all').disabled = n === 0;
    show($('results-card'), true);
  }

  async function search(sub) {
    currentSub = sub;
    const body = await api('GET', `/admin/sessions?sub=${encodeURIComponent(sub)}`);
    render(body.sessions || []);
  }

  // confirm shows the dialog and resolves to true if the operator confirms.
  function confirmDialog(title, text, action) {
    const dlg = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = action;
    dlg.returnValue = '';
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.showModal();
    });
  }

  async function killOne(s) {
    const ok = await confirmDialog('End this session?',
      `${device(s.userAgent)} session ${s.handle} of ${s.sub} will be signed out at once, its tokens revoked.`, 'End session');
    if (!ok) return;
    try {
      const r = await api('DELETE', `/admin/sessions/${encodeURIComponent(s.handle)}`);
      say(r.ended ? `Session ${s.handle} ended.` : `Session ${s.handle} had already ended.`);
      await search(currentSub);
      refreshCount();
    } catch (e) {
      say(e.message, true);
    }
  }

  async function killAll() {
    const sub = currentSub;
    const ok = await confirmDialog('End all sessions of this user?',
      `Every session of ${sub}, on every device, will be signed out at once and its tokens revoked.`, 'End all sessions');
    if (!ok) return;
    try {
      const r = await api('DELETE', `/admin/users/${encodeURIComponent(sub)}/sessions`);
      say(`${r.ended} session${r.ended === 1 ? '' : 's'} of ${sub} ended.`);
      await search(sub);
      refreshCount();
    } catch (e) {
      say(e.message, true);
    }
  }

  function lock() {
    token = null;
    currentSub = null;
    clearInterval(countTimer);
    $('sessions').querySelector('tbody').replaceChildren();
    $('active-count').textContent = '–';
    for (const id of ['search-card', 'results-card', 'active-box', 'lock', 'message']) show($(id), false);
    show($('unlock-card'), true);
    $('token').focus();
  }

  async function unlock(ev) {
    ev.preventDefault();
    const input = $('token');
    token = input.value.trim();
    input.value = ''; // the token leaves the DOM: only the variable holds it
    try {
      await api('GET', '/metrics');
    } catch (e) {
      say(e.message, true);
      return;
    }
    show($('unlock-card'), false);
    for (const id of ['search-card', 'active-box', 'lock']) show($(id), true);
    show($('message'), false);
    refreshCount();
    countTimer = setInterval(refreshCount, 15000);
    $('sub').focus();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('unlock-form').addEventListener('submit', unlock);
    $('search-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const sub = $('sub').value.trim();
      if (!sub) return;
      show($('message'), false);
      try {
        await search(sub);
      } catch (e) {
        say(e.message, true);
      }
    });
    $('kill-all').addEventListener('click', killAll);
    $('lock').addEventListener('click', lock);
    $('token').focus();
  });
})();
