// /ui/admin/triggers, and a flow's Triggers tab: every trigger with its last and next date, enable/disable,
// unlock, and backfills (start with end/inputs/labels, pause, resume, delete) — Kestra's PUT /triggers,
// /triggers/{ns}/{flowId}/{triggerId}/unlock, /triggers/backfill/{pause,unpause,delete}.
import { h, replace, debounce, timeEl, uiLinkFlow, emptyState, errorBox, formatDate } from '../util.js';
import { api, getJson, qs, enc } from '../api.js';
import { openDialog, pager, toast } from '../components.js';
import { navigate } from '../main.js';

const SIZE = 25;

export function render(root, _params, query) {
  document.title = 'Triggers · Falconet';
  const box = h('div');
  replace(root, h('div', { class: 'page-head' }, h('h1', null, 'Triggers')), box);
  return renderTriggersList(box, { initial: query, syncUrl: true });
}

const key = (c) => ({ namespace: c.namespace, flowId: c.flowId, triggerId: c.triggerId });
const putJson = (path, body) => api(path, { method: 'PUT', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
const postJson = (path, body) => api(path, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });

function isoFromLocal(v) { if (!v) return null; const d = new Date(v); return Number.isNaN(d.getTime()) ? null : d.toISOString(); }

/** Labels typed as `key:value, key2:value2` → [{key, value}]; throws on a malformed one. */
export function parseLabels(text) {
  return String(text || '').split(',').map((s) => s.trim()).filter(Boolean).map((pair) => {
    const i = pair.indexOf(':');
    if (i <= 0) throw new Error(`Label "${pair}" is not key:value`);
    return { key: pair.slice(0, i).trim(), value: pair.slice(i + 1).trim() };
  });
}

function backfillDialog(ctx, done) {
  openDialog(`Backfill ${ctx.flowId} · ${ctx.triggerId}`, (close) => {
    const err = h('div', { class: 'form-error', role: 'alert', hidden: true });
    const start = h('input', { id: 'bf-start', type: 'datetime-local', required: true });
    const end = h('input', { id: 'bf-end', type: 'datetime-local' });
    const inputs = h('textarea', { id: 'bf-inputs', rows: 3, placeholder: '{"name": "value"}' });
    const labels = h('input', { id: 'bf-labels', type: 'text', placeholder: 'key:value, key2:value2', autocomplete: 'off' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Start backfill');
    const field = (id, label, control, hint) => h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', { class: 'muted' }, hint) : null);
    return h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        err.hidden = true;
        let body;
        try {
          const parsed = inputs.value.trim() ? JSON.parse(inputs.value) : {};
          if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('Inputs must be a JSON object');
          body = { ...key(ctx), backfill: { start: isoFromLocal(start.value), end: isoFromLocal(end.value), inputs: parsed, labels: parseLabels(labels.value) } };
        } catch (ex) { err.hidden = false; replace(err, ex.message); return; }
        submit.disabled = true;
        try {
          await putJson('/triggers', body);
          toast(`Backfill of ${ctx.triggerId} started`, 'success');
          close();
          done();
        } catch (ex) { err.hidden = false; replace(err, ex.message); submit.disabled = false; }
      },
    },
    field('bf-start', 'Start', start), field('bf-end', 'End', end, 'Empty: until now'),
    field('bf-inputs', 'Inputs (JSON)', inputs), field('bf-labels', 'Labels', labels),
    err, h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), submit));
  });
}

