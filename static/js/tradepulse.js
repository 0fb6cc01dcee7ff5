/* TradePulse dashboard client: one live WebSocket, an API helper, formatting.
 *
 * TP.on(type, fn)       handle live events of a type ("*" for all)
 * TP.subscribe(topic)   follow a topic (e.g. "backtest-42"); re-joined after every reconnect
 * TP.onResync(fn)       run after a reconnect, to re-read state missed while offline
 * TP.api(path, opts)    fetch JSON with CSRF; errors shown as a toast with the request id
 * Connection indicator: green = live, amber = connecting/reconnecting, red = offline or signed
 * out (the server closed with 4401: no more retries, a "Log in again" link instead).
 */
(function () {
  'use strict';
  const handlers = {};
  const topics = new Set();
  const resyncs = [];
  const seen = new Set();
  const seenOrder = [];
  let socket = null;
  let attempt = 0;
  let everConnected = false;
  let retryTimer = null;

  const body = document.body;
  const tz = body.dataset.timezone || 'UTC';

  function setConn(state, label) {
    const el = document.getElementById('conn');
    if (!el) return;
    el.dataset.state = state;
    el.querySelector('.conn-label').textContent = label;
    el.title = 'Live connection: ' + label;
  }

  function dispatch(msg) {
    if (msg.id) {
      if (seen.has(msg.id)) return;
      seen.add(msg.id); seenOrder.push(msg.id);
      if (seenOrder.length > 1000) seen.delete(seenOrder.shift());
    }
    (handlers[msg.type] || []).concat(handlers['*'] || []).forEach((fn) => {
      try { fn(msg); } catch (e) { console.error(e); }
    });
  }

  function connect() {
    clearTimeout(retryTimer);
    setConn('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/ws/events/`);
    socket.onopen = () => {
      topics.forEach((t) => socket.send(JSON.stringify({action: 'subscribe', topic: t})));
    };
    socket.onmessage = (ev) => { try { dispatch(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
    socket.onclose = (ev) => {
      // 4400-4499: the server refused us (4401 = not signed in); retrying cannot help.
      if (ev.code >= 4400 && ev.code < 4500) { refused(ev.code); return; }
      attempt += 1;
      // Exponential backoff with jitter, capped at 30 s.
      const delay = Math.min(30000, 1000 * 2 ** Math.min(attempt - 1, 5)) * (0.75 + Math.random() * 0.5);
      setConn(attempt > 3 ? 'offline' : 'connecting', attempt > 3 ? `Offline — retrying in ${Math.round(delay / 1000)} s` : 'Reconnecting…');
      retryTimer = setTimeout(connect, delay);
    };
  }

  function refused(code) {
    socket = null;
    const signedOut = code === 4401;
    setConn(signedOut ? 'signed-out' : 'offline', signedOut ? 'Signed out' : 'Not allowed');
    const box = document.getElementById('toasts');
    if (!box || document.getElementById('signed-out')) return;
    const div = document.createElement('div');
    div.id = 'signed-out';
    div.className = 'toast toast-bad';
    div.setAttribute('role', 'alert');
    div.textContent = signedOut ? 'You are signed out: live updates have stopped. '
      : 'The server refused live updates for this session. ';
    const link = document.createElement('a');
    link.href = (body.dataset.loginUrl || '/login/') + '?next=' + encodeURIComponent(location.pathname + location.search);
    link.textContent = 'Log in again';
    div.appendChild(link);
    box.appendChild(div);
  }

  function csrfToken() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : '';
  }

  async function api(path, opts = {}) {
    const init = {method: opts.method || 'GET', headers: {Accept: 'application/json'}, credentials: 'same-origin'};
    if (opts.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    if (init.method !== 'GET') init.headers['X-CSRFToken'] = csrfToken();
    const resp = await fetch(path, init);
    if (resp.status === 204) return null;
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const err = (data && data.error) || {};
      const text = `${err.message || resp.statusText}${err.request_id ? ` (request ${err.request_id.slice(0, 12)})` : ''}`;
      if (!opts.quiet) toast(text, 'bad');
      const e = new Error(text); e.status = resp.status; e.data = data; throw e;
    }
    return data;
  }

  function toast(text, kind = 'info', ms = 8000) {
    const box = document.getElementById('toasts');
    if (!box) return;
    const div = document.createElement('div');
    div.className = `toast toast-${kind}`;
    div.setAttribute('role', kind === 'bad' ? 'alert' : 'status');
    div.textContent = text;
    div.onclick = () => div.remove();
    box.appendChild(div);
    if (ms) setTimeout(() => div.remove(), ms);
  }

  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
  const dtf = new Intl.DateTimeFormat(undefined, {timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
  const fmtTime = (iso) => (iso ? dtf.format(new Date(iso)) : '—');
  const fmtNum = (n, digits = 2) => (n === null || n === undefined || Number.isNaN(n) ? '—' :
    Number(n).toLocaleString(undefined, {minimumFractionDigits: digits, maximumFractionDigits: digits}));
  const fmtPct = (x, digits = 2) => (x === null || x === undefined ? '—' : fmtNum(100 * x, digits) + ' %');
  const fmtDuration = (s) => {
    if (s === null || s === undefined || !isFinite(s)) return '—';
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${sec} s` : `${sec} s`;
  };
  // <input type="datetime-local"> values are in the user's zone; the API wants UTC ISO.
  function localInputToIso(value) {
    const [d, t] = value.split('T');
    const [y, mo, da] = d.split('-').map(Number); const [h, mi] = t.split(':').map(Number);
    const guess = Date.UTC(y, mo - 1, da, h, mi);
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {timeZone: tz, hourCycle: 'h23', year: 'numeric',
      month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit'}).formatToParts(new Date(guess)).map((p) => [p.type, p.value]));
    const asShown = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute);
    return new Date(guess - (asShown - guess)).toISOString();
  }

  function renderHealthSummary(el, data) {
    if (!el || !data || !data.components) return;
    const down = Object.entries(data.components).filter(([, c]) => c.status !== 'ok').map(([n]) => n);
    el.innerHTML = data.status === 'ok'
      ? '<span class="badge good">All systems ready</span>'
      : `<span class="badge bad">Degraded</span> ${down.map(esc).join(', ')} down`;
  }

  // The live event feed on pages that have one.
  function feed(msg) {
    const list = document.getElementById('event-feed');
    if (!list || msg.type.startsWith('system.')) return;
    const li = document.createElement('li');
    li.className = 'event';
    li.innerHTML = `<span class="muted">${fmtTime(msg.ts)}</span> <code>${esc(msg.type)}</code> <span class="event-data">${esc(summarise(msg.data))}</span>`;
    list.prepend(li);
    while (list.children.length > 50) list.lastChild.remove();
  }
  function summarise(data) {
    if (!data || typeof data !== 'object') return String(data ?? '');
    return data.message || data.title || Object.entries(data).slice(0, 6).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
  }

  window.TP = {
    on(type, fn) { (handlers[type] = handlers[type] || []).push(fn); },
    subscribe(topic) {
      topics.add(topic);
      if (socket && socket.readyState === 1) socket.send(JSON.stringify({action: 'subscribe', topic}));
    },
    unsubscribe(topic) {
      topics.delete(topic);
      if (socket && socket.readyState === 1) socket.send(JSON.stringify({action: 'unsubscribe', topic}));
    },
    onResync(fn) { resyncs.push(fn); },
    api, toast, esc, fmtTime, fmtNum, fmtPct, fmtDuration, localInputToIso, renderHealthSummary, tz,
    get state() { const el = document.getElementById('conn'); return el ? el.dataset.state : null; },
  };
  TP.on('*', feed);
  // Live only once the server greets a signed-in user; an open socket may still be refused (4401).
  TP.on('system.hello', () => {
    attempt = 0;
    setConn('live', 'Live');
    if (everConnected) resyncs.forEach((fn) => { try { fn(); } catch (e) { console.error(e); } });
    everConnected = true;
  });
  TP.on('system.error', (m) => toast(m.data.message, 'bad'));
  // alerts.alert.* (toast, unread count): static/js/alerts.js
  if (body.dataset.authenticated === '1') connect();
})();
