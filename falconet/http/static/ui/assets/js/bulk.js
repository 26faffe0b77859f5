// Bulk actions of the executions list, on the selected executions (Kestra's /executions/…/by-ids) or on
// every execution the filter matches (…/by-query): kill, restart, replay, delete, change status, labels.
import { h, replace, STATES, TERMINATED } from './util.js';
import { api } from './api.js';
import { openDialog, toast } from './components.js';

const jsonBody = (v) => ({ body: JSON.stringify(v), headers: { 'Content-Type': 'application/json' } });

/** Labels typed as `key:value, key2:value2`. */
function parseLabels(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((p) => {
    const i = p.indexOf(':');
    if (i <= 0) throw new Error(`Label "${p}" is not key:value`);
    return { key: p.slice(0, i).trim(), value: p.slice(i + 1).trim() };
  });
}

const ACTIONS = {
  kill: { label: 'Kill', danger: true, byIds: (ids) => api('/executions/kill/by-ids', { method: 'DELETE', ...jsonBody(ids) }), byQuery: (q) => api('/executions/kill/by-query', { method: 'DELETE', query: q }) },
  restart: { label: 'Restart', byIds: (ids) => api('/executions/restart/by-ids', { method: 'POST', ...jsonBody(ids) }), byQuery: (q) => api('/executions/restart/by-query', { method: 'POST', query: q }) },
  replay: { label: 'Replay', byIds: (ids) => api('/executions/replay/by-ids', { method: 'POST', ...jsonBody(ids) }), byQuery: (q) => api('/executions/replay/by-query', { method: 'POST', query: q }) },
  delete: { label: 'Delete', danger: true, byIds: (ids) => api('/executions/by-ids', { method: 'DELETE', ...jsonBody(ids) }), byQuery: (q) => api('/executions/by-query', { method: 'DELETE', query: q }) },
  status: { label: 'Change status', field: 'status',
    byIds: (ids, v) => api('/executions/change-status/by-ids', { method: 'POST', query: { newStatus: v }, ...jsonBody(ids) }),
    byQuery: (q, v) => api('/executions/change-status/by-query', { method: 'POST', query: { ...q, newStatus: v } }) },
  labels: { label: 'Set labels', field: 'labels',
    byIds: (ids, v) => api('/executions/labels/by-ids', { method: 'POST', ...jsonBody({ executionsId: ids, executionLabels: v }) }),
    byQuery: (q, v) => api('/executions/labels/by-query', { method: 'POST', query: q, ...jsonBody(v) }) },
};

/**
 * The bulk bar. `selected()` → ids checked on the page; `filter()` → {query, total} of the current filter;
 * `onDone()` reloads the list. Returns {element, update()} — update() after the selection changes.
 */
export function bulkBar({ selected, filter, onDone }) {
  const count = h('span', { class: 'muted' });
  const all = h('input', { type: 'checkbox', id: 'bulk-all' });
  const allLabel = h('label', { for: 'bulk-all', class: 'check' }, all, h('span'));
  const buttons = Object.entries(ACTIONS).map(([k, a]) => h('button', { type: 'button', class: a.danger ? 'danger' : '', dataset: { action: k }, onclick: () => run(k) }, a.label));
  const element = h('div', { class: 'bulk-bar', role: 'toolbar', 'aria-label': 'Bulk actions', hidden: true }, count, allLabel, buttons);

  function update() {
    const n = selected().length;
    const { total } = filter();
    element.hidden = n === 0 && !all.checked;
    count.textContent = all.checked ? '' : `${n} selected`;
    allLabel.lastChild.textContent = ` All ${total} matching the filter`;
  }
  all.addEventListener('change', update);

  function run(key) {
    const a = ACTIONS[key];
    const onAll = all.checked;
    const ids = selected();
    const { query, total } = filter();
    const n = onAll ? total : ids.length;
    openDialog(`${a.label}: ${n} execution${n === 1 ? '' : 's'}`, (close) => {
      const err = h('div', { class: 'form-error', role: 'alert', hidden: true });
      let input = null;
      if (a.field === 'status') input = h('select', { id: 'bulk-value' }, STATES.filter((s) => TERMINATED.has(s)).map((s) => h('option', { value: s }, s)));
      if (a.field === 'labels') input = h('input', { id: 'bulk-value', type: 'text', placeholder: 'key:value, key2:value2', autocomplete: 'off' });
      const submit = h('button', { type: 'submit', class: a.danger ? 'danger primary' : 'primary' }, a.label);
      return h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          err.hidden = true;
          let value;
          try { value = a.field === 'labels' ? parseLabels(input.value) : (input ? input.value : undefined); } catch (ex) { err.hidden = false; replace(err, ex.message); return; }
          if (a.field === 'labels' && !value.length) { err.hidden = false; replace(err, 'Type at least one label'); return; }
          submit.disabled = true;
          try {
            const res = onAll ? await a.byQuery(query, value) : await a.byIds(ids, value);
            const done = (res && res.count) || 0;
            toast(`${a.label}: ${done} execution${done === 1 ? '' : 's'}`, 'success');
            close();
            all.checked = false;
            onDone();
          } catch (ex) {
            // by-ids answers 422 with the executions the action cannot apply to
            err.hidden = false; replace(err, ex.message); submit.disabled = false;
          }
        },
      },
      h('p', null, onAll ? `Every execution matching the filter (${total}).` : `The ${ids.length} selected execution${ids.length === 1 ? '' : 's'}.`),
      input ? h('div', { class: 'field' }, h('label', { for: 'bulk-value' }, a.field === 'status' ? 'New status' : 'Labels'), input) : null,
      err, h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), submit));
    });
  }
  return { element, update, reset() { all.checked = false; update(); } };
}
