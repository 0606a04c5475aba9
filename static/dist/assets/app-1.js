// Minimal demo page: everything goes through the BFF on this origin with
// the X-CSRF header; the page never sees a token.
const $ = (id) => document.getElementById(id);

async function bff(path) {
  const res = await fetch(path, { headers: { 'X-CSRF': '1' }, credentials: 'same-origin' });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}

async function refresh() {
  const { status, body } = await bff('/bff/user');
  if (status === 200) {
    $('status').textContent = `Signed in as ${body.preferred_username || body.sub}`;
    $('user').textContent = JSON.stringify(body, null, 2);
    $('logout').href = body.logoutUrl;
    $('logout').hidden = false;
    $('whoami').hidden = false;
    $('login').hidden = true;
    watch();
  } else {
    $('status').textContent = status === 401 ? `Not signed in (${body.error})` : `Error ${status}`;
    $('user').textContent = JSON.stringify(body, null, 2);
    $('login').hidden = false;
    $('logout').hidden = true;
    $('whoami').hidden = true;
  }
}

let events;
function watch() {
  if (events) return;
  events = new EventSource('/bff/session/events');
  events.addEventListener('session-ended', (e) => {
    events.close();
    events = undefined;
    $('status').textContent = `Session ended (${JSON.parse(e.data).cause})`;
    refresh();
  });
}

$('whoami').addEventListener('click', async () => {
  const { status, body } = await bff('/api/whoami');
  $('api').textContent = `${status}\n` + JSON.stringify(body, null, 2);
});

refresh();
