/* Backtest pages: list + form, results, comparison. Data from /api/v1/, live via TP events. */
(function () {
  'use strict';
  const METRIC_LABELS = {
    total_return: ['Total return', 'pct'], cagr: ['CAGR', 'pct'], annual_volatility: ['Annual volatility', 'pct'],
    sharpe: ['Sharpe', 'num'], sortino: ['Sortino', 'num'], calmar: ['Calmar', 'num'],
    max_drawdown: ['Max drawdown', 'pct'], max_drawdown_duration_bars: ['Max drawdown duration (bars)', 'int'],
    win_rate: ['Win rate', 'pct'], profit_factor: ['Profit factor', 'num'], expectancy: ['Expectancy per trade', 'pct'],
    avg_win: ['Average win', 'pct'], avg_loss: ['Average loss', 'pct'], best_trade: ['Best trade', 'pct'],
    worst_trade: ['Worst trade', 'pct'], exposure: ['Exposure', 'pct'], trade_count: ['Trades', 'int'],
    sqn: ['SQN', 'num'], probabilistic_sharpe_ratio: ['Probabilistic Sharpe', 'pct'], final_equity: ['Final equity', 'money'],
  };
  // Annualised figures of very short periods explode (CAGR of 2 days); show them compactly.
  const huge = (x) => Math.abs(x) >= 1e6;
  function fmtMetric(key, value) {
    const kind = (METRIC_LABELS[key] || [key, 'num'])[1];
    if (value === null || value === undefined) return '—';
    if (kind === 'pct' && huge(100 * value)) return `${(100 * value).toExponential(2)} %`;
    if (kind !== 'int' && huge(value)) return value.toExponential(3);
    if (kind === 'pct') return TP.fmtPct(value);
    if (kind === 'int') return TP.fmtNum(value, 0);
    if (kind === 'money') return TP.fmtNum(value, 2);
    return TP.fmtNum(value, 3);
  }
  const stateBadge = (s) => ({succeeded: 'good', failed: 'bad', cancelled: 'warn', running: 'info', queued: 'info'}[s] || '');

  // ---- Results page ------------------------------------------------------------------------------
  function detail(id) {
    let run = null;
    let tradesPage = 1;
    const $ = (sel) => document.querySelector(sel);

    function renderStatus(r) {
      run = r;
      $('#run-title').textContent = r.name || `Backtest ${r.id}`;
      $('#run-state').textContent = r.state;
      $('#run-state').className = `badge ${stateBadge(r.state)}`;
      $('#run-progress').style.width = `${r.progress}%`;
      $('#run-message').textContent = r.state === 'succeeded' ? `Finished in ${TP.fmtDuration(r.duration_s)}` : (r.message || '');
      $('#run-error').textContent = r.error || '';
      $('#btn-cancel').hidden = !['queued', 'running'].includes(r.state);
      $('#btn-save-config').disabled = r.state !== 'succeeded';
      const setup = [
        ['Strategy', `${r.strategy_key} ${JSON.stringify(r.parameters)}`], ['Market', `${r.exchange} ${r.market_symbol} · ${r.timeframe}`],
        ['Period', `${TP.fmtTime(r.start)} → ${TP.fmtTime(r.end)}`], ['Starting capital', TP.fmtNum(r.cash, 2)],
        ['Fee / slippage', `${TP.fmtPct(r.fee, 3)} / ${TP.fmtPct(r.slippage, 3)}`],
        ['Sizing', `${r.sizing} ${r.size_value}${r.amount_step ? `, step ${r.amount_step}` : ''}`],
        ['Stops', `SL ${r.stop_loss != null ? TP.fmtPct(r.stop_loss) : '—'} · TP ${r.take_profit != null ? TP.fmtPct(r.take_profit) : '—'} · trailing ${r.trailing_stop != null ? TP.fmtPct(r.trailing_stop) : '—'}`],
        ['Shorts', r.allow_short ? 'allowed' : 'off'], ['Candles', `${TP.fmtNum(r.candle_count, 0)}${r.gaps && r.gaps.length ? ` · ${r.gaps.length} gap(s) allowed` : ''}`],
        ['Fingerprint', `<code class="small">${TP.esc((r.fingerprint || '').slice(0, 16))}</code>`],
        ['Code version', r.code_version ? `<code class="small" title="SHA-256 of the strategy's, the engine's and the metrics' source">${TP.esc(r.code_version.slice(0, 12))}</code>` : '<span class="muted">not recorded</span>'],
        ['Timings', r.timings && r.timings.total_s ? Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join(' · ') : '—'],
      ];
      $('#setup-table tbody').innerHTML = setup.map(([k, v]) => `<tr><th>${k}</th><td>${['Fingerprint', 'Code version'].includes(k) ? v : TP.esc(v)}</td></tr>`).join('');
      if (r.state === 'succeeded') {
        // Warnings come from the server (one rule for API, command and page).
        const warnings = r.warnings || [];
        $('#metrics-note').hidden = !warnings.length;
        $('#metrics-note').innerHTML = warnings.map((w) => `<span class="result-warning" data-code="${TP.esc(w.code)}">⚠ ${TP.esc(w.message)}</span>`).join('');
        $('#metrics-table tbody').innerHTML = Object.keys(METRIC_LABELS).filter((k) => k in r.metrics)
          .map((k) => `<tr><th>${METRIC_LABELS[k][0]}</th><td class="num" data-metric="${k}">${fmtMetric(k, r.metrics[k])}</td></tr>`).join('');
      }
    }

    async function loadCharts() {
      if (!run || run.state !== 'succeeded') return;
      const eq = await TP.api(`/api/v1/backtests/${id}/equity/`);
      const x = eq.time.map((t) => new Date(t));
      Plotly.newPlot('equity-chart', [
        {x, y: eq.equity, name: 'Equity', type: 'scatter', line: {color: '#1f6feb'}},
        {x, y: eq.drawdown.map((d) => 100 * d), name: 'Drawdown %', type: 'scatter', fill: 'tozeroy', yaxis: 'y2', line: {color: '#c62828'}},
      ], {margin: {t: 10, r: 60}, yaxis: {title: 'Equity', domain: [0.35, 1]}, yaxis2: {title: 'Drawdown %', domain: [0, 0.28]},
          legend: {orientation: 'h'}}, {responsive: true, displaylogo: false});
      const p = await TP.api(`/api/v1/backtests/${id}/prices/`);
      $('#price-note').textContent = p.timeframe !== run.timeframe ? `Shown as ${p.timeframe} candles (${run.timeframe} bars combined) to keep the chart readable.` : '';
      const entries = p.trades, side = (t) => t.side === 'long';
      Plotly.newPlot('price-chart', [
        {type: 'candlestick', x: p.time.map((t) => new Date(t)), open: p.open, high: p.high, low: p.low, close: p.close, name: run.market_symbol},
        {type: 'scatter', mode: 'markers', name: 'Entries', x: entries.map((t) => t.entry_time), y: entries.map((t) => t.entry_price),
         marker: {symbol: entries.map((t) => (side(t) ? 'triangle-up' : 'triangle-down')), size: 10, color: '#1a7f37'},
         text: entries.map((t) => `#${t.number} ${t.side} entry`)},
        {type: 'scatter', mode: 'markers', name: 'Exits', x: entries.map((t) => t.exit_time), y: entries.map((t) => t.exit_price),
         marker: {symbol: 'x', size: 9, color: '#c62828'}, text: entries.map((t) => `#${t.number} ${t.exit_reason}, PnL ${t.pnl.toFixed(2)}`)},
      ], {margin: {t: 10}, xaxis: {rangeslider: {visible: false}}, legend: {orientation: 'h'}}, {responsive: true, displaylogo: false});
    }

    async function loadTrades() {
      if (!run || run.state !== 'succeeded') return;
      const data = await TP.api(`/api/v1/backtests/${id}/trades/?page=${tradesPage}`);
      const tbody = $('#trades-table tbody');
      tbody.innerHTML = data.results.length ? '' : '<tr><td colspan="11" class="muted">No closed trades.</td></tr>';
      for (const t of data.results) {
        const tr = document.createElement('tr');
        tr.innerHTML = `<td>${t.number}</td><td>${t.side}</td><td>${TP.fmtTime(t.entry_time)}</td><td class="num">${TP.fmtNum(t.entry_price, 4)}</td>
          <td>${TP.fmtTime(t.exit_time)}</td><td class="num">${TP.fmtNum(t.exit_price, 4)}</td><td class="num">${TP.fmtNum(t.size, 6)}</td>
          <td class="num">${TP.fmtNum(t.fees, 2)}</td><td class="num ${t.pnl >= 0 ? '' : 'error'}">${TP.fmtNum(t.pnl, 2)}</td>
          <td class="num">${TP.fmtPct(t.return_pct)}</td><td>${t.exit_reason}</td>`;
        tbody.appendChild(tr);
      }
      $('#trades-count').textContent = `${data.count} trades · page ${tradesPage}`;
      $('#trades-prev').disabled = !data.previous;
      $('#trades-next').disabled = !data.next;
      const op = run.open_position;
      $('#open-position').textContent = op ? `Still open at the end (not counted as a trade): ${op.side} ${TP.fmtNum(op.size, 6)} from ${TP.fmtNum(op.entry_price, 4)}, marked at ${TP.fmtNum(op.mark_price, 4)}, unrealised PnL ${TP.fmtNum(op.unrealized_pnl, 2)}.` : '';
    }

    async function load() {
      renderStatus(await TP.api(`/api/v1/backtests/${id}/`));
      await Promise.all([loadCharts(), loadTrades()]);
    }
    const onEvent = (m) => {
      if (m.data.id !== id) return;
      const finished = m.type === 'backtests.run.finished';
      renderStatus(m.data);
      if (finished) { loadCharts(); loadTrades(); }
    };
    ['backtests.run.progress', 'backtests.run.started', 'backtests.run.finished', 'backtests.run.failed', 'backtests.run.cancelled'].forEach((t) => TP.on(t, onEvent));
    TP.subscribe(`backtest-${id}`);
    TP.onResync(load);
    $('#trades-prev').onclick = () => { tradesPage--; loadTrades(); };
    $('#trades-next').onclick = () => { tradesPage++; loadTrades(); };
    $('#btn-cancel').onclick = async () => { renderStatus(await TP.api(`/api/v1/backtests/${id}/cancel/`, {method: 'POST', body: {}})); };
    $('#btn-save-config').onclick = async () => {
      const name = prompt('Name for the new strategy config:', `${run.name} (from backtest ${id})`);
      if (name === null) return;
      const config = await TP.api(`/api/v1/backtests/${id}/save-as-config/`, {method: 'POST', body: {name}});
      TP.toast(`Saved as config "${config.name}" (stage ${config.stage}).`, 'ok');
    };
    load();
  }

  // ---- Comparison --------------------------------------------------------------------------------
  function compare(ids) {
    const select = document.getElementById('rank-by');
    async function load() {
      const data = await TP.api(`/api/v1/backtests/compare/?ids=${ids.join(',')}&rank_by=${select.value}`);
      const thead = document.querySelector('#compare-table thead');
      const tbody = document.querySelector('#compare-table tbody');
      thead.innerHTML = `<tr><th>Rank</th><th>Run</th><th>Strategy</th><th>Market</th>${data.metrics.map((m) => `<th class="num">${(METRIC_LABELS[m] || [m])[0]}</th>`).join('')}</tr>`;
      tbody.innerHTML = data.runs.map((r) => `<tr data-run="${r.id}"><td>${r.rank}</td><td><a href="/backtests/${r.id}/">${TP.esc(r.name)}</a></td>
        <td>${TP.esc(r.strategy_key)} <small class="muted">${TP.esc(JSON.stringify(r.parameters))}</small></td><td>${TP.esc(r.market)} ${r.timeframe}</td>
        ${data.metrics.map((m) => `<td class="num">${fmtMetric(m, r.metrics[m])}</td>`).join('')}</tr>`).join('');
      Plotly.newPlot('compare-chart', data.runs.map((r) => ({
        x: r.equity.time.map((t) => new Date(t)), y: r.equity.equity.map((v) => 100 * (v / r.equity.equity[0] - 1)),
        name: `#${r.rank} ${r.name}`, type: 'scatter'})),
        {margin: {t: 10}, yaxis: {title: 'Return %'}, legend: {orientation: 'h'}}, {responsive: true, displaylogo: false});
    }
    select.onchange = load;
    TP.onResync(load);
    load();
  }


  // ---- List and form -----------------------------------------------------------------------------
  function index() {
    const $ = (sel) => document.querySelector(sel);
    let strategies = [], datasets = [], configs = [], page = 1, current = null;
    const selected = new Set();

    function strategyByKey(key) { return strategies.find((s) => s.key === key); }
    function renderStrategy(values) {
      current = strategyByKey($('#bt-strategy').value);
      if (!current) return;
      $('#bt-strategy-desc').textContent = current.description;
      TP.paramFields($('#bt-params'), current.params, values || {});
      $('#bt-short').disabled = !current.supports_short;
      if (!current.supports_short) $('#bt-short').checked = false;
    }
    function dataset() { return datasets[Number($('#bt-dataset').value)]; }
    async function renderDataset(keepRange) {
      const d = dataset();
      if (!d) { $('#bt-dataset-info').textContent = ''; return; }
      $('#bt-dataset-info').textContent = `${TP.fmtNum(d.candles, 0)} candles stored, ${TP.fmtTime(d.first)} → ${TP.fmtTime(d.end)}`;
      if (!keepRange) { $('#bt-start').value = TP.isoToLocalInput(d.first); $('#bt-end').value = TP.isoToLocalInput(d.end); }
      const gaps = d.gaps || [];
      $('#bt-gaps').innerHTML = gaps.length
        ? `<strong class="error">${gaps.length} gap(s) in this data:</strong><ul class="gap-list">${gaps.slice(0, 6).map((g) => `<li>${TP.fmtTime(g.start)} → ${TP.fmtTime(g.end)} (${g.candles} bars${g.exchange_has_no_data ? ', exchange has no data' : ''})</li>`).join('')}</ul>${gaps.length > 6 ? `<span class="muted">and ${gaps.length - 6} more</span>` : ''}`
        : '<span class="badge good">No gaps</span>';
      $('#bt-step').value = '';  // empty = the market's step, filled in by the server
      try {
        const m = await TP.api(`/api/v1/markets/${d.market}/`, {quiet: true});
        $('#bt-step').placeholder = m.amount_step ? `market's step: ${Number(m.amount_step)}` : 'market has no step (0)';
      } catch (e) { /* a market you may not see has no step to offer */ }
    }
    $('#bt-sizing').onchange = () => {
      $('#bt-size-label').textContent = {fraction: 'Fraction of equity (0–1)', notional: 'Notional per trade (quote currency)', risk: 'Equity risked per trade (0–1)'}[$('#bt-sizing').value];
      $('#bt-size').value = {fraction: 1, notional: 1000, risk: 0.01}[$('#bt-sizing').value];
    };
    $('#bt-strategy').onchange = () => renderStrategy();
    $('#bt-dataset').onchange = () => renderDataset(false);
    // A config's execution settings fill the form, so the run trades the way the config does.
    const pct = (x) => (x == null ? '' : String(Number((100 * x).toPrecision(12))));
    function applySettings(c) {
      $('#bt-cash').value = c.cash; $('#bt-fee').value = pct(c.fee); $('#bt-slippage').value = pct(c.slippage);
      $('#bt-sizing').value = c.sizing; $('#bt-sizing').onchange(); $('#bt-size').value = c.size_value;
      $('#bt-step').value = c.amount_step; $('#bt-sl').value = pct(c.stop_loss); $('#bt-tp').value = pct(c.take_profit);
      $('#bt-trail').value = pct(c.trailing_stop); $('#bt-short').checked = c.allow_short;
    }
    $('#bt-config').onchange = async () => {
      const c = configs.find((x) => String(x.id) === $('#bt-config').value);
      if (!c) return;
      $('#bt-strategy').value = c.strategy_key;
      renderStrategy(c.parameters);
      const i = datasets.findIndex((d) => d.market === c.market && d.timeframe === c.timeframe);
      if (i >= 0) { $('#bt-dataset').value = String(i); await renderDataset(false); }
      else TP.toast(`No stored ${c.timeframe} candles for ${c.market_symbol}: download them on the Market data page.`, 'bad');
      applySettings(c);
    };

    async function loadForm() {
      [strategies, datasets, configs] = await Promise.all([
        TP.api('/api/v1/strategies/'), TP.api('/api/v1/coverage/'),
        TP.api('/api/v1/strategy-configs/?page_size=200').then((r) => r.results)]);
      $('#bt-strategy').innerHTML = strategies.map((s) => `<option value="${s.key}">${TP.esc(s.name)} (${s.key})</option>`).join('');
      $('#bt-dataset').innerHTML = datasets.length
        ? datasets.map((d, i) => `<option value="${i}">${TP.esc(d.exchange_name)} ${TP.esc(d.symbol)} · ${d.timeframe} (${TP.fmtNum(d.candles, 0)} candles${d.gaps.length ? `, ${d.gaps.length} gaps` : ''})</option>`).join('')
        : '<option value="">No candles stored yet — download some on the Market data page</option>';
      $('#bt-config').innerHTML = '<option value="">— none —</option>' + configs.map((c) => `<option value="${c.id}">${TP.esc(c.name)} [${c.stage}]</option>`).join('');
      renderStrategy();
      renderDataset(false);
    }

    $('#bt-form').onsubmit = async (e) => {
      e.preventDefault();
      $('#bt-error').textContent = '';
      const d = dataset();
      if (!d) { $('#bt-error').textContent = 'Choose stored data to test on.'; return; }
      const body = {
        strategy_key: current.key, parameters: TP.readParams($('#bt-params'), current.params),
        market: d.market, timeframe: d.timeframe, start: TP.localInputToIso($('#bt-start').value), end: TP.localInputToIso($('#bt-end').value),
        cash: Number($('#bt-cash').value), fee: TP.pctToFraction($('#bt-fee').value), slippage: TP.pctToFraction($('#bt-slippage').value),
        sizing: $('#bt-sizing').value, size_value: Number($('#bt-size').value),
        stop_loss: TP.pctToFraction($('#bt-sl').value), take_profit: TP.pctToFraction($('#bt-tp').value),
        trailing_stop: TP.pctToFraction($('#bt-trail').value), allow_short: $('#bt-short').checked,
        allow_gaps: $('#bt-allow-gaps').checked, name: $('#bt-name').value,
      };
      if ($('#bt-step').value !== '') body.amount_step = Number($('#bt-step').value);  // else the market's (server)
      if ($('#bt-config').value) body.config = Number($('#bt-config').value);
      $('#bt-submit').disabled = true;
      try {
        const run = await TP.api('/api/v1/backtests/', {method: 'POST', body, quiet: true});
        TP.toast(`Backtest ${run.id} queued.`, 'ok');
        page = 1; await loadRuns();
      } catch (err) {
        $('#bt-error').textContent = err.message;
      } finally { $('#bt-submit').disabled = false; }
    };

    function row(r) {
      const m = r.metrics || {};
      const status = `<span class="badge ${stateBadge(r.state)}" data-state>${r.state}</span>` +
        (['queued', 'running'].includes(r.state) ? `<div class="progress"><div style="width:${r.progress}%"></div></div><small class="muted">${TP.esc(r.message || '')}</small>` : '') +
        (r.error ? `<br><small class="error">${TP.esc(r.error)}</small>` : '');
      return `<td><input type="checkbox" data-id="${r.id}" ${selected.has(r.id) ? 'checked' : ''} ${r.state !== 'succeeded' ? 'disabled' : ''}></td>
        <td><a href="/backtests/${r.id}/">${TP.esc(r.name || `#${r.id}`)}</a></td><td>${TP.esc(r.strategy_key)}</td>
        <td>${TP.esc(r.market_symbol)} ${r.timeframe}</td><td class="small">${TP.fmtTime(r.start)}<br>${TP.fmtTime(r.end)}</td><td>${status}</td>
        <td class="num">${fmtMetric('total_return', m.total_return)}</td><td class="num">${fmtMetric('sharpe', m.sharpe)}</td>
        <td class="num">${fmtMetric('max_drawdown', m.max_drawdown)}</td><td class="num">${m.trade_count ?? '—'}</td><td class="small">${TP.fmtTime(r.created_at)}</td>`;
    }
    async function loadRuns() {
      const data = await TP.api(`/api/v1/backtests/?page=${page}`);
      const tbody = $('#bt-runs tbody');
      tbody.innerHTML = data.results.length ? '' : '<tr><td colspan="11" class="muted">No backtests yet.</td></tr>';
      for (const r of data.results) {
        const tr = document.createElement('tr'); tr.dataset.run = r.id; tr.innerHTML = row(r); tbody.appendChild(tr);
      }
      $('#bt-count').textContent = `${data.count} runs · page ${page}`;
      $('#bt-prev').disabled = !data.previous; $('#bt-next').disabled = !data.next;
    }
    $('#bt-runs').addEventListener('change', (e) => {
      const id = Number(e.target.dataset.id); if (!id) return;
      e.target.checked ? selected.add(id) : selected.delete(id);
      $('#bt-compare').disabled = selected.size < 2;
    });
    $('#bt-compare').onclick = () => { location.href = `/backtests/compare/?ids=${[...selected].join(',')}`; };
    $('#bt-prev').onclick = () => { page--; loadRuns(); };
    $('#bt-next').onclick = () => { page++; loadRuns(); };
    const live = (m) => {
      const tr = document.querySelector(`#bt-runs tr[data-run="${m.data.id}"]`);
      if (tr) tr.innerHTML = row(m.data); else if (page === 1) loadRuns();
    };
    ['backtests.run.created', 'backtests.run.started', 'backtests.run.progress', 'backtests.run.finished',
     'backtests.run.failed', 'backtests.run.cancelled'].forEach((t) => TP.on(t, live));
    TP.onResync(() => { loadRuns(); });
    loadForm(); loadRuns();
  }

  window.TPBacktests = {index, detail, compare, fmtMetric, METRIC_LABELS, stateBadge};
})();
