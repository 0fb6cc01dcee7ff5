/* Graduation pages: the pipeline board and a config's lineage.
 *
 * Cards, the live-approval queue and decisions come from /api/v1/graduation/…; a decision made
 * anywhere (a person here, the policy's evaluation, another tab) arrives as `graduation.decision`
 * over the one WebSocket and is shown with its criteria; the board re-reads its cards then.
 */
(function () {
  'use strict';
  const STAGES = ['discovery', 'validation', 'paper', 'testnet', 'live'];
  const LABELS = {discovery: 'Discovery', validation: 'Validation', paper: 'Paper', testnet: 'Testnet', live: 'Live',
    retired: 'Retired'};
  const $ = (sel, root = document) => root.querySelector(sel);
  const esc = (s) => TP.esc(s);

  function days(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    return d ? `${d} d ${h} h` : TP.fmtDuration(seconds);
  }
  function fmtValue(v, unit) {
    if (v === null || v === undefined) return '—';
    if (unit === 'fraction') return TP.fmtPct(v);
    if (unit === 'trades') return String(v);
    return TP.fmtNum(v, unit === 'probability' ? 3 : 2);
  }
  function verdict(passed) {
    if (passed === true) return '<span class="badge good">pass</span>';
    if (passed === false) return '<span class="badge bad">fail</span>';
    return '<span class="badge warn">not measured</span>';
  }

  // --- decisions -------------------------------------------------------------------------------
  function decisionHtml(d) {
    const who = d.decided_by === 'person' ? `by ${esc(d.actor)}` : 'by the policy';
    const cls = {promote: 'good', demote: 'bad', retire: 'bad', hold: ''}[d.outcome] || '';
    const move = d.from_stage === d.to_stage ? `holds in ${esc(LABELS[d.from_stage])}`
      : `${esc(LABELS[d.from_stage])} → ${esc(LABELS[d.to_stage])}`;
    const rows = (d.criteria || []).map((c) => `<tr data-criterion="${esc(c.name)}" data-kind="${esc(c.kind || '')}">
      <td>${c.kind === 'demote' ? '<span class="muted small">demotion</span> ' : ''}${esc(c.label)}</td>
      <td class="num" data-value>${esc(fmtValue(c.value, c.unit))}</td>
      <td class="num" data-threshold>${esc(c.op)} ${esc(fmtValue(c.threshold, c.unit))}</td>
      <td>${verdict(c.passed)}</td><td class="small muted">${esc(c.source || c.note || '')}</td></tr>`).join('');
    return `<article class="gr-decision" data-decision="${d.id}" data-config="${d.config}">
      <header><span class="badge ${cls}">${esc(d.outcome)}</span>
        <a href="/graduation/configs/${d.config}/">${esc(d.config_name)}</a> ${move}
        <span class="muted small">${who} · ${esc(TP.fmtTime(d.created_at))}${d.overridden ? ' · <strong>overridden</strong>' : ''}</span></header>
      <p class="small gr-reason">${esc(d.reason)}</p>
      ${rows ? `<div class="scroll-x"><table class="grid small gr-criteria"><thead><tr><th>Criterion</th><th class="num">Value</th>
        <th class="num">Threshold</th><th>Verdict</th><th>Read from</th></tr></thead><tbody>${rows}</tbody></table></div>`
        : '<p class="muted small">No criteria (the policy sets none for this move).</p>'}
    </article>`;
  }
  function renderDecisions(box, list) {
    box.innerHTML = list.length ? list.map(decisionHtml).join('') : '<p class="muted small" data-empty>No decision yet.</p>';
  }
  function prependDecision(box, d) {
    if (box.querySelector(`[data-decision="${d.id}"]`)) return;
    const empty = box.querySelector('[data-empty]');
    if (empty) empty.remove();
    box.insertAdjacentHTML('afterbegin', decisionHtml(d));
    while (box.children.length > 30) box.lastElementChild.remove();
  }

  // --- the reason dialog -----------------------------------------------------------------------
  const ACTIONS = {
    promote: {title: (n, s) => `Promote ${n}: ${LABELS[s]} → ${LABELS[STAGES[STAGES.indexOf(s) + 1]]}`, path: 'promote',
      info: 'Held against the policy of this transition; refused when a criterion fails unless you override.'},
    'request-live': {title: (n) => `Request live for ${n}`, path: 'request-live',
      info: 'A second person holding graduation.approve_live must approve; you cannot approve your own request.'},
    demote: {title: (n, s) => `Demote ${n} from ${LABELS[s]}`, path: 'demote',
      info: 'Deployments above the new stage are paused (no new entries; open positions still managed).'},
    retire: {title: (n) => `Retire ${n}`, path: 'retire', info: 'Off the ladder; every active deployment is paused.'},
    approve: {title: (n) => `Approve live for ${n}`, info: 'The config goes live now.'},
    reject: {title: (n) => `Reject live for ${n}`, info: 'The config stays on testnet.'},
  };
  let pending = null;

  function openDialog(act, target) {
    const spec = ACTIONS[act];
    const dialog = $('#gr-dialog');
    pending = {act, ...target};
    $('#gr-dialog-title').textContent = spec.title(target.name, target.stage);
    $('#gr-dialog-info').textContent = spec.info;
    $('#gr-reason').value = '';
    $('#gr-override').checked = false;
    $('#gr-override-box').hidden = act !== 'promote';
    $('#gr-dialog-error').textContent = '';
    const accountBox = $('#gr-account-box');
    const next = STAGES[STAGES.indexOf(target.stage) + 1];
    accountBox.hidden = true;
    $('#gr-account').innerHTML = '';
    if (act === 'promote' && (next === 'paper' || next === 'testnet')) loadAccounts(target, next);
    const toBox = $('#gr-to-box');
    toBox.hidden = act !== 'demote';
    if (act === 'demote') {
      const lower = STAGES.slice(0, STAGES.indexOf(target.stage));
      $('#gr-to').innerHTML = '<option value="">The policy\'s target</option>' +
        lower.reverse().map((s) => `<option value="${s}">${LABELS[s]}</option>`).join('');
    }
    dialog.showModal();
    $('#gr-reason').focus();
  }

  // Promotion to paper/testnet: the owner's accounts of that mode on the config's exchange, to
  // choose one instead of the one the policy picks.
  async function loadAccounts(target, mode) {
    let rows = [];
    try {
      const page = await TP.api(`/api/v1/trading/accounts/?mode=${mode}&page_size=100`, {quiet: true});
      rows = (page.results || page).filter((a) => a.owner === target.owner && a.exchange_name === target.exchange);
    } catch (e) { return; }
    $('#gr-account').innerHTML = `<option value="">As the policy says</option>` +
      rows.map((a) => `<option value="${a.id}">${esc(a.name)}</option>`).join('');
    $('#gr-account-box').hidden = !rows.length;
  }

  async function confirmDialog(ev) {
    ev.preventDefault();
    if (!pending) return;
    const reason = $('#gr-reason').value.trim();
    if (!reason) { $('#gr-dialog-error').textContent = 'Say why: the reason is recorded with the decision.'; return; }
    const body = {reason};
    let url;
    if (pending.act === 'approve' || pending.act === 'reject') {
      url = `/api/v1/graduation/live-requests/${pending.request}/${pending.act}/`;
    } else {
      url = `/api/v1/graduation/configs/${pending.config}/${ACTIONS[pending.act].path}/`;
      if (pending.act === 'promote') body.override = $('#gr-override').checked;
      if (pending.act === 'promote' && $('#gr-account').value) body.account = Number($('#gr-account').value);
      if (pending.act === 'demote' && $('#gr-to').value) body.to_stage = $('#gr-to').value;
    }
    const button = $('#gr-confirm');
    button.disabled = true;
    try {
      await TP.api(url, {method: 'POST', body, quiet: true});
      $('#gr-dialog').close();
      TP.toast(pending.act === 'request-live' ? 'Live request filed: a second person approves it.' : 'Done: the decision is recorded.', 'ok');
      pending = null;
    } catch (e) {
      $('#gr-dialog-error').textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  function wireDialog() {
    $('#gr-form').addEventListener('submit', confirmDialog);
    $('#gr-cancel').addEventListener('click', () => { pending = null; $('#gr-dialog').close(); });
    document.addEventListener('click', (ev) => {
      const btn = ev.target.closest('button[data-act]');
      if (!btn) return;
      openDialog(btn.dataset.act, {config: btn.dataset.config, request: btn.dataset.request, name: btn.dataset.name,
        stage: btn.dataset.stage, owner: btn.dataset.owner, exchange: btn.dataset.exchange});
    });
  }


  // --- policies --------------------------------------------------------------------------------
  const THRESHOLDS = [
    ['min_trades', 'Min trades (research evidence)', '1'], ['min_oos_sharpe', 'Min out-of-sample Sharpe', 'any'],
    ['max_drawdown', 'Max drawdown (research, fraction)', 'any'], ['max_pbo', 'Max PBO (0–1)', 'any'],
    ['min_dsr', 'Min deflated Sharpe (0–1)', 'any'], ['min_days_in_stage', 'Min days in stage', 'any'],
    ['min_trades_in_stage', 'Min closed trades in stage', '1'],
    ['max_tracking_error', 'Max tracking error (fraction of capital)', 'any'],
    ['max_live_drawdown', 'Max drawdown in stage (fraction)', 'any'],
  ];
  const num = (v) => (v === null || v === undefined ? '—' : esc(v));
  const policyOrder = (p) => (p.kind === 'promote' ? 0 : 10) + STAGES.indexOf(p.from_stage);

  function policyRow(p, mayEdit) {
    const kind = p.kind === 'promote' ? 'Promotion' : 'Demotion';
    const onPromotion = p.start_deployment
      ? `deploy ${esc(p.deployment_capital_fraction)} of ${esc(p.deployment_account_name || "the owner's only account")}`
      : (p.to_stage === 'live' ? (p.requires_approval ? 'second person approves' : 'no approval') : '—');
    const cells = THRESHOLDS.map(([f]) => `<td class="num" data-field="${f}">${num(p[f])}</td>`).join('');
    return `<tr data-policy="${p.kind}-${p.from_stage}" data-id="${p.id}">
      <td>${kind} ${esc(LABELS[p.from_stage])} → ${esc(LABELS[p.to_stage])}</td>
      <td data-field="automatic">${p.automatic ? 'automatic' : 'by a person'}</td>${cells}<td>${onPromotion}</td>
      <td class="small">${p.updated_by ? esc(p.updated_by) + ': ' : ''}${esc(p.reason)}</td>
      ${mayEdit ? `<td><button class="small" data-edit-policy="${p.id}">Edit</button></td>` : ''}</tr>`;
  }

  function policies(mayEdit) {
    let byId = {};
    const body = $('#gr-policies tbody');
    function render() {
      const list = Object.values(byId).sort((a, b) => policyOrder(a) - policyOrder(b));
      body.innerHTML = list.map((p) => policyRow(p, mayEdit)).join('');
    }
    async function load() {
      byId = Object.fromEntries((await TP.api('/api/v1/graduation/policies/')).map((p) => [p.id, p]));
      render();
    }
    TP.subscribe('graduation-policies');
    TP.on('graduation.policy', (msg) => { byId[msg.data.id] = msg.data; render(); });
    TP.onResync(load);
    load();
    if (!mayEdit) return;
    const dialog = $('#gr-policy-dialog');
    let editing = null;
    body.addEventListener('click', (ev) => {
      const btn = ev.target.closest('button[data-edit-policy]');
      if (!btn) return;
      editing = byId[btn.dataset.editPolicy];
      const p = editing;
      $('#gr-policy-title').textContent = `${p.kind === 'promote' ? 'Promotion' : 'Demotion'} ${LABELS[p.from_stage]} → ${LABELS[p.to_stage]}`;
      const field = (name, label, step) => `<label>${esc(label)} <input type="number" step="${step}" min="0"
        name="${name}" value="${p[name] === null ? '' : esc(p[name])}"></label>`;
      const check = (name, label) => `<label><input type="checkbox" name="${name}" ${p[name] ? 'checked' : ''}> ${esc(label)}</label>`;
      let extra = '';
      if (p.kind === 'promote' && (p.to_stage === 'paper' || p.to_stage === 'testnet')) {
        extra = check('start_deployment', 'Start a deployment on promotion') +
          field('deployment_capital_fraction', 'Capital: fraction of the account\'s free balance', 'any') +
          `<label>Account name (empty: the owner's only ${p.to_stage} account) <input name="deployment_account_name" maxlength="100" value="${esc(p.deployment_account_name)}"></label>`;
      }
      if (p.to_stage === 'live') extra = check('requires_approval', 'A second person approves (graduation.approve_live)');
      $('#gr-policy-fields').innerHTML = check('automatic', 'Applied automatically by the evaluation') +
        THRESHOLDS.map(([f, label, step]) => field(f, label, step)).join('') + extra;
      $('#gr-policy-reason').value = '';
      $('#gr-policy-error').textContent = '';
      dialog.showModal();
    });
    $('#gr-policy-cancel').addEventListener('click', () => dialog.close());
    $('#gr-policy-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const reason = $('#gr-policy-reason').value.trim();
      if (!reason) { $('#gr-policy-error').textContent = 'Say why: policy changes are audited with their reason.'; return; }
      const changes = {reason};
      $('#gr-policy-fields').querySelectorAll('input').forEach((input) => {
        let value;
        if (input.type === 'checkbox') value = input.checked;
        else if (input.type === 'number') value = input.value === '' ? null : Number(input.value);
        else value = input.value;
        if (value !== editing[input.name]) changes[input.name] = value;
      });
      try {
        const saved = await TP.api(`/api/v1/graduation/policies/${editing.id}/`, {method: 'PATCH', body: changes, quiet: true});
        byId[saved.id] = saved;
        render();
        dialog.close();
        TP.toast('Policy saved; the change is in the audit trail.', 'ok');
      } catch (e) {
        $('#gr-policy-error').textContent = e.message;
      }
    });
  }

  // --- the board -------------------------------------------------------------------------------
  function evidenceHtml(e) {
    if (!e) return '<p class="muted small">No research evidence yet.</p>';
    const item = (label, v) => `<div><dt>${label}</dt><dd>${v}</dd></div>`;
    return `<dl class="gr-evidence" title="${esc(e.source)} evidence #${e.id}">
      ${item('OOS Sharpe', esc(TP.fmtNum(e.oos_sharpe)))}${item('DSR', esc(TP.fmtNum(e.dsr, 3)))}
      ${item('PBO', esc(TP.fmtNum(e.pbo, 3)))}${item('Trades', esc(e.trades))}
      ${item('Max DD', esc(TP.fmtPct(e.max_drawdown, 1)))}</dl>`;
  }
  function cardHtml(c) {
    const data = `data-config="${c.id}" data-name="${esc(c.name)}" data-stage="${c.stage}" data-owner="${esc(c.owner)}" data-exchange="${esc(c.exchange)}"`;
    const buttons = [];
    if (c.may_promote) {
      if (c.stage === 'testnet') {
        buttons.push(c.live_request_pending ? '<span class="badge warn">live request waiting</span>'
          : `<button class="small primary" data-act="request-live" ${data}>Request live</button>`);
      } else if (c.stage !== 'live') {
        buttons.push(`<button class="small primary" data-act="promote" ${data}>Promote</button>`);
      }
    }
    if (c.may_demote && c.stage !== 'discovery') buttons.push(`<button class="small" data-act="demote" ${data}>Demote</button>`);
    if (c.may_demote) buttons.push(`<button class="small danger" data-act="retire" ${data}>Retire</button>`);
    return `<article class="gr-card" data-card="${c.id}">
      <h3><a href="/graduation/configs/${c.id}/">${esc(c.name)}</a></h3>
      <p class="muted small">${esc(c.owner)} · ${esc(c.strategy_key)} · ${esc(c.market)} ${esc(c.timeframe)}</p>
      ${evidenceHtml(c.evidence)}
      <p class="small">In stage <strong data-in-stage>${esc(days(c.seconds_in_stage))}</strong></p>
      <div class="gr-buttons">${buttons.join(' ')}</div>
    </article>`;
  }

  function fillSelect(sel, values) {
    const current = sel.value;
    sel.innerHTML = '<option value="">All</option>' + [...values].sort().map((v) => `<option>${esc(v)}</option>`).join('');
    sel.value = values.has(current) ? current : '';
  }

  function board(opts) {
    let all = [];
    const filters = {owner: $('#gr-owner'), strategy: $('#gr-strategy'), market: $('#gr-market')};

    function render() {
      const shown = all.filter((c) => (!filters.owner.value || c.owner === filters.owner.value) &&
        (!filters.strategy.value || c.strategy_key === filters.strategy.value) &&
        (!filters.market.value || c.market === filters.market.value));
      STAGES.forEach((stage) => {
        const col = $(`.gr-col[data-stage="${stage}"] .gr-cards`);
        const cards = shown.filter((c) => c.stage === stage);
        col.innerHTML = cards.length ? cards.map(cardHtml).join('') : '<p class="muted small">None.</p>';
        $(`[data-count="${stage}"]`).textContent = cards.length;
      });
      $('#gr-count').textContent = `${shown.length} of ${all.length} configs`;
    }
    async function loadCards() {
      all = await TP.api('/api/v1/graduation/configs/');
      fillSelect(filters.owner, new Set(all.map((c) => c.owner)));
      fillSelect(filters.strategy, new Set(all.map((c) => c.strategy_key)));
      fillSelect(filters.market, new Set(all.map((c) => c.market)));
      render();
    }
    async function loadQueue() {
      const rows = (await TP.api('/api/v1/graduation/live-requests/?status=pending')).results;
      const body = $('#gr-queue-table tbody');
      body.innerHTML = rows.length ? rows.map((r) => {
        const mine = r.requested_by === opts.user;
        const data = `data-request="${r.id}" data-name="${esc(r.config_name)}" data-stage="testnet"`;
        const acts = !opts.mayApprove ? '<span class="muted small">needs graduation.approve_live</span>'
          : mine ? '<span class="muted small">your request: another person approves</span>'
            : `<button class="small primary" data-act="approve" ${data}>Approve</button> <button class="small" data-act="reject" ${data}>Reject</button>`;
        const open = (r.criteria || []).filter((c) => c.passed !== true).map((c) => c.label);
        const check = open.length ? `<br><span class="badge warn" title="${esc(open.join(', '))}">${open.length} criteria not met when requested</span>`
          : '<br><span class="badge good">criteria met when requested</span>';
        return `<tr data-live-request="${r.id}"><td><a href="/graduation/configs/${r.config}/">${esc(r.config_name)}</a> <span class="muted small">${esc(r.owner)}</span>${check}</td>
          <td>${esc(r.requested_by || 'the policy')}</td><td class="small">${esc(r.reason)}</td><td>${esc(TP.fmtTime(r.created_at))}</td><td>${acts}</td></tr>`;
      }).join('') : '<tr><td colspan="5" class="muted">Nothing waiting.</td></tr>';
    }
    async function loadDecisions() {
      renderDecisions($('#gr-decisions'), (await TP.api('/api/v1/graduation/decisions/?page_size=20')).results);
    }
    Object.values(filters).forEach((sel) => sel.addEventListener('change', render));
    wireDialog();
    TP.on('graduation.decision', (msg) => { prependDecision($('#gr-decisions'), msg.data); loadCards(); loadQueue(); });
    TP.on('graduation.live_request', () => { loadQueue(); loadCards(); });
    TP.onResync(() => { loadCards(); loadQueue(); loadDecisions(); });
    loadCards(); loadQueue(); loadDecisions();
    policies(opts.mayEditPolicies);
  }

  // --- a config's lineage ----------------------------------------------------------------------
  function config(id) {
    const box = $('#gr-decisions');
    wireDialog();
    TP.api(`/api/v1/graduation/decisions/?config=${id}&page_size=50`).then((page) => renderDecisions(box, page.results));
    TP.on('graduation.decision', (msg) => {
      if (msg.data.config !== id) return;
      prependDecision(box, msg.data);
      $('#gr-stage').textContent = LABELS[msg.data.to_stage];
      if (msg.data.from_stage !== msg.data.to_stage) {
        $('.gr-actions').innerHTML = '<span class="muted small">Stage changed: <a href="">reload</a> for its actions.</span>';
        const waiting = $('#gr-pending');
        if (waiting) waiting.remove();
      }
    });
  }

  window.TPGraduation = {board, config};
})();
