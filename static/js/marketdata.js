/* Market data page: start downloads, live progress, coverage timeline, fill gaps, chart, issues.
 * Data from /api/v1/ (exchanges, markets, download-jobs, coverage, candles, quality-issues);
 * live updates from marketdata.download.* events; everything re-read after a reconnect.
 */
(function () {
  'use strict';
  const $ = (sel) => document.querySelector(sel);
  const esc = TP.esc;
  const exchanges = new Map();
  let markets = new Map(); // symbol -> market of the selected exchange
  const jobs = new Map();
  let coverage = [];

  // --- time helpers --------------------------------------------------------------------------
  const plotFmt = new Intl.DateTimeFormat('sv-SE', {timeZone: TP.tz, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
  const plotTime = (ms) => plotFmt.format(new Date(ms)).replace(',', '');
  const isoMs = (ms) => new Date(ms).toISOString();
  function toLocalInput(ms) { return plotTime(ms).slice(0, 16).replace(' ', 'T'); }

  // --- exchanges, markets, form ----------------------------------------------------------------
  async function loadExchanges() {
    const data = await TP.api('/api/v1/exchanges/?is_file_source=false&active=true&page_size=200');
    const select = $('#md-exchange');
    if (!select) return;
    const keep = select.value;
    exchanges.clear();
    select.innerHTML = '';
    for (const ex of data.results) {
      exchanges.set(String(ex.id), ex);
      select.insertAdjacentHTML('beforeend', `<option value="${ex.id}">${esc(ex.name)} (${esc(ex.code)})</option>`);
    }
    const preferred = keep || [...exchanges.values()].find((e) => e.code === 'binance')?.id || data.results[0]?.id;
    if (preferred) select.value = String(preferred);
    await loadMarkets();
  }

  async function loadMarkets() {
    const ex = exchanges.get($('#md-exchange').value);
    const hint = $('#md-market-hint');
    markets = new Map();
    const list = $('#md-markets');
    list.innerHTML = '';
    if (!ex) return;
    const tfSelect = $('#md-timeframe');
    const keepTf = tfSelect.value || '1m';
    tfSelect.innerHTML = (ex.timeframes || []).map((tf) => `<option>${esc(tf)}</option>`).join('');
    if ((ex.timeframes || []).includes(keepTf)) tfSelect.value = keepTf;
    const data = await TP.api(`/api/v1/markets/?exchange=${ex.id}&active=true&page_size=500`);
    for (const m of data.results) {
      markets.set(m.symbol, m);
      list.insertAdjacentHTML('beforeend', `<option value="${esc(m.symbol)}">${esc(m.base)} / ${esc(m.quote)} · ${esc(m.type)}</option>`);
    }
    hint.textContent = data.count
      ? `${data.count} market(s) known${ex.markets_loaded_at ? `, loaded ${TP.fmtTime(ex.markets_loaded_at)}` : ''}.`
      : `No markets of ${ex.name} loaded yet: load them, or type a symbol (they are loaded when needed).`;
  }

  async function loadMarketsFromExchange() {
    const ex = exchanges.get($('#md-exchange').value);
    if (!ex) return;
    const button = $('#md-load-markets');
    button.disabled = true;
    $('#md-market-hint').textContent = `Loading markets from ${ex.name}…`;
    try {
      const result = await TP.api(`/api/v1/exchanges/${ex.id}/load-markets/`, {method: 'POST', quiet: true});
      exchanges.set(String(ex.id), result.exchange);
      await loadMarkets();
      TP.toast(`${ex.name}: ${result.markets} markets (${result.created} new).`, 'ok');
    } catch (e) {
      $('#md-market-hint').textContent = '';
      showError(e.message);
    } finally { button.disabled = false; }
  }

  function showError(text) { $('#download-error').textContent = text || ''; }

  async function submit(ev) {
    ev.preventDefault();
    showError('');
    const ex = exchanges.get($('#md-exchange').value);
    const symbol = $('#md-symbol').value.trim().toUpperCase();
    const timeframe = $('#md-timeframe').value;
    const start = $('#md-start').value, end = $('#md-end').value;
    const missing = [!ex && 'an exchange', !symbol && 'a market', !timeframe && 'a timeframe', !start && 'a start', !end && 'an end'].filter(Boolean);
    if (missing.length) { showError(`Pick ${missing.join(', ')}.`); return; }
    const body = {timeframe, start: TP.localInputToIso(start), end: TP.localInputToIso(end)};
    const market = markets.get(symbol);
    if (market) body.market = market.id; else { body.exchange = ex.id; body.symbol = symbol; }
    const button = $('#md-submit');
    button.disabled = true;
    try {
      const job = await TP.api('/api/v1/download-jobs/', {method: 'POST', body, quiet: true});
      upsertJob(job, true);
      TP.toast(`Download #${job.id} of ${job.symbol} ${job.timeframe} started.`, 'ok', 4000);
      if (!market) loadMarkets();
    } catch (e) {
      showError((e.data && e.data.error && e.data.error.message) || e.message);
      if (!market) loadMarkets(); // the server may have loaded the exchange's markets to check the symbol
    } finally { button.disabled = false; }
  }

  // --- jobs -------------------------------------------------------------------------------------
  const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
  const BADGE = {queued: 'info', running: 'info', succeeded: 'good', failed: 'bad', cancelled: 'warn'};

  function jobRow(j) {
    const active = !FINAL.has(j.state);
    const pct = Number(j.progress || 0);
    const eta = (j.state === 'running' || j.state === 'succeeded') && j.eta_seconds != null ? TP.fmtDuration(j.eta_seconds) : '—';
    const speed = j.candles_per_second ? `${TP.fmtNum(j.candles_per_second, 0)}/s` : '—';
    const note = j.error || j.message || '';
    return `<td>${j.id}${j.kind === 'fill' ? ' <small class="muted">fill</small>' : ''}</td>
      <td><b>${esc(j.symbol)}</b> ${esc(j.timeframe)}<br><small class="muted">${esc(j.exchange)}</small></td>
      <td class="small nowrap">${TP.fmtTime(j.start)}<br>→ ${TP.fmtTime(j.end)}</td>
      <td><span class="badge ${BADGE[j.state] || ''} job-state">${esc(j.state)}</span></td>
      <td><div class="job-bar"><div class="progress ${esc(j.state)}"><div style="width:${pct}%"></div></div>
        <span class="job-pct">${pct.toFixed(1)} %</span></div><small class="${j.error ? 'error' : 'muted'} job-message">${esc(note)}</small></td>
      <td class="num job-rows">${TP.fmtNum(j.rows_stored, 0)}${j.rows_rejected ? `<br><small class="error">${TP.fmtNum(j.rows_rejected, 0)} rejected</small>` : ''}</td>
      <td class="num job-speed">${speed}</td>
      <td class="num job-eta">${eta}</td>
      <td>${active ? `<button class="small danger" data-cancel="${j.id}">Cancel</button>` : ''}
          ${j.state === 'failed' || j.state === 'cancelled' ? `<button class="small" data-retry="${j.id}">Retry</button>` : ''}</td>`;
  }

  function upsertJob(j, prepend) {
    const prev = jobs.get(j.id);
    // Events can arrive out of order around a reconnect: never go back from a final state.
    // (A retry comes back as "queued"; a "running" with no new attempt is a stale event.)
    if (prev && FINAL.has(prev.state) && j.state === 'running' && j.attempts <= prev.attempts) return;
    jobs.set(j.id, j);
    const tbody = $('#jobs-table tbody');
    tbody.querySelector('tr.empty')?.remove();
    let tr = document.getElementById(`job-${j.id}`);
    if (!tr) {
      tr = document.createElement('tr');
      tr.id = `job-${j.id}`;
      if (prepend || !tbody.firstChild) tbody.prepend(tr); else tbody.appendChild(tr);
    }
    tr.dataset.state = j.state;
    tr.innerHTML = jobRow(j);
    if (FINAL.has(j.state) && (!prev || !FINAL.has(prev.state))) refreshSoon();
  }

  async function loadJobs() {
    const data = await TP.api('/api/v1/download-jobs/?page_size=20');
    const tbody = $('#jobs-table tbody');
    tbody.innerHTML = data.results.length ? '' : '<tr class="empty"><td colspan="9" class="muted">No downloads yet.</td></tr>';
    jobs.clear();
    data.results.forEach((j) => upsertJob(j, false));
  }

  async function jobAction(ev) {
    const cancel = ev.target.dataset.cancel, retry = ev.target.dataset.retry;
    if (!cancel && !retry) return;
    ev.target.disabled = true;
    try {
      const job = await TP.api(`/api/v1/download-jobs/${cancel || retry}/${cancel ? 'cancel' : 'retry'}/`, {method: 'POST'});
      upsertJob(job);
    } catch (e) { ev.target.disabled = false; }
  }

  // --- coverage ---------------------------------------------------------------------------------
  function seg(cls, a, b, lo, span, title) {
    const left = ((a - lo) / span) * 100, width = ((b - a) / span) * 100;
    return `<div class="seg ${cls}" style="left:${left}%;width:${width}%" title="${esc(title)}"></div>`;
  }

  function renderCoverage() {
    const box = $('#coverage');
    if (!coverage.length) {
      box.innerHTML = '<p class="muted">No candles stored yet. Start a download above.</p>';
      return;
    }
    box.innerHTML = coverage.map((c) => {
      const lo = c.first_ms, span = Math.max(1, c.end_ms - c.first_ms);
      const bars = c.ranges.map((r) => seg('covered', r.start_ms, r.end_ms, lo, span, `${TP.fmtTime(r.start)} → ${TP.fmtTime(r.end)}: ${r.candles} candles`)).join('')
        + c.gaps.map((g) => seg(`gap${g.exchange_has_no_data ? ' nodata' : ''}${g.before_retention ? ' retention' : ''}`, g.start_ms, g.end_ms, lo, span,
          `${g.exchange_has_no_data ? 'No data at the exchange' : g.before_retention ? 'Removed by retention' : 'Gap'}: ${TP.fmtTime(g.start)} → ${TP.fmtTime(g.end)} (${g.candles} candles)`)).join('');
      const gapList = c.gaps.slice(0, 12).map((g) => `<li>${TP.fmtTime(g.start)} → ${TP.fmtTime(g.end)}: ${TP.fmtNum(g.candles, 0)} missing
        ${g.exchange_has_no_data ? '<span class="badge">exchange has no data</span>' : g.before_retention ? '<span class="badge warn">retention</span>' : '<span class="badge bad">fillable</span>'}</li>`).join('');
      return `<div class="cov-series" data-series="${c.market}:${c.timeframe}">
        <div class="cov-head"><b>${esc(c.exchange_name)} ${esc(c.symbol)} ${esc(c.timeframe)}</b>
          <span class="grow muted cov-summary">${TP.fmtNum(c.candles, 0)} candles · ${TP.fmtTime(c.first)} → ${TP.fmtTime(c.end)} ·
            <span class="cov-gaps">${c.gaps.length} gap${c.gaps.length === 1 ? '' : 's'}</span>${c.missing_candles ? ` (${TP.fmtNum(c.missing_candles, 0)} candles missing)` : ''}</span>
          <button class="small" data-chart="${c.market}:${c.timeframe}">Chart</button>
          <button class="small primary" data-fill="${c.market}:${c.timeframe}" ${c.fillable_gaps ? '' : 'disabled'}>Fill gaps${c.fillable_gaps ? ` (${c.fillable_gaps})` : ''}</button></div>
        <div class="timeline">${bars}</div>
        ${c.gaps.length ? `<details><summary class="muted small">Gaps</summary><ul class="plain small">${gapList}${c.gaps.length > 12 ? `<li class="muted">… and ${c.gaps.length - 12} more</li>` : ''}</ul></details>` : ''}
      </div>`;
    }).join('');
  }

  async function loadCoverage() {
    coverage = await TP.api('/api/v1/coverage/');
    renderCoverage();
    const select = $('#chart-series');
    const keep = select.value;
    select.innerHTML = '<option value="">—</option>' + coverage.map((c) =>
      `<option value="${c.market}:${c.timeframe}">${esc(c.exchange_name)} ${esc(c.symbol)} ${esc(c.timeframe)}</option>`).join('');
    if (keep && coverage.some((c) => `${c.market}:${c.timeframe}` === keep)) select.value = keep;
    else if (coverage.length) select.value = `${coverage[0].market}:${coverage[0].timeframe}`;
    if (select.value) loadChart();
  }

  async function coverageAction(ev) {
    const fill = ev.target.dataset.fill, chart = ev.target.dataset.chart;
    if (chart) { $('#chart-series').value = chart; loadChart(); $('#chart-card').scrollIntoView({behavior: 'smooth'}); return; }
    if (!fill) return;
    const [market, timeframe] = fill.split(':');
    ev.target.disabled = true;
    try {
      const started = await TP.api('/api/v1/download-jobs/fill-gaps/', {method: 'POST', body: {market: Number(market), timeframe}});
      started.forEach((j) => upsertJob(j, true));
      TP.toast(started.length ? `Started ${started.length} job(s) to fill the gaps.` : 'Nothing to fill: the remaining gaps have no data at the exchange.', 'ok', 5000);
    } catch (e) { ev.target.disabled = false; }
  }

  // --- chart ------------------------------------------------------------------------------------
  async function loadChart() {
    const value = $('#chart-series').value;
    const box = $('#chart');
    if (!value) { Plotly.purge(box); box.innerHTML = '<div class="chart-empty">Pick a series with stored candles.</div>'; return; }
    const [market, timeframe] = value.split(':');
    const data = await TP.api(`/api/v1/candles/?market=${market}&timeframe=${timeframe}&limit=${$('#chart-count').value}`);
    const x = data.time.map(plotTime);
    box.querySelector('.chart-empty')?.remove(); // never wipe plotly's own nodes: react() would draw into nothing
    Plotly.react(box, [
      {type: 'candlestick', x, open: data.open, high: data.high, low: data.low, close: data.close, name: data.symbol,
       increasing: {line: {color: '#1a7f37'}}, decreasing: {line: {color: '#c62828'}}, yaxis: 'y'},
      {type: 'bar', x, y: data.volume, name: 'volume', marker: {color: '#98a2b3'}, yaxis: 'y2'},
    ], {
      margin: {l: 60, r: 20, t: 10, b: 40}, showlegend: false, dragmode: 'zoom',
      xaxis: {rangeslider: {visible: false}, type: 'date'},
      yaxis: {domain: [0.25, 1], title: {text: data.symbol}}, yaxis2: {domain: [0, 0.2], title: {text: 'volume'}},
    }, {responsive: true, displaylogo: false});
    $('#chart-info').textContent = data.count
      ? `${data.exchange} ${data.symbol} ${data.timeframe}: ${TP.fmtNum(data.count, 0)} candles, ${TP.fmtTime(isoMs(data.time[0]))} → ${TP.fmtTime(isoMs(data.time[data.count - 1]))}`
      : 'No candles stored for this series.';
  }

  // --- quality issues ---------------------------------------------------------------------------
  async function loadIssues() {
    const open = $('#issues-open').checked;
    const data = await TP.api(`/api/v1/quality-issues/?page_size=50${open ? '&resolved=false' : ''}`);
    const tbody = $('#issues-table tbody');
    tbody.innerHTML = data.results.length ? '' : `<tr><td colspan="7" class="muted">No ${open ? 'open ' : ''}quality issues.</td></tr>`;
    for (const i of data.results) {
      const tr = document.createElement('tr');
      const flags = [i.exchange_has_no_data ? '<span class="badge">exchange has no data</span>' : '',
        i.rejected ? '' : '<span class="badge warn">stored, flagged</span>', i.resolved_at ? '<span class="badge good">resolved</span>' : ''].join(' ');
      tr.innerHTML = `<td><code>${esc(i.kind)}</code></td><td>${esc(i.exchange)} ${esc(i.symbol)} ${esc(i.timeframe)}</td>
        <td class="small">${TP.fmtTime(i.start)}</td><td class="num">${TP.fmtNum(i.row_count, 0)}</td>
        <td>${esc(i.detail)} ${flags}</td><td class="small">${TP.fmtTime(i.detected_at)}</td>
        <td>${i.resolved_at ? '' : `<button class="small" data-resolve="${i.id}">Resolve</button>`}</td>`;
      tbody.appendChild(tr);
    }
    $('#issues-count').textContent = `${data.count} issue(s)`;
  }

  async function issueAction(ev) {
    const id = ev.target.dataset.resolve;
    if (!id) return;
    ev.target.disabled = true;
    try { await TP.api(`/api/v1/quality-issues/${id}/resolve/`, {method: 'POST', body: {}}); loadIssues(); loadCoverage(); }
    catch (e) { ev.target.disabled = false; }
  }

  // --- wiring -----------------------------------------------------------------------------------
  let refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { loadCoverage(); loadIssues(); }, 300);
  }

  ['started', 'progress', 'finished', 'failed', 'cancelled'].forEach((kind) =>
    TP.on(`marketdata.download.${kind}`, (m) => upsertJob(m.data, true)));
  TP.onResync(() => { loadJobs(); loadCoverage(); loadIssues(); });

  const form = $('#download-form');
  if (form) {
    form.addEventListener('submit', submit);
    $('#md-exchange').addEventListener('change', loadMarkets);
    $('#md-load-markets').addEventListener('click', loadMarketsFromExchange);
    const now = Date.now();
    $('#md-end').value = toLocalInput(now);
    $('#md-start').value = toLocalInput(now - 86400000);
    loadExchanges();
  }
  $('#jobs-table').addEventListener('click', jobAction);
  $('#coverage').addEventListener('click', coverageAction);
  $('#issues-table').addEventListener('click', issueAction);
  $('#issues-open').addEventListener('change', loadIssues);
  $('#chart-series').addEventListener('change', loadChart);
  $('#chart-count').addEventListener('change', loadChart);
  loadJobs(); loadCoverage(); loadIssues();
})();
