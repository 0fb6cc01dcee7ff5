/* Trading pages: portfolio overview, deployment, account.
 *
 * The server renders every part of a page (one template each); this script keeps them live. Each
 * WebSocket event names what it touched, and the parts showing that are re-rendered by asking
 * the page's own URL for them (?part=<name>). Nothing polls. Actions open a dialog that asks
 * for the reason every state change and manual action is recorded with, then call the API.
 */
(function () {
  'use strict';
  const timers = {};

  async function loadPart(name) {
    const el = document.querySelector(`[data-part="${name}"]`);
    if (!el) return;
    const url = new URL(location.href);
    url.searchParams.set('part', name);
    const resp = await fetch(url, {credentials: 'same-origin', headers: {Accept: 'text/html'}});
    if (!resp.ok) return;
    // keep open order rows open across a refresh
    const open = new Set([...el.querySelectorAll('details[open][data-order]')].map((x) => x.dataset.order));
    el.innerHTML = await resp.text();
    open.forEach((id) => { const row = el.querySelector(`details[data-order="${id}"]`); if (row) row.open = true; });
    el.dispatchEvent(new CustomEvent('tp:part', {bubbles: true, detail: name}));
  }

  // Many events may arrive together (a fill, its order, the position, the tick): one reload per part.
  function refresh(names) {
    names.forEach((name) => {
      clearTimeout(timers[name]);
      timers[name] = setTimeout(() => loadPart(name).catch(console.error), 150);
    });
  }

  // ---- equity chart ---------------------------------------------------------------------------
  // Equity at each tick (snapshots); on a deployment page also the closed trades' equity, live
  // against the replay of the same bars (from the tracking error: the backtest of this period).
  function chart() {
    const el = document.getElementById('equity-chart');
    if (!el || !window.Plotly) return {tick() {}, fill() {}};
    let history = null;
    let curves = null;
    function draw() {
      const empty = !history || !history.time.length;
      document.getElementById('equity-empty').hidden = !empty;
      el.hidden = empty;
      if (empty) return;
      el.dataset.points = history.points;
      const x = history.time.map((t) => new Date(t));
      const traces = [{x, y: history.equity, name: `Equity (${history.quote})`, type: 'scatter',
        mode: history.points > 1 ? 'lines' : 'markers', line: {color: '#1f6feb'}}];
      if (curves) {
        traces.push({x: curves.replay.time.map((t) => new Date(t)), y: curves.replay.equity, name: 'Replay of the same bars (closed trades)',
          type: 'scatter', mode: 'lines', line: {color: '#b7791f', dash: 'dash', shape: 'hv'}});
        traces.push({x: curves.live.time.map((t) => new Date(t)), y: curves.live.equity, name: 'Live (closed trades)',
          type: 'scatter', mode: 'lines', line: {color: '#1a7f37', shape: 'hv'}});
      } else if (el.dataset.capital) {
        traces.push({x: [x[0], x[x.length - 1]], y: [Number(el.dataset.capital), Number(el.dataset.capital)], name: 'Capital',
          type: 'scatter', mode: 'lines', line: {color: '#98a2b3', dash: 'dot'}});
      }
      Plotly.react(el, traces, {margin: {t: 10, r: 10, l: 60, b: 40}, legend: {orientation: 'h'}, yaxis: {title: history.quote}},
        {responsive: true, displaylogo: false});
    }
    async function loadHistory() {
      const data = await TP.api(el.dataset.historyUrl, {quiet: true}).catch(() => null);
      if (data) { history = data; draw(); }
    }
    async function loadCurves() {
      if (!el.dataset.curvesUrl) return;
      const data = await TP.api(el.dataset.curvesUrl, {quiet: true}).catch(() => null);
      if (data) { curves = data.closed_trade_curves; el.dataset.curves = curves ? 'yes' : 'no'; draw(); }
    }
    loadHistory(); loadCurves();
    const timers = {};
    const later = (key, fn) => () => { clearTimeout(timers[key]); timers[key] = setTimeout(fn, 150); };
    return {tick: later('h', loadHistory), fill: later('c', loadCurves)};
  }

  // ---- actions ----------------------------------------------------------------------------------
  const dialog = () => document.getElementById('reason-dialog');
  let pending = null;

  function ask(button) {
    const dlg = dialog();
    pending = button;
    dlg.querySelector('#reason-title').textContent = button.dataset.title || 'Why?';
    dlg.querySelector('#reason-help').textContent = button.dataset.help || '';
    dlg.querySelector('#reason-text').value = '';
    dlg.querySelector('#reason-error').textContent = '';
    const stop = button.dataset.verb === 'stop';
    dlg.querySelector('#reason-exit-row').hidden = !stop;
    if (stop) dlg.querySelector('#reason-exit').value = button.dataset.exitPolicy || 'keep';
    dlg.showModal();
    dlg.querySelector('#reason-text').focus();
  }

  async function confirm(ev) {
    ev.preventDefault();
    const dlg = dialog();
    const reason = dlg.querySelector('#reason-text').value.trim();
    if (!reason) { dlg.querySelector('#reason-error').textContent = 'Say why: the reason is recorded with the action.'; return; }
    const body = {reason};
    if (pending.dataset.verb === 'stop') body.exit_policy = dlg.querySelector('#reason-exit').value;
    const submit = dlg.querySelector('#reason-submit');
    submit.disabled = true;
    try {
      await TP.api(pending.dataset.url, {method: 'POST', body, quiet: true});
      dlg.close();
      TP.toast(`${pending.dataset.title}: done.`, 'ok');
      refresh(allParts());
    } catch (e) {
      dlg.querySelector('#reason-error').textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  }

  async function testConnection(button) {
    button.disabled = true;
    const out = document.getElementById('test-result');
    out.textContent = 'Testing…';
    try {
      const r = await TP.api(button.dataset.url, {method: 'POST', body: {}, quiet: true});
      out.textContent = r.error ? `Failed: ${r.error}` : (r.warnings.length ? r.warnings.join(' ') : 'Connection OK.');
      refresh(['status']);
    } catch (e) {
      out.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  function allParts() { return [...document.querySelectorAll('[data-part]')].map((el) => el.dataset.part); }

  function wireActions() {
    document.addEventListener('click', (ev) => {
      const button = ev.target.closest('[data-action]');
      if (!button) return;
      ev.preventDefault();
      if (button.dataset.action === 'test-connection') testConnection(button);
      else ask(button);
    });
    const form = document.getElementById('reason-form');
    if (form) {
      form.addEventListener('submit', confirm);
      document.getElementById('reason-cancel').addEventListener('click', () => dialog().close());
    }
  }

  // ---- pages ------------------------------------------------------------------------------------
  function follow(topics, routes, isMine, plot) {
    topics.forEach((t) => TP.subscribe(t));
    Object.entries(routes).forEach(([type, parts]) => TP.on(type, (m) => {
      if (!isMine(m)) return;
      refresh(parts);
      if (type === 'trading.portfolio.tick') plot.tick();
      if (type === 'trading.fill.recorded') { plot.tick(); plot.fill(); }
    }));
    TP.onResync(() => { refresh(allParts()); plot.tick(); plot.fill(); });
    wireActions();
  }

  function overview(topics) {
    const plot = chart();
    follow(topics, {
      'trading.deployment.updated': ['deployments', 'totals'],
      'trading.order.updated': ['deployments'],
      'trading.fill.recorded': ['fills', 'positions', 'totals'],
      'trading.position.updated': ['positions', 'totals'],
      'trading.portfolio.tick': ['totals', 'deployments', 'positions'],
      'trading.account.updated': ['accounts'],
    }, () => true, plot);
    // a new deployment or account appears without a reload
    TP.on('trading.deployment.updated', (m) => { if (m.data.id) TP.subscribe(`deployment-${m.data.id}`); });
    forms();
  }

  function deployment(id) {
    const plot = chart();
    const mine = (m) => (m.type === 'trading.deployment.updated' ? m.data.id : m.data.deployment) === id;
    follow([`deployment-${id}`], {
      'trading.deployment.updated': ['header', 'notices', 'orders', 'fills'],
      'trading.order.updated': ['orders', 'notices', 'header'],
      'trading.fill.recorded': ['fills', 'position', 'figures', 'header', 'tracking'],
      'trading.position.updated': ['position', 'figures', 'header'],
      'trading.portfolio.tick': ['figures', 'position'],
    }, mine, plot);
    TP.on('trading.account.updated', () => refresh(['notices']));
  }

  function account(id, topics) {
    follow(topics, {
      'trading.account.updated': ['status'],
      'trading.deployment.updated': ['deployments', 'status'],
      'trading.portfolio.tick': ['deployments'],
    }, (m) => (m.type !== 'trading.account.updated' || m.data.id === id), {tick() {}, fill() {}});
  }

  // ---- creating a paper account and a deployment (overview) --------------------------------------
  function forms() {
    const paper = document.getElementById('paper-form');
    if (paper) {
      paper.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const err = document.getElementById('paper-error');
        err.textContent = '';
        try {
          const a = await TP.api('/api/v1/trading/accounts/', {method: 'POST', quiet: true, body: {
            name: document.getElementById('paper-name').value, exchange: Number(document.getElementById('paper-exchange').value),
            mode: 'paper', paper_balance: document.getElementById('paper-balance').value,
            paper_currency: document.getElementById('paper-currency').value}});
          location.href = `/trading/accounts/${a.id}/`;
        } catch (e) { err.textContent = e.message; }
      });
    }
    const deploy = document.getElementById('deploy-form');
    if (deploy) {
      deploy.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const err = document.getElementById('deploy-error');
        err.textContent = '';
        const body = {config: Number(document.getElementById('deploy-config').value),
          account: Number(document.getElementById('deploy-account').value),
          capital: document.getElementById('deploy-capital').value, exit_policy: document.getElementById('deploy-exit').value};
        const name = document.getElementById('deploy-name').value.trim();
        if (name) body.name = name;
        try {
          const d = await TP.api('/api/v1/trading/deployments/', {method: 'POST', quiet: true, body});
          location.href = `/trading/deployments/${d.id}/`;
        } catch (e) { err.textContent = e.message; }
      });
    }
  }

  window.TPTrading = {overview, deployment, account, refresh};
})();
