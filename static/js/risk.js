/* Risk page: limits and usage as gauges per scope, kill switch (with confirmation), overrides with
   time left, adaptive sizing history. Data from /api/v1/risk/, live via TP events (no polling). */
(function () {
  'use strict';
  const $ = (sel) => document.querySelector(sel);
  const esc = TP.esc;
  let target = '';          // selected deployment id ('' = me)
  let overview = null;
  let overrides = [];

  const num = (v) => (v === null || v === undefined ? '—' : Number(v).toLocaleString(undefined, {maximumFractionDigits: 4}));
  const targetOf = (key) => (key === 'global' ? null : Number(key.split(':')[1]));
  const gaugeClass = (r) => (r === null ? '' : r >= 1 ? 'bad' : r >= 0.8 ? 'warn' : 'good');

  function scopeOptions(select) {
    const keep = select.value;
    select.innerHTML = (overview ? overview.scopes : []).map((s) =>
      `<option value="${esc(s.scope)}|${esc(s.key)}">${esc(s.label)}</option>`).join('');
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
    else if (select.options.length) select.selectedIndex = select.options.length - 1;  // the most specific
  }

  function renderScopes() {
    const box = $('#rk-scopes');
    if (!overview) return;
    box.innerHTML = overview.scopes.map((s) => {
      const rows = s.limits.filter((l) => l.value !== null).map((l) => {
        const ratio = l.ratio === null ? null : Math.max(0, l.ratio);
        const width = ratio === null ? 0 : Math.min(100, ratio * 100);
        return `<div class="limit-row" data-limit="${esc(l.limit)}"><div class="limit-head"><span>${esc(l.label)}${l.overridden ? ' <span class="badge warn">override</span>' : ''}</span>
          <span class="num">${num(l.used)} / ${num(l.value)} <span class="muted small">${esc(l.unit)}</span></span></div>
          <div class="gauge ${gaugeClass(ratio)}" role="meter" aria-label="${esc(l.label)}" aria-valuemin="0" aria-valuemax="${esc(l.value)}" aria-valuenow="${l.used === null ? '' : esc(l.used)}"><div style="width:${width}%"></div></div></div>`;
      }).join('');
      const ks = s.kill_switch ? `<p class="badge bad">Kill switch active: ${esc(s.kill_switch.reason)}</p>` : '';
      const ov = s.overrides.length ? `<p class="small">Overrides: ${s.overrides.map((o) => `${esc(o.limit)} = ${num(o.value)}`).join(', ')}</p>` : '';
      return `<div class="card scope-card" data-scope="${esc(s.scope)}" data-key="${esc(s.key)}"><h3>${esc(s.label)}</h3>
        <p class="small muted">Equity ${num(s.equity)} · peak ${num(s.peak_equity)} · day start ${num(s.day_start_equity)}</p>${ks}${ov}
        ${rows || '<p class="muted small">No limit set at this scope.</p>'}</div>`;
    }).join('');
    const now = $('#rk-risk-now');
    now.textContent = overview.risk_per_trade_pct === null ? '' :
      `Risk per trade now: ${num(overview.risk_per_trade_pct)} % (${overview.risk_per_trade_source}).`;
    $('#rk-adaptive-now').textContent = overview.adaptive ? `Now: ${num(overview.adaptive.risk_pct)} % — ${overview.adaptive.reason}.` :
      (target ? (overview.risk_per_trade_source === 'override' ? 'Paused: a manual override of risk per trade applies.' : 'Not active for this deployment.') : '');
    scopeOptions($('#rk-trip-scope'));
    scopeOptions($('#rk-ov-scope'));
  }

  async function loadOverview() {
    overview = await TP.api(`/api/v1/risk/overview/${target ? `?deployment=${target}` : ''}`);
    renderScopes();
  }

  async function loadSwitches() {
    const data = await TP.api('/api/v1/risk/kill-switches/?page_size=20');
    const rows = data.results;
    const active = rows.filter((s) => s.active);
    const past = rows.filter((s) => !s.active).slice(0, 5);
    $('#rk-switches').innerHTML = (active.length ? active.map((s) => `<div class="killswitch active" data-id="${s.id}">
        <span class="badge bad">ACTIVE</span> <b>${esc(s.scope_label)}</b> — ${esc(s.reason)}
        <span class="muted small">${s.automatic ? 'automatic' : `by ${esc(s.tripped_by || 'system')}`}, ${TP.fmtTime(s.created_at)}${s.flatten ? ', positions closed' : ''}</span>
        <button class="small" data-release="${s.id}">Release…</button></div>`).join('')
      : '<p class="badge good" id="rk-no-switch">No kill switch active</p>') +
      (past.length ? `<details class="small"><summary>Recently released</summary><ul>${past.map((s) =>
        `<li>${esc(s.scope_label)}: ${esc(s.reason)} — released ${TP.fmtTime(s.released_at)} by ${esc(s.released_by || 'system')}: ${esc(s.release_reason)}</li>`).join('')}</ul></details>` : '');
  }

  function timeLeft(iso) {
    const s = (new Date(iso) - Date.now()) / 1000;
    return s <= 0 ? 'expired' : TP.fmtDuration(s);
  }
  function renderOverrides() {
    const body = $('#rk-overrides tbody');
    const active = overrides.filter((o) => o.active && new Date(o.expires_at) > Date.now());
    body.innerHTML = active.length ? active.map((o) => `<tr data-id="${o.id}"><td>${esc(o.scope_label)}</td><td>${esc(o.limit)}</td>
      <td class="num">${num(o.value)}</td><td>${esc(o.reason)}</td><td class="num" data-expires="${esc(o.expires_at)}">${timeLeft(o.expires_at)}</td>
      <td><button class="small" data-revoke="${o.id}">End now…</button></td></tr>`).join('')
      : '<tr><td colspan="6" class="muted">No active override.</td></tr>';
  }
  async function loadOverrides() {
    overrides = (await TP.api('/api/v1/risk/overrides/?page_size=100')).results;
    renderOverrides();
  }
  // The countdown is a clock on the page, not a request: expiry itself arrives as a live event.
  setInterval(() => document.querySelectorAll('#rk-overrides [data-expires]').forEach((td) => {
    td.textContent = timeLeft(td.dataset.expires);
    if (td.textContent === 'expired') { renderOverrides(); loadOverview(); }
  }), 1000);

  async function loadAdjustments() {
    const body = $('#rk-adjustments tbody');
    if (!target) { body.innerHTML = '<tr><td colspan="4" class="muted">Choose a deployment above to see its history.</td></tr>'; return; }
    const rows = (await TP.api(`/api/v1/risk/adjustments/?deployment=${target}&page_size=50`)).results;
    body.innerHTML = rows.length ? rows.map((a) => `<tr><td class="small">${TP.fmtTime(a.time)}</td><td>${a.deployment}</td>
      <td class="num">${a.risk_before_pct === null ? '' : `${num(a.risk_before_pct)} → `}${num(a.risk_after_pct)} %</td>
      <td class="small">${esc(a.reason)}<br><span class="muted">${esc(Object.entries(a.inputs || {}).map(([k, v]) => `${k}=${v}`).join(' · '))}</span></td></tr>`).join('')
      : '<tr><td colspan="4" class="muted">No adjustment yet.</td></tr>';
  }

  function confirmDialog(text) {
    const dlg = $('#rk-confirm');
    $('#rk-confirm-text').textContent = text;
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), {once: true});
      dlg.showModal();
    });
  }
  const splitScope = (value) => { const [scope, key] = value.split('|'); return {scope, target: targetOf(key)}; };

  $('#rk-trip-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const {scope, target: t} = splitScope($('#rk-trip-scope').value);
    const reason = $('#rk-trip-reason').value.trim();
    if (!reason) { TP.toast('Say why: a kill switch needs a reason.', 'bad'); return; }
    const label = $('#rk-trip-scope').selectedOptions[0].textContent;
    const flatten = $('#rk-trip-flatten').checked;
    if (!await confirmDialog(`Trip the kill switch for ${label}? New entries stop at once and open entry orders are cancelled${flatten ? '; positions are closed' : ''}.`)) return;
    await TP.api('/api/v1/risk/kill-switches/', {method: 'POST', body: {scope, target: t, reason, flatten}});
    $('#rk-trip-reason').value = '';
    TP.toast(`Kill switch tripped: ${label}`, 'ok');
    refresh();
  });

  $('#rk-switches').addEventListener('click', async (ev) => {
    const id = ev.target.dataset.release;
    if (!id) return;
    const reason = window.prompt('Why release the kill switch? (recorded in the audit trail)');
    if (!reason || !reason.trim()) return;
    await TP.api(`/api/v1/risk/kill-switches/${id}/release/`, {method: 'POST', body: {reason}});
    TP.toast('Kill switch released', 'ok');
    refresh();
  });

  $('#rk-ov-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const {scope, target: t} = splitScope($('#rk-ov-scope').value);
    const hours = parseFloat($('#rk-ov-hours').value);
    const body = {scope, target: t, limit: $('#rk-ov-limit').value, value: $('#rk-ov-value').value,
      reason: $('#rk-ov-reason').value.trim()};
    if (hours > 0) body.expires_at = new Date(Date.now() + hours * 3600e3).toISOString();
    await TP.api('/api/v1/risk/overrides/', {method: 'POST', body});
    $('#rk-ov-reason').value = '';
    refresh();
  });

  $('#rk-overrides').addEventListener('click', async (ev) => {
    const id = ev.target.dataset.revoke;
    if (!id) return;
    const reason = window.prompt('Why end this override now?');
    if (!reason || !reason.trim()) return;
    await TP.api(`/api/v1/risk/overrides/${id}/revoke/`, {method: 'POST', body: {reason}});
    refresh();
  });

  async function loadTargets() {
    const data = await TP.api('/api/v1/trading/deployments/?page_size=100');
    const sel = $('#rk-target');
    sel.innerHTML += data.results.map((d) => `<option value="${d.id}">${esc(d.name || `Deployment ${d.id}`)} (${esc(d.state)})</option>`).join('');
    const wanted = new URLSearchParams(location.search).get('deployment');
    if (wanted && [...sel.options].some((o) => o.value === wanted)) { sel.value = wanted; target = wanted; }
  }
  $('#rk-target').addEventListener('change', (ev) => {
    if (target) TP.unsubscribe(`deployment-${target}`);
    target = ev.target.value;
    if (target) TP.subscribe(`deployment-${target}`);
    const url = new URL(location.href);
    if (target) url.searchParams.set('deployment', target); else url.searchParams.delete('deployment');
    history.replaceState(null, '', url);
    refresh();
  });

  async function loadRuns() {
    const sel = $('#rk-bt-run');
    const runs = (await TP.api('/api/v1/backtests/?state=succeeded&page_size=50')).results;
    sel.innerHTML = runs.length ? runs.map((r) => `<option value="${r.id}">#${r.id} ${esc(r.name || r.strategy_key)} · ${esc(r.market_symbol)} ${esc(r.timeframe)}</option>`).join('')
      : '<option value="">No finished backtest yet</option>';
  }
  $('#rk-bt-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = $('#rk-bt-run').value;
    if (!id) return;
    const box = $('#rk-bt-result');
    box.innerHTML = '<p class="muted">Replaying…</p>';
    const d = await TP.api(`/api/v1/risk/backtest/${id}/`).catch((e) => { box.textContent = e.message; return null; });
    if (!d) return;
    const pctOf = (x) => (x === null || x === undefined ? '—' : `${num(100 * x)} %`);
    box.innerHTML = `<div class="scroll-x"><table class="grid small" id="rk-bt-table"><thead><tr><th></th><th class="num">Trades</th><th class="num">Final equity</th><th class="num">Return</th></tr></thead><tbody>
      <tr><th>As run (no limits)</th><td class="num">${num(d.without_limits.trades)}</td><td class="num">${num(d.without_limits.final_equity)}</td><td class="num">${pctOf(d.without_limits.total_return)}</td></tr>
      <tr><th>With the limits of ${esc(d.limits_of.join(' + '))}</th><td class="num">${num(d.with_limits.trades)}</td><td class="num">${num(d.with_limits.final_equity)}</td><td class="num">${pctOf(d.with_limits.total_return)}</td></tr></tbody></table></div>
      <p class="small">Entries approved ${d.entries.approved}, resized ${d.entries.resized}, rejected ${d.entries.rejected}${Object.keys(d.by_limit).length ? ` — by limit: ${esc(Object.entries(d.by_limit).map(([k, v]) => `${k} ${v}`).join(', '))}` : ''}.${d.halted ? ` <b>${esc(d.halted)}</b>` : ''}</p>
      ${d.examples.length ? `<details class="small"><summary>First decisions that changed an entry</summary><ul>${d.examples.map((e) => `<li>${TP.fmtTime(e.time)}: ${esc(e.outcome)} ${esc(e.requested)} → ${esc(e.allowed)} — ${esc(e.reasons.join('; '))}</li>`).join('')}</ul></details>` : ''}
      <p class="muted small">Not simulated: ${esc(d.not_simulated.join(', '))}.</p>`;
  });

  function refresh() {
    return Promise.all([loadOverview(), loadSwitches(), loadOverrides(), loadAdjustments()]).catch((e) => console.error(e));
  }
  // Live: any risk event, and the positions, fills and equity ticks that move usage.
  let pending = null;
  const soon = () => { clearTimeout(pending); pending = setTimeout(refresh, 150); };
  ['risk.killswitch.tripped', 'risk.killswitch.released', 'risk.override.created', 'risk.override.ended',
    'risk.profile.updated', 'risk.sizing.adjusted', 'trading.position.updated', 'trading.portfolio.tick',
    'trading.order.updated'].forEach((t) => TP.on(t, soon));
  TP.on('risk.killswitch.tripped', (m) => TP.toast(`Kill switch tripped: ${m.data.label} — ${m.data.reason}`, 'bad'));
  TP.onResync(refresh);
  TP.subscribe('risk-global');
  loadRuns().catch((e) => console.error(e));
  loadTargets().then(() => { if (target) TP.subscribe(`deployment-${target}`); return refresh(); });
})();
