/* Alerts on every page: a live toast for each new alert, and the unread count in the top bar.
 *
 * The count comes from /api/v1/alerts/summary/ on load, after every alert event and after a
 * reconnect (no polling). TP.onUnread(fn) lets a page follow the count too.
 */
(function () {
  'use strict';
  if (!window.TP) return;
  const listeners = [];
  const badge = document.getElementById('alert-unread');
  let pending = null;

  function show(n) {
    if (badge) {
      badge.textContent = String(n);
      badge.dataset.count = String(n);
      badge.classList.toggle('bad', n > 0);
      badge.parentElement.title = `${n} unread alert${n === 1 ? '' : 's'}`;
    }
    listeners.forEach((fn) => { try { fn(n); } catch (e) { console.error(e); } });
  }
  function refresh() {
    clearTimeout(pending);  // a burst of events: one request
    pending = setTimeout(async () => {
      try { show((await TP.api('/api/v1/alerts/summary/', {quiet: true})).unread); } catch (e) { /* signed out */ }
    }, 150);
  }
  function toast(a) {
    const box = document.getElementById('toasts');
    if (!box) return;
    const div = document.createElement('div');
    div.className = `toast alert-toast toast-${a.severity === 'critical' || a.severity === 'error' ? 'bad' : 'info'}`;
    div.setAttribute('role', a.severity === 'critical' ? 'alert' : 'status');
    div.dataset.alertId = a.id;
    const strong = document.createElement('b');
    strong.textContent = `${a.severity.toUpperCase()}: ${a.title}`;
    div.appendChild(strong);
    if (a.message) { div.appendChild(document.createElement('br')); div.appendChild(document.createTextNode(a.message)); }
    div.appendChild(document.createElement('br'));
    const link = document.createElement('a');
    link.href = '/alerts/';
    link.textContent = 'Open the alert centre';
    div.appendChild(link);
    div.onclick = (e) => { if (e.target !== link) div.remove(); };
    box.appendChild(div);
    setTimeout(() => div.remove(), a.severity === 'critical' ? 60000 : 15000);
  }

  TP.onUnread = (fn) => listeners.push(fn);
  TP.on('alerts.alert.raised', (m) => { toast(m.data); refresh(); });
  for (const t of ['updated', 'acknowledged', 'resolved']) TP.on(`alerts.alert.${t}`, refresh);
  TP.onResync(refresh);
  refresh();
})();