/** The triggers table; `fixed` {namespace, flowId} for a flow's tab. Returns a cleanup function. */
export function renderTriggersList(container, { fixed = {}, initial = {}, syncUrl = false } = {}) {
  const f = { q: initial.q || '', namespace: fixed.namespace || initial.namespace || '', page: Math.max(1, +initial.page || 1) };
  const search = h('input', { id: 'tr-q', type: 'search', value: f.q, placeholder: 'Search triggers', autocomplete: 'off' });
  const ns = h('input', { id: 'tr-ns', type: 'text', value: f.namespace, placeholder: 'namespace prefix', autocomplete: 'off', disabled: !!fixed.namespace });
  const results = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading triggers…'));
  const onFilter = debounce(() => { f.q = search.value.trim(); f.namespace = fixed.namespace || ns.value.trim(); f.page = 1; load(); }, 250);
  search.addEventListener('input', onFilter);
  ns.addEventListener('input', onFilter);
  replace(container,
    fixed.flowId ? null : h('div', { class: 'filters', role: 'search' },
      h('div', { class: 'field' }, h('label', { for: 'tr-q' }, 'Search'), search),
      h('div', { class: 'field' }, h('label', { for: 'tr-ns' }, 'Namespace'), ns)),
    results);
  let alive = true;
  let seq = 0;

  async function act(label, fn) {
    try { await fn(); toast(label, 'success'); } catch (e) { toast(`${label} failed: ${e.message}`, 'error', 10000); }
    load();
  }

  function row(r) {
    const c = r.triggerContext || {};
    const t = r.abstractTrigger || {};
    const bf = c.backfill;
    const toggle = h('input', {
      type: 'checkbox', role: 'switch', checked: !c.disabled, 'aria-label': `Enabled: ${c.flowId} ${c.triggerId}`,
      onchange: () => act(`${c.triggerId} ${toggle.checked ? 'enabled' : 'disabled'}`, () => putJson('/triggers', { ...key(c), disabled: !toggle.checked })),
    });
    const actions = [];
    if (c.executionId || c.evaluateRunningDate) {
      actions.push(h('button', { type: 'button', title: c.executionId ? `Locked by execution ${c.executionId}` : 'Locked by a running evaluation',
        onclick: () => act(`${c.triggerId} unlocked`, () => api(`/triggers/${enc(c.namespace)}/${enc(c.flowId)}/${enc(c.triggerId)}/unlock`, { method: 'POST' })) }, 'Unlock'));
    }
    if (bf) {
      actions.push(bf.paused
        ? h('button', { type: 'button', onclick: () => act('Backfill resumed', () => putJson('/triggers/backfill/unpause', key(c))) }, 'Resume backfill')
        : h('button', { type: 'button', onclick: () => act('Backfill paused', () => putJson('/triggers/backfill/pause', key(c))) }, 'Pause backfill'));
      actions.push(h('button', { type: 'button', class: 'danger', onclick: () => act('Backfill deleted', () => postJson('/triggers/backfill/delete', key(c))) }, 'Delete backfill'));
    } else if (/Schedule/.test(t.type || '')) {
      actions.push(h('button', { type: 'button', onclick: () => backfillDialog(c, load) }, 'Backfill'));
    }
    return h('tr', { dataset: { trigger: `${c.namespace}.${c.flowId}.${c.triggerId}` } },
      h('td', { class: 'mono' }, c.triggerId),
      fixed.flowId ? null : h('td', null, h('a', { href: uiLinkFlow(c.namespace, c.flowId, 'triggers') }, c.flowId), h('div', { class: 'muted small' }, c.namespace)),
      h('td', { class: 'hide-sm mono small', title: t.type || '' }, (t.type || '—').split('.').pop()),
      h('td', { class: 'nowrap' }, c.date ? timeEl(c.date) : '—'),
      h('td', { class: 'nowrap' }, c.disabled ? h('span', { class: 'muted' }, 'disabled') : (c.nextExecutionDate ? timeEl(c.nextExecutionDate) : '—')),
      h('td', { class: 'small' }, bf ? [bf.paused ? 'paused at ' : 'running at ', formatDate(bf.currentDate), bf.end ? ` → ${formatDate(bf.end)}` : ''] : '—'),
      h('td', null, toggle),
      h('td', { class: 'row-actions' }, actions));
  }

  async function load() {
    const my = ++seq;
    if (syncUrl) {
      const p = qs({ q: f.q, namespace: f.namespace, page: f.page > 1 ? f.page : '' });
      navigate(`/ui/admin/triggers${p}`, { replace: true, silent: true });
    }
    try {
      const path = fixed.flowId ? `/triggers/${encodeURIComponent(fixed.namespace)}/${encodeURIComponent(fixed.flowId)}` : '/triggers/search';
      const data = await getJson(path, { q: f.q, namespace: fixed.flowId ? '' : f.namespace, page: f.page, size: SIZE });
      if (!alive || my !== seq) return;
      const rows = (data && data.results) || [];
      if (!rows.length) {
        replace(results, emptyState(fixed.flowId ? 'This flow has no trigger.' : 'No trigger matches.', fixed.flowId ? 'Add a `triggers:` block to the flow to schedule it.' : null));
        return;
      }
      replace(results,
        h('div', { class: 'table-wrap' }, h('table', { class: 'triggers-table' },
          h('thead', null, h('tr', null, ['Trigger', fixed.flowId ? null : 'Flow', 'Type', 'Last date', 'Next date', 'Backfill', 'Enabled', 'Actions']
            .filter(Boolean).map((c) => h('th', { scope: 'col', class: c === 'Type' ? 'hide-sm' : '' }, c)))),
          h('tbody', null, rows.map(row)))),
        pager(f.page, SIZE, data.total, (p) => { f.page = p; load(); }));
    } catch (e) {
      if (alive && my === seq) replace(results, errorBox(e, 'Could not load triggers'));
    }
  }
  load();
  return () => { alive = false; onFilter.cancel(); };
}
