/* Training pages: form + runs list, and a run's live trial feed and results. Data from /api/v1/, live via TP events. */
(function () {
  'use strict';
  const stateBadge = (s) => ({succeeded: 'good', failed: 'bad', cancelled: 'warn', running: 'info', queued: 'info', interrupted: 'warn'}[s] || '');
  // A run a server stop interrupted is failed with error_code "interrupted": shown as its own state.
  const shownState = (r) => (r.state === 'failed' && r.error_code === 'interrupted' ? 'interrupted' : r.state);
  const RETRYABLE = ['failed', 'cancelled'];
  const verdictBadge = (code) => ({likely_robust: 'good', promising_but_fragile: 'warn', likely_overfit: 'bad', insufficient_evidence: 'warn'}[code] || '');
  const num = (v, d = 3) => (v === null || v === undefined ? '—' : TP.fmtNum(v, d));
  const params = (p) => Object.entries(p || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const PLOTLY_CONFIG = {responsive: true, displaylogo: false};
  const RUN_EVENTS = ['training.run.created', 'training.run.started', 'training.run.progress', 'training.run.finished',
    'training.run.failed', 'training.run.cancelled'];

  // ---- Run page --------------------------------------------------------------------------------------
  function detail(id) {
    const $ = (sel) => document.querySelector(sel);
    const trials = new Map();
    let run = null, resultsShown = false;

    function renderStatus(r) {
      run = r;
      $('#run-title').textContent = r.name || `Training ${r.id}`;
      $('#run-state').textContent = shownState(r);
      $('#run-state').className = `badge ${stateBadge(shownState(r))}`;
      $('#run-progress').style.width = `${r.progress}%`;
      $('#run-message').textContent = r.message || '';
      $('#run-error').textContent = r.error || '';
      $('#btn-cancel').hidden = !['queued', 'running'].includes(r.state);
      $('#btn-retry').hidden = !RETRYABLE.includes(r.state);
      $('#btn-retry').textContent = r.trials_done ? 'Resume' : 'Retry';
      const setup = [
        ['Strategy', r.strategy_key], ['Market', `${r.exchange} ${r.market_symbol} · ${r.timeframe}`],
        ['Period', `${TP.fmtTime(r.start)} → ${TP.fmtTime(r.end)}`],
        ['Hold-out', `last ${TP.fmtPct(r.holdout_share, 0)}${r.holdout_start ? ` (from ${TP.fmtTime(r.holdout_start)})` : ''}`],
        ['Objective', `${r.objective}, at least ${r.min_trades} trades per window`],
        ['Search', `${r.sampler}, ${r.n_trials} trials in each of ${r.n_studies} studies (${r.trials_budget} in all)${r.timeout_s ? `, ${r.timeout_s} s budget` : ''}, seed ${r.seed ?? 'random'}, ${r.n_workers} worker(s)`],
        ['Walk-forward', `${r.folds} ${r.scheme} folds, one study each, plus a final study on the whole optimisation range`],
        ['Gaps', r.allow_gaps ? `allowed: ${r.gaps.length} gap(s) in the range` : 'refused'], ['Costs', `fee ${TP.fmtPct(r.fee, 3)} · slippage ${TP.fmtPct(r.slippage, 3)}`],
        ['Exits and sizing', `SL ${r.stop_loss != null ? TP.fmtPct(r.stop_loss) : '—'} · TP ${r.take_profit != null ? TP.fmtPct(r.take_profit) : '—'} · trailing ${r.trailing_stop != null ? TP.fmtPct(r.trailing_stop) : '—'} · ${r.sizing} ${r.size_value} · shorts ${r.allow_short ? 'allowed' : 'off'}`],
        ['Study', r.study_name], ['Code version', r.code_version ? r.code_version.slice(0, 12) : 'not recorded'],
      ];
      $('#setup-table tbody').innerHTML = setup.map(([k, v]) => `<tr><th>${k}</th><td>${TP.esc(v)}</td></tr>`).join('');
      renderCount(r.trials_message);
      renderBest();
    }

    const studyLabel = (t) => (t.study === 'final' ? 'final' : `fold ${t.fold}`);
    const trialKey = (t) => `${t.study}:${t.number}`;
    // A penalised value is a rule's verdict, not a measurement: show why instead of the number.
    const valueCell = (t) => (t.penalty ? '<span class="muted">—</span>' : num(t.value, 4));
    function trialRow(t) {
      const tr = document.createElement('tr');
      tr.dataset.number = t.number;
      tr.dataset.study = t.study;
      tr.dataset.state = t.state;
      const note = t.penalty || t.pruned_reason || (t.retried_from != null ? `retry of trial ${t.retried_from}` : '');
      tr.innerHTML = `<td class="small">${TP.esc(studyLabel(t))}</td><td class="num">${t.number}</td><td><span class="badge ${t.state === 'complete' ? 'good' : t.state === 'pruned' ? 'warn' : 'bad'}">${t.state}</span></td>
        <td class="small">${TP.esc(params(t.params))}</td><td class="num" data-value>${valueCell(t)}</td><td class="small muted" data-note>${TP.esc(note)}</td>
        <td class="small muted">${TP.esc(t.worker_id || '')}</td><td class="num">${num(t.duration_s, 2)}</td>
        <td>${t.state === 'complete' ? `<button class="small" data-config="${t.number}" data-study="${TP.esc(t.study)}">Create config</button>` : ''}</td>`;
      return tr;
    }
    function addTrial(t, live) {
      if (trials.has(trialKey(t))) return;
      trials.set(trialKey(t), t);
      const tbody = $('#trial-feed tbody');
      const row = trialRow(t);
      // Newest first: live rows on top, the initial load (oldest first from the API) prepended too.
      row.classList.toggle('fresh', !!live);
      tbody.prepend(row);
    }
    function renderCount(message) {
      // One sentence from the server's counters (the run's own message), so no two numbers on the page disagree.
      const text = message || (run && run.trials_message) || '';
      $('#trial-count').textContent = text;
    }
    let bestTimer = null;
    function renderBest() {
      if (bestTimer) return;
      bestTimer = setTimeout(() => {
        bestTimer = null;
        const finals = [...trials.values()].filter((t) => t.study === 'final').sort((a, b) => a.number - b.number);
        const x = [], best = [], value = [];
        let b = null;
        for (const t of finals) {
          const measured = t.state === 'complete' && t.value !== null && !t.penalty;
          if (measured) b = b === null ? t.value : Math.max(b, t.value);
          x.push(t.number); best.push(b); value.push(measured ? t.value : null);
        }
        const penalised = finals.filter((t) => t.penalty).length;
        $('#best-now').textContent = b === null
          ? (finals.length ? `No measured value yet: ${penalised} of ${finals.length} final-study trials penalised (${finals.find((t) => t.penalty)?.penalty || 'no completed trial'}).` : 'The final study has not started yet.')
          : `Best ${run ? run.objective : ''} so far: ${num(b, 4)}${penalised ? ` (${penalised} penalised trial(s) not shown)` : ''}`;
        if (typeof Plotly === 'undefined') return;
        Plotly.react('best-chart', [
          {x, y: value, mode: 'markers', name: 'Trial value', marker: {color: '#8b949e', size: 6}},
          {x, y: best, mode: 'lines', name: 'Best so far', line: {color: '#1f6feb', shape: 'hv'}},
        ], {margin: {t: 10, r: 10}, xaxis: {title: 'Final-study trial'}, yaxis: {title: 'Objective (optimisation range)'}, legend: {orientation: 'h'}}, PLOTLY_CONFIG);
      }, 150);
    }

    function metricsCells(m) {
      m = m || {};
      return `<td class="num">${num(m.sharpe)}</td><td class="num">${TP.fmtPct(m.total_return)}</td><td class="num">${m.trade_count ?? '—'}</td>`;
    }
    const range = (w) => `<span class="small">${TP.fmtTime(w.start)}<br>${TP.fmtTime(w.end)}</span>`;
    function renderResults(r) {
      const res = r.result;
      if (!res || resultsShown) return;
      resultsShown = true;
      const v = res.verdict || {};
      $('#verdict').textContent = v.text || '—';
      $('#verdict').className = `badge ${verdictBadge(v.code)}`;
      $('#verdict-reasons').innerHTML = (v.reasons || []).map((x) => `<li>${TP.esc(x)}</li>`).join('');
      const dsr = res.dsr_detail || {}, pbo = res.pbo_detail || {}, oos = res.out_of_sample || {};
      const best = res.best;
      const bestValue = best ? (best.penalty ? `penalised: ${best.penalty.replace(/^penalised: /, '')}` : `${res.objective} ${num(best.value, 4)} on the optimisation range`) : '';
      const stats = [
        ['Deflated Sharpe ratio (DSR)', res.dsr === null ? '—' : TP.fmtPct(res.dsr), `probability the best Sharpe beats luck after ${dsr.n_trials ?? '?'} trials in all studies`],
        ['Probability of backtest overfitting (PBO)', res.pbo === null ? '—' : TP.fmtPct(res.pbo), pbo.n_combinations ? `CSCV over ${pbo.n_combinations} splits of the final study's ${pbo.n_configs} configurations` : 'not enough configurations'],
        ['Offered parameters', best ? `final #${best.number} ${params(best.params)}` : '—', bestValue],
        ['Walk-forward out of sample', oos.metrics ? `Sharpe ${num(oos.metrics.sharpe)}` : '—', oos.n_folds ? `${oos.positive_folds} of ${oos.n_folds} folds profitable; in-sample Sharpe ${num(oos.in_sample_sharpe_mean)}` : ''],
        ['Walk-forward efficiency (WFE)', oos.walkforward_efficiency === null || oos.walkforward_efficiency === undefined ? 'n/a' : TP.fmtPct(oos.walkforward_efficiency, 0), 'annualised OOS return ÷ annualised IS return'],
        ['Trials', res.trials.count, `${res.trials.complete} complete, ${res.trials.pruned} pruned, ${res.trials.failed} failed, in ${Object.keys(res.trials.per_study || {}).length} studies`],
        ['Configs created', (res.configs_created || []).length ? res.configs_created.map((c) => `#${c}`).join(', ') : 'none', 'on the Strategies page'],
      ];
      $('#stats-table tbody').innerHTML = stats.map(([k, a, b]) => `<tr><th>${k}</th><td class="num" data-stat="${k.includes('DSR') ? 'dsr' : k.includes('PBO') ? 'pbo' : k.includes('WFE') ? 'wfe' : ''}">${TP.esc(a)}</td><td class="muted small">${TP.esc(b)}</td></tr>`).join('');
      $('#fold-table tbody').innerHTML = (res.folds || []).map((f) => `<tr data-fold="${f.index}"><td>${f.index}</td>
        <td class="small">${f.params ? TP.esc(params(f.params)) : `<span class="muted">${TP.esc(f.penalty || 'none')}</span>`}${f.params && f.penalty ? `<br><span class="muted">${TP.esc(f.penalty)}</span>` : ''}</td>
        <td>${range(f.in_sample)}</td>${metricsCells(f.in_sample.metrics)}
        <td>${range(f.out_of_sample)}</td>${metricsCells(f.out_of_sample.metrics)}
        <td class="num" data-wfe>${f.walkforward_efficiency === null ? 'n/a' : TP.fmtPct(f.walkforward_efficiency, 0)}</td></tr>`).join('');
      $('#fold-table tfoot').innerHTML = oos.metrics ? `<tr><th colspan="6">Chained out of sample</th><td></td>${metricsCells(oos.metrics)}
        <td class="num">${oos.walkforward_efficiency === null ? 'n/a' : TP.fmtPct(oos.walkforward_efficiency, 0)}</td></tr>` : '';
      $('#gaps-note').textContent = (res.gaps || []).length ? `Trained through ${res.gaps.length} gap(s): ${res.gaps.slice(0, 5).map((g) => `${TP.fmtTime(g.start)} → ${TP.fmtTime(g.end)} (${g.bars} bars)`).join(', ')}${res.gaps.length > 5 ? ' …' : ''}` : '';
      const h = res.holdout || {};
      $('#holdout-range').textContent = h.start ? `${TP.fmtTime(h.start)} → ${TP.fmtTime(h.end)}` : '';
      const hm = h.metrics || {};
      const keys = ['total_return', 'sharpe', 'sortino', 'max_drawdown', 'profit_factor', 'win_rate', 'trade_count'];
      $('#holdout-table tbody').innerHTML = h.metrics ? keys.filter((k) => k in hm).map((k) => `<tr><th>${(TPBacktests.METRIC_LABELS[k] || [k])[0]}</th><td class="num" data-holdout="${k}">${TPBacktests.fmtMetric(k, hm[k])}</td></tr>`).join('')
        : '<tr><td class="muted">No hold-out metrics (no completed trial in the final study).</td></tr>';
      $('#candidates-table tbody').innerHTML = (res.candidates || []).length ? res.candidates.map((c) => `<tr><td>${c.rank}</td><td>#${c.number}</td>
        <td class="small">${TP.esc(params(c.params))}</td><td class="num">${c.penalty ? `<span class="small muted">${TP.esc(c.penalty)}</span>` : num(c.value, 4)}</td><td class="num">${num(((c.in_sample || {}).metrics || {}).sharpe)}</td>
        <td class="num">${num(((c.holdout || {}).metrics || {}).sharpe)}</td><td class="num">${c.dsr && c.dsr.value !== null ? TP.fmtPct(c.dsr.value) : '—'}</td>
        <td><span class="badge ${verdictBadge((c.verdict || {}).code)}">${TP.esc((c.verdict || {}).text || '—')}</span></td></tr>`).join('')
        : '<tr><td colspan="8" class="muted">No candidate: no trial of the final study completed.</td></tr>';
      loadPlots();
    }

    async function loadPlots() {
      const plots = await TP.api(`/api/v1/training-runs/${id}/plots/`);
      const notes = [];
      // Show every plot's box before drawing any, so each is drawn at its final width.
      for (const [name, p] of Object.entries(plots)) {
        const el = document.getElementById(`plot-${name}`);
        if (el && p.figure) el.hidden = false;
      }
      for (const [name, p] of Object.entries(plots)) {
        const el = document.getElementById(`plot-${name}`);
        if (!el) continue;
        if (p.figure) {
          const layout = Object.assign({}, p.figure.layout, {autosize: true, width: el.clientWidth || undefined, height: el.clientHeight || undefined});
          Plotly.newPlot(el, p.figure.data, layout, PLOTLY_CONFIG);
        } else {
          notes.push(`${name}: ${p.message}`);
        }
      }
      const leftOut = Math.max(0, ...Object.values(plots).map((p) => p.left_out || 0));
      if (leftOut) notes.unshift(`${leftOut} penalised trial(s) are not drawn: their value is a penalty, not a measurement.`);
      $('#plots-note').textContent = notes.join(' · ');
    }

    async function loadTrials() {
      let url = `/api/v1/training-runs/${id}/trials/?page_size=200`;
      while (url) {
        const page = await TP.api(url);
        page.results.forEach((t) => addTrial(t, false));
        url = page.next;
      }
      renderBest();
    }
    async function load() {
      const r = await TP.api(`/api/v1/training-runs/${id}/`);
      renderStatus(r);
      await loadTrials();
      renderResults(r);
    }

    TP.on('training.trial.finished', (m) => {
      if (m.data.run !== id) return;
      addTrial(m.data.trial, true);
      if (run) { run.progress = m.data.progress; run.trials_message = m.data.message; $('#run-progress').style.width = `${m.data.progress}%`; }
      $('#run-message').textContent = m.data.message;
      renderCount(m.data.message); renderBest();
    });
    RUN_EVENTS.forEach((t) => TP.on(t, async (m) => {
      if (m.data.id !== id) return;
      renderStatus(m.data);
      if (['training.run.finished', 'training.run.cancelled'].includes(m.type)) {
        const r = await TP.api(`/api/v1/training-runs/${id}/`);
        renderStatus(r); await loadTrials(); renderResults(r);
      }
    }));
    TP.subscribe(`training-${id}`);
    TP.onResync(load);
    $('#btn-cancel').onclick = async () => { renderStatus(await TP.api(`/api/v1/training-runs/${id}/cancel/`, {method: 'POST', body: {}})); };
    $('#btn-retry').onclick = async () => { renderStatus(await TP.api(`/api/v1/training-runs/${id}/retry/`, {method: 'POST', body: {}})); };
    $('#trial-feed').addEventListener('click', async (e) => {
      const number = e.target.dataset.config;
      if (number === undefined) return;
      const config = await TP.api(`/api/v1/training-runs/${id}/create-config/`, {method: 'POST', body: {trial: Number(number), study: e.target.dataset.study}});
      // The API answers with the existing config when this trial was saved before (e.g. as a top candidate).
      const fresh = config.created;
      TP.toast(fresh ? `Config "${config.name}" created (stage ${config.stage}).` : `Already saved as config #${config.id} "${config.name}".`, 'ok');
      e.target.disabled = true; e.target.textContent = fresh ? 'Config created' : `Saved as #${config.id}`;
    });
    load();
  }

  // ---- List and form -----------------------------------------------------------------------------
  function index() {
    const $ = (sel) => document.querySelector(sel);
    let strategies = [], datasets = [], page = 1, current = null;

    function renderStrategy() {
      current = strategies.find((s) => s.key === $('#tr-strategy').value);
      if (!current) return;
      $('#tr-strategy-desc').textContent = current.description;
      $('#tr-space tbody').innerHTML = current.params.length ? current.params.map((p) => {
        const space = p.type === 'categorical' ? p.choices.map((c) => JSON.stringify(c)).join(', ')
          : p.type === 'bool' ? 'true, false' : `${p.low} – ${p.high}${p.step != null ? ` step ${p.step}` : ''}`;
        return `<tr title="${TP.esc(p.help || '')}"><td>${TP.esc(p.name)}</td><td>${p.type}</td><td>${TP.esc(space)}</td></tr>`;
      }).join('') : '<tr><td colspan="3" class="muted">This strategy has no parameters to search.</td></tr>';
    }
    function dataset() { return datasets[Number($('#tr-dataset').value)]; }
    function renderDataset() {
      const d = dataset();
      if (!d) { $('#tr-dataset-info').textContent = ''; return; }
      $('#tr-dataset-info').textContent = `${TP.fmtNum(d.candles, 0)} candles stored, ${TP.fmtTime(d.first)} → ${TP.fmtTime(d.end)}`;
      $('#tr-start').value = TP.isoToLocalInput(d.first); $('#tr-end').value = TP.isoToLocalInput(d.end);
      const gaps = d.gaps || [];
      $('#tr-gaps').innerHTML = gaps.length
        ? `<strong class="error">${gaps.length} gap(s) in this data: training refuses a range with gaps unless you allow them below.</strong><ul class="gap-list">${gaps.slice(0, 6).map((g) => `<li>${TP.fmtTime(g.start)} → ${TP.fmtTime(g.end)} (${g.candles} bars)</li>`).join('')}</ul>`
        : '<span class="badge good">No gaps</span>';
    }
    $('#tr-strategy').onchange = renderStrategy;
    $('#tr-dataset').onchange = renderDataset;

    async function loadForm() {
      [strategies, datasets] = await Promise.all([TP.api('/api/v1/strategies/'), TP.api('/api/v1/coverage/')]);
      $('#tr-strategy').innerHTML = strategies.map((s) => `<option value="${s.key}">${TP.esc(s.name)} (${s.key})</option>`).join('');
      $('#tr-dataset').innerHTML = datasets.length
        ? datasets.map((d, i) => `<option value="${i}">${TP.esc(d.exchange_name)} ${TP.esc(d.symbol)} · ${d.timeframe} (${TP.fmtNum(d.candles, 0)} candles${d.gaps.length ? `, ${d.gaps.length} gaps` : ''})</option>`).join('')
        : '<option value="">No candles stored yet — download some on the Market data page</option>';
      $('#tr-more-strategies').innerHTML = strategies.map((s) => `<label><input type="checkbox" value="${s.key}"> ${TP.esc(s.name)}</label>`).join('');
      $('#tr-more-datasets').innerHTML = datasets.map((d, i) => `<label><input type="checkbox" value="${i}"> ${TP.esc(d.exchange_name)} ${TP.esc(d.symbol)} · ${d.timeframe}</label>`).join('');
      renderStrategy(); renderDataset();
    }
    // Extra strategies and data picked for the same request: every strategy × every series.
    function extras() {
      const keys = [...document.querySelectorAll('#tr-more-strategies input:checked')].map((el) => el.value);
      const series = [...document.querySelectorAll('#tr-more-datasets input:checked')].map((el) => datasets[Number(el.value)]);
      return {keys, series};
    }

    $('#tr-form').onsubmit = async (e) => {
      e.preventDefault();
      $('#tr-error').textContent = '';
      const d = dataset();
      if (!d) { $('#tr-error').textContent = 'Choose stored data to train on.'; return; }
      const intOrNull = (v) => (v === '' ? null : parseInt(v, 10));
      const body = {
        strategy_key: current.key, market: d.market, timeframe: d.timeframe,
        start: TP.localInputToIso($('#tr-start').value), end: TP.localInputToIso($('#tr-end').value),
        objective: $('#tr-objective').value, min_trades: parseInt($('#tr-min-trades').value, 10), sampler: $('#tr-sampler').value,
        n_trials: parseInt($('#tr-trials').value, 10), timeout_s: $('#tr-timeout').value === '' ? null : Number($('#tr-timeout').value),
        seed: intOrNull($('#tr-seed').value), n_workers: parseInt($('#tr-workers').value, 10), folds: parseInt($('#tr-folds').value, 10),
        scheme: $('#tr-scheme').value, holdout_share: TP.pctToFraction($('#tr-holdout').value), top_n: parseInt($('#tr-top').value, 10),
        fee: TP.pctToFraction($('#tr-fee').value), slippage: TP.pctToFraction($('#tr-slippage').value), name: $('#tr-name').value,
        allow_gaps: $('#tr-allow-gaps').checked,
      };
      $('#tr-submit').disabled = true;
      const more = extras();
      if (more.keys.length || more.series.length) {
        const keys = [...new Set([current.key, ...more.keys])];
        const series = [d, ...more.series].filter((x, i, all) => all.findIndex((y) => y.market === x.market && y.timeframe === x.timeframe) === i)
          .map((x) => ({market: x.market, timeframe: x.timeframe}));
        const {strategy_key, market, timeframe, ...common} = body;
        try {
          const runs = await TP.api('/api/v1/training-runs/batch/', {method: 'POST', quiet: true, body: {...common, strategy_keys: keys, series}});
          TP.toast(`${runs.length} training runs queued (${keys.length} strateg${keys.length > 1 ? 'ies' : 'y'} × ${series.length} data series).`, 'ok');
          page = 1; await loadRuns();
        } catch (err) { $('#tr-error').textContent = err.message; }
        $('#tr-submit').disabled = false;
        return;
      }
      try {
        const run = await TP.api('/api/v1/training-runs/', {method: 'POST', body, quiet: true});
        TP.toast(`Training ${run.id} queued.`, 'ok');
        location.href = `/training/${run.id}/`;
      } catch (err) {
        $('#tr-error').textContent = err.message;
        $('#tr-submit').disabled = false;
      }
    };

    function row(r) {
      const v = r.verdict || {};
      const status = `<span class="badge ${stateBadge(shownState(r))}" data-state>${shownState(r)}</span>` +
        (['queued', 'running'].includes(r.state) ? `<div class="progress"><div style="width:${r.progress}%"></div></div><small class="muted">${TP.esc(r.message || '')}</small>` : '') +
        (r.error ? `<br><small class="error">${TP.esc(r.error)}</small>` : '');
      return `<td><a href="/training/${r.id}/">${TP.esc(r.name || `#${r.id}`)}</a></td><td>${TP.esc(r.strategy_key)}</td>
        <td>${TP.esc(r.market_symbol)} ${r.timeframe}</td><td class="small">${TP.fmtTime(r.start)}<br>${TP.fmtTime(r.end)}</td>
        <td class="small">${r.objective} · ${r.sampler} · ${r.folds} ${r.scheme} folds · hold-out ${TP.fmtPct(r.holdout_share, 0)}</td><td>${status}</td>
        <td class="num" data-trials>${r.trials_done} / ${r.trials_budget}</td><td class="num">${num(r.best_value, 4)}</td>
        <td>${v.text ? `<span class="badge ${verdictBadge(v.code)}">${TP.esc(v.text)}</span>` : '—'}</td><td class="small">${TP.fmtTime(r.created_at)}</td>`;
    }
    async function loadRuns() {
      const data = await TP.api(`/api/v1/training-runs/?page=${page}`);
      const tbody = $('#tr-runs tbody');
      tbody.innerHTML = data.results.length ? '' : '<tr><td colspan="10" class="muted">No training runs yet.</td></tr>';
      for (const r of data.results) {
        const tr = document.createElement('tr'); tr.dataset.run = r.id; tr.innerHTML = row(r); tbody.appendChild(tr);
      }
      $('#tr-count').textContent = `${data.count} runs · page ${page}`;
      $('#tr-prev').disabled = !data.previous; $('#tr-next').disabled = !data.next;
    }
    $('#tr-prev').onclick = () => { page--; loadRuns(); };
    $('#tr-next').onclick = () => { page++; loadRuns(); };
    const live = (m) => {
      const tr = document.querySelector(`#tr-runs tr[data-run="${m.data.id}"]`);
      if (tr) tr.innerHTML = row(m.data); else if (page === 1) loadRuns();
    };
    RUN_EVENTS.forEach((t) => TP.on(t, live));
    TP.on('training.trial.finished', (m) => {
      const tr = document.querySelector(`#tr-runs tr[data-run="${m.data.run}"]`);
      if (!tr) return;
      tr.querySelector('[data-trials]').textContent = `${m.data.trials_done} / ${m.data.trials_budget}`;
      const bar = tr.querySelector('.progress div');
      if (bar) bar.style.width = `${m.data.progress}%`;
    });
    TP.onResync(loadRuns);
    loadForm(); loadRuns();
  }

  window.TPTraining = {index, detail};
})();
