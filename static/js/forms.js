/* Form helpers shared by dashboard pages.
 *
 * TP.paramFields(container, params, values)  build inputs from a strategy's parameter schema
 * TP.readParams(container, params)           read them back, typed
 */
(function () {
  'use strict';
  function field(p, value) {
    const id = `param-${p.name}`;
    const v = value !== undefined ? value : p.default;
    let input;
    if (p.type === 'bool') {
      input = `<input type="checkbox" id="${id}" name="${p.name}" ${v ? 'checked' : ''}>`;
    } else if (p.type === 'categorical') {
      input = `<select id="${id}" name="${p.name}">${p.choices.map((c) => `<option value="${TP.esc(JSON.stringify(c))}" ${JSON.stringify(c) === JSON.stringify(v) ? 'selected' : ''}>${TP.esc(c)}</option>`).join('')}</select>`;
    } else {
      const step = p.step != null ? p.step : (p.type === 'int' ? 1 : 'any');
      input = `<input type="number" id="${id}" name="${p.name}" value="${v}" min="${p.low ?? ''}" max="${p.high ?? ''}" step="${step}" required>`;
    }
    const bounds = p.low != null ? ` <small class="muted">${p.low} – ${p.high}</small>` : '';
    return `<label title="${TP.esc(p.help || '')}">${TP.esc(p.name)}${bounds} ${input}${p.help ? `<small class="muted">${TP.esc(p.help)}</small>` : ''}</label>`;
  }
  TP.paramFields = function (container, params, values = {}) {
    container.innerHTML = params.length ? params.map((p) => field(p, values[p.name])).join('') : '<p class="muted">This strategy has no parameters.</p>';
  };
  TP.readParams = function (container, params) {
    const out = {};
    for (const p of params) {
      const el = container.querySelector(`[name="${p.name}"]`);
      if (!el) continue;
      if (p.type === 'bool') out[p.name] = el.checked;
      else if (p.type === 'categorical') out[p.name] = JSON.parse(el.value);
      else out[p.name] = p.type === 'int' ? parseInt(el.value, 10) : parseFloat(el.value);
    }
    return out;
  };
  // Percent inputs ("1.5" meaning 1.5 %) to fractions; empty stays null.
  TP.pctToFraction = (value) => (value === '' || value == null ? null : Number(value) / 100);
  TP.msToIso = (ms) => new Date(ms).toISOString();
  // An ISO time as the value of a datetime-local input, in the user's zone.
  TP.isoToLocalInput = function (iso) {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {timeZone: TP.tz, hourCycle: 'h23', year: 'numeric',
      month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit'}).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
  };
})();
